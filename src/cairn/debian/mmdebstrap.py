"""Build a slim Debian root file system tar with mmdebstrap.

`mmdebstrap_command` is pure (and unit-tested); `build_rootfs` runs it, strips
device nodes with mmtarfilter (a container runtime provides /dev), and turns
mmdebstrap's failures into errors that name the cause.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import sys
import tarfile
from dataclasses import dataclass
from pathlib import Path

from cairn.data import data_path
from cairn.debian.cache import DebCache
from cairn.debian.dpkg import STATUS, installed_packages, is_status_entry
from cairn.debian.profiles import Profile
from cairn.debian.resolver import RUNTIME_VARIANT
from cairn.debian.runtime_root import FinishConfig
from cairn.debian.runtime_rules import script_only_error
from cairn.debian.slimming import write_profile
from cairn.debian.suites import Suite
from cairn.engines import require, run_logged, tail
from cairn.errors import BuildError
from cairn.platforms import Platform, emulation_env

MERGED_USR_HOOKS = Path("/usr/share/mmdebstrap/hooks/merged-usr")
INSTALL_PACKAGES = "/usr/sbin/install_packages"


@dataclass(frozen=True)
class RootfsRequest:
    suite: Suite
    platform: Platform
    variant: str
    packages: tuple[str, ...]
    sources: tuple[str, ...]
    profile: Profile
    source_date_epoch: int
    pins: tuple[tuple[str, str], ...] = ()  # (package, version) from cairn.lock
    # A child starts from its parent's file system (its gzip'd layers, in order):
    # apt then installs only what the child adds.
    parent_layers: tuple[Path, ...] = ()
    locales: tuple[str, ...] = ()  # a runtime image keeps the gconv modules these need

    @property
    def runtime(self) -> bool:
        """Packages unpacked, never configured (cairn.debian.runtime_root finishes it)."""
        return self.variant == RUNTIME_VARIANT


@dataclass(frozen=True)
class HookFiles:
    """Files the hooks read: written into the build's scratch directory."""

    dpkg_cfg: Path
    profile_json: Path
    pins: Path | None = None
    runtime: Path | None = None  # a runtime image's FinishConfig
    warnings: Path | None = None  # what finishing it found
    python: str = sys.executable

    @classmethod
    def write(cls, workdir: Path, req: RootfsRequest) -> HookFiles:
        files = cls(
            workdir / "dpkg.cfg",
            workdir / "profile.json",
            workdir / "pins" if req.pins else None,
            workdir / "runtime.json" if req.runtime else None,
            workdir / "warnings.json" if req.runtime else None,
        )
        files.dpkg_cfg.write_text(req.profile.dpkg_cfg())
        write_profile(req.profile, files.profile_json)
        if files.pins is not None:
            files.pins.write_text(apt_pins(req.pins))
        if files.runtime is not None and files.warnings is not None:
            FinishConfig(
                req.packages, req.locales, req.source_date_epoch, str(files.warnings)
            ).write(files.runtime)
        return files


PINS_FILE = "/etc/apt/preferences.d/cairn-lock"


def apt_pins(pins: tuple[tuple[str, str], ...]) -> str:
    """apt preferences that make apt choose exactly the locked versions (1001: even older
    ones); a version the archive no longer has simply does not match."""
    return "\n".join(
        f"Package: {name}\nPin: version {version}\nPin-Priority: 1001\n" for name, version in pins
    )


@dataclass(frozen=True)
class RootfsTar:
    """A finished root file system tar and what cairn read from it."""

    tar: Path
    packages: tuple[tuple[str, str], ...]
    files: int
    warnings: tuple[str, ...] = ()


def _sh(path: str) -> str:
    """A path inside the chroot as a shell word rooted at "$1" (globs stay live)."""
    return '"$1"' + path


