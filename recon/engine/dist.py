"""Distributed data parallel under ``torchrun``: process-group setup and small collectives.

``torchrun --nproc_per_node=N -m recon.cli pretrain ...`` sets ``RANK``, ``LOCAL_RANK`` and
``WORLD_SIZE``; :func:`init_distributed` reads them, picks nccl on CUDA and gloo on CPU, and binds
each process to ``cuda:LOCAL_RANK``. Without those variables everything runs in one process.
Multi-node is torchrun's business (``--nnodes``, ``--rdzv-endpoint``); nothing here changes.
Under torchrun's elastic restarts (``--max-restarts``) every restart round gets its own key space in
the rendezvous store (:func:`_elastic_store`). See docs/distributed.md.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist

__all__ = ["DistInfo", "init_distributed", "cleanup", "all_reduce_sum", "all_reduce_mean", "barrier",
           "broadcast_object", "unwrap", "is_active", "all_gather_object"]


@dataclass
class DistInfo:
    """Where this process stands: ``rank`` of ``world_size``, its ``device``, and whether it logs."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    device: torch.device = torch.device("cpu")

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world_size > 1


def _env_int(name: str, default: int) -> int:
    value = os.environ.get(name)
    if value is None:
        return default
    try:
        return int(value)
    except ValueError:
        raise ValueError(f"environment variable {name}={value!r} must be an integer") from None


def init_distributed(device: str = "auto", backend: str | None = None) -> DistInfo:
    """Set up the process group when launched by torchrun, and choose the device.

    Args:
        device: ``auto`` (CUDA when available), ``cpu`` or ``cuda``.
        backend: override the process-group backend (default: nccl on CUDA, gloo on CPU).

    Returns:
        The :class:`DistInfo` of this process.
    """
    if device not in ("auto", "cpu", "cuda"):
        raise ValueError(f"device must be 'auto', 'cpu' or 'cuda', got {device!r}")
    if device == "cuda" and not torch.cuda.is_available():
        raise RuntimeError("device='cuda' was requested but torch.cuda.is_available() is False")
    use_cuda = device == "cuda" or (device == "auto" and torch.cuda.is_available())
    world = _env_int("WORLD_SIZE", 1)
    rank = _env_int("RANK", 0)
    local = _env_int("LOCAL_RANK", 0)
    if use_cuda:
        if local >= torch.cuda.device_count():
            raise RuntimeError(
                f"LOCAL_RANK={local} but only {torch.cuda.device_count()} CUDA devices are visible; "
                "lower --nproc_per_node"
            )
        torch.cuda.set_device(local)
        dev = torch.device("cuda", local)
    else:
        dev = torch.device("cpu")
    if world > 1 and not dist.is_initialized():
        dist.init_process_group(backend=backend or ("nccl" if use_cuda else "gloo"), rank=rank, world_size=world,
                                store=_elastic_store(rank, world))
    return DistInfo(rank=rank, world_size=world, local_rank=local, device=dev)


def _elastic_store(rank: int, world: int):
    """The process-group store of this torchrun restart round (``None`` outside torchelastic).

    Why: since torch 2.4 torchrun's c10d rendezvous shares its own TCPStore with the workers
    (``TORCHELASTIC_USE_AGENT_STORE=True``), and that store lives as long as the agent: the
    ``MASTER_PORT`` of a restarted worker group is the port of the previous round, and the keys the
    previous round's process group wrote (``default_pg/...``: gloo's per-rank listening addresses,
    nccl's unique id, the init barrier's counters) are still there. torch's ``env://`` handler assumes
    "a new TCPStore for every retry" and adds no per-attempt prefix, so a restarted gloo group reads
    the dead workers' addresses and fails in ``connectFullMesh`` ("Connection refused") or waits on
    them until the timeout. Prefixing the store with the restart count gives each round fresh keys
    (the scheme torch itself used before sharing the store). The count is per agent: on several
    nodes it matches as long as every node's group fails and restarts together, which is what
    happens when a peer dies under gloo or nccl.
    """
    if "TORCHELASTIC_RESTART_COUNT" not in os.environ:
        return None
    from torch.distributed.constants import default_pg_timeout

    store, _, _ = next(dist.rendezvous("env://", rank=rank, world_size=world, timeout=default_pg_timeout))
    return dist.PrefixStore(f"recon/attempt_{_env_int('TORCHELASTIC_RESTART_COUNT', 0)}", store)


def cleanup() -> None:
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def is_active() -> bool:
    """True inside an initialised process group of more than one process."""
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def all_reduce_sum(t: torch.Tensor) -> torch.Tensor:
    """Sum of ``t`` over all processes (``t`` itself when not distributed)."""
    if is_active():
        t = t.clone()
        dist.all_reduce(t, op=dist.ReduceOp.SUM)
    return t


def all_reduce_mean(t: torch.Tensor) -> torch.Tensor:
    return all_reduce_sum(t) / (dist.get_world_size() if is_active() else 1)


def barrier() -> None:
    if is_active():
        dist.barrier()


def broadcast_object(obj, src: int = 0):
    """``obj`` of rank ``src`` on every process."""
    if not is_active():
        return obj
    box = [obj]
    dist.broadcast_object_list(box, src=src)
    return box[0]


def all_gather_object(obj) -> list:
    """``[obj of rank 0, obj of rank 1, ...]`` on every process (``[obj]`` when not distributed)."""
    if not is_active():
        return [obj]
    out = [None] * dist.get_world_size()
    dist.all_gather_object(out, obj)
    return out


def unwrap(model: torch.nn.Module) -> torch.nn.Module:
    """The model inside a DDP / DataParallel wrapper (what checkpoints store)."""
    return model.module if hasattr(model, "module") else model
