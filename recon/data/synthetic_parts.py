"""A built-in synthetic part-segmentation set in the exact ShapeNetPart layout.

Eight of the sixteen ShapeNetPart categories get procedural shapes assembled from labelled pieces
(boxes and surfaces of revolution with random proportions, a random turn about the vertical axis
and a small tilt), sampled area-uniformly with their face normals: airplane = body + wings + tail
(+ engines), chair = back + seat + legs (+ arms), guitar = head + neck + body, knife = blade +
handle, lamp = base + pole + shade, laptop = screen + keyboard, mug = body + handle, table = top +
legs (+ shelf). Pieces in parentheses are present in about half of the shapes, so some shapes lack
parts of their category (the case the mIoU protocol scores as 1.0). Part ids are the categories'
global ShapeNetPart ids, assigned in the order listed (airplane body = 0, wings = 1, ...).

:func:`generate` writes ``synsetoffset2category.txt`` with all sixteen categories (so category ids
and the 16-way one-hot match the real data), ``<synset>/<token>.txt`` rows ``x y z nx ny nz part``
and the three ``train_test_split`` lists; :class:`SyntheticParts` reads it with the real
:class:`~recon.data.shapenetpart.ShapeNetPart` loader.
"""

from __future__ import annotations

import json
import math
import os

import numpy as np

from .shapenetpart import CATEGORY_SYNSETS, PART_IDS, ShapeNetPart
from .synthetic import _box, _lathe, _merge, _rotation, _sample_mesh

__all__ = ["PART_SHAPES", "generate", "SyntheticParts", "sample_part_shape"]

_VERSION = 1


def _cyl(r, y0, y1, seg=24):
    """A closed cylinder about y from ``y0`` to ``y1``."""
    return _lathe([(0, y0), (r, y0), (r, y1), (0, y1)], seg)


def _frustum(r0, r1, y0, y1, seg=24):
    return _lathe([(r0, y0), (r1, y1)], seg)


def _rot_z(v, ang):
    c, s = math.cos(ang), math.sin(ang)
    return v @ np.array([[c, -s, 0], [s, c, 0], [0, 0, 1]]).T


def _rot_x(v, ang):
    c, s = math.cos(ang), math.sin(ang)
    return v @ np.array([[1, 0, 0], [0, c, -s], [0, s, c]]).T


def _airplane(rng):
    L, span = rng.uniform(1.6, 2.2), rng.uniform(1.6, 2.4)
    body = _cyl(rng.uniform(0.1, 0.16), -L / 2, L / 2)
    body = (_rot_z(body[0], math.pi / 2), body[1])  # along x
    wings = _box((rng.uniform(-0.1, 0.15), 0, 0), (rng.uniform(0.3, 0.45), 0.04, span))
    tail = _merge([_box((-L / 2 + 0.12, 0.2, 0), (0.2, 0.4, 0.04)), _box((-L / 2 + 0.1, 0.05, 0), (0.18, 0.03, 0.6))])
    pieces = [(body, 0), (wings, 1), (tail, 2)]
    if rng.random() < 0.5:
        for sz in (-1, 1):
            e = _cyl(0.06, -0.15, 0.15, 12)
            e = (_rot_z(e[0], math.pi / 2) + np.array([0.05, -0.12, sz * span * 0.25]), e[1])
            pieces.append((e, 3))
    return pieces


def _chair(rng):
    w, d, leg, back, t = 1.0, rng.uniform(0.9, 1.1), rng.uniform(0.8, 1.1), rng.uniform(0.9, 1.3), 0.1
    pieces = [(_box((0, back / 2 + t / 2, -d / 2 + t / 2), (w, back, t)), 0), (_box((0, 0, 0), (w, t, d)), 1)]
    legs = [_box((sx * (w / 2 - 0.06), -leg / 2, sz * (d / 2 - 0.06)), (0.08, leg, 0.08))
            for sx in (-1, 1) for sz in (-1, 1)]
    pieces.append((_merge(legs), 2))
    if rng.random() < 0.5:
        arms = [_box((sx * (w / 2 - 0.04), 0.3, 0), (0.08, 0.06, d * 0.9)) for sx in (-1, 1)]
        pieces.append((_merge(arms), 3))
    return pieces


