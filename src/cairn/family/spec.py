"""cairn.toml: the family spec, its validation, and the resolved images it describes.

The pydantic models are the single source of truth for the file's schema; the
resolved `RootImage` values are what the rest of cairn works with.
"""

from __future__ import annotations

import difflib
import os
import re
import subprocess
import time
import tomllib
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError, WithJsonSchema

from cairn.debian.profiles import Profile, known_profiles, load_profile
from cairn.debian.suites import Suite, apt_sources, known_suites
from cairn.errors import SpecError
from cairn.platforms import Platform, known_platforms, parse_platform

SPEC_FILE = "cairn.toml"

_IMAGE_NAME = re.compile(r"^[a-z0-9]+(?:[._-][a-z0-9]+)*$")
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


@dataclass(frozen=True)
class Repository:
    url: str
    suite: str
    components: tuple[str, ...]
    trusted: bool

    @property
    def line(self) -> str:
        """apt's one-line source."""
        opts = "[trusted=yes] " if self.trusted else ""
        return f"deb {opts}{self.url} {self.suite} {' '.join(self.components)}"


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


@dataclass(frozen=True)
class Image:
    """An image with every default and everything inherited applied."""

    name: str
    parent: str | None
    description: str | None
    suite: Suite
    platforms: tuple[Platform, ...]
    mirror: str
    security_mirror: str
    variant: str
    packages: tuple[str, ...]  # every package of the image, its ancestors' included
    added: tuple[str, ...]  # the packages this image adds to its parent's
    profile: Profile
    env: tuple[tuple[str, str], ...]
    labels: tuple[tuple[str, str], ...]
    cmd: tuple[str, ...]
    entrypoint: tuple[str, ...] | None
    user: str | None
    workdir: str | None
    tags: tuple[str, ...]
    repositories: tuple[Repository, ...]  # the image's and its ancestors'
    dockerfile: Path | None
    context: Path | None
    # where each resolved value came from: (key, origin); keys are the spec's (env.NAME and
    # labels.NAME per entry), origins "images.NAME", "variants.NAME", "defaults" or "cairn"
    origins: tuple[tuple[str, str], ...] = ()
    table: str = ""  # the image's own table: images.NAME, or variants.NAME for a variant
    locales: tuple[str, ...] = ()  # the translations the profile keeps

    @property
    def sources(self) -> tuple[str, ...]:
        """apt's one-line sources: the suite, its updates and security, then the extras."""
        lines = list(apt_sources(self.suite, self.mirror, self.security_mirror))
        lines += [r.line for r in self.repositories]
        return tuple(dict.fromkeys(lines))


@dataclass(frozen=True)
class Family:
    """A loaded, validated cairn.toml."""

    path: Path
    spec: FamilySpec
    tables: dict[str, ImageSpec]  # every image's table, variants expanded
    images: tuple[Image, ...]  # parents before their children
    source_date_epoch: int
    output: str
    source: str | None
    revision: str | None

    @property
    def directory(self) -> Path:
        return self.path.parent

    def image(self, name: str) -> Image:
        for img in self.images:
            if img.name == name:
                return img
        raise SpecError(
            f"{self.path}: there is no image '{name}'.",
            _did_you_mean(name, [i.name for i in self.images], what="images"),
        )


_DEFAULT_ENV = {"PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"}


def load_family(directory: Path) -> Family:
    """Read and validate DIR/cairn.toml (or the file itself); SpecError names file, key and fix."""
    path = directory if directory.is_file() else directory / SPEC_FILE
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise SpecError(
            f"No family spec at {path}.",
            f"Try: point cairn at a directory holding {SPEC_FILE} (see examples/qapm).",
        ) from None
    except (OSError, UnicodeDecodeError) as e:
        raise SpecError(f"Reading {path} failed because {e}.") from None
    except tomllib.TOMLDecodeError as e:
        raise SpecError(f"{path} is not valid TOML: {e}.", "Fix the syntax at that line.") from None

    try:
        spec = FamilySpec.model_validate(raw)
    except ValidationError as e:
        raise SpecError(
            _format_errors(path, raw, e), "Fix these keys in the spec and run again."
        ) from None

    for name in spec.images:
        if not _IMAGE_NAME.match(name):
            raise SpecError(
                f"{path}: images.{name}: expected an image name of lower-case letters and digits "
                "separated by '.', '_' or '-'.",
            )
    d = spec.defaults
    tables = _expand_variants(path, spec)
    images = _resolve_all(path, spec, tables)
    output = d.output
    if output.startswith("oci:"):
        store = Path(output.removeprefix("oci:"))
        output = f"oci:{store if store.is_absolute() else path.parent.resolve() / store}"
    return Family(
        path=path,
        spec=spec,
        tables=tables,
        images=images,
        source_date_epoch=_source_date_epoch(d.source_date_epoch, path.parent),
        output=output,
        source=d.source,
        revision=_git(path.parent, "rev-parse", "HEAD"),
    )


