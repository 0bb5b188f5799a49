"""Registry credentials, found where skopeo, podman and docker keep them, in their order.

The files are read as containers-auth.json(5) says containers/image reads them:

1. `$REGISTRY_AUTH_FILE` and nothing else when it is set (as skopeo's --authfile: a CI
   job's own file is not mixed with the runner's); else
   `$XDG_RUNTIME_DIR/containers/auth.json`, else `/run/containers/$UID/auth.json` (where
   `skopeo login` writes as root without a session: ssh, `sudo -i`, CI, a container);
2. `$XDG_CONFIG_HOME/containers/auth.json` (`~/.config/containers/auth.json`);
3. `$DOCKER_CONFIG/config.json`, else `~/.docker/config.json`;
4. `~/.dockercfg` (docker's legacy file: host keys only).

In each file, in turn: a `credHelpers` entry for the host (`docker-credential-NAME get`,
the protocol docker, skopeo and crane share), then the most specific `auths` key that is
there (REGISTRY/NAMESPACE/REPO, ..., REGISTRY/NAMESPACE, REGISTRY: what `skopeo login
REGISTRY/NAMESPACE` writes; a key that is there ends the file's search, empty or not),
then a key written as a URL (`https://HOST/v1/`; Docker Hub's index.docker.io,
registry-1.docker.io and docker.io are one), and last the file's `credsStore` helper: that
one is docker's, which containers/image does not read; cairn does, and hands skopeo what
it answered. The first file that answers wins. An entry's `auth` is
base64(USER:PASSWORD) (one without a colon is skipped, as docker does); an
`identitytoken` (or a helper's `<token>` user) is an OAuth2 refresh token, traded at the
registry's token service.

Every lookup says where it looked and where it found what it found, so that a refusal
can name the source; the secret itself never reaches a message, a log or `--json`.
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cairn.errors import RegistryAccessError
from cairn.untrusted import printable

# an auth file larger than this is no auth file (containers/image has no limit; 1 MiB
# holds thousands of entries)
MAX_AUTH_FILE = 1 << 20
HELPER_TIMEOUT = 60.0  # seconds: a helper may ask a cloud's metadata service
HELPER_NOT_FOUND = "credentials not found"
TOKEN_USER = "<token>"  # a helper's answer that carries an identity token


@dataclass(frozen=True)
class AuthFile:
    path: Path
    legacy: bool = False  # ~/.dockercfg: a map of hosts, no "auths"


@dataclass(frozen=True)
class Credential:
    """A user and password (or identity token) for a registry, and where they came from."""

    username: str
    secret: str = field(repr=False)
    source: str  # "/root/.docker/config.json (auths 127.0.0.1:5000)", "docker-credential-x"
    identity_token: bool = False  # `secret` is an OAuth2 refresh token

    def basic(self) -> str:
        """The value of an HTTP Basic Authorization header."""
        pair = f"{self.username}:{self.secret}".encode()
        return "Basic " + base64.b64encode(pair).decode()

    def auth_entry(self) -> dict[str, str]:
        """The entry an auth.json holds for these credentials (what skopeo is handed)."""
        if self.identity_token:
            # as docker writes it: containers/image reads an identity token only beside an
            # `auth` of USER: (no password)
            user = base64.b64encode(f"{self.username}:".encode()).decode()
            return {"auth": user, "identitytoken": self.secret}
        return {"auth": base64.b64encode(f"{self.username}:{self.secret}".encode()).decode()}


@dataclass(frozen=True)
class Lookup:
    """The credentials found for a repository (None: anonymous) and the places looked in."""

    credential: Credential | None
    looked_in: tuple[str, ...]


def auth_files(env: Mapping[str, str] | None = None, uid: int | None = None) -> list[AuthFile]:
    """The credential files, in the order containers/image reads them."""
    env = os.environ if env is None else env
    uid = os.getuid() if uid is None else uid
    home = Path(env.get("HOME") or Path.home())
    if env.get("REGISTRY_AUTH_FILE"):
        return [AuthFile(Path(env["REGISTRY_AUTH_FILE"]))]
    if env.get("XDG_RUNTIME_DIR"):
        first = Path(env["XDG_RUNTIME_DIR"]) / "containers" / "auth.json"
    else:
        first = Path("/run/containers") / str(uid) / "auth.json"
    config_home = Path(env["XDG_CONFIG_HOME"]) if env.get("XDG_CONFIG_HOME") else home / ".config"
    docker = Path(env["DOCKER_CONFIG"]) if env.get("DOCKER_CONFIG") else home / ".docker"
    return [
        AuthFile(first),
        AuthFile(config_home / "containers" / "auth.json"),
        AuthFile(docker / "config.json"),
        AuthFile(home / ".dockercfg", legacy=True),
    ]


def keys_for(repository: str) -> list[str]:
    """REGISTRY/A/B/C -> [REGISTRY/A/B/C, REGISTRY/A/B, REGISTRY/A, REGISTRY]."""
    parts = repository.split("/")
    return ["/".join(parts[:n]) for n in range(len(parts), 0, -1)]


DOCKER_HUB = "docker.io"
_DOCKER_HUB_NAMES = frozenset({"index.docker.io", "registry-1.docker.io", DOCKER_HUB})


def registry_name(host: str) -> str:
    """Docker Hub's several host names as one, as containers/image compares them."""
    return DOCKER_HUB if host in _DOCKER_HUB_NAMES else host


