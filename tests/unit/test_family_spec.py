"""Variants, extra repositories, profile extensions and Dockerfile fragments in cairn.toml."""

from __future__ import annotations

from pathlib import Path

import pytest

from cairn.errors import SpecError
from cairn.family.plan import own_inputs
from cairn.family.spec import load_family
from cairn.platforms import parse_platform

EXAMPLE = Path(__file__).parents[2] / "examples" / "qapm"
AMD64 = parse_platform("linux/amd64")


def write(tmp_path: Path, text: str) -> Path:
    (tmp_path / "cairn.toml").write_text(text)
    return tmp_path


def test_example_family_is_a_tree_with_variants() -> None:
    fam = load_family(EXAMPLE)
    parents = {i.name: i.parent for i in fam.images}
    assert parents == {
        "base": None,
        "base-debug": "base",
        "python": "base",
        "python-debug": "python",
        "python-build": "python",
        "node": "base",
        "node-debug": "node",
        "node-build": "node",
        "java": "base",
        "java-debug": "java",
        "java-build": "java",
        "golang": "base",
        "golang-cgo": "golang",
        "tools": "base",
        "static": None,
        "static-debug": "static",
        "runtime": "static",
        "runtime-debug": "runtime",
        "runtime-cc": "runtime",
        "runtime-cc-debug": "runtime-cc",
        "python-runtime": "runtime",
        "python-runtime-debug": "python-runtime",
        "java-runtime": "runtime",
        "java-runtime-debug": "java-runtime",
        "node-runtime": "runtime-cc",
        "node-runtime-debug": "node-runtime",
    }
    # runtime images: their own variant tables, nonroot, no command
    runtimes = [i for i in fam.images if i.runtime]
    assert {i.name for i in runtimes} == {
        n for n in parents if n.startswith(("static", "runtime")) or "-runtime" in n
    }
    assert fam.image("node-runtime-debug").added == ("busybox-static",)
    assert all(i.user == "65532" and i.cmd == () for i in runtimes)
    debug = fam.image("python-debug")
    assert "strace" in debug.added and "python3" in debug.packages
    assert debug.tags == ("3.13", "3")  # a variant keeps its image's tags
    assert fam.image("base").tags == ("trixie", "13")
    cgo = fam.image("golang-cgo")
    assert dict(cgo.env)["CGO_ENABLED"] == "1"
    assert dict(cgo.env)["PATH"].startswith("/usr/lib/go-1.26/bin:")
    # the golang image extends the slim profile, and its variant extends that
    golang_opts = fam.image("golang").profile.dpkg_options()
    assert "path-exclude=/usr/share/go-1.26/src/*_test.go" in golang_opts
    assert "path-exclude=/usr/share/go-1.26/src/*_test.go" in cgo.profile.dpkg_options()
    assert "path-exclude=/usr/bin/*-lto-dump-*" in cgo.profile.dpkg_options()
    assert not any("go-1.26" in o for o in fam.image("python").profile.dpkg_options())
    # excludes come before the includes: copyright files stay
    assert golang_opts[-1].startswith("path-include=")
    # backports reach golang and its children, nothing else
    assert any("trixie-backports" in s for s in cgo.sources)
    assert not any("backports" in s for s in fam.image("python").sources)
    tools = fam.image("tools")
    assert tools.dockerfile == (EXAMPLE / "tools" / "Dockerfile").resolve()
    assert tools.context == (EXAMPLE / "tools").resolve()


def test_variant_errors_name_the_table(tmp_path: Path) -> None:
    with pytest.raises(SpecError, match=r"images\.base\.variants: there is no \[variants\.dbg\]"):
        load_family(write(tmp_path, '[images.base]\nvariants = ["dbg"]\n[variants.debug]\n'))
    body = (
        '[images.base]\nvariants = ["debug"]\n[images.base-debug]\nfrom = "base"\n'
        "[variants.debug]\n"
    )
    with pytest.raises(SpecError, match="makes an image 'base-debug'"):
        load_family(write(tmp_path, body))
    body = '[images.base]\nvariants = ["debug"]\n[variants.debug]\nfrom = "base"\n'
    with pytest.raises(SpecError, match=r"variants\.debug\.from: a variant is built on each"):
        load_family(write(tmp_path, body))


def test_repository_keys_are_checked(tmp_path: Path) -> None:
    body = '[images.base]\nrepositories = [{ suit = "bookworm-backports" }]\n'
    with pytest.raises(SpecError) as e:
        load_family(write(tmp_path, body))
    assert "images.base.repositories.0.suit: unknown key. Perhaps you meant 'suite'?" in str(
        e.value
    )
    body = (
        "[images.base]\n"
        'repositories = [{ suite = "x", url = "http://127.0.0.1:1/r", trusted = true }]\n'
    )
    img = load_family(write(tmp_path, body)).image("base")
    assert img.sources[-1] == "deb [trusted=yes] http://127.0.0.1:1/r x main"


def test_exclude_must_be_a_plain_absolute_glob(tmp_path: Path) -> None:
    with pytest.raises(SpecError, match=r"images\.base\.exclude\.0: expected an absolute path"):
        load_family(write(tmp_path, '[images.base]\nexclude = ["usr/share/x; rm -rf /"]\n'))


def fragment_family(tmp_path: Path, dockerfile: str, extra: str = "") -> Path:
    (tmp_path / "frag").mkdir(exist_ok=True)
    (tmp_path / "frag" / "Dockerfile").write_text(dockerfile)
    (tmp_path / "frag" / "file.txt").write_text("one")
    body = f'[images.base]\n[images.tools]\nfrom = "base"\ndockerfile = "frag/Dockerfile"\n{extra}'
    return write(tmp_path, body)


def test_fragment_rules(tmp_path: Path) -> None:
    with pytest.raises(SpecError, match="line 2 has a FROM"):
        load_family(fragment_family(tmp_path, "RUN true\nFROM debian\n"))
    with pytest.raises(SpecError, match=r"images\.tools\.packages: a Dockerfile image takes no"):
        load_family(fragment_family(tmp_path, "RUN true\n", 'packages = ["curl"]\n'))
    with pytest.raises(SpecError, match="cannot read"):
        load_family(
            write(tmp_path, '[images.base]\n[images.t]\nfrom = "base"\ndockerfile = "no"\n')
        )
    body = '[images.base]\n[images.t]\nfrom = "base"\ndockerfile = "frag/Dockerfile"\n'
    body += '[images.u]\nfrom = "t"\npackages = ["curl"]\n'
    with pytest.raises(SpecError, match="its parent 't' is built from a Dockerfile"):
        load_family(write(tmp_path, body))


def test_fragment_inputs_cover_its_build_context(tmp_path: Path) -> None:
    d = fragment_family(tmp_path, "COPY file.txt /\n")

    def inputs() -> str:
        fam = load_family(d)
        return own_inputs(fam, fam.image("tools"), AMD64)

    before = inputs()
    assert inputs() == before
    (d / "frag" / "file.txt").write_text("two")
    changed = inputs()
    assert changed != before
    (d / "frag" / "Dockerfile").write_text("COPY file.txt /etc/\n")
    assert inputs() != changed
