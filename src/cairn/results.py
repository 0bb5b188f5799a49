"""What `cairn build` returns; the same types define its JSON output and schema.

A change to these types that breaks readers must bump SCHEMA_VERSION and
regenerate docs/schemas/ (python -m cairn.schemas).
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import Field, TypeAdapter
from pydantic.dataclasses import dataclass

SCHEMA_VERSION = 1


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
    reason: Annotated[
        Literal["new", "spec changed", "parent changed", "forced", "unchanged"],
        Field(description="Why it was built or skipped (see cairn plan)."),
    ]


@dataclass(frozen=True)
class ImageBuild:
    name: Annotated[str, Field(description="Image name: its ref.name in the OCI layout.")]
    index_digest: Annotated[
        str, Field(description="Digest of the image index (one manifest per platform).")
    ]
    platforms: list[PlatformBuild]


@dataclass(frozen=True)
class BuildResult:
    schema_version: Annotated[int, Field(description="Version of this JSON schema.")]
    output: Annotated[
        str, Field(description="Where the images were written, as an image reference.")
    ]
    source_date_epoch: Annotated[
        int, Field(description="The timestamp every file and `created` carry.")
    ]
    images: list[ImageBuild]


@dataclass(frozen=True)
class PlanStep:
    image: str
    platform: str
    action: Annotated[Literal["build", "skip"], Field(description="What cairn build would do.")]
    reason: Annotated[
        Literal["new", "spec changed", "parent changed", "forced", "unchanged"],
        Field(
            description="new: not in the layout; spec changed: its own inputs changed; "
            "parent changed: an ancestor's did, or it is rebuilt; forced: --force."
        ),
    ]
    input_digest: Annotated[
        str, Field(description="Digest of its inputs and its parent's; kept in the manifest.")
    ]


@dataclass(frozen=True)
class PlanResult:
    schema_version: int
    output: str
    steps: list[PlanStep]


def to_json(result: BuildResult | PlanResult) -> dict[str, Any]:
    data: dict[str, Any] = TypeAdapter(type(result)).dump_python(result, mode="json")
    return data


def json_schema(kind: type[BuildResult] | type[PlanResult], title: str) -> dict[str, Any]:
    schema: dict[str, Any] = TypeAdapter(kind).json_schema()
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = title
    return schema
