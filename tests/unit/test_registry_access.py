"""How cairn reaches a registry host: which credential file, key and helper answer, which
certificates are trusted, what skopeo is handed, and which signatures go where.

That skopeo and real registries (TLS from a private CA, htpasswd, token auth, mutual TLS)
agree is shown by tests/integration/test_registry_access.py; these check the rules."""

from __future__ import annotations

import base64
import contextlib
import hashlib
import http.server
import json
import time
import urllib.parse
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric import ec

from cairn.errors import CairnError, RegistryAccessError, UsageError
from cairn.oci import certs, credentials
from cairn.oci.access import Access, AccessOptions, repository_of
from cairn.oci.attachments import signatures_for, signed_identity
from cairn.oci.credentials import AuthFile, auth_files, find, keys_for
from cairn.oci.distribution import Registry
from cairn.oci.registry import Failure, RetryPolicy, explain
from cairn.trust import keys
from cairn.trust.signing import sign_images
from tests.helpers import http_server, layout_with


def basic(user: str, password: str) -> str:
    return base64.b64encode(f"{user}:{password}".encode()).decode()


def write(path: Path, doc: object) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(doc))
    return path


def test_auth_files_in_containers_auth_json_order(tmp_path: Path) -> None:
    home = str(tmp_path / "home")
    assert auth_files({"HOME": home}, uid=1000) == [
        AuthFile(Path("/run/containers/1000/auth.json")),  # skopeo login without a session
        AuthFile(Path(home) / ".config/containers/auth.json"),
        AuthFile(Path(home) / ".docker/config.json"),
        AuthFile(Path(home) / ".dockercfg", legacy=True),
    ]
    env = {
        "HOME": home,
        "XDG_RUNTIME_DIR": "/run/user/1000",
        "XDG_CONFIG_HOME": "/cfg",
        "DOCKER_CONFIG": "/dock",
    }
    assert [a.path for a in auth_files(env, uid=1000)][:3] == [
        Path("/run/user/1000/containers/auth.json"),
        Path("/cfg/containers/auth.json"),
        Path("/dock/config.json"),
    ]
    # REGISTRY_AUTH_FILE takes the first place (as skopeo's --authfile default)
    env["REGISTRY_AUTH_FILE"] = "/job/auth.json"  # alone, as skopeo's --authfile
    assert auth_files(env, uid=1000) == [AuthFile(Path("/job/auth.json"))]


def test_the_first_file_and_the_most_specific_key_win(tmp_path: Path) -> None:
    env = {"HOME": str(tmp_path), "XDG_RUNTIME_DIR": str(tmp_path / "run")}
    write(
        tmp_path / "run/containers/auth.json",
        {
            "auths": {
                "reg.example": {"auth": basic("host", "h")},
                "reg.example/team": {"auth": basic("team", "t")},
                "reg.example/team/base": {"auth": basic("repo", "r")},
                "scoped.example/team": {"auth": basic("scoped", "s")},
            }
        },
    )
    write(tmp_path / ".docker/config.json", {"auths": {"other.example": {"auth": basic("d", "x")}}})
    assert keys_for("reg.example/team/base") == [
        "reg.example/team/base",
        "reg.example/team",
        "reg.example",
    ]
    for repository, user in [
        ("reg.example/team/base", "repo"),
        ("reg.example/team/python", "team"),
        ("reg.example/other/base", "host"),
        ("other.example/x", "d"),
    ]:
        found = find(repository, env).credential
        assert found is not None and found.username == user, repository
    found = find("reg.example/team/base", env).credential
    assert (
        found is not None
        and found.source == f"{tmp_path / 'run/containers/auth.json'} (auths reg.example/team/base)"
    )
    # the secret is never in the credential's repr (logs, tracebacks)
    assert "r'" not in repr(found) and "secret" not in repr(found)
    # a namespace's login is that namespace's only
    assert find("scoped.example/other/x", env).credential is None
    missing = find("nowhere.example/x", env)
    assert missing.credential is None
    assert missing.looked_in[0] == str(tmp_path / "run/containers/auth.json")
    assert len(missing.looked_in) == 4


