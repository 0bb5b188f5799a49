"""`--fail-on` conditions: a metric, a comparison and a value, checked against measured
figures so that a pipeline can stop on them (`size>150MB`, `wasted>5MB`,
`efficiency<95%`, `category:docs>1MB`, `actionable>0`)."""

from __future__ import annotations

import operator
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from cairn.errors import UsageError

UNITS = {
    "": 1,
    "b": 1,
    "kb": 1000,
    "mb": 1000**2,
    "gb": 1000**3,
    "kib": 1024,
    "mib": 1024**2,
    "gib": 1024**3,
}
OPS: dict[str, Callable[[float, float], bool]] = {
    ">=": operator.ge,
    "<=": operator.le,
    "==": operator.eq,
    "!=": operator.ne,
    ">": operator.gt,
    "<": operator.lt,
}
# metric -> (how to read it from an analysis or scan, whether it counts bytes)
METRICS: dict[str, tuple[Callable[[dict[str, Any]], float | None], bool]] = {
    "size": (lambda a: a.get("total_bytes"), True),
    "compressed": (lambda a: a.get("compressed_bytes"), True),
    "wasted": (lambda a: a.get("wasted_bytes"), True),
    "wasted_dive": (lambda a: a.get("wasted_bytes_dive"), True),
    "efficiency": (lambda a: a.get("efficiency"), False),
    "packages": (lambda a: a.get("package_count"), False),
    "files": (lambda a: a.get("files"), False),
    "findings": (
        lambda a: sum(f["severity"] != "info" for f in a["findings"]) if "findings" in a else None,
        False,
    ),
    "actionable": (lambda a: a.get("summary", {}).get("fixed"), False),
}
SCAN_METRICS = ("actionable",)
ANALYSIS_METRICS = tuple(m for m in METRICS if m not in SCAN_METRICS)
_CONDITION = re.compile(
    r"^\s*(?P<metric>[a-z_]+(?::[^<>=!]+)?)\s*(?P<op>>=|<=|==|!=|>|<)\s*"
    r"(?P<value>\d+(?:\.\d+)?)\s*(?P<unit>[A-Za-z%]*)\s*$"
)


@dataclass(frozen=True)
class Condition:
    text: str
    metric: str
    op: str
    value: float
    in_bytes: bool

    def read(self, measured: dict[str, Any]) -> float | None:
        if self.metric.startswith("category:"):
            name = self.metric.split(":", 1)[1].strip()
            # a category the rules know and the image has no bytes of is 0
            return next((c["bytes"] for c in measured["categories"] if c["name"] == name), 0)
        return METRICS[self.metric][0](measured)

    def failed(self, measured: dict[str, Any]) -> str | None:
        """A sentence naming the condition and the measured figure when it holds; a
        UsageError when the result has no such figure (a gate never passes unread)."""
        actual = self.read(measured)
        if actual is None:
            has = [m for m, (read, _) in METRICS.items() if _readable(read, measured)]
            raise UsageError(
                f"--fail-on '{self.text}': this result has no {self.metric} figure, so the "
                "condition cannot be checked.",
                f"Try: a metric this result has: {', '.join(has)}.",
            )
        if not OPS[self.op](actual, self.value):
            return None
        shown = f"{actual:.4f}" if isinstance(actual, float) else f"{actual}"
        unit = " bytes" if self.in_bytes else ""
        return f"--fail-on '{self.text}': {self.metric} is {shown}{unit}"


def _readable(read: Callable[[dict[str, Any]], float | None], measured: dict[str, Any]) -> bool:
    try:
        return read(measured) is not None
    except (KeyError, TypeError):
        return False


def parse_condition(
    text: str, allowed: tuple[str, ...] = ANALYSIS_METRICS, categories: Sequence[str] = ()
) -> Condition:
    """`text` as a condition on one of the `allowed` metrics (or category:NAME, NAME one of
    `categories`); a UsageError naming what exists otherwise."""
    m = _CONDITION.match(text)
    metric = m.group("metric") if m else ""
    if metric.startswith("category:") and "size" in allowed:
        name = metric.split(":", 1)[1].strip()
        if name not in categories:
            raise UsageError(
                f"--fail-on '{text}': there is no category {name!r}.",
                f"Try: one of {', '.join(categories)} (or add it with --categories FILE).",
            )
    known = metric in allowed or (metric.startswith("category:") and "size" in allowed)
    if m is None or not known:
        raise UsageError(
            f"--fail-on '{text}' is not a condition cairn knows.",
            f"Try: METRIC OP VALUE, METRIC one of {', '.join(allowed)}"
            + (" or category:NAME" if "size" in allowed else "")
            + ", OP one of > >= < <= == !=, e.g. 'size>150MB'.",
        )
    unit = m.group("unit").lower()
    value = float(m.group("value"))
    in_bytes = metric.startswith("category:") or METRICS[metric][1]
    if unit == "%":
        if metric != "efficiency":
            raise UsageError(f"--fail-on '{text}': only efficiency is a percentage.")
        value /= 100
    elif unit:
        if not in_bytes or unit not in UNITS:
            raise UsageError(
                f"--fail-on '{text}': '{m.group('unit')}' is no unit for {metric}.",
                "Try: B, kB, MB, GB (powers of 1000) or KiB, MiB, GiB (of 1024) for sizes.",
            )
        value *= UNITS[unit]
    return Condition(text.strip(), metric, m.group("op"), value, in_bytes)


def check(conditions: list[Condition], measured: dict[str, Any]) -> list[str]:
    return [msg for c in conditions if (msg := c.failed(measured)) is not None]
