"""A runtime image's root file system, finished without running a maintainer script.

mmdebstrap's `extract` variant only unpacks packages. Run by it as hooks:

    python -m cairn.debian.runtime_root prepare ROOT CONFIG.json   (setup hook)
    python -m cairn.debian.runtime_root finish ROOT CONFIG.json    (extract hook)

`prepare` tells apt, through the root's dpkg status, that the script-only
packages and the parent's packages are installed, so that only the image's own
are fetched and unpacked. `finish` makes what the scripts would have made, the
same bytes every time: the users, the name service and time zone settings, the
CA bundle (and Java's trust store), the `sh` link of a busybox, the gconv
modules the locales need; then one dpkg status file per package under
/var/lib/dpkg/status.d/ (distroless's layout, which scanners read) with the
md5sums of the files the image keeps, and warnings for scripts whose work the
image lacks.
"""

from __future__ import annotations

import base64
import json
import os
import re
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path

from debian.debfile import DebFile

from cairn.debian.dpkg import STATUS, STATUS_DIR, is_status_entry
from cairn.debian.keystores import CACERTS, DEFAULT_PASSWORD, KeystoreEntry, render
from cairn.debian.resolver import DUMMY_USR_IS_MERGED
from cairn.debian.runtime_rules import RuntimeRules, runtime_rules

NONROOT = 65532  # distroless's nonroot
NONROOT_USER = str(NONROOT)  # the image config's User
PASSWD = f"""root:x:0:0:root:/root:/sbin/nologin
nobody:x:65534:65534:nobody:/nonexistent:/sbin/nologin
nonroot:x:{NONROOT}:{NONROOT}:nonroot:/home/nonroot:/sbin/nologin
"""
GROUP = f"""root:x:0:
nobody:x:65534:
nonroot:x:{NONROOT}:
"""
NSSWITCH = """passwd:         files
group:          files
shadow:         files
hosts:          files dns
networks:       files
protocols:      files
services:       files
ethers:         files
rpc:            files
"""
CA_DIR = "usr/share/ca-certificates"
CA_BUNDLE = "etc/ssl/certs/ca-certificates.crt"


@dataclass(frozen=True)
class FinishConfig:
    """What the hooks need to know of the image (written as JSON by the build)."""

    wanted: tuple[str, ...]  # every package the image names (its ancestors' too)
    locales: tuple[str, ...]
    source_date_epoch: int
    warnings: str  # path of the JSON list of warnings `finish` writes

    @classmethod
    def read(cls, path: Path) -> FinishConfig:
        row = json.loads(path.read_text())
        return cls(
            tuple(row["wanted"]),
            tuple(row["locales"]),
            int(row["source_date_epoch"]),
            row["warnings"],
        )

    def write(self, path: Path) -> None:
        path.write_text(json.dumps(self.__dict__))


def prepare(root: Path, config: FinishConfig, rules: RuntimeRules) -> None:
    """apt in the root sees the script-only packages and the parent's as installed (and
    usr-is-merged, which the merged-usr hook gives a root's build, as the lock does)."""
    status = root / STATUS
    status.parent.mkdir(parents=True, exist_ok=True)
    parts = [status.read_text()] if status.exists() else []
    if not any("Package: usr-is-merged\n" in p for p in parts):
        parts.append(DUMMY_USR_IS_MERGED)
    parts.append(rules.dummies(config.wanted))
    entries = root / STATUS_DIR
    if entries.is_dir():
        # the parent's entries, which finish wrote with their Status
        parts += [
            p.read_text()
            for p in sorted(entries.iterdir())
            if is_status_entry(str(p.relative_to(root)))
        ]
    status.write_text("\n".join(p.strip("\n") + "\n" for p in parts if p.strip()))


def finish(root: Path, debs: list[Path], config: FinishConfig, rules: RuntimeRules) -> list[str]:
    """Make what the maintainer scripts would have; the warnings for what cairn does not.
    The package database comes last: its md5sums list only the files the image keeps."""
    _users(root)
    # the build host's resolver and name must not leak into the image
    for name, text in (
        ("etc/nsswitch.conf", NSSWITCH),
        ("etc/resolv.conf", ""),
        ("etc/hostname", "localhost\n"),
    ):
        _write(root / name, text)
    if (root / "usr/share/zoneinfo/Etc/UTC").is_file():
        _link(root / "etc/localtime", "/usr/share/zoneinfo/Etc/UTC")
        _write(root / "etc/timezone", "Etc/UTC\n")
    certs = _certificates(root)
    if certs:
        _write(root / CA_BUNDLE, "".join(text for _, text in certs))
        _openssl_paths(root)
        # ca-certificates-java ships the store's directory
        if (root / CACERTS).parent.is_dir():
            (root / CACERTS).write_bytes(_java_trust_store(certs, config.source_date_epoch))
    if (root / "usr/bin/busybox").is_file() and not (root / "usr/bin/sh").exists():
        _link(root / "usr/bin/sh", "busybox")
    _trim_gconv(root, rules.gconv_modules(config.locales))
    (root / "tmp").mkdir(exist_ok=True)
    (root / "tmp").chmod(0o1777)
    return _package_database(root, debs, rules)


