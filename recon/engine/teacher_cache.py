"""Pretraining data with teacher features (``recon.teachers``): cached (default) or online.

Cached (``teachers.online: false``): the frozen teachers run once over the training set (one
process builds each cache entry under a file lock, every other rank or job sharing the folder waits
for it, then reads); the cache stores every prompt's text feature and ``views`` augmented
image views per shape, and :class:`~recon.teachers.CachedTeacherDataset` draws one prompt and one
view per access, as the official code draws a prompt and an augmentation per step.

Online (``teachers.online: true``): what the official model does every step. Items carry the
augmented ``image`` and a random ``prompt``; the loop runs the teachers on each batch (frozen,
eval mode, no grad) on the run's device and under its AMP autocast. Slower (the image tower runs
every step and every image is decoded and augmented), but every step sees a fresh augmentation
instead of one of ``views`` cached ones, and nothing is written to disk.

``teachers.image_transform`` picks the image pipeline in both modes: ``train`` (the official random
one, default) or ``eval`` (deterministic resize + centre crop).
"""

from __future__ import annotations

import copy
import os

__all__ = ["with_teacher_features", "prepare_teachers", "OnlineTeachers", "IMAGE_PIPELINES"]

IMAGE_PIPELINES = ("train", "eval")


class OnlineTeachers:
    """Runs the frozen teachers on a collated online batch: adds ``img_feat`` ``[B, Di]`` and
    ``text_feat`` ``[B, Dt]`` (float32; computed under whatever autocast the caller is in).

    The teachers encode under ``torch.inference_mode``; their outputs are cloned into ordinary
    tensors because autograd refuses to save inference tensors for the losses' backward.
    """

    def __init__(self, text_teacher=None, image_teacher=None):
        from recon.teachers import OnlineTeacherFeatures

        self.text_teacher, self.image_teacher = text_teacher, image_teacher
        self._features = OnlineTeacherFeatures(text_teacher=text_teacher, image_teacher=image_teacher)

    def __call__(self, batch: dict) -> dict:
        batch = self._features(dict(batch))
        for key in ("img_feat", "text_feat"):
            if key in batch:
                batch[key] = batch[key].float().clone()
        return batch


def _image_pipeline(teachers_cfg):
    from recon.data.images import ImageTransform

    name = str(teachers_cfg.get("image_transform") or "train")
    if name not in IMAGE_PIPELINES:
        raise ValueError(f"teachers.image_transform must be one of {IMAGE_PIPELINES}, got {name!r}")
    return ImageTransform(train=name == "train")


def _build_teachers(teachers_cfg, device):
    from recon.teachers import build_teachers

    return build_teachers(teachers_cfg, device)  # checks every weight file first: one error naming all


def _online_dataset(dataset, image, pipeline):
    """``dataset`` whose items carry the teacher's input image (or no image when no image teacher)."""
    from recon.teachers import CachedTeacherDataset

    if image is not None:
        if not (hasattr(dataset, "image_transform") and hasattr(dataset, "load_image")):
            raise TypeError(f"teachers.online=true with an image teacher needs a dataset that loads images "
                            f"(image_transform / load_image, e.g. ShapeNet55, SyntheticShapes); "
                            f"{type(dataset).__name__} has none: set teachers.image=null or use a cache")
        dataset = copy.copy(dataset)  # the teachers' pipeline replaces data.args.image_transform
        dataset.image_transform = pipeline
    elif hasattr(dataset, "without_images"):
        dataset = dataset.without_images()
    return CachedTeacherDataset(dataset, online=True)


def prepare_teachers(dataset, teachers_cfg, run):
    """The pretraining dataset and, in online mode, the per-batch teacher function.

    Config keys (section ``teachers``): ``image`` / ``text`` (``{arch, weights}``, or null to skip
    that modality), ``online`` (run the teachers every step instead of caching), ``image_transform``
    (``train`` | ``eval``); cached mode only: ``cache`` (folder; default
    ``<data.root>/teacher_cache``), ``views``, ``batch_size``, ``num_workers``, ``standardize``
    (z-score the features with the cache's per-dimension mean/std; the official recipe regresses
    raw features). ``teachers: null`` returns the dataset as is (its items may already carry features, or the
    model trains on the reconstruction loss alone).

    Returns:
        ``(dataset, online)``: ``online`` is an :class:`OnlineTeachers` to apply to every batch
        (``None`` in cached mode, where the items already carry ``img_feat`` / ``text_feat``).
    """
    if not teachers_cfg:
        return dataset, None
    pipeline = _image_pipeline(teachers_cfg)
    image, text = _build_teachers(teachers_cfg, run.device)
    if image is None and text is None:
        return dataset, None
    names = f"image={image.arch if image else None}, text={text.arch if text else None}"
    if teachers_cfg.get("online", False):
        if teachers_cfg.get("standardize", False):
            raise ValueError("teachers.standardize=true needs the cache's feature statistics; "
                             "it cannot be combined with teachers.online=true")
        run.logger.info(f"[pretrain] teachers online ({names}, image pipeline "
                        f"{teachers_cfg.get('image_transform') or 'train'}): run on every batch, no cache")
        return _online_dataset(dataset, image, pipeline), OnlineTeachers(text_teacher=text, image_teacher=image)

    from recon.teachers import CachedTeacherDataset, TeacherFeatureCache

    root = teachers_cfg.get("cache") or os.path.join(getattr(dataset, "root", "."), "teacher_cache")
    cache = TeacherFeatureCache(root, dataset, text_teacher=text, image_teacher=image,
                                views=int(teachers_cfg.get("views", 8)), image_transform=pipeline,
                                batch_size=int(teachers_cfg.get("batch_size", 64)),
                                num_workers=int(teachers_cfg.get("num_workers", 0)),
                                progress=run.progress)
    if not cache.is_complete():
        run.logger.info(f"[pretrain] building the teacher-feature cache in {root} ({names})")
        # every rank calls build(): the first to take an entry's lock builds it, the others wait on
        # the lock (no collective whose timeout a long build could exceed), then find it complete
        cache.build()
    return CachedTeacherDataset(dataset, cache, standardize=bool(teachers_cfg.get("standardize", False))), None


def with_teacher_features(dataset, teachers_cfg, run):
    """``dataset`` whose items carry cached ``img_feat`` / ``text_feat`` (see :func:`prepare_teachers`).

    Raises:
        ValueError: with ``teachers.online: true``, whose features come from the loop, not the data.
    """
    if teachers_cfg and teachers_cfg.get("online", False):
        raise ValueError("teachers.online=true: the features are computed per batch; use "
                         "prepare_teachers(), which also returns the teachers to run")
    return prepare_teachers(dataset, teachers_cfg, run)[0]
