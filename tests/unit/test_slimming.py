from __future__ import annotations

import os
from pathlib import Path

from cairn.debian.profiles import load_profile
from cairn.debian.slimming import excluded, main, slim, write_profile

SLIM = load_profile("slim").with_locales(("zh_CN",))


def tree(root: Path, files: dict[str, str]) -> None:
    for path, content in files.items():
        p = root / path
        p.parent.mkdir(parents=True, exist_ok=True)
        if content.startswith("->"):
            p.symlink_to(content[2:])
        else:
            p.write_text(content)


def test_dpkg_semantics_last_match_wins() -> None:
    assert excluded("/usr/share/doc/bash/README", SLIM)
    assert not excluded("/usr/share/doc/bash/copyright", SLIM)
    # dpkg's fnmatch has no FNM_PATHNAME: * crosses directories
    assert excluded("/usr/share/man/man1/deep/er/ls.1.gz", SLIM)
    assert not excluded("/usr/share/locale/zh_CN/LC_MESSAGES/apt.mo", SLIM)
    assert excluded("/usr/share/locale/zh_TW/LC_MESSAGES/apt.mo", SLIM)
    assert not excluded("/usr/bin/bash", SLIM)


def test_slim_removes_what_dpkg_would_have_left_out(tmp_path: Path) -> None:
    tree(
        tmp_path,
        {
            "usr/share/doc/bash/README": "x" * 100,
            "usr/share/doc/bash/copyright": "GPL",
            "usr/share/doc/gcc-12-base/copyright": "GPL",
            "usr/share/doc/libgcc-s1": "->gcc-12-base",
            "usr/share/doc/base-files/FAQ": "->README",
            "usr/share/man/man1/ls.1.gz": "man",
            "usr/share/man/de/man1/ls.1.gz": "man",
            "usr/share/locale/de/LC_MESSAGES/apt.mo": "de",
            "usr/share/locale/zh_CN/LC_MESSAGES/apt.mo": "zh",
            "usr/share/info/dir": "index",
            "var/lib/dpkg/status-old": "old",
            "var/cache/debconf/templates.dat-old": "old",
            "usr/bin/bash": "ELF",
        },
    )
    done = slim(tmp_path, SLIM)
    left = sorted(
        str(p.relative_to(tmp_path)) for p in tmp_path.rglob("*") if p.is_file() or p.is_symlink()
    )
    assert left == [
        "usr/bin/bash",
        "usr/share/doc/bash/copyright",
        "usr/share/doc/gcc-12-base/copyright",
        "usr/share/doc/libgcc-s1",  # a link to a directory holding a kept file
        "usr/share/locale/zh_CN/LC_MESSAGES/apt.mo",
    ]
    # emptied directories go, the skeleton maintainer scripts need stays
    assert not (tmp_path / "usr/share/locale/de").exists()
    assert not (tmp_path / "usr/share/man/de").exists()
    assert sorted(p.name for p in (tmp_path / "usr/share/man").iterdir()) == [
        f"man{i}" for i in range(1, 9)
    ]
    assert (tmp_path / "usr/share/doc").is_dir()
    assert done.files == 6
    assert done.bytes >= 100


def test_filters_only_keeps_apt_lists_for_the_install_that_follows(tmp_path: Path) -> None:
    lists = "var/lib/apt/lists/deb.debian.org_debian_dists_bookworm_main_binary-amd64_Packages"
    tree(tmp_path, {lists: "Package: ca-certificates", "usr/share/doc/bash/README": "x"})
    slim(tmp_path, SLIM, filters_only=True)
    assert (tmp_path / lists).exists()
    assert not (tmp_path / "usr/share/doc/bash/README").exists()
    # already there for the maintainer scripts of the install that follows
    assert (tmp_path / "usr/share/man/man1").is_dir()
    slim(tmp_path, SLIM)
    assert not (tmp_path / lists).exists()
    assert (tmp_path / "usr/share/man/man1").is_dir()


def test_links_are_resolved_inside_the_root_never_on_the_host(tmp_path: Path) -> None:
    # /usr/share/doc/evil -> /etc is a directory on the host, not in the image
    tree(tmp_path, {"usr/share/doc/evil": "->/etc", "usr/share/doc/up": "->../../../../../etc"})
    slim(tmp_path, SLIM)
    assert not os.path.lexists(tmp_path / "usr/share/doc/evil")
    assert not os.path.lexists(tmp_path / "usr/share/doc/up")


def test_hook_entry_point(tmp_path: Path) -> None:
    tree(tmp_path / "root", {"usr/share/doc/bash/README": "x"})
    write_profile(SLIM, tmp_path / "profile.json")
    assert main([str(tmp_path / "profile.json"), str(tmp_path / "root")]) == 0
    assert not (tmp_path / "root/usr/share/doc/bash").exists()
    assert main([]) == 2
    assert main(["--filters-only"]) == 2