def _guitar(rng):
    r, neck = rng.uniform(0.35, 0.45), rng.uniform(0.9, 1.2)
    body = _lathe([(0, -r * 0.12), (r, -r * 0.12), (r, r * 0.12), (0, r * 0.12)], 32)
    body = (_rot_x(body[0], math.pi / 2) * np.array([1.0, 1.5, 1.0]), body[1])  # disc in the x-y plane
    top = 1.5 * r
    return [(_box((0, top + neck + 0.12, 0), (0.16, 0.24, 0.05)), 0),
            (_box((0, top + neck / 2, 0), (0.08, neck, 0.05)), 1), (body, 2)]


def _knife(rng):
    blade, handle = rng.uniform(0.9, 1.3), rng.uniform(0.5, 0.7)
    return [(_box((0, blade / 2, 0), (rng.uniform(0.12, 0.2), blade, 0.02)), 0),
            (_box((0, -handle / 2, 0), (0.1, handle, 0.07)), 1)]


def _lamp(rng):
    h, rs = rng.uniform(1.0, 1.5), rng.uniform(0.3, 0.45)
    return [(_cyl(rng.uniform(0.25, 0.35), 0, 0.06), 0), (_cyl(0.03, 0.06, h, 12), 1),
            (_frustum(rs, rs * 0.5, h - 0.05, h + rng.uniform(0.25, 0.4)), 2)]


def _laptop(rng):
    w, d = rng.uniform(1.0, 1.3), rng.uniform(0.7, 0.9)
    ang = rng.uniform(0.3, 1.2)  # screen opening away from vertical
    screen_v, screen_f = _box((0, d / 2, 0), (w, d, 0.03))
    screen_v = _rot_x(screen_v, -ang) + np.array([0, 0.02, -d / 2])
    return [((screen_v, screen_f), 0), (_box((0, 0, 0), (w, 0.04, d)), 1)]


def _mug(rng):
    r, h = rng.uniform(0.35, 0.45), rng.uniform(0.8, 1.1)
    body = _lathe([(0, 0), (r, 0), (r, h), (r * 0.92, h), (r * 0.92, 0.05)], 32)
    reach, t = rng.uniform(0.2, 0.3), 0.06
    handle = _merge([_box((r + reach / 2, h * 0.75, 0), (reach, t, t)),
                     _box((r + reach / 2, h * 0.25, 0), (reach, t, t)),
                     _box((r + reach, h / 2, 0), (t, h * 0.5 + t, t))])
    return [(body, 0), (handle, 1)]


def _table(rng):
    w, d, h = rng.uniform(1.2, 1.8), rng.uniform(0.7, 1.0), rng.uniform(0.7, 0.9)
    pieces = [(_box((0, h, 0), (w, 0.06, d)), 0)]
    legs = [_box((sx * (w / 2 - 0.06), h / 2, sz * (d / 2 - 0.06)), (0.07, h, 0.07))
            for sx in (-1, 1) for sz in (-1, 1)]
    pieces.append((_merge(legs), 1))
    if rng.random() < 0.5:
        pieces.append((_box((0, h * 0.3, 0), (w * 0.9, 0.04, d * 0.9)), 2))
    return pieces


PART_SHAPES = {"Airplane": _airplane, "Chair": _chair, "Guitar": _guitar, "Knife": _knife, "Lamp": _lamp,
               "Laptop": _laptop, "Mug": _mug, "Table": _table}


def sample_part_shape(category: str, rng: np.random.Generator, num_points: int = 2500, noise: float = 0.005):
    """One labelled shape: float32 ``(num_points, 7)`` rows ``x y z nx ny nz part`` (global part ids)."""
    pieces = PART_SHAPES[category](rng)
    rot = _rotation(rng, tilt_deg=10.0)
    areas = []
    for (v, f), _ in pieces:
        a, b, c = v[f[:, 0]], v[f[:, 1]], v[f[:, 2]]
        areas.append(np.linalg.norm(np.cross(b - a, c - a), axis=1).sum() / 2)
    counts = rng.multinomial(num_points - 16 * len(pieces), np.array(areas) / sum(areas)) + 16
    rows = []
    for ((v, f), local), n in zip(pieces, counts):
        pts, nrm = _sample_mesh(v @ rot.T, f, int(n), rng)
        part = np.full((len(pts), 1), PART_IDS[category][local], dtype=np.float64)
        rows.append(np.concatenate([pts + rng.normal(scale=noise, size=pts.shape), nrm, part], axis=1))
    out = np.concatenate(rows)
    return out[rng.permutation(len(out))].astype(np.float32)


