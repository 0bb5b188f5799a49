"""One image measured: the JSON object `cairn analyze --json` prints (schema in
docs/schemas/analysis.schema.json), built from a walk of its layers."""

from __future__ import annotations

import shlex
from collections import defaultdict
from pathlib import Path
from typing import Any

from cairn.debian.profiles import load_profile
from cairn.debian.slimming import removes
from cairn.libc import GLIBC_LOADERS, MUSL_LOADERS, glibc_release, musl_release
from cairn.measure.categories import Classifier, load_categories
from cairn.measure.overlay import Finding, Walk
from cairn.measure.packages import (
    IndexPaths,
    Package,
    apk_packages,
    assign_files,
    dpkg_packages,
    unneeded,
)
from cairn.measure.source import Source

TOP = 20
# A package manager is present when both its database and its program are: a database
# alone (distroless's status.d, a runtime image's) lets scanners list packages, but
# nothing in the image can install one.
PACKAGE_MANAGERS = {
    "dpkg": (("var/lib/dpkg/status", "var/lib/dpkg/status.d"), ("/usr/bin/dpkg", "/bin/dpkg")),
    "rpm": (("var/lib/rpm", "usr/lib/sysimage/rpm"), ("/usr/bin/rpm", "/bin/rpm")),
    "apk": (("lib/apk/db/installed",), ("/sbin/apk", "/usr/sbin/apk")),
}


def dive_figures(walk: Walk) -> tuple[int, float]:
    """dive's wasted bytes and efficiency score, by dive's formula: over the leaves of every
    layer's tree (a whiteout sized as what it hides), wasted = the summed sizes of every
    path seen in two or more layers, efficiency = sum of each path's smallest size / sum
    of all its sizes."""
    wasted = sum(c.cumulative for c in walk.dive.values() if c.nodes >= 2)
    seen = sum(c.cumulative for c in walk.dive.values())
    smallest = sum(c.minimum for c in walk.dive.values())
    return wasted, (smallest / seen if seen else 1.0)


def _wasted_paths(walk: Walk) -> list[dict[str, Any]]:
    by_path: dict[str, list[Any]] = defaultdict(lambda: [0, []])
    for w in walk.waste:
        entry = by_path[w.path]
        entry[0] += w.bytes
        entry[1].append(f"the copy from layer {w.layer} {w.reason}")
    top = sorted(by_path.items(), key=lambda kv: (-kv[1][0], kv[0]))[:TOP]
    return [{"path": "/" + p, "bytes": b, "reasons": r} for p, (b, r) in top]


def os_release(walk: Walk, resolver: IndexPaths) -> dict[str, str | None]:
    fields: dict[str, str] = {}
    for candidate in ("/etc/os-release", "/usr/lib/os-release"):
        path = resolver.follow(candidate)
        if path is not None and path in walk.files:
            for line in walk.files[path].decode("utf-8", "replace").splitlines():
                key, sep, value = line.partition("=")
                if sep:
                    try:
                        fields[key.strip()] = " ".join(shlex.split(value))
                    except ValueError:
                        fields[key.strip()] = value.strip("\"'")
            break
    return {
        "id": fields.get("ID"),
        "version_id": fields.get("VERSION_ID"),
        "codename": fields.get("VERSION_CODENAME"),
        "pretty_name": fields.get("PRETTY_NAME"),
    }


def _libc(walk: Walk, resolver: IndexPaths) -> dict[str, str | None]:
    """Read from the files: a musl loader and its version string, else glibc's loader and
    the release its libc.so.6 names."""
    for loader in MUSL_LOADERS:
        path = resolver.follow(loader)
        if path is not None:
            return {"family": "musl", "version": musl_release(walk.files.get(path, b""))}
    for loader in GLIBC_LOADERS:
        if resolver.follow(loader) is None:
            continue
        for captured in sorted(walk.files):
            if captured.endswith("/libc.so.6") and captured in walk.index:
                version = glibc_release(walk.files[captured])
                if version:
                    return {"family": "glibc", "version": version}
        return {"family": "glibc", "version": None}
    return {"family": "none", "version": None}


def _slimming(walk: Walk, packages: list[Package]) -> dict[str, Any]:
    profile = load_profile("slim")
    removed = removes(profile)
    removed_bytes = removed_files = 0
    for path, node in walk.index.items():
        if node.kind == "file" and removed("/" + path):
            removed_bytes += node.size
            removed_files += 1
    return {
        "profile": profile.name,
        "bytes": removed_bytes,
        "files": removed_files,
        "unneeded_packages": [
            {"name": p.name, "bytes": p.bytes} for p in unneeded(packages) if p.manager != "apk"
        ][:TOP],
    }