# A child image inherits these from its root: they decide how the root is built.
_ROOT_ONLY = ("suite", "variant", "profile", "locales")


def _expand_variants(path: Path, spec: FamilySpec) -> dict[str, ImageSpec]:
    """Every image's table, with NAME-VARIANT children made from [variants.VARIANT]."""
    for vname, vtable in spec.variants.items():
        for key in ("from_", "variants"):
            if key in vtable.model_fields_set:
                alias = "from" if key == "from_" else key
                raise SpecError(
                    f"{path}: variants.{vname}.{alias}: a variant is built on each image that "
                    "names it.",
                    f"Try: remove `{alias}` from variants.{vname}.",
                )
    tables: dict[str, ImageSpec] = {}
    for name, img in spec.images.items():
        tables[name] = img
        for vname in img.variants:
            if vname not in spec.variants:
                raise SpecError(
                    f"{path}: images.{name}.variants: there is no [variants.{vname}] table.",
                    _did_you_mean(vname, list(spec.variants), what="variants"),
                )
            child = f"{name}-{vname}"
            if child in spec.images or child in tables:
                raise SpecError(
                    f"{path}: images.{name}.variants: variant '{vname}' makes an image "
                    f"'{child}', and the family already has one.",
                    f"Try: rename images.{child}, or drop '{vname}' from images.{name}.variants.",
                )
            table = spec.variants[vname].model_dump(by_alias=True, exclude_unset=True)
            tables[child] = ImageSpec.model_validate({**table, "from": name})
    return tables


def table_origin(spec: FamilySpec, name: str, table: ImageSpec) -> str:
    """Which table of cairn.toml an image's own values stand in."""
    if name in spec.images:
        return f"images.{name}"
    variant = name.removeprefix(f"{table.from_}-")
    return f"variants.{variant}"


def _resolve_all(path: Path, spec: FamilySpec, specs: dict[str, ImageSpec]) -> tuple[Image, ...]:
    for name, img in specs.items():
        if img.from_ is None:
            continue
        if img.from_ not in specs:
            raise SpecError(
                f"{path}: images.{name}.from: there is no image '{img.from_}' in this family.",
                _did_you_mean(img.from_, list(specs), what="images"),
            )
        for key in _ROOT_ONLY:
            if key in img.model_fields_set:
                raise SpecError(
                    f"{path}: images.{name}.{key}: a child image takes its {key} from its "
                    "root image.",
                    f"Try: remove `{key}` from images.{name}, or set it on the root image.",
                )
    resolved: dict[str, Image] = {}
    for name in _parents_first(path, specs):
        img = specs[name]
        parent = resolved[img.from_] if img.from_ else None
        _check_kind(path, name, img, parent)
        image = _resolve(path, name, img, spec.defaults, parent)
        origins = _origins(table_origin(spec, name, img), img, spec.defaults, parent)
        resolved[name] = replace(image, origins=origins, table=table_origin(spec, name, img))
    return tuple(resolved.values())


def _check_kind(path: Path, name: str, img: ImageSpec, parent: Image | None) -> None:
    """Package images are built by mmdebstrap from packages alone: no Dockerfile above them."""
    where = f"{path}: images.{name}"
    if img.dockerfile is None:
        if img.context is not None:
            raise SpecError(
                f"{where}.context: only a Dockerfile image has a build context.",
                f"Try: add `dockerfile` to images.{name}, or remove `context`.",
            )
        if parent is not None and parent.dockerfile is not None:
            raise SpecError(
                f"{where}: its parent '{parent.name}' is built from a Dockerfile, so this image "
                "cannot be built from packages alone.",
                f"Try: give images.{name} a `dockerfile` that installs its packages "
                "(install_packages NAME...), or build it on a package image.",
            )
        return
    if parent is None:
        raise SpecError(
            f"{where}.dockerfile: a Dockerfile fragment builds on a parent image.",
            f'Try: add `from = "..."` to images.{name}.',
        )
    for key in ("packages", "repositories", "exclude"):
        if key in img.model_fields_set:
            raise SpecError(
                f"{where}.{key}: a Dockerfile image takes no {key}; its Dockerfile does the work.",
                f"Try: install them in the fragment (RUN install_packages ...), or remove `{key}`.",
            )


