"""`cairn login`: credentials checked against the registry, then kept where skopeo keeps them.

As `skopeo login` and `docker login` do: the registry is asked with them first (through
its token service when it has one), and only credentials it accepts are written, to the
first auth file containers-auth.json(5) names ($REGISTRY_AUTH_FILE, else
$XDG_RUNTIME_DIR/containers/auth.json, else /run/containers/$UID/auth.json) or to
--authfile. The file is replaced whole (other entries kept), readable by its owner only.
The password comes from standard input, never from the command line.
"""

from __future__ import annotations

import base64
import json
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

from cairn.errors import StoreError, UsageError
from cairn.oci.access import Access
from cairn.oci.credentials import MAX_AUTH_FILE, Credential, auth_files
from cairn.oci.distribution import Registry
from cairn.oci.registry import GIVEN, RetryPolicy

MAX_PASSWORD = 64 << 10  # a token of a cloud's registry is a few KiB


@dataclass(frozen=True)
class LoginResult:
    SCHEMA_VERSION: ClassVar[int] = 1
    registry: str
    username: str
    authfile: str


def read_password(stream: object) -> str:
    """The first line of standard input (a pipe or a file), without its newline."""
    read = getattr(stream, "read", None)
    if read is None:
        raise UsageError("No password on standard input.", 'Try: printf %s "$PW" | cairn login')
    text = str(read(MAX_PASSWORD + 1))
    if len(text) > MAX_PASSWORD:
        raise UsageError("The password on standard input is longer than 64 KiB.")
    password = text.split("\n", 1)[0].rstrip("\r")
    if not password:
        raise UsageError(
            "No password on standard input.",
            'Try: printf %s "$CI_REGISTRY_PASSWORD" | cairn login REGISTRY --username USER',
        )
    return password


def _keep(path: Path, key: str, entry: dict[str, str]) -> None:
    doc: dict[str, object] = {}
    try:
        with path.open("rb") as f:
            data = f.read(MAX_AUTH_FILE + 1)
        if len(data) > MAX_AUTH_FILE:
            raise ValueError("larger than 1 MiB")
        loaded = json.loads(data) if data.strip() else {}
        if not isinstance(loaded, dict):
            raise ValueError("not a JSON object")
        doc = loaded
    except FileNotFoundError:
        pass
    except (OSError, ValueError, RecursionError) as e:
        raise StoreError(
            f"{path} cannot be read as an auth file ({e}).",
            "Try: remove it or name another with --authfile.",
        ) from None
    auths = doc.get("auths")
    doc["auths"] = {**(auths if isinstance(auths, dict) else {}), key: entry}
    try:
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)  # 0600, O_EXCL
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                json.dump(doc, f, indent=1)
                f.flush()
                os.fsync(f.fileno())
            Path(tmp).replace(path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
    except OSError as e:
        raise StoreError(
            f"Writing the credentials to {path} failed: {e.strerror}.",
            "Try: --authfile FILE in a directory you can write to.",
        ) from None


def login(
    registry: str,
    username: str,
    password: str,
    *,
    access: Access,
    authfile: Path | None = None,
    policy: RetryPolicy | None = None,
) -> LoginResult:
    """Check USER and PASSWORD against REGISTRY (HOST[:PORT], or HOST/NAMESPACE for a login
    that holds for that namespace only), then keep them."""
    key = registry.removeprefix("https://").removeprefix("docker://").rstrip("/")
    host = key.split("/", 1)[0]
    if not host or not username:
        raise UsageError(
            "cairn login needs a registry and a user name.",
            "Try: cairn login REGISTRY --username USER --password-stdin",
        )
    path = authfile or auth_files()[0].path
    cred = Credential(username, password, GIVEN)
    Registry(access.host(host), policy or RetryPolicy.from_env()).check_login(cred)
    pair = base64.b64encode(f"{username}:{password}".encode()).decode()
    _keep(path, key, {"auth": pair})
    return LoginResult(key, username, str(path))
