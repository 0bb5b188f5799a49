"""cairn compat on real binaries (the family's images, a musl root from Debian's musl and
busybox-static, bullseye's older glibc, programs built here, wheels from PyPI, hostile
files) and cairn dns's model against the real glibc and musl resolvers."""

from __future__ import annotations

import gzip
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from tests.dnsprobe import DnsServers, build
from tests.dnsprobe import run as resolve_for_real
from tests.integration.conftest import Built, Registry, cairn
from tests.schemas import validated

from cairn.compat.dns import Query, resolutions

HERE = Path(__file__).parent.parent
THREADS = HERE / "compat" / "threads.c"
GLIBC_ONLY = HERE / "compat" / "glibconly.c"


def compat(*args: str, code: int = 0) -> dict[str, Any]:
    res = cairn("compat", *args, "--json", check=False)
    assert res.returncode == code, res.stderr
    assert "Traceback" not in res.stderr
    data: dict[str, Any] = validated("compat", res.stdout)
    return data


def by_path(report: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {o["path"]: o for o in report["objects"]}


def kinds(obj: dict[str, Any]) -> set[str]:
    return {r["kind"] for r in obj["reasons"]}


def extract(tmp: Path, suite: str, packages: str) -> Path:
    """Debian packages unpacked (mmdebstrap's extract variant: nothing runs)."""
    root = tmp / suite
    subprocess.run(
        [
            "mmdebstrap",
            "--mode=root",
            "--variant=extract",
            f"--include={packages}",
            "--architectures=amd64",
            suite,
            str(root),
        ],
        capture_output=True,
        check=True,
        timeout=600,
    )
    return root


@pytest.fixture(scope="session")
def roots(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    tmp = tmp_path_factory.mktemp("roots")
    return {
        "musl": extract(tmp, "bookworm", "musl,busybox-static"),
        "bullseye": extract(tmp, "bullseye", "libc6"),
    }


@pytest.fixture(scope="session")
def programs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    tmp = tmp_path_factory.mktemp("programs")
    out = {}
    for libc, cc in (("glibc", "gcc"), ("musl", "musl-gcc")):
        out[libc] = tmp / f"threads-{libc}"
        subprocess.run([cc, "-O1", "-pthread", "-o", str(out[libc]), str(THREADS)], check=True)
    out["musl-static"] = tmp / "threads-musl-static"
    subprocess.run(
        ["musl-gcc", "-static", "-O1", "-pthread", "-o", str(out["musl-static"]), str(THREADS)],
        check=True,
    )
    out["glibc-only.so"] = tmp / "libglibc-only.so"
    subprocess.run(
        ["gcc", "-shared", "-fPIC", "-o", str(out["glibc-only.so"]), str(GLIBC_ONLY)], check=True
    )
    return out


def test_family_images_against_each_other(base: Built) -> None:
    store = base.store
    same = compat(
        f"oci:{store}:base-debug",
        "--target",
        f"oci:{store}:base-debug",
        "--platform",
        "linux/amd64",
    )
    libc = same["target_libc"]
    assert (libc["family"], libc["version"], libc["machine"]) == ("glibc", "2.41", "EM_X86_64")
    assert (libc["elf_class"], libc["path"].rpartition("/")[2]) == (64, "libc.so.6")
    assert same["summary"]["ok"] > 100
    # an image's own objects all load in it (Debian 12's iproute2 had an ATM plugin that
    # needed libatm1, which it only recommends; Debian 13's has none)
    broken = [o for o in same["objects"] if o["verdict"] != "ok"]
    assert broken == []
    assert same["summary"]["min_glibc"] == "2.41"

    onto_base = compat(
        f"oci:{store}:base-debug", "--target", f"oci:{store}:base", "--platform", "linux/amd64"
    )
    tcpdump = by_path(onto_base)["/usr/bin/tcpdump"]
    assert tcpdump["verdict"] == "will-not-load"
    assert any("libpcap.so.0.8" in r["detail"] for r in tcpdump["reasons"])
    # base's own files are found in base
    assert by_path(onto_base)["/usr/bin/apt"]["verdict"] == "ok"


def test_archives_and_registries_are_sources_and_targets(
    base: Built, registry: Registry, tmp_path: Path
) -> None:
    archive = tmp_path / "base.tar"
    subprocess.run(
        [
            "skopeo",
            "copy",
            "--quiet",
            "--override-arch",
            "amd64",
            f"oci:{base.store}:base",
            f"docker-archive:{archive}:compat/base:x",
        ],
        check=True,
        capture_output=True,
    )
    remote = f"{registry.address}/compat/base:x"
    subprocess.run(
        [
            "skopeo",
            "copy",
            "--quiet",
            "--dest-tls-verify=false",
            "--override-arch",
            "amd64",
            f"oci:{base.store}:base",
            f"docker://{remote}",
        ],
        check=True,
        capture_output=True,
    )
    report = compat(
        f"docker-archive:{archive}", "--target", f"docker://{remote}", "--platform", "linux/amd64"
    )
    assert report["summary"]["will_not_load"] == 0 and report["summary"]["ok"] > 50
    assert report["target_libc"]["version"] == "2.41"


def test_go_binaries_static_and_cgo(family_on_registry: str, roots: dict[str, Path]) -> None:
    musl_root = f"dir:{roots['musl']}"
    # the family's Go toolchain: static binaries run on musl too, but the musl root has no
    # /etc/nsswitch.conf, which changes how Go's own resolver orders hosts and DNS
    golang = compat(
        f"docker://{family_on_registry}/golang:1.26",
        "--target",
        musl_root,
        "--platform",
        "linux/amd64",
    )
    go = by_path(golang)["/usr/lib/go-1.26/bin/go"]
    assert go["kind"] == "go (static)"
    assert (go["verdict"], kinds(go)) == ("risky", {"go-no-nsswitch"})
    # skopeo (which cairn uses) is a cgo binary: glibc's loader and libraries
    (skopeo,) = compat(shutil.which("skopeo") or "skopeo", "--target", musl_root)["objects"]
    assert skopeo["kind"] == "go (cgo)" and skopeo["verdict"] == "will-not-load"


def test_another_architecture_will_not_load(base: Built, roots: dict[str, Path]) -> None:
    # the arm64 image's programs on an amd64 root file system
    arm = compat(
        f"oci:{base.store}:base",
        "--platform",
        "linux/arm64",
        "--target",
        f"dir:{roots['bullseye']}",
    )
    verdicts = {o["verdict"] for o in arm["objects"]}
    assert verdicts == {"will-not-load"}
    assert all(kinds(o) == {"wrong-architecture"} for o in arm["objects"])
    assert "EM_AARCH64" in arm["objects"][0]["reasons"][0]["detail"]


def test_glibc_and_musl_programs_on_glibc_and_musl(
    base: Built, roots: dict[str, Path], programs: dict[str, Path]
) -> None:
    musl_root, old_root = f"dir:{roots['musl']}", f"dir:{roots['bullseye']}"
    base_image = f"oci:{base.store}:base"

    glibc_on_musl = compat(str(programs["glibc"]), "--target", musl_root)
    assert glibc_on_musl["target_libc"]["family"] == "musl"
    assert glibc_on_musl["target_libc"]["version"] == "1.2.3"
    (obj,) = glibc_on_musl["objects"]
    assert obj["verdict"] == "will-not-load"
    assert "missing-interpreter" in kinds(obj)
    # musl's loader answers for libc.so.6 itself, but not for what only glibc defines
    (lib,) = compat(str(programs["glibc-only.so"]), "--target", musl_root)["objects"]
    assert lib["verdict"] == "will-not-load"
    assert [r["detail"] for r in lib["reasons"]] == [
        "not defined by musl or any library loaded: gnu_get_libc_version"
    ]

    musl_on_musl = compat(str(programs["musl"]), "--target", musl_root)
    (obj,) = musl_on_musl["objects"]
    # it loads; what differs is the thread stack and the resolver
    assert obj["verdict"] == "risky"
    assert kinds(obj) == {"musl-thread-stack", "musl-behaviour"}
    res = cairn(
        "compat", str(programs["musl"]), "--target", musl_root, "--fail-on", "risky", check=False
    )
    assert res.returncode == 1 and "risky" in res.stdout
    # the same code linked statically carries musl and its ways: the same verdict, anywhere
    for target in (musl_root, base_image):
        platform = ["--platform", "linux/amd64"] if target.startswith("oci:") else []
        (static,) = compat(str(programs["musl-static"]), "--target", target, *platform)["objects"]
        assert (static["verdict"], kinds(static)) == (obj["verdict"], kinds(obj)), target

    musl_on_glibc = compat(
        str(programs["musl"]), "--target", base_image, "--platform", "linux/amd64", code=1 - 1
    )
    (obj,) = musl_on_glibc["objects"]
    assert obj["verdict"] == "will-not-load"
    assert any("/lib/ld-musl-x86_64.so.1" in r["detail"] for r in obj["reasons"])

    # built here against glibc 2.36: bullseye's 2.31 lacks the versions it needs
    new_on_old = compat(str(programs["glibc"]), "--target", old_root)
    assert new_on_old["target_libc"]["version"] == "2.31"
    (obj,) = new_on_old["objects"]
    assert obj["verdict"] == "will-not-load"
    (reason,) = [r for r in obj["reasons"] if r["kind"] == "missing-symbol-version"]
    assert "GLIBC_2.34" in reason["detail"] and "up to GLIBC_2.30" in reason["detail"]
    assert new_on_old["summary"]["min_glibc"] == "2.34"
    res = cairn(
        "compat",
        str(programs["glibc"]),
        "--target",
        old_root,
        "--fail-on",
        "will-not-load",
        check=False,
    )
    assert res.returncode == 1

    fits = compat(str(programs["glibc"]), "--target", base_image, "--platform", "linux/amd64")
    assert fits["summary"] == {"ok": 1, "will_not_load": 0, "risky": 0, "min_glibc": "2.34"}


def test_a_missing_library_names_the_package_the_target_index_has(
    roots: dict[str, Path], tmp_path: Path
) -> None:
    target = tmp_path / "root"
    # not /dev: copying its device nodes would read /dev/full and /dev/zero forever
    shutil.copytree(roots["bullseye"], target, symlinks=True, ignore=shutil.ignore_patterns("dev"))
    lists = target / "var/lib/apt/lists"
    lists.mkdir(parents=True, exist_ok=True)
    contents = (
        "usr/bin/getfattr    utils/attr\n"
        "usr/lib/x86_64-linux-gnu/libselinux.so.1  libs/libselinux1\n"
    )
    with gzip.open(
        lists / "deb.debian.org_debian_dists_bullseye_main_Contents-amd64.gz", "wt"
    ) as f:
        f.write(contents)
    (obj,) = compat("/usr/bin/ls", "--target", f"dir:{target}")["objects"]
    (missing,) = [r for r in obj["reasons"] if r["kind"] == "missing-library"]
    assert missing["detail"].endswith("the target's package index has it in libselinux1")


def download(tmp: Path, spec: str, platform: str) -> Path:
    out = tmp / platform
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "download",
            "--quiet",
            "--no-deps",
            "--only-binary=:all:",
            "--platform",
            platform,
            "--python-version",
            "3.11",
            "--implementation",
            "cp",
            "-d",
            str(out),
            spec,
        ],
        check=True,
        capture_output=True,
        timeout=600,
    )
    (wheel,) = out.glob("*.whl")
    return wheel


