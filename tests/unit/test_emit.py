"""What `cairn plan --emit` writes parses, and carries the family's graph."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import hcl2
import yaml

from cairn.family.emit import bake, github_actions, gitlab_ci
from cairn.family.spec import load_family

EXAMPLE = Path(__file__).parents[2] / "examples" / "qapm"


def unquote(value: Any) -> Any:
    """python-hcl2 (8) returns string literals as written; HCL's escapes are JSON's."""
    if isinstance(value, dict):
        return {unquote(k): unquote(v) for k, v in value.items()}
    if isinstance(value, list):
        return [unquote(v) for v in value]
    if isinstance(value, str) and len(value) >= 2 and value[0] == value[-1] == '"':
        return json.loads(value).replace("$${", "${").replace("%%{", "%{")
    return value


def test_bake_targets_follow_the_tree() -> None:
    fam = load_family(EXAMPLE)
    doc: dict[str, Any] = unquote(hcl2.loads(bake(fam, "127.0.0.1:5000/qapm")))
    targets = {name: body for t in doc["target"] for name, body in t.items()}
    assert set(targets) == {i.name for i in fam.images}
    group = next(iter(doc["group"][0].values()))
    assert set(group["targets"]) == set(targets)
    for image in fam.images:
        t = targets[image.name]
        assert t["platforms"] == ["linux/amd64", "linux/arm64"]
        assert t["tags"] == [f"127.0.0.1:5000/qapm/{image.name}:{tag}" for tag in image.tags]
        inline = t["dockerfile-inline"]
        if image.parent is None:
            assert "contexts" not in t
            assert "mmdebstrap" in inline and "--architectures=$TARGETARCH" in inline
            assert "path-exclude=/usr/share/doc/*" in inline
        else:
            assert t["contexts"] == {image.parent: f"target:{image.parent}"}
            assert inline.startswith(f"FROM {image.parent}\n")
    assert "install_packages python3" in targets["python"]["dockerfile-inline"]
    assert "useradd" in targets["tools"]["dockerfile-inline"]
    assert targets["tools"]["context"] == "tools"


def test_pipelines_have_a_job_per_image_and_platform_on_native_runners() -> None:
    fam = load_family(EXAMPLE)
    gha = yaml.safe_load(github_actions(fam))
    jobs = gha["jobs"]
    expected = {f"build-{i.name}-{p.debian_arch}" for i in fam.images for p in i.platforms}
    assert set(jobs) == expected | {"publish"}
    assert len(expected) == 2 * len(fam.images)
    for image in fam.images:
        for arch, runner in (("amd64", "ubuntu-24.04"), ("arm64", "ubuntu-24.04-arm")):
            job = jobs[f"build-{image.name}-{arch}"]
            assert job["runs-on"] == runner
            script = "\n".join(s.get("run", "") for s in job["steps"])
            assert f"--image {image.name} --platform linux/{arch}" in script
            assert f"--output oci:cairn-parts/{image.name}-{arch}" in script
            uploads = [s for s in job["steps"] if "upload-artifact" in s.get("uses", "")]
            assert uploads[0]["with"]["name"] == f"oci-{image.name}-{arch}"
            if image.parent:
                # the same platform's parent, whose layout this job starts from
                assert job["needs"] == [f"build-{image.parent}-{arch}"]
                downloads = [s for s in job["steps"] if "download-artifact" in s.get("uses", "")]
                assert downloads[0]["with"] == {
                    "name": f"oci-{image.parent}-{arch}",
                    "path": f"cairn-parts/{image.name}-{arch}",
                }
            else:
                assert "needs" not in job
    # a valid order exists: every job's needs are defined
    for job in jobs.values():
        assert all(n in jobs for n in job.get("needs", []))
    publish = jobs["publish"]
    assert set(publish["needs"]) == expected
    script = publish["steps"][-1]["run"]
    assert "cairn merge examples/qapm cairn-parts/* --output oci:" in script
    assert 'cairn push examples/qapm "$CAIRN_REGISTRY"' in script

    gl = yaml.safe_load(gitlab_ci(fam))
    for image in fam.images:
        for arch in ("amd64", "arm64"):
            job = gl[f"build-{image.name}-{arch}"]
            assert job["tags"] == [f"saas-linux-small-{arch}"]
            assert job["needs"] == (
                [{"job": f"build-{image.parent}-{arch}", "artifacts": True}] if image.parent else []
            )
            assert any(f"--platform linux/{arch}" in line for line in job["script"])
            assert job["artifacts"]["paths"] == [f"cairn-parts/{image.name}-{arch}"]
    assert {n["job"] for n in gl["publish"]["needs"]} == expected
    assert gl["publish"]["stage"] == "publish"