def _package_database(root: Path, debs: list[Path], rules: RuntimeRules) -> list[str]:
    out = root / STATUS_DIR
    out.mkdir(parents=True, exist_ok=True)
    warnings = []
    for path in debs:
        deb = DebFile(str(path))
        control = deb.control.debcontrol()
        name = control["Package"]
        fields = [("Package", name), ("Status", "install ok installed")]
        fields += [(k, v) for k, v in control.items() if k != "Package"]
        text = "".join(f"{k}: {v}\n" for k, v in fields)
        _write(out / name, text)
        # a package of links and directories only has no md5sums
        sums = deb.md5sums(encoding=None) if deb.control.has_file("md5sums") else {}
        kept = [
            f"{md5}  {member.decode()}\n"
            for member, md5 in sums.items()
            if os.path.lexists(root / member.decode())
        ]
        _write(out / f"{name}.md5sums", "".join(kept))
        scripts = {
            s: deb.control.get_content(s, encoding="utf-8") or ""
            for s in ("preinst", "postinst")
            if deb.control.has_file(s)
        }
        effects = rules.script_effects(name, scripts)
        if effects:
            warnings.append(
                f"{name}: a runtime image runs no maintainer script, and this package's would "
                f"{'; '.join(effects)}."
            )
    return warnings


def _users(root: Path) -> None:
    _write(root / "etc/passwd", PASSWD)
    _write(root / "etc/group", GROUP)
    for home, owner in (("root", 0), ("home/nonroot", NONROOT)):
        d = root / home
        d.mkdir(parents=True, exist_ok=True)
        d.chmod(0o700)
        os.chown(d, owner, owner)


def _certificates(root: Path) -> list[tuple[str, str]]:
    """(name, PEM text) of the certificates update-ca-certificates would trust: every
    .crt under /usr/share/ca-certificates, in byte order of their paths, each ending
    in a newline."""
    base = root / CA_DIR
    if not base.is_dir():
        return []
    found = []
    for path in sorted(base.rglob("*.crt"), key=lambda p: str(p.relative_to(base)).encode()):
        text = path.read_text(encoding="utf-8")
        found.append((path.stem, text if text.endswith("\n") else text + "\n"))
    return found


def _openssl_paths(root: Path) -> None:
    """OpenSSL's default CA file and directory, which the `openssl` package makes links of
    (a runtime image need not have that package)."""
    ssl = root / "usr/lib/ssl"
    ssl.mkdir(parents=True, exist_ok=True)
    if not os.path.lexists(ssl / "cert.pem"):
        _link(ssl / "cert.pem", "/etc/ssl/certs/ca-certificates.crt")
    if not os.path.lexists(ssl / "certs"):
        _link(ssl / "certs", "/etc/ssl/certs")


_PEM = re.compile(r"-----BEGIN CERTIFICATE-----(.*?)-----END CERTIFICATE-----", re.S)


def _java_trust_store(certs: list[tuple[str, str]], epoch: int) -> bytes:
    """The JKS keystore ca-certificates-java writes (aliases debian:NAME.pem, password
    changeit), every entry dated `epoch`, in alias order."""
    entries = []
    for name, text in certs:
        m = _PEM.search(text)
        if m is None:
            continue
        alias = f"debian:{name.lower().replace(' ', '_')}.pem".encode()
        der = base64.b64decode("".join(m.group(1).split()))
        entries.append(KeystoreEntry(alias, epoch * 1000, b"X.509", der))
    entries.sort(key=lambda e: e.alias)
    return render(2, entries, DEFAULT_PASSWORD)


def _trim_gconv(root: Path, keep: tuple[str, ...]) -> None:
    """Leave out the gconv modules no kept locale needs (their configuration stays)."""
    for gconv in root.glob("usr/lib/*/gconv"):
        for module in gconv.glob("*.so"):
            if module.stem not in keep:
                module.unlink()


def _write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.is_symlink():
        path.unlink()
    path.write_text(text)
    path.chmod(0o644)


def _link(path: Path, target: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.is_symlink() or path.is_file():
        path.unlink()
    elif path.is_dir():
        shutil.rmtree(path)
    path.symlink_to(target)


def _debs(root: Path) -> list[Path]:
    """The packages mmdebstrap unpacked: MMDEBSTRAP_ESSENTIAL, paths inside the root."""
    names = os.environ.get("MMDEBSTRAP_ESSENTIAL", "").split()
    return [root / n.lstrip("/") for n in names]


def main(argv: list[str]) -> int:
    if len(argv) != 3 or argv[0] not in ("prepare", "finish"):
        print("usage: python -m cairn.debian.runtime_root prepare|finish ROOT CONFIG.json")
        return 2
    root, config = Path(argv[1]), FinishConfig.read(Path(argv[2]))
    rules = runtime_rules()
    if argv[0] == "prepare":
        prepare(root, config, rules)
        return 0
    warnings = finish(root, _debs(root), config, rules)
    Path(config.warnings).write_text(json.dumps(warnings))
    print(f"cairn runtime: {len(_debs(root))} packages recorded", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
