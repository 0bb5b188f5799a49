"""Wheel platform tags (PEP 600 manylinux, PEP 656 musllinux) against a target's libc."""

from __future__ import annotations

import re

from cairn.compat.check import Reason
from cairn.compat.target import Libc, version_key

# The legacy manylinux names and the glibc each stands for (PEP 600).
LEGACY = {"manylinux1": "2.5", "manylinux2010": "2.12", "manylinux2014": "2.17"}
ARCHES = {"x86_64": "EM_X86_64", "aarch64": "EM_AARCH64"}


def platform_tags(filename: str) -> list[str]:
    """name-version(-build)?-python-abi-platform.whl: the platform tags (dot-separated)."""
    stem = filename.removesuffix(".whl")
    parts = stem.split("-")
    return parts[-1].split(".") if len(parts) >= 5 else []


def tag_reasons(filename: str, libc: Libc) -> tuple[list[Reason], list[Reason]]:
    """(blocking reasons, risks) the wheel's platform tags give on this target."""
    tags = platform_tags(filename)
    if not tags or any(t == "any" for t in tags):
        return [], []
    verdicts: list[tuple[bool, str]] = []  # (fits, why) per tag: one fitting tag is enough
    for tag in tags:
        m = re.fullmatch(
            r"(manylinux_(\d+)_(\d+)|manylinux\d+|musllinux_(\d+)_(\d+)|linux)_(\w+)", tag
        )
        if not m:
            verdicts.append((False, f"{tag} is not a Linux platform tag"))
            continue
        arch = m.group(6)
        if libc.machine and ARCHES.get(arch) not in (None, libc.machine):
            verdicts.append((False, f"{tag} is for {arch}, the target is {libc.machine}"))
            continue
        family = tag.split("_", 1)[0]
        if family.startswith("manylinux"):
            need = f"{m.group(2)}.{m.group(3)}" if m.group(2) else LEGACY.get(family, "")
            verdicts.append(_fits("glibc", need, tag, libc))
        elif family == "musllinux":
            verdicts.append(_fits("musl", f"{m.group(4)}.{m.group(5)}", tag, libc))
        else:
            verdicts.append((True, f"{tag}: built for one distribution, not portable"))
    if any(ok for ok, _ in verdicts):
        risky = [why for ok, why in verdicts if ok and why.endswith("not portable")]
        return [], [Reason("wheel-tag", r) for r in risky[:1]]
    return [Reason("wheel-tag", "; ".join(why for _, why in verdicts))], []


def _fits(family: str, need: str, tag: str, libc: Libc) -> tuple[bool, str]:
    if libc.family != family:
        return False, f"{tag} needs {family} {need}, the target has {libc.family}"
    if libc.version is None:
        return True, f"{tag}: the target's {family} version is unknown"
    if version_key(libc.version) < version_key(need):
        return False, f"{tag} needs {family} {need}, the target has {libc.version}"
    return True, f"{tag} fits {family} {libc.version}"
