"""Where teacher weights come from, and how foreign key layouts map onto the teacher modules.

``weights`` (config ``teachers.image.weights`` / ``teachers.text.weights``) is one of:

* ``openai`` — OpenAI's CLIP ViT-B/32 (text tower; the image tower of the zero-shot recipe), found as
  the official code finds it, in ``~/.cache/clip/ViT-B-32.pt`` (OpenAI's TorchScript archive, read
  here without running its code), else as open_clip resolves its ``openai`` tag (open_clip's cache;
  a download only when online);
* ``in21k`` — the ImageNet-21k ViT-B/16 of timm 0.4.5, ``jx_vit_base_patch16_224_in21k-e5005f0a.pth``
  in torch hub's cache ``$TORCH_HOME/hub/checkpoints/`` (where the official code's timm put it);
  it must hold the ``pre_logits`` layer (docs/official.md §10);
* ``random`` — a seeded random initialisation, only when a config says so (the demo's small towers);
* a file: a state dict (``.pt/.pth/.bin``, ``.safetensors``, optionally under ``state_dict`` /
  ``model``), a full CLIP state dict (``visual.*`` + text keys), OpenAI's TorchScript archive, or an
  official ReCon *full* pretrain checkpoint (``base_model`` with ``img_encoder.*`` / ``text_encoder.*``);
* ``null`` — ``$RECON_IMAGE_TEACHER`` / ``$RECON_TEXT_TEACHER`` if set, else the arch's official
  source (``openai`` / ``in21k``); the demo archs have none, so they need ``random`` or a file.

Nothing falls back to random weights: a source that cannot be found is an error that names the file,
where it comes from and the config key to set (:func:`require_found`).
"""

from __future__ import annotations

import hashlib
import io
import os
import pickle
import zipfile
from dataclasses import dataclass
from typing import Dict, Iterable, Optional

import torch

from recon.errors import CheckpointError, ConfigError, MissingFileError, ReconError

__all__ = ["RANDOM", "OPENAI", "IN21K", "IN21K_FILE", "Source", "locate", "require_found",
           "read_state_dict", "read_torchscript_state", "select", "load_into", "file_digest"]

RANDOM, OPENAI, IN21K = "random", "openai", "in21k"
IN21K_FILE = "jx_vit_base_patch16_224_in21k-e5005f0a.pth"
IN21K_URL = ("https://github.com/rwightman/pytorch-image-models/releases/download/v0.1-vitjx/"
             + IN21K_FILE)
CLIP_FILE = "ViT-B-32.pt"
# the archs whose official weights a tag names (the demo archs have none)
TAGS = {"ViT-B-32": OPENAI, "clip-ViT-B-32": OPENAI, "vit_base_patch16_224_in21k": IN21K}


@dataclass
class Source:
    """Where one teacher's weights come from: ``path`` (``None`` = the explicit random init),
    or ``problem`` (why they could not be found, with what to do)."""

    kind: str
    arch: str
    path: Optional[str] = None
    random: bool = False
    problem: Optional[str] = None


def clip_cache_dir() -> str:
    """The official code's (and open_clip's URL download) cache of OpenAI's archives."""
    return os.path.join(os.path.expanduser("~"), ".cache", "clip")


def _openai_clip() -> tuple[Optional[str], str]:
    """(path or None, where it was looked for)."""
    official = os.path.join(clip_cache_dir(), CLIP_FILE)
    if os.path.isfile(official):
        return official, official
    where = f"{official} (the official code's cache)"
    try:
        from open_clip import pretrained as oc
    except ImportError:
        return None, where + "; open_clip is not installed (pip install 'recon[teachers]') to look in its cache"
    try:
        path = oc.download_pretrained(oc.get_pretrained_cfg("ViT-B-32", OPENAI))
    except Exception as exc:  # noqa: BLE001 - offline and not cached: open_clip/hf raise many types
        return None, f"{where}; open_clip's cache for ViT-B-32 'openai' ({type(exc).__name__}: offline?)"
    return (path, where) if path and os.path.isfile(path) else (None, where)


def _in21k() -> tuple[Optional[str], str]:
    path = os.path.join(torch.hub.get_dir(), "checkpoints", IN21K_FILE)
    return (path if os.path.isfile(path) else None), path


