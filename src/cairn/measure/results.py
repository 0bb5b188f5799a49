"""What the measuring commands return (analyze, compare, scan); the same types are their
JSON output and schema (cairn.output)."""

from __future__ import annotations

from typing import Annotated, Any, ClassVar, Literal

from pydantic import Field, TypeAdapter
from pydantic.dataclasses import dataclass

Count = Annotated[int, Field(ge=0)]
Severity = Literal["info", "warning", "error"]


@dataclass(frozen=True)
class LayerFigures:
    index: Count
    digest: str
    compressed_bytes: Count | None
    bytes: Count
    created_by: str
    entries: Count
    added: Count
    modified: Count
    deleted: Count


@dataclass(frozen=True)
class WastedPath:
    path: str
    bytes: Count
    reasons: list[str]


@dataclass(frozen=True)
class CategoryFigures:
    name: str
    bytes: Count
    files: Count


@dataclass(frozen=True)
class PackageFigures:
    name: str
    version: str
    architecture: str
    manager: Literal["dpkg", "apk"]
    source: str
    source_version: str
    bytes: Count
    files: Count
    layer: Count | None


@dataclass(frozen=True)
class OsRelease:
    id: str | None
    version_id: str | None
    codename: str | None
    pretty_name: str | None


@dataclass(frozen=True)
class LibcFigures:
    family: Literal["glibc", "musl", "none"]
    version: str | None


@dataclass(frozen=True)
class UnneededPackage:
    name: str
    bytes: Count


@dataclass(frozen=True)
class Slimming:
    profile: str
    bytes: Count
    files: Count
    unneeded_packages: list[UnneededPackage]


@dataclass(frozen=True)
class MeasureFinding:
    severity: Severity
    code: str
    message: str
    path: str | None


@dataclass(frozen=True)
class Analysis:
    """One image measured. Sizes are bytes of file content (regular files; a hard link adds
    none). total_bytes is what the final file system holds and equals the sum of
    categories[].bytes; layers_bytes = total_bytes + wasted_bytes."""

    SCHEMA_VERSION: ClassVar[int] = 1
    image: str
    platform: str | None
    total_bytes: Count
    compressed_bytes: Count | None
    layers_bytes: Count
    files: Count
    directories: Count
    links: Count
    special: Count
    layers: list[LayerFigures]
    wasted_bytes_dive: Annotated[
        Count,
        Field(
            description="dive's inefficientBytes: over the leaves of each layer's tree, the "
            "summed sizes of every path seen in two or more layers (the copy that stays "
            "counts too)."
        ),
    ]
    efficiency: Annotated[
        float,
        Field(
            ge=0,
            le=1,
            description="dive's efficiency score: sum over paths of the smallest size seen / "
            "sum of all sizes seen.",
        ),
    ]
    wasted_bytes: Annotated[
        Count,
        Field(
            description="Bytes stored in layers that the final file system does not show "
            "(overwritten or deleted later)."
        ),
    ]
    wasted_paths: list[WastedPath]
    categories: list[CategoryFigures]
    packages: list[PackageFigures]
    package_count: Count
    unowned_bytes: int
    os: OsRelease
    libc: LibcFigures
    package_managers: Annotated[
        list[str],
        Field(description="dpkg, rpm or apk where both its database and its program are present."),
    ]
    shell: bool
    user: str
    entrypoint: list[str] | None
    cmd: list[str] | None
    env: list[str]
    working_dir: str
    slimming: Slimming
    findings: list[MeasureFinding]


@dataclass(frozen=True)
class ComparisonRow:
    metric: str
    values: list[Any]


@dataclass(frozen=True)
class Comparison:
    # 2: images[] no longer repeat schema_version
    SCHEMA_VERSION: ClassVar[int] = 2
    images: list[Analysis]
    rows: list[ComparisonRow]


ScanStatus = Literal["fixed", "not-fixed", "wont-fix"]


@dataclass(frozen=True)
class Advisory:
    id: str
    source: str
    packages: list[str]
    installed: str
    status: ScanStatus
    fixed_version: str | None
    detail: str


@dataclass(frozen=True)
class ScanSummary:
    fixed: Count
    not_fixed: Annotated[Count, Field(alias="not-fixed")]
    wont_fix: Annotated[Count, Field(alias="wont-fix")]


@dataclass(frozen=True)
class ScanResult:
    SCHEMA_VERSION: ClassVar[int] = 1
    image: str
    platform: str | None
    os: OsRelease
    package_count: Count
    summary: ScanSummary
    findings: list[Advisory]


def typed(kind: type[Any], data: dict[str, Any]) -> Any:
    """`data` (built by the measuring code) as `kind`; a mismatch is a bug, raised here."""
    return TypeAdapter(kind).validate_python(data)