def test_url_keys_identity_tokens_and_broken_files(tmp_path: Path) -> None:
    env = {"HOME": str(tmp_path), "REGISTRY_AUTH_FILE": str(tmp_path / "a.json")}
    write(tmp_path / "a.json", {"auths": {"https://old.example/v1/": {"auth": basic("u", "p")}}})
    old = find("old.example/x", env).credential
    assert old is not None and old.username == "u"
    write(tmp_path / "a.json", {"auths": {"tok.example": {"identitytoken": "refresh-1"}}})
    token = find("tok.example/x", env).credential
    assert token is not None and token.identity_token and token.secret == "refresh-1"
    # handed to skopeo as docker writes it: containers/image wants an `auth` beside it
    assert token.auth_entry() == {"auth": basic("", ""), "identitytoken": "refresh-1"}
    # Docker Hub's names are one; an entry with no colon is skipped, as docker does
    hub_key = "https://index.docker.io/v1/"
    write(tmp_path / "a.json", {"auths": {hub_key: {"auth": basic("h", "p")}}})
    hub = find("docker.io/library/debian", env).credential
    assert hub is not None and hub.username == "h"
    write(tmp_path / "a.json", {"auths": {"odd.example": {"auth": "bm9jb2xvbg=="}}})
    assert find("odd.example/x", env).credential is None
    write(tmp_path / "a.json", {"auths": {"bad.example": {"auth": "not base64!"}}})
    with pytest.raises(RegistryAccessError, match="not base64"):
        find("bad.example/x", env)
    (tmp_path / "a.json").write_text("{" * 100_000)
    with pytest.raises(RegistryAccessError, match="not valid JSON"):
        find("bad.example/x", env)


def helper_script(bin_dir: Path, name: str, answers: dict[str, tuple[str, str]]) -> None:
    """docker-credential-NAME: `get` answers {Username, Secret} for the hosts it knows."""
    bin_dir.mkdir(parents=True, exist_ok=True)
    script = bin_dir / f"docker-credential-{name}"
    cases = "".join(
        f'  {host}) echo \'{{"ServerURL":"{host}","Username":"{u}","Secret":"{s}"}}\';;\n'
        for host, (u, s) in answers.items()
    )
    script.write_text(
        "#!/bin/sh\n"
        '[ "$1" = get ] || exit 2\nread host\ncase "$host" in\n'
        f"{cases}"
        "  *) echo 'credentials not found in native keychain'; exit 1;;\nesac\n"
    )
    script.chmod(0o755)


