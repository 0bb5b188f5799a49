"""Which certificates a registry host is trusted with, as containers-certs.d(5) says.

containers/image (skopeo, podman, buildah) takes the first directory named HOST:PORT
(or HOST) of `~/.config/containers/certs.d`, `/etc/containers/certs.d` and
`/etc/docker/certs.d` that exists; in it, every `*.crt` is a CA trusted beside the
system store, and a `*.cert` with the `*.key` of the same name is a client certificate
for mutual TLS. cairn adds one CA file of its own for every host (`--ca-file`, or
`$CAIRN_REGISTRY_CA_FILE`), for CI jobs that cannot write to /etc. What was found is
handed to skopeo as its certificate directory, so both trust the same certificates.
"""

from __future__ import annotations

import os
import ssl
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from cairn.errors import RegistryAccessError, UsageError

CA_FILE_ENV = "CAIRN_REGISTRY_CA_FILE"
SYSTEM_STORE = "the system store"


def certs_d_roots(env: Mapping[str, str] | None = None) -> list[Path]:
    env = os.environ if env is None else env
    home = Path(env.get("HOME") or Path.home())
    return [
        home / ".config" / "containers" / "certs.d",
        Path("/etc/containers/certs.d"),
        Path("/etc/docker/certs.d"),
    ]


@dataclass(frozen=True)
class HostTrust:
    """The CAs and client certificate for one host, and the places looked in."""

    host: str
    directory: Path | None  # the certs.d directory used, if any
    cas: tuple[Path, ...]  # *.crt of that directory, then the --ca-file
    client: tuple[Path, Path] | None  # (*.cert, *.key)
    looked_in: tuple[str, ...]

    def described(self) -> str:
        """For messages: what this host's certificate was checked against."""
        parts = [SYSTEM_STORE, *(str(p) for p in self.cas)]
        return ", ".join(parts)

    def context(self, verify: bool) -> ssl.SSLContext:
        context = ssl.create_default_context()
        try:
            for ca in self.cas:
                context.load_verify_locations(cafile=str(ca))
            if self.client is not None:
                context.load_cert_chain(str(self.client[0]), str(self.client[1]))
        except (OSError, ssl.SSLError) as e:
            raise UsageError(
                f"The certificates for {self.host} ({self.described()}) cannot be used: {e}.",
                "Try: check that each .crt is a PEM CA certificate and each .cert/.key a "
                "matching PEM pair.",
            ) from None
        if not verify:
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
        return context

    def skopeo_dir(self, into: Path) -> Path:
        """A certificate directory for skopeo's --cert-dir holding exactly these
        certificates (links to them: a client key is never copied)."""
        into.mkdir(mode=0o700, parents=True, exist_ok=True)
        for n, ca in enumerate(self.cas):
            (into / f"{n:02d}-{ca.stem}.crt").symlink_to(ca.resolve())
        if self.client is not None:
            (into / "client.cert").symlink_to(self.client[0].resolve())
            (into / "client.key").symlink_to(self.client[1].resolve())
        return into


def ca_file(option: Path | None, env: Mapping[str, str] | None = None) -> Path | None:
    """The extra CA the command line (else the environment) names, checked to exist."""
    env = os.environ if env is None else env
    path = option or (Path(env[CA_FILE_ENV]) if env.get(CA_FILE_ENV) else None)
    if path is not None and not path.is_file():
        said = "--ca-file" if option else CA_FILE_ENV
        raise UsageError(
            f"{said} names {path}, which is not a file.",
            "Try: the path of the registry's CA certificate (PEM).",
        )
    return path


def host_trust(
    host: str, extra_ca: Path | None = None, env: Mapping[str, str] | None = None
) -> HostTrust:
    """What `host` (HOST[:PORT]) is trusted with: the first certs.d directory of it that
    exists, and the extra CA."""
    looked = []
    directory = None
    for root in certs_d_roots(env):
        candidate = root / host
        looked.append(str(candidate))
        if candidate.is_dir():
            directory = candidate
            break
    cas: list[Path] = []
    client = None
    if directory is not None:
        files = sorted(p for p in directory.iterdir() if p.is_file())
        cas = [p for p in files if p.suffix == ".crt"]
        pairs = [(p, p.with_suffix(".key")) for p in files if p.suffix == ".cert"]
        missing = [str(key) for _, key in pairs if not key.is_file()]
        if missing:
            raise UsageError(
                f"The client certificate for {host} has no key: {', '.join(missing)} is missing.",
                "Try: put the key beside the certificate (NAME.cert and NAME.key), as "
                "containers-certs.d(5) says.",
            )
        client = pairs[0] if pairs else None
    if extra_ca is not None:
        cas.append(extra_ca)
        looked.append(str(extra_ca))
    return HostTrust(host, directory, tuple(cas), client, tuple(looked))


def untrusted_certificate(host: str, trust: HostTrust | None, detail: str) -> RegistryAccessError:
    """The refusal of a certificate: where trust was looked for, and how to give it."""
    checked = (
        f" It was checked against {trust.described()}; certificate directories looked in: "
        f"{', '.join(trust.looked_in)}."
        if trust is not None
        else ""
    )
    return RegistryAccessError(
        f"The TLS certificate of {host} is not trusted ({detail}).{checked}",
        f"Try: put the registry's CA certificate in /etc/containers/certs.d/{host}/ca.crt "
        f"(skopeo and podman read it too), or name it with --ca-file or {CA_FILE_ENV}; "
        "--no-tls-verify only for a registry you trust.",
    )


def client_certificate_refused(
    host: str, trust: HostTrust | None, detail: str
) -> RegistryAccessError:
    """The registry's refusal of the handshake for want of a client certificate."""
    given = (
        f", and {trust.client[0]} was refused; certificate directories looked in: "
        f"{', '.join(trust.looked_in)}"
        if trust is not None and trust.client
        else f"; certificate directories looked in: {', '.join(trust.looked_in)}"
        if trust is not None
        else ""
    )
    return RegistryAccessError(
        f"{host} wants a client certificate it accepts ({detail}){given}.",
        "Try: put the client certificate and key issued for you in "
        f"/etc/containers/certs.d/{host}/ as client.cert and client.key.",
    )
