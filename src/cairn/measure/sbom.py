"""SBOMs from an image's package database: SPDX 2.3 JSON and CycloneDX 1.5 JSON.

Each package carries its package URL (pkg:deb/debian/NAME@VERSION?arch=...&distro=...)
and, for Debian packages, the licenses its machine-readable copyright file states
(Debian's short names turned into SPDX identifiers by data/licenses.toml; others
become LicenseRef-NAME). The documents are deterministic: the same image gives the
same bytes (time from the image's config, identifiers from its digests).
"""

from __future__ import annotations

import functools
import hashlib
import logging
import re
import uuid
from functools import cache
from typing import Any
from urllib.parse import quote

from debian.copyright import Copyright, NotMachineReadableError

from cairn import __version__
from cairn.data import load_toml
from cairn.measure.analysis import os_release
from cairn.measure.overlay import Walk
from cairn.measure.packages import IndexPaths, Package, apk_packages, dpkg_packages
from cairn.measure.source import Source

FORMATS = ("spdx-json", "cyclonedx-json")
# python-debian warns on stderr about every http:// Format URL it fixes; that is noise here
logging.getLogger("debian.copyright").setLevel(logging.ERROR)
_REF_CHARS = re.compile(r"[^A-Za-z0-9.-]+")


@cache
def _spdx_ids() -> dict[str, str]:
    table: dict[str, str] = load_toml("licenses.toml")["spdx"]
    return table


def _license_id(name: str) -> str:
    name = name.strip()
    return _spdx_ids().get(name) or "LicenseRef-" + (
        _REF_CHARS.sub("-", name).strip("-") or "unknown"
    )


def license_expression(synopsis: str) -> str:
    """A copyright file's License: synopsis ("GPL-2+ or Artistic") as an SPDX expression."""
    ors = []
    for alternative in re.split(r"\s+or\s+|\s*\|\s*", synopsis, flags=re.IGNORECASE):
        ands = [
            _license_id(term)
            for term in re.split(r",?\s+and\s+|\s*,\s*", alternative, flags=re.I)
            if term.strip()
        ]
        if ands:
            ors.append(" AND ".join(ands) if len(ands) == 1 else "(" + " AND ".join(ands) + ")")
    if not ors:
        return ""
    return ors[0] if len(ors) == 1 else "(" + " OR ".join(ors) + ")"


def declared_licenses(walk: Walk, resolver: IndexPaths, package: Package) -> str | None:
    """The SPDX expression for every license the package's copyright file names."""
    if package.manager == "apk":
        return license_expression(package.license) if package.license else None
    path = resolver.follow(f"/usr/share/doc/{package.name}/copyright")
    text = walk.files.get(path) if path else None
    if text is None:
        return None
    return _copyright_licenses(text)


@functools.lru_cache(maxsize=4096)
def _copyright_licenses(text: bytes) -> str | None:
    """A copyright file's licenses: parsed once per content (both SBOM formats, and every
    image of a family, read the same files; parsing one takes milliseconds)."""
    try:
        parsed = Copyright(text.decode("utf-8", "replace").splitlines(keepends=True), strict=False)
    except (NotMachineReadableError, ValueError, AttributeError):
        return None
    terms: list[str] = []
    for paragraph in parsed.all_files_paragraphs():
        synopsis = getattr(paragraph.license, "synopsis", None)
        if synopsis:
            expr = license_expression(synopsis)
            if expr and expr not in terms:
                terms.append(expr)
    if not terms:
        return None
    return terms[0] if len(terms) == 1 else " AND ".join(terms)


def purl(package: Package, os: dict[str, str | None]) -> str:
    namespace = os.get("id") or ("alpine" if package.manager == "apk" else "debian")
    kind = "apk" if package.manager == "apk" else "deb"
    qualifiers = [f"arch={quote(package.architecture, safe='')}"] if package.architecture else []
    if os.get("version_id"):
        qualifiers.append(f"distro={namespace}-{os['version_id']}")
    if package.source != package.name:
        qualifiers.append(f"upstream={quote(package.source, safe='')}")
    query = "&".join(sorted(qualifiers))
    return (
        f"pkg:{kind}/{namespace}/{quote(package.name, safe='')}@{quote(package.version, safe='')}"
        + (f"?{query}" if query else "")
    )


def _identity(source: Source, walk: Walk) -> str:
    h = hashlib.sha256(source.reference.encode())
    for layer in walk.layers:
        h.update(layer.digest.encode())
    return h.hexdigest()


