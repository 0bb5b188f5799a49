"""A small client of the OCI distribution API, for what skopeo cannot copy as it is.

skopeo copies images; what is attached to them (signature and attestation manifests,
the referrers tag schema's index) cairn writes and reads itself, byte for byte:
blobs by monolithic upload, manifests by PUT. The host's scheme, certificates and
credentials are the ones skopeo is handed (cairn.oci.access). Credentials are sent as
HTTP Basic, or traded for a bearer token as the registry asks: `pull` for reads,
`pull,push` for writes; an identity token through OAuth2's refresh grant. Transient
failures are retried as for skopeo (cairn.oci.registry's policy); a refusal of access
is not, and names what was refused.
"""

from __future__ import annotations

import contextlib
import http.client
import logging
import re
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

from cairn.errors import CairnError, ImageContentError, RegistryAccessError
from cairn.oci import registry
from cairn.oci.access import HostAccess, is_certificate_failure, is_client_certificate_refusal
from cairn.oci.certs import client_certificate_refused, untrusted_certificate
from cairn.oci.connections import KeptAlive, opener
from cairn.oci.credentials import Credential, Lookup
from cairn.oci.registry import RetryPolicy
from cairn.untrusted import MAX_DOCUMENT, json_object, printable

log = logging.getLogger("cairn")

ACCEPT = ", ".join(
    [
        "application/vnd.oci.image.index.v1+json",
        "application/vnd.oci.image.manifest.v1+json",
        "application/vnd.docker.distribution.manifest.list.v2+json",
        "application/vnd.docker.distribution.manifest.v2+json",
    ]
)


class HttpFailure(Exception):
    def __init__(self, status: int, body: str, challenge: str = "") -> None:
        super().__init__(f"HTTP {status}: {body[:300]}")
        self.status = status
        self.body = body
        self.challenge = challenge  # the WWW-Authenticate of a 401


class TokenServiceFailure(Exception):
    """The token service could not be reached or failed (not a refusal)."""

    def __init__(self, url: str, reason: str) -> None:
        super().__init__(reason)
        self.url = url
        self.reason = reason


# a request's body: bytes, or a stream (sent once, its Content-Length given by the caller)
Body = bytes | Iterable[bytes] | None

MAX_TOKEN_ANSWER = 1 << 20  # a token service's JSON answer
MAX_ATTACHMENT_BLOB = 64 << 20  # an attestation's SBOM of a large image is a few MB


def _origin(url: str) -> tuple[str, str]:
    parts = urllib.parse.urlsplit(url)
    return parts.scheme, parts.netloc


def _challenge(header: str) -> tuple[str, dict[str, str]]:
    """WWW-Authenticate: 'Bearer realm="…",service="…"' -> ("bearer", {realm, service, …})."""
    kind = header.split(" ", 1)[0].lower()
    return kind, dict(re.findall(r'(\w+)="([^"]*)"', header))