def _parents_first(path: Path, specs: dict[str, ImageSpec]) -> list[str]:
    """Image names with every parent before its children, else in spec order."""
    order: list[str] = []
    for start in specs:
        chain: list[str] = []
        name: str | None = start
        while name is not None and name not in order:
            if name in chain:
                cycle = [*chain[chain.index(name) :], name]
                raise SpecError(
                    f"{path}: images form a cycle: {' -> '.join(cycle)}.",
                    "Try: make one of them a root image (no `from`).",
                )
            chain.append(name)
            name = specs[name].from_
        order += reversed(chain)
    return order


def _resolve(path: Path, name: str, img: ImageSpec, d: Defaults, parent: Image | None) -> Image:
    dockerfile = context = None
    if img.dockerfile is not None:
        dockerfile = (path.parent / img.dockerfile).resolve()
        context = (path.parent / img.context).resolve() if img.context else dockerfile.parent
        _check_fragment(path, name, dockerfile, context)
    if parent is not None:
        platforms = parent.platforms
        if img.platforms is not None:
            platforms = tuple(parse_platform(p) for p in img.platforms)
            extra = [p.name for p in platforms if p not in parent.platforms]
            if extra:
                raise SpecError(
                    f"{path}: images.{name}.platforms: {', '.join(extra)} is not a platform of "
                    f"its parent '{parent.name}'.",
                    f"Try: add it to {parent.name}'s platforms, or remove it here.",
                )
        return Image(
            name=name,
            parent=parent.name,
            description=img.description,
            suite=parent.suite,
            platforms=platforms,
            mirror=parent.mirror,
            security_mirror=parent.security_mirror,
            variant=parent.variant,
            packages=tuple(dict.fromkeys(parent.packages + tuple(img.packages))),
            added=tuple(img.packages),
            profile=parent.profile.excluding(tuple(img.exclude)),
            env=tuple({**dict(parent.env), **img.env}.items()),
            labels=tuple({**dict(parent.labels), **img.labels}.items()),
            cmd=tuple(img.cmd) if img.cmd is not None else parent.cmd,
            entrypoint=tuple(img.entrypoint) if img.entrypoint is not None else parent.entrypoint,
            user=img.user if img.user is not None else parent.user,
            workdir=img.workdir if img.workdir is not None else parent.workdir,
            tags=tuple(img.tags) if img.tags else parent.tags,
            repositories=tuple(
                dict.fromkeys(parent.repositories + _repositories(img, parent.mirror))
            ),
            dockerfile=dockerfile,
            context=context,
            locales=parent.locales,
        )
    locales = tuple(img.locales if img.locales is not None else d.locales)
    env = dict(_DEFAULT_ENV)
    env.update(d.env)
    env.update(img.env)
    return Image(
        name=name,
        parent=None,
        description=img.description,
        suite=known_suites()[img.suite or d.suite],
        platforms=tuple(parse_platform(p) for p in (img.platforms or d.platforms)),
        mirror=d.mirror,
        security_mirror=d.security_mirror,
        variant=img.variant,
        packages=tuple(img.packages),
        added=tuple(img.packages),
        profile=load_profile(img.profile or d.profile)
        .with_locales(locales)
        .excluding(tuple(img.exclude)),
        env=tuple(env.items()),
        labels=tuple({**d.labels, **img.labels}.items()),
        cmd=tuple(img.cmd) if img.cmd is not None else ("bash",),
        entrypoint=tuple(img.entrypoint) if img.entrypoint is not None else None,
        user=img.user,
        workdir=img.workdir,
        tags=tuple(img.tags or [img.suite or d.suite]),
        repositories=_repositories(img, d.mirror),
        dockerfile=None,
        context=None,
        locales=locales,
    )


# what a child takes from its parent unless its own table sets it
_INHERITED = ("platforms", "cmd", "entrypoint", "user", "workdir", "tags")


