"""Benchmark: the README on fresh Debian 12 and 13 machines, from empty caches.

Run as root from the repository root:  .venv/bin/python -m bench.fresh_machine
For each suite, tests/freshroot.py makes a fresh root (the reference: what
making the machine itself costs), runs the README's set-up in it and builds the
example family's `base` for both platforms, every download cache empty. The same
build on this machine (engines installed, cache empty) is the reference for the
build. Rewrites its section of BENCHMARKS.md.
"""

from __future__ import annotations

import os
import platform
import subprocess
import sys
import time
from pathlib import Path

from tests.freshroot import FreshRoot, check_readme

from bench.report import bench_workdir, write_section

ROOT = Path(__file__).parent.parent
SUITES = ("bookworm", "trixie")


def host_build(work: Path) -> float:
    """The example's base, both platforms, on this machine from an empty package cache."""
    cmd = [sys.executable, "-m", "cairn", "build", str(ROOT / "examples" / "qapm")]
    cmd += ["--image", "base", "--output", f"oci:{work / 'host-oci'}"]
    cmd += ["--cache-dir", str(work / "host-cache"), "--json"]
    start = time.monotonic()
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
    return time.monotonic() - start


def main() -> None:
    with bench_workdir(__doc__ or "", "cairn-bench-fresh", "mmdebstrap and chroot") as work:
        host = host_build(work)
        print(f"host build: {host:.1f} s", file=sys.stderr)
        rows = []
        for suite in SUITES:
            with FreshRoot(suite, work / f"{suite}.log", cache=work / "cache") as root:
                build = check_readme(root)["build"]
                python = root.run("python", ".venv/bin/python -V").strip()
            t = root.timings()
            made, setup = t["make the root (mmdebstrap)"], t["set-up (README)"]
            built = t["build base (README)"]
            platforms = [p["platform"] for i in build["images"] for p in i["platforms"]]
            print(f"{suite}: root {made} s, set-up {setup} s, build {built} s", file=sys.stderr)
            rows.append(
                f"| Debian {suite} ({python}) | {made:.0f} s | {setup:.0f} s | {setup / made:.2f} "
                f"| {built:.0f} s | {built / host:.2f} | {', '.join(platforms)} |"
            )
        body = "\n".join(
            [
                "Command: `.venv/bin/python -m bench.fresh_machine` (as root, from the repository "
                "root; `scripts/fresh-machine` runs the same check with the caches kept).",
                "",
                f"Machine: {os.cpu_count()} cores, {platform.machine()}, Debian "
                f"{Path('/etc/debian_version').read_text().strip()} host; measured "
                f"{time.strftime('%Y-%m-%d')}. Every cache empty: apt's, pip's and cairn's.",
                "",
                "| fresh machine | make the root (reference) | README set-up | x root "
                "| build base, amd64 + arm64 | x same build on this host | platforms |",
                "|---|---:|---:|---:|---:|---:|---|",
                *rows,
                "",
                f"The same build on this host, its package cache empty: {host:.0f} s. The root "
                "is mmdebstrap's apt variant with python3, python3-venv, git and "
                "ca-certificates; the set-up is `./scripts/setup` (Debian packages, the "
                "binfmt handler, the virtualenv with cairn and its dependencies from PyPI). "
                "Most of the build is arm64 under qemu.",
            ]
        )
        write_section(ROOT / "BENCHMARKS.md", "fresh-machine", "A fresh machine, set up", body)


if __name__ == "__main__":
    main()
