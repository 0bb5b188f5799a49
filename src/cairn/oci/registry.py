"""Registry I/O through skopeo: what is worth another try, how long to wait, when to give up.

Every operation that reaches a registry (push, copy, inspect) runs here. A
transient failure (a connection refused or reset, a network time-out, HTTP 408,
429, 500, 502, 503 or 504) is tried again after an exponential back-off with
jitter, a bounded number of times, and each retry is said on stderr: what
failed, attempt n of m, the wait. An operation that reads and writes nothing for
the stall time-out is ended and not retried (a registry that took the connection
and never answered). Other 4xx answers are final and say what the registry said:
401/403 are credentials, 404 the repository or tag.

    CAIRN_REGISTRY_TIMEOUT   seconds with no progress before an operation ends (180)
    CAIRN_REGISTRY_RETRIES   retries after the first attempt (3)
"""

from __future__ import annotations

import logging
import os
import random
import re
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from cairn.engines import Stalled, run_logged, tail
from cairn.errors import CairnError, RegistryAccessError, RegistryError, UsageError
from cairn.oci.certs import HostTrust, client_certificate_refused, untrusted_certificate
from cairn.oci.credentials import Lookup
from cairn.scratch import scratch_dir
from cairn.untrusted import printable

log = logging.getLogger("cairn")

TIMEOUT_ENV = "CAIRN_REGISTRY_TIMEOUT"
RETRIES_ENV = "CAIRN_REGISTRY_RETRIES"
TRANSIENT_STATUS = frozenset({408, 429, 500, 502, 503, 504})
# how skopeo (containers/image) names the status a registry answered
_STATUS = re.compile(
    r"(?:HTTP status|status code|StatusCode)[:= ]+(\d{3})"
    r"|status code from registry (\d{3})"
    r"|\b(\d{3}) \(?[A-Z][a-z]+(?: [A-Z][a-z]+)*\)?(?:$|[\n:\"])"
)
_NETWORK = re.compile(
    r"connection refused|connection reset|broken pipe|i/o timeout|TLS handshake timeout|"
    r"timeout awaiting|Client\.Timeout|unexpected EOF|: EOF\b|no route to host",
    re.IGNORECASE,
)
_CREDENTIALS = re.compile(r"unauthorized|authentication required|denied|forbidden", re.I)
_CERTIFICATE = re.compile(
    r"x509: [^\n\"]*|tls: failed to verify certificate[^\n\"]*|certificate signed by unknown "
    r"authority|certificate is not (?:valid|trusted)[^\n\"]*",
    re.IGNORECASE,
)
_CLIENT_CERTIFICATE = re.compile(r"remote error: tls: (?:bad certificate|certificate required|"
                                 r"unknown certificate authority)", re.IGNORECASE)  # fmt: skip
_SCOPE_DENIED = re.compile(r"insufficient_scope|requested access to the resource is denied|"
                           r"\bdenied\b|forbidden", re.IGNORECASE)  # fmt: skip
_NOT_FOUND = re.compile(r"manifest unknown|name unknown|not found|blob unknown", re.I)


@dataclass(frozen=True)
class RetryPolicy:
    retries: int = 3  # after the first attempt
    first_delay: float = 1.0  # seconds; doubled for each retry, then jittered
    max_delay: float = 30.0
    stall_timeout: float = 180.0  # seconds with no byte read or written

    @classmethod
    def from_env(cls, timeout: float | None = None, retries: int | None = None) -> RetryPolicy:
        """Command-line values win over the environment's, which win over the defaults."""
        policy = cls()
        env_timeout = os.environ.get(TIMEOUT_ENV)
        env_retries = os.environ.get(RETRIES_ENV)
        try:
            if timeout is None and env_timeout:
                timeout = float(env_timeout)
            if retries is None and env_retries:
                retries = int(env_retries)
        except ValueError:
            raise UsageError(
                f"{TIMEOUT_ENV}={env_timeout!r} / {RETRIES_ENV}={env_retries!r} is not a number.",
                f"Try: {TIMEOUT_ENV}=300 (seconds) and {RETRIES_ENV}=3, or unset them.",
            ) from None
        if (timeout is not None and timeout <= 0) or (retries is not None and retries < 0):
            raise UsageError(
                f"A registry time-out must be positive and retries not negative "
                f"(got {timeout}, {retries}).",
                "Try: --registry-timeout 300 --registry-retries 3.",
            )
        return cls(
            retries=policy.retries if retries is None else retries,
            stall_timeout=policy.stall_timeout if timeout is None else timeout,
        )

    def delay(self, retry: int, rand: Callable[[], float] = random.random) -> float:
        """Seconds before retry number `retry` (1-based): doubling, with up to ±50 % jitter."""
        base = min(self.first_delay * 2 ** (retry - 1), self.max_delay)
        return float(round(base * (0.5 + rand()), 2))


