"""Run logging: progress lines, a JSONL metrics file, TensorBoard when installed, tqdm progress.

Progress lines go to ``logging.getLogger("recon.engine")`` (the ``recon`` command shows them on
stderr). Only the main process (rank 0) writes; the others get a logger whose methods do nothing,
so loops call it unconditionally.
"""

from __future__ import annotations

import json
import logging
import math
import os
import sys
import time
from typing import Any

__all__ = ["RunLogger", "Progress", "to_float"]

_log = logging.getLogger("recon.engine")


def to_float(value: Any) -> Any:
    """Tensors/numpy scalars → float so metrics serialise as JSON."""
    if hasattr(value, "item"):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    return value


class RunLogger:
    """Writes ``<out_dir>/metrics.jsonl`` (one JSON object per record) and TensorBoard scalars.

    Args:
        out_dir: run folder (created); None disables files.
        enabled: False on non-main ranks.
        tensorboard: also write TensorBoard events under ``<out_dir>/tb`` (``log.tensorboard``); when
            the ``tensorboard`` package is missing a console line says so and only the JSONL file
            is written.
        quiet: no progress lines.
    """

    def __init__(self, out_dir: str | None, enabled: bool = True, tensorboard: bool = True, quiet: bool = False):
        self.enabled = enabled
        self.quiet = quiet or not enabled
        self.out_dir = out_dir
        self._jsonl = None
        self._tb = None
        if not enabled or out_dir is None:
            return
        os.makedirs(out_dir, exist_ok=True)
        self._jsonl = open(os.path.join(out_dir, "metrics.jsonl"), "a", buffering=1)
        if tensorboard:
            try:
                from torch.utils.tensorboard import SummaryWriter
            except ImportError:  # tensorboard is optional: say so once, keep the JSONL file
                self.info(f"[log] TensorBoard is off: the 'tensorboard' package is not installed "
                          f"(pip install 'recon[tensorboard]'); metrics go to {self._jsonl.name}")
            else:
                self._tb = SummaryWriter(os.path.join(out_dir, "tb"))

    @property
    def tensorboard_enabled(self) -> bool:
        return self._tb is not None

    def info(self, msg: str) -> None:
        """A progress line (INFO on the ``recon.engine`` logger) unless quiet or not the main process."""
        if not self.quiet:
            _log.info(msg)

    def log(self, kind: str, step: int, **metrics) -> None:
        """Record ``metrics`` (a flat dict of numbers/strings) under ``kind`` at ``step``."""
        if not self.enabled:
            return
        record = {"kind": kind, "step": int(step), "time": round(time.time(), 3)}
        record.update({k: to_float(v) for k, v in metrics.items()})
        if self._jsonl is not None:
            self._jsonl.write(json.dumps(record) + "\n")
        if self._tb is not None:
            for k, v in record.items():
                if k not in ("kind", "step", "time") and isinstance(v, (int, float)):
                    self._tb.add_scalar(f"{kind}/{k}", v, step)

    def close(self) -> None:
        if self._jsonl is not None:
            self._jsonl.close()
            self._jsonl = None
        if self._tb is not None:
            self._tb.close()
            self._tb = None


class Progress:
    """A tqdm bar over one epoch showing running loss, lr and samples/s (silent when disabled)."""

    def __init__(self, total: int, desc: str, enabled: bool = True):
        self.enabled = enabled
        self.bar = None
        self.t0 = time.perf_counter()
        self.samples = 0
        if enabled:
            from tqdm.auto import tqdm

            self.bar = tqdm(total=total, desc=desc, leave=False, dynamic_ncols=True, file=sys.stderr)

    def update(self, n_samples: int, **shown) -> None:
        self.samples += n_samples
        if self.bar is None:
            return
        post = {k: (f"{v:.4g}" if isinstance(v, float) else v) for k, v in shown.items()}
        post["samples/s"] = f"{self.throughput:.1f}"
        self.bar.set_postfix(post, refresh=False)
        self.bar.update(1)

    @property
    def throughput(self) -> float:
        return self.samples / max(time.perf_counter() - self.t0, 1e-9)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
