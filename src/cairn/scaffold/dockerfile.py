"""Dockerfile instructions with their line numbers: just enough parsing for `cairn doctor`."""

from __future__ import annotations

import re
from dataclasses import dataclass


@dataclass(frozen=True)
class Instruction:
    line: int  # where it starts, 1-based
    keyword: str  # upper case: FROM, RUN, USER, ...
    args: str  # continuation lines joined, comments inside dropped


@dataclass(frozen=True)
class Stage:
    image: str  # what FROM names
    name: str | None  # AS name
    line: int
    instructions: tuple[Instruction, ...]


def parse(text: str) -> list[Instruction]:
    out: list[Instruction] = []
    pending: list[str] = []
    start = 0
    for number, raw in enumerate(text.splitlines(), 1):
        stripped = raw.strip()
        if not pending and (not stripped or stripped.startswith("#")):
            continue
        if pending and stripped.startswith("#"):
            continue  # a comment between continuation lines
        if not pending:
            start = number
        if stripped.endswith("\\"):
            pending.append(stripped[:-1])
            continue
        pending.append(stripped)
        joined = " ".join(p.strip() for p in pending if p.strip())
        keyword, _, args = joined.partition(" ")
        out.append(Instruction(start, keyword.upper(), args.strip()))
        pending = []
    return out


_FROM = re.compile(r"^(?:--platform=\S+\s+)?(\S+)(?:\s+AS\s+(\S+))?\s*$", re.IGNORECASE)


def stages(instructions: list[Instruction]) -> list[Stage]:
    result: list[Stage] = []
    current: list[Instruction] = []
    head: Instruction | None = None
    for ins in instructions:
        if ins.keyword == "FROM":
            if head is not None:
                result.append(_stage(head, current))
            head, current = ins, []
        elif head is not None:
            current.append(ins)
    if head is not None:
        result.append(_stage(head, current))
    return result


def _stage(head: Instruction, body: list[Instruction]) -> Stage:
    m = _FROM.match(head.args)
    image, name = (m.group(1), m.group(2)) if m else (head.args, None)
    return Stage(image, name, head.line, tuple(body))