def _counts(walk: Walk) -> dict[str, int]:
    kinds: dict[str, int] = defaultdict(int)
    for node in walk.index.values():
        kinds[node.kind] += 1
    return {
        "files": kinds["file"],
        "directories": kinds["dir"],
        "links": kinds["symlink"] + kinds["hardlink"],
        "special": kinds["char"] + kinds["block"] + kinds["fifo"],
    }


def _words(value: object) -> list[str] | None:
    """An image config's Cmd or Entrypoint as the list the spec says it is."""
    if value is None:
        return None
    if isinstance(value, str):
        return [value]
    if isinstance(value, list):
        return [str(v) for v in value]
    return [str(value)]


def _config(source: Source, findings: list[Finding]) -> dict[str, Any]:
    """What a container runtime reads from the config; a value of the wrong type is read the
    way runtimes read it, and a finding says so."""
    config = source.config.get("config") or {}
    if not isinstance(config, dict):
        findings.append(
            Finding("warning", "config-malformed", "the image config's `config` is no object")
        )
        config = {}
    expected = {"User": str, "Entrypoint": list, "Cmd": list, "Env": list, "WorkingDir": str}
    for key, kind in expected.items():
        value = config.get(key)
        if value is not None and not isinstance(value, kind):
            findings.append(
                Finding(
                    "warning",
                    "config-malformed",
                    f"the image config's {key} is a {type(value).__name__}, "
                    f"not a{'n array' if kind is list else ' string'}",
                )
            )
    env = config.get("Env")
    return {
        "user": str(config.get("User") or "root"),
        "entrypoint": _words(config.get("Entrypoint")),
        "cmd": _words(config.get("Cmd")),
        "env": [str(e) for e in env] if isinstance(env, list) else [],
        "working_dir": str(config.get("WorkingDir") or "/"),
    }


def analyze_walk(source: Source, walk: Walk, categories: Path | None = None) -> dict[str, Any]:
    """The analysis as the fields of cairn.measure.results.Analysis (typed, with pydantic,
    only when it is printed as JSON: `cairn analyze` stays light)."""
    resolver = IndexPaths(walk.index)
    classify = Classifier(load_categories(categories))
    by_category: dict[str, list[int]] = {name: [0, 0] for name in classify.names}
    total = 0
    for path, node in walk.index.items():
        if node.kind == "file":
            row = by_category[classify("/" + path)]
            row[0] += node.size
            row[1] += 1
            total += node.size
    packages = dpkg_packages(walk) + apk_packages(walk)
    assign_files(packages, resolver)
    databases = [
        name for name, (paths, _) in PACKAGE_MANAGERS.items() if any(p in walk.index for p in paths)
    ]
    managers = [
        name
        for name in databases
        if any(resolver.follow(tool) is not None for tool in PACKAGE_MANAGERS[name][1])
    ]
    findings = list(walk.findings)
    if "rpm" in databases:
        findings.append(
            Finding(
                "info",
                "rpm-not-listed",
                "an rpm database is present; cairn lists dpkg "
                "and apk packages only, so rpm's files count as unowned",
            )
        )
    wasted_dive, efficiency = dive_figures(walk)
    data: dict[str, Any] = {
        "image": source.reference,
        "platform": source.platform,
        "total_bytes": total,
        "compressed_bytes": source.compressed_bytes,
        "layers_bytes": sum(layer.bytes for layer in walk.layers),
        **_counts(walk),
        "layers": [
            {
                "index": layer.index,
                "digest": layer.digest,
                "compressed_bytes": layer.compressed_bytes,
                "bytes": layer.bytes,
                "created_by": layer.created_by,
                "entries": layer.entries,
                "added": layer.added,
                "modified": layer.modified,
                "deleted": layer.deleted,
            }
            for layer in walk.layers
        ],
        "wasted_bytes_dive": wasted_dive,
        "efficiency": efficiency,
        "wasted_bytes": sum(w.bytes for w in walk.waste),
        "wasted_paths": _wasted_paths(walk),
        "categories": [
            {"name": name, "bytes": b, "files": n}
            for name, (b, n) in sorted(by_category.items(), key=lambda kv: -kv[1][0])
        ],
        "packages": [
            {
                "name": p.name,
                "version": p.version,
                "architecture": p.architecture,
                "manager": p.manager,
                "source": p.source,
                "source_version": p.source_version,
                "bytes": p.bytes,
                "files": p.files,
                "layer": p.layer,
            }
            for p in sorted(packages, key=lambda p: (-p.bytes, p.name))
        ],
        "package_count": len(packages),
        "unowned_bytes": total - sum(p.bytes for p in packages),
        "os": os_release(walk, resolver),
        "libc": _libc(walk, resolver),
        "package_managers": managers,
        "shell": resolver.follow("/bin/sh") is not None,
        **_config(source, findings),
        "slimming": _slimming(walk, packages),
        "findings": [f.to_json() for f in findings],
    }
    return data
