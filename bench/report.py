"""BENCHMARKS.md is shared by several benchmarks: each rewrites only its own section."""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

HEADER = """# Benchmarks

Every figure is measured by a script in `bench/`, in one run on one machine,
and given as a ratio against a reference measured in that same run (these
machines are noisy: compare ratios, not seconds, across runs). Each section
names the command that reproduces it.
"""


def write_section(path: Path, key: str, title: str, body: str) -> None:
    text = path.read_text() if path.exists() else HEADER
    begin, end = f"<!-- bench:{key} -->", f"<!-- /bench:{key} -->"
    section = f"{begin}\n## {title}\n\n{body}\n{end}"
    pattern = re.compile(re.escape(begin) + ".*?" + re.escape(end), re.S)
    text = (
        pattern.sub(lambda _: section, text)
        if begin in text
        else text.rstrip() + "\n\n" + section + "\n"
    )
    tmp = path.with_suffix(".tmp")
    tmp.write_text(text)
    tmp.replace(path)


@contextmanager
def bench_workdir(description: str, prefix: str, root_because: str) -> Iterator[Path]:
    """The benchmark's command line (--keep) and a scratch directory, removed unless kept."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--keep", action="store_true", help="keep the work directory")
    args = parser.parse_args()
    if os.geteuid() != 0:
        sys.exit(f"{prefix} runs {root_because} as root")
    work = Path(tempfile.mkdtemp(prefix=f"{prefix}-"))
    try:
        yield work
    finally:
        if args.keep:
            print(f"kept {work}", file=sys.stderr)
        else:
            shutil.rmtree(work, ignore_errors=True)


def build_amd64(example: Path, store: Path, images: tuple[str, ...]) -> None:
    """The example family's `images` (their parents listed too) for linux/amd64 into `store`."""
    subprocess.run(
        [
            sys.executable,
            "-m",
            "cairn",
            "build",
            str(example),
            "--platform",
            "linux/amd64",
            "--output",
            f"oci:{store}",
            *[a for i in images for a in ("--image", i)],
        ],
        check=True,
        stdout=subprocess.DEVNULL,
    )