def _normalised(key: str, legacy: bool) -> str:
    """An auths key written as a URL (https://HOST/v1/, as old docker logins did) -> HOST;
    a key without a scheme (REGISTRY/NAMESPACE) stays as it is, as containers/image reads
    it: only an exact match names a namespace."""
    stripped = key.removeprefix("https://").removeprefix("http://")
    return registry_name(stripped.split("/", 1)[0] if legacy or stripped != key else stripped)


def _read(path: Path) -> dict[str, Any] | None:
    """The file's JSON object; None when there is no such file. A file that is there but
    cannot be used is an error: skopeo refuses it too, and silence would hide it."""
    try:
        with path.open("rb") as f:
            data = f.read(MAX_AUTH_FILE + 1)
    except FileNotFoundError:
        return None
    except IsADirectoryError:
        return None
    except OSError as e:
        raise RegistryAccessError(
            f"The credentials file {path} cannot be read: {e.strerror}.",
            "Try: check its permissions, or point REGISTRY_AUTH_FILE elsewhere.",
        ) from None
    try:
        if len(data) > MAX_AUTH_FILE:
            raise ValueError("larger than 1 MiB")
        doc = json.loads(data) if data.strip() else {}
        if not isinstance(doc, dict):
            raise ValueError("not a JSON object")
    except (ValueError, RecursionError) as e:
        raise RegistryAccessError(
            f"The credentials file {path} is not valid JSON ({e}).",
            "Try: skopeo login again (it rewrites the file), or fix the file by hand.",
        ) from None
    return doc


def _decoded(path: Path, key: str, entry: object) -> Credential | None:
    if not isinstance(entry, dict):
        return None
    where = f"{path} (auths {key})"
    token = entry.get("identitytoken")
    auth = entry.get("auth")
    username = ""
    secret = ""
    if isinstance(auth, str) and auth:
        try:
            username, sep, secret = base64.b64decode(auth, validate=True).decode().partition(":")
        except (ValueError, UnicodeDecodeError):
            raise RegistryAccessError(
                f"The credentials of {key} in {path} are not base64(USER:PASSWORD).",
                f"Try: skopeo login {key} again.",
            ) from None
        if not sep:
            return None  # as docker and containers/image: an entry of no use is skipped
    if isinstance(token, str) and token:
        return Credential(username, token, where, identity_token=True)
    if secret or username:
        return Credential(username, secret, where)
    return None


