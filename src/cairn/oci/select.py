"""Which image manifest a reference into an OCI layout means."""

from __future__ import annotations

from typing import Any

from cairn.errors import ImageRefError, UsageError
from cairn.oci.layout import OciLayout
from cairn.platforms import Platform, native_platform


def select_manifest(
    layout: OciLayout, name: str | None, platform: Platform | None
) -> dict[str, Any]:
    """The image manifest `name` names in the layout (the only image when None), picking
    `platform` (else the machine's) out of an index."""
    refs = layout.refs()
    if name is None:
        if len(refs) != 1:
            raise UsageError(
                f"{layout.root} holds {len(refs)} images; say which one.",
                f"Try: oci:{layout.root}:NAME with NAME one of {', '.join(sorted(refs)) or '-'}.",
            )
        name = next(iter(refs))
    if name not in refs:
        raise ImageRefError(
            f"{layout.root} has no image '{name}'.",
            f"Try one of: {', '.join(sorted(refs)) or '(none)'}.",
        )
    desc = refs[name]
    manifest = layout.read_json(desc.digest)
    if "manifests" in manifest:
        choices = layout.platform_manifests(name)
        wanted = platform or native_platform()
        chosen = [m for m in choices if m.platform and wanted and m.platform.name == wanted.name]
        if not chosen and len(choices) == 1:
            chosen = list(choices)
        if not chosen:
            have = ", ".join(m.platform.name for m in choices if m.platform)
            raise UsageError(
                f"{name} has no {wanted.name if wanted else 'native'} image (it has {have}).",
                "Try: --platform with one of those.",
            )
        manifest = layout.read_json(chosen[0].digest)
    return manifest
