"""The teachers of a config's ``teachers`` section, with every weight file checked before any is built."""

from __future__ import annotations

from . import weights as W
from .image import build_image_teacher, locate_image_weights
from .text import build_text_teacher, locate_text_weights

__all__ = ["check_teachers", "build_teachers"]

_KEYS = {"image": "teachers.image.weights", "text": "teachers.text.weights"}


def check_teachers(teachers_cfg) -> None:
    """Resolves both teachers' weights (``teachers.image`` / ``teachers.text``: ``{arch, weights}`` or
    null) without building anything.

    Raises:
        MissingFileError: one message naming each missing file, where it comes from and the key to set.
    """
    if not teachers_cfg:
        return
    sources = []
    for kind, locate in (("image", locate_image_weights), ("text", locate_text_weights)):
        sub = teachers_cfg.get(kind)
        if sub:
            sources.append(locate(sub["arch"], sub.get("weights"), _KEYS[kind]))
    W.require_found(sources)


def build_teachers(teachers_cfg, device="cpu"):
    """``(image teacher or None, text teacher or None)``, after :func:`check_teachers`."""
    check_teachers(teachers_cfg)
    img, txt = (teachers_cfg or {}).get("image"), (teachers_cfg or {}).get("text")
    image = build_image_teacher(img["arch"], img.get("weights"), device=device, key=_KEYS["image"]) if img else None
    text = build_text_teacher(txt["arch"], txt.get("weights"), device=device, key=_KEYS["text"]) if txt else None
    return image, text
