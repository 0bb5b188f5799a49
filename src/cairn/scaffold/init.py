"""`cairn init`: write a project's build and dev-environment files, all or nothing."""

from __future__ import annotations

import contextlib
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

from cairn.errors import StoreError, UsageError
from cairn.scaffold.family import resolve
from cairn.scaffold.languages import language
from cairn.scaffold.render import README_MARK, Project, project_files, project_name, readme_section
from cairn.scaffold.services import parse_services


@dataclass(frozen=True)
class InitResult:
    directory: Path
    written: tuple[str, ...]
    overwritten: tuple[str, ...]
    warnings: tuple[str, ...]


def _readme(target: Path, section: str, force: bool) -> tuple[str, bool]:
    """README.md's new text, and whether it replaces cairn's section of an earlier init."""
    path = target / "README.md"
    if not path.exists():
        return f"# {target.resolve().name}\n\n{section}", False
    text = path.read_text(encoding="utf-8")
    if README_MARK not in text:
        return text.rstrip("\n") + "\n\n" + section, False
    if not force:
        return text, True
    return text[: text.index(README_MARK)] + section, True


def init_project(
    target: Path,
    lang_name: str,
    family: str,
    *,
    services: str = "",
    registry: str | None = None,
    force: bool = False,
) -> InitResult:
    lang = language(lang_name)
    chosen = parse_services(services)
    images = resolve(
        family, (lang.build_image, lang.runtime_image), lang.default_tags, lang.name, registry
    )
    if target.exists() and not target.is_dir():
        raise UsageError(f"{target} is a file, not a project directory.", "Try: another path.")
    empty = not target.exists() or not any(target.iterdir())
    project = Project(project_name(target.resolve().name), lang, images, chosen)
    files = project_files(project, with_hello=empty)
    readme, replaces = _readme(target, readme_section(project), force)
    existing = sorted(name for name in files if (target / name).exists())
    if replaces and not force:
        existing.append("README.md (its cairn init section)")
    if existing and not force:
        raise UsageError(
            f"{target} already has {', '.join(existing)}; cairn init changed nothing.",
            "Try: --force to replace them (commit first: they are overwritten), or another "
            "directory.",
        )
    files["README.md"] = readme
    _write_all(target, files)
    return InitResult(
        target,
        tuple(sorted(files)),
        tuple(n for n in existing if not n.startswith("README")),
        images.warnings,
    )


def _write_all(target: Path, files: dict[str, str]) -> None:
    """Stage every file beside its destination, then move them in; undo on any failure."""
    created_target = not target.exists()
    try:
        target.mkdir(parents=True, exist_ok=True)
        stage = Path(tempfile.mkdtemp(prefix=".cairn-init-", dir=target))
    except OSError as e:
        raise StoreError(f"Creating {target} failed because {e.strerror}.") from None
    moved: list[tuple[Path, Path | None]] = []  # (destination, backup of what was there)
    made: list[Path] = []  # directories made for the files, removed again on failure
    try:
        for name, text in files.items():
            staged = stage / "new" / name
            staged.parent.mkdir(parents=True, exist_ok=True)
            staged.write_text(text, encoding="utf-8")
        for name in files:
            dest = target / name
            missing = [d for d in (dest.parent, *dest.parent.parents) if not d.exists()]
            made += reversed(missing)
            dest.parent.mkdir(parents=True, exist_ok=True)
            backup = None
            if dest.exists():
                backup = stage / "old" / name
                backup.parent.mkdir(parents=True, exist_ok=True)
                dest.replace(backup)
            moved.append((dest, backup))
            (stage / "new" / name).replace(dest)
    except OSError as e:
        for dest, backup in reversed(moved):
            with contextlib.suppress(OSError):
                if backup is not None:
                    backup.replace(dest)
                else:
                    dest.unlink(missing_ok=True)
        for directory in reversed(made):
            with contextlib.suppress(OSError):
                directory.rmdir()
        shutil.rmtree(stage, ignore_errors=True)
        if created_target:
            shutil.rmtree(target, ignore_errors=True)
        raise StoreError(
            f"Writing the project files into {target} failed because {e.strerror or e}; "
            "nothing was changed.",
            "Try: check the directory's permissions and free space.",
        ) from None
    shutil.rmtree(stage, ignore_errors=True)
