"""The engines that run Dockerfile fragments, by the name `--builder` takes."""

from __future__ import annotations

from cairn.family.fragment import Builder, FragmentEngine, FragmentJob, FragmentResult
from cairn.family.fragment_buildah import Buildah
from cairn.family.fragment_buildkit import BuildKit


def engine(builder: Builder) -> FragmentEngine:
    """The engine named `builder`."""
    return BuildKit() if builder == "docker" else Buildah()


def build_fragment(job: FragmentJob, builder: Builder) -> FragmentResult:
    """Run the fragment on the parent with `builder`."""
    return engine(builder).build(job)
