"""The package map of README's "Architecture" section, checked: imports go downward only,
and no capability reaches into another's internals."""

from __future__ import annotations

import ast
from pathlib import Path

SRC = Path(__file__).parents[2] / "src" / "cairn"

# what each part may import, besides itself
SHARED = {
    "errors", "engines", "platforms", "scratch", "reaper", "cachedir", "data", "output",
    "parallel", "inroot", "libc", "signals", "machine", "untrusted",
}  # fmt: skip
FORMATS = {"debian", "oci"}
CAPABILITIES = {"family", "measure", "compat", "scaffold"}
# what works on the family's images with what the capabilities make of them
WORKFLOWS = {"trust"}
TOP = {"cli", "report", "schemas", "__main__"}
ALLOWED: dict[str, set[str]] = {
    **dict.fromkeys(SHARED, SHARED),
    **dict.fromkeys(FORMATS, SHARED | FORMATS),
    **dict.fromkeys(CAPABILITIES, SHARED | FORMATS),
    **dict.fromkeys(WORKFLOWS, SHARED | FORMATS | CAPABILITIES),
    **dict.fromkeys(TOP, SHARED | FORMATS | CAPABILITIES | WORKFLOWS | TOP),
}
# a capability may use another's public face, never its internals
PUBLIC = {"cairn.family.spec"}  # load_family, Family, Image, SPEC_FILE (scaffold reads the family)


def part(module: str) -> str:
    return module.split(".")[1] if module.count(".") else "__init__"


def imports(path: Path) -> list[str]:
    tree = ast.parse(path.read_text())
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("cairn"):
            if node.module == "cairn":  # cairn's own __version__, or one of its modules
                found += [f"cairn.{a.name}" for a in node.names if not a.name.startswith("__")]
            else:
                found.append(node.module)
        elif isinstance(node, ast.Import):
            found += [a.name for a in node.names if a.name.startswith("cairn.")]
    return found


def test_every_part_is_on_the_map() -> None:
    parts = {p.stem if p.is_file() else p.name for p in SRC.iterdir() if p.name != "__pycache__"}
    parts.discard("__init__")
    parts.discard("py")  # py.typed
    assert parts <= set(ALLOWED), sorted(parts - set(ALLOWED))


def test_imports_go_downward_only() -> None:
    wrong = []
    for path in sorted(SRC.rglob("*.py")):
        rel = path.relative_to(SRC.parent).with_suffix("")
        mine = part(".".join(rel.parts))
        if mine == "__init__":
            continue
        for module in imports(path):
            theirs = part(module)
            if theirs in (mine, "__init__") or module in PUBLIC or module == "cairn":
                continue
            if theirs not in ALLOWED[mine]:
                wrong.append(f"{rel}: {module}")
    assert not wrong, "\n".join(wrong)