def helper(name: str, host: str, configured_in: str) -> Credential | None:
    """What `docker-credential-NAME get` answers for `host`; None when it has nothing."""
    program = shutil.which(f"docker-credential-{name}")
    if program is None:
        raise RegistryAccessError(
            f"{configured_in} names the credential helper {name!r} for {host}, and "
            f"docker-credential-{name} is not on PATH.",
            f"Try: install docker-credential-{name}, or remove it from {configured_in}.",
        )
    try:
        done = subprocess.run(
            [program, "get"],
            input=host.encode(),
            capture_output=True,
            timeout=HELPER_TIMEOUT,
            check=False,
        )
    except subprocess.TimeoutExpired:
        raise RegistryAccessError(
            f"The credential helper docker-credential-{name} gave no answer for {host} "
            f"within {HELPER_TIMEOUT:.0f} s.",
            f"Try: docker-credential-{name} get <<< {host} to see what it waits for.",
        ) from None
    said = done.stdout.decode(errors="replace")
    if done.returncode != 0:
        errors = done.stderr.decode(errors="replace").lower()
        if HELPER_NOT_FOUND in said.lower() or HELPER_NOT_FOUND in errors:
            return None
        # a helper's own words (never its output on success, which holds the secret)
        words = printable((done.stderr or done.stdout).decode(errors="replace").strip()[-300:])
        raise RegistryAccessError(
            f"The credential helper docker-credential-{name} failed for {host} "
            f"(exit {done.returncode}): {words}",
            f"Try: docker-credential-{name} get <<< {host}; log in again with it.",
        )
    try:
        answer = json.loads(said)
        username, secret = str(answer["Username"]), str(answer["Secret"])
    except (ValueError, KeyError, TypeError):
        raise RegistryAccessError(
            f"The credential helper docker-credential-{name} answered for {host} with "
            "something that is not {Username, Secret} JSON.",
            f"Try: docker-credential-{name} get <<< {host}, and update the helper.",
        ) from None
    source = f"docker-credential-{name}, named in {configured_in}"
    if username == TOKEN_USER:
        return Credential("", secret, source, identity_token=True)
    return Credential(username, secret, source) if secret else None


def _entry(auth: AuthFile, auths: dict[str, Any], keys: list[str], host: str) -> Credential | None:
    """The auths entry of the most specific key that is there (it decides, even when it
    holds nothing of use: docker leaves empty ones beside a credsStore), else of a key
    written as a URL."""
    for key in keys:
        if key in auths:
            return _decoded(auth.path, key, auths[key])
    for key, entry in auths.items():
        if _normalised(key, auth.legacy) == registry_name(host):
            return _decoded(auth.path, key, entry)
    return None


def _in_file(auth: AuthFile, repository: str) -> Credential | None:
    doc = _read(auth.path)
    if doc is None:
        return None
    host = repository.split("/", 1)[0]
    auths: dict[str, Any] = doc
    keys = [host]
    if not auth.legacy:
        listed = doc.get("auths")
        auths = listed if isinstance(listed, dict) else {}
        helpers = doc.get("credHelpers")
        if isinstance(helpers, dict) and isinstance(helpers.get(host), str):
            return helper(helpers[host], host, f"{auth.path}'s credHelpers")
        keys = keys_for(repository)
    found = _entry(auth, auths, keys, host)
    if found is not None:
        return found
    store = doc.get("credsStore")
    if not auth.legacy and isinstance(store, str) and store:
        return helper(store, host, f"{auth.path}'s credsStore")
    return None


def find(repository: str, env: Mapping[str, str] | None = None) -> Lookup:
    """The credentials for REGISTRY/REPO (the most specific entry of the first file that
    has one), and every file looked in, in order."""
    files = auth_files(env)
    looked = []
    for auth in files:
        looked.append(str(auth.path))
        found = _in_file(auth, repository)
        if found is not None:
            return Lookup(found, tuple(looked))
    return Lookup(None, tuple(looked))