def _manifest(categories, counts, seed, num_points):
    return {"version": _VERSION, "categories": list(categories), "counts": dict(counts), "seed": seed,
            "num_points": list(num_points)}


def generate(root: str, categories=tuple(PART_SHAPES), counts: dict | None = None, seed: int = 0,
             num_points=(2000, 2800)) -> str:
    """Write the synthetic part set into ``root`` (reused when complete with the same parameters).

    Args:
        categories: names among :data:`PART_SHAPES`.
        counts: shapes per category and split, default ``{"train": 40, "val": 8, "test": 16}``.
        seed: shape ``i`` of category ``c`` in split ``s`` depends only on ``(seed, c, s, i)``.
        num_points: ``(low, high)`` points per shape, drawn per shape (real files differ in size too).
    """
    from recon.atomic import atomic_write_json, atomic_write_text

    counts = dict(counts or {"train": 40, "val": 8, "test": 16})
    unknown = [c for c in categories if c not in PART_SHAPES]
    if unknown or not categories:
        raise ValueError(f"categories must be among {list(PART_SHAPES)}, got {list(categories)}")
    if set(counts) != {"train", "val", "test"} or min(counts.values()) < 1:
        raise ValueError(f"counts must give >= 1 shape for each of train, val, test, got {counts}")
    manifest = _manifest(categories, counts, seed, num_points)
    meta = os.path.join(root, "synthetic_parts.json")
    if os.path.isfile(meta):
        with open(meta) as f:
            if json.load(f) == manifest:
                return root
        os.remove(meta)
    os.makedirs(os.path.join(root, "train_test_split"), exist_ok=True)
    lines = "".join(f"{name}\t{syn}\n" for name, syn in CATEGORY_SYNSETS.items())
    atomic_write_text(os.path.join(root, "synsetoffset2category.txt"), lines)
    for si, split in enumerate(("train", "val", "test")):
        listed = []
        for cat in categories:
            ci = list(CATEGORY_SYNSETS).index(cat)
            syn = CATEGORY_SYNSETS[cat]
            os.makedirs(os.path.join(root, syn), exist_ok=True)
            for i in range(counts[split]):
                rng = np.random.default_rng([seed, ci, si, i])
                token = f"{split}{ci:02d}{i:05d}"
                arr = sample_part_shape(cat, rng, int(rng.integers(num_points[0], num_points[1] + 1)))
                np.savetxt(os.path.join(root, syn, token + ".txt"), arr, fmt="%.6f")
                listed.append(f"shape_data/{syn}/{token}")
        order = np.random.default_rng([seed, 99, si]).permutation(len(listed))
        atomic_write_json(os.path.join(root, "train_test_split", f"shuffled_{split}_file_list.json"),
                          [listed[k] for k in order])
    atomic_write_json(meta, manifest)  # written last: its presence marks a complete folder
    return root


class SyntheticParts(ShapeNetPart):
    """The synthetic part set, generated into ``root`` on first use, read by :class:`ShapeNetPart`.

    Keyword arguments ``categories``, ``counts``, ``gen_seed`` and ``num_points`` choose the set
    (see :func:`generate`); the others are :class:`ShapeNetPart`'s.
    """

    name = "SyntheticParts"

    def __init__(self, root: str, split: str = "train", npoints: int = 2048, *, categories=tuple(PART_SHAPES),
                 counts: dict | None = None, gen_seed: int = 0, num_points=(2000, 2800), **kwargs):
        generate(root, categories=tuple(categories), counts=counts, seed=gen_seed, num_points=tuple(num_points))
        super().__init__(root, split=split, npoints=npoints, **kwargs)