def test_credential_helpers_and_stores(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", f"{tmp_path / 'bin'}:/usr/bin:/bin")
    helper_script(tmp_path / "bin", "ecr", {"ecr.example": ("AWS", "ecr-token")})
    helper_script(tmp_path / "bin", "store", {"store.example": ("<token>", "refresh-2")})
    env = {"HOME": str(tmp_path)}
    config = write(
        tmp_path / ".docker/config.json",
        {
            "credHelpers": {"ecr.example": "ecr", "gone.example": "missing"},
            "credsStore": "store",
            "auths": {"file.example": {"auth": basic("f", "p")}},
        },
    )
    ecr = find("ecr.example/team/base", env).credential
    assert ecr is not None and (ecr.username, ecr.secret) == ("AWS", "ecr-token")
    assert ecr.source == f"docker-credential-ecr, named in {config}'s credHelpers"
    stored = find("store.example/x", env).credential
    assert stored is not None and stored.identity_token and stored.secret == "refresh-2"
    # an auths entry comes before the store; a store that knows nothing is no credential
    file_cred = find("file.example/x", env).credential
    assert file_cred is not None and file_cred.username == "f"
    assert find("unknown.example/x", env).credential is None
    with pytest.raises(RegistryAccessError, match="docker-credential-missing is not on PATH"):
        find("gone.example/x", env)


def test_certs_d_first_directory_wins_and_client_pairs(tmp_path: Path) -> None:
    env = {"HOME": str(tmp_path)}
    home_dir = tmp_path / ".config/containers/certs.d/reg.example:5000"
    home_dir.mkdir(parents=True)
    (home_dir / "b.crt").write_text("x")
    (home_dir / "a.crt").write_text("x")
    (home_dir / "me.cert").write_text("x")
    (home_dir / "me.key").write_text("x")
    extra = tmp_path / "extra.pem"
    extra.write_text("x")
    trust = certs.host_trust("reg.example:5000", extra, env)
    assert trust.directory == home_dir
    assert trust.cas == (home_dir / "a.crt", home_dir / "b.crt", extra)
    assert trust.client == (home_dir / "me.cert", home_dir / "me.key")
    assert trust.looked_in == (str(home_dir), str(extra))
    cert_dir = trust.skopeo_dir(tmp_path / "skopeo")
    assert sorted(p.name for p in cert_dir.iterdir()) == [
        "00-a.crt",
        "01-b.crt",
        "02-extra.crt",
        "client.cert",
        "client.key",
    ]
    (home_dir / "me.key").unlink()
    with pytest.raises(UsageError, match="no key"):
        certs.host_trust("reg.example:5000", None, env)
    nothing = certs.host_trust("other.example", None, env)
    assert nothing.cas == () and len(nothing.looked_in) == 3
    with pytest.raises(UsageError, match="not a file"):
        certs.ca_file(None, {certs.CA_FILE_ENV: str(tmp_path / "absent.pem")})


def test_skopeo_is_handed_what_cairn_found(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("REGISTRY_AUTH_FILE", str(tmp_path / "job.json"))
    write(tmp_path / "job.json", {"auths": {"reg.example/team": {"auth": basic("u", "p")}}})
    host = Access(AccessOptions()).of("reg.example/team/base:13")
    opts = host.skopeo_options("dest", "reg.example/team/base", tmp_path)
    authfile = Path(next(o for o in opts if o.startswith("--dest-authfile=")).split("=", 1)[1])
    assert authfile.stat().st_mode & 0o777 == 0o600
    assert json.loads(authfile.read_text()) == {
        "auths": {"reg.example/team/base": {"auth": basic("u", "p")}}
    }
    assert any(o.startswith("--dest-cert-dir=") for o in opts)
    # a remote host is spoken to over HTTPS, checked, unless asked otherwise
    assert "--dest-tls-verify=false" not in opts
    unchecked = Access(AccessOptions(tls_verify=False)).of("reg.example/x")
    assert "--src-tls-verify=false" in unchecked.skopeo_options("src", "reg.example/x", tmp_path)
    assert repository_of("docker://h:5000/a/b@sha256:00") == "h:5000/a/b"


def test_messages_name_the_cause_and_the_source() -> None:
    cred = credentials.Credential("robot", "s3cret", "/job/auth.json (auths h)")
    looked = credentials.Lookup(cred, ("/job/auth.json",))
    refused = explain("pushing", "h/a/b:1", Failure(401, False, "unauthorized"), 1, lookup=looked)
    assert isinstance(refused, RegistryAccessError) and refused.exit_code == 8
    assert "did not accept the credentials (user 'robot') from /job/auth.json" in str(refused)
    scope = "denied: requested access to the resource is denied"
    denied = explain("pushing", "h/a/b:1", Failure(401, False, scope), 1, lookup=looked, write=True)
    assert "may not push to a/b" in str(denied)
    none = credentials.Lookup(None, ("/a.json", "/b.json"))
    missing = explain("pushing", "h/a/b:1", Failure(401, False, "unauthorized"), 1, lookup=none)
    assert "none for h were found in /a.json, /b.json" in str(missing)
    x509 = 'x509: certificate signed by unknown authority"'
    untrusted = explain("pushing", "h/a/b:1", Failure(None, False, x509), 1)
    assert isinstance(untrusted, RegistryAccessError)
    assert "not trusted (x509: certificate signed by unknown authority)" in str(untrusted)
    plain = explain(
        "pushing", "h/a", Failure(None, False, "server gave HTTP response to HTTPS client"), 1
    )
    assert "speaks plain HTTP" in str(plain) and "--plain-http" in str(plain)
    for error in (refused, denied, missing, untrusted):
        assert "s3cret" not in str(error)


def test_a_push_sends_only_the_signatures_made_for_its_destination(tmp_path: Path) -> None:
    layout = layout_with(tmp_path / "store", base=b"one")
    key = keys.SigningKey(ec.generate_private_key(ec.SECP256R1()), "team")
    for prefix in ("team.example/qapm", "customer.example/qapm", "team.example/qapm-old"):
        sign_images(layout, [("base", f"{prefix}/base", ("13",))], key)
    index_sig = next(t for t in layout.attachments("base") if t.endswith(".sig"))
    sig = layout.attachments("base")[index_sig]
    assert len(layout.read_json(sig.digest)["layers"]) == 6  # kept in the store: all of them
    made = signatures_for(layout, sig, "customer.example/qapm/base")
    assert made is not None
    identities = {signed_identity(b.data) for b in made.blobs[1:]}
    assert identities == {"customer.example/qapm/base", "customer.example/qapm/base:13"}
    # a prefix that is another's prefix is not the same repository
    team = signatures_for(layout, sig, "team.example/qapm/base")
    assert team is not None and len(team.blobs) == 3
    assert signatures_for(layout, sig, "elsewhere.example/qapm/base") is None


# -- connections -----------------------------------------------------------------------
@contextlib.contextmanager
def _counting_registry() -> Iterator[tuple[str, list[int]]]:
    """An HTTP/1.1 registry on 127.0.0.1 that has every blob, and the client port of each
    request; a HEAD of a path ending in "/drop" is answered, then its connection closed
    without a word (as a registry's idle time-out does)."""
    ports: list[int] = []

    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: object) -> None:
            pass

        def do_HEAD(self) -> None:
            ports.append(self.client_address[1])
            self.send_response(200)
            self.send_header("Content-Length", "0")
            self.end_headers()
            self.close_connection = self.path.endswith("/drop")
            if self.path.endswith("/stray"):  # a late answer no request asked for
                self.wfile.flush()
                time.sleep(0.2)
                self.wfile.write(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n")

    with http_server(Handler) as host:
        yield host, ports


def test_connections_are_kept_alive_and_replaced_when_the_registry_closed_them() -> None:
    digest = "sha256:" + "0" * 64
    with _counting_registry() as (host, ports):
        client = Registry(Access().host(host), RetryPolicy(retries=0, stall_timeout=2.0))
        for _ in range(20):
            assert client.has_blob("r", digest)
        assert len(set(ports)) == 1, "one connection for twenty requests"
        client.request("HEAD", "r", "blobs/drop", missing_ok=True)  # then closed, unsaid
        assert client.has_blob("r", digest)  # sent again on a new connection, not failed
        assert len(set(ports)) == 2
        client.request("HEAD", "r", "blobs/stray", missing_ok=True)
        time.sleep(0.5)
        assert client.has_blob("r", digest)  # not the stray 404: a new connection
        assert len(set(ports)) == 3
        client.close()


@contextlib.contextmanager
def _registry_that_mounts_nothing() -> Iterator[tuple[str, dict[tuple[str, str], bytes]]]:
    """A registry on 127.0.0.1 keeping blobs by (repository, digest), checking each upload
    against its digest (400 otherwise), and answering every mount with a new upload (202),
    as registries that mount nothing do."""
    blobs: dict[tuple[str, str], bytes] = {}

    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: object) -> None:
            pass

        def _answer(self, status: int, body: bytes = b"", **headers: str) -> None:
            self.send_response(status)
            for k, v in headers.items():
                self.send_header(k, v)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(body)

        def _blob(self) -> tuple[str, str]:
            repo, _, digest = self.path.removeprefix("/v2/").partition("/blobs/")
            return repo, digest

        def do_HEAD(self) -> None:
            self._answer(200 if self._blob() in blobs else 404)

        def do_GET(self) -> None:
            data = blobs.get(self._blob())
            self._answer(404) if data is None else self._answer(200, data)

        def do_POST(self) -> None:
            repo = self.path.removeprefix("/v2/").partition("/blobs/uploads/")[0]
            self._answer(202, Location=f"/upload/{repo}")

        def do_PUT(self) -> None:
            path, _, query = self.path.partition("?digest=")
            data = self.rfile.read(int(self.headers["Content-Length"]))
            digest = urllib.parse.unquote(query)
            if "sha256:" + hashlib.sha256(data).hexdigest() != digest:
                self._answer(400, b'{"errors":[{"code":"DIGEST_INVALID"}]}')
                return
            blobs[(path.removeprefix("/upload/"), digest)] = data
            self._answer(201)

        def do_DELETE(self) -> None:
            self._answer(204)

    with http_server(Handler) as host:
        yield host, blobs


def test_a_streamed_blob_is_kept_only_whole_and_copied_where_no_mount_is_made() -> None:
    data = b"layer " * 50_000
    digest = "sha256:" + hashlib.sha256(data).hexdigest()
    with _registry_that_mounts_nothing() as (host, blobs):
        client = Registry(Access().host(host), RetryPolicy(retries=0, stall_timeout=2.0))
        chunks = (data[i : i + 4096] for i in range(0, len(data), 4096))
        client.stream_blob("a", digest, len(data), chunks)
        assert blobs[("a", digest)] == data
        # other bytes under the digest: the registry keeps nothing, and cairn says so
        with pytest.raises(CairnError, match="HTTP 400"):
            client.stream_blob("c", digest, len(data), iter([data[:-1] + b"!"]))
        assert ("c", digest) not in blobs
        # no mount: the blob is read back from "a" as it is sent to "b"
        assert not client.mount_blob("b", digest, "a")
        client.copy_blob("a", "b", digest, len(data))
        assert blobs[("b", digest)] == data
        assert client.mount_blob("b", digest, "a")  # there now: nothing to send
        client.close()
