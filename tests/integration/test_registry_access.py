"""Registries as teams run them, for real: Debian's docker-registry on 127.0.0.1 with TLS
from a private CA that only certs.d (or --ca-file) knows, htpasswd logins, a token
service (RS256 JWTs, an account that may push and one that may only pull) and mutual
TLS. Every credential source containers' tools read is tried with a signed push and a
verify; the air gap is crossed between two authenticated registries and Debian 13's
skopeo accepts the result under its policy; refusals name their cause, exit with the
documented code, push nothing and print no secret."""

from __future__ import annotations

import base64
import contextlib
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from tests.integration.conftest import EXAMPLE, Built
from tests.secure_registries import (
    SecureRegistry,
    certs_d,
    mtls_registry,
    tls_htpasswd_registry,
    token_registry,
)

from cairn.oci.attachments import signed_identity
from cairn.oci.image import ANN_CREATED, MEDIA_INDEX, json_blob
from cairn.oci.layout import OciLayout

PASSWORDS = {"alice": "alice-pw-7f3a", "pusher": "pusher-pw-91c2", "reader": "reader-pw-0d5e"}
PASSPHRASE = "a team passphrase"
AMD64 = ("--platform", "linux/amd64")
# the variables that choose credential files: none of the machine's own may leak in
CHOOSERS = ("REGISTRY_AUTH_FILE", "XDG_RUNTIME_DIR", "XDG_CONFIG_HOME", "DOCKER_CONFIG")


@dataclass(frozen=True)
class Lab:
    team: SecureRegistry  # TLS + htpasswd: alice
    customer: SecureRegistry  # TLS + token service: pusher (push), reader (pull)
    mtls: SecureRegistry  # TLS + client certificates
    store: Path  # static and runtime, built by the session
    key: Path
    pub: Path
    work: Path