def mmdebstrap_command(
    req: RootfsRequest, output: Path, files: HookFiles, cache: DebCache | None, root_mode: bool
) -> list[str]:
    """The mmdebstrap command line that builds `req` into the tar `output`."""
    if req.runtime:
        return runtime_command(req, output, files, cache, root_mode)
    slimming = f"{shlex.quote(files.python)} -m cairn.debian.slimming"
    slim_hook = f'{slimming} {files.profile_json} "$1"'
    cmd = [
        "mmdebstrap",
        f"--mode={'root' if root_mode else 'unshare'}",
        f"--variant={req.variant}",
        f"--architectures={req.platform.debian_arch}",
        "--format=tar",
    ]
    if req.parent_layers:
        unpack = f"{shlex.quote(files.python)} -m cairn.oci.unpack"
        layers = " ".join(shlex.quote(str(p)) for p in req.parent_layers)
        cmd += [
            # first of all hooks: what follows (the profile, the pins, the
            # cached packages) goes on top of the parent, not under it
            f'--setup-hook={unpack} "$1" {layers}',
            # the child's profile replaces the parent's
            '--setup-hook=rm -f "$1"/etc/dpkg/dpkg.cfg.d/10cairn-*',
        ]
    else:
        # Without it, bookworm pulls in usrmerge and with it all of perl (a
        # parent's root is merged already).
        cmd.append(f"--hook-dir={MERGED_USR_HOOKS}")
    cmd += [
        _NO_TRANSLATIONS,
        "--dpkgopt=force-unsafe-io",
        # dpkg honours the profile's filters from the start; what mmdebstrap
        # extracted before dpkg was in charge is slimmed before any maintainer
        # script runs (so update-alternatives registers no excluded man page),
        # and once more when every package is in.
        '--setup-hook=mkdir -p "$1"/etc/dpkg/dpkg.cfg.d',
        # Maintainer scripts (OpenJDK's update-alternatives) write into these
        # while dpkg's filters keep their packaged contents out.
        *(f"--setup-hook=mkdir -p {_sh(d)}" for d in req.profile.keep_dirs),
        f"--setup-hook=upload {files.dpkg_cfg} /etc/dpkg/dpkg.cfg.d/10cairn-{req.profile.name}",
        f'--extract-hook={slimming} --filters-only {files.profile_json} "$1"',
    ]
    if req.packages:
        cmd.append(f"--include={','.join(req.packages)}")
    cmd += _pin_hooks(files)
    if cache is not None:
        cmd += ["--skip=essential/unlink", *_cache_hooks(cache, "customize")]
    customize = [
        # The lock decides this build only; later installs take the archive's versions.
        f"rm -f {_sh(PINS_FILE)}",
        'rm -f "$1"/etc/dpkg/dpkg.cfg.d/99mmdebstrap "$1"/etc/apt/apt.conf.d/99mmdebstrap',
        f"upload {data_path('apt.conf')} /etc/apt/apt.conf.d/90cairn",
        f"upload {data_path('install_packages')} {INSTALL_PACKAGES}",
        f"chmod 0755 {_sh(INSTALL_PACKAGES)}",
        # The build host's resolver and name must not leak into the image.
        'rm -f "$1"/etc/resolv.conf "$1"/etc/hostname',
        ': > "$1"/etc/resolv.conf && echo localhost > "$1"/etc/hostname',
        'chmod 0644 "$1"/etc/resolv.conf "$1"/etc/hostname',
        slim_hook,
        # keytool dates every entry of the JRE's trust store: give them the source date
        f'{shlex.quote(files.python)} -m cairn.debian.keystores "$1" {req.source_date_epoch}',
    ]
    cmd += [f"--customize-hook={h}" for h in customize]
    cmd += [req.suite.name, str(output), *req.sources]
    return cmd


_NO_TRANSLATIONS = '--aptopt=Acquire::Languages "none"'


def _pin_hooks(files: HookFiles) -> list[str]:
    if files.pins is None:
        return []
    return [
        '--setup-hook=mkdir -p "$1"/etc/apt/preferences.d',
        f"--setup-hook=upload {files.pins} {PINS_FILE}",
    ]


