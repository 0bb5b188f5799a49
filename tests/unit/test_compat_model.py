"""The pieces of cairn compat and cairn dns that need no binaries."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cairn.compat.dns import _candidates, parse_hosts, parse_resolv, resolutions
from cairn.compat.rootfs import RootDir
from cairn.compat.target import Libc, ld_so_conf
from cairn.compat.wheels import platform_tags, tag_reasons
from cairn.inroot import LinkLoop
from cairn.output import dumps
from tests.schemas import validated

GLIBC = Libc("glibc", "2.36", "/lib/x86_64-linux-gnu/libc.so.6", "EM_X86_64")
MUSL = Libc("musl", "1.2.3", "/lib/ld-musl-x86_64.so.1", "EM_X86_64")


def test_paths_resolve_inside_the_root(tmp_path: Path) -> None:
    (tmp_path / "usr/lib").mkdir(parents=True)
    (tmp_path / "usr/lib/libz.so.1.3").write_text("z")
    (tmp_path / "usr/lib/libz.so.1").symlink_to("libz.so.1.3")
    (tmp_path / "lib").symlink_to("/usr/lib")  # absolute: the root's /usr/lib, not the host's
    (tmp_path / "usr/lib/loop").symlink_to("loop")
    root = RootDir(tmp_path)
    assert root.resolve("/lib/libz.so.1") == tmp_path / "usr/lib/libz.so.1.3"
    assert root.resolve("/lib/../etc/passwd") is None
    with pytest.raises(LinkLoop):
        root.resolve("/usr/lib/loop/x")


def test_ld_so_conf_follows_includes(tmp_path: Path) -> None:
    (tmp_path / "etc/ld.so.conf.d").mkdir(parents=True)
    (tmp_path / "etc/ld.so.conf").write_text("include /etc/ld.so.conf.d/*.conf\n/opt/lib\n")
    (tmp_path / "etc/ld.so.conf.d/b.conf").write_text("# comment\n/usr/lib/b\n")
    (tmp_path / "etc/ld.so.conf.d/a.conf").write_text("/usr/lib/a:/usr/lib/a2\n")
    assert ld_so_conf(RootDir(tmp_path)) == ["/usr/lib/a", "/usr/lib/a2", "/usr/lib/b", "/opt/lib"]


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
    assert conf.ndots == conf.musl_ndots == 2
    assert _candidates("x.y", conf.ndots, conf.search, musl=False) == [
        "x.y.a.example",
        "x.y.b.example",
        "x.y",
    ]
    assert _candidates("x.y.z", conf.ndots, conf.search, musl=False) == [
        "x.y.z",
        "x.y.z.a.example",
        "x.y.z.b.example",
    ]
    assert _candidates("x.y.z", conf.ndots, conf.search, musl=True) == ["x.y.z"]
    assert _candidates("x.", conf.ndots, conf.search, musl=True) == ["x"]


def test_pitfalls_name_what_differs() -> None:
    resolv = "nameserver 10.0.0.1\nnameserver 10.0.0.2\nsearch svc.local\noptions ndots:5 rotate\n"
    found = {r.resolver: r for r in resolutions("db.", "10.0.0.3 db\n", resolv, None).resolvers}
    glibc, musl = found["glibc"], found["musl 1.1.13-1.2.3"]
    assert any("ends with a dot" in p for p in glibc.pitfalls)
    assert any("ignores these options: rotate" in p for p in musl.pitfalls)
    assert any("every nameserver at once" in p for p in musl.pitfalls)
    assert not any("TCP" in p for p in found["musl >=1.2.4"].pitfalls)
    assert [s.action for s in found["musl <1.1.13"].steps] == ["hosts", "dns"]


def test_a_hosts_entry_ends_every_lookup_with_no_query() -> None:
    report = resolutions(
        "database.tcs.cn",
        "192.168.1.10 database.tcs.cn\n",
        "nameserver 127.0.0.1\nsearch example.com example.org\n",
        None,
    )
    for r in report.resolvers:
        assert r.answered_by == "hosts" and r.addresses == ("192.168.1.10",)
        assert r.queries == () and [s.action for s in r.steps] == ["hosts"]
        assert r.pitfalls == ()
    # glibc told to ask DNS first asks it (and, with DNS silent, then finds the hosts entry)
    dns_first = resolutions(
        "database.tcs.cn",
        "192.168.1.10 database.tcs.cn\n",
        "nameserver 127.0.0.1\n",
        "hosts: dns files\n",
    ).resolvers[0]
    assert [s.action for s in dns_first.steps] == ["dns", "hosts"]
    assert len(dns_first.queries) == 2 and dns_first.answered_by == "hosts"


def test_malformed_lines_are_findings_read_as_the_resolvers_do() -> None:
    conf = parse_resolv("nameserver 127.0.0.1\nnameserver not-an-ip\noptions ndots:abc\n")
    assert conf.nameservers == ("127.0.0.1",)
    assert (conf.ndots, conf.musl_ndots) == (0, 1)  # glibc's atoi, musl's strtoul
    assert len(conf.findings) == 2
    assert parse_resolv("options ndots:3x ndots:99\n").ndots == 15
    hosts = parse_hosts("300.1.1.1 bad\nlonely\n10.0.0.1 good # comment\n")
    assert hosts.names == {"good": ["10.0.0.1"]}
    assert [f.split(":")[0] for f in hosts.findings] == ["hosts line 1", "hosts line 2"]


LINE = st.text(alphabet=st.characters(exclude_categories=["Cs"]), max_size=40)
WORDS = st.sampled_from(
    [
        "nameserver",
        "search",
        "domain",
        "options",
        "ndots:",
        "ndots:-3",
        "ndots:99",
        "hosts:",
        "files",
        "dns",
        "[NOTFOUND=return]",
        "127.0.0.1",
        "::1",
        "fe80::1%eth0",
        ".",
        "a.b.",
        "#",
    ]
)
FILE = st.lists(st.one_of(LINE, st.lists(WORDS, max_size=5).map(" ".join)), max_size=8).map(
    "\n".join
)


@settings(max_examples=300, deadline=None)
@given(name=LINE, hosts=FILE, resolv=FILE, nsswitch=st.one_of(st.none(), FILE))
def test_any_input_gives_a_report_never_an_exception(
    name: str, hosts: str, resolv: str, nsswitch: str | None
) -> None:
    report = resolutions(name, hosts, resolv, nsswitch)
    assert len(report.resolvers) == 4
    for r in report.resolvers:
        # musl always starts with the hosts file; glibc as nsswitch.conf says (maybe nothing)
        assert r.parallel is False or r.steps[0].action == "hosts"
        assert r.answered_by in ("hosts", "dns", "")
        assert (r.answered_by == "") == (r.addresses in ((), None))
    validated("dns", dumps(report))  # what --json prints, as its schema says
