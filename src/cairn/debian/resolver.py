"""Which package versions a build would install, decided by apt itself without building.

mmdebstrap's own dry run cannot answer this for cairn's builds: it skips the
merged-/usr setup hook, whose dummy `usr-is-merged` keeps usrmerge (and all of
perl) out. So cairn replays mmdebstrap's two apt steps with the host's apt in
a throwaway directory, with mmdebstrap's configuration: the first step
(`dist-upgrade` from a status file holding only the dummy, which installs the
Essential set plus apt) and then, with those recorded as installed,
`install usr-is-merged` and the image's packages. Only package lists are
downloaded, for any architecture; nothing runs under emulation.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

from debian.deb822 import Deb822

from cairn.debian.dpkg import dummy_stanza
from cairn.debian.runtime_rules import runtime_rules, script_only_error
from cairn.engines import require, run_logged, tail
from cairn.errors import BuildError

RUNTIME_VARIANT = "extract"  # mmdebstrap's: packages unpacked, never configured
_INST = re.compile(r"^Inst (\S+) (?:\[\S+\] )?\((\S+) (.*?) \[[^\]]+\]\)")

# What mmdebstrap's merged-usr setup hook installs before apt runs.
DUMMY_USR_IS_MERGED = dummy_stanza(
    "usr-is-merged",
    "1",
    "dummy package of the merged-usr setup hook",
    source="mmdebstrap-dummy-usr-is-merged",
)

# Fields of an archive stanza that describe the package rather than the download.
_KEEP = (
    "Package",
    "Architecture",
    "Multi-Arch",
    "Version",
    "Essential",
    "Priority",
    "Section",
    "Source",
    "Provides",
    "Pre-Depends",
    "Depends",
    "Breaks",
    "Conflicts",
    "Replaces",
)

_PRIORITY = {
    "required": "?and(?priority(required),?not(?essential))",
    "minbase": "?and(?priority(required),?not(?essential))",
    "buildd": "?and(?priority(required),?not(?essential))",
    "important": "?and(?or(?priority(required),?priority(important)),?not(?essential))",
    "standard": "?and(?or(~prequired,~pimportant,~pstandard),?not(?essential))",
}


@dataclass(frozen=True)
class Resolved:
    """A package version apt would install, and the archive it comes from."""

    version: str
    origin: str  # as apt prints it: "Debian-Security:12/oldstable-security"

    @property
    def suite(self) -> str:
        _, slash, archive = self.origin.rpartition("/")
        return archive if slash else self.origin.rpartition(":")[2]


def parse_simulation(text: str) -> dict[str, Resolved]:
    """apt's simulated "Inst NAME (VERSION ORIGIN [ARCH])" lines, by package name."""
    found: dict[str, Resolved] = {}
    for line in text.splitlines():
        m = _INST.match(line)
        if m:
            name = m.group(1).partition(":")[0]
            found[name] = Resolved(version=m.group(2), origin=m.group(3).split(", ")[0])
    return found


