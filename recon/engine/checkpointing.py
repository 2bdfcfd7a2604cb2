"""Atomic training-state checkpoints and exact resume.

A training checkpoint (``ckpt-last.pt``) holds everything needed to continue bit for bit:
model, optimizer, schedule, AMP grad scaler, the epoch just finished, the RNG states of python,
numpy, torch and CUDA, and the config. It is written atomically (:mod:`recon.atomic`: a temporary
file in the same folder, flushed and fsynced, then renamed over the old one and the folder
fsynced), so killing the process at any moment leaves either the previous checkpoint or the new
one, never a torn file. Every other file a run writes for later reading goes through the same path.

Everything is stored as tensors and plain Python values (the numpy RNG state is converted), so the
file loads with ``torch.load(weights_only=True)``.
"""

from __future__ import annotations

import os
import pickle
import random
import warnings

import numpy as np
import torch

from recon.atomic import atomic_save, atomic_write, atomic_write_json, atomic_write_text
from recon.errors import CheckpointError, MissingFileError

__all__ = ["atomic_save", "atomic_write", "atomic_write_json", "atomic_write_text", "load", "rng_state",
           "set_rng_state", "save_training_state", "load_training_state"]


def load(path: str) -> dict:
    """Load a training checkpoint onto the CPU (``weights_only=True``)."""
    if not os.path.isfile(path):
        raise MissingFileError(f"checkpoint {path!r} does not exist")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except (pickle.UnpicklingError, EOFError, RuntimeError) as exc:  # empty, truncated or not a torch file
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise CheckpointError(f"{path!r} is not a readable training checkpoint ({first})") from None


def rng_state() -> dict:
    """The RNG states of python, numpy, torch (CPU) and every CUDA device, as storable values."""
    kind, keys, pos, has_gauss, gauss = np.random.get_state()
    state = {
        "python": random.getstate(),
        "numpy": {"kind": kind, "keys": torch.from_numpy(keys.astype(np.int64)), "pos": int(pos),
                  "has_gauss": int(has_gauss), "gauss": float(gauss)},
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict) -> None:
    """Restore what :func:`rng_state` returned."""
    ver, internal, gauss = state["python"]
    random.setstate((ver, tuple(internal), gauss))
    n = state["numpy"]
    np.random.set_state((n["kind"], n["keys"].numpy().astype(np.uint32), n["pos"], n["has_gauss"], n["gauss"]))
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def save_training_state(path: str, *, model, optimizer, schedule, scaler, epoch: int, config: dict,
                        extra: dict | None = None, rng_states: list | None = None) -> None:
    """Atomically write a resumable checkpoint after ``epoch`` finished.

    Args:
        rng_states: one :func:`rng_state` per rank (DDP gathers them); default: this process's.
    """
    state = {
        "format": "recon-train-state/1",
        "model": model.state_dict(),
        "model_config": dict(getattr(model, "config", {}) or {}),
        "optimizer": optimizer.state_dict(),
        "schedule": schedule.state_dict() if schedule is not None else None,
        "scaler": scaler.state_dict() if scaler is not None and scaler.is_enabled() else None,
        "epoch": int(epoch),
        "rng": rng_states if rng_states is not None else [rng_state()],
        "config": config,
        "extra": extra or {},
    }
    atomic_save(state, path)


def load_training_state(path: str, *, model, optimizer=None, schedule=None, scaler=None,
                        rank: int | None = 0) -> dict:
    """Load a checkpoint written by :func:`save_training_state` into the given objects.

    Args:
        rank: restore this rank's saved RNG state (None: leave the RNGs alone). When the run is
            resumed with more processes than saved it, the extra ranks get fresh seeds derived
            from rank 0's state (a correct but not bit-exact continuation; a warning says so).

    Returns:
        The checkpoint dict (``epoch`` = last finished epoch, ``extra``, ``config``).
    """
    state = load(path)
    if not isinstance(state, dict) or state.get("format") != "recon-train-state/1":
        raise CheckpointError(
            f"{path!r} is not a recon training checkpoint (no format tag); to start from weights use "
            "the model's 'pretrained' option instead of --resume"
        )
    model.load_state_dict(state["model"])
    if optimizer is not None:
        optimizer.load_state_dict(state["optimizer"])
    if schedule is not None and state.get("schedule"):
        schedule.load_state_dict(state["schedule"])
    if scaler is not None and state.get("scaler"):
        scaler.load_state_dict(state["scaler"])
    if rank is not None:
        if rank < len(state["rng"]):
            set_rng_state(state["rng"][rank])
        else:
            warnings.warn(
                f"{path!r} holds RNG states of {len(state['rng'])} processes, this is rank {rank}: "
                "reseeding; the continuation is not bit-exact (resume with the same process count)"
            )
            set_rng_state(state["rng"][0])
            seed = int(torch.randint(0, 2**31 - 1, ()).item()) + 1000003 * rank
            random.seed(seed)
            np.random.seed(seed % 2**32)
            torch.manual_seed(seed)
    return state
