"""Result files: every protocol writes one JSON object per run; ``recon report`` collects them.

The schema:

``{"protocol": str, "dataset": str (a canonical name of recon.data.registry), "setting": str,
"value": float (accuracy in %), "std": float | null, "n": int | null, "model": str,
"checkpoint": str | null, "notes": [str], ...}``
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from recon.atomic import atomic_write_text

__all__ = ["write_result"]


def write_result(path: str | os.PathLike, result: dict[str, Any]) -> Path:
    """Write ``result`` as indented, key-sorted JSON through :mod:`recon.atomic` (a reader or a resume
    sees the old file or the new one, never a torn one); returns the path."""
    path = Path(path)
    atomic_write_text(str(path), json.dumps(result, indent=2, sort_keys=True) + "\n")
    return path
