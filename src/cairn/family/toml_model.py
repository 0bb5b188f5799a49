"""cairn.toml as written: the pydantic models of its tables and the validation of every
value. These models are the single source of truth for the file's schema
(docs/schemas/cairn.schema.json); cairn.family.resolve turns them into images.
"""

from __future__ import annotations

import re
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, WithJsonSchema

from cairn.debian.profiles import known_profiles
from cairn.debian.suites import known_suites
from cairn.platforms import known_platforms, parse_platform

SPEC_FILE = "cairn.toml"

IMAGE_NAME = re.compile(r"^[a-z0-9]+(?:[._-][a-z0-9]+)*$")
# Debian policy 5.6.1 package names, optionally with an architecture qualifier.
_PACKAGE = re.compile(r"^[a-z0-9][a-z0-9+.-]+(?::[a-z0-9-]+)?$")
_LOCALE = re.compile(r"^[a-z]{2,3}(?:_[A-Z]{2})?(?:\.[A-Za-z0-9-]+)?(?:@[a-z]+)?$")


def _suite(value: str) -> str:
    if value not in known_suites():
        raise ValueError(f"expected one of {', '.join(known_suites())}; got {value!r}")
    return value


def _platform(value: str) -> str:
    try:
        return parse_platform(value).name
    except KeyError:
        raise ValueError(f"expected one of {', '.join(known_platforms())}; got {value!r}") from None


def _profile(value: str) -> str:
    if value not in known_profiles():
        raise ValueError(f"expected one of {', '.join(known_profiles())}; got {value!r}")
    return value


def _package(value: str) -> str:
    if not _PACKAGE.match(value):
        raise ValueError(
            f"expected a Debian package name (lower case, digits, + - .); got {value!r}"
        )
    return value


def _locale(value: str) -> str:
    if not _LOCALE.match(value):
        raise ValueError(f"expected a locale name such as zh_CN or de_DE.UTF-8; got {value!r}")
    return value


def _mirror(value: str) -> str:
    if not re.match(r"^(https?|file)://[^\s]+$", value):
        raise ValueError(f"expected an http://, https:// or file:// URL; got {value!r}")
    return value.rstrip("/")


def _output(value: str) -> str:
    if not (value.startswith("oci:") or value.startswith("docker-archive:")):
        raise ValueError(f"expected oci:DIR or docker-archive:FILE; got {value!r}")
    return value


# Each type validates with its function (whose error names what is expected) and tells
# editors the same through docs/schemas/cairn.schema.json.
SuiteName = Annotated[
    str, AfterValidator(_suite), WithJsonSchema({"type": "string", "enum": list(known_suites())})
]
PlatformName = Annotated[
    str,
    AfterValidator(_platform),
    WithJsonSchema({"type": "string", "enum": list(known_platforms())}),
]
ProfileName = Annotated[
    str,
    AfterValidator(_profile),
    WithJsonSchema({"type": "string", "enum": list(known_profiles())}),
]
PackageName = Annotated[
    str, AfterValidator(_package), WithJsonSchema({"type": "string", "pattern": _PACKAGE.pattern})
]
LocaleName = Annotated[
    str, AfterValidator(_locale), WithJsonSchema({"type": "string", "pattern": _LOCALE.pattern})
]
MirrorUrl = Annotated[
    str,
    AfterValidator(_mirror),
    WithJsonSchema({"type": "string", "pattern": r"^(https?|file)://[^\s]+$"}),
]
OutputRef = Annotated[
    str,
    AfterValidator(_output),
    WithJsonSchema({"type": "string", "pattern": "^(oci|docker-archive):"}),
]
_TOKEN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._+-]*$")
_TAG = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9._-]{0,127}$")
_SAFE_GLOB = re.compile(r"^/[A-Za-z0-9_.*+@/-]+$")


def _token(value: str) -> str:
    if not _TOKEN.match(value):
        raise ValueError(
            f"expected a suite or component name such as bookworm-backports; got {value!r}"
        )
    return value


def _tag(value: str) -> str:
    if not _TAG.match(value):
        raise ValueError(
            f"expected an image tag (letters, digits, . _ -; at most 128); got {value!r}"
        )
    return value


def _glob(value: str) -> str:
    if not _SAFE_GLOB.match(value):
        raise ValueError(
            f"expected an absolute path or glob such as /usr/lib/go-*/src/*_test.go; got {value!r}"
        )
    return value


Token = Annotated[
    str, AfterValidator(_token), WithJsonSchema({"type": "string", "pattern": _TOKEN.pattern})
]
TagName = Annotated[
    str, AfterValidator(_tag), WithJsonSchema({"type": "string", "pattern": _TAG.pattern})
]
PathGlob = Annotated[
    str, AfterValidator(_glob), WithJsonSchema({"type": "string", "pattern": _SAFE_GLOB.pattern})
]
Variant = Literal["essential", "apt", "required", "minbase", "buildd", "important", "standard"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)


