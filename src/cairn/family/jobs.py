"""What a build is asked to do: its options, the (image, platform) jobs they choose, the
plan of those against the layout, and how progress is reported."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from cairn.family.fragment import Builder
from cairn.family.lock import load_lock
from cairn.family.plan import Step, make_plan
from cairn.family.spec import Family, Image
from cairn.oci.layout import layout_named
from cairn.oci.reference import parse_ref
from cairn.platforms import Platform, platform_option


class Progress(Protocol):
    """How a build tells the user what it is doing (the CLI renders it)."""

    def step(self, job: str, text: str) -> None: ...

    def done(self, job: str, seconds: float) -> None: ...

    def kept(self, job: str) -> None: ...


class Silent:
    def step(self, job: str, text: str) -> None:
        pass

    def done(self, job: str, seconds: float) -> None:
        pass

    def kept(self, job: str) -> None:
        pass


@dataclass(frozen=True)
class BuildOptions:
    images: tuple[str, ...] = ()
    platforms: tuple[str, ...] = ()
    output: str | None = None
    cache_dir: Path | None = None
    jobs: int = 2
    force: bool = False
    builder: Builder = "buildah"


def plan_jobs(family: Family, opts: BuildOptions) -> tuple[tuple[Image, Platform], ...]:
    """The (image, platform) pairs to build, parents before children; pure."""
    chosen_names = {family.image(n).name for n in opts.images}  # unknown names fail here
    images = tuple(i for i in family.images if not opts.images or i.name in chosen_names)
    chosen: tuple[Platform, ...] | None = None
    if opts.platforms:
        chosen = tuple(platform_option(p) for p in opts.platforms)
    return tuple((img, p) for img in images for p in (chosen or img.platforms))


def plan_build(family: Family, opts: BuildOptions) -> tuple[Step, ...]:
    """What `cairn build` with these options would build, and why."""
    layout = layout_named(parse_ref(opts.output or family.output), "cairn plan compares with")
    return make_plan(family, plan_jobs(family, opts), layout, opts.force, load_lock(family))