class AptSandbox:
    """The host's apt pointed at a private root: its own sources, lists and status file."""

    def __init__(self, root: Path, arch: str, sources: tuple[str, ...]) -> None:
        self.root = root
        self.apt_get = require("apt-get", "Resolving package versions")
        self.apt_cache = require("apt-cache", "Resolving package versions")
        for d in (
            "etc/apt/apt.conf.d",
            "etc/apt/preferences.d",
            "var/lib/apt/lists/partial",
            "var/cache/apt/archives/partial",
            "var/lib/dpkg",
            "var/log/apt",
        ):
            (root / d).mkdir(parents=True, exist_ok=True)
        (root / "etc/apt/sources.list").write_text("\n".join(sources) + "\n")
        self.status = root / "var/lib/dpkg/status"
        self.status.write_text(DUMMY_USR_IS_MERGED)
        self.config = root / "apt.conf"
        self.config.write_text(
            f'Apt::Architecture "{arch}";\n'
            f'Apt::Architectures "{arch}";\n'
            f'Dir "{root}/";\n'
            f'Dir::State::Status "{self.status}";\n'
            'Dir::Etc::Trusted "/etc/apt/trusted.gpg";\n'
            'Dir::Etc::TrustedParts "/etc/apt/trusted.gpg.d/";\n'
            "Apt::Install-Recommends false;\n"
            'Acquire::Languages "none";\n'
            'Debug::NoLocking "true";\n'
        )
        self.log = root / "apt.log"
        self.env = {**os.environ, "APT_CONFIG": str(self.config), "LC_ALL": "C.UTF-8"}

    def run(self, *args: str) -> str:
        out = self.root / "out.txt"
        if run_logged([*args], self.log, env=self.env, stdout=out) != 0:
            raise _failure(tail(self.log, 200))
        return out.read_text(errors="replace")

    def mark_installed(self, packages: dict[str, Resolved]) -> None:
        """Record `packages` as installed, as if dpkg had unpacked and configured them."""
        specs = [f"{name}={r.version}" for name, r in sorted(packages.items())]
        text = self.run(self.apt_cache, "show", "--no-all-versions", *specs)
        stanzas = [DUMMY_USR_IS_MERGED.rstrip("\n")]
        for para in Deb822.iter_paragraphs(text.splitlines()):
            kept = Deb822({k: para[k] for k in _KEEP if k in para})
            kept["Status"] = "install ok installed"
            stanzas.append(kept.dump().rstrip("\n"))
        self.status.write_text("\n\n".join(stanzas) + "\n")


def _failure(log: str) -> BuildError:
    pinned = script_only_error(log, "Resolving packages")
    if pinned is not None:
        return pinned
    m = re.search(r"Unable to locate package (\S+)|Package '?([^' ]+)'? has no installation", log)
    if m:
        return BuildError(
            f"Resolving packages failed because package '{m.group(1) or m.group(2)}' is not in "
            "the image's sources.",
            "Try: check the name with `apt-cache policy NAME` and fix `packages` in cairn.toml.",
        )
    if re.search(r"Could not resolve|Failed to fetch|Connection refused|Unable to connect", log):
        return BuildError(
            f"Resolving packages failed because an archive could not be reached:\n{log[-1500:]}",
            "Try: check the network and the mirrors and repositories in cairn.toml.",
        )
    return BuildError(f"Resolving packages with apt failed:\n{log[-1500:]}")


def resolve_with_apt(
    *,
    arch: str,
    suite: str,
    variant: str,
    packages: tuple[str, ...],
    sources: tuple[str, ...],
    workdir: Path,
) -> dict[str, Resolved]:
    """Every package (name -> version, archive) a build would install now."""
    apt = AptSandbox(workdir / "apt", arch, sources)
    apt.run(apt.apt_get, "update", "--quiet")
    if variant == RUNTIME_VARIANT:
        # no Essential set; the packages only maintainer scripts need are taken as installed
        apt.status.write_text(DUMMY_USR_IS_MERGED + "\n" + runtime_rules().dummies(packages))
        return parse_simulation(apt.run(apt.apt_get, "--simulate", "install", *packages))
    if variant == "apt":
        first = apt.run(apt.apt_get, "--simulate", "dist-upgrade")
    else:
        essential = (
            f"?narrow(?or(?archive(^{suite}$),?codename(^{suite}$)),"
            f"?architecture({arch}),?essential)"
        )
        first = apt.run(
            apt.apt_get, "--simulate", "-o", "pkgCacheGen::ForceEssential=,", "install", essential
        )
    found = parse_simulation(first)
    if not found:
        raise BuildError(f"Resolving the {suite} {arch} Essential set gave no packages:\n{first}")
    apt.mark_installed(found)
    second = ["usr-is-merged", *packages]
    if variant in _PRIORITY:
        second.append(
            f"?narrow(?or(?archive(^{suite}$),?codename(^{suite}$)),"
            f"?architecture({arch}),{_PRIORITY[variant]})"
        )
    if variant == "buildd":
        second.append("build-essential")
    found |= parse_simulation(apt.run(apt.apt_get, "--simulate", "install", *second))
    return found