@dataclass(frozen=True)
class Failure:
    """What one attempt's skopeo output says went wrong."""

    status: int | None  # the HTTP status the registry answered, when one is named
    network: bool  # a connection refused, reset or timed out
    text: str

    @property
    def transient(self) -> bool:
        return self.status in TRANSIENT_STATUS if self.status else self.network

    @property
    def reason(self) -> str:
        if self.status:
            return f"HTTP {self.status}"
        found = _NETWORK.search(self.text)
        return found.group(0) if found else "an error"


def classify(text: str) -> Failure:
    status = None
    for m in _STATUS.finditer(text):
        code = int(next(g for g in m.groups() if g))
        if 400 <= code <= 599:
            status = code
    return Failure(status, bool(_NETWORK.search(text)), text)


def run(
    operation: str,
    where: str,
    cmd: Sequence[str],
    *,
    policy: RetryPolicy | None = None,
    sleep: Callable[[float], None] = time.sleep,
    stdout: Path | None = None,
    lookup: Lookup | None = None,
    write: bool = False,
    env: dict[str, str] | None = None,
    trust: HostTrust | None = None,
) -> None:
    """Run the skopeo command `cmd` that does `operation` ("pushing base") against the
    registry image `where`, retrying what is transient; RegistryError when it gives up
    (RegistryAccessError when access was refused: `lookup` says which credentials skopeo
    was handed, `write` whether it wrote). What skopeo prints goes to `stdout` when given
    (the last attempt's)."""
    policy = policy or RetryPolicy.from_env()
    attempts = policy.retries + 1
    with scratch_dir("registry") as tmp:
        logfile = Path(tmp) / "skopeo.log"
        for attempt in range(1, attempts + 1):
            logfile.write_text("")
            try:
                code = run_logged(
                    cmd, logfile, stdout=stdout, stall_timeout=policy.stall_timeout, env=env
                )
                if code == 0:
                    return
            except Stalled as e:
                raise RegistryError(
                    f"{operation} {where} stopped: the registry sent and took nothing for "
                    f"{e.seconds:.0f} s (attempt {attempt} of {attempts}).",
                    f"Try: check that the registry answers (curl http://REGISTRY/v2/); a slow "
                    f"link may need a longer --registry-timeout or {TIMEOUT_ENV} (now "
                    f"{policy.stall_timeout:.0f} s).",
                ) from None
            failure = classify(tail(logfile, 30))
            if not failure.transient or attempt == attempts:
                raise explain(
                    operation, where, failure, attempt, lookup=lookup, write=write, trust=trust
                )
            wait = policy.delay(attempt)
            log.warning(
                "%s %s: %s (attempt %d of %d); retrying in %.1f s",
                operation,
                where,
                failure.reason,
                attempt,
                attempts,
                wait,
            )
            sleep(wait)


GIVEN = "the credentials given"  # a Credential's source when the user gave it to this command


