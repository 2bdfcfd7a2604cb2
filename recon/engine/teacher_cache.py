"""Pretraining data with cached teacher features (``recon.teachers``)."""

from __future__ import annotations

__all__ = ["with_teacher_features"]


def with_teacher_features(dataset, teachers_cfg, run):
    """``dataset`` whose items also carry ``img_feat`` / ``text_feat`` from a teacher-feature cache.

    With ``teachers: null`` the dataset is returned as is (its items may already carry features,
    or the model trains on the reconstruction loss alone).
    """
    if not teachers_cfg:
        return dataset
    raise NotImplementedError("teacher cache integration pending recon.teachers")
