"""A small client of the OCI distribution API, for what skopeo cannot copy as it is.

skopeo copies images; what is attached to them (signature and attestation manifests,
the referrers tag schema's index) cairn writes and reads itself, byte for byte:
blobs by monolithic upload, manifests by PUT, tags by listing. Credentials are the
ones skopeo and podman use (containers' auth.json, then Docker's config.json; an
`auth` entry, sent as HTTP Basic or traded for a bearer token as the registry asks).
Transient failures are retried as for skopeo (cairn.oci.registry's policy).
"""

from __future__ import annotations

import http.client
import json
import logging
import os
import re
import ssl
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

from cairn.oci import registry
from cairn.oci.registry import RetryPolicy

log = logging.getLogger("cairn")

ACCEPT = ", ".join(
    [
        "application/vnd.oci.image.index.v1+json",
        "application/vnd.oci.image.manifest.v1+json",
        "application/vnd.docker.distribution.manifest.list.v2+json",
        "application/vnd.docker.distribution.manifest.v2+json",
    ]
)


def auth_files() -> list[Path]:
    """Where skopeo, podman and docker keep credentials, in the order containers/image reads."""
    home = Path.home()
    runtime = os.environ.get("XDG_RUNTIME_DIR")
    files = [Path(os.environ["REGISTRY_AUTH_FILE"])] if "REGISTRY_AUTH_FILE" in os.environ else []
    if runtime:
        files.append(Path(runtime) / "containers" / "auth.json")
    files += [home / ".config" / "containers" / "auth.json", home / ".docker" / "config.json"]
    return files


def credentials(host: str) -> str | None:
    """base64(user:password) for `host`, from the first auth file that has it."""
    for path in auth_files():
        try:
            auths = json.loads(path.read_text()).get("auths", {})
        except (OSError, ValueError):
            continue
        for key in (host, f"https://{host}", f"http://{host}"):
            entry = auths.get(key)
            if isinstance(entry, dict) and entry.get("auth"):
                return str(entry["auth"])
    return None


class HttpFailure(Exception):
    def __init__(self, status: int, body: str) -> None:
        super().__init__(f"HTTP {status}: {body[:300]}")
        self.status = status
        self.body = body


