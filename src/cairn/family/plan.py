"""What to build and why: input digests per image and platform, compared with the store.

A root's inputs are everything that shapes it (its table with the defaults
applied: packages, suite, variant, mirrors, profile, runtime config, the
source date); a child's are its own table, and a Dockerfile image's also its
fragment and every file of its build context. Both include cairn's build
format version. The versions cairn.lock pins count separately (a change there
is "packages updated": each manifest records the versions it was built with),
and an input digest also covers the parent's input digest, so a change
anywhere up the tree reaches every descendant, as does a parent rebuilt
since (its manifest digest is recorded in the child's). The
digests are recorded in each manifest's annotations; a step whose recorded
digest matches is skipped. The git revision is deliberately not an input: a
commit that changes nothing rebuilds nothing.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Literal

from cairn.debian.runtime_rules import runtime_rules
from cairn.family.fragment import context_digest
from cairn.family.lock import Lock, current_entry
from cairn.family.results import Reason
from cairn.family.spec import Family, Image
from cairn.oci.image import ANN_BASE_DIGEST, Descriptor, canonical_json, sha256_digest
from cairn.oci.layout import OciLayout
from cairn.platforms import Platform

# Bump when the same inputs would now give different images.
BUILD_FORMAT = "cairn-build-3"
ANN_INPUTS = "vnd.cairn.inputs"  # digest of the image's own inputs
ANN_INPUT = "vnd.cairn.input"  # digest of its own inputs and its parent's input digest
# digest of the package versions the image was built with (its lock entry when pinned)
ANN_VERSIONS = "vnd.cairn.versions"
# what the build found (a JSON list), so that a later build that keeps the image says it too
ANN_WARNINGS = "vnd.cairn.warnings"

Action = Literal["build", "skip"]


@dataclass(frozen=True)
class Step:
    image: Image
    platform: Platform
    action: Action
    reason: Reason
    inputs: str
    versions: str  # digest of the versions cairn.lock pins for it; "" when unlocked
    input: str
    recorded: Descriptor | None  # the manifest in the layout it was compared with
    pins: tuple[tuple[str, str], ...]  # every locked (package, version) of the image

    @property
    def label(self) -> str:
        return f"{self.image.name} {self.platform.name}"


def own_inputs(family: Family, image: Image, platform: Platform) -> str:
    """A root's inputs are its table with every default applied; a child's, its own table
    only: what it inherits reaches it through its parent's input digest."""
    doc: dict[str, Any] = {"format": BUILD_FORMAT, "platform": platform.name}
    if image.runtime:
        # what cairn makes in place of maintainer scripts, and the gconv modules kept
        doc["runtime"] = {"rules": runtime_rules().digest, "locales": image.locales}
    if image.parent is not None:
        table = family.tables[image.name]
        doc["table"] = table.model_dump(mode="json", by_alias=True)
        if image.dockerfile is not None and image.context is not None:
            doc["fragment"] = context_digest(image.dockerfile, image.context)
        return sha256_digest(canonical_json(doc))
    doc |= {
        "packages": list(image.added),
        "description": image.description,
        "env": image.env,
        "labels": image.labels,
        "cmd": image.cmd,
        "entrypoint": image.entrypoint,
        "user": image.user,
        "workdir": image.workdir,
        "source_date_epoch": family.source_date_epoch,
        "source": family.source,
        "suite": image.suite.name,
        "variant": image.variant,
        "mirror": image.mirror,
        "security_mirror": image.security_mirror,
        "profile": asdict(image.profile),
        "repositories": [r.line for r in image.repositories],
    }
    return sha256_digest(canonical_json(doc))


def versions_digest(packages: dict[str, str]) -> str:
    """Digest of a set of package versions: what a manifest records as ANN_VERSIONS."""
    return sha256_digest(canonical_json(dict(sorted(packages.items()))))


def input_digest(family: Family, image: Image, platform: Platform) -> str:
    own = own_inputs(family, image, platform)
    if image.parent is None:
        return own
    parent = input_digest(family, family.image(image.parent), platform)
    return sha256_digest(canonical_json([own, parent]))


def recorded(layout: OciLayout, image: str, platform: Platform) -> Descriptor | None:
    """The image's manifest for `platform` in the layout, if there is one."""
    if not layout.exists():
        return None
    return next((m for m in layout.platform_manifests(image) if m.platform == platform), None)


def make_plan(
    family: Family,
    jobs: tuple[tuple[Image, Platform], ...],
    layout: OciLayout,
    force: bool,
    lock: Lock | None = None,
) -> tuple[Step, ...]:
    """Decide for each (image, platform), parents before children; pure but for reading."""
    steps: dict[tuple[str, Platform], Step] = {}
    for image, platform in jobs:
        inputs = own_inputs(family, image, platform)
        entry = current_entry(lock, image, platform)
        versions = versions_digest(entry.packages) if entry else ""
        digest = input_digest(family, image, platform)
        found = recorded(layout, image.name, platform)
        before = layout.read_json(found.digest).get("annotations", {}) if found else None
        parent_step = steps.get((image.parent, platform)) if image.parent else None
        parent_now = (
            parent_step.recorded
            if parent_step
            else recorded(layout, image.parent, platform)
            if image.parent
            else None
        )
        reason: Reason
        if force:
            reason = "forced"
        elif before is None:
            reason = "new"
        elif before.get(ANN_INPUTS) != inputs:
            reason = "spec changed"
        elif versions and before.get(ANN_VERSIONS) != versions:
            reason = "packages updated"
        elif (
            before.get(ANN_INPUT) != digest
            or (parent_step and parent_step.action == "build")
            or (parent_now and before.get(ANN_BASE_DIGEST) != parent_now.digest)
        ):
            reason = "parent changed"
        else:
            reason = "unchanged"
        action: Action = "skip" if reason == "unchanged" else "build"
        pins = tuple(sorted(entry.packages.items())) if entry else ()
        steps[(image.name, platform)] = Step(
            image, platform, action, reason, inputs, versions, digest, found, pins
        )
    return tuple(steps.values())
