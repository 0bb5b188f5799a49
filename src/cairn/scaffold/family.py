"""The family images a project names: from a family directory (its cairn.toml and store)
or from a registry prefix (asked with skopeo), pinned by digest when the digest is known."""

from __future__ import annotations

import hashlib
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from cairn.errors import SpecError, UsageError
from cairn.family.spec import SPEC_FILE, load_family
from cairn.oci.access import Access, repository_of
from cairn.oci.layout import OciLayout
from cairn.oci.reference import parse_ref
from cairn.oci.skopeo import isolated_env
from cairn.scratch import scratch_dir


@dataclass(frozen=True)
class FamilyImages:
    registry: str  # REGISTRY/PREFIX: the Dockerfile's FAMILY default
    refs: dict[str, str]  # image name -> NAME:TAG or NAME:TAG@sha256:...
    warnings: tuple[str, ...] = ()

    def image(self, name: str) -> str:
        return f"{self.registry}/{self.refs[name]}"


def _missing(name: str, where: str, lang: str) -> UsageError:
    return UsageError(
        f"The family {where} has no image '{name}', which a {lang} project builds or runs on.",
        f"Try: add [images.{name}] to the family (examples/qapm has one), or another --family.",
    )


def from_directory(
    directory: Path, names: tuple[str, ...], lang: str, registry: str | None
) -> FamilyImages:
    family = load_family(directory)
    store = parse_ref(family.output)
    refs = OciLayout(store.path).refs() if store.transport == "oci" else {}
    out: dict[str, str] = {}
    for name in names:
        try:
            image = family.image(name)
        except SpecError:
            raise _missing(name, str(directory), lang) from None
        ref = f"{name}:{image.tags[0]}"
        # `cairn push` keeps digests: the store's digest is the registry's
        if name in refs:
            ref += f"@{refs[name].digest}"
        out[name] = ref
    unpinned = [n for n in names if n not in refs]
    warnings = (
        (
            f"{', '.join(unpinned)} not built in {store} yet: named by tag, not digest "
            f"(run `cairn build {directory}` first to pin them).",
        )
        if unpinned
        else ()
    )
    return FamilyImages(registry or f"localhost:5000/{family.directory.name}", out, warnings)


def _inspect(skopeo: str, target: str) -> subprocess.CompletedProcess[bytes]:
    """skopeo inspect --raw of REGISTRY/REPO:TAG, reaching the registry as every other
    part of cairn does (its certificates and credentials)."""
    with scratch_dir("inspect") as tmp:
        host = Access().of(target)
        opts = host.skopeo_options("", repository_of(target), Path(tmp))
        return subprocess.run(
            [skopeo, "inspect", "--raw", "--retry-times", "1", *opts, f"docker://{target}"],
            capture_output=True,
            check=False,
            timeout=120,
            env=isolated_env(Path(tmp)),
        )


def from_registry(
    prefix: str, names: tuple[str, ...], tags: dict[str, str], lang: str
) -> FamilyImages:
    prefix = prefix.rstrip("/")
    skopeo = shutil.which("skopeo")
    out: dict[str, str] = {}
    unreachable: list[str] = []
    for name in names:
        ref = f"{name}:{tags[name]}"
        out[name] = ref
        if skopeo is None:
            unreachable.append(name)
            continue
        res = _inspect(skopeo, f"{prefix}/{ref}")
        if res.returncode == 0:
            out[name] = f"{ref}@sha256:{hashlib.sha256(res.stdout).hexdigest()}"
        elif b"manifest unknown" in res.stderr or b"name unknown" in res.stderr:
            raise _missing(name, prefix, lang)
        else:
            unreachable.append(name)
    warnings = (
        (f"{prefix} did not answer for {', '.join(unreachable)}: named by tag, not digest.",)
        if unreachable
        else ()
    )
    return FamilyImages(prefix, out, warnings)


def resolve(
    family: str, names: tuple[str, ...], tags: dict[str, str], lang: str, registry: str | None
) -> FamilyImages:
    """`family` is a directory holding cairn.toml, else a registry prefix."""
    path = Path(family)
    if (path / SPEC_FILE).is_file() or path.is_file():
        return from_directory(path, names, lang, registry)
    if path.exists() or family.startswith((".", "/")):
        raise UsageError(
            f"--family {family} is neither a family directory (no {SPEC_FILE}) nor a registry "
            "prefix.",
            "Try: --family examples/qapm or --family REGISTRY/PREFIX.",
        )
    return from_registry(family, names, tags, lang)
