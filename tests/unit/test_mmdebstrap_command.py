from __future__ import annotations

from pathlib import Path

from cairn.debian.cache import DebCache
from cairn.debian.mmdebstrap import RootfsRequest, describe, explain_failure, mmdebstrap_command
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


def test_command_shape() -> None:
    cmd = mmdebstrap_command(
        request(), Path("/w/raw.tar"), Path("/w/dpkg.cfg"), None, root_mode=True
    )
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
    assert "--dpkgopt=path-exclude=/usr/share/man/*" in cmd
    assert (
        cmd[-4:]
        == [
            "bookworm",
            "/w/raw.tar",
            "deb http://m/debian bookworm main",
            "deb http://m/debian bookworm-updates main",
        ]
        or cmd[-5] == "bookworm"
    )
    hooks = [c.split("=", 1)[1] for c in cmd if c.startswith("--customize-hook=")]
    assert "upload /w/dpkg.cfg /etc/dpkg/dpkg.cfg.d/10cairn-slim" in hooks
    assert any(h.startswith("upload ") and h.endswith(" /usr/sbin/install_packages") for h in hooks)
    assert not any("sync-" in c for c in cmd)


def test_cache_hooks_and_unshare_mode() -> None:
    cache = DebCache(Path("/c/debs/arm64"))
    cmd = mmdebstrap_command(request(()), Path("/w/r.tar"), Path("/w/d"), cache, root_mode=False)
    assert "--mode=unshare" in cmd
    assert "--skip=essential/unlink" in cmd
    assert "--setup-hook=sync-in /c/debs/arm64 /var/cache/apt/archives" in cmd
    assert "--customize-hook=sync-out /var/cache/apt/archives /c/debs/arm64" in cmd
    # the cache is copied out before any clean-up hook runs
    first_customize = next(c for c in cmd if c.startswith("--customize-hook="))
    assert "sync-out" in first_customize
    assert not any(c.startswith("--include") for c in cmd)


def test_history_line_says_how_to_rebuild() -> None:
    assert describe(request()) == (
        "mmdebstrap --variant=minbase bookworm --include=ca-certificates (cairn profile slim)"
    )


def test_failures_are_explained_from_the_log(tmp_path: Path) -> None:
    work = tmp_path / "store" / ".oci.cairn-staging-1-x" / "work" / "base-arm64"
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
    assert "disk is full" in full.message
    assert str(tmp_path / "store") in full.message
    other = explain_failure(request(), "E: something else entirely\n", work)
    assert other.message.endswith("E: something else entirely")
