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
_STRING = re.compile(rb'"(?:[^"\\]|\\.)*"', re.S)
_BRACKETS = re.compile(rb"[\[\]{}]")
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u200b-\u200f\u2028-\u202e\u2066-\u2069]")


def nesting(data: bytes) -> int:
    """How deep arrays and objects nest in the JSON text `data` (strings skipped)."""
    depth = deepest = 0
    for m in _BRACKETS.finditer(_STRING.sub(b'""', data)):
        if m.group(0) in b"[{":
            depth += 1
            deepest = max(deepest, depth)
        else:
            depth -= 1
    return deepest


def json_document(
    data: bytes, what: str, *, max_bytes: int = MAX_DOCUMENT, max_depth: int = MAX_DEPTH
) -> Any:
    """`data` parsed as JSON; ValueError saying why when it is too large, too deep or no
    JSON at all."""
    if len(data) > max_bytes:
        raise ValueError(f"{what} is larger than {max_bytes} bytes")
    if nesting(data) > max_depth:
        raise ValueError(f"{what} nests deeper than {max_depth} levels")
    try:
        return json.loads(data)
    except (ValueError, RecursionError, UnicodeDecodeError) as e:
        raise ValueError(f"{what} is not JSON ({str(e)[:100]})") from None


def json_object(
    data: bytes, what: str, *, max_bytes: int = MAX_DOCUMENT, max_depth: int = MAX_DEPTH
) -> dict[str, Any]:
    """`json_document`, which must be an object."""
    doc = json_document(data, what, max_bytes=max_bytes, max_depth=max_depth)
    if not isinstance(doc, dict):
        raise ValueError(f"{what} is not a JSON object")
    return doc


def printable(text: object, limit: int = 200) -> str:
    """`text` safe for a terminal: control and bidirectional characters escaped, cut to
    `limit` characters."""
    shown = _CONTROL.sub(lambda m: m.group(0).encode("unicode_escape").decode(), str(text))
    return shown if len(shown) <= limit else shown[: limit - 1] + "…"
