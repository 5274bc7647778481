"""User-facing errors.

Every error a user can cause by bad input is a :class:`WeakmirError` whose
message is one line that names the offending thing (file, track, label) and
says how to fix it. The CLI prints it as ``weakmir: error: ...`` and exits 2.
"""

from __future__ import annotations

import logging

LOG = logging.getLogger("weakmir")


class WeakmirError(Exception):
    """Bad input or environment; the message names the thing and the fix."""

    def __init__(self, message: str):
        super().__init__(" ".join(str(message).split()))


class AudioError(WeakmirError):
    """An audio file is missing, unreadable, silent, or holds NaN/inf."""


class ManifestError(WeakmirError):
    """A manifest is empty, malformed, or refers to unknown labels or files."""


class SoundFontError(WeakmirError):
    """No usable General MIDI SoundFont or FluidSynth library."""


def notice(message: str) -> None:
    """Say one line about a conversion made to the user's input (resampled, mixed down, read short).

    Logged as a warning on the ``weakmir`` logger: the CLI prints it as ``weakmir: note: ...`` on stderr;
    a library user sees it through :mod:`logging` (Python's last-resort handler prints it to stderr).
    """
    LOG.warning(" ".join(str(message).split()))


def interrupt(signum, frame) -> None:
    """A SIGTERM handler that raises :class:`KeyboardInterrupt`, so ``finally`` blocks and atomic writes
    clean up as on Ctrl-C (Python's default for SIGTERM exits without running them)."""
    raise KeyboardInterrupt