def _cache_hooks(cache: DebCache, last: str) -> list[str]:
    """Plain cp, and only new files on the way out: mmdebstrap's sync-in and sync-out copy
    everything both ways (measured: 1.5 s of a 10.8 s build). The copy out is the first
    of the `last` hooks, before anything cleans the archives."""
    debs = shlex.quote(str(cache.directory))
    archives = '"$1"/var/cache/apt/archives'
    return [
        f"--setup-hook=mkdir -p {archives} && "
        f"find {debs} -maxdepth 1 -name '*.deb' -exec cp -p -t {archives} {{}} +",
        f"--{last}-hook=find {archives} -maxdepth 1 -name '*.deb' -exec cp -p -n -t {debs} {{}} +",
    ]


def runtime_command(
    req: RootfsRequest, output: Path, files: HookFiles, cache: DebCache | None, root_mode: bool
) -> list[str]:
    """mmdebstrap's `extract` variant: the packages unpacked, no maintainer script run (so
    no emulation for any platform), then finished by cairn.debian.runtime_root."""
    assert files.runtime is not None
    python = shlex.quote(files.python)
    finishing = f"{python} -m cairn.debian.runtime_root"
    slimming = f"{python} -m cairn.debian.slimming --filters-only {files.profile_json}"
    cmd = [
        "mmdebstrap",
        f"--mode={'root' if root_mode else 'unshare'}",
        f"--variant={RUNTIME_VARIANT}",
        f"--architectures={req.platform.debian_arch}",
        "--format=tar",
    ]
    if req.parent_layers:
        layers = " ".join(shlex.quote(str(p)) for p in req.parent_layers)
        cmd.append(f'--setup-hook={python} -m cairn.oci.unpack "$1" {layers}')
    else:
        cmd.append(f"--hook-dir={MERGED_USR_HOOKS}")
    cmd += [
        _NO_TRANSLATIONS,
        f'--setup-hook={finishing} prepare "$1" {files.runtime}',
        *_pin_hooks(files),
    ]
    if cache is not None:
        cmd += _cache_hooks(cache, "extract")
    cmd += [
        f"--include={','.join(req.packages)}",
        f'--extract-hook={slimming} "$1"',
        f'--extract-hook={finishing} finish "$1" {files.runtime}',
        req.suite.name,
        str(output),
        *req.sources,
    ]
    return cmd


# What apt and dpkg leave in an unpacked root: a runtime image has neither.
RUNTIME_LEFTOVERS = (
    "/etc/apt",
    "/etc/apt/*",
    "/etc/dpkg",
    "/etc/dpkg/*",
    "/var/cache/apt",
    "/var/cache/apt/*",
    "/var/lib/apt",
    "/var/lib/apt/*",
    "/var/log/apt",
    "/var/log/apt/*",
    "/var/lib/dpkg/*",
)


def tar_filter(req: RootfsRequest) -> list[str]:
    """mmtarfilter's options: no device nodes (a container runtime provides /dev); for a
    runtime image, nothing of apt and dpkg but the status.d package database."""
    opts = ["--path-exclude=/dev/*"]
    if req.runtime:
        opts += [f"--path-exclude={p}" for p in RUNTIME_LEFTOVERS]
        opts += ["--path-include=/var/lib/dpkg/status.d", "--path-include=/var/lib/dpkg/status.d/*"]
    return opts


_MISSING_PACKAGE = re.compile(
    r"Unable to locate package (\S+)|Package '?([^' ]+)'? has no installation candidate"
)
_NETWORK = re.compile(
    r"Could not resolve|Temporary failure resolving|Could not connect|Connection refused|"
    r"Failed to fetch|Unable to connect|Network is unreachable|Connection timed out"
)


