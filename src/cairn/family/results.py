"""What the family's commands return (build, plan, refresh, push); the same types are
their JSON output and schema (cairn.output).
"""

from __future__ import annotations

import dataclasses
from typing import Annotated, ClassVar, Literal

from pydantic import Field
from pydantic.dataclasses import dataclass

Reason = Literal["new", "spec changed", "packages updated", "parent changed", "forced", "unchanged"]
REASONS_HELP = (
    "new: not in the layout; spec changed: its own inputs changed; packages updated: the "
    "versions cairn.lock pins for it changed; parent changed: an ancestor's inputs did, or it "
    "is rebuilt; forced: --force; unchanged: kept."
)


@dataclass(frozen=True)
class PlatformBuild:
    platform: Annotated[str, Field(description="OCI platform, e.g. linux/arm64.")]
    manifest_digest: Annotated[
        str, Field(description="Digest of the image manifest for this platform.")
    ]
    config_digest: Annotated[str, Field(description="Digest of the image config.")]
    layers: Annotated[list[str], Field(description="Digests of the compressed layers, base first.")]
    uncompressed_bytes: Annotated[
        int, Field(description="Sum of the layers' uncompressed tar sizes.")
    ]
    compressed_bytes: Annotated[
        int, Field(description="Sum of the layers' compressed (gzip) sizes.")
    ]
    packages: Annotated[int, Field(description="Installed dpkg packages.")]
    files: Annotated[int, Field(description="Regular files in the image.")]
    seconds: Annotated[float, Field(description="Wall time of this platform's build.")]
    action: Annotated[
        Literal["build", "skip"], Field(description="Built now, or unchanged and kept.")
    ]
    reason: Annotated[Reason, Field(description="Why it was built or kept. " + REASONS_HELP)]
    warnings: Annotated[
        list[str],
        Field(description="What this build found, e.g. a runtime package's script not run."),
    ] = dataclasses.field(default_factory=list)


@dataclass(frozen=True)
class ImageBuild:
    name: Annotated[str, Field(description="Image name: its ref.name in the OCI layout.")]
    index_digest: Annotated[
        str, Field(description="Digest of the image index (one manifest per platform).")
    ]
    platforms: list[PlatformBuild]


@dataclass(frozen=True)
class PushedImage:
    image: str
    repository: Annotated[str, Field(description="REGISTRY/PREFIX/NAME.")]
    digest: Annotated[str, Field(description="Digest of the pushed index (preserved).")]
    tags: list[str]
    attachments: Annotated[
        list[str],
        Field(description="Signature and attestation tags pushed with it (sha256-HEX.sig)."),
    ] = dataclasses.field(default_factory=list)


@dataclass(frozen=True)
class BuildResult:
    SCHEMA_VERSION: ClassVar[int] = 1
    output: Annotated[
        str, Field(description="Where the images were written, as an image reference.")
    ]
    source_date_epoch: Annotated[
        int, Field(description="The timestamp every file and `created` carry.")
    ]
    images: list[ImageBuild]
    warnings: Annotated[
        list[str], Field(description="What the user should know, e.g. a stale cairn.lock.")
    ]
    pushed: Annotated[list[PushedImage], Field(description="Images pushed with --push.")] = (
        dataclasses.field(default_factory=list)
    )


@dataclass(frozen=True)
class PlanStep:
    image: str
    platform: str
    action: Annotated[Literal["build", "skip"], Field(description="What cairn build would do.")]
    reason: Annotated[Reason, Field(description=REASONS_HELP)]
    input_digest: Annotated[
        str, Field(description="Digest of its inputs and its parent's; kept in the manifest.")
    ]


@dataclass(frozen=True)
class PlanResult:
    SCHEMA_VERSION: ClassVar[int] = 1
    output: str
    steps: list[PlanStep]
    warnings: list[str]


@dataclass(frozen=True)
class PackageUpdate:
    package: str
    installed: Annotated[str, Field(description="Version in the built image.")]
    available: Annotated[str, Field(description="Newer version in the archive now.")]
    suite: Annotated[str, Field(description="Archive it comes from, e.g. oldstable-security.")]


@dataclass(frozen=True)
class RefreshImage:
    image: str
    platform: str
    updates: list[PackageUpdate]


@dataclass(frozen=True)
class RefreshResult:
    # 2: the rebuild under `build` no longer repeats schema_version
    SCHEMA_VERSION: ClassVar[int] = 2
    output: Annotated[str, Field(description="The OCI layout whose images were checked.")]
    images: list[RefreshImage]
    updates: Annotated[int, Field(description="Package updates found, over all images.")]
    build: Annotated[
        BuildResult | None,
        Field(description="The rebuild (cairn refresh without --check, when there were updates)."),
    ] = None


@dataclass(frozen=True)
class PushResult:
    # 1: was a bare list of the pushed images, with no version
    SCHEMA_VERSION: ClassVar[int] = 1
    pushed: list[PushedImage]


@dataclass(frozen=True)
class ConfigValue:
    key: Annotated[str, Field(description="The spec's key; env.NAME and labels.NAME per entry.")]
    value: Annotated[
        str | list[str] | None, Field(description="What cairn builds with; null: unset.")
    ]
    origin: Annotated[
        str,
        Field(
            description="Where it is set: images.NAME (the image's table or an ancestor's), "
            "variants.NAME, defaults ([defaults]) or cairn (cairn's own default)."
        ),
    ]


@dataclass(frozen=True)
class ConfigItem:
    """One entry of a list that adds up along the chain of images."""

    value: str
    origin: Annotated[
        str, Field(description="The table that lists it: images.NAME or variants.NAME.")
    ]


@dataclass(frozen=True)
class ConfigImage:
    name: str
    parent: str | None
    table: Annotated[str, Field(description="Its own table: images.NAME, or variants.NAME.")]
    kind: Annotated[
        Literal["packages", "dockerfile"],
        Field(
            description="Built from Debian packages (mmdebstrap), or from a Dockerfile fragment."
        ),
    ]
    dockerfile: str | None
    values: list[ConfigValue]
    packages: Annotated[list[ConfigItem], Field(description="Every package, ancestors' first.")]
    repositories: Annotated[
        list[ConfigItem], Field(description="Extra apt sources (one-line form), ancestors' first.")
    ]
    exclude: Annotated[
        list[ConfigItem],
        Field(description="Paths left out besides the profile's, ancestors' first."),
    ]


@dataclass(frozen=True)
class FamilyConfig:
    SCHEMA_VERSION: ClassVar[int] = 1
    spec: Annotated[str, Field(description="The cairn.toml read.")]
    output: Annotated[str, Field(description="Where images go, resolved.")]
    source_date_epoch: int
    images: Annotated[
        list[ConfigImage], Field(description="Every image, variants expanded, parents first.")
    ]


@dataclass(frozen=True)
class LockedImage:
    image: str
    platform: str
    state: Annotated[
        Literal["kept", "locked", "updated"],
        Field(description="kept: its entry still answers cairn.toml; locked: new; updated."),
    ]
    packages: Annotated[int, Field(description="Packages locked for it.")]
    changed: Annotated[list[str], Field(description="Packages whose locked version moved.")]


@dataclass(frozen=True)
class LockResult:
    SCHEMA_VERSION: ClassVar[int] = 1
    lock: Annotated[str, Field(description="The cairn.lock written.")]
    images: list[LockedImage]