class Defaults(_Strict):
    """[defaults]: settings every image inherits unless it sets its own."""

    suite: SuiteName = Field("trixie", description="Debian suite the images are built from.")
    platforms: list[PlatformName] = Field(
        default_factory=lambda: ["linux/amd64", "linux/arm64"],
        min_length=1,
        description="OCI platforms every image is built for.",
    )
    mirror: MirrorUrl = Field("http://deb.debian.org/debian", description="Debian archive.")
    security_mirror: MirrorUrl = Field(
        "http://deb.debian.org/debian-security", description="Debian security archive."
    )
    source_date_epoch: int | None = Field(
        None,
        ge=0,
        description="Timestamp of every file and of the image's `created`; "
        "default: $SOURCE_DATE_EPOCH, else the family's last git commit, else now.",
    )
    output: OutputRef = Field(
        "oci:out/oci",
        description="Where images go: oci:DIR (relative to the spec) or docker-archive:FILE.",
    )
    source: str | None = Field(
        None, description="URL of the family's sources (OCI `source` annotation)."
    )
    profile: ProfileName = Field("slim", description="Slim profile of root images.")
    locales: list[LocaleName] = Field(default_factory=list, description="Translations to keep.")
    env: dict[str, str] = Field(default_factory=dict, description="Environment of every image.")
    labels: dict[str, str] = Field(default_factory=dict, description="Labels of every image.")


class RepositorySpec(_Strict):
    """An extra apt source: another suite of the mirror (bookworm-backports) or another archive."""

    suite: Token = Field(description="Suite (distribution) name, e.g. bookworm-backports.")
    url: MirrorUrl | None = Field(None, description="Archive URL; default: the family's mirror.")
    components: list[Token] = Field(default_factory=lambda: ["main"], min_length=1)
    trusted: bool = Field(
        False, description="Accept the source unsigned ([trusted=yes]); for local archives only."
    )


class ImageSpec(_Strict):
    """[images.NAME]: one image of the family. Without `from` it is a root built from Debian
    packages; with it, a child: its parent's layers plus one layer with its own packages."""

    from_: str | None = Field(
        None, alias="from", description="Parent image; the child adds one layer to its layers."
    )
    description: str | None = None
    packages: list[PackageName] = Field(default_factory=list, description="Debian packages to add.")
    suite: SuiteName | None = None
    variant: Variant = Field(
        "apt",
        description="mmdebstrap variant: the package set to start from. The default, apt, is "
        "Debian's Essential set plus apt: no e2fsprogs, mount or tzdata (list it in packages).",
    )
    runtime: bool | None = Field(
        None,
        description="A runtime image: its packages are unpacked, never configured (no maintainer "
        "script runs, so no platform needs emulation), with no package manager and no shell "
        "unless it lists one; cairn makes the users, CA bundle and package database itself. "
        "It runs as nonroot (65532) unless `user` says otherwise. A child takes it from its "
        "parent.",
    )
    profile: ProfileName | None = None
    locales: list[LocaleName] | None = None
    platforms: list[PlatformName] | None = Field(None, min_length=1)
    env: dict[str, str] = Field(default_factory=dict)
    labels: dict[str, str] = Field(default_factory=dict)
    cmd: list[str] | None = Field(None, description='Default command; default ["bash"].')
    entrypoint: list[str] | None = None
    user: str | None = None
    workdir: str | None = None
    tags: list[TagName] | None = Field(
        None, min_length=1, description="Tags pushed for the image; default: the suite's name."
    )
    repositories: list[RepositorySpec] = Field(
        default_factory=list,
        description="Extra apt sources for this image and its children (e.g. backports).",
    )
    exclude: list[PathGlob] = Field(
        default_factory=list,
        description="Paths the slim profile leaves out of this image and its children too "
        "(dpkg path-exclude globs).",
    )
    dockerfile: str | None = Field(
        None,
        description="A Dockerfile fragment (no FROM) built on the parent; path relative to "
        "cairn.toml.",
    )
    context: str | None = Field(
        None, description="Build context of the fragment; default: the fragment's directory."
    )
    variants: list[str] = Field(
        default_factory=list,
        description="Variants of this image: for each V, an image NAME-V built on it from the "
        "table [variants.V].",
    )


class FamilySpec(_Strict):
    defaults: Defaults = Field(default_factory=Defaults)  # type: ignore[arg-type]
    images: dict[str, ImageSpec] = Field(min_length=1)
    variants: dict[str, ImageSpec] = Field(
        default_factory=dict,
        description="Tables an image's `variants` apply: each adds a child NAME-VARIANT.",
    )
    runtime_variants: dict[str, ImageSpec] = Field(
        default_factory=dict,
        description="The same for runtime images: a runtime image's `variants` name these "
        "tables (debug: a busybox shell, where [variants.debug] adds apt's tools).",
    )
