"""Debian's docker-registry (distribution 2.8) on 127.0.0.1, secured as teams run it.

Every registry here serves TLS with a certificate from a private CA made for it (for
127.0.0.1 and localhost). On top of that, one of:

- `tls_htpasswd_registry`: HTTP Basic auth from an htpasswd file (bcrypt);
- `token_registry`: Bearer tokens from a token service of our own, run in a thread over
  HTTPS (a certificate from the same CA): the Docker token protocol (GET with Basic auth,
  OAuth2 POST with a password or a refresh token), RS256 JWTs that the registry checks
  against the signing key's certificate;
- `mtls_registry`: client certificates issued by the CA, and nothing else.

Each context manager stops what it started however the block ends: the registry's
process group, the token service's thread and port.
"""

from __future__ import annotations

import base64
import contextlib
import ctypes
import ctypes.util
import datetime
import hashlib
import importlib
import ipaddress
import json
import os
import re
import secrets
import shutil
import signal
import socket
import ssl
import subprocess
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import yaml
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.types import PublicKeyTypes
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

CERT_DAYS = 30
BCRYPT_COST = 5  # htpasswd -B's default; the registry checks it on every request
TOKEN_SERVICE = "cairn-test-registry"  # the registry's name to the token service (`aud`)
TOKEN_ISSUER = "cairn-test-token-service"  # `iss` in the tokens, as the registry expects
ACCESS = {"push": ("pull", "push"), "pull": ("pull",)}


# -- certificates --------------------------------------------------------------------


@dataclass(frozen=True)
class TlsFiles:
    """The PEM files a secured registry's TLS uses, all under one directory."""

    ca_cert: Path
    ca_key: Path
    server_cert: Path  # for 127.0.0.1 and localhost, issued by the CA
    server_key: Path
    client_cert: Path  # a client certificate issued by the CA (used by mtls_registry)
    client_key: Path


def _name(common_name: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "cairn tests"),
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
        ]
    )


def _validity(builder: x509.CertificateBuilder) -> x509.CertificateBuilder:
    now = datetime.datetime.now(datetime.UTC)
    return (
        builder.not_valid_before(now - datetime.timedelta(hours=1))
        .not_valid_after(now + datetime.timedelta(days=CERT_DAYS))
        .serial_number(x509.random_serial_number())
    )


def _write_key(path: Path, key: ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey) -> None:
    path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    path.chmod(0o600)


def _write_cert(path: Path, cert: x509.Certificate) -> None:
    path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))


def _key_usage(*, ca: bool) -> x509.KeyUsage:
    """Signing, and for a CA signing certificates and CRLs too."""
    return x509.KeyUsage(
        digital_signature=True,
        content_commitment=False,
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=ca,
        crl_sign=ca,
        encipher_only=False,
        decipher_only=False,
    )


def make_tls_files(d: Path) -> TlsFiles:
    """A private CA (ECDSA P-256), a server certificate with SANs IP:127.0.0.1 and
    DNS:localhost, and a client certificate (clientAuth), written under `d`."""
    d.mkdir(parents=True, exist_ok=True)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = _name("cairn tests CA")
    ca_ski = x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key())
    ca = (
        _validity(x509.CertificateBuilder())
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            _key_usage(ca=True),
            critical=True,
        )
        .add_extension(ca_ski, critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    files = TlsFiles(
        ca_cert=d / "ca.crt",
        ca_key=d / "ca.key",
        server_cert=d / "server.crt",
        server_key=d / "server.key",
        client_cert=d / "client.cert",
        client_key=d / "client.key",
    )
    _write_cert(files.ca_cert, ca)
    _write_key(files.ca_key, ca_key)
    aki = x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ca_ski)
    leaves = (
        ("127.0.0.1", ExtendedKeyUsageOID.SERVER_AUTH, files.server_cert, files.server_key),
        ("cairn test client", ExtendedKeyUsageOID.CLIENT_AUTH, files.client_cert, files.client_key),
    )
    for common_name, usage, cert_path, key_path in leaves:
        key = ec.generate_private_key(ec.SECP256R1())
        builder = (
            _validity(x509.CertificateBuilder())
            .subject_name(_name(common_name))
            .issuer_name(ca_name)
            .public_key(key.public_key())
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(
                _key_usage(ca=False),
                critical=True,
            )
            .add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), False)
            .add_extension(aki, critical=False)
        )
        if usage == ExtendedKeyUsageOID.SERVER_AUTH:
            builder = builder.add_extension(
                x509.SubjectAlternativeName(
                    [
                        x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
                        x509.DNSName("localhost"),
                    ]
                ),
                critical=False,
            )
        _write_cert(cert_path, builder.sign(ca_key, hashes.SHA256()))
        _write_key(key_path, key)
    return files