@pytest.fixture(scope="session")
def wheels(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    tmp = tmp_path_factory.mktemp("wheels")
    return {
        "manylinux": download(tmp, "markupsafe==3.0.2", "manylinux2014_x86_64"),
        "musllinux": download(tmp, "markupsafe==3.0.2", "musllinux_1_2_x86_64"),
        "numpy": download(tmp, "numpy==2.1.3", "manylinux_2_17_x86_64"),
    }


def test_wheels_by_tag_and_by_their_elf_objects(
    base: Built, roots: dict[str, Path], wheels: dict[str, Path]
) -> None:
    base_image, musl_root = f"oci:{base.store}:base", f"dir:{roots['musl']}"
    amd64 = ("--platform", "linux/amd64")

    ok = compat(str(wheels["manylinux"]), "--target", base_image, *amd64)
    assert ok["summary"]["will_not_load"] == 0 and ok["summary"]["ok"] >= 1
    assert [o["kind"] for o in ok["objects"]] == ["python extension"]

    wrong = compat(str(wheels["musllinux"]), "--target", base_image, *amd64)
    (obj,) = wrong["objects"]
    assert obj["verdict"] == "will-not-load"
    assert {"wheel-tag", "missing-library"} <= kinds(obj)
    assert any("musllinux_1_2_x86_64 needs musl 1.2" in r["detail"] for r in obj["reasons"])

    on_musl = compat(str(wheels["musllinux"]), "--target", musl_root)
    assert on_musl["summary"]["will_not_load"] == 0
    glibc_wheel_on_musl = compat(str(wheels["manylinux"]), "--target", musl_root)
    assert glibc_wheel_on_musl["summary"]["will_not_load"] == 1

    # numpy's extensions find the OpenBLAS it bundles through $ORIGIN
    numpy = compat(str(wheels["numpy"]), "--target", base_image, *amd64)
    assert numpy["summary"]["will_not_load"] == 0, [
        o for o in numpy["objects"] if o["verdict"] != "ok"
    ]
    assert any(p.startswith("/numpy.libs/") for p in by_path(numpy))


def test_hostile_files_are_reported_not_fatal(base: Built, tmp_path: Path) -> None:
    source = tmp_path / "app"
    source.mkdir()
    real = Path("/usr/bin/true").read_bytes()
    (source / "truncated.so").write_bytes(real[:40])
    absurd = bytearray(real[:64]) + bytes(64)
    absurd[0x28:0x30] = (10**12).to_bytes(8, "little")  # e_shoff far past the end
    absurd[0x3C:0x3E] = (0xFFFF).to_bytes(2, "little")  # e_shnum
    (source / "absurd.so").write_bytes(bytes(absurd))
    (source / "loop-a").symlink_to("loop-b")
    (source / "loop-b").symlink_to("loop-a")
    shutil.copy("/usr/bin/true", source / "true")

    report = compat(str(source), "--target", f"oci:{base.store}:base", "--platform", "linux/amd64")
    objects = by_path(report)
    assert set(objects) == {"/absurd.so", "/truncated.so", "/true"}
    for bad in ("/absurd.so", "/truncated.so"):
        assert objects[bad]["verdict"] == "will-not-load"
        assert kinds(objects[bad]) == {"unreadable"}
        assert objects[bad]["reasons"][0]["detail"].startswith(bad)
    assert objects["/true"]["verdict"] == "ok"


# ---------------------------------------------------------------- DNS

HOSTS = "127.0.0.1 localhost\n10.9.9.9 db.internal\n10.5.5.5 database.tcs.cn\n"
SERVERS = ["127.0.0.77", "127.0.0.78"]
ANSWERS = {
    "api.corp.example": "10.1.1.1",
    "db.prod": "10.2.2.2",
    "cache.prod.svc.example": "10.3.3.3",  # only through the search list
    "svc.ok.example": "10.4.4.4",
    "svc.broken.example": "SERVFAIL",
    "db.internal": "10.7.7.7",  # DNS disagrees with /etc/hosts: who asked whom first shows
    "database.tcs.cn.example.com": "10.6.6.6",
}
SEARCH = "search svc.example corp.example\n"
FILES_DNS = "hosts: files dns\n"
CASES = [
    # (name, resolv.conf lines after the nameservers, nsswitch.conf)
    # the claim that musl asks DNS with the search suffixes before /etc/hosts: it does not
    ("database.tcs.cn", "search example.com example.org\n", FILES_DNS),
    ("database.tcs.cn.", "search example.com example.org\n", FILES_DNS),  # the same, a dot
    ("db.internal", SEARCH, FILES_DNS),  # a name in hosts, search list set
    ("api", SEARCH, FILES_DNS),  # no dots: the search list
    ("db.prod", "search svc.example\noptions ndots:2\n", FILES_DNS),  # under ndots:2
    ("db.prod", "search svc.example\noptions ndots:5\n", FILES_DNS),  # under ndots:5
    ("db.prod", "search svc.example\noptions ndots:abc\n", FILES_DNS),  # not a number
    # dots >= ndots, only the search list knows it: glibc falls back to it, musl does not
    ("cache.prod", "search svc.example\n", FILES_DNS),
    ("www.nothere.org", "search svc.example\n", FILES_DNS),  # ndots or more, nowhere
    ("api.corp.example.", SEARCH, FILES_DNS),  # a trailing dot
    ("db.internal.", SEARCH, FILES_DNS),  # a trailing dot skips the hosts entry
    ("db.internal", SEARCH, "\n"),  # no hosts line: glibc's default, files first
    ("db.internal", SEARCH, "hosts: dns files\n"),  # DNS first (musl reads no nsswitch.conf)
]


@pytest.fixture(scope="session")
def resolvers(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    return build(tmp_path_factory.mktemp("gai"))


def outcome(lines: list[str]) -> list[str] | None:
    """The model's result from the program's output: addresses, [] for no such name, None
    for giving up (EAI_AGAIN)."""
    if lines[:1] == ["error"]:
        return [] if lines[1] == "-2" else None
    return lines


@pytest.mark.parametrize(("name", "resolv", "nsswitch"), CASES)
def test_dns_model_predicts_the_real_resolvers(
    name: str, resolv: str, nsswitch: str, resolvers: dict[str, Path], tmp_path: Path
) -> None:
    """What `cairn dns` says (the CLI's own JSON, given the servers' answers) against what
    glibc's and musl's getaddrinfo do: the same questions, and the same result."""
    nameservers = "".join(f"nameserver {s}\n" for s in SERVERS)
    files = {"hosts": HOSTS, "resolv.conf": nameservers + resolv, "nsswitch.conf": nsswitch}
    for label, text in files.items():
        (tmp_path / label).write_text(text)
    report = resolutions(name, HOSTS, nameservers + resolv, nsswitch, ANSWERS)
    model = {r.resolver: r for r in report.resolvers}
    # Debian's musl is 1.2.3
    chosen = {"glibc": model["glibc"], "musl": model["musl 1.1.13-1.2.3"]}
    with DnsServers(SERVERS, ANSWERS) as dns:
        for libc, binary in resolvers.items():
            got = outcome(resolve_for_real(binary, name, {k: tmp_path / k for k in files}))
            time.sleep(0.2)  # the last answers' records
            seen = [Query(*q) for q in dns.take()]
            predicted = chosen[libc]
            assert sorted(seen, key=str) == sorted(predicted.queries, key=str), (libc, name)
            expected = None if predicted.addresses is None else list(predicted.addresses)
            assert got == expected, (libc, name)
            if predicted.answered_by == "hosts" and not predicted.queries:
                assert seen == [], (libc, name)  # the hosts file ends the lookup

    # the command line says the same: a hosts hit is 0 queries, and --json is the model
    cli = cairn_dns(
        name,
        *("--hosts", tmp_path / "hosts", "--resolv", tmp_path / "resolv.conf"),
        *("--nsswitch", tmp_path / "nsswitch.conf"),
    )
    unanswered = resolutions(name, HOSTS, nameservers + resolv, nsswitch)
    assert cli["resolvers"][0]["queries"] == [
        {"name": q.name, "type": q.type, "server": q.server}
        for q in unanswered.resolvers[0].queries
    ]


def cairn_dns(name: str, *args: object) -> dict[str, Any]:
    res = cairn("dns", name, *map(str, args), "--json")
    data: dict[str, Any] = validated("dns", res.stdout)
    return data


def test_the_hosts_file_ends_the_lookup_in_the_cli(tmp_path: Path) -> None:
    """The background notes' own case: a hosts entry answers, on glibc and on musl alike."""
    (tmp_path / "hosts").write_text("192.168.1.10 database.tcs.cn\n")
    (tmp_path / "resolv").write_text("nameserver 127.0.0.1\nsearch example.com example.org\n")
    listed = cairn_dns(
        "database.tcs.cn", "--hosts", tmp_path / "hosts", "--resolv", tmp_path / "resolv"
    )
    for r in listed["resolvers"]:
        assert r["answered_by"] == "hosts" and r["addresses"] == ["192.168.1.10"], r
        assert r["queries"] == [] and [s["action"] for s in r["steps"]] == ["hosts"], r
    (tmp_path / "hosts").write_text("127.0.0.1 localhost\n")
    unlisted = cairn_dns(
        "database.tcs.cn", "--hosts", tmp_path / "hosts", "--resolv", tmp_path / "resolv"
    )
    assert unlisted != listed
    assert all(r["queries"] for r in unlisted["resolvers"])
    text = cairn(
        "dns",
        "database.tcs.cn",
        "--hosts",
        str(tmp_path / "hosts"),
        "--resolv",
        str(tmp_path / "resolv"),
    ).stdout
    assert "DNS queries" in text


def test_a_servfail_ends_musls_search_but_not_glibcs(
    resolvers: dict[str, Path], tmp_path: Path
) -> None:
    resolv = "".join(f"nameserver {s}\n" for s in SERVERS) + "search broken.example ok.example\n"
    files = {"hosts": HOSTS, "resolv.conf": resolv, "nsswitch.conf": FILES_DNS}
    for label, text in files.items():
        (tmp_path / label).write_text(text)
    report = resolutions("svc", HOSTS, resolv, FILES_DNS, ANSWERS)
    model = {r.resolver: r for r in report.resolvers}
    chosen = {"glibc": model["glibc"], "musl": model["musl 1.1.13-1.2.3"]}
    with DnsServers(SERVERS, ANSWERS) as dns:
        for libc, binary in resolvers.items():
            got = outcome(resolve_for_real(binary, "svc", {k: tmp_path / k for k in files}))
            time.sleep(0.2)
            seen = dns.take()
            predicted = chosen[libc]
            # how often a failing question is repeated depends on timing: compare the names
            assert list(dict.fromkeys(n for n, _, _ in seen)) == list(
                dict.fromkeys(q.name for q in predicted.queries)
            ), libc
            expected = None if predicted.addresses is None else list(predicted.addresses)
            assert got == expected, libc
