"""The family's images resolved: each image's table with cairn's defaults, [defaults],
its variants and everything it inherits from its parent applied, and where each
value came from.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

from cairn.debian.profiles import Profile, load_profile
from cairn.debian.resolver import RUNTIME_VARIANT
from cairn.debian.runtime_root import NONROOT_USER
from cairn.debian.suites import Suite, apt_sources, known_suites
from cairn.errors import SpecError, did_you_mean
from cairn.family.image_kinds import check_fragment, check_kind
from cairn.family.toml_model import Defaults, FamilySpec, ImageSpec
from cairn.platforms import Platform, parse_platform


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
    def runtime(self) -> bool:
        """Packages unpacked, never configured: no shell, no package manager, no emulation."""
        return self.variant == RUNTIME_VARIANT

    @property
    def sources(self) -> tuple[str, ...]:
        """apt's one-line sources: the suite, its updates and security, then the extras."""
        lines = list(apt_sources(self.suite, self.mirror, self.security_mirror))
        lines += [r.line for r in self.repositories]
        return tuple(dict.fromkeys(lines))


_DEFAULT_ENV = {"PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"}


# A child image inherits these from its root: they decide how the root is built.
_ROOT_ONLY = ("suite", "variant", "profile", "locales")


def expand_variants(path: Path, spec: FamilySpec) -> dict[str, ImageSpec]:
    """Every image's table, with NAME-VARIANT children made from [variants.VARIANT] (or,
    for a runtime image, [runtime_variants.VARIANT])."""
    kinds = (("variants", spec.variants), ("runtime_variants", spec.runtime_variants))
    for kind, variants in kinds:
        for vname, vtable in variants.items():
            for key in ("from_", "variants", "runtime"):
                if key in vtable.model_fields_set:
                    alias = "from" if key == "from_" else key
                    raise SpecError(
                        f"{path}: {kind}.{vname}.{alias}: a variant is built on each image that "
                        "names it, and is of its kind.",
                        f"Try: remove `{alias}` from {kind}.{vname}.",
                    )
    tables: dict[str, ImageSpec] = {}
    for name, img in spec.images.items():
        tables[name] = img
        kind, variants = (
            ("runtime_variants", spec.runtime_variants)
            if _is_runtime(spec, name)
            else ("variants", spec.variants)
        )
        for vname in img.variants:
            if vname not in variants:
                other = "variants" if kind == "runtime_variants" else "runtime_variants"
                hint = did_you_mean(vname, list(variants), what=kind.replace("_", " "))
                if vname in getattr(spec, other):
                    image_kind = "a runtime image" if kind == "runtime_variants" else "an apt image"
                    hint = (
                        f"Try: [{other}.{vname}] applies to the other kind of image; {name} is "
                        f"{image_kind}, whose variants come from [{kind}.{vname}]: add that table."
                    )
                raise SpecError(
                    f"{path}: images.{name}.variants: there is no [{kind}.{vname}] table.", hint
                )
            child = f"{name}-{vname}"
            if child in spec.images or child in tables:
                raise SpecError(
                    f"{path}: images.{name}.variants: variant '{vname}' makes an image "
                    f"'{child}', and the family already has one.",
                    f"Try: rename images.{child}, or drop '{vname}' from images.{name}.variants.",
                )
            table = variants[vname].model_dump(by_alias=True, exclude_unset=True)
            tables[child] = ImageSpec.model_validate({**table, "from": name})
    return tables


def _is_runtime(spec: FamilySpec, name: str) -> bool:
    """Whether an image of the spec is a runtime image: its own `runtime`, else its
    nearest ancestor's (a cycle or a missing parent is reported by resolve_all)."""
    seen: set[str] = set()
    current: str | None = name
    while current is not None and current in spec.images and current not in seen:
        seen.add(current)
        table = spec.images[current]
        if table.runtime is not None:
            return table.runtime
        current = table.from_
    return False


def table_origin(spec: FamilySpec, name: str, table: ImageSpec) -> str:
    """Which table of cairn.toml an image's own values stand in."""
    if name in spec.images:
        return f"images.{name}"
    variant = name.removeprefix(f"{table.from_}-")
    return f"variants.{variant}"


def resolve_all(path: Path, spec: FamilySpec, specs: dict[str, ImageSpec]) -> tuple[Image, ...]:
    for name, img in specs.items():
        if img.from_ is None:
            continue
        if img.from_ not in specs:
            raise SpecError(
                f"{path}: images.{name}.from: there is no image '{img.from_}' in this family.",
                did_you_mean(img.from_, list(specs), what="images"),
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
        check_kind(path, name, img, parent)
        image = _resolve(path, name, img, spec.defaults, parent)
        table = table_origin(spec, name, img)
        origins = _origins(table, img, spec.defaults, parent)
        resolved[name] = replace(image, origins=origins, table=table)
    return tuple(resolved.values())


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
        check_fragment(path, name, dockerfile, context)
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
                dict.fromkeys(parent.repositories + repositories_of(img, parent.mirror))
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
        variant=RUNTIME_VARIANT if img.runtime else img.variant,
        packages=tuple(img.packages),
        added=tuple(img.packages),
        profile=load_profile(img.profile or d.profile)
        .with_locales(locales)
        .excluding(tuple(img.exclude)),
        env=tuple(env.items()),
        labels=tuple({**d.labels, **img.labels}.items()),
        cmd=tuple(img.cmd) if img.cmd is not None else () if img.runtime else ("bash",),
        entrypoint=tuple(img.entrypoint) if img.entrypoint is not None else None,
        user=img.user if img.user is not None else NONROOT_USER if img.runtime else None,
        workdir=img.workdir,
        tags=tuple(img.tags or [img.suite or d.suite]),
        repositories=repositories_of(img, d.mirror),
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
            out[key] = where if key in own or (key == "variant" and img.runtime) else "cairn"
        out["tags"] = where if "tags" in own else out["suite"]
        out.update({f"env.{k}": "cairn" for k in _DEFAULT_ENV})
        out.update({f"env.{k}": "defaults" for k in d.env})
        out.update({f"labels.{k}": "defaults" for k in d.labels})
    out.update({f"env.{k}": where for k in img.env})
    out.update({f"labels.{k}": where for k in img.labels})
    return tuple(out.items())


def repositories_of(img: ImageSpec, mirror: str) -> tuple[Repository, ...]:
    return tuple(
        Repository(r.url or mirror, r.suite, tuple(r.components), r.trusted)
        for r in img.repositories
    )