# -- htpasswd ------------------------------------------------------------------------


def htpasswd_line(user: str, password: str) -> str:
    """`user:bcrypt-hash`, the only format distribution's htpasswd accepts: made by
    apache2-utils' htpasswd if installed, else the bcrypt module, else libcrypt (libxcrypt
    has bcrypt; Python 3.13 has no crypt module, so it is called through ctypes)."""
    if ":" in user:
        raise ValueError(f"htpasswd user names cannot hold ':': {user!r}")
    if shutil.which("htpasswd"):
        res = subprocess.run(
            ["htpasswd", "-n", "-i", "-B", "-C", str(BCRYPT_COST), user],
            input=password,
            capture_output=True,
            text=True,
            check=True,
        )
        return res.stdout.strip()
    with contextlib.suppress(ImportError):
        bcrypt: Any = importlib.import_module("bcrypt")
        hashed = bcrypt.hashpw(password.encode(), bcrypt.gensalt(BCRYPT_COST)).decode()
        return f"{user}:{hashed}"
    name = ctypes.util.find_library("crypt")
    if name is None:
        raise RuntimeError("no way to make bcrypt hashes: install apache2-utils (htpasswd)")
    lib = ctypes.CDLL(name)
    lib.crypt_gensalt.restype = ctypes.c_char_p
    lib.crypt_gensalt.argtypes = [ctypes.c_char_p, ctypes.c_ulong, ctypes.c_char_p, ctypes.c_int]
    lib.crypt.restype = ctypes.c_char_p
    lib.crypt.argtypes = [ctypes.c_char_p, ctypes.c_char_p]
    salt = lib.crypt_gensalt(b"$2b$", BCRYPT_COST, None, 0)
    hashed_bytes = lib.crypt(password.encode(), salt) if salt else None
    if not hashed_bytes or not hashed_bytes.startswith(b"$2b$"):
        raise RuntimeError("libcrypt made no bcrypt hash: install apache2-utils (htpasswd)")
    return f"{user}:{hashed_bytes.decode()}"


# -- tokens --------------------------------------------------------------------------


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def libtrust_key_id(key: PublicKeyTypes) -> str:
    """The key id distribution 2.8 looks a token's `kid` up by (docker/libtrust): the first
    240 bits of SHA-256 of the DER SubjectPublicKeyInfo, base32 without padding, in 12
    groups of 4 joined by ':'."""
    der = key.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    b32 = base64.b32encode(hashlib.sha256(der).digest()[:30]).decode().rstrip("=")
    return ":".join(b32[i : i + 4] for i in range(0, len(b32), 4))


def jwt_parts(token: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """A JWT's header and claims, unverified (for tests to look at what was issued)."""
    header, claims, _ = token.split(".")

    def load(part: str) -> dict[str, Any]:
        data: dict[str, Any] = json.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)))
        return data

    return load(header), load(claims)


@dataclass(frozen=True)
class TokenRequest:
    """One request to the token service, as it answered it."""

    method: str  # GET or POST
    user: str  # who asked ("" anonymous); the name given even when refused
    scopes: tuple[str, ...]  # the scopes asked for, as sent
    grant: str  # "basic", "anonymous", "password", "refresh_token", or what was sent
    status: int
    granted: tuple[str, ...] = ()  # what the token allows, as "repository:NAME:ACTIONS"


def _parse_scope(scope: str) -> tuple[str, str, tuple[str, ...]] | None:
    """`type:name:actions` (the name may hold ':'), or None."""
    kind, _, rest = scope.partition(":")
    name, _, actions = rest.rpartition(":")
    if not kind or not name:
        return None
    return kind, name, tuple(a for a in actions.split(",") if a)