def locate(kind: str, arch: str, weights: Optional[str], env_var: str, key: str) -> Source:
    """Resolves a teacher's ``weights`` setting (see the module docstring) without reading the file.

    Args:
        kind: ``"image"`` or ``"text"`` (for messages).
        arch: the teacher arch.
        weights: the setting (tag, path, ``random`` or ``None``).
        env_var: the environment variable consulted when ``weights`` is ``None``.
        key: the config key that sets it (named in messages), e.g. ``teachers.text.weights``.
    """
    src = Source(kind, arch)
    if weights is None:
        weights = os.environ.get(env_var) or TAGS.get(arch)
        if weights is None:
            src.problem = (f"{kind} teacher {arch!r} has no released weights: set {key}=random "
                           f"(an explicit random tower) or {key}=PATH")
            return src
    weights = os.path.expanduser(str(weights))
    if weights == RANDOM:
        src.random = True
        return src
    if weights in (OPENAI, IN21K):
        if TAGS.get(arch) != weights:
            raise ConfigError(f"{key}={weights}: that tag names the weights of "
                              f"{[a for a, t in TAGS.items() if t == weights]}, not of {kind} teacher {arch!r}")
        if weights == OPENAI:
            src.path, where = _openai_clip()
            origin = f"OpenAI CLIP ViT-B/32 ({CLIP_FILE}); looked in {where}"
        else:
            src.path, where = _in21k()
            origin = f"timm 0.4.5's {IN21K_FILE} ({IN21K_URL}); looked in {where}"
        if src.path is None:
            src.problem = f"{kind} teacher {arch!r}: {origin}; or pass {key}=PATH"
        return src
    if not os.path.isfile(weights):
        src.problem = f"{kind} teacher {arch!r}: file {weights!r} does not exist (from {key} or ${env_var})"
        return src
    src.path = weights
    return src


def require_found(sources: Iterable[Source]) -> None:
    """Raises one :class:`MissingFileError` naming every teacher whose weights were not found."""
    problems = [s.problem for s in sources if s is not None and s.problem]
    if problems:
        raise MissingFileError("teacher weights not found:\n  - "
                               + "\n  - ".join(problems))


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


# --- OpenAI's TorchScript archive, read as data -------------------------------------------------
_STORAGE_DTYPES = {
    "HalfStorage": torch.float16, "FloatStorage": torch.float32, "DoubleStorage": torch.float64,
    "BFloat16Storage": torch.bfloat16, "LongStorage": torch.int64, "IntStorage": torch.int32,
    "ShortStorage": torch.int16, "CharStorage": torch.int8, "ByteStorage": torch.uint8,
    "BoolStorage": torch.bool,
}


class _ScriptObject:
    """Stands in for a TorchScript module class: its attributes are filled by pickle's BUILD."""


def _rebuild_tensor(storage, offset, size, stride, *_):
    return torch.as_strided(storage, size, stride, offset).clone()


class _ArchiveUnpickler(pickle.Unpickler):
    """Unpickles ``data.pkl`` of a TorchScript archive allowing only tensors, storages, dicts and
    stand-ins for the module classes: no code of the archive runs."""

    def __init__(self, data: bytes, archive: zipfile.ZipFile, folder: str):
        super().__init__(io.BytesIO(data))
        self.archive, self.folder = archive, folder

    def find_class(self, module, name):
        if module.startswith("__torch__"):
            return type(name, (_ScriptObject,), {})
        if (module, name) == ("torch._utils", "_rebuild_tensor_v2"):
            return _rebuild_tensor
        if (module, name) == ("collections", "OrderedDict"):
            return dict
        if module == "torch" and name in _STORAGE_DTYPES:
            return _STORAGE_DTYPES[name]
        raise pickle.UnpicklingError(f"{module}.{name} is not allowed in a weights archive")

    def persistent_load(self, pid):
        if not (isinstance(pid, tuple) and len(pid) >= 5 and pid[0] == "storage"
                and isinstance(pid[1], torch.dtype)):
            raise pickle.UnpicklingError(f"unexpected storage reference {pid!r}")
        raw = bytearray(self.archive.read(f"{self.folder}/data/{pid[2]}"))
        return torch.frombuffer(raw, dtype=pid[1]) if raw else torch.empty(0, dtype=pid[1])


