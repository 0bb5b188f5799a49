"""The plan's decision table, on hand-made layouts: what is rebuilt, and why."""

from __future__ import annotations

from pathlib import Path

import pytest

from cairn.family.jobs import BuildOptions, plan_jobs
from cairn.family.lock import Lock, LockEntry, lock_path, request_digest
from cairn.family.plan import ANN_INPUT, ANN_INPUTS, ANN_VERSIONS, Step, make_plan
from cairn.family.spec import Family, load_family
from cairn.oci.image import (
    ANN_BASE_DIGEST,
    Descriptor,
    RunConfig,
    image_config,
    image_index,
    image_manifest,
)
from cairn.oci.layout import OciLayout

SPEC = """
[defaults]
platforms = ["linux/amd64"]
source_date_epoch = 0

[images.root]
packages = ["tzdata"]

[images.child]
from = "root"
packages = ["curl"]
"""


def family(tmp_path: Path, spec: str = SPEC) -> Family:
    directory = tmp_path / "family"
    directory.mkdir(exist_ok=True)
    (directory / "cairn.toml").write_text(spec)
    return load_family(directory)


def plan_of(fam: Family, layout: OciLayout, force: bool = False) -> dict[str, str]:
    steps = make_plan(fam, plan_jobs(fam, BuildOptions()), layout, force)
    return {s.image.name: s.reason for s in steps}


def record(layout: OciLayout, steps: tuple[Step, ...], **override: dict[str, str]) -> None:
    """Write into `layout` what a build of `steps` records (annotations only, no layers);
    `override` changes an image's annotations."""
    manifests: dict[str, Descriptor] = {}
    with layout.staging() as stage:
        for s in steps:
            config = stage.add(image_config(s.platform, (), 0, RunConfig()))
            ann = {ANN_INPUTS: s.inputs, ANN_INPUT: s.input, ANN_VERSIONS: s.versions or "v0"}
            if s.image.parent:
                ann[ANN_BASE_DIGEST] = manifests[s.image.parent].digest
            ann.update(override.get(s.image.name, {}))
            manifest = stage.add(image_manifest(s.platform, config, (), tuple(sorted(ann.items()))))
            manifests[s.image.name] = manifest
            stage.set_ref(s.image.name, stage.add(image_index((manifest,), ())))


@pytest.fixture
def layout(tmp_path: Path) -> OciLayout:
    return OciLayout(tmp_path / "oci")


def test_an_empty_layout_builds_everything_new(tmp_path: Path, layout: OciLayout) -> None:
    assert plan_of(family(tmp_path), layout) == {"root": "new", "child": "new"}


def test_what_was_recorded_is_kept(tmp_path: Path, layout: OciLayout) -> None:
    fam = family(tmp_path)
    record(layout, make_plan(fam, plan_jobs(fam, BuildOptions()), layout, False))
    assert plan_of(fam, layout) == {"root": "unchanged", "child": "unchanged"}
    assert plan_of(fam, layout, force=True) == {"root": "forced", "child": "forced"}


def test_a_changed_child_rebuilds_alone(tmp_path: Path, layout: OciLayout) -> None:
    fam = family(tmp_path)
    record(layout, make_plan(fam, plan_jobs(fam, BuildOptions()), layout, False))
    changed = family(tmp_path, SPEC.replace('"curl"', '"curl", "jq"'))
    assert plan_of(changed, layout) == {"root": "unchanged", "child": "spec changed"}


def test_a_changed_root_rebuilds_its_children(tmp_path: Path, layout: OciLayout) -> None:
    fam = family(tmp_path)
    record(layout, make_plan(fam, plan_jobs(fam, BuildOptions()), layout, False))
    changed = family(tmp_path, SPEC.replace('"tzdata"', '"tzdata", "less"'))
    assert plan_of(changed, layout) == {"root": "spec changed", "child": "parent changed"}


def test_a_child_built_on_another_parent_manifest_rebuilds(
    tmp_path: Path, layout: OciLayout
) -> None:
    fam = family(tmp_path)
    steps = make_plan(fam, plan_jobs(fam, BuildOptions()), layout, False)
    record(layout, steps, child={ANN_BASE_DIGEST: "sha256:" + "0" * 64})
    assert plan_of(fam, layout) == {"root": "unchanged", "child": "parent changed"}


def test_a_changed_lock_rebuilds_the_images_whose_versions_moved(
    tmp_path: Path, layout: OciLayout
) -> None:
    fam = family(tmp_path)
    root = fam.image("root")
    platform = root.platforms[0]
    lock = Lock(lock_path(fam))
    lock.entries[("root", platform.name)] = LockEntry(
        request_digest(root, platform), {"tzdata": "2025a"}
    )
    jobs = plan_jobs(fam, BuildOptions())
    record(layout, make_plan(fam, jobs, layout, False, lock))
    assert {s.image.name: s.reason for s in make_plan(fam, jobs, layout, False, lock)} == {
        "root": "unchanged",
        "child": "unchanged",
    }
    lock.entries[("root", platform.name)] = LockEntry(
        request_digest(root, platform), {"tzdata": "2026a"}
    )
    assert {s.image.name: s.reason for s in make_plan(fam, jobs, layout, False, lock)} == {
        "root": "packages updated",
        "child": "parent changed",
    }