class TokenService:
    """A Docker token service over HTTPS on 127.0.0.1, serving in a thread.

    GET /token?service=&scope=... with Basic auth (or none: anonymous, who may do nothing),
    `offline_token=true` adds a refresh token; POST /token, a form with grant_type
    `password` (username, password, access_type=offline for a refresh token) or
    `refresh_token` (refresh_token), service, scope and client_id (required, as OAuth2
    servers do). Wrong credentials: 401. Tokens are RS256 JWTs whose `kid` is the signing
    key's libtrust id; `signing_cert` is the registry's rootcertbundle.
    """

    def __init__(
        self,
        d: Path,
        tls: TlsFiles,
        accounts: dict[str, tuple[str, str]],
        token_seconds: int = 300,
    ) -> None:
        for user, (_, access) in accounts.items():
            if access not in ACCESS:
                raise ValueError(f"{user}: access must be one of {sorted(ACCESS)}: {access!r}")
        d.mkdir(parents=True, exist_ok=True)
        self.accounts = dict(accounts)
        # Lifetime of the tokens minted from now on; may be changed while running.
        # distribution accepts a token up to 60 s after its `exp` (its Leeway): a negative
        # value (< -60) mints tokens the registry already refuses.
        self.token_seconds = token_seconds
        self.service = TOKEN_SERVICE
        self.issuer = TOKEN_ISSUER
        self._key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.kid = libtrust_key_id(self._key.public_key())
        name = _name("cairn test token signer")
        cert = (
            _validity(x509.CertificateBuilder())
            .subject_name(name)
            .issuer_name(name)
            .public_key(self._key.public_key())
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .sign(self._key, hashes.SHA256())
        )
        self.signing_cert = d / "signing.crt"
        _write_cert(self.signing_cert, cert)
        _write_key(d / "signing.key", self._key)
        self._refresh = {f"cairn-refresh-{secrets.token_urlsafe(24)}": u for u in accounts}
        self._tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self._tls.load_cert_chain(tls.server_cert, tls.server_key)
        self._lock = threading.Lock()
        self._log: list[TokenRequest] = []
        self._fail_status: int | None = None
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self.port = 0

    @property
    def url(self) -> str:
        return f"https://127.0.0.1:{self.port}/token"

    # life cycle

    def start(self) -> None:
        """Listen (on the same port as before, after a stop) and serve in a thread."""
        server = _QuietServer(("127.0.0.1", self.port), _token_handler(self))
        server.socket = self._tls.wrap_socket(
            server.socket, server_side=True, do_handshake_on_connect=False
        )
        self.port = server.server_address[1]
        self._server = server
        self._thread = threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True
        )
        self._thread.start()

    def stop(self) -> None:
        """Stop serving and close the port: connections are refused until start()."""
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self._thread is not None:
            self._thread.join(10)
            self._thread = None

    @contextlib.contextmanager
    def running(self) -> Iterator[TokenService]:
        self.start()
        try:
            yield self
        finally:
            self.stop()

    @contextlib.contextmanager
    def down(self) -> Iterator[None]:
        """The service stopped (connections refused) for the block, then back."""
        self.stop()
        try:
            yield
        finally:
            self.start()

    @contextlib.contextmanager
    def failing(self, status: int = 503) -> Iterator[None]:
        """Every request answered with `status` for the block."""
        self._fail_status = status
        try:
            yield
        finally:
            self._fail_status = None

    # what tests read

    def requests(self) -> list[TokenRequest]:
        with self._lock:
            return list(self._log)

    def identity_token(self, user: str) -> str:
        """The refresh (identity) token standing for `user` in grant_type=refresh_token."""
        return next(t for t, u in self._refresh.items() if u == user)

    # issuing

    def allowed(self, user: str, scopes: list[str]) -> list[dict[str, Any]]:
        """The `access` claim for `user` ("" anonymous: nothing) asking for `scopes`."""
        may = set(ACCESS[self.accounts[user][1]]) if user else set()
        merged: dict[tuple[str, str], list[str]] = {}
        for scope in scopes:
            parsed = _parse_scope(scope)
            if parsed is None or parsed[0] != "repository":
                continue
            _, name, actions = parsed
            got = merged.setdefault(("repository", name), [])
            got.extend(a for a in actions if a in may and a not in got)
        return [
            {"type": kind, "name": name, "actions": actions}
            for (kind, name), actions in merged.items()
            if actions
        ]

    def mint(self, user: str, access: list[dict[str, Any]]) -> tuple[str, int, int]:
        """A signed token for `user` with `access`: (token, issued at, expires in)."""
        now = int(time.time())
        header = {"typ": "JWT", "alg": "RS256", "kid": self.kid}
        claims = {
            "iss": self.issuer,
            "sub": user,
            "aud": self.service,
            "exp": now + self.token_seconds,
            "nbf": now,
            "iat": now,
            "jti": uuid.uuid4().hex,
            "access": access,
        }
        signing_input = ".".join(
            _b64url(json.dumps(part, separators=(",", ":")).encode()) for part in (header, claims)
        )
        signature = self._key.sign(signing_input.encode(), padding.PKCS1v15(), hashes.SHA256())
        return f"{signing_input}.{_b64url(signature)}", now, max(self.token_seconds, 0)

    def record(self, entry: TokenRequest) -> None:
        with self._lock:
            self._log.append(entry)

    def fail_status(self) -> int | None:
        return self._fail_status

    def check_password(self, user: str, password: str) -> bool:
        known = self.accounts.get(user)
        return known is not None and secrets.compare_digest(known[0], password)

    def refresh_user(self, token: str) -> str | None:
        return self._refresh.get(token)


