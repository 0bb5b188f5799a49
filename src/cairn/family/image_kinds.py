"""Which kinds of image cairn.toml can make and how they stack: package images (built
by mmdebstrap), Dockerfile images (a fragment on a parent) and runtime images (packages
unpacked, never configured). Each rule raises a SpecError naming the key and the fix."""

from __future__ import annotations

import re
from pathlib import Path
from typing import TYPE_CHECKING

from cairn.errors import SpecError
from cairn.family.toml_model import ImageSpec

if TYPE_CHECKING:
    from cairn.family.resolve import Image


def check_kind(path: Path, name: str, img: ImageSpec, parent: Image | None) -> None:
    """Package images are built by mmdebstrap from packages alone: no Dockerfile above them.
    Runtime images and apt images do not mix in a line, and a runtime image runs no steps."""
    where = f"{path}: images.{name}"
    if parent is not None and img.runtime is not None and img.runtime != parent.runtime:
        if img.runtime:
            raise SpecError(
                f"{where}.runtime: its parent '{parent.name}' has apt, dpkg and a shell, which a "
                "runtime image leaves out; a runtime image is built only on a runtime image.",
                f"Try: make images.{name} a runtime root (remove `from`), or remove `runtime`.",
            )
        raise SpecError(
            f"{where}.runtime: its parent '{parent.name}' is a runtime image, which has no "
            "package manager or shell to install or configure packages with.",
            f"Try: build images.{name} on an apt image, or remove `runtime = false`.",
        )
    runtime = parent.runtime if parent is not None else bool(img.runtime)
    if runtime and img.dockerfile is not None:
        raise SpecError(
            f"{where}.dockerfile: a runtime image has no shell to run a Dockerfile's steps in.",
            "Try: build the files in a build stage of your own Dockerfile and COPY them onto "
            "the runtime image there, or list Debian packages here.",
        )
    managers = sorted({"apt", "dpkg"} & set(img.packages)) if runtime else []
    if managers:
        raise SpecError(
            f"{where}.packages: a runtime image has no package manager: cairn keeps only its "
            f"status.d package database, so {' and '.join(managers)} would have nothing to "
            "work with.",
            f"Try: remove {' and '.join(managers)} from images.{name}.packages, or make the "
            "image an apt image (no `runtime`).",
        )
    if runtime and parent is None and not img.packages:
        raise SpecError(
            f"{where}.packages: a runtime root unpacks only the packages it lists, and it "
            "lists none.",
            f'Try: packages = ["base-files", "ca-certificates", "tzdata"] in images.{name}.',
        )
    if runtime and parent is None and "variant" in img.model_fields_set:
        raise SpecError(
            f"{where}.variant: a runtime image unpacks only its packages and what they depend "
            "on; it starts from no mmdebstrap variant.",
            f"Try: remove `variant` from images.{name}, or `runtime`.",
        )
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


def check_fragment(path: Path, name: str, dockerfile: Path, context: Path) -> None:
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
