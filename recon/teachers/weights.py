"""Where teacher weights come from, and how foreign key layouts map onto the teacher modules.

Accepted sources (a path, or an environment variable naming one):

* a teacher state dict in its own layout — ``.pt/.pth/.bin`` (``torch.load``, weights only) or
  ``.safetensors``; optionally wrapped in ``{"state_dict": ...}`` / ``{"model": ...}``;
* a full CLIP state dict (open_clip or OpenAI layout: ``visual.*`` + text keys) — the text
  teacher takes the text keys, the CLIP image teacher the ``visual.*`` ones;
* OpenAI's TorchScript CLIP archive (``ViT-B-32.pt``), read with ``torch.jit.load``;
* an official ReCon *full* pretrain checkpoint (``ckpt-last.pth``): ``base_model`` holds
  ``img_encoder.*`` and ``text_encoder.*`` (keys may carry ``module.``).
"""

from __future__ import annotations

import hashlib
import os
import warnings
from typing import Dict, Iterable, Optional

import torch

__all__ = ["resolve", "read_state_dict", "select", "load_into", "file_digest"]


RANDOM = "random"  # weights value: random init on purpose (never the environment variable)


def resolve(weights: Optional[str], env_var: str) -> Optional[str]:
    """``weights`` if given, else the environment variable, else ``None``; checks the file exists.

    ``weights="random"`` gives ``None`` (random init) whatever the environment says: the paper's rows
    without pretrained teachers."""
    if weights == RANDOM:
        return None
    path = weights if weights is not None else os.environ.get(env_var) or None
    if path is not None and not os.path.isfile(path):
        src = "weights argument" if weights is not None else f"${env_var}"
        raise FileNotFoundError(f"teacher weights file {path!r} (from the {src}) does not exist")
    return path


_DIGESTS: dict = {}


def file_digest(path: str) -> str:
    """sha256 of the file's bytes (first 16 hex digits): part of every feature-cache key.

    Memoised per (path, size, mtime) within the process: one checkpoint feeds both teachers."""
    st = os.stat(path)
    memo = (os.path.abspath(path), st.st_size, st.st_mtime_ns)
    if memo in _DIGESTS:
        return _DIGESTS[memo]
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 22), b""):
            h.update(chunk)
    _DIGESTS[memo] = h.hexdigest()[:16]
    return _DIGESTS[memo]


def read_state_dict(path: str) -> Dict[str, torch.Tensor]:
    """Reads any accepted file into a flat ``{key: tensor}`` (see the module docstring)."""
    if path.endswith(".safetensors"):
        from safetensors.torch import load_file

        return dict(load_file(path))
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as first:  # noqa: BLE001 - maybe a TorchScript archive (OpenAI CLIP)
        try:
            obj = torch.jit.load(path, map_location="cpu").state_dict()
        except Exception:  # noqa: BLE001
            raise ValueError(f"cannot read teacher weights {path!r}: {type(first).__name__}: "
                             f"{first}") from None
    for wrapper in ("base_model", "state_dict", "model"):
        if isinstance(obj, dict) and wrapper in obj and isinstance(obj[wrapper], dict):
            obj = obj[wrapper]
            break
    if not isinstance(obj, dict) or not all(isinstance(v, torch.Tensor) for v in obj.values()):
        raise ValueError(f"teacher weights {path!r} hold no state dict of tensors")
    # official loaders replace every 'module.' (DataParallel) occurrence
    return {k.replace("module.", ""): v for k, v in obj.items()}


def select(state: Dict[str, torch.Tensor], prefixes: Iterable[str], own_keys: Iterable[str]):
    """The sub-dict of ``state`` for a teacher: the first prefix under which any of the teacher's
    own keys is found (``""`` = keys as they are), with that prefix stripped."""
    own = set(own_keys)
    for p in prefixes:
        sub = {k[len(p):]: v for k, v in state.items() if k.startswith(p)}
        if own & set(sub):
            return sub, p
    return None, None


def load_into(module: torch.nn.Module, state: Dict[str, torch.Tensor], path: str,
              prefixes: Iterable[str], ignore: Iterable[str] = ()) -> None:
    """Copies the teacher's keys from ``state`` into ``module``; every parameter must land.

    Raises ``ValueError`` listing missing keys, or the key and both shapes of a mismatch.
    Keys of ``state`` under the chosen prefix that the module lacks are ignored only when they
    start with one of ``ignore`` (e.g. a classifier head), otherwise they are reported too.
    """
    own = module.state_dict()
    sub, prefix = select(state, prefixes, own)
    if sub is None:
        raise ValueError(f"{path!r} holds none of the {type(module).__name__} keys under any of "
                         f"the prefixes {list(prefixes)} (e.g. {next(iter(own))!r})")
    missing = [k for k in own if k not in sub]
    unexpected = [k for k in sub if k not in own and not any(k.startswith(i) for i in ignore)]
    if missing or unexpected:
        raise ValueError(f"{path!r} does not match {type(module).__name__} (prefix {prefix!r}): "
                         f"missing {missing[:8]}{'...' if len(missing) > 8 else ''} "
                         f"({len(missing)}), unexpected {unexpected[:8]}"
                         f"{'...' if len(unexpected) > 8 else ''} ({len(unexpected)})")
    for k, v in own.items():
        if tuple(sub[k].shape) != tuple(v.shape):
            raise ValueError(f"{path!r}: key {prefix}{k} has shape {tuple(sub[k].shape)}, the "
                             f"teacher expects {tuple(v.shape)}")
    module.load_state_dict({k: sub[k].to(v.dtype) for k, v in own.items()}, strict=True)


def construct(make, random_init: bool) -> torch.nn.Module:
    """Builds a tower: seeded random init (reproducible, so its feature cache is reusable), or,
    when weights will be loaded, without spending time on an init that is overwritten."""
    if random_init:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(0)
            return make()
    with torch.device("meta"):
        module = make()
    module = module.to_empty(device="cpu")
    # non-persistent buffers are not in state dicts: rebuild the causal mask of text towers
    if getattr(module, "attn_mask", None) is not None and hasattr(module, "build_causal_mask"):
        module.attn_mask = module.build_causal_mask()
    for name, buf in module.named_buffers():
        if name not in module.state_dict() and name != "attn_mask":
            raise RuntimeError(f"{type(module).__name__} has a non-persistent buffer {name!r} "
                               f"that loading cannot restore")
    return module


def warn_random(kind: str, arch: str, env_var: str) -> None:
    warnings.warn(
        f"\n{'!' * 78}\n{kind} teacher {arch!r}: NO WEIGHTS given (argument or ${env_var}); using a "
        f"RANDOM INITIALISATION.\nIts features carry no knowledge: fine for tests and the demo, "
        f"meaningless for real pretraining.\n{'!' * 78}", stacklevel=3)