def _created(source: Source) -> str:
    created = source.config.get("created")
    if isinstance(created, str) and re.match(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d", created):
        return created[:19] + "Z"
    return "1970-01-01T00:00:00Z"


def _packages(walk: Walk) -> list[Package]:
    return sorted(dpkg_packages(walk) + apk_packages(walk), key=lambda p: (p.name, p.architecture))


def spdx(source: Source, walk: Walk) -> dict[str, Any]:
    resolver = IndexPaths(walk.index)
    os = os_release(walk, resolver)
    identity = _identity(source, walk)
    packages = []
    extracted: dict[str, dict[str, str]] = {}
    relationships = [
        {
            "spdxElementId": "SPDXRef-DOCUMENT",
            "relationshipType": "DESCRIBES",
            "relatedSpdxElement": "SPDXRef-image",
        }
    ]
    image = {
        "SPDXID": "SPDXRef-image",
        "name": source.reference,
        "downloadLocation": "NOASSERTION",
        "filesAnalyzed": False,
        "primaryPackagePurpose": "CONTAINER",
        "licenseConcluded": "NOASSERTION",
        "licenseDeclared": "NOASSERTION",
        "copyrightText": "NOASSERTION",
    }
    packages.append(image)
    for i, pkg in enumerate(_packages(walk)):
        ref = f"SPDXRef-package-{_REF_CHARS.sub('-', pkg.name)}-{i}"
        declared = declared_licenses(walk, resolver, pkg)
        for lic in re.findall(r"LicenseRef-[A-Za-z0-9.-]+", declared or ""):
            extracted[lic] = {
                "licenseId": lic,
                "extractedText": f"The license the copyright file names "
                f"'{lic.removeprefix('LicenseRef-')}'.",
            }
        entry: dict[str, Any] = {
            "SPDXID": ref,
            "name": pkg.name,
            "versionInfo": pkg.version,
            "downloadLocation": "NOASSERTION",
            "filesAnalyzed": False,
            "supplier": "NOASSERTION",
            "licenseConcluded": "NOASSERTION",
            "licenseDeclared": declared or "NOASSERTION",
            "copyrightText": "NOASSERTION",
            "externalRefs": [
                {
                    "referenceCategory": "PACKAGE-MANAGER",
                    "referenceType": "purl",
                    "referenceLocator": purl(pkg, os),
                }
            ],
        }
        if pkg.source != pkg.name:
            entry["sourceInfo"] = f"built from the {pkg.source} source package {pkg.source_version}"
        packages.append(entry)
        relationships.append(
            {
                "spdxElementId": "SPDXRef-image",
                "relationshipType": "CONTAINS",
                "relatedSpdxElement": ref,
            }
        )
    document: dict[str, Any] = {
        "spdxVersion": "SPDX-2.3",
        "dataLicense": "CC0-1.0",
        "SPDXID": "SPDXRef-DOCUMENT",
        "name": source.reference,
        "documentNamespace": f"https://cairn.invalid/spdx/{identity}",
        "creationInfo": {"created": _created(source), "creators": [f"Tool: cairn-{__version__}"]},
        "packages": packages,
        "relationships": relationships,
    }
    if extracted:
        document["hasExtractedLicensingInfos"] = [extracted[k] for k in sorted(extracted)]
    return document


def cyclonedx(source: Source, walk: Walk) -> dict[str, Any]:
    resolver = IndexPaths(walk.index)
    os = os_release(walk, resolver)
    identity = _identity(source, walk)
    components = []
    for pkg in _packages(walk):
        locator = purl(pkg, os)
        component: dict[str, Any] = {
            "type": "library",
            "bom-ref": locator,
            "name": pkg.name,
            "version": pkg.version,
            "purl": locator,
        }
        declared = declared_licenses(walk, resolver, pkg)
        if declared:
            component["licenses"] = [{"expression": declared}]
        components.append(component)
    return {
        "$schema": "http://cyclonedx.org/schema/bom-1.5.schema.json",
        "bomFormat": "CycloneDX",
        "specVersion": "1.5",
        "serialNumber": f"urn:uuid:{uuid.UUID(identity[:32])}",
        "version": 1,
        "metadata": {
            "timestamp": _created(source),
            "tools": {
                "components": [{"type": "application", "name": "cairn", "version": __version__}]
            },
            "component": {"type": "container", "bom-ref": "image", "name": source.reference},
        },
        "components": components,
    }
