"""Benchmark: the emitted GitLab pipeline, run locally, against `cairn build` of the same family.

Run as root from the repository root:  .venv/bin/python -m bench.pipeline
The small example family (examples/small: a root and a child, linux/amd64 and
linux/arm64 under qemu) with its cairn.lock, in a git repository of its own,
package cache warm (a first build fills it). The reference is `cairn build` of
the family into an empty store; then gitlab-ci-local runs the pipeline
`cairn plan --emit gitlab-ci` wrote there (shell executor, every job in a
directory of its own, cairn installed from a wheel in every job, no registry).
Rewrites its section of BENCHMARKS.md.
"""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from tests.pipelines import build_wheel, family_repository, run_pipeline

from bench.report import bench_workdir, write_section

ROOT = Path(__file__).parent.parent


def build(repo: Path, store: Path) -> tuple[float, dict[str, Any]]:
    cmd = [sys.executable, "-m", "cairn", "build", str(repo), "--output", f"oci:{store}", "--json"]
    start = time.monotonic()
    res = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if res.returncode != 0:
        sys.exit(f"{' '.join(cmd)} failed:\n{res.stderr[-4000:]}")
    result: dict[str, Any] = json.loads(res.stdout)
    return time.monotonic() - start, result


def main() -> None:
    with bench_workdir(__doc__ or "", "cairn-bench-pipeline", "mmdebstrap") as work:
        wheel = build_wheel(work / "wheel")
        repo = work / "family"
        family_repository(repo)
        build(repo, work / "warm")  # fills the package cache
        direct, result = build(repo, work / "direct")
        print(f"cairn build: {direct:.1f} s", file=sys.stderr)
        run = run_pipeline(repo, CAIRN_PACKAGE=str(wheel))
        if run.returncode != 0:
            sys.exit(f"the pipeline failed:\n{run.log[-6000:]}")
        print(f"pipeline: {run.seconds:.1f} s", file=sys.stderr)
    built = {
        f"build-{i['name']}-{p['platform'].split('/')[1]}": p["seconds"]
        for i in result["images"]
        for p in i["platforms"]
    }
    jobs = run.job_seconds()
    lines = [
        "Command: `.venv/bin/python -m bench.pipeline` (as root, from the repository root). "
        "The small example family (`examples/small`: a root and a child, linux/amd64 and "
        "linux/arm64 under qemu) and its `cairn.lock`, alone in a git repository; package "
        "cache warm.",
        "",
        f"Machine: {os.cpu_count()} cores, {platform.machine()}; gitlab-ci-local 4.56.2, shell "
        f"executor; measured {time.strftime('%Y-%m-%d')}.",
        "",
        "| run | wall time | x cairn build |",
        "|---|---:|---:|",
        f"| `cairn build` of the family, one process (reference) | {direct:.0f} s | 1.00 |",
        f"| the emitted GitLab pipeline: {len(jobs)} jobs, run by gitlab-ci-local | "
        f"{run.seconds:.0f} s | {run.seconds / direct:.2f} |",
        "",
        "| job | job time | its image's time in `cairn build` | the rest: set-up, artifacts |",
        "|---|---:|---:|---:|",
    ]
    for job, seconds in jobs.items():
        own = built.get(job)
        rest = f"{seconds - own:.0f} s" if own is not None else "all of it (merge)"
        own_text = f"{own:.0f} s" if own is not None else "-"
        lines.append(f"| {job} | {seconds:.0f} s | {own_text} | {rest} |")
    lines += [
        "",
        "Each job installs cairn into a virtualenv of its own (pip, from the wheel and the "
        "package index's cache), runs `cairn setup --install` (everything is installed here, "
        "so it only checks) and hands its layout on as an artifact; gitlab-ci-local copies "
        "artifacts with rsync. That per-job cost is what splitting a build into jobs adds; "
        "on hosted runners apt-get installing the engines adds to it, and runners of each "
        "platform take away the emulation (see the example family's section for the "
        "on-paper figure).",
    ]
    write_section(
        ROOT / "BENCHMARKS.md", "pipeline", "A GitLab pipeline, run locally", "\n".join(lines)
    )


if __name__ == "__main__":
    main()
