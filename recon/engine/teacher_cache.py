"""Pretraining data with cached teacher features (``recon.teachers``).

The frozen teachers run once over the training set (rank 0 builds, the others wait); the cache
stores every prompt's text feature and ``views`` augmented image views per shape, and
:class:`~recon.teachers.CachedTeacherDataset` draws one prompt and one view per access, as the
official code draws a prompt and an augmentation per step.
"""

from __future__ import annotations

import os

from . import dist

__all__ = ["with_teacher_features"]


def with_teacher_features(dataset, teachers_cfg, run):
    """``dataset`` whose items also carry ``img_feat`` / ``text_feat`` from a teacher-feature cache.

    Config keys (section ``teachers``): ``image`` / ``text`` (``{arch, weights}``, or null to skip
    that modality), ``cache`` (folder; default ``<data.root>/teacher_cache``), ``views``,
    ``batch_size``, ``num_workers``, ``standardize`` (z-score the features with the cache's
    per-dimension mean/std; the official recipe regresses raw features). ``teachers: null`` returns the dataset as is (its items may
    already carry features, or the model trains on the reconstruction loss alone).
    """
    if not teachers_cfg:
        return dataset
    from recon.teachers import CachedTeacherDataset, TeacherFeatureCache, build_image_teacher, build_text_teacher

    img_cfg, txt_cfg = teachers_cfg.get("image"), teachers_cfg.get("text")
    image = build_image_teacher(img_cfg["arch"], img_cfg.get("weights"), device=run.device) if img_cfg else None
    text = build_text_teacher(txt_cfg["arch"], txt_cfg.get("weights"), device=run.device) if txt_cfg else None
    if image is None and text is None:
        return dataset
    root = teachers_cfg.get("cache") or os.path.join(getattr(dataset, "root", "."), "teacher_cache")
    cache = TeacherFeatureCache(root, dataset, text_teacher=text, image_teacher=image,
                                views=int(teachers_cfg.get("views", 8)),
                                batch_size=int(teachers_cfg.get("batch_size", 64)),
                                num_workers=int(teachers_cfg.get("num_workers", 0)),
                                progress=run.progress)
    if run.info.is_main and not cache.is_complete():
        run.logger.info(f"[pretrain] building the teacher-feature cache in {root} "
                        f"(image={img_cfg and img_cfg['arch']}, text={txt_cfg and txt_cfg['arch']})")
        cache.build()
    dist.barrier()
    return CachedTeacherDataset(dataset, cache, standardize=bool(teachers_cfg.get("standardize", False)))