class _QuietServer(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # handshakes clients give up on (no CA, say) are theirs to report


def _iso(seconds: int) -> str:
    return datetime.datetime.fromtimestamp(seconds, datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _token_handler(service: TokenService) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        # HTTP/1.0: one request a connection, so a stopped service keeps nothing open
        timeout = 10

        def setup(self) -> None:
            super().setup()
            if isinstance(self.connection, ssl.SSLSocket):
                self.connection.do_handshake()

        def log_message(self, format: str, *args: object) -> None:
            pass

        def _send(self, status: int, body: dict[str, Any], basic: bool = False) -> None:
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            if basic:
                self.send_header("WWW-Authenticate", 'Basic realm="cairn test token service"')
            self.end_headers()
            self.wfile.write(data)

        def _refuse(self, entry: TokenRequest, status: int, body: dict[str, Any]) -> None:
            service.record(entry)
            self._send(status, body, basic=status == 401)

        def _path_ok(self) -> bool:
            if urlsplit(self.path).path.rstrip("/") == "/token":
                failing = service.fail_status()
                if failing is None:
                    return True
                self._send(failing, {"details": "token service failing (test)"})
            else:
                self._send(404, {"details": "not found"})
            return False

        def do_GET(self) -> None:
            if not self._path_ok():
                return
            query = parse_qs(urlsplit(self.path).query)
            scopes = [s for v in query.get("scope", []) for s in v.split(" ") if s]
            user, password, grant = "", "", "anonymous"
            header = self.headers.get("Authorization", "")
            if header:
                kind, _, value = header.partition(" ")
                try:
                    user, _, password = base64.b64decode(value).decode().partition(":")
                except ValueError:
                    kind = "unreadable"
                grant = "basic"
                if kind.lower() != "basic" or not service.check_password(user, password):
                    self._refuse(
                        TokenRequest("GET", user, tuple(scopes), grant, 401),
                        401,
                        {"details": "incorrect username or password"},
                    )
                    return
            if query.get("service", [""])[0] != service.service:
                self._refuse(
                    TokenRequest("GET", user, tuple(scopes), grant, 400),
                    400,
                    {"details": f"unknown service: {query.get('service', [''])[0]!r}"},
                )
                return
            offline = query.get("offline_token", [""])[0].lower() == "true" and user
            self._issue("GET", user, scopes, grant, refresh=bool(offline))

        def _body(self) -> bytes:
            """The request's body, sent with a length or chunked (as Go's clients send a
            body they do not know the length of, containers/image's OAuth2 form among
            them); at most 64 KiB."""
            if "chunked" not in self.headers.get("Transfer-Encoding", "").lower():
                return self.rfile.read(min(int(self.headers.get("Content-Length") or 0), 1 << 16))
            chunks = b""
            while len(chunks) < 1 << 16:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    self.rfile.readline()
                    break
                chunks += self.rfile.read(size)
                self.rfile.readline()
            return chunks

        def do_POST(self) -> None:
            if not self._path_ok():
                return
            body = self._body().decode(errors="replace")
            form = parse_qs(body)

            def one(key: str) -> str:
                return form.get(key, [""])[0]

            scopes = [s for v in form.get("scope", []) for s in v.split(" ") if s]
            grant = one("grant_type")
            entry = TokenRequest("POST", one("username"), tuple(scopes), grant, 400)
            content_type = self.headers.get("Content-Type", "").split(";")[0].strip()
            if content_type != "application/x-www-form-urlencoded":
                self._refuse(entry, 400, {"error": "invalid_request"})
                return
            if not one("client_id"):
                self._refuse(
                    entry,
                    400,
                    {"error": "invalid_request", "error_description": "client_id missing"},
                )
                return
            if one("service") != service.service:
                self._refuse(
                    entry,
                    400,
                    {"error": "invalid_request", "error_description": "unknown service"},
                )
                return
            if grant == "password":
                user = one("username")
                if not service.check_password(user, one("password")):
                    self._refuse(
                        TokenRequest("POST", user, tuple(scopes), grant, 401),
                        401,
                        {"error": "invalid_grant", "error_description": "wrong password"},
                    )
                    return
                offline = one("access_type") == "offline"
                self._issue("POST", user, scopes, grant, refresh=offline)
            elif grant == "refresh_token":
                found = service.refresh_user(one("refresh_token"))
                if found is None:
                    self._refuse(
                        entry,
                        401,
                        {"error": "invalid_grant", "error_description": "unknown refresh token"},
                    )
                    return
                self._issue("POST", found, scopes, grant, refresh=True)
            else:
                self._refuse(entry, 400, {"error": "unsupported_grant_type"})

        def _issue(
            self, method: str, user: str, scopes: list[str], grant: str, refresh: bool
        ) -> None:
            access = service.allowed(user, scopes)
            token, issued, expires_in = service.mint(user, access)
            granted = tuple(f"{a['type']}:{a['name']}:{','.join(a['actions'])}" for a in access)
            service.record(TokenRequest(method, user, tuple(scopes), grant, 200, granted))
            answer: dict[str, Any]
            if method == "GET":
                answer = {"token": token, "access_token": token}
            else:  # OAuth2's answer has access_token only
                answer = {"access_token": token, "token_type": "Bearer", "scope": " ".join(granted)}
            answer |= {"expires_in": expires_in, "issued_at": _iso(issued)}
            if refresh:
                answer["refresh_token"] = service.identity_token(user)
            self._send(200, answer)

    return Handler


# -- the registries ------------------------------------------------------------------


@dataclass(frozen=True)
class SecureRegistry:
    """A running secured registry: where it is and what a client needs to reach it."""

    address: str  # 127.0.0.1:PORT
    ca_cert: Path  # PEM of the CA that issued the server (and client) certificates
    log: Path  # the registry's output, access log included
    client_cert: Path | None = None  # mtls_registry only: PEM client certificate
    client_key: Path | None = None  # ... and its key (PKCS#8 PEM)
    token_service: TokenService | None = field(default=None, repr=False)

    @property
    def url(self) -> str:
        return f"https://{self.address}"

    def requests(self) -> list[str]:
        """The registry's access log so far: one "METHOD PATH" per request."""
        return access_log(self.log)

    def ssl_context(self) -> ssl.SSLContext:
        """A client context trusting the CA, presenting the client certificate if any."""
        ctx = ssl.create_default_context(cafile=str(self.ca_cert))
        if self.client_cert and self.client_key:
            ctx.load_cert_chain(self.client_cert, self.client_key)
        return ctx

    def _tokens(self) -> TokenService:
        if self.token_service is None:
            raise AttributeError(f"the registry at {self.address} has no token service")
        return self.token_service

    @property
    def token_url(self) -> str:
        """The token service's realm, https://127.0.0.1:PORT/token."""
        return self._tokens().url

    def token_requests(self) -> list[TokenRequest]:
        """The token service's requests so far, in order."""
        return self._tokens().requests()

    def identity_token(self, user: str) -> str:
        """An opaque refresh token (what `docker login` stores as an identity token)
        the token service takes for `user` in grant_type=refresh_token."""
        return self._tokens().identity_token(user)

    def token_service_down(self) -> contextlib.AbstractContextManager[None]:
        """For the block, the token service's port is closed (connections refused)."""
        return self._tokens().down()

    def token_service_failing(self, status: int = 503) -> contextlib.AbstractContextManager[None]:
        """For the block, the token service answers every request with `status`."""
        return self._tokens().failing(status)


def certs_d(root: Path, reg: SecureRegistry) -> Path:
    """`root/HOST:PORT` laid out as containers-certs.d(5) wants it: ca.crt, and for a
    registry with a client certificate client.cert and client.key."""
    host = root / reg.address
    host.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(reg.ca_cert, host / "ca.crt")
    if reg.client_cert and reg.client_key:
        shutil.copyfile(reg.client_cert, host / "client.cert")
        shutil.copyfile(reg.client_key, host / "client.key")
        (host / "client.key").chmod(0o600)
    return host


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def access_log(log: Path) -> list[str]:
    """A registry's access log so far: one "METHOD PATH" per request."""
    out = []
    for line in log.read_text(errors="replace").splitlines():
        m = re.search(r'"(GET|HEAD|POST|PUT|PATCH|DELETE) (\S+) HTTP', line)
        if m:
            out.append(f"{m.group(1)} {m.group(2)}")
    return out


@contextlib.contextmanager
def serve(d: Path, config: dict[str, Any]) -> Iterator[tuple[str, Path]]:
    """Debian's docker-registry with `config` (its http.addr filled in: 127.0.0.1 and a
    free port), storing in `d`: its address and log, for the block."""
    if shutil.which("docker-registry") is None:
        pytest.fail("docker-registry is missing: scripts/setup installs it")
    address = f"127.0.0.1:{free_port()}"
    config = {
        "version": "0.1",
        "log": {"level": "info", "accesslog": {"disabled": False}},
        "storage": {
            "filesystem": {"rootdirectory": str(d / "data")},
            "delete": {"enabled": True},
        },
        **config,
    }
    config["http"] = {**config.get("http", {}), "addr": address}
    (d / "config.yml").write_text(yaml.safe_dump(config, sort_keys=False))
    log = d / "registry.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            ["docker-registry", "serve", str(d / "config.yml")],
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                with socket.create_connection(("127.0.0.1", int(address.split(":")[1])), 1):
                    break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    pytest.fail(f"docker-registry did not start:\n{log.read_text()[-3000:]}")
                time.sleep(0.2)
        yield address, log
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


@contextlib.contextmanager
def _running(
    d: Path, tls: TlsFiles, auth: dict[str, Any] | None, client_certs: bool = False
) -> Iterator[tuple[str, Path]]:
    """docker-registry serving TLS on 127.0.0.1 with `auth`, storing in `d`: its address
    and log."""
    http_tls: dict[str, Any] = {"certificate": str(tls.server_cert), "key": str(tls.server_key)}
    if client_certs:
        http_tls["clientcas"] = [str(tls.ca_cert)]
    config: dict[str, Any] = {"http": {"tls": http_tls}}
    if auth:
        config["auth"] = auth
    with serve(d, config) as running:
        yield running


@contextlib.contextmanager
def tls_htpasswd_registry(d: Path, users: dict[str, str]) -> Iterator[SecureRegistry]:
    """TLS from a private CA and Basic auth for `users` (name -> password, bcrypt in an
    htpasswd file); realm "cairn test registry"."""
    d.mkdir(parents=True, exist_ok=True)
    tls = make_tls_files(d / "tls")
    htpasswd = d / "htpasswd"
    htpasswd.write_text("".join(f"{htpasswd_line(u, p)}\n" for u, p in users.items()))
    auth = {"htpasswd": {"realm": "cairn test registry", "path": str(htpasswd)}}
    with _running(d, tls, auth) as (address, log):
        yield SecureRegistry(address, tls.ca_cert, log)


@contextlib.contextmanager
def token_registry(
    d: Path, accounts: dict[str, tuple[str, str]], token_seconds: int = 300
) -> Iterator[SecureRegistry]:
    """TLS from a private CA and Bearer tokens from a token service over HTTPS (same CA)
    for `accounts` (name -> (password, "push" | "pull")); anonymous clients get tokens
    allowing nothing. Tokens live `token_seconds` (distribution adds 60 s of leeway)."""
    d.mkdir(parents=True, exist_ok=True)
    tls = make_tls_files(d / "tls")
    service = TokenService(d / "token", tls, accounts, token_seconds)
    with service.running():
        auth = {
            "token": {
                "realm": service.url,
                "service": service.service,
                "issuer": service.issuer,
                "rootcertbundle": str(service.signing_cert),
            }
        }
        with _running(d, tls, auth) as (address, log):
            yield SecureRegistry(address, tls.ca_cert, log, token_service=service)


@contextlib.contextmanager
def mtls_registry(d: Path) -> Iterator[SecureRegistry]:
    """TLS from a private CA that also requires a client certificate issued by it (the
    fixture's: `client_cert`, `client_key`); no other auth."""
    d.mkdir(parents=True, exist_ok=True)
    tls = make_tls_files(d / "tls")
    with _running(d, tls, None, client_certs=True) as (address, log):
        yield SecureRegistry(
            address, tls.ca_cert, log, client_cert=tls.client_cert, client_key=tls.client_key
        )
