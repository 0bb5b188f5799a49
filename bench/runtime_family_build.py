"""Benchmark: the example family's cold build with its runtime images against the cold
build of the family as it was before them (the same file without the runtime tables).

Run as root from the repository root:  .venv/bin/python -m bench.runtime_family_build
Both builds start from an empty package cache and an empty store, both platforms, one
after the other in one run. Rewrites its section of BENCHMARKS.md.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from bench.family_build import cairn_build
from bench.report import bench_workdir, write_section
from cairn.family.spec import load_family

ROOT = Path(__file__).parent.parent
EXAMPLE = ROOT / "examples" / "qapm"


def without_runtimes(work: Path) -> Path:
    """A copy of the example family whose cairn.toml has no runtime image tables."""
    family = work / "before"
    shutil.copytree(EXAMPLE, family, ignore=shutil.ignore_patterns("out", "cairn.lock"))
    runtime = {i.name for i in load_family(EXAMPLE).images if i.runtime}
    kept, skipping = [], False
    for line in (EXAMPLE / "cairn.toml").read_text().splitlines():
        if line.startswith("["):
            table = line.strip("[]").split(".")
            skipping = table[0] == "runtime_variants" or (
                table[0] == "images" and table[1] in runtime
            )
        if not skipping:
            kept.append(line)
    (family / "cairn.toml").write_text("\n".join(kept) + "\n")
    return family


def main() -> None:
    with bench_workdir(__doc__ or "", "cairn-bench-runtime-family", "mmdebstrap") as work:
        before_s, before = cairn_build(without_runtimes(work), work / "b/oci", work / "b/cache")
        after_s, after = cairn_build(EXAMPLE, work / "a/oci", work / "a/cache")
    runtime_s = sum(
        p["seconds"]
        for i in after["images"]
        if "runtime" in i["name"] or i["name"].startswith("static")
        for p in i["platforms"]
    )
    ratio = after_s / before_s
    body = "\n".join(
        [
            "Command: `.venv/bin/python -m bench.runtime_family_build` (as root, from the "
            "repository root). Both builds: empty package cache, empty store, linux/amd64 and "
            "linux/arm64, two platforms at a time.",
            "",
            "| build | images | wall time | x reference |",
            "|---|---:|---:|---:|",
            f"| the family before the runtime images (reference) | {len(before['images'])} | "
            f"{before_s:.0f} s | 1.00 |",
            f"| the family with them | {len(after['images'])} | {after_s:.0f} s | {ratio:.2f} |",
            "",
            "| target | measured | met |",
            "|---|---:|:---:|",
            f"| cold build, runtimes included, ≤ 0.6 x the reference | {ratio:.2f} | "
            f"{'yes' if ratio <= 0.6 else 'no'} |",
            "",
            f"The runtime images' own builds took {runtime_s:.0f} s of build time (the sum over "
            "images and platforms, both platforms running at once). The rest is the apt "
            "images, whose arm64 builds still run their maintainer scripts under qemu: "
            "mmdebstrap's chrootless mode gives other files for them (README, Runtime images), "
            "so the target, which needed the apt images' arm64 builds to run without "
            "emulation too, is not met.",
        ]
    )
    write_section(
        ROOT / "BENCHMARKS.md", "runtime-family", "The example family with its runtime images", body
    )
    print(body)


if __name__ == "__main__":
    main()
