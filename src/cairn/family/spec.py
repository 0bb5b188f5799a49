"""cairn.toml: read, validated, resolved. `load_family` is the way in; `Family` and
`Image` are what the rest of cairn works with.
"""

from __future__ import annotations

import os
import subprocess
import time
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError

from cairn.errors import SpecError, did_you_mean
from cairn.family.resolve import Image, Repository, expand_variants, resolve_all
from cairn.family.toml_model import (
    IMAGE_NAME,
    SPEC_FILE,
    Defaults,
    FamilySpec,
    ImageSpec,
    RepositorySpec,
)

__all__ = ["SPEC_FILE", "Family", "Image", "Repository", "load_family"]


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
            did_you_mean(name, [i.name for i in self.images], what="images"),
        )


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
        if not IMAGE_NAME.match(name):
            raise SpecError(
                f"{path}: images.{name}: expected an image name of lower-case letters and digits "
                "separated by '.', '_' or '-'.",
            )
    d = spec.defaults
    tables = expand_variants(path, spec)
    images = resolve_all(path, spec, tables)
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
            hint = did_you_mean(loc[-1], keys)
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
