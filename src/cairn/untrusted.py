"""Reading what comes from outside (bundles, layouts, archives, registry answers) within
bounds, and printing it safely.

Every JSON document from outside is read within a size cap (distribution's own limit for
a manifest, 4 MiB, unless the caller says otherwise) and a nesting depth, before it is
parsed: a refusal is a ValueError naming what was wrong, never a RecursionError or a
MemoryError. A string from outside that reaches a terminal has its control characters
escaped (an escape sequence could otherwise rewrite the screen) and is cut to a length.
"""

from __future__ import annotations

import json
import re
from typing import Any

MAX_DOCUMENT = 4 << 20  # bytes: distribution refuses a larger manifest
MAX_DEPTH = 64  # an OCI document nests 5 deep; SBOMs and provenance a dozen or so
_CONTROL_BUT_NEWLINE = re.compile(
    r"[\x00-\x09\x0b-\x1f\x7f-\x9f\u200b-\u200f\u2028-\u202e\u2066-\u2069]"
)
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u200b-\u200f\u2028-\u202e\u2066-\u2069]")


def nesting(doc: Any) -> int:
    """How deep arrays and objects nest in a parsed document (walked without recursion)."""
    deepest = 0
    todo: list[tuple[Any, int]] = [(doc, 1)]
    while todo:
        node, depth = todo.pop()
        if isinstance(node, dict):
            deepest = max(deepest, depth)
            todo += [(v, depth + 1) for v in node.values()]
        elif isinstance(node, list):
            deepest = max(deepest, depth)
            todo += [(v, depth + 1) for v in node]
    return deepest


def json_document(
    data: bytes, what: str, *, max_bytes: int = MAX_DOCUMENT, max_depth: int = MAX_DEPTH
) -> Any:
    """`data` parsed as JSON; ValueError saying why when it is too large, too deep or no
    JSON at all. (Python's parser refuses, with a RecursionError, what nests past the
    interpreter's limit; what it took is measured after.)"""
    if len(data) > max_bytes:
        raise ValueError(f"{what} is larger than {max_bytes} bytes")
    try:
        doc = json.loads(data)
    except RecursionError:
        raise ValueError(f"{what} nests deeper than {max_depth} levels") from None
    except (ValueError, UnicodeDecodeError) as e:
        raise ValueError(f"{what} is not JSON ({str(e)[:100]})") from None
    if nesting(doc) > max_depth:
        raise ValueError(f"{what} nests deeper than {max_depth} levels")
    return doc


def json_object(
    data: bytes, what: str, *, max_bytes: int = MAX_DOCUMENT, max_depth: int = MAX_DEPTH
) -> dict[str, Any]:
    """`json_document`, which must be an object."""
    doc = json_document(data, what, max_bytes=max_bytes, max_depth=max_depth)
    if not isinstance(doc, dict):
        raise ValueError(f"{what} is not a JSON object")
    return doc


def printable(text: object, limit: int = 200, *, lines: bool = False) -> str:
    """`text` safe for a terminal: control and bidirectional characters escaped (but line
    breaks, with `lines`), cut to `limit` characters."""
    control = _CONTROL_BUT_NEWLINE if lines else _CONTROL
    shown = control.sub(lambda m: m.group(0).encode("unicode_escape").decode(), str(text))
    return shown if len(shown) <= limit else shown[: limit - 1] + "…"
