"""Runtime images without building: the spec's rules, the dummies apt is given, the
files cairn makes in place of maintainer scripts, and the warnings."""

from __future__ import annotations

import hashlib
import os
import subprocess
from pathlib import Path

import pytest

from cairn.debian import keystores
from cairn.debian.runtime_root import FinishConfig, finish, prepare
from cairn.debian.runtime_rules import runtime_rules, script_only_error
from cairn.errors import SpecError
from cairn.family.spec import load_family

# a real certificate of this machine's CA store (its trailing newline stripped)
PEM = sorted(Path("/usr/share/ca-certificates/mozilla").glob("*.crt"))[0].read_text().rstrip("\n")


def spec(tmp_path: Path, text: str) -> Path:
    (tmp_path / "cairn.toml").write_text(text)
    return tmp_path


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        (
            '[images.base]\n[images.rt]\nfrom = "base"\nruntime = true\n',
            "a runtime image is built only on a runtime image",
        ),
        (
            '[images.rt]\nruntime = true\n[images.app]\nfrom = "rt"\nruntime = false\n',
            "no package manager or shell",
        ),
        (
            '[images.rt]\nruntime = true\n[images.app]\nfrom = "rt"\ndockerfile = "D"\n',
            "no shell to run a Dockerfile",
        ),
        (
            '[images.rt]\nruntime = true\nvariant = "minbase"\npackages = ["libc6"]\n',
            "starts from no mmdebstrap",
        ),
        ('[images.rt]\nruntime = true\npackages = ["libc6", "dpkg"]\n', "no package manager"),
        ("[images.rt]\nruntime = true\n", "lists none"),
        (
            '[variants.debug]\npackages = ["curl"]\n[images.rt]\nruntime = true\n'
            'variants = ["debug"]\n',
            "applies to the other kind of image",
        ),
    ],
)
def test_spec_errors_name_the_reason(tmp_path: Path, text: str, needle: str) -> None:
    (tmp_path / "D").write_text("RUN true\n")
    text = text.replace("runtime = true\n[", 'runtime = true\npackages = ["libc6"]\n[')
    with pytest.raises(SpecError) as err:
        load_family(spec(tmp_path, text))
    assert needle in f"{err.value.message} {err.value.hint}"


def test_runtime_variants_and_inheritance(tmp_path: Path) -> None:
    fam = load_family(
        spec(
            tmp_path,
            '[variants.debug]\npackages = ["curl"]\n'
            '[runtime_variants.debug]\npackages = ["busybox-static"]\n'
            '[images.base]\nvariants = ["debug"]\n'
            '[images.rt]\nruntime = true\npackages = ["libc6"]\nvariants = ["debug"]\n'
            '[images.py]\nfrom = "rt"\npackages = ["python3"]\nuser = "1000"\n',
        )
    )
    assert fam.image("base-debug").added == ("curl",) and not fam.image("base-debug").runtime
    rt_debug = fam.image("rt-debug")
    assert rt_debug.runtime and rt_debug.added == ("busybox-static",)
    assert fam.image("py").runtime and fam.image("py").user == "1000"
    assert fam.image("rt").user == "65532" and fam.image("rt").cmd == ()
    assert fam.image("base").cmd == ("bash",)


def test_dummies_keep_script_only_packages_out_unless_asked_for() -> None:
    rules = runtime_rules()
    text = rules.dummies(("openssl", "python3"))
    names = [line.split(": ", 1)[1] for line in text.splitlines() if line.startswith("Package:")]
    assert "debconf" in names and "perl-base" in names and "openssl" not in names
    assert text.count("Status: install ok installed") == len(names)


def test_script_effects_become_warnings_except_for_reproduced_packages() -> None:
    rules = runtime_rules()
    script = (
        "#!/bin/sh\n# update-alternatives in a comment\nupdate-alternatives --install a b c 1\n"
    )
    assert rules.script_effects("openjdk-21-jre-headless", {"postinst": script}) == [
        "make update-alternatives links (call such programs by their real path)"
    ]
    assert rules.script_effects("x", {"postinst": "# update-alternatives only here\n"}) == []
    # `$#` is no comment: the command after it counts
    hidden = 'if [ "$#" -gt 0 ]; then update-alternatives --remove a b; fi\n'
    assert rules.script_effects("x", {"preinst": hidden}) != []
    assert rules.script_effects("ca-certificates", {"postinst": "adduser foo\n"}) == []
    assert rules.gconv_modules(("zh_CN.UTF-8",))[-4:] == ("GBK", "GB18030", "EUC-CN", "libGB")
    assert rules.gconv_modules(("ja",))[-4:] == ("EUC-JP", "SJIS", "IBM943", "libJIS")
    assert rules.gconv_modules(("de_DE.ISO-8859-15",))[-1] == "ISO8859-15"


def test_a_package_pinned_to_a_script_only_one_gets_an_error_with_the_fix() -> None:
    log = (
        "The following packages have unmet dependencies:\n"
        " perl : Depends: perl-base (= 5.40.1-6+deb13u1) but 99999 is to be installed\n"
    )
    err = script_only_error(log, "Resolving packages")
    assert err is not None
    assert "perl needs perl-base itself" in err.message
    assert err.hint and "add perl-base to the image's packages" in err.hint
    assert script_only_error("E: Unable to locate package nope", "Building") is None


