"""Vulnerability triage: installed packages against advisories, sorted by what one can do.

Advisories come as the Debian security tracker's JSON (source package -> CVE ->
release -> status, fixed_version, urgency, nodsa_reason) or as OSV records
(ecosystem "Debian:12", ranges of Debian versions), from a file, a directory of
files, or a URL. Versions compare as dpkg compares them (python-debian), and a
Debian advisory names the source package, so each binary is matched by its
source. Every finding is one of:

- fixed: Debian has a newer version that fixes it (actionable: the version to get);
- not-fixed: affected, and no fixed version exists yet (open, postponed);
- wont-fix: Debian marked it unimportant, ignored, or end-of-life for this release.
"""

from __future__ import annotations

import json
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from debian.debian_support import Version

from cairn.errors import UsageError
from cairn.measure.packages import Package

MAX_DOWNLOAD = 512 << 20
CLASSES = ("fixed", "not-fixed", "wont-fix")


@dataclass(frozen=True)
class Triage:
    vulnerability: str
    source: str
    packages: tuple[str, ...]
    installed: str
    status: str  # one of CLASSES
    fixed_version: str | None
    detail: str

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.vulnerability,
            "source": self.source,
            "packages": list(self.packages),
            "installed": self.installed,
            "status": self.status,
            "fixed_version": self.fixed_version,
            "detail": self.detail,
        }


def read_advisories(location: str) -> Iterator[tuple[str, Any]]:
    """(where, parsed JSON) for every advisory document at `location`."""
    if location.startswith(("http://", "https://")):
        try:
            with urllib.request.urlopen(location, timeout=60) as response:
                data = response.read(MAX_DOWNLOAD + 1)
        except OSError as e:
            raise UsageError(
                f"Fetching advisories from {location} failed ({e}).",
                "Try: check the URL, or download the file and pass its path.",
            ) from None
        if len(data) > MAX_DOWNLOAD:
            raise UsageError(f"{location} is larger than {MAX_DOWNLOAD >> 20} MiB.")
        yield location, _parse(location, data)
        return
    path = Path(location)
    if path.is_dir():
        files = sorted(p for p in path.rglob("*.json") if p.is_file())
    elif path.is_file():
        files = [path]
    else:
        raise UsageError(
            f"--advisories {location} is neither a file, a directory nor a URL.",
            "Try: the Debian security tracker's JSON (https://security-tracker.debian.org/"
            "tracker/data/json), OSV records, or a directory of them.",
        )
    for f in files:
        yield str(f), _parse(str(f), f.read_bytes())


def _parse(where: str, data: bytes) -> Any:
    try:
        return json.loads(data)
    except ValueError as e:
        raise UsageError(f"Advisories in {where} are not JSON ({e}).") from None


def debian_version(text: object, where: str) -> Version:
    try:
        return Version(str(text))
    except ValueError:
        raise UsageError(
            f"An advisory in {where} gives {text!r}, which is no Debian version.",
            "Try: advisories from the Debian security tracker or Debian's OSV records.",
        ) from None


def by_source(packages: list[Package]) -> dict[str, list[Package]]:
    out: dict[str, list[Package]] = {}
    for p in packages:
        out.setdefault(p.source, []).append(p)
    return out


@dataclass(frozen=True)
class TrackerEntry:
    """One vulnerability of one of the image's source packages, for the image's release, as
    the Debian security tracker's JSON states it."""

    vulnerability: str
    source: str
    packages: tuple[str, ...]  # the image's binary packages built from `source`
    installed: str  # the source version they come from
    release: dict[str, Any]  # status, fixed_version, urgency, nodsa_reason


def tracker_entries(
    data: dict[str, Any], sources: dict[str, list[Package]], release: str
) -> Iterator[TrackerEntry]:
    for source, vulns in data.items():
        if source not in sources or not isinstance(vulns, dict):
            continue
        installed = sources[source][0].source_version
        names = tuple(sorted(p.name for p in sources[source]))
        for vuln, entry in vulns.items():
            rel = (entry.get("releases") or {}).get(release) if isinstance(entry, dict) else None
            if isinstance(rel, dict):
                yield TrackerEntry(vuln, source, names, installed, rel)


