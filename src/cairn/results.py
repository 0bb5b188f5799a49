"""What `cairn build` returns; the same types define its JSON output and schema.

A change to these types that breaks readers must bump SCHEMA_VERSION and
regenerate docs/schemas/ (python -m cairn.schemas).
"""

from __future__ import annotations

from typing import Annotated, Any

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


def to_json(result: BuildResult) -> dict[str, Any]:
    data: dict[str, Any] = TypeAdapter(BuildResult).dump_python(result, mode="json")
    return data


def json_schema() -> dict[str, Any]:
    schema: dict[str, Any] = TypeAdapter(BuildResult).json_schema()
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "cairn build --json"
    return schema