def _deb(tmp_path: Path, name: str, files: dict[str, bytes], postinst: str = "") -> Path:
    """A real .deb, made by dpkg-deb."""
    build = tmp_path / f"{name}-build"
    (build / "DEBIAN").mkdir(parents=True)
    sums = []
    for path, data in files.items():
        (build / path).parent.mkdir(parents=True, exist_ok=True)
        (build / path).write_bytes(data)
        sums.append(f"{hashlib.md5(data).hexdigest()}  {path}\n")
    (build / "DEBIAN/md5sums").write_text("".join(sums))
    (build / "DEBIAN/control").write_text(
        f"Package: {name}\nVersion: 1.0-1\nArchitecture: all\nMaintainer: t <t@t>\n"
        "Description: test\n"
    )
    if postinst:
        (build / "DEBIAN/postinst").write_text(postinst)
        (build / "DEBIAN/postinst").chmod(0o755)
    out = tmp_path / f"{name}.deb"
    subprocess.run(
        ["dpkg-deb", "--root-owner-group", "-b", str(build), str(out)],
        check=True,
        capture_output=True,
    )
    return out


def test_finish_makes_what_the_scripts_would_have(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    owners: dict[str, int] = {}
    monkeypatch.setattr(os, "chown", lambda path, uid, gid: owners.__setitem__(str(path), uid))
    root = tmp_path / "root"
    certs = root / "usr/share/ca-certificates/mozilla"
    certs.mkdir(parents=True)
    (certs / "B Root.crt").write_text(PEM)  # no trailing newline: the bundle adds one
    (certs / "A_Root.crt").write_text(PEM + "\n")
    (root / "etc/ssl/certs/java").mkdir(parents=True)
    (root / "usr/share/zoneinfo/Etc").mkdir(parents=True)
    (root / "usr/share/zoneinfo/Etc/UTC").write_bytes(b"TZif")
    (root / "usr/bin").mkdir(parents=True)
    (root / "usr/bin/busybox").write_bytes(b"\x7fELF")
    gconv = root / "usr/lib/x86_64-linux-gnu/gconv"
    gconv.mkdir(parents=True)
    for module in ("GBK", "IBM037", "UNICODE"):
        (gconv / f"{module}.so").write_bytes(b"")
    deb = _deb(
        tmp_path,
        "tool",
        {"usr/bin/tool": b"t", "usr/share/doc/tool/README": b"r"},
        postinst="#!/bin/sh\nupdate-alternatives --install /usr/bin/t t /usr/bin/tool 1\n",
    )
    subprocess.run(["dpkg-deb", "-x", str(deb), str(root)], check=True)
    (root / "usr/share/doc/tool/README").unlink()  # the slim profile's work

    config = FinishConfig(("tool",), ("zh_CN",), 1735689600, str(tmp_path / "w.json"))
    warnings = finish(root, [deb], config, runtime_rules())
    assert warnings == [
        "tool: a runtime image runs no maintainer script, and this package's would make "
        "update-alternatives links (call such programs by their real path)."
    ]
    bundle = (root / "etc/ssl/certs/ca-certificates.crt").read_text()
    assert bundle == (PEM + "\n") * 2
    assert str((root / "usr/lib/ssl/cert.pem").readlink()) == "/etc/ssl/certs/ca-certificates.crt"
    _, entries = keystores.parse((root / "etc/ssl/certs/java/cacerts").read_bytes(), "changeit")
    assert [e.alias for e in entries] == [b"debian:a_root.pem", b"debian:b_root.pem"]
    assert {e.millis for e in entries} == {1735689600000}
    assert str((root / "usr/bin/sh").readlink()) == "busybox"
    assert sorted(p.stem for p in gconv.glob("*.so")) == ["GBK", "UNICODE"]
    assert (
        (root / "var/lib/dpkg/status.d/tool")
        .read_text()
        .startswith("Package: tool\nStatus: install ok installed\nVersion: 1.0-1\n")
    )
    sums = (root / "var/lib/dpkg/status.d/tool.md5sums").read_text()
    assert "usr/bin/tool" in sums and "README" not in sums
    assert owners == {str(root / "root"): 0, str(root / "home/nonroot"): 65532}
    assert (root / "tmp").stat().st_mode & 0o7777 == 0o1777

    # a child's build: apt sees the parent's packages and the dummies as installed
    prepare(root, config, runtime_rules())
    status = (root / "var/lib/dpkg/status").read_text()
    assert "Package: tool\nStatus: install ok installed\nVersion: 1.0-1\n" in status
    packages = [line for line in status.splitlines() if line.startswith("Package: ")]
    rules = runtime_rules()
    expected = ["usr-is-merged", *rules.script_only, "tool"]
    assert packages == [f"Package: {p}" for p in expected]
    assert "usr/bin/tool" not in status  # no md5sums line
