"""Benchmark: an emulated arm64 build with the CPU cairn picks against qemu's default.

Run as root from the repository root:  .venv/bin/python -m bench.emulation
The example family's base for linux/arm64 (trixie, package cache warm, store
empty), built twice in one run: once with QEMU_CPU=max (qemu's own default:
every CPU feature, pointer authentication in software) as the reference, once
as cairn builds it (platforms.toml's qemu_cpu, Cortex-A53). A native amd64
build of the same image is measured too, for scale. Rewrites its section of
BENCHMARKS.md.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

from bench.report import bench_workdir, write_section

ROOT = Path(__file__).parent.parent
EXAMPLE = ROOT / "examples" / "qapm"


def build(store: Path, platform: str, qemu_cpu: str | None) -> float:
    env = {k: v for k, v in os.environ.items() if k != "QEMU_CPU"}
    if qemu_cpu:
        env["QEMU_CPU"] = qemu_cpu
    cmd = [sys.executable, "-m", "cairn", "build", str(EXAMPLE), "--image", "base"]
    cmd += ["--platform", platform, "--output", f"oci:{store}", "--force"]
    start = time.monotonic()
    res = subprocess.run(cmd, capture_output=True, text=True, env=env, check=False)
    if res.returncode != 0:
        sys.exit(f"{' '.join(cmd)} failed:\n{res.stderr[-4000:]}")
    return time.monotonic() - start


def main() -> None:
    with bench_workdir(__doc__ or "", "cairn-bench-emulation", "mmdebstrap") as work:
        # warm the package cache first, so that both timed builds only build
        build(work / "warm", "linux/arm64", None)
        native = build(work / "amd64", "linux/amd64", None)
        reference = build(work / "max", "linux/arm64", "max")
        cairn = build(work / "cairn", "linux/arm64", None)
    body = "\n".join(
        [
            "Command: `.venv/bin/python -m bench.emulation` (as root, from the repository "
            "root). The example family's base (trixie) for linux/arm64 under qemu-user, "
            "package cache warm, store empty.",
            "",
            "| build | seconds | ratio to qemu's default CPU |",
            "|---|---|---|",
            f"| arm64, QEMU_CPU=max (qemu's default; reference) | {reference:.0f} | 1.00 |",
            f"| arm64, as cairn runs it (QEMU_CPU=cortex-a53) | {cairn:.0f} | "
            f"{cairn / reference:.2f} |",
            f"| amd64, native, for scale | {native:.0f} | {native / reference:.2f} |",
            "",
            "Debian 13 builds arm64 with branch protection: every function call signs and "
            "checks its return address, and qemu's `max` CPU computes each of those pointer "
            "authentication codes with the QARMA5 cipher in software. A Cortex-A53 "
            "(ARMv8.0-A, Debian's arm64 baseline) has no pointer authentication, so the same "
            "instructions are no-ops. What remains is the cost of starting processes under "
            "emulation: ca-certificates' configuration runs hundreds of them.",
        ]
    )
    write_section(
        ROOT / "BENCHMARKS.md", "emulation", "Emulated arm64: the CPU qemu emulates", body
    )
    print(body)


if __name__ == "__main__":
    main()
