"""Benchmark: cairn compat against lddtree (Debian pax-utils) over the whole /usr of the
example family's python and golang images (linux/amd64).

Run as root from the repository root:  .venv/bin/python -m bench.compat_speed
Both read the same ELF files of one unpacked image in the same run, each as one
process over all of them, best of three: lddtree resolves each file's libraries;
cairn compat resolves them too and checks every required symbol version. Rewrites
its section of BENCHMARKS.md.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

from bench.report import bench_workdir, build_amd64, write_section
from cairn.compat.rootfs import materialized
from cairn.compat.scan import elf_files
from cairn.platforms import parse_platform

ROOT = Path(__file__).parent.parent
EXAMPLE = ROOT / "examples" / "qapm"
IMAGES = ("python", "golang")
RUNS = 3


def best(cmd: list[str]) -> tuple[float, str]:
    times, out = [], ""
    for _ in range(RUNS):
        start = time.monotonic()
        res = subprocess.run(cmd, capture_output=True, text=True, check=False)
        times.append(time.monotonic() - start)
        if res.returncode not in (0, 1):
            sys.exit(f"{cmd[0]} failed:\n{res.stderr[-3000:]}")
        out = res.stdout
    return min(times), out


def main() -> None:
    with bench_workdir(__doc__ or "", "cairn-bench-compat", "mmdebstrap") as work:
        store = work / "oci"
        build_amd64(EXAMPLE, store, ("base", *IMAGES))
        rows = []
        for image in IMAGES:
            with materialized(f"oci:{store}:{image}", parse_platform("linux/amd64")) as root:
                files = sorted(p for p, _ in elf_files(root.root) if p.startswith("/usr/"))
                lddtree_s, _ = best(
                    ["lddtree", "-R", str(root.root), "--skip-non-elfs", "-l", *files]
                )
                cairn_s, out = best(
                    [
                        sys.executable,
                        "-m",
                        "cairn",
                        "compat",
                        str(root.root / "usr"),
                        "--target",
                        f"dir:{root.root}",
                        "--json",
                    ]
                )
                checked = len(json.loads(out)["objects"])
                rows.append((image, len(files), checked, lddtree_s, cairn_s))
                print(
                    f"{image}: {len(files)} files, lddtree {lddtree_s:.2f} s, "
                    f"cairn {cairn_s:.2f} s",
                    file=sys.stderr,
                )
        lines = [
            "Command: `.venv/bin/python -m bench.compat_speed` (as root, from the repository "
            "root).",
            "",
            "| image (linux/amd64) | ELF files in /usr | lddtree | objects/s | cairn compat "
            "| objects/s | x lddtree |",
            "|---|---:|---:|---:|---:|---:|---:|",
        ]
        for image, n, checked, ldd, mine in rows:
            lines.append(
                f"| {image} | {n} | {ldd:.2f} s | {n / ldd:.0f} | {mine:.2f} s | "
                f"{checked / mine:.0f} | {(checked / mine) / (n / ldd):.2f} |"
            )
        met = all((c / m) >= (n / ld) for _, n, c, ld, m in rows)
        lines += [
            "",
            "| target | met |",
            "|---|:---:|",
            f"| cairn compat at least as fast as lddtree, per object | {'yes' if met else 'no'} |",
            "",
            "Both are one process over the image's files, best of three runs. lddtree resolves "
            "each file's libraries through the root (-R); cairn compat does the same as the "
            "image's own loader would and also checks every symbol version each object "
            "requires against the library that provides it (lddtree does not), and reports "
            "Go, musl and wheel findings.",
        ]
        write_section(
            ROOT / "BENCHMARKS.md",
            "compat-speed",
            "cairn compat against lddtree",
            "\n".join(lines),
        )


if __name__ == "__main__":
    main()
