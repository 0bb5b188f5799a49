from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from cairn.debian.cache import DebCache
from cairn.debian.mmdebstrap import (
    HookFiles,
    RootfsRequest,
    describe,
    explain_failure,
    mmdebstrap_command,
)
from cairn.debian.profiles import load_profile
from cairn.debian.suites import apt_sources, known_suites
from cairn.platforms import parse_platform


def request(packages: tuple[str, ...] = ("ca-certificates",)) -> RootfsRequest:
    suite = known_suites()["bookworm"]
    return RootfsRequest(
        suite=suite,
        platform=parse_platform("linux/arm64"),
        variant="minbase",
        packages=packages,
        sources=apt_sources(suite, "http://m/debian", "http://m/debian-security"),
        profile=load_profile("slim"),
        source_date_epoch=0,
    )


def test_sources_cover_updates_and_security() -> None:
    assert apt_sources(known_suites()["trixie"], "http://a", "http://s") == (
        "deb http://a trixie main",
        "deb http://a trixie-updates main",
        "deb http://s trixie-security main",
    )


FILES = HookFiles(Path("/w/dpkg.cfg"), Path("/w/profile.json"), python="/venv/bin/python")


def test_command_shape() -> None:
    cmd = mmdebstrap_command(request(), Path("/w/raw.tar"), FILES, None, root_mode=True)
    assert cmd[:5] == [
        "mmdebstrap",
        "--mode=root",
        "--variant=minbase",
        "--architectures=arm64",
        "--format=tar",
    ]
    # merged /usr without usrmerge (which drags in perl)
    assert "--hook-dir=/usr/share/mmdebstrap/hooks/merged-usr" in cmd
    assert "--include=ca-certificates" in cmd
    # the filters reach dpkg as a file, not through mmdebstrap's slow extraction filter
    assert not any(c.startswith("--dpkgopt=path-") for c in cmd)
    assert "--setup-hook=upload /w/dpkg.cfg /etc/dpkg/dpkg.cfg.d/10cairn-slim" in cmd
    assert cmd[-5:] == [
        "bookworm",
        "/w/raw.tar",
        "deb http://m/debian bookworm main",
        "deb http://m/debian bookworm-updates main",
        "deb http://m/debian-security bookworm-security main",
    ]
    hooks = [c.split("=", 1)[1] for c in cmd if c.startswith("--customize-hook=")]
    assert any(h.startswith("upload ") and h.endswith(" /usr/sbin/install_packages") for h in hooks)
    # slimming runs before any maintainer script, and last, after every package is in
    slim = '/venv/bin/python -m cairn.debian.slimming /w/profile.json "$1"'
    assert (
        "--extract-hook=/venv/bin/python -m cairn.debian.slimming --filters-only "
        '/w/profile.json "$1"' in cmd
    )
    assert hooks[-2:] == [slim, '/venv/bin/python -m cairn.debian.keystores "$1" 0']
    assert not any("sync-" in c for c in cmd)


def test_a_child_starts_from_its_parents_layers() -> None:
    req = replace(request(), parent_layers=(Path("/store/blobs/sha256/a b"), Path("/l2")))
    cmd = mmdebstrap_command(req, Path("/w/raw.tar"), FILES, None, root_mode=True)
    hooks = [c for c in cmd if c.startswith("--") and "-hook=" in c]
    # before any other hook, so the profile and pins land on top of the parent
    assert (
        hooks[0]
        == "--setup-hook=/venv/bin/python -m cairn.oci.unpack \"$1\" '/store/blobs/sha256/a b' /l2"
    )
    assert hooks[1] == '--setup-hook=rm -f "$1"/etc/dpkg/dpkg.cfg.d/10cairn-*'
    # the parent's /usr is merged already: no second usr-is-merged
    assert not any(c.startswith("--hook-dir") for c in cmd)


def test_cache_hooks_and_unshare_mode() -> None:
    cache = DebCache.for_arch(Path("/c"), "arm64")
    cmd = mmdebstrap_command(request(()), Path("/w/r.tar"), FILES, cache, root_mode=False)
    assert "--mode=unshare" in cmd
    assert "--skip=essential/unlink" in cmd
    assert (
        '--setup-hook=mkdir -p "$1"/var/cache/apt/archives && find /c/arm64/debs -maxdepth 1 '
        """-name '*.deb' -exec cp -p -t "$1"/var/cache/apt/archives {} +""" in cmd
    )
    # new .debs are copied out first, before any clean-up hook runs
    customize = [c for c in cmd if c.startswith("--customize-hook=")]
    assert customize[0] == (
        """--customize-hook=find "$1"/var/cache/apt/archives -maxdepth 1 -name '*.deb' """
        "-exec cp -p -n -t /c/arm64/debs {} +"
    )
    assert not any(c.startswith("--include") for c in cmd)


def test_history_line_says_how_to_rebuild() -> None:
    assert describe(request()) == (
        "mmdebstrap --variant=minbase bookworm --include=ca-certificates (cairn profile slim)"
    )


def test_failures_are_explained_from_the_log(tmp_path: Path) -> None:
    work = tmp_path / "scratch" / "cairn-x"
    missing = "I: x\nE: Unable to locate package no-such-pkg\nE: apt-get failed\n"
    assert "package 'no-such-pkg' does not exist in bookworm for arm64" in str(
        explain_failure(request(), missing, work)
    )
    candidate = "E: Package 'oldpkg' has no installation candidate\n"
    assert "package 'oldpkg' does not exist" in str(explain_failure(request(), candidate, work))
    net = (
        "W: Failed to fetch http://127.0.0.1:9/debian/dists/bookworm/InRelease  Could not connect\n"
    )
    err = explain_failure(request(), net, work)
    assert "mirror could not be reached" in err.message
    assert "Could not connect" in err.message
    full = explain_failure(
        request(), "tar: ./usr/bin/x: Cannot write: No space left on device\n", work
    )
    assert "is full" in full.message
    assert str(tmp_path / "scratch") in full.message
    assert "TMPDIR" in full.hint
    other = explain_failure(request(), "E: something else entirely\n", work)
    assert other.message.endswith("E: something else entirely")
