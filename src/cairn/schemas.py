"""Regenerate the committed JSON schemas: python -m cairn.schemas [DIR]."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from cairn import output
from cairn.compat.dns import DnsReport
from cairn.compat.scan import CompatResult
from cairn.family import results
from cairn.measure.results import Analysis, Comparison, ScanResult
from cairn.scaffold.doctor import Report as DoctorReport

SCHEMAS = {
    "build.schema.json": (results.BuildResult, "cairn build --json"),
    "plan.schema.json": (results.PlanResult, "cairn plan --json"),
    "refresh.schema.json": (results.RefreshResult, "cairn refresh --json"),
    "push.schema.json": (results.PushResult, "cairn push --json"),
    "analysis.schema.json": (Analysis, "cairn analyze --json"),
    "compare.schema.json": (Comparison, "cairn compare --json"),
    "scan.schema.json": (ScanResult, "cairn scan --json"),
    "compat.schema.json": (CompatResult, "cairn compat --json"),
    "dns.schema.json": (DnsReport, "cairn dns --json"),
    "doctor.schema.json": (DoctorReport, "cairn doctor --json"),
}


def render(name: str) -> str:
    kind, title = SCHEMAS[name]
    return json.dumps(output.json_schema(kind, title), indent=2, sort_keys=True) + "\n"


def main() -> None:
    out = Path(sys.argv[1] if len(sys.argv) > 1 else "docs/schemas")
    out.mkdir(parents=True, exist_ok=True)
    for name in SCHEMAS:
        (out / name).write_text(render(name))


if __name__ == "__main__":
    main()