@dataclass
class Registry:
    """One registry host, reached as its HostAccess says."""

    access: HostAccess
    policy: RetryPolicy = field(default_factory=RetryPolicy.from_env)
    _token: dict[str, str] = field(default_factory=dict)  # scope -> Authorization value
    _openers: dict[bool, urllib.request.OpenerDirector] = field(default_factory=dict)
    _connections: KeptAlive | None = None
    _asks_basic: bool = False  # the registry asked for HTTP Basic: sent from then on unasked
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def host(self) -> str:
        return self.access.host

    @property
    def base(self) -> str:
        return f"{self.access.scheme()}://{self.host}"

    def _urlopen(
        self, req: urllib.request.Request, *, redirects: bool = True
    ) -> http.client.HTTPResponse:
        with self._lock:
            if self._connections is None:
                self._connections = KeptAlive(self.access.context())
            if redirects not in self._openers:
                self._openers[redirects] = opener(self._connections, redirects)
        response: http.client.HTTPResponse = self._openers[redirects].open(
            req, timeout=self.policy.stall_timeout
        )
        return response

    def close(self) -> None:
        """Closes the connections kept open to the registry (and its token service)."""
        if self._connections is not None:
            self._connections.close()

    def _same_origin(self, url: str) -> bool:
        """Whether `url` is the registry's own scheme and host: only there is a token or
        a password sent (an upload's Location names wherever the registry likes)."""
        return _origin(url) == _origin(self.base)

    # ------------------------------------------------------------------ HTTP
    def _open(
        self,
        method: str,
        url: str,
        repository: str,
        data: Body,
        headers: dict[str, str],
        *,
        reads_from: str = "",
    ) -> http.client.HTTPResponse:
        actions = "pull" if method in ("GET", "HEAD") else "pull,push"
        scope = f"repository:{repository}:{actions}"
        if reads_from:  # a mount reads another repository of the registry
            scope += f" repository:{reads_from}:pull"
        fresh = False  # authorization asked for by this request: a 401 with it is final
        once = not isinstance(data, (bytes, type(None)))  # a stream: sent once
        if scope not in self._token and self._asks_basic:
            # one host, one way to authenticate: a new repository is not asked for first
            cred = self.access.credential(f"{self.host}/{repository}").credential
            if cred is not None and not cred.identity_token:
                self._token[scope] = cred.basic()
        for _ in range(3):
            req = urllib.request.Request(url, data=data, method=method, headers=dict(headers))
            if scope in self._token and self._same_origin(url):
                # not sent on to where a registry redirects a blob (a bucket, a CDN)
                req.add_unredirected_header("Authorization", self._token[scope])
            try:
                return self._urlopen(req)
            except urllib.error.HTTPError as e:
                with e:  # its connection is kept only if the body was read whole
                    body = e.read(64 << 10).decode(errors="replace")
                challenge = e.headers.get("WWW-Authenticate", "") if e.code == 401 else ""
                # only the registry's own 401 is answered with its credentials: not one
                # from where it redirected (a bucket, a CDN, or anyone)
                if e.code != 401 or fresh or once or not self._same_origin(e.geturl()):
                    raise HttpFailure(e.code, body, challenge) from None
                # no token yet, or it expired during a long push: ask once more
                self._token[scope] = self._authorize(challenge, repository, scope)
                fresh = True
        raise HttpFailure(401, "the registry refused the credentials")

    def _authorize(self, challenge: str, repository: str, scope: str) -> str:
        lookup = self.access.credential(f"{self.host}/{repository}")
        cred = lookup.credential
        kind, params = _challenge(challenge)
        if kind == "basic":
            if cred is None or cred.identity_token:
                raise HttpFailure(401, "no credentials for this registry", challenge)
            self._asks_basic = True
            return cred.basic()
        if kind != "bearer" or "realm" not in params:
            raise HttpFailure(401, f"an authentication challenge cairn cannot answer: {challenge}")
        return self._bearer(params["realm"], params.get("service", ""), scope, cred)

    def _bearer(self, realm: str, service: str, scope: str, cred: Credential | None) -> str:
        """A token from the registry's token service, for `scope`. The service must be
        reached over HTTPS (plain HTTP only when the registry itself speaks it): a password
        is never sent in the clear, nor to a file: or ftp: URL a registry names."""
        try:
            scheme = urllib.parse.urlsplit(realm).scheme
        except ValueError:
            scheme = ""  # no URL: refused below as not https
        if scheme != "https" and not (scheme == "http" and self.access.scheme() == "http"):
            raise HttpFailure(
                401, f"the registry names a token service at {printable(realm, 120)}, not https"
            )
        if cred is not None and cred.identity_token:
            # OAuth2's refresh grant, as docker and containers/image trade identity tokens
            form = {
                "grant_type": "refresh_token",
                "refresh_token": cred.secret,
                "service": service,
                "scope": scope,
                "client_id": "cairn",
            }
            req = urllib.request.Request(
                realm, data=urllib.parse.urlencode(form).encode(), method="POST"
            )
        else:
            fields = [("service", service), *(("scope", one) for one in scope.split())]
            query = urllib.parse.urlencode(fields)
            req = urllib.request.Request(f"{realm}?{query}")
            if cred is not None:
                req.add_unredirected_header("Authorization", cred.basic())
        try:
            with self._urlopen(req) as response:
                body = _bounded(
                    response, MAX_TOKEN_ANSWER, "the token service", self.policy.stall_timeout
                )
                answer = json_object(body, "the token answer")
            token = answer.get("token") or answer.get("access_token")
            if not isinstance(token, str) or not token:
                raise ValueError("no token")
        except urllib.error.HTTPError as e:
            if e.code in (401, 403):
                raise HttpFailure(e.code, "the token service refused the credentials") from None
            raise TokenServiceFailure(realm, f"HTTP {e.code}") from None
        except (ValueError, AttributeError, RecursionError):
            raise TokenServiceFailure(realm, "it answered no token") from None
        except urllib.error.URLError as e:
            failed = is_certificate_failure(e)
            if failed:
                host = urllib.parse.urlsplit(realm).netloc
                raise untrusted_certificate(host, self.access.trust, failed) from None
            raise TokenServiceFailure(realm, str(e.reason)) from None
        except (OSError, http.client.HTTPException) as e:
            raise TokenServiceFailure(realm, str(e) or type(e).__name__) from None
        return f"Bearer {token}"

    def request(
        self,
        method: str,
        repository: str,
        path: str,
        *,
        data: Body = None,
        headers: dict[str, str] | None = None,
        url: str | None = None,
        missing_ok: bool = False,
        max_bytes: int = MAX_DOCUMENT,
        reads_from: str = "",
    ) -> tuple[dict[str, str], bytes] | None:
        """One request, retried as the policy says while the failure is transient: its
        headers (names in lower case, the status as ":status") and body, read within
        `max_bytes` (a larger answer is refused, not read); None for a 404 when
        `missing_ok`."""
        target = url or f"{self.base}/v2/{repository}/{path}"
        where, operation = _described(method, self.host, repository, path)
        # a body read as it is sent (a stream) is sent once: no retry can send it again
        attempts = self.policy.retries + 1 if isinstance(data, (bytes, type(None))) else 1
        for attempt in range(1, attempts + 1):
            try:
                with self._open(
                    method, target, repository, data, headers or {}, reads_from=reads_from
                ) as response:
                    got = {k.lower(): v for k, v in response.headers.items()}
                    got[":status"] = str(response.status)
                    body = _bounded(
                        response, max_bytes, f"{operation} {where}", self.policy.stall_timeout
                    )
                    return got, body
            except HttpFailure as e:
                if e.status == 404 and missing_ok:
                    return None
                if e.status in (401, 403):
                    raise self._refused(operation, where, repository, method, e) from None
                failure = registry.Failure(e.status, False, f"HTTP {e.status}: {e.body}")
            except TokenServiceFailure as e:
                failure = registry.Failure(None, True, f"the token service {e.url}: {e.reason}")
                if attempt == attempts:
                    raise registry.token_service_failed(
                        operation, where, e.url, e.reason, attempt
                    ) from None
            except (urllib.error.URLError, OSError, http.client.HTTPException) as e:
                failure = self._connection_failure(e)
            except ValueError as e:  # a Location or realm that is no URL (urllib's parse)
                failure = registry.Failure(None, False, f"it answered with no usable URL ({e})")
            if not failure.transient or attempt == attempts:
                raise registry.explain(operation, where, failure, attempt)
            wait = self.policy.delay(attempt)
            log.warning("%s %s: %s (attempt %d of %d); retrying in %.1f s",
                        operation, where, failure.reason, attempt, attempts, wait)  # fmt: skip
            time.sleep(wait)
        raise AssertionError("unreachable")

    def _connection_failure(self, e: BaseException) -> registry.Failure:
        """What a failed connection was: a certificate refused either way raises at once
        (no retry helps), anything else is a failure for the retry policy to judge."""
        failed = is_certificate_failure(e)
        if failed:
            raise untrusted_certificate(self.host, self.access.trust, failed) from None
        alert = is_client_certificate_refusal(e)
        if alert:
            raise client_certificate_refused(self.host, self.access.trust, alert) from None
        reason = str(getattr(e, "reason", e))
        if "WRONG_VERSION_NUMBER" in reason:  # TLS spoken to a plain-HTTP registry
            return registry.Failure(None, False, "server gave HTTP response to HTTPS client")
        return registry.Failure(None, True, reason)

    def _refused(
        self, operation: str, where: str, repository: str, method: str, e: HttpFailure
    ) -> RegistryAccessError:
        lookup = self.access.credential(f"{self.host}/{repository}")
        scope_denied = "insufficient_scope" in e.challenge or e.status == 403
        return registry.access_refused(
            operation,
            where,
            e.status,
            lookup,
            write=method not in ("GET", "HEAD"),
            not_permitted=scope_denied and lookup.credential is not None,
        )

    def check_login(self, cred: Credential) -> None:
        """That the registry accepts `cred` (as docker and skopeo login check): /v2/ with
        them, through its token service if it has one; RegistryAccessError if refused."""
        where, operation = self.host, "logging in to"
        try:
            try:
                with self._urlopen(urllib.request.Request(f"{self.base}/v2/"), redirects=False):
                    return  # a registry that asks no one
            except urllib.error.HTTPError as e:
                if e.code != 401:
                    raise HttpFailure(e.code, e.read(4096).decode(errors="replace")) from None
                kind, params = _challenge(e.headers.get("WWW-Authenticate", ""))
            if kind == "bearer" and "realm" in params:
                auth = self._bearer(params["realm"], params.get("service", ""), "", cred)
            else:
                auth = cred.basic()
            req = urllib.request.Request(f"{self.base}/v2/")
            req.add_unredirected_header("Authorization", auth)
            with self._urlopen(req, redirects=False):  # a redirect is no login
                return
        except HttpFailure as e:
            if e.status in (401, 403):
                raise registry.access_refused(
                    operation, where, e.status, Lookup(cred, ()), write=False, not_permitted=False
                ) from None
            failure = registry.Failure(e.status, False, e.body)
            raise registry.explain(operation, where, failure, 1) from None
        except urllib.error.HTTPError as e:
            if e.code in (401, 403):
                raise registry.access_refused(
                    operation, where, e.code, Lookup(cred, ()), write=False, not_permitted=False
                ) from None
            failure = registry.Failure(e.code, False, f"HTTP {e.code}")
            raise registry.explain(operation, where, failure, 1) from None
        except TokenServiceFailure as e:
            raise registry.token_service_failed(operation, where, e.url, e.reason, 1) from None
        except (urllib.error.URLError, OSError, http.client.HTTPException) as e:
            raise registry.explain(operation, where, self._connection_failure(e), 1) from None

    # ------------------------------------------------------------------ API
    def has_blob(self, repository: str, digest: str) -> bool:
        return self.request("HEAD", repository, f"blobs/{digest}", missing_ok=True) is not None

    def has_manifest(self, repository: str, digest: str) -> bool:
        got = self.request(
            "HEAD", repository, f"manifests/{digest}", headers={"Accept": ACCEPT}, missing_ok=True
        )
        return got is not None

    def upload_blob(self, repository: str, digest: str, data: bytes) -> None:
        """A blob sent without asking whether the registry has it (it may: then it is
        sent again, and the registry keeps one)."""
        started = self.request("POST", repository, "blobs/uploads/", data=b"")
        assert started is not None
        self._finish_upload(repository, started[0], digest, data, {})

    def stream_blob(self, repository: str, digest: str, size: int, chunks: Iterable[bytes]) -> None:
        """A blob of `size` bytes sent as `chunks` come, in one request. The registry
        keeps it only if it hashes to `digest` (the distribution API has it check); a
        failure part-way leaves nothing but an upload the registry purges, and is not
        retried: the chunks are gone."""
        started = self.request("POST", repository, "blobs/uploads/", data=b"")
        assert started is not None
        self._finish_upload(repository, started[0], digest, chunks, {"Content-Length": str(size)})

    def mount_blob(self, repository: str, digest: str, source: str) -> bool:
        """The blob `source` (another repository of the registry) holds, into `repository`
        without sending it again; False when the registry does not mount it (the account
        may not read `source`, or the registry mounts nothing): then the caller sends it."""
        if self.has_blob(repository, digest):
            return True
        query = urllib.parse.urlencode({"mount": digest, "from": source})
        try:
            started = self.request(
                "POST", repository, f"blobs/uploads/?{query}", data=b"", reads_from=source
            )
        except RegistryAccessError:
            return False  # may not read `source` (a login a repository): sent instead
        assert started is not None
        if started[0].get(":status") == "201":
            return True
        with contextlib.suppress(CairnError):  # the upload it opened instead is not wanted
            url = self._upload_url(started[0])
            if self._same_origin(url):
                self.request("DELETE", repository, "blobs/uploads/", url=url, missing_ok=True)
        return False

    def _upload_url(self, started: dict[str, str]) -> str:
        """Where the registry said an upload goes (its Location, against its own URL)."""
        location = started.get("location", "")
        try:
            return urllib.parse.urljoin(self.base, location)
        except ValueError:
            raise ImageContentError(
                f"{self.host} named an upload location that is no URL: "
                f"{printable(location, 120)!r}.",
                "Try: check the registry, and what stands in front of it (a proxy).",
            ) from None

    def _finish_upload(
        self,
        repository: str,
        started: dict[str, str],
        digest: str,
        data: Body,
        headers: dict[str, str],
    ) -> None:
        location = self._upload_url(started)
        sep = "&" if "?" in location else "?"
        self.request(
            "PUT",
            repository,
            "blobs/uploads/",
            url=f"{location}{sep}digest={urllib.parse.quote(digest)}",
            data=data,
            headers={"Content-Type": "application/octet-stream", **headers},
        )

    def copy_blob(self, source: str, repository: str, digest: str, size: int) -> None:
        """A blob of `source` (another repository of the registry) into `repository`, read
        back as it is sent: for a registry that mounts nothing. Not retried (as
        stream_blob); the registry checks the digest."""
        where = f"{self.host}/{source}"
        try:
            response = self._open(
                "GET", f"{self.base}/v2/{source}/blobs/{digest}", source, None, {}
            )
        except HttpFailure as e:
            failure = registry.Failure(e.status, False, f"HTTP {e.status}: {e.body}")
            raise registry.explain("reading a blob of", where, failure, 1) from None
        except TokenServiceFailure as e:
            raise registry.token_service_failed(
                "reading a blob of", where, e.url, e.reason, 1
            ) from None
        except (urllib.error.URLError, OSError, http.client.HTTPException) as e:
            raise registry.explain(
                "reading a blob of", where, self._connection_failure(e), 1
            ) from None
        with response:
            chunks = _chunks(
                response, size, f"reading a blob of {where}", self.policy.stall_timeout
            )
            self.stream_blob(repository, digest, size, chunks)

    def get_blob(self, repository: str, digest: str) -> bytes | None:
        """An attachment's blob (a signature payload, an attestation): 64 MiB at most."""
        got = self.request(
            "GET", repository, f"blobs/{digest}", missing_ok=True, max_bytes=MAX_ATTACHMENT_BLOB
        )
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