def access_refused(
    operation: str,
    where: str,
    status: int | None,
    lookup: Lookup | None,
    *,
    write: bool,
    not_permitted: bool,
) -> RegistryAccessError:
    """A 401 or 403: no credentials (and where they were looked for), credentials refused
    (and where they came from), or an account that may not do this."""
    registry = where.split("/", 1)[0]
    repository = re.split(r"[:@]", where.split("/", 1)[-1], maxsplit=1)[0]
    code = f" (HTTP {status})" if status else ""
    cred = lookup.credential if lookup else None
    if cred is not None and not_permitted:
        who = f"the account {cred.username!r}" if cred.username else "the identity token"
        verb = "push to" if write else "pull from"
        return RegistryAccessError(
            f"{operation} {where} was refused{code}: {who} (from {cred.source}) may not "
            f"{verb} {repository}.",
            f"Try: ask the registry's administrators to let it {verb.split(maxsplit=1)[0]} "
            f"{repository}, or use an account that may.",
        )
    if cred is not None:
        who = f"user {cred.username!r}" if cred.username else "an identity token"
        again = (
            f"log in again through {cred.source.split(',')[0]}"
            if cred.source.startswith("docker-credential-")
            else "check the user name and the password (or token) given"
            if cred.source == GIVEN
            else f"skopeo login {registry} again"
        )
        return RegistryAccessError(
            f"{operation} {where} was refused{code}: the registry did not accept the "
            f"credentials ({who}) from {cred.source}.",
            f"Try: {again} (the password or token may have changed or expired); cairn "
            "reads what skopeo reads.",
        )
    looked = ", ".join(lookup.looked_in) if lookup else "skopeo's auth files"
    return RegistryAccessError(
        f"{operation} {where} was refused{code}: the registry wants credentials, and none "
        f"for {registry} were found in {looked}.",
        f"Try: skopeo login {registry} (or docker login), a credHelpers entry in "
        "~/.docker/config.json, or REGISTRY_AUTH_FILE naming a file of the job's own.",
    )


def token_service_failed(
    operation: str, where: str, url: str, reason: str, attempts: int
) -> RegistryError:
    tried = f" after {attempts} attempts" if attempts > 1 else ""
    return RegistryError(
        f"{operation} {where} failed{tried}: the registry sends clients to its token "
        f"service at {printable(url, 200)}, which failed: {printable(reason, 300)}.",
        "Try: check that the token service runs and answers (it is the registry's own; ask "
        f"whoever runs {where.split('/', 1)[0]}).",
    )


def explain(
    operation: str,
    where: str,
    failure: Failure,
    attempts: int,
    *,
    lookup: Lookup | None = None,
    write: bool = False,
    trust: HostTrust | None = None,
) -> CairnError:
    """The message for a final failure: what the registry said (escaped: it is the
    registry's text) and what to do about it."""
    said = printable(failure.text.strip(), 4000, lines=True)
    tried = f" after {attempts} attempts" if attempts > 1 else ""
    registry = where.split("/", 1)[0]
    if "server gave HTTP response to HTTPS client" in said:
        return RegistryError(
            f"{operation} {where} failed: the registry speaks plain HTTP.",
            "Try: --plain-http, for a registry you trust on a private network.",
        )
    client = _CLIENT_CERTIFICATE.search(said)
    if client and failure.status is None:
        return client_certificate_refused(registry, trust, client.group(0))
    certificate = _CERTIFICATE.search(said)
    if certificate and failure.status is None:
        return untrusted_certificate(registry, trust, certificate.group(0).strip())
    if failure.status in (401, 403) or (failure.status is None and _CREDENTIALS.search(said)):
        denied = failure.status == 403 or bool(_SCOPE_DENIED.search(said))
        error = access_refused(
            operation, where, failure.status, lookup, write=write, not_permitted=denied
        )
        if lookup is None:
            error.message += f"\n{said}"
        return error
    if failure.status == 404 or (failure.status is None and _NOT_FOUND.search(said)):
        return RegistryError(
            f"{operation} {where} failed: the registry has no such repository or tag:\n{said}",
            "Try: check the name and tag (skopeo list-tags docker://REGISTRY/REPO).",
        )
    if re.search(r"connection refused", said, re.IGNORECASE):
        return RegistryError(
            f"{operation} {where} failed: nothing accepts connections at {registry}{tried}.",
            "Try: check the registry's address and port, and that it is running.",
        )
    if failure.transient:
        return RegistryError(
            f"{operation} {where} failed{tried}, the last time with {failure.reason}:\n{said}",
            "Try: again later, or ask whoever runs the registry; "
            f"{RETRIES_ENV} sets how often cairn tries.",
        )
    return RegistryError(f"{operation} {where} failed; skopeo said:\n{said}")
