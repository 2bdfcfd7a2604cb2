"""What a command shows: its product on stdout, the library's log lines on stderr.

Library code (engine, eval, data ...) logs through ``logging.getLogger("recon")`` and its children
and never prints; a command calls :func:`setup_logging` once, which sends those records to stderr
as plain lines, so a table or a JSON result on stdout stays clean to pipe.
"""

from __future__ import annotations

import logging
import sys

__all__ = ["setup_logging", "LOGGER"]

LOGGER = "recon"


class _StderrHandler(logging.StreamHandler):
    """Writes to whatever ``sys.stderr`` is at the moment of the record (a test's capture included)."""

    def __init__(self):
        super().__init__(sys.stderr)

    @property
    def stream(self):
        return sys.stderr

    @stream.setter
    def stream(self, value):  # StreamHandler.__init__ assigns it; the live sys.stderr is used instead
        pass


def setup_logging(level: int = logging.INFO) -> logging.Logger:
    """Show the ``recon`` loggers' records of ``level`` and above on stderr, one plain line each
    (idempotent: a second call changes only the level)."""
    logger = logging.getLogger(LOGGER)
    logger.setLevel(level)
    if not any(isinstance(h, _StderrHandler) for h in logger.handlers):
        handler = _StderrHandler()
        handler.setFormatter(logging.Formatter("%(message)s"))
        logger.addHandler(handler)
    return logger