@dataclass
class Registry:
    """One registry host, spoken to over HTTPS (or plain HTTP when `insecure`)."""

    host: str
    insecure: bool = False
    policy: RetryPolicy = field(default_factory=RetryPolicy.from_env)
    _token: dict[str, str] = field(default_factory=dict)  # scope -> bearer token
    _scheme: str | None = None
    _context: ssl.SSLContext | None = None

    @property
    def base(self) -> str:
        """https://HOST; with `insecure`, as skopeo's --tls-verify=false: HTTPS without
        checking the certificate, or plain HTTP where the registry speaks no TLS."""
        if self._scheme is None:
            self._scheme = "https"
            if self.insecure:
                try:
                    self._urlopen(urllib.request.Request(f"https://{self.host}/v2/"))
                except urllib.error.HTTPError:
                    pass  # TLS works; the registry answered (401 wants credentials)
                except (urllib.error.URLError, OSError):
                    self._scheme = "http"
        return f"{self._scheme}://{self.host}"

    def _urlopen(self, req: urllib.request.Request) -> http.client.HTTPResponse:
        context = None
        if req.full_url.startswith("https:"):
            if self._context is None:  # made once: loading the CA store takes 30 ms
                self._context = ssl.create_default_context()
                if self.insecure:
                    self._context.check_hostname = False
                    self._context.verify_mode = ssl.CERT_NONE
            context = self._context
        response: http.client.HTTPResponse = urllib.request.urlopen(
            req, timeout=self.policy.stall_timeout, context=context
        )
        return response

    # ------------------------------------------------------------------ HTTP
    def _open(
        self, method: str, url: str, scope: str, data: bytes | None, headers: dict[str, str]
    ) -> http.client.HTTPResponse:
        fresh = False  # a token asked for by this request: a 401 with it is final
        for _ in range(3):
            req = urllib.request.Request(url, data=data, method=method, headers=dict(headers))
            if scope in self._token:
                # not sent on to where a registry redirects a blob (a bucket, a CDN)
                req.add_unredirected_header("Authorization", self._token[scope])
            try:
                return self._urlopen(req)
            except urllib.error.HTTPError as e:
                if e.code != 401 or fresh:
                    raise HttpFailure(e.code, e.read().decode(errors="replace")) from None
                # no token yet, or it expired during a long push: ask once more
                self._token[scope] = self._authorize(e.headers.get("WWW-Authenticate", ""), scope)
                fresh = True
        raise HttpFailure(401, "the registry refused the credentials")

    def _authorize(self, challenge: str, scope: str) -> str:
        creds = credentials(self.host)
        if challenge.lower().startswith("basic"):
            if creds is None:
                raise HttpFailure(401, "no credentials for this registry")
            return f"Basic {creds}"
        params = dict(re.findall(r'(\w+)="([^"]*)"', challenge))
        if "realm" not in params:
            raise HttpFailure(401, f"an authentication challenge cairn cannot answer: {challenge}")
        query = {"service": params.get("service", ""), "scope": scope}
        req = urllib.request.Request(f"{params['realm']}?{urllib.parse.urlencode(query)}")
        if creds:
            req.add_unredirected_header("Authorization", f"Basic {creds}")
        try:
            with self._urlopen(req) as response:
                answer = json.loads(response.read())
            token = answer.get("token") or answer.get("access_token")
        except urllib.error.HTTPError as e:
            raise HttpFailure(e.code, "the token service refused: " + e.read().decode()) from None
        except (ValueError, AttributeError):
            raise HttpFailure(401, "the token service answered no token") from None
        return f"Bearer {token}"

    def request(
        self,
        method: str,
        repository: str,
        path: str,
        *,
        data: bytes | None = None,
        headers: dict[str, str] | None = None,
        url: str | None = None,
        missing_ok: bool = False,
    ) -> tuple[dict[str, str], bytes] | None:
        """One request, retried as the policy says while the failure is transient: its
        headers (names in lower case) and body; None for a 404 when `missing_ok`."""
        scope = f"repository:{repository}:pull,push"
        target = url or f"{self.base}/v2/{repository}/{path}"
        where, operation = _described(method, self.host, repository, path)
        attempts = self.policy.retries + 1
        for attempt in range(1, attempts + 1):
            try:
                with self._open(method, target, scope, data, headers or {}) as response:
                    got = {k.lower(): v for k, v in response.headers.items()}
                    return got, response.read()
            except HttpFailure as e:
                if e.status == 404 and missing_ok:
                    return None
                failure = registry.Failure(e.status, False, f"HTTP {e.status}: {e.body}")
            except (urllib.error.URLError, OSError) as e:
                reason = str(getattr(e, "reason", e))
                if "WRONG_VERSION_NUMBER" in reason:  # TLS spoken to a plain-HTTP registry
                    failure = registry.Failure(
                        None, False, "server gave HTTP response to HTTPS client"
                    )
                else:
                    failure = registry.Failure(None, True, reason)
            if not failure.transient or attempt == attempts:
                raise registry.explain(operation, where, failure, attempt)
            wait = self.policy.delay(attempt)
            log.warning("%s %s: %s (attempt %d of %d); retrying in %.1f s",
                        operation, where, failure.reason, attempt, attempts, wait)  # fmt: skip
            time.sleep(wait)
        raise AssertionError("unreachable")

    # ------------------------------------------------------------------ API
    def has_blob(self, repository: str, digest: str) -> bool:
        return self.request("HEAD", repository, f"blobs/{digest}", missing_ok=True) is not None

    def put_blob(self, repository: str, digest: str, data: bytes) -> None:
        if self.has_blob(repository, digest):
            return
        started = self.request("POST", repository, "blobs/uploads/", data=b"")
        assert started is not None
        location = urllib.parse.urljoin(self.base, started[0].get("location", ""))
        sep = "&" if "?" in location else "?"
        self.request(
            "PUT",
            repository,
            "blobs/uploads/",
            url=f"{location}{sep}digest={urllib.parse.quote(digest)}",
            data=data,
            headers={"Content-Type": "application/octet-stream"},
        )

    def get_blob(self, repository: str, digest: str) -> bytes | None:
        got = self.request("GET", repository, f"blobs/{digest}", missing_ok=True)
        return None if got is None else got[1]

    def put_manifest(self, repository: str, reference: str, data: bytes, media_type: str) -> None:
        self.request(
            "PUT",
            repository,
            f"manifests/{reference}",
            data=data,
            headers={"Content-Type": media_type},
        )

    def get_manifest(self, repository: str, reference: str) -> tuple[str, bytes] | None:
        """(media type, bytes), or None when the registry has no such manifest."""
        got = self.request(
            "GET", repository, f"manifests/{reference}", headers={"Accept": ACCEPT}, missing_ok=True
        )
        if got is None:
            return None
        return got[0].get("content-type", "").split(";")[0], got[1]


def _described(method: str, host: str, repository: str, path: str) -> tuple[str, str]:
    """What a request is about, and what it does, for messages: ("HOST/REPO:TAG", "writing")."""
    kind, _, reference = path.partition("/")
    where = f"{host}/{repository}"
    if kind == "manifests":
        where += f"@{reference}" if reference.startswith("sha256:") else f":{reference}"
        return where, "writing" if method == "PUT" else "reading"
    if kind == "blobs":
        return where, "sending a blob to" if method in ("POST", "PUT") else "reading a blob of"
    return where, "listing the tags of"


def split_repository(repository: str) -> tuple[str, str]:
    """REGISTRY/PATH -> (REGISTRY, PATH)."""
    host, _, path = repository.partition("/")
    return host, path