MIN_RATE = 1024  # bytes a second an answer must average, past its first stall time-out


def _bounded(response: http.client.HTTPResponse, max_bytes: int, what: str, stall: float) -> bytes:
    """The answer's body, read within `max_bytes` and MIN_RATE (as _chunks)."""
    return b"".join(_chunks(response, max_bytes, what, stall))


def _chunks(
    response: http.client.HTTPResponse, max_bytes: int, what: str, stall: float
) -> Iterator[bytes]:
    """The answer's body as it comes, refused (not read on) past `max_bytes`, and ended
    when it comes slower than MIN_RATE on average once `stall` seconds have gone: a
    registry that drips a byte a second (each read within the stall time-out) cannot hold
    cairn for days."""
    got, start = 0, time.monotonic()
    while chunk := response.read1(min(1 << 20, max_bytes + 1 - got)):  # what has come
        got += len(chunk)
        if got > max_bytes:
            raise ImageContentError(
                f"{what}: the registry answered with more than {max_bytes} bytes, more than "
                "such a document may be.",
                "Try: check what the registry holds there (skopeo inspect --raw).",
            )
        took = time.monotonic() - start
        if took > stall and got < MIN_RATE * (took - stall):
            raise OSError(f"the answer came at {got / took:.0f} bytes/s, too slow to wait for")
        yield chunk
    if response.length:  # read1 ends quietly where the connection did: short of its length
        raise http.client.IncompleteRead(b"", response.length)


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
