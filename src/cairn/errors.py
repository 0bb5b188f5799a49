"""Every fatal condition cairn reports, one class per cause, one exit code per class.

Code below the CLI raises these; only the CLI turns them into a message and an
exit code. A message reads "X failed because Y." and the hint "Try Z.".
"""

from __future__ import annotations

import difflib


class CairnError(Exception):
    """Base class: a problem the user can fix, with a hint saying how."""

    exit_code = 1

    def __init__(self, message: str, hint: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return f"{self.message}\n{self.hint}" if self.hint else self.message


class SpecError(CairnError):
    """cairn.toml (or a command-line choice that plays its part) is invalid."""

    exit_code = 2


class UsageError(CairnError):
    """Options that contradict each other or name nothing cairn knows."""

    exit_code = 2


class EngineMissingError(CairnError):
    """A required external program or kernel feature is not there."""

    exit_code = 3


class BuildError(CairnError):
    """An engine ran and failed: mmdebstrap, mmtarfilter, a package that does not exist."""

    exit_code = 4


class RegistryError(BuildError):
    """A registry refused, failed past every retry, or stopped answering."""


class RegistryAccessError(CairnError):
    """A registry and cairn do not trust each other: its certificate is not trusted, or it
    wants credentials that are missing, refused, or not allowed to do what was asked."""

    exit_code = 8


class StoreError(CairnError):
    """The image store or an output file could not be read or written."""

    exit_code = 5


class KeyFileError(CairnError):
    """A signing or public key that is missing, unreadable, of another kind, or locked by
    another passphrase."""

    exit_code = 2


class VerificationError(CairnError):
    """A signature, attestation or checksum that does not hold: the image is not trusted."""

    exit_code = 7


class Interrupted(CairnError):
    """Ctrl-C: the engines were stopped and nothing was written."""

    exit_code = 130


class ImageRefError(CairnError):
    """An image reference is malformed or names nothing."""

    exit_code = 2


class ImageContentError(CairnError):
    """An image's content is broken: a truncated or corrupt layer, a digest that does not match."""

    exit_code = 6


def did_you_mean(word: str, choices: list[str], what: str = "keys") -> str:
    """The closest of `choices` to a misspelt `word`, or the list of them."""
    close = difflib.get_close_matches(word, choices, n=1)
    return f"Perhaps you meant '{close[0]}'?" if close else f"Known {what}: {', '.join(choices)}."
