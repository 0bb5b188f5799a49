"""How cairn talks to a registry host: one answer, for skopeo and for cairn's own client.

Every part of cairn that reaches a registry asks `Access.host(HOST)`: the scheme (HTTPS,
or plain HTTP where that was allowed and the host speaks no TLS), the certificates
(cairn.oci.certs) and the credentials of each repository (cairn.oci.credentials). skopeo
is handed exactly that, as a certificate directory and an auth file of one entry in
cairn's scratch, so it cannot read anything cairn did not; messages name what was read.

Plain HTTP and unchecked certificates are two explicit choices, never one implied by the
other: `--plain-http` lets a host that speaks no TLS be spoken to in the clear (a host
that does speak TLS still has its certificate checked), and `--tls-verify=false`
(`--no-tls-verify`) speaks TLS without checking the certificate. A registry on this
machine (localhost, 127.0.0.1) may speak plain HTTP without the option, as Docker allows.
"""

from __future__ import annotations

import http.client
import json
import os
import re
import ssl
import threading
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from cairn.oci import certs, credentials
from cairn.oci.certs import HostTrust
from cairn.oci.credentials import Lookup
from cairn.oci.reference import is_local

PROBE_TIMEOUT = 30.0
# how OpenSSL (3.0 on Debian 12, 3.5 on 13) says a server answered its handshake in plain
# HTTP: a definite answer, not a time-out or a reset
NOT_TLS = ("WRONG_VERSION_NUMBER", "RECORD_LAYER_FAILURE", "PACKET_LENGTH_TOO_LONG",
           "UNKNOWN_PROTOCOL", "HTTP_REQUEST")  # fmt: skip


@dataclass(frozen=True)
class AccessOptions:
    """What the command line allowed: plain HTTP, unchecked TLS, an extra CA."""

    plain_http: bool = False
    tls_verify: bool = True
    ca_file: Path | None = None

    @classmethod
    def from_options(
        cls, *, plain_http: bool = False, tls_verify: bool = True, ca_file: Path | None = None
    ) -> AccessOptions:
        """The options, with the CA file from $CAIRN_REGISTRY_CA_FILE when none is given."""
        return cls(plain_http, tls_verify, certs.ca_file(ca_file))


_CLIENT_CERT_ALERTS = ("BAD_CERTIFICATE", "CERTIFICATE_REQUIRED", "UNKNOWN_CA")


def _cause(error: BaseException) -> BaseException | object:
    """urllib's URLError wraps the error in `reason` (ssl.SSLError's own `reason` is text)."""
    return error.reason if isinstance(error, urllib.error.URLError) else error


def is_certificate_failure(error: BaseException) -> str | None:
    """What was wrong with the certificate, when `error` is a failed TLS verification."""
    reason = _cause(error)
    if isinstance(reason, ssl.SSLCertVerificationError):
        return str(reason.verify_message or reason)
    return None


def is_client_certificate_refusal(error: BaseException) -> str | None:
    """The TLS alert, when the server refused the handshake for want of a client
    certificate (or for the one it was given)."""
    reason = _cause(error)
    if isinstance(reason, ssl.SSLError) and not isinstance(reason, ssl.SSLCertVerificationError):
        text = str(reason.reason or reason)
        if any(alert in text for alert in _CLIENT_CERT_ALERTS):
            return text
    return None


@dataclass
class HostAccess:
    """One registry host, as the options and this machine's files say to reach it."""

    host: str
    options: AccessOptions
    trust: HostTrust
    _scheme: str | None = None
    _context: ssl.SSLContext | None = None
    _lookups: dict[str, Lookup] = field(default_factory=dict)
    _asking: threading.Lock = field(default_factory=threading.Lock)  # threads share a host

    @property
    def plain_http_allowed(self) -> bool:
        return self.options.plain_http or is_local(self.host)

    def context(self) -> ssl.SSLContext:
        if self._context is None:  # made once: loading the CA store takes 30 ms
            self._context = self.trust.context(self.options.tls_verify)
        return self._context

    def scheme(self) -> str:
        """https, or http when plain HTTP is allowed and the host speaks no TLS (asked once).
        A host that speaks TLS is never spoken to in the clear, whatever its certificate."""
        with self._asking:
            if self._scheme is None:
                plain = self.plain_http_allowed and not self._speaks_tls()
                self._scheme = "http" if plain else "https"
            return self._scheme

    def _speaks_tls(self) -> bool:
        req = urllib.request.Request(f"https://{self.host}/v2/", method="GET")
        try:
            with urllib.request.urlopen(req, timeout=PROBE_TIMEOUT, context=self.context()):
                return True
        except urllib.error.HTTPError:
            return True  # TLS works; the registry answered (401 wants credentials)
        except (urllib.error.URLError, OSError, http.client.HTTPException) as e:
            if is_certificate_failure(e):
                return True  # TLS spoken; the certificate is judged when it is used
            # only a definite answer in plain HTTP to the TLS handshake ("wrong version
            # number") means plain HTTP: a time-out or a reset (which anyone on the path
            # can cause) never downgrades; the real request then says what is wrong
            reason = e.reason if isinstance(e, urllib.error.URLError) else e
            said = str(reason)
            return not (isinstance(reason, ssl.SSLError) and any(m in said for m in NOT_TLS))

    def credential(self, repository: str) -> Lookup:
        """The credentials for REGISTRY/REPO (looked up once per repository)."""
        if repository not in self._lookups:
            self._lookups[repository] = credentials.find(repository)
        return self._lookups[repository]

    def skopeo_options(
        self, side: Literal["src", "dest", ""], repository: str, scratch: Path
    ) -> list[str]:
        """skopeo's options for one end of a copy (or an inspect, with side ""): the
        certificate directory, the auth file and TLS verification, all as cairn sees them."""
        prefix = f"--{side}-" if side else "--"
        where = scratch / f"{side or 'registry'}-access"
        where.mkdir(mode=0o700)
        cert_dir = self.trust.skopeo_dir(where / "certs")
        lookup = self.credential(repository)
        entries = {}
        if lookup.credential is not None:
            entries[repository] = lookup.credential.auth_entry()
        authfile = where / "auth.json"
        fd = os.open(authfile, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump({"auths": entries}, f)
        opts = [f"{prefix}cert-dir={cert_dir}", f"{prefix}authfile={authfile}"]
        if self.scheme() == "http" or not self.options.tls_verify:
            opts.append(f"{prefix}tls-verify=false")
        return opts


def repository_of(target: str) -> str:
    """HOST/REPO[:TAG|@DIGEST] (or docker://…) -> HOST/REPO."""
    host, _, path = target.removeprefix("docker://").partition("/")
    return f"{host}/{re.split(r'[:@]', path, maxsplit=1)[0]}"


@dataclass
class Access:
    """The hosts of one command, each resolved once."""

    # the environment's CA file (CAIRN_REGISTRY_CA_FILE) where no option says otherwise
    options: AccessOptions = field(default_factory=AccessOptions.from_options)
    _hosts: dict[str, HostAccess] = field(default_factory=dict)

    def host(self, host: str) -> HostAccess:
        if host not in self._hosts:
            trust = certs.host_trust(host, self.options.ca_file)
            self._hosts[host] = HostAccess(host, self.options, trust)
        return self._hosts[host]

    def of(self, repository: str) -> HostAccess:
        """The host of REGISTRY/REPO."""
        return self.host(repository.removeprefix("docker://").split("/", 1)[0])
