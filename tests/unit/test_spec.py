from __future__ import annotations

from pathlib import Path

import pytest

from cairn.errors import SpecError
from cairn.family.plan import input_digest, own_inputs
from cairn.family.spec import load_family
from cairn.platforms import parse_platform

EXAMPLE = Path(__file__).parents[2] / "examples" / "qapm"


def write(tmp_path: Path, text: str) -> Path:
    (tmp_path / "cairn.toml").write_text(text)
    return tmp_path


def test_example_family_loads_with_defaults_applied() -> None:
    fam = load_family(EXAMPLE)
    base = fam.image("base")
    assert base.suite.name == "trixie"
    assert [p.name for p in base.platforms] == ["linux/amd64", "linux/arm64"]
    assert base.profile.name == "slim"
    assert base.variant == "apt"
    assert "path-include=/usr/share/locale/zh_CN/*" in base.profile.dpkg_options()
    assert ("LANG", "C.UTF-8") in base.env
    assert base.env[0][0] == "PATH"
    assert fam.source_date_epoch == 1735689600
    assert fam.output == f"oci:{EXAMPLE.resolve() / 'out' / 'oci'}"


def test_unknown_key_names_file_key_and_suggestion(tmp_path: Path) -> None:
    d = write(tmp_path, '[images.base]\npackges = ["curl"]\n')
    with pytest.raises(SpecError) as e:
        load_family(d)
    msg = str(e.value)
    assert str(d / "cairn.toml") in msg
    assert "images.base.packges: unknown key" in msg
    assert "Perhaps you meant 'packages'?" in msg
    assert e.value.exit_code == 2


def test_unknown_default_key_is_checked_against_defaults(tmp_path: Path) -> None:
    d = write(tmp_path, '[defaults]\nsuit = "bookworm"\n[images.base]\n')
    with pytest.raises(SpecError, match=r"defaults\.suit: unknown key\. Perhaps you meant 'suite'"):
        load_family(d)


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ('[defaults]\nsuite = "buster"\n', r"defaults\.suite: expected one of bookworm, trixie"),
        (
            '[defaults]\nplatforms = ["linux/mips"]\n',
            r"defaults\.platforms\.0: expected one of linux/amd64",
        ),
        (
            '[defaults]\nsource_date_epoch = "yesterday"\n',
            r"defaults\.source_date_epoch: .*got 'yesterday'",
        ),
        ('[defaults]\nprofile = "tiny"\n', r"defaults\.profile: expected one of full, slim"),
        ('[defaults]\nmirror = "deb.debian.org"\n', r"defaults\.mirror: expected an http://"),
        (
            '[defaults]\noutput = "out"\n',
            r"defaults\.output: expected oci:DIR or docker-archive:FILE",
        ),
    ],
)
def test_wrong_values_fail_before_any_work(tmp_path: Path, body: str, expected: str) -> None:
    d = write(tmp_path, body + "[images.base]\n")
    with pytest.raises(SpecError, match=expected):
        load_family(d)


def test_image_level_errors(tmp_path: Path) -> None:
    d = write(tmp_path, '[images.base]\npackages = ["Curl!"]\nvariant = "huge"\n')
    with pytest.raises(SpecError) as e:
        load_family(d)
    assert "images.base.packages.0: expected a Debian package name" in str(e.value)
    assert "images.base.variant:" in str(e.value)
    assert "'huge'" in str(e.value)


def test_no_images_and_bad_image_name(tmp_path: Path) -> None:
    with pytest.raises(SpecError, match="images: required key is missing"):
        load_family(write(tmp_path, "[defaults]\n"))
    with pytest.raises(SpecError, match=r"images\.Base: expected an image name"):
        load_family(write(tmp_path, "[images.Base]\n"))


def test_toml_syntax_error_and_missing_file(tmp_path: Path) -> None:
    with pytest.raises(SpecError, match="is not valid TOML"):
        load_family(write(tmp_path, "[images.base\n"))
    with pytest.raises(SpecError, match="No family spec at"):
        load_family(tmp_path / "nowhere")


def test_unknown_image_name_suggests(tmp_path: Path) -> None:
    fam = load_family(write(tmp_path, "[images.base]\n"))
    with pytest.raises(SpecError, match="Perhaps you meant 'base'"):
        fam.image("bsae")
    with pytest.raises(SpecError) as e:
        fam.image("golang")
    assert e.value.hint == "Known images: base."


