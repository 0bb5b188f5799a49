"""The pieces of cairn compat and cairn dns that need no binaries."""

from __future__ import annotations

from pathlib import Path

import pytest

from cairn.compat.dns import _candidates, parse_resolv, resolutions
from cairn.compat.rootfs import LinkLoop, RootFs
from cairn.compat.target import Libc, ld_so_conf
from cairn.compat.wheels import platform_tags, tag_reasons

GLIBC = Libc("glibc", "2.36", "/lib/x86_64-linux-gnu/libc.so.6", "EM_X86_64")
MUSL = Libc("musl", "1.2.3", "/lib/ld-musl-x86_64.so.1", "EM_X86_64")


def test_paths_resolve_inside_the_root(tmp_path: Path) -> None:
    (tmp_path / "usr/lib").mkdir(parents=True)
    (tmp_path / "usr/lib/libz.so.1.3").write_text("z")
    (tmp_path / "usr/lib/libz.so.1").symlink_to("libz.so.1.3")
    (tmp_path / "lib").symlink_to("/usr/lib")  # absolute: the root's /usr/lib, not the host's
    (tmp_path / "usr/lib/loop").symlink_to("loop")
    root = RootFs(tmp_path)
    assert root.resolve("/lib/libz.so.1") == tmp_path / "usr/lib/libz.so.1.3"
    assert root.resolve("/lib/../etc/passwd") is None
    with pytest.raises(LinkLoop):
        root.resolve("/usr/lib/loop/x")


def test_ld_so_conf_follows_includes(tmp_path: Path) -> None:
    (tmp_path / "etc/ld.so.conf.d").mkdir(parents=True)
    (tmp_path / "etc/ld.so.conf").write_text("include /etc/ld.so.conf.d/*.conf\n/opt/lib\n")
    (tmp_path / "etc/ld.so.conf.d/b.conf").write_text("# comment\n/usr/lib/b\n")
    (tmp_path / "etc/ld.so.conf.d/a.conf").write_text("/usr/lib/a:/usr/lib/a2\n")
    assert ld_so_conf(RootFs(tmp_path)) == ["/usr/lib/a", "/usr/lib/a2", "/usr/lib/b", "/opt/lib"]


@pytest.mark.parametrize(
    ("wheel", "libc", "blocks"),
    [
        ("m-3.0-cp311-cp311-manylinux_2_17_x86_64.manylinux2014_x86_64.whl", GLIBC, False),
        ("m-3.0-cp311-cp311-manylinux_2_39_x86_64.whl", GLIBC, True),
        ("m-3.0-cp311-cp311-musllinux_1_2_x86_64.whl", GLIBC, True),
        ("m-3.0-cp311-cp311-musllinux_1_2_x86_64.whl", MUSL, False),
        ("m-3.0-cp311-cp311-manylinux1_x86_64.whl", MUSL, True),
        ("m-3.0-cp311-cp311-manylinux_2_17_aarch64.whl", GLIBC, True),
        ("m-3.0-py3-none-any.whl", MUSL, False),
    ],
)
def test_wheel_platform_tags(wheel: str, libc: Libc, blocks: bool) -> None:
    blocking, _ = tag_reasons(wheel, libc)
    assert bool(blocking) == blocks, blocking


def test_wheel_tags_are_the_last_field() -> None:
    assert platform_tags("a-1-cp311-cp311-manylinux_2_17_x86_64.manylinux2014_x86_64.whl") == [
        "manylinux_2_17_x86_64",
        "manylinux2014_x86_64",
    ]


def test_search_order_differs_above_ndots() -> None:
    conf = parse_resolv("nameserver 10.0.0.1\nsearch a.example b.example\noptions ndots:2\n")
    assert conf.ndots == 2
    assert _candidates("x.y", conf, musl=False, search_supported=True) == [
        "x.y.a.example",
        "x.y.b.example",
        "x.y",
    ]
    assert _candidates("x.y.z", conf, musl=False, search_supported=True) == [
        "x.y.z",
        "x.y.z.a.example",
        "x.y.z.b.example",
    ]
    assert _candidates("x.y.z", conf, musl=True, search_supported=True) == ["x.y.z"]
    assert _candidates("x.", conf, musl=True, search_supported=True) == ["x"]


def test_pitfalls_name_what_differs() -> None:
    resolv = "nameserver 10.0.0.1\nnameserver 10.0.0.2\nsearch svc.local\noptions ndots:5 rotate\n"
    found = {r.resolver: r for r in resolutions("db.", "10.0.0.3 db\n", resolv, None)}
    glibc, musl = found["glibc"], found["musl 1.1.13-1.2.3"]
    assert any("ends with a dot" in p for p in glibc.pitfalls)
    assert any("ignores these options: rotate" in p for p in musl.pitfalls)
    assert any("every nameserver at once" in p for p in musl.pitfalls)
    assert not any("TCP" in p for p in found["musl >=1.2.4"].pitfalls)
    assert [s.action for s in found["musl <1.1.13"].steps] == ["hosts", "dns"]
