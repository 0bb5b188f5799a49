from __future__ import annotations

import pytest

from cairn.debian.profiles import known_profiles, load_profile


def test_packaged_profiles_load() -> None:
    assert set(known_profiles()) >= {"slim", "full"}
    for name in known_profiles():
        assert load_profile(name).name == name


def test_slim_excludes_come_before_includes_and_keep_copyright() -> None:
    opts = load_profile("slim").dpkg_options()
    kinds = [o.split("=")[0] for o in opts]
    # dpkg applies the last matching filter: every include must follow every exclude.
    assert kinds == sorted(kinds, key=lambda k: k != "path-exclude")
    assert "path-exclude=/usr/share/doc/*" in opts
    assert "path-include=/usr/share/doc/*/copyright" in opts
    # kept directories are made by the slimming hook, not kept through dpkg
    assert not any("/usr/share/man/man1" in o for o in opts)


def test_locales_keep_exactly_the_listed_ones() -> None:
    prof = load_profile("slim").with_locales(("zh_CN", "pt_BR"))
    opts = prof.dpkg_options()
    for kept in ("zh_CN", "pt_BR"):
        assert f"path-include=/usr/share/locale/{kept}/*" in opts
    assert not any("/usr/share/locale/zh/" in o for o in opts)
    assert load_profile("full").with_locales(("zh_CN",)) == load_profile("full")


def test_dpkg_cfg_is_commented_and_complete() -> None:
    prof = load_profile("slim")
    text = prof.dpkg_cfg()
    assert text.startswith("# Written by cairn")
    assert [line for line in text.splitlines() if not line.startswith("#")] == list(
        prof.dpkg_options()
    )


def test_unknown_profile() -> None:
    with pytest.raises(KeyError):
        load_profile("tiny")