def explain_failure(req: RootfsRequest, log_text: str, workdir: Path) -> BuildError:
    """mmdebstrap's log, read for the causes a user can fix; the log's end otherwise."""
    what = f"Building the {req.suite.name} root file system for {req.platform.name}"
    last = "\n".join(log_text.splitlines()[-15:])
    if "No space left on device" in log_text:
        return BuildError(
            f"{what} failed because the disk holding {workdir.parent} is full.",
            "Try: free some space there, or set TMPDIR to a directory with more room.",
        )
    pinned = script_only_error(log_text, what)
    if pinned is not None:
        return pinned
    missing = _MISSING_PACKAGE.search(log_text)
    if missing:
        name = missing.group(1) or missing.group(2)
        return BuildError(
            f"{what} failed because package '{name}' does not exist in {req.suite.name} "
            f"for {req.platform.debian_arch}.",
            "Try: check the name with `apt-cache policy NAME` (or packages.debian.org) and fix "
            "`packages` in cairn.toml.",
        )
    if _NETWORK.search(log_text):
        return BuildError(
            f"{what} failed because the Debian mirror could not be reached:\n{last}",
            "Try: check the network and `mirror` / `security_mirror` in cairn.toml.",
        )
    return BuildError(f"{what} failed; mmdebstrap said:\n{last}")


def build_rootfs(req: RootfsRequest, workdir: Path, cache: DebCache | None) -> RootfsTar:
    """Build `req` in `workdir` (scratch space the caller removes) and return the tar.

    mmdebstrap's own chroot goes in `workdir` too (through TMPDIR).
    """
    mmdebstrap = require("mmdebstrap", f"Building a {req.suite.name} root file system")
    mmtarfilter = require("mmtarfilter", "Stripping device nodes from the root file system")
    log = workdir / "mmdebstrap.log"
    raw = workdir / "raw.tar"
    hook_files = HookFiles.write(workdir, req)
    if cache is not None:
        cache.verify()
    cmd = mmdebstrap_command(req, raw, hook_files, cache, root_mode=os.geteuid() == 0)
    cmd[0] = mmdebstrap
    env = {
        **os.environ,
        "SOURCE_DATE_EPOCH": str(req.source_date_epoch),
        "LC_ALL": "C.UTF-8",
        "TMPDIR": str(workdir),
        **emulation_env(req.platform, os.environ),
    }
    if run_logged(cmd, log, env=env) != 0:
        raise explain_failure(req, tail(log, 400), workdir)
    if cache is not None:
        cache.record_new()

    tar = workdir / "rootfs.tar"
    filt = [mmtarfilter, *tar_filter(req)]
    code = run_logged(filt, workdir / "mmtarfilter.log", stdin=raw, stdout=tar)
    raw.unlink()
    if code != 0:
        raise BuildError(
            f"Filtering the root file system failed: {tail(workdir / 'mmtarfilter.log')}"
        )
    packages, files = read_rootfs_tar(tar)
    warnings: tuple[str, ...] = ()
    if hook_files.warnings is not None and hook_files.warnings.exists():
        warnings = tuple(json.loads(hook_files.warnings.read_text()))
    return RootfsTar(tar=tar, packages=packages, files=files, warnings=warnings)


def read_rootfs_tar(tar: Path) -> tuple[tuple[tuple[str, str], ...], int]:
    """Installed packages (from the dpkg status file, or a runtime image's status.d) and
    the regular-file count."""
    packages: list[tuple[str, str]] = []
    files = 0
    with tarfile.open(tar) as tf:
        for member in tf:
            if not member.isfile():
                continue
            files += 1
            name = member.name.removeprefix("./")
            if name == STATUS or is_status_entry(name):
                fileobj = tf.extractfile(member)
                if fileobj is not None:
                    packages += installed_packages(fileobj.read())
    return tuple(sorted(packages)), files


def describe(req: RootfsRequest) -> str:
    """The history line of the layer: how it was made, in words a person can rerun."""
    extra = f" --include={','.join(req.packages)}" if req.packages else ""
    return (
        shlex.join(["mmdebstrap", f"--variant={req.variant}", req.suite.name])
        + extra
        + f" (cairn profile {req.profile.name})"
    )
