"""Regenerate the committed JSON schemas: python -m cairn.schemas [DIR]."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from cairn import output
from cairn.compat.dns import DnsReport
from cairn.compat.scan import CompatResult
from cairn.family import results
from cairn.family.toml_model import FamilySpec
from cairn.machine import SetupReport
from cairn.measure.results import Analysis, Comparison, ScanResult
from cairn.oci.login import LoginResult
from cairn.scaffold.doctor import Report as DoctorReport
from cairn.trust import results as trust_results

SCHEMAS = {
    "build.schema.json": (results.BuildResult, "cairn build --json"),
    "plan.schema.json": (results.PlanResult, "cairn plan --json"),
    "refresh.schema.json": (results.RefreshResult, "cairn refresh --json"),
    "push.schema.json": (results.PushResult, "cairn push --json"),
    "login.schema.json": (LoginResult, "cairn login --json"),
    "config.schema.json": (results.FamilyConfig, "cairn config --json"),
    "lock.schema.json": (results.LockResult, "cairn lock --json"),
    "analysis.schema.json": (Analysis, "cairn analyze --json"),
    "compare.schema.json": (Comparison, "cairn compare --json"),
    "scan.schema.json": (ScanResult, "cairn scan --json"),
    "compat.schema.json": (CompatResult, "cairn compat --json"),
    "dns.schema.json": (DnsReport, "cairn dns --json"),
    "doctor.schema.json": (DoctorReport, "cairn doctor --json"),
    "setup.schema.json": (SetupReport, "cairn setup --json"),
    "keygen.schema.json": (trust_results.KeygenResult, "cairn keygen --json"),
    "sign.schema.json": (trust_results.SignResult, "cairn sign --json"),
    "verify.schema.json": (trust_results.VerifyResult, "cairn verify --json"),
}


SPEC_SCHEMA = "cairn.schema.json"


def spec_schema() -> dict[str, Any]:
    """cairn.toml's schema, for editors (Even Better TOML, taplo: `#:schema` or settings)."""
    schema = FamilySpec.model_json_schema(by_alias=True)
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "cairn.toml"
    schema["description"] = "An image family: [defaults], [images.NAME] and [variants.NAME]."
    return schema


def render(name: str) -> str:
    if name == SPEC_SCHEMA:
        schema = spec_schema()
    else:
        kind, title = SCHEMAS[name]
        schema = output.json_schema(kind, title)
    return json.dumps(schema, indent=2, sort_keys=True) + "\n"


def every_name() -> list[str]:
    return [*SCHEMAS, SPEC_SCHEMA]


def main() -> None:
    out = Path(sys.argv[1] if len(sys.argv) > 1 else "docs/schemas")
    out.mkdir(parents=True, exist_ok=True)
    for name in every_name():
        (out / name).write_text(render(name))


if __name__ == "__main__":
    main()