def test_image_settings_override_defaults(tmp_path: Path) -> None:
    d = write(
        tmp_path,
        '[defaults]\nsuite = "bookworm"\nlocales = ["de_DE"]\nenv = {A = "1", B = "2"}\n'
        '[images.base]\nsuite = "trixie"\nprofile = "full"\nplatforms = ["linux/arm64"]\n'
        'env = {B = "3"}\ncmd = ["sh"]\nuser = "1000"\n',
    )
    img = load_family(d).image("base")
    assert img.suite.name == "trixie"
    assert img.profile.name == "full"
    assert img.profile.dpkg_options() == ()
    assert [p.name for p in img.platforms] == ["linux/arm64"]
    assert dict(img.env)["B"] == "3"
    assert dict(img.env)["A"] == "1"
    assert img.cmd == ("sh",)
    assert img.user == "1000"


def test_source_date_epoch_from_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "1234")
    assert load_family(write(tmp_path, "[images.base]\n")).source_date_epoch == 1234


FAMILY = """
[defaults]
env = {LANG = "C.UTF-8"}
source_date_epoch = 1735689600
[images.base]
packages = ["ca-certificates"]
cmd = ["bash"]
[images.debug]
from = "base"
packages = ["curl", "ca-certificates"]
env = {PAGER = "less"}
[images.tools]
from = "debug"
packages = ["jq"]
user = "1000"
platforms = ["linux/arm64"]
"""


def test_children_inherit_and_come_after_their_parents(tmp_path: Path) -> None:
    body = FAMILY.replace("[images.base]", "[images.zz]\n[images.base]")
    fam = load_family(write(tmp_path, body))
    order = [i.name for i in fam.images]
    assert order.index("base") < order.index("debug") < order.index("tools")
    tools = fam.image("tools")
    assert tools.parent == "debug"
    assert tools.packages == ("ca-certificates", "curl", "jq")
    assert tools.added == ("jq",)
    assert tools.suite == fam.image("base").suite
    assert dict(tools.env) == {**dict(fam.image("base").env), "PAGER": "less"}
    assert tools.cmd == ("bash",)
    assert tools.user == "1000"
    assert [p.name for p in tools.platforms] == ["linux/arm64"]
    assert fam.image("debug").parent == "base"


def test_missing_parent_names_both_images(tmp_path: Path) -> None:
    body = '[images.base]\n[images.debug]\nfrom = "bsae"\n'
    with pytest.raises(SpecError) as e:
        load_family(write(tmp_path, body))
    assert "images.debug.from: there is no image 'bsae'" in e.value.message
    assert e.value.hint == "Perhaps you meant 'base'?"


def test_cycle_is_named(tmp_path: Path) -> None:
    body = '[images.a]\nfrom = "c"\n[images.b]\nfrom = "a"\n[images.c]\nfrom = "b"\n'
    with pytest.raises(SpecError, match="images form a cycle: a -> c -> b -> a"):
        load_family(write(tmp_path, body))
    with pytest.raises(SpecError, match="images form a cycle: a -> a"):
        load_family(write(tmp_path, '[images.a]\nfrom = "a"\n'))


def test_child_cannot_set_root_only_keys_or_new_platforms(tmp_path: Path) -> None:
    body = '[images.base]\n[images.debug]\nfrom = "base"\nsuite = "trixie"\n'
    with pytest.raises(SpecError, match=r"images\.debug\.suite: a child image takes its suite"):
        load_family(write(tmp_path, body))
    body = (
        "[images.base]\nplatforms = ['linux/amd64']\n"
        "[images.debug]\nfrom = 'base'\nplatforms = ['linux/arm64']\n"
    )
    with pytest.raises(SpecError, match="linux/arm64 is not a platform of its parent 'base'"):
        load_family(write(tmp_path, body))


def test_from_is_suggested_for_a_misspelt_key(tmp_path: Path) -> None:
    with pytest.raises(SpecError, match="Perhaps you meant 'from'"):
        load_family(write(tmp_path, '[images.base]\nfrm = "x"\n'))


def test_input_digests_tell_own_changes_from_inherited_ones(tmp_path: Path) -> None:
    amd = parse_platform("linux/amd64")

    def digests(body: str) -> dict[str, tuple[str, str]]:
        fam = load_family(write(tmp_path, body))
        return {i.name: (own_inputs(fam, i, amd), input_digest(fam, i, amd)) for i in fam.images}

    before = digests(FAMILY)
    assert digests(FAMILY) == before  # stable
    env = digests(FAMILY.replace('LANG = "C.UTF-8"', 'LANG = "C"'))
    assert env["base"][0] != before["base"][0]
    assert env["debug"][0] == before["debug"][0]  # inherited: its own table is the same
    assert env["debug"][1] != before["debug"][1]  # but its input digest follows the parent
    assert env["tools"][1] != before["tools"][1]
    own = digests(FAMILY.replace('packages = ["jq"]', 'packages = ["jq", "yq"]'))
    assert own["tools"][0] != before["tools"][0]
    assert own["debug"] == before["debug"]
