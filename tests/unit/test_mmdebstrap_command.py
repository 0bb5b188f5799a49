from __future__ import annotations

from pathlib import Path

from cairn.debian.cache import DebCache
from cairn.debian.mmdebstrap import RootfsRequest, describe, mmdebstrap_command
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
    cmd = mmdebstrap_command(request(), Path("/w/raw.tar"), Path("/w/dpkg.cfg"), None, root_mode=True)
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
    assert cmd[-4:] == [
        "bookworm",
        "/w/raw.tar",
        "deb http://m/debian bookworm main",
        "deb http://m/debian bookworm-updates main",
    ] or cmd[-5] == "bookworm"
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
