"""What `cairn analyze`, `compare`, `sbom` and `scan` do, below the command line."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from cairn.measure.analysis import analyze_walk, os_release
from cairn.measure.packages import IndexPaths, apk_packages, dpkg_packages
from cairn.measure.source import open_source
from cairn.measure.walk import walk_source
from cairn.platforms import Platform


def analyze_image(
    reference: str, platform: Platform | None, categories: Path | None = None
) -> dict[str, Any]:
    """The fields of cairn.measure.results.Analysis."""
    with open_source(reference, platform) as source:
        return analyze_walk(source, walk_source(source), categories)


def sbom_document(reference: str, platform: Platform | None, fmt: str) -> dict[str, Any]:
    # imported here: python-debian's copyright parser takes 40 ms to import
    from cairn.measure import sbom

    with open_source(reference, platform) as source:
        walk = walk_source(source, licenses=True)
        return sbom.spdx(source, walk) if fmt == "spdx-json" else sbom.cyclonedx(source, walk)


def scan_image(reference: str, platform: Platform | None, advisories: list[str]) -> dict[str, Any]:
    """The fields of cairn.measure.results.ScanResult."""
    from cairn.measure.advisories import summary, triage  # loads urllib and ssl

    with open_source(reference, platform) as source:
        walk = walk_source(source)
        os = os_release(walk, IndexPaths(walk.index))
        packages = dpkg_packages(walk) + apk_packages(walk)
        found = triage(packages, advisories, os)
        return {
            "image": source.reference,
            "platform": source.platform,
            "os": os,
            "package_count": len(packages),
            "summary": summary(found),
            "findings": [t.to_json() for t in found],
        }
