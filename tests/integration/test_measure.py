"""cairn analyze, compare, sbom and scan on the session's real images, from every kind of
source (an OCI layout, a docker archive, a registry, a Docker engine, a directory), with
the HTML report opened in headless Chromium and the SBOMs checked by their formats' own
validators."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from cyclonedx.schema import SchemaVersion
from cyclonedx.validation.json import JsonStrictValidator
from referencing import Registry as SchemaRegistry
from referencing import Resource
from spdx_tools.spdx.parser.parse_anything import parse_file
from spdx_tools.spdx.validation.document_validator import validate_full_spdx_document
from tests.integration.conftest import ROOT, Built, Docker, Registry
from tests.schemas import validated

from cairn.family.refresh import installed_versions
from cairn.oci import skopeo
from cairn.oci.layout import OciLayout
from cairn.oci.select import select_manifest
from cairn.oci.unpack import unpack_layers
from cairn.platforms import parse_platform

SCHEMAS = ROOT / "docs" / "schemas"
AMD64 = parse_platform("linux/amd64")


def schema(name: str) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads((SCHEMAS / name).read_text())
    return loaded


def run(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "cairn", *args],
        capture_output=True,
        text=True,
        check=False,
        env={**os.environ, **(env or {})},
        timeout=600,
    )


def analysis(*args: str, env: dict[str, str] | None = None) -> dict[str, Any]:
    res = run("analyze", *args, "--json", env=env)
    assert res.returncode == 0, res.stderr
    result: dict[str, Any] = validated("analyze", res.stdout)
    jsonschema.validate(result, schema("analysis.schema.json"))
    assert sum(c["bytes"] for c in result["categories"]) == result["total_bytes"]
    assert result["layers_bytes"] == result["total_bytes"] + result["wasted_bytes"]
    return result


def test_analyze_the_family_images(base: Built) -> None:
    store = base.store
    a = analysis(f"oci:{store}:base", "-p", "linux/amd64")
    assert a["platform"] == "linux/amd64"
    assert a["os"]["id"] == "debian" and a["os"]["version_id"] == "13"
    assert a["libc"] == {"family": "glibc", "version": "2.41"}
    assert a["package_managers"] == ["dpkg"] and a["shell"] is True
    assert a["package_count"] == base.platform("base", "linux/amd64")["packages"]
    assert {p["layer"] for p in a["packages"]} == {0}
    assert a["findings"] == [] and a["wasted_bytes"] == 0
    layout = OciLayout(store)
    manifest = select_manifest(layout, "base", AMD64)
    assert a["compressed_bytes"] == sum(layer["size"] for layer in manifest["layers"])
    cats = {c["name"]: c["bytes"] for c in a["categories"]}
    # the slim profile leaves no manuals; copyright files stay
    assert cats["man and info"] == 0 and 0 < cats["docs"] < 2_000_000
    libc = next(p for p in a["packages"] if p["name"] == "libc6")
    assert libc["source"] == "glibc" and libc["bytes"] > 10_000_000
    assert libc["version"] == installed_versions(layout, "base", AMD64)["libc6"]

    debug = analysis(f"oci:{store}:base-debug", "-p", "linux/arm64")
    assert debug["platform"].startswith("linux/arm64") and debug["libc"]["family"] == "glibc"
    layers = {p["name"]: p["layer"] for p in debug["packages"]}
    assert layers["libc6"] == 0 and layers["curl"] == 1 and layers["strace"] == 1
    # the child rewrites dpkg's status and debconf's cache: both counts of waste see it
    wasted = {w["path"] for w in debug["wasted_paths"]}
    assert "/var/lib/dpkg/status" in wasted
    assert debug["wasted_bytes_dive"] >= debug["wasted_bytes"] > 0
    assert any(p["name"] == "strace" for p in debug["slimming"]["unneeded_packages"])


def test_every_source_kind_measures_the_same_image(
    base: Built, registry: Registry, docker: Docker, tmp_path: Path
) -> None:
    oci = f"oci:{base.store}:base-debug"
    reference = analysis(oci, "-p", "linux/amd64")
    archive = tmp_path / "base-debug.tar"
    skopeo.copy(oci, f"docker-archive:{archive}:measure/base-debug:1", AMD64)
    pushed = f"{registry.address}/measure/base-debug:1"
    skopeo.copy(oci, f"docker://{pushed}", AMD64, options=("--dest-tls-verify=false",))
    docker("load", "-i", str(archive))
    saved = tmp_path / "saved.tar"  # the engine's own archive format, `docker save`
    docker("save", "-o", str(saved), "measure/base-debug:1")
    root = tmp_path / "rootfs"
    root.mkdir()
    layout = OciLayout(base.store)
    unpack_layers(
        [
            layout.blob_path(m["digest"])
            for m in select_manifest(layout, "base-debug", AMD64)["layers"]
        ],
        root,
    )
    sources = {
        "docker-archive": analysis(f"docker-archive:{archive}"),
        "docker save": analysis(f"docker-archive:{saved}"),
        "docker": analysis(f"docker://{pushed}"),
        "docker-daemon": analysis(
            "docker-daemon:measure/base-debug:1", env={"DOCKER_HOST": docker.host}
        ),
        "dir": analysis(f"dir:{root}"),
    }
    for kind, got in sources.items():
        for key in (
            "total_bytes",
            "files",
            "categories",
            "package_count",
            "unowned_bytes",
            "libc",
            "os",
        ):
            assert got[key] == reference[key], (kind, key)
        assert [(p["name"], p["bytes"]) for p in got["packages"]] == [
            (p["name"], p["bytes"]) for p in reference["packages"]
        ], kind
        if kind != "dir":
            for key in ("wasted_bytes", "wasted_bytes_dive", "efficiency", "layers_bytes"):
                assert got[key] == reference[key], (kind, key)
    assert sources["docker"]["compressed_bytes"] == reference["compressed_bytes"]
    assert sources["dir"]["layers"][0]["created_by"].startswith("the directory")


def chromium_dom(page: Path) -> str:
    chromium = shutil.which("chromium")
    if chromium is None:
        pytest.fail("chromium is missing: scripts/setup installs it")
    res = subprocess.run(
        [
            chromium,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--window-size=1200,2000",
            "--virtual-time-budget=5000",
            "--dump-dom",
            page.as_uri(),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    return res.stdout


def tiles(dom: str, treemap: str) -> list[dict[str, float]]:
    """The rectangles the page's script drew into one treemap's <svg>."""
    block = re.search(rf'<div class="treemap" id="{treemap}"[^>]*>(.*?)</div>', dom, re.S)
    assert block is not None, f"{treemap} is not in the page"
    rects = re.findall(r'<rect class="tile" ([^>]*)>', block.group(1))
    out = []
    for attrs in rects:
        values = dict(re.findall(r'([\w-]+)="([^"]*)"', attrs))
        out.append({k: float(values[k]) for k in ("x", "y", "width", "height", "data-bytes")})
    return out


def test_html_report_draws_its_treemaps_in_chromium(base: Built, tmp_path: Path) -> None:
    page = tmp_path / "report.html"
    res = run("analyze", f"oci:{base.store}:base-debug", "-p", "linux/amd64", "--html", str(page))
    assert res.returncode == 0, res.stderr
    html = page.read_text()
    assert "http://" not in html.replace("http://www.w3.org/2000/svg", "")  # nothing to fetch
    assert "https://" not in html
    dom = chromium_dom(page)
    assert 'data-treemap="rendered"' in dom
    for treemap in ("treemap-categories", "treemap-packages"):
        drawn = tiles(dom, treemap)
        assert len(drawn) > 5
        width = max(t["x"] + t["width"] for t in drawn)
        height = max(t["y"] + t["height"] for t in drawn)
        area = sum(t["width"] * t["height"] for t in drawn)
        assert area == pytest.approx(width * height, rel=0.01)  # the tiles fill the map
        # each tile's area is its share of the bytes
        total = sum(t["data-bytes"] for t in drawn)
        biggest = max(drawn, key=lambda t: t["data-bytes"])
        assert biggest["width"] * biggest["height"] / area == pytest.approx(
            biggest["data-bytes"] / total, rel=0.01
        )

    cmp_page = tmp_path / "compare.html"
    res = run(
        "compare",
        f"oci:{base.store}:base",
        f"oci:{base.store}:base-debug",
        "-p",
        "linux/amd64",
        "--html",
        str(cmp_page),
    )
    assert res.returncode == 0, res.stderr
    dom = chromium_dom(cmp_page)
    assert len(tiles(dom, "treemap-0")) > 3 and len(tiles(dom, "treemap-1")) > 3


def test_compare_as_markdown_and_json(base: Built) -> None:
    images = [f"oci:{base.store}:base", f"oci:{base.store}:base-debug"]
    md = run("compare", *images, "-p", "linux/amd64", "--markdown")
    assert md.returncode == 0, md.stderr
    lines = md.stdout.splitlines()
    assert lines[0] == f"| measured | {images[0]} | {images[1]} |"
    assert any(re.match(r"\| libc \| glibc 2\.41 \| glibc 2\.41 \|", line) for line in lines)
    res = run("compare", *images, "-p", "linux/amd64", "--json")
    data = validated("compare", res.stdout)
    registry = SchemaRegistry().with_resource(
        "analysis.schema.json", Resource.from_contents(schema("analysis.schema.json"))
    )
    jsonschema.Draft202012Validator(schema("compare.schema.json"), registry=registry).validate(data)
    sizes = next(r for r in data["rows"] if r["metric"] == "size (bytes)")["values"]
    assert sizes[0] < sizes[1]


def test_sboms_pass_their_formats_validators(base: Built, tmp_path: Path) -> None:
    ref = f"oci:{base.store}:base"
    spdx_file = tmp_path / "base.spdx.json"
    res = run("sbom", ref, "-p", "linux/amd64", "--format", "spdx-json", "-o", str(spdx_file))
    assert res.returncode == 0, res.stderr
    assert validate_full_spdx_document(parse_file(str(spdx_file))) == []
    spdx = json.loads(spdx_file.read_text())
    packages = {p["name"]: p for p in spdx["packages"]}
    assert len(packages) - 1 == base.platform("base", "linux/amd64")["packages"]  # and the image
    assert "GPL-3.0-or-later" in packages["bash"]["licenseDeclared"]
    purl = packages["libc6"]["externalRefs"][0]["referenceLocator"]
    assert re.fullmatch(
        r"pkg:deb/debian/libc6@2\.41-\d+(%2Bdeb13u\d+)?\?arch=amd64&distro=debian-13&upstream=glibc",
        purl,
    ), purl

    res = run("sbom", ref, "-p", "linux/amd64", "--format", "cyclonedx-json")
    assert res.returncode == 0, res.stderr
    assert JsonStrictValidator(SchemaVersion.V1_5).validate_str(res.stdout) is None
    bom = json.loads(res.stdout)
    assert {c["purl"] for c in bom["components"]} >= {purl}
    # the same image gives the same bytes
    assert run("sbom", ref, "-p", "linux/amd64", "--format", "cyclonedx-json").stdout == res.stdout


def test_scan_sorts_findings_and_gates_on_the_actionable(base: Built, tmp_path: Path) -> None:
    installed = installed_versions(OciLayout(base.store), "base", AMD64)
    glibc = installed["libc6"]
    tracker = {
        "glibc": {
            "CVE-2099-0001": {
                "releases": {
                    "trixie": {
                        "status": "resolved",
                        "fixed_version": glibc + "+1",
                        "urgency": "high",
                    }
                }
            },
            "CVE-2099-0002": {
                "releases": {
                    "trixie": {"status": "resolved", "fixed_version": "2.36-1", "urgency": "low"}
                }
            },
        },
        "openssl": {
            "CVE-2099-0003": {"releases": {"trixie": {"status": "open", "urgency": "low"}}}
        },
        "zlib": {
            "CVE-2099-0004": {"releases": {"trixie": {"status": "open", "urgency": "unimportant"}}}
        },
    }
    advisories = tmp_path / "tracker.json"
    advisories.write_text(json.dumps(tracker))
    ref = f"oci:{base.store}:base"
    res = run("scan", ref, "-p", "linux/amd64", "--advisories", str(advisories), "--json")
    assert res.returncode == 0, res.stderr
    data = validated("scan", res.stdout)
    jsonschema.validate(data, schema("scan.schema.json"))
    assert data["summary"] == {"fixed": 1, "not-fixed": 1, "wont-fix": 1}
    fixed = data["findings"][0]
    assert (fixed["id"], fixed["fixed_version"], fixed["installed"]) == (
        "CVE-2099-0001",
        glibc + "+1",
        glibc,
    )
    assert {"libc6", "libc-bin"} <= set(fixed["packages"])

    gated = run(
        "scan", ref, "-p", "linux/amd64", "-a", str(advisories), "--fail-on", "actionable>0"
    )
    assert gated.returncode == 1
    assert "--fail-on 'actionable>0': actionable is 1" in gated.stderr


def test_fail_on_names_each_condition_that_holds(base: Built) -> None:
    res = run(
        "analyze",
        f"oci:{base.store}:base",
        "-p",
        "linux/amd64",
        "--fail-on",
        "size>10MB",
        "--fail-on",
        "packages>1000",
        "--fail-on",
        "category:zoneinfo>100kB",
    )
    assert res.returncode == 1
    failed = [line for line in res.stderr.splitlines() if line.startswith("failed:")]
    assert len(failed) == 2
    assert failed[0].startswith("failed: --fail-on 'size>10MB': size is ")
    assert failed[1].startswith("failed: --fail-on 'category:zoneinfo>100kB'")
    bad = run("analyze", f"oci:{base.store}:base", "--fail-on", "size>>1")
    assert bad.returncode == 2 and "Try: METRIC OP VALUE" in bad.stderr