def _origins(
    where: str, img: ImageSpec, d: Defaults, parent: Image | None
) -> tuple[tuple[str, str], ...]:
    """Where each value `_resolve` gives the image came from (cairn config shows it)."""
    own = img.model_fields_set
    out: dict[str, str] = {}
    if parent is not None:
        out.update(parent.origins)
        for key in _INHERITED:
            if key in own:
                out[key] = where
        out["description"] = where if "description" in own else "cairn"
    else:
        for key in ("suite", "platforms", "profile", "locales", "mirror", "security_mirror"):
            in_defaults = key in d.model_fields_set
            out[key] = where if key in own else "defaults" if in_defaults else "cairn"
        for key in ("variant", "cmd", "entrypoint", "user", "workdir", "description"):
            out[key] = where if key in own else "cairn"
        out["tags"] = where if "tags" in own else out["suite"]
        out.update({f"env.{k}": "cairn" for k in _DEFAULT_ENV})
        out.update({f"env.{k}": "defaults" for k in d.env})
        out.update({f"labels.{k}": "defaults" for k in d.labels})
    out.update({f"env.{k}": where for k in img.env})
    out.update({f"labels.{k}": where for k in img.labels})
    return tuple(out.items())


def _repositories(img: ImageSpec, mirror: str) -> tuple[Repository, ...]:
    return tuple(
        Repository(r.url or mirror, r.suite, tuple(r.components), r.trusted)
        for r in img.repositories
    )


def _check_fragment(path: Path, name: str, dockerfile: Path, context: Path) -> None:
    where = f"{path}: images.{name}.dockerfile"
    try:
        text = dockerfile.read_text(encoding="utf-8")
    except OSError as e:
        raise SpecError(
            f"{where}: cannot read {dockerfile} ({e.strerror or e}).",
            "Try: fix the path; it is relative to cairn.toml.",
        ) from None
    for number, line in enumerate(text.splitlines(), 1):
        if re.match(r"^\s*FROM\s", line, re.IGNORECASE):
            raise SpecError(
                f"{where}: {dockerfile.name} line {number} has a FROM; a fragment is built on "
                "its parent image, which cairn supplies.",
                "Try: delete the FROM line (and any later stages).",
            )
    if not context.is_dir():
        raise SpecError(f"{path}: images.{name}.context: {context} is not a directory.")


def _source_date_epoch(configured: int | None, directory: Path) -> int:
    if configured is not None:
        return configured
    env = os.environ.get("SOURCE_DATE_EPOCH")
    if env and env.isdigit():
        return int(env)
    commit_time = _git(directory, "log", "-1", "--format=%ct")
    if commit_time and commit_time.isdigit():
        return int(commit_time)
    return int(time.time())


def _git(directory: Path, *args: str) -> str | None:
    try:
        out = subprocess.run(
            ["git", "-C", str(directory), *args],
            capture_output=True,
            text=True,
            check=True,
            timeout=10,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None


_MODELS: dict[str, type[BaseModel]] = {
    "": FamilySpec,
    "defaults": Defaults,
    "images": ImageSpec,
    "variants": ImageSpec,
}


def _format_errors(path: Path, raw: dict[str, Any], err: ValidationError) -> str:
    lines = [f"{path} is not a valid family spec:"]
    for e in err.errors():
        loc = tuple(str(p) for p in e["loc"])
        key = ".".join(loc) or "(top level)"
        if e["type"] == "extra_forbidden":
            model = (
                RepositorySpec if "repositories" in loc else _MODELS[loc[0] if len(loc) > 1 else ""]
            )
            keys = [f.alias or n for n, f in model.model_fields.items()]
            hint = _did_you_mean(loc[-1], keys)
            lines.append(f"  {key}: unknown key. {hint}".rstrip())
        elif e["type"] == "missing":
            lines.append(f"  {key}: required key is missing")
        else:
            msg = e["msg"].removeprefix("Value error, ")
            got = e.get("input")
            if e["type"].endswith("_type") or e["type"] == "literal_error":
                msg = f"{msg}; got {got!r}"
            lines.append(f"  {key}: {msg}")
    return "\n".join(lines)


def _did_you_mean(word: str, choices: list[str], what: str = "keys") -> str:
    close = difflib.get_close_matches(word, choices, n=1)
    return f"Perhaps you meant '{close[0]}'?" if close else f"Known {what}: {', '.join(choices)}."