def _flatten(obj, prefix: str, out: dict) -> None:
    for name, value in vars(obj).items():
        if isinstance(value, torch.Tensor):
            out[prefix + name] = value
        elif isinstance(value, _ScriptObject):
            _flatten(value, f"{prefix}{name}.", out)


def is_torchscript(path: str) -> bool:
    if not zipfile.is_zipfile(path):
        return False
    with zipfile.ZipFile(path) as z:
        # torch.save zips have data.pkl too; only TorchScript writes constants.pkl (and code/)
        return any(n.endswith("/constants.pkl") and n.count("/") == 1 for n in z.namelist())


def read_torchscript_state(path: str) -> Dict[str, torch.Tensor]:
    """The parameters and buffers of a TorchScript archive (OpenAI's ``ViT-B-32.pt``), read as data.

    Raises:
        CheckpointError: the archive holds anything but modules, tensors and plain values.
    """
    with zipfile.ZipFile(path) as z:
        pkl = next((n for n in z.namelist() if n.endswith("/data.pkl") and n.count("/") == 1), None)
        if pkl is None:
            raise CheckpointError(f"{path}: a zip archive without data.pkl is no TorchScript archive")
        try:
            root = _ArchiveUnpickler(z.read(pkl), z, pkl.split("/")[0]).load()
        except (pickle.UnpicklingError, KeyError, RuntimeError, TypeError) as exc:
            raise CheckpointError(f"cannot read the TorchScript archive {path} as weights: {exc}") from None
    out: Dict[str, torch.Tensor] = {}
    if isinstance(root, _ScriptObject):
        _flatten(root, "", out)
    if not out:
        raise CheckpointError(f"the TorchScript archive {path} holds no tensors")
    return out


def read_state_dict(path: str) -> Dict[str, torch.Tensor]:
    """Reads any accepted file into a flat ``{key: tensor}`` through recon's one checkpoint reader
    (:func:`recon.checkpoint.read_checkpoint`); OpenAI's TorchScript archive is read as data first.
    A leading DataParallel ``module.`` is stripped (only a leading one)."""
    from recon.checkpoint import read_checkpoint

    source = read_torchscript_state(path) if is_torchscript(path) else path
    try:
        state, _ = read_checkpoint(source)
    except ReconError:
        raise
    except (ValueError, RuntimeError, OSError) as exc:
        raise CheckpointError(f"cannot read teacher weights {path!r}: {exc}") from None
    if not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise CheckpointError(f"teacher weights {path!r} hold no state dict of tensors")
    return {(k[len("module."):] if k.startswith("module.") else k): v for k, v in state.items()}


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

    Raises :class:`CheckpointError` listing missing keys, or the key and both shapes of a mismatch.
    Keys of ``state`` under the chosen prefix that the module lacks are ignored only when they
    start with one of ``ignore`` (e.g. a classifier head), otherwise they are reported too.
    """
    own = module.state_dict()
    sub, prefix = select(state, prefixes, own)
    if sub is None:
        raise CheckpointError(f"{path!r} holds none of the {type(module).__name__} keys under any of "
                              f"the prefixes {list(prefixes)} (e.g. {next(iter(own))!r})")
    missing = [k for k in own if k not in sub]
    unexpected = [k for k in sub if k not in own and not any(k.startswith(i) for i in ignore)]
    if missing or unexpected:
        raise CheckpointError(f"{path!r} does not match {type(module).__name__} (prefix {prefix!r}): "
                              f"missing {missing[:8]}{'...' if len(missing) > 8 else ''} "
                              f"({len(missing)}), unexpected {unexpected[:8]}"
                              f"{'...' if len(unexpected) > 8 else ''} ({len(unexpected)})")
    for k, v in own.items():
        if tuple(sub[k].shape) != tuple(v.shape):
            raise CheckpointError(f"{path!r}: key {prefix}{k} has shape {tuple(sub[k].shape)}, the "
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
    for name, _ in module.named_buffers():
        if name not in module.state_dict():
            raise RuntimeError(f"{type(module).__name__} has a non-persistent buffer {name!r} "
                               f"that loading cannot restore")
    return module


def random_id(arch: str) -> str:
    """The cache identity of a seeded random tower."""
    # v2: the towers of recon.teachers.clip and the demo's byte tokenizer (v1 used open_clip's modules)
    return f"random-init-v2:{arch}:seed0:torch{torch.__version__.split('+')[0]}"
