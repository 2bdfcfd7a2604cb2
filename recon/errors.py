"""The exceptions recon raises for mistakes a user can fix (a wrong argument, file, layout or config).

The ``recon`` command reports a :class:`ReconError` as one line and a non-zero exit; any other exception
is a bug in recon and keeps its traceback. Each class also derives from the builtin a caller would catch
without knowing recon (``ValueError``, ``FileNotFoundError``), so ``except ValueError`` keeps working.
"""

from __future__ import annotations

__all__ = ["ReconError", "ConfigError", "MissingFileError", "DataFormatError", "CheckpointError"]


class ReconError(Exception):
    """Base class: a user-fixable problem, reported by the CLI as one line."""


class ConfigError(ReconError, ValueError):
    """A config key or value, or a command-line argument, is wrong (names the key and what it expects)."""


class MissingFileError(ReconError, FileNotFoundError):
    """A file or folder that a dataset layout, a config or an argument names does not exist."""


class DataFormatError(ReconError, ValueError):
    """A data file exists but is malformed, truncated or unsafe to read (names the file)."""


class CheckpointError(ReconError, ValueError):
    """A checkpoint or weights file cannot be read, or does not fit the model (names file and keys)."""
