"""What each advisory means for an image, in OpenVEX's words: not_affected, affected, fixed
or under_investigation, with the justification or statement Debian's data gives.

From the Debian security tracker's JSON, for the image's release:
- resolved with fixed_version 0 (Debian's not-affected) -> not_affected, the vulnerable
  code never was in this release's version;
- resolved with a fixed version the image has -> fixed (that version);
- resolved with a newer fixed version -> affected: the action is to rebuild with it;
- open with urgency unimportant or end-of-life, or no-dsa -> affected, with the
  tracker's reason that no fix is planned;
- undetermined -> under_investigation; other open ones -> affected, no fix yet.
OSV records say only what is affected: each finding cairn scan makes of them is
affected, with the fixed version as the action when there is one.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from debian.debian_support import Version

from cairn.measure.advisories import (
    by_source,
    debian_version,
    osv_findings,
    read_advisories,
    tracker_entries,
)
from cairn.measure.packages import Package


@dataclass(frozen=True)
class VexFinding:
    vulnerability: str
    source: str
    packages: tuple[str, ...]
    installed: str
    status: str  # not_affected, affected, fixed, under_investigation
    justification: str | None  # for not_affected
    statement: str  # the impact (not_affected), the action (affected), or what was found


def _tracker(
    data: dict[str, Any], sources: dict[str, list[Package]], release: str
) -> Iterator[VexFinding]:
    for e in tracker_entries(data, sources, release):
        vuln, source, names, installed, rel = (
            e.vulnerability, e.source, e.packages, e.installed, e.release
        )  # fmt: skip
        status, fixed = rel.get("status"), rel.get("fixed_version")
        urgency, reason = rel.get("urgency", ""), rel.get("nodsa_reason", "")

        def found(state: str, statement: str, why: str | None = None) -> VexFinding:
            return VexFinding(vuln, source, names, installed, state, why, statement)  # noqa: B023

        if status == "resolved" and fixed == "0":
            yield found(
                "not_affected",
                f"Debian's tracker: {release}'s {source} is not affected.",
                "vulnerable_code_not_present",
            )
        elif status == "resolved" and fixed:
            if Version(installed) >= debian_version(fixed, vuln):
                yield found("fixed", f"Fixed in {source} {fixed}; the image has {installed}.")
            else:
                yield found(
                    "affected",
                    f"Debian fixes it in {source} {fixed}: rebuild the image with it "
                    "(cairn refresh).",
                )
        elif status == "undetermined":
            yield found("under_investigation", "Debian has not determined it yet.")
        elif status == "open":
            if urgency in {"unimportant", "end-of-life"} or reason:
                said = ", ".join(x for x in (urgency, reason and f"no-dsa ({reason})") if x)
                yield found(
                    "affected",
                    f"Debian's tracker: {said}; no fix is planned for {release}.",
                )
            else:
                yield found("affected", f"No fixed version yet (urgency {urgency or '?'}).")


def load_advisories(locations: list[str]) -> list[Any]:
    """Every advisory document at `locations`, parsed once for many images."""
    return [doc for loc in locations for _, doc in read_advisories(loc)]


def vex_findings(
    packages: list[Package], documents: list[Any], os: dict[str, str | None]
) -> list[VexFinding]:
    """One finding per vulnerability and source package of the image, sorted; `documents`
    as load_advisories reads them."""
    release = os.get("codename") or ""
    major = (os.get("version_id") or "").split(".")[0]
    ecosystem = f"Debian:{major}" if major else "Debian"
    sources = by_source([p for p in packages if p.manager == "dpkg"])
    out: dict[tuple[str, str], VexFinding] = {}
    for doc in documents:
        if isinstance(doc, dict) and "affected" not in doc:
            found: Iterator[VexFinding] = _tracker(doc, sources, release)
        else:
            records = doc if isinstance(doc, list) else [doc]
            found = (
                VexFinding(
                    t.vulnerability,
                    t.source,
                    t.packages,
                    t.installed,
                    "affected",
                    None,
                    f"Fixed in {t.source} {t.fixed_version}: rebuild the image with it."
                    if t.fixed_version
                    else t.detail,
                )
                for r in records
                if isinstance(r, dict)
                for t in osv_findings(r, sources, ecosystem)
            )
        for f in found:
            out.setdefault((f.vulnerability, f.source), f)
    return sorted(out.values(), key=lambda f: (f.vulnerability, f.source))
