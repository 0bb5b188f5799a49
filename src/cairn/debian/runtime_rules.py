"""What cairn knows about maintainer scripts it never runs (data/runtime.toml): the
packages needed only to run them, the packages whose scripts it reproduces, what a
script does that a runtime image then lacks, and the gconv modules locales need.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache

from cairn.data import data_path, load_toml
from cairn.debian.dpkg import dummy_stanza
from cairn.errors import BuildError
from cairn.oci.image import sha256_digest


@dataclass(frozen=True)
class RuntimeRules:
    digest: str  # of runtime.toml: a runtime image's build inputs include it
    script_only: tuple[str, ...]
    reproduced: dict[str, str]
    effects: tuple[tuple[re.Pattern[str], str], ...]
    gconv_always: tuple[str, ...]
    gconv_locales: dict[str, tuple[str, ...]]

    def dummies(self, wanted: tuple[str, ...]) -> str:
        """Status stanzas that keep the script-only packages out, except those `wanted`."""
        names = [n for n in self.script_only if n not in wanted]
        why = "not unpacked: needed only to run maintainer scripts (cairn runtime image)"
        # a version above any real one satisfies `>=` dependencies; a package that depends on
        # one with `=` or `<<` fails to resolve, and the error says to list the package
        return "\n".join(dummy_stanza(n, DUMMY_VERSION, why) for n in names)

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
            name, _, codeset = locale.partition("@")[0].partition(".")
            if name in self.gconv_locales:
                keep += self.gconv_locales[name]
            else:  # a language alone (zh): every country's of it
                for key, modules in self.gconv_locales.items():
                    if key.partition("_")[0] == name.partition("_")[0]:
                        keep += modules
            if codeset and codeset.upper().replace("-", "") not in ("UTF8",):
                # glibc names the module of ISO-8859-15 ISO8859-15, of KOI8-R KOI8-R
                keep.append(codeset.upper().replace("ISO-8859", "ISO8859"))
        return tuple(dict.fromkeys(keep))


DUMMY_VERSION = "99999"
_PINNED_TO_REAL = re.compile(r"(\S+) : \S*Depends: (\S+) \([=<]+ [^)]*\) but 99999 is")


def script_only_error(log: str, what: str) -> BuildError | None:
    """apt's refusal when a package needs an exact version of a script-only package (perl
    needs perl-base's), which a runtime image leaves out unless it lists it."""
    m = _PINNED_TO_REAL.search(log)
    if m is None:
        return None
    return BuildError(
        f"{what} failed because {m.group(1)} needs {m.group(2)} itself, and a runtime image "
        f"leaves {m.group(2)} out as needed only to run maintainer scripts.",
        f"Try: add {m.group(2)} to the image's packages (cairn then unpacks it), or leave "
        f"{m.group(1)} out.",
    )


_COMMENT = re.compile(r"(?:^|\s)#.*$")


def _commands(script: str) -> str:
    """The script without comments (debhelper's markers and explanations): a `#` that
    starts a word, not one inside `$#` or `${#x}`."""
    return "\n".join(_COMMENT.sub("", line) for line in script.splitlines())


@cache
def runtime_rules() -> RuntimeRules:
    row = load_toml("runtime.toml")
    return RuntimeRules(
        digest=sha256_digest(data_path("runtime.toml").read_bytes()),
        script_only=tuple(row["script_only"]),
        reproduced=dict(row["reproduced"]),
        effects=tuple((re.compile(k), v) for k, v in row["effects"].items()),
        gconv_always=tuple(row["gconv"]["always"]),
        gconv_locales={k: tuple(v) for k, v in row["gconv"]["locales"].items()},
    )