def _tracker(
    data: dict[str, Any], sources: dict[str, list[Package]], release: str
) -> Iterator[Triage]:
    for e in tracker_entries(data, sources, release):
        vuln, source, names, installed, rel = (
            e.vulnerability, e.source, e.packages, e.installed, e.release
        )  # fmt: skip
        status = rel.get("status")
        fixed = rel.get("fixed_version")
        urgency = rel.get("urgency", "")
        if status == "resolved":
            if fixed and fixed != "0" and Version(installed) < debian_version(fixed, vuln):
                yield Triage(vuln, source, names, installed, "fixed", fixed, f"fixed in {fixed}")
            continue
        if status not in ("open", "undetermined"):
            continue
        reason = rel.get("nodsa_reason", "")
        if urgency in {"unimportant", "end-of-life"} or reason == "ignored":
            why = "ignored (no DSA)" if reason == "ignored" else urgency
            yield Triage(vuln, source, names, installed, "wont-fix", None, why)
        else:
            why = "postponed" if reason == "postponed" else f"{status}, urgency {urgency or '?'}"
            yield Triage(vuln, source, names, installed, "not-fixed", None, why)


def _in_range(
    version: Version, events: list[dict[str, str]], where: str
) -> tuple[bool, str | None]:
    """Whether `version` falls in an OSV ECOSYSTEM range, and the fix that ends that range."""
    affected, fixed = False, None
    for event in events:
        if "introduced" in event:
            start = event["introduced"]
            affected = start == "0" or version >= debian_version(start, where)
            fixed = None
        elif "fixed" in event and affected:
            if version < debian_version(event["fixed"], where):
                return True, event["fixed"]
            affected = False
        elif "last_affected" in event and affected:
            if version <= debian_version(event["last_affected"], where):
                return True, None
            affected = False
    return affected, fixed


def osv_findings(
    record: dict[str, Any], sources: dict[str, list[Package]], ecosystem: str
) -> Iterator[Triage]:
    vuln = record.get("id", "?")
    for affected in record.get("affected", []):
        pkg = affected.get("package", {})
        eco = pkg.get("ecosystem", "")
        if pkg.get("name") not in sources or eco not in (ecosystem, "Debian"):
            continue
        source = pkg["name"]
        installed = sources[source][0].source_version
        names = tuple(sorted(p.name for p in sources[source]))
        version = Version(installed)
        hit, fixed = installed in affected.get("versions", []), None
        for r in affected.get("ranges", []):
            if r.get("type") == "ECOSYSTEM":
                in_range, fix = _in_range(version, r.get("events", []), vuln)
                if in_range:
                    hit, fixed = True, fix
                    break
        if not hit:
            continue
        urgency = (affected.get("ecosystem_specific") or {}).get("urgency", "")
        if fixed:
            yield Triage(vuln, source, names, installed, "fixed", fixed, f"fixed in {fixed}")
        elif urgency in ("unimportant", "end-of-life"):
            yield Triage(vuln, source, names, installed, "wont-fix", None, urgency)
        else:
            yield Triage(vuln, source, names, installed, "not-fixed", None, "no fixed version yet")


def triage(
    packages: list[Package], locations: list[str], os: dict[str, str | None]
) -> list[Triage]:
    release = os.get("codename") or ""
    major = (os.get("version_id") or "").split(".")[0]
    ecosystem = f"Debian:{major}" if major else "Debian"
    sources = by_source([p for p in packages if p.manager == "dpkg"])
    found: dict[tuple[str, str], Triage] = {}
    for where, doc in (d for loc in locations for d in read_advisories(loc)):
        if isinstance(doc, dict) and "affected" in doc:
            triaged = osv_findings(doc, sources, ecosystem)
        elif isinstance(doc, list):
            triaged = (
                t for r in doc if isinstance(r, dict) for t in osv_findings(r, sources, ecosystem)
            )
        elif isinstance(doc, dict):
            triaged = _tracker(doc, sources, release)
        else:
            raise UsageError(f"{where} holds neither tracker JSON nor OSV records.")
        for t in triaged:
            found.setdefault((t.vulnerability, t.source), t)
    order = {c: i for i, c in enumerate(CLASSES)}
    return sorted(found.values(), key=lambda t: (order[t.status], t.source, t.vulnerability))


def summary(found: list[Triage]) -> dict[str, int]:
    return {c: sum(t.status == c for t in found) for c in CLASSES}