@pytest.fixture(scope="module")
def lab(runtime_family: Built, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    d = tmp_path_factory.mktemp("registry-access")
    store = d / "oci"
    shutil.copytree(runtime_family.store, store)
    (d / "passphrase").write_text(PASSPHRASE + "\n")
    subprocess.run(
        [sys.executable, "-m", "cairn", "keygen", "--output-prefix", str(d / "team"),
         "--passphrase-file", str(d / "passphrase")],
        check=True, capture_output=True,
    )  # fmt: skip
    with contextlib.ExitStack() as stack:
        team = stack.enter_context(tls_htpasswd_registry(d / "team", {"alice": PASSWORDS["alice"]}))
        customer = stack.enter_context(
            token_registry(
                d / "customer",
                {"pusher": (PASSWORDS["pusher"], "push"), "reader": (PASSWORDS["reader"], "pull")},
            )
        )
        mtls = stack.enter_context(mtls_registry(d / "mtls"))
        yield Lab(team, customer, mtls, store, d / "team.key", d / "team.pub", d)


def basic(user: str) -> str:
    return base64.b64encode(f"{user}:{PASSWORDS[user]}".encode()).decode()


class User:
    """A user's environment: a home of its own, none of the machine's credential files."""

    def __init__(self, home: Path, **env: str) -> None:
        self.home = home
        home.mkdir(parents=True, exist_ok=True)
        self.env = {k: v for k, v in os.environ.items() if k not in CHOOSERS}
        self.env.update(HOME=str(home), **env)

    def trust(self, registry: SecureRegistry) -> None:
        """The registry's CA in ~/.config/containers/certs.d (not the system store)."""
        certs_d(self.home / ".config/containers/certs.d", registry)

    def cairn(self, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
        res = subprocess.run(
            [sys.executable, "-m", "cairn", *args],
            capture_output=True,
            text=True,
            env=self.env,
            input=stdin,
            check=False,
            timeout=900,
        )
        for secret in PASSWORDS.values():
            assert secret not in res.stdout + res.stderr, f"a password was printed: {args}"
        return res

    def push(self, lab: Lab, prefix: str, *extra: str) -> subprocess.CompletedProcess[str]:
        return self.cairn(
            "push", str(EXAMPLE), prefix, "-i", "static", "--output", f"oci:{lab.store}",
            "--sign-key", str(lab.key), "--passphrase-file", str(lab.work / "passphrase"),
            *extra,
        )  # fmt: skip

    def verify(self, lab: Lab, reference: str) -> subprocess.CompletedProcess[str]:
        return self.cairn("verify", f"docker://{reference}", "--key", str(lab.pub), "--json")


def tags(registry: SecureRegistry, repository: str, user: str = "alice") -> list[str]:
    """The repository's tags, read with skopeo and the account's own credentials."""
    cert_dir = certs_d(registry.log.parent / "reader-certs", registry)
    res = subprocess.run(
        ["skopeo", "list-tags", "--cert-dir", str(cert_dir),
         "--creds", f"{user}:{PASSWORDS[user]}", f"docker://{registry.address}/{repository}"],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    if res.returncode != 0:
        assert re.search(r"name unknown|not known|404", res.stderr), res.stderr
        return []
    found: list[str] = json.loads(res.stdout)["Tags"]
    return [t for t in found if not t.startswith("sha256-")]


def helper(bin_dir: Path, name: str, accounts: dict[str, str]) -> None:
    """docker-credential-NAME, answering `get` for each host with its account's
    credentials, and "not found" for any other."""
    bin_dir.mkdir(parents=True, exist_ok=True)
    cases = "".join(
        f"  {host}) echo '"
        + json.dumps({"ServerURL": host, "Username": user, "Secret": PASSWORDS[user]})
        + "';;\n"
        for host, user in accounts.items()
    )
    script = bin_dir / f"docker-credential-{name}"
    script.write_text(
        '#!/bin/sh\n[ "$1" = get ] || exit 2\nread host\ncase "$host" in\n'
        f"{cases}  *) echo 'credentials not found in native keychain'; exit 1;;\nesac\n"
    )
    script.chmod(0o755)


@contextlib.contextmanager
def run_containers_auth() -> Iterator[Path]:
    """/run/containers/0/auth.json, where `skopeo login` writes as root without a session
    (ssh, sudo -i, CI, a container): empty for the block, then as it was."""
    path = Path(f"/run/containers/{os.getuid()}/auth.json")
    kept = path.read_bytes() if path.exists() else None  # the machine's own, put back
    path.unlink(missing_ok=True)
    try:
        yield path
    finally:
        path.unlink(missing_ok=True)
        if kept is not None:
            path.write_bytes(kept)
            path.chmod(0o600)


SOURCES = (
    "REGISTRY_AUTH_FILE",
    "XDG_RUNTIME_DIR",
    "run-containers (skopeo login)",
    "XDG_CONFIG_HOME",
    "DOCKER_CONFIG",
    "~/.docker/config.json",
    "namespace key",
    "credHelpers",
    "credsStore",
)


def credentials_in(
    source: str, user: User, lab: Lab, accounts: dict[str, str], tmp_path: Path
) -> contextlib.ExitStack:
    """Both registries' credentials put where `source` says (what must be undone after,
    in the stack returned)."""
    team = lab.team.address
    entry = {"auths": {h: {"auth": basic(u)} for h, u in accounts.items()}}
    stack = contextlib.ExitStack()
    if source == "REGISTRY_AUTH_FILE":
        (tmp_path / "job.json").write_text(json.dumps(entry))
        user.env["REGISTRY_AUTH_FILE"] = str(tmp_path / "job.json")
    elif source == "XDG_RUNTIME_DIR":
        (tmp_path / "run/containers").mkdir(parents=True)
        (tmp_path / "run/containers/auth.json").write_text(json.dumps(entry))
        user.env["XDG_RUNTIME_DIR"] = str(tmp_path / "run")
    elif source == "run-containers (skopeo login)":
        stack.enter_context(run_containers_auth())
        certs_d(tmp_path / "login-certs", lab.customer)
        for host, account in accounts.items():
            cert_dir = (
                user.home / ".config/containers/certs.d" / host
                if host == team
                else tmp_path / "login-certs" / host
            )
            login = subprocess.run(
                ["skopeo", "login", "--cert-dir", str(cert_dir), "-u", account,
                 "--password-stdin", host],
                input=PASSWORDS[account], env=user.env, capture_output=True, text=True,
                check=False,
            )  # fmt: skip
            assert login.returncode == 0, login.stderr
    elif source == "XDG_CONFIG_HOME":
        (tmp_path / "cfg/containers").mkdir(parents=True)
        (tmp_path / "cfg/containers/auth.json").write_text(json.dumps(entry))
        user.env["XDG_CONFIG_HOME"] = str(tmp_path / "cfg")
    elif source == "DOCKER_CONFIG":
        (tmp_path / "dock").mkdir()
        (tmp_path / "dock/config.json").write_text(json.dumps(entry))
        user.env["DOCKER_CONFIG"] = str(tmp_path / "dock")
    elif source == "~/.docker/config.json":
        (user.home / ".docker").mkdir()
        (user.home / ".docker/config.json").write_text(json.dumps(entry))
    elif source == "namespace key":
        # `skopeo login REGISTRY/NAMESPACE`: valid for that namespace only
        scoped = {"auths": {f"{h}/scoped": {"auth": basic(u)} for h, u in accounts.items()}}
        (tmp_path / "job.json").write_text(json.dumps(scoped))
        user.env["REGISTRY_AUTH_FILE"] = str(tmp_path / "job.json")
        refused = user.push(lab, f"{lab.team.address}/elsewhere")
        assert refused.returncode == 8, refused.stderr
        assert "none for" in refused.stderr and str(tmp_path / "job.json") in refused.stderr
    else:
        helper(tmp_path / "bin", "lab", accounts)
        (user.home / ".docker").mkdir()
        key = "credHelpers" if source == "credHelpers" else "credsStore"
        value: object = dict.fromkeys(accounts, "lab") if key == "credHelpers" else "lab"
        (user.home / ".docker/config.json").write_text(json.dumps({key: value}))
    return stack


@pytest.mark.parametrize("source", SOURCES)
def test_every_credential_source_carries_a_signed_image_across(
    lab: Lab, tmp_path: Path, source: str, trixie_skopeo: Path
) -> None:
    """With the credentials of both registries in one source: a signed push to the team's
    registry, verify, bundle --from it, unbundle into the customer's, verify there, and
    Debian 13's skopeo accepts it under a policy that requires the team's signature."""
    team, customer = lab.team.address, lab.customer.address
    accounts = {team: "alice", customer: "pusher"}
    user = User(
        tmp_path / "home",
        PATH=f"{tmp_path / 'bin'}:{os.environ['PATH']}",
        CAIRN_REGISTRY_CA_FILE=str(lab.customer.ca_cert),
    )
    user.trust(lab.team)
    stack = credentials_in(source, user, lab, accounts, tmp_path)
    name = "scoped" if source == "namespace key" else f"src-{SOURCES.index(source)}"
    prefix, dest = f"{team}/{name}", f"{customer}/{name}"
    bundle = tmp_path / "static.tar.zst"
    with stack:
        pushed = user.push(lab, prefix)
        assert pushed.returncode == 0, pushed.stderr
        verified = user.verify(lab, f"{prefix}/static:13")
        assert verified.returncode == 0, verified.stderr
        assert json.loads(verified.stdout)["verified"]
        made = user.cairn(
            "bundle", str(EXAMPLE), "-i", "static", "--from", prefix, "--to", str(bundle),
            "--key", str(lab.key), "--passphrase-file", str(lab.work / "passphrase"),
        )  # fmt: skip
        assert made.returncode == 0, made.stderr
        res = user.cairn("unbundle", str(bundle), "--to", dest, "--key", str(lab.pub))
        assert res.returncode == 0, res.stderr
        verified = user.verify(lab, f"{dest}/static:13")
        assert verified.returncode == 0, verified.stderr
    assert tags(lab.team, f"{name}/static") == ["13", "trixie"]
    pull = policy_pull(trixie_skopeo, lab, dest, prefix, "static")
    assert pull.returncode == 0, pull.stderr


def policy_pull(
    root: Path, lab: Lab, dest: str, signed_prefix: str, image: str
) -> subprocess.CompletedProcess[str]:
    """Debian 13's skopeo copying DEST/IMAGE:13, as the customer's pull-only account, under
    a policy that requires the team's signature for the names SIGNED_PREFIX had."""
    customer = lab.customer
    work = root / "tmp" / f"policy-{dest.replace('/', '-').replace(':', '-')}"
    (work / "registries.d").mkdir(parents=True)
    certs_d(work / "certs", customer)
    shutil.copy(lab.pub, work / "key.pub")
    inside = f"/tmp/{work.name}"
    policy = {
        "default": [{"type": "reject"}],
        "transports": {
            "docker": {
                dest: [
                    {
                        "type": "sigstoreSigned",
                        "keyPath": f"{inside}/key.pub",
                        "signedIdentity": {
                            "type": "remapIdentity",
                            "prefix": dest,
                            "signedPrefix": signed_prefix,
                        },
                    }
                ]
            }
        },
    }
    (work / "policy.json").write_text(json.dumps(policy))
    (work / "registries.d/cairn.yaml").write_text(
        f"docker:\n  {customer.address}:\n    use-sigstore-attachments: true\n"
    )
    return subprocess.run(
        ["chroot", str(root), "skopeo", "--policy", f"{inside}/policy.json",
         "--registries.d", f"{inside}/registries.d", "copy", "--all", "--remove-signatures",
         "--src-cert-dir", f"{inside}/certs/{customer.address}",
         "--src-creds", f"reader:{PASSWORDS['reader']}",
         f"docker://{dest}/{image}:13", f"oci:{inside}/out:pulled"],
        capture_output=True, text=True, check=False, timeout=600,
    )  # fmt: skip


def test_refusals_name_their_cause_and_push_nothing(lab: Lab, tmp_path: Path) -> None:
    team, customer = lab.team, lab.customer
    user = User(tmp_path / "home", PATH=f"{tmp_path / 'bin'}:{os.environ['PATH']}")
    # an untrusted CA: refused at once, no retry, naming where trust was looked for
    start = time.monotonic()
    res = user.push(lab, f"{team.address}/untrusted")
    assert res.returncode == 8, res.stderr
    assert time.monotonic() - start < 30
    assert "is not trusted" in res.stderr and "retrying" not in res.stderr, res.stderr
    assert f"certs.d/{team.address}" in res.stderr
    # --plain-http never downgrades a registry that speaks TLS
    res = user.push(lab, f"{team.address}/untrusted", "--plain-http")
    assert res.returncode == 8 and "is not trusted" in res.stderr, res.stderr
    user.trust(team)
    # no credentials: the places looked in
    res = user.push(lab, f"{team.address}/nocreds")
    assert res.returncode == 8, res.stderr
    assert "wants credentials, and none" in res.stderr
    assert str(user.home / ".docker/config.json") in res.stderr
    # a wrong password: where it came from, refused
    auth = tmp_path / "job.json"
    wrong = base64.b64encode(b"alice:not-the-password").decode()
    auth.write_text(json.dumps({"auths": {team.address: {"auth": wrong}}}))
    user.env["REGISTRY_AUTH_FILE"] = str(auth)
    res = user.push(lab, f"{team.address}/wrongpw")
    assert res.returncode == 8, res.stderr
    assert f"did not accept the credentials (user 'alice') from {auth}" in res.stderr
    assert "not-the-password" not in res.stderr
    # a pull-only account: may not push, through the token service
    user.env["CAIRN_REGISTRY_CA_FILE"] = str(customer.ca_cert)
    helper(tmp_path / "bin", "cust", {customer.address: "reader"})
    auth.write_text(json.dumps({"credHelpers": {customer.address: "cust"}}))
    res = user.push(lab, f"{customer.address}/readonly")
    assert res.returncode == 8, res.stderr
    assert "the account 'reader' (from docker-credential-cust" in res.stderr
    assert "may not push to readonly/static" in res.stderr
    # the token service down: its URL named
    helper(tmp_path / "bin", "cust", {customer.address: "pusher"})
    with customer.token_service_down():
        res = user.push(lab, f"{customer.address}/tokendown", "--registry-retries", "0")
    assert res.returncode == 4, res.stderr
    assert f"its token service at {customer.token_url}" in res.stderr, res.stderr
    for registry, repository in (
        (team, "nocreds/static"),
        (team, "wrongpw/static"),
        (team, "untrusted/static"),
    ):
        assert tags(registry, repository) == []
    for repository in ("readonly/static", "tokendown/static"):
        assert tags(customer, repository, "pusher") == []


def test_reads_ask_for_pull_and_writes_for_push(lab: Lab, tmp_path: Path) -> None:
    customer = lab.customer
    user = User(tmp_path / "home", CAIRN_REGISTRY_CA_FILE=str(customer.ca_cert))
    auth = tmp_path / "job.json"
    auth.write_text(json.dumps({"auths": {customer.address: {"auth": basic("pusher")}}}))
    user.env["REGISTRY_AUTH_FILE"] = str(auth)
    seen = len(customer.token_requests())
    assert user.push(lab, f"{customer.address}/scopes").returncode == 0
    verified = user.verify(lab, f"{customer.address}/scopes/static:13")
    assert verified.returncode == 0, verified.stderr
    asked = customer.token_requests()[seen:]
    push_scopes = {s for r in asked for s in r.scopes if s.endswith(":pull,push")}
    assert push_scopes == {"repository:scopes/static:pull,push"}
    # verify read with pull only: a reader account is enough
    helper(tmp_path / "bin", "cust", {customer.address: "reader"})
    auth.write_text(json.dumps({"credHelpers": {customer.address: "cust"}}))
    user.env["PATH"] = f"{tmp_path / 'bin'}:{os.environ['PATH']}"
    verified = user.verify(lab, f"{customer.address}/scopes/static:13")
    assert verified.returncode == 0, verified.stderr
    # an identity token (docker login's OAuth2 refresh token) works too, for both halves
    auth.write_text(
        json.dumps(
            {"auths": {customer.address: {"identitytoken": customer.identity_token("pusher")}}}
        )
    )
    assert user.push(lab, f"{customer.address}/identity").returncode == 0
    assert tags(customer, "identity/static", "pusher") == ["13", "trixie"]


def test_mutual_tls_and_unchecked_tls(lab: Lab, tmp_path: Path) -> None:
    user = User(tmp_path / "home")
    certs = user.home / ".config/containers/certs.d" / lab.mtls.address
    certs.mkdir(parents=True)
    shutil.copy(lab.mtls.ca_cert, certs / "ca.crt")
    res = user.push(lab, f"{lab.mtls.address}/mtls")
    assert res.returncode == 8, res.stderr
    assert "wants a client certificate" in res.stderr and "client.cert" in res.stderr
    certs_d(user.home / ".config/containers/certs.d", lab.mtls)  # adds client.cert, .key
    res = user.push(lab, f"{lab.mtls.address}/mtls")
    assert res.returncode == 0, res.stderr
    verified = user.verify(lab, f"{lab.mtls.address}/mtls/static:13")
    assert verified.returncode == 0, verified.stderr
    # --no-tls-verify: TLS without checking the certificate, as asked, and only then
    other = User(tmp_path / "other")
    (other.home / ".docker").mkdir()
    (other.home / ".docker/config.json").write_text(
        json.dumps({"auths": {lab.team.address: {"auth": basic("alice")}}})
    )
    res = other.push(lab, f"{lab.team.address}/unchecked", "--no-tls-verify")
    assert res.returncode == 0, res.stderr


def test_each_destination_gets_only_its_own_signatures(lab: Lab, tmp_path: Path) -> None:
    user = User(tmp_path / "home")
    user.trust(lab.team)
    (user.home / ".docker").mkdir()
    (user.home / ".docker/config.json").write_text(
        json.dumps({"auths": {lab.team.address: {"auth": basic("alice")}}})
    )
    prefixes = [f"{lab.team.address}/dest{n}" for n in range(3)]
    for prefix in prefixes:
        res = user.push(lab, prefix)
        assert res.returncode == 0, res.stderr
    last = prefixes[-1]
    index = json.loads((lab.store / "index.json").read_text())
    digest = next(
        m["digest"]
        for m in index["manifests"]
        if m["annotations"]["org.opencontainers.image.ref.name"] == "static"
    )
    repository = f"{last.split('/', 1)[1]}/static"
    sig = read(lab.team, f"{repository}/manifests/sha256-{digest.partition(':')[2]}.sig")
    identities = {
        signed_identity(read(lab.team, f"{repository}/blobs/{layer['digest']}"))
        for layer in json.loads(sig)["layers"]
    }
    # the store keeps every destination's; the registry gets its own only
    assert identities == {f"{last}/static", f"{last}/static:13", f"{last}/static:trixie"}


def read(registry: SecureRegistry, path: str) -> bytes:
    """GET /v2/PATH from the htpasswd registry as alice."""
    req = urllib.request.Request(
        f"{registry.url}/v2/{path}",
        headers={
            "Authorization": f"Basic {basic('alice')}",
            "Accept": "application/vnd.oci.image.manifest.v1+json",
        },
    )
    with urllib.request.urlopen(req, context=registry.ssl_context(), timeout=30) as response:
        data: bytes = response.read()
        return data


def test_the_air_gap_between_two_authenticated_registries(
    lab: Lab, tmp_path: Path, trixie_skopeo: Path
) -> None:
    """The team's registry (htpasswd, its CA in /etc/docker/certs.d) to the customer's
    (token auth, its CA from CAIRN_REGISTRY_CA_FILE, credentials from a helper), and
    Debian 13's skopeo pulling under a policy that requires the team's signature."""
    team, customer = lab.team, lab.customer
    etc = Path("/etc/docker/certs.d") / team.address
    user = User(
        tmp_path / "home",
        PATH=f"{tmp_path / 'bin'}:{os.environ['PATH']}",
        CAIRN_REGISTRY_CA_FILE=str(customer.ca_cert),
    )
    helper(tmp_path / "bin", "cust", {customer.address: "pusher"})
    (user.home / ".docker").mkdir()
    (user.home / ".docker/config.json").write_text(
        json.dumps(
            {
                "auths": {team.address: {"auth": basic("alice")}},
                "credHelpers": {customer.address: "cust"},
            }
        )
    )
    try:
        certs_d(Path("/etc/docker/certs.d"), team)
        prefix = f"{team.address}/qapm"
        images = ("-i", "static", "-i", "runtime")
        pushed = user.cairn(
            "push", str(EXAMPLE), prefix, *images, "--output", f"oci:{lab.store}",
            "--sign-key", str(lab.key), "--passphrase-file", str(lab.work / "passphrase"),
        )  # fmt: skip
        assert pushed.returncode == 0, pushed.stderr
        bundle = tmp_path / "family.tar.zst"
        made = user.cairn(
            "bundle", str(EXAMPLE), *images, "--from", prefix, "--to", str(bundle),
            "--key", str(lab.key), "--passphrase-file", str(lab.work / "passphrase"),
        )  # fmt: skip
        assert made.returncode == 0, made.stderr
    finally:
        shutil.rmtree(etc, ignore_errors=True)
    dest = f"{customer.address}/delivered"
    res = user.cairn("unbundle", str(bundle), "--to", dest, "--key", str(lab.pub))
    assert res.returncode == 0, res.stderr
    for image in ("static", "runtime"):
        verified = user.verify(lab, f"{dest}/{image}:13")
        assert verified.returncode == 0, verified.stderr
    # Debian 13's skopeo, reading as the pull-only account, requires the team's signature
    pull = policy_pull(trixie_skopeo, lab, dest, prefix, "runtime")
    assert pull.returncode == 0, pull.stderr


def test_an_older_bundle_does_not_move_tags_back(lab: Lab, tmp_path: Path) -> None:
    """static bundled as built, and again with a later creation date (as a later refresh
    of the family makes it): once the newer is unbundled, the older is refused, naming
    both, and the tag stays; --allow-rollback lets it go back when that is meant."""
    user = User(tmp_path / "home", CAIRN_REGISTRY_CA_FILE=str(lab.customer.ca_cert))
    auth = tmp_path / "job.json"
    auth.write_text(json.dumps({"auths": {lab.customer.address: {"auth": basic("pusher")}}}))
    user.env["REGISTRY_AUTH_FILE"] = str(auth)
    bundles = {}
    for age, created in (("older", None), ("newer", "2026-06-01T00:00:00Z")):
        store = tmp_path / age / "oci"
        shutil.copytree(lab.store, store)
        if created is not None:
            layout = OciLayout(store)
            doc = layout.read_json(layout.refs()["static"].digest)
            doc["annotations"][ANN_CREATED] = created
            with layout.staging() as stage:
                stage.set_ref("static", stage.add(json_blob(doc, MEDIA_INDEX)))
        key = ("--key", str(lab.key), "--passphrase-file", str(lab.work / "passphrase"))
        signed = user.cairn("sign", str(EXAMPLE), "team.example/qapm", "-i", "static",
                            "-o", f"oci:{store}", *key)  # fmt: skip
        assert signed.returncode == 0, signed.stderr
        bundles[age] = tmp_path / f"{age}.tar.zst"
        made = user.cairn("bundle", str(EXAMPLE), "-i", "static", "-o", f"oci:{store}",
                          "--to", str(bundles[age]), "--for", "team.example/qapm",
                          *key)  # fmt: skip
        assert made.returncode == 0, made.stderr
    dest = f"{lab.customer.address}/rollback"
    unbundle = ("--to", dest, "--key", str(lab.pub))
    assert user.cairn("unbundle", str(bundles["newer"]), *unbundle).returncode == 0
    newer = OciLayout(tmp_path / "newer" / "oci").refs()["static"].digest
    assert digest_at(lab.customer, "rollback/static:13") == newer
    res = user.cairn("unbundle", str(bundles["older"]), *unbundle)
    assert res.returncode == 7, res.stderr
    assert "would move" in res.stderr and "created 2026-06-01" in res.stderr, res.stderr
    assert "Nothing was pushed" in res.stderr
    assert digest_at(lab.customer, "rollback/static:13") == newer
    res = user.cairn("unbundle", str(bundles["older"]), *unbundle, "--allow-rollback")
    assert res.returncode == 0, res.stderr
    assert digest_at(lab.customer, "rollback/static:13") != newer


def digest_at(registry: SecureRegistry, reference: str) -> str:
    """The digest REPO:TAG names in the token registry, read as the pusher account."""
    cert_dir = certs_d(registry.log.parent / "reader-certs", registry)
    raw = subprocess.run(
        ["skopeo", "inspect", "--raw", "--cert-dir", str(cert_dir),
         "--creds", f"pusher:{PASSWORDS['pusher']}", f"docker://{registry.address}/{reference}"],
        capture_output=True, check=True,
    ).stdout  # fmt: skip
    return "sha256:" + hashlib.sha256(raw).hexdigest()
