"""Frozen teachers of ReCon (CLIP text tower, ViT image towers) and their feature cache.

``import recon.teachers`` is cheap (towers load lazily), building a point model never touches this
package, and only the real CLIP tokenizer needs the optional open_clip (``recon[teachers]``).
"""

from .prompts import ENDINGS, TEMPLATES, all_prompts  # noqa: F401  (pure python)

_LAZY = {
    "build_text_teacher": ".text", "TextTeacher": ".text",
    "build_image_teacher": ".image", "ImageTeacher": ".image",
    "TeacherFeatureCache": ".cache", "CachedTeacherDataset": ".cache",
    "OnlineTeacherFeatures": ".cache",
    "build_teachers": ".build", "check_teachers": ".build",
}

__all__ = ["TEMPLATES", "ENDINGS", "all_prompts", *_LAZY]


def __getattr__(name):
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name], __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
