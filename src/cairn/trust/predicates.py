"""What cairn attests of each image and platform: its SBOMs (SPDX 2.3, CycloneDX 1.5), its
SLSA provenance (v1), and, given advisories, an OpenVEX document.

Every document is made from the image as stored (its layers read, its manifest's
annotations) and the family spec that built it, and names the image by the
repository it is signed for; none depends on where the store lies or when cairn ran,
so the same image gives the same statements.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

from cairn import __version__
from cairn.family.plan import ANN_INPUT, ANN_INPUTS, ANN_VERSIONS
from cairn.family.spec import Family, Image
from cairn.measure import sbom
from cairn.measure.analysis import os_release
from cairn.measure.overlay import Walk
from cairn.measure.packages import IndexPaths, Package, dpkg_packages
from cairn.measure.source import layout_source
from cairn.measure.vex import VexFinding, vex_findings
from cairn.measure.walk import walk_source
from cairn.oci.image import ANN_BASE_DIGEST, ANN_CREATED, Descriptor, canonical_json
from cairn.oci.layout import OciLayout

SPDX = "https://spdx.dev/Document/v2.3"
CYCLONEDX = "https://cyclonedx.org/bom/v1.5"
SLSA_PROVENANCE = "https://slsa.dev/provenance/v1"
OPENVEX = "https://openvex.dev/ns/v0.2.0"
# what each is called in cairn's messages
NAMES = {
    SPDX: "SPDX",
    CYCLONEDX: "CycloneDX",
    SLSA_PROVENANCE: "SLSA provenance",
    OPENVEX: "OpenVEX",
}
BUILD_TYPE = "urn:cairn:build:family-image:v1"
BUILDER_ID = "urn:cairn:builder"
# the manifest annotations the provenance restates, which `cairn verify` compares
RECORDED = (ANN_INPUT, ANN_INPUTS, ANN_VERSIONS, ANN_BASE_DIGEST, ANN_CREATED)


@dataclass(frozen=True)
class Predicate:
    predicate_type: str
    predicate: dict[str, Any]


def spec_digest(family: Family) -> str:
    return "sha256:" + hashlib.sha256(family.path.read_bytes()).hexdigest()


def provenance(
    family: Family,
    image: Image,
    manifest: Descriptor,
    annotations: dict[str, str],
    walk: Walk,
    *,
    repository: str,
) -> dict[str, Any]:
    """SLSA provenance v1: who built it (cairn, its version), from what (the spec's digest,
    the suite, mirrors and source date, every package version installed), on what (the
    parent's manifest), for which platform, and how (the command)."""
    platform = manifest.platform.name if manifest.platform else ""
    os_info = os_release(walk, IndexPaths(walk.index))
    packages = sorted(dpkg_packages(walk), key=lambda p: (p.name, p.architecture))
    dependencies: list[dict[str, Any]] = [
        {"name": "cairn.toml", "digest": {"sha256": spec_digest(family).partition(":")[2]}}
    ]
    parent = annotations.get(ANN_BASE_DIGEST)
    if image.parent and parent:
        dependencies.append(
            {
                "name": f"parent {image.parent}",
                "uri": f"{repository.rsplit('/', 1)[0]}/{image.parent}",
                "digest": {"sha256": parent.partition(":")[2]},
            }
        )
    dependencies += [{"name": p.name, "uri": sbom.purl(p, os_info)} for p in packages]
    return {
        "buildDefinition": {
            "buildType": BUILD_TYPE,
            "externalParameters": {
                "invocation": f"cairn build {family.path.name} --image {image.name} "
                f"--platform {platform}",
                "image": image.name,
                "platform": platform,
                "spec": {"path": family.path.name, "digest": spec_digest(family)},
            },
            "internalParameters": {
                "suite": image.suite.name,
                "sources": list(image.sources),
                "source_date_epoch": family.source_date_epoch,
                "annotations": {k: annotations[k] for k in RECORDED if k in annotations},
            },
            "resolvedDependencies": dependencies,
        },
        "runDetails": {
            "builder": {"id": BUILDER_ID, "version": {"cairn": __version__}},
            "metadata": {"invocationId": f"{image.name}@{manifest.digest}"},
        },
    }


def openvex(
    findings: list[VexFinding],
    repository: str,
    manifest: Descriptor,
    packages: list[Package],
    os_info: dict[str, str | None],
    *,
    timestamp: str,
) -> dict[str, Any]:
    """OpenVEX v0.2.0: one statement per vulnerability and source package, the product the
    image's manifest, the subcomponents the binary packages built from that source."""
    algo, _, hexdigest = manifest.digest.partition(":")
    name = repository.rsplit("/", 1)[1]
    arch = manifest.platform.architecture if manifest.platform else ""
    product = f"pkg:oci/{name}@{algo}%3A{hexdigest}?repository_url={repository}" + (
        f"&arch={arch}" if arch else ""
    )
    purls = {p.name: sbom.purl(p, os_info) for p in packages}
    statements = []
    for f in findings:
        entry: dict[str, Any] = {
            "vulnerability": {"name": f.vulnerability},
            "products": [
                {
                    "@id": product,
                    "subcomponents": [{"@id": purls[n]} for n in f.packages if n in purls],
                }
            ],
            "status": f.status,
        }
        if f.status == "not_affected":
            # the schema takes a justification or an impact statement, not both
            entry["justification"] = f.justification
            entry["status_notes"] = f.statement
        elif f.status == "affected":
            entry["action_statement"] = f.statement
        else:
            entry["status_notes"] = f.statement
        statements.append(entry)
    body = canonical_json(statements)
    return {
        "@context": "https://openvex.dev/ns/v0.2.0",
        "@id": f"urn:cairn:vex:{hashlib.sha256(product.encode() + body).hexdigest()}",
        "author": f"cairn {__version__}",
        "timestamp": timestamp,
        "version": 1,
        "statements": statements,
    }


def image_predicates(
    family: Family,
    image: Image,
    layout: OciLayout,
    manifest: Descriptor,
    *,
    repository: str,
    advisories: list[Any] | None = None,
) -> list[Predicate]:
    """The statements' predicates for one platform of an image in the layout; OpenVEX too
    when `advisories` (as load_advisories reads them) are given."""
    annotations = dict(manifest.annotations)
    label = f"{repository}@{manifest.digest}"
    with layout_source(label, layout, image.name, manifest.platform) as source:
        walk = walk_source(source, licenses=True)
        found = [
            Predicate(SPDX, sbom.spdx(source, walk)),
            Predicate(CYCLONEDX, sbom.cyclonedx(source, walk)),
            Predicate(
                SLSA_PROVENANCE,
                provenance(family, image, manifest, annotations, walk, repository=repository),
            ),
        ]
        if advisories is not None:
            os_info = os_release(walk, IndexPaths(walk.index))
            packages = dpkg_packages(walk)
            findings = vex_findings(packages, advisories, os_info)
            if findings:  # OpenVEX has no empty documents
                created = annotations.get(ANN_CREATED, "1970-01-01T00:00:00Z")
                vex = openvex(findings, repository, manifest, packages, os_info, timestamp=created)
                found.append(Predicate(OPENVEX, vex))
    return found
