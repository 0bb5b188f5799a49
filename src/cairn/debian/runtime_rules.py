"""What cairn knows about maintainer scripts it never runs (data/runtime.toml): the
packages needed only to run them, the packages whose scripts it reproduces, what a
script does that a runtime image then lacks, and the gconv modules locales need.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache

from cairn.data import load_toml
from cairn.debian.dpkg import dummy_stanza


@dataclass(frozen=True)
class RuntimeRules:
    script_only: tuple[str, ...]
    reproduced: dict[str, str]
    effects: tuple[tuple[re.Pattern[str], str], ...]
    gconv_always: tuple[str, ...]
    gconv_locales: dict[str, tuple[str, ...]]

    def dummies(self, wanted: tuple[str, ...]) -> str:
        """Status stanzas that keep the script-only packages out, except those `wanted`."""
        names = [n for n in self.script_only if n not in wanted]
        why = "not unpacked: needed only to run maintainer scripts (cairn runtime image)"
        # a version above any real one satisfies every versioned dependency
        return "\n".join(dummy_stanza(n, "99999", why) for n in names)

    def script_effects(self, package: str, scripts: dict[str, str]) -> list[str]:
        """What `package`'s maintainer scripts (name -> text) would have done that the image
        lacks; nothing for a package whose work cairn reproduces."""
        if package in self.reproduced:
            return []
        found: list[str] = []
        for name in ("preinst", "postinst"):
            text = _commands(scripts.get(name, ""))
            for pattern, words in self.effects:
                if pattern.search(text) and words not in found:
                    found.append(words)
        return found

    def gconv_modules(self, locales: tuple[str, ...]) -> tuple[str, ...]:
        """The gconv module names (file stems) kept for `locales`."""
        keep = list(self.gconv_always)
        for locale in locales:
            keep += self.gconv_locales.get(locale.split(".")[0].split("@")[0], ())
        return tuple(dict.fromkeys(keep))


def _commands(script: str) -> str:
    """The script without comments (debhelper's markers and explanations)."""
    return "\n".join(line.split("#", 1)[0] for line in script.splitlines())


@cache
def runtime_rules() -> RuntimeRules:
    row = load_toml("runtime.toml")
    return RuntimeRules(
        script_only=tuple(row["script_only"]),
        reproduced=dict(row["reproduced"]),
        effects=tuple((re.compile(k), v) for k, v in row["effects"].items()),
        gconv_always=tuple(row["gconv"]["always"]),
        gconv_locales={k: tuple(v) for k, v in row["gconv"]["locales"].items()},
    )
