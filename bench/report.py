"""BENCHMARKS.md is shared by several benchmarks: each rewrites only its own section."""

from __future__ import annotations

import re
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
