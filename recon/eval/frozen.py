"""What the frozen-feature protocols (SVM, zero-shot, attention) share: a registry model with a
checkpoint's weights, and the batches of a dataset in order."""

from __future__ import annotations

import logging
from pathlib import Path

import torch

from recon.errors import ConfigError, MissingFileError, ReconError

__all__ = ["frozen_model", "iterate_batches"]

log = logging.getLogger("recon.eval")


def frozen_model(name: str, checkpoint: str | None = None, seed: int = 0, **kwargs) -> torch.nn.Module:
    """Registry model ``name`` with ``checkpoint`` loaded (``strict=False``, head reset), in eval mode.

    With no checkpoint the weights stay random (seeded by ``seed``) and a log line says so.

    Args:
        name: registry name, e.g. ``"recon_tiny"``.
        checkpoint: a recon or official checkpoint file, or None.
        seed: torch seed used before construction, so random-weight runs are reproducible.
        **kwargs: forwarded to ``create_model`` (``num_classes``, ``npoints``, ``num_group``, ...).
    """
    from recon.models import create_model

    torch.manual_seed(seed)
    try:
        model = create_model(name, **kwargs)
    except ReconError:  # already says what is wrong (a weights file, a config value)
        raise
    except (KeyError, TypeError, ValueError) as exc:  # an unknown model, argument or value
        raise ConfigError(f"model {name!r}: {exc.args[0] if exc.args else exc}") from None
    if checkpoint is None:
        log.info(f"no checkpoint given: {name} runs with RANDOM weights (seed {seed})")
    else:
        if not Path(checkpoint).is_file():
            raise MissingFileError(f"checkpoint: no file at {str(checkpoint)!r}")
        from recon.checkpoint import load_checkpoint

        load_checkpoint(model, checkpoint, strict=False, reset_head=True)
    return model.eval()


def iterate_batches(dataset, batch_size: int, num_workers: int = 0):
    """Yield ``(points [B, N, 3] float32, labels [B] int64)`` over a dataset of dict items in order."""
    loader = torch.utils.data.DataLoader(
        dataset, batch_size=batch_size, shuffle=False, num_workers=num_workers, drop_last=False
    )
    for batch in loader:
        labels = torch.as_tensor(batch["label"]).reshape(-1).long()
        yield batch["points"].float(), labels
