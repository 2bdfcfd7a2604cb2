"""A built-in synthetic shape set in the ShapeNet-55 layout, so every loop runs offline.

Twelve procedural classes, each a triangle mesh built from a few parameters (random scale,
aspect, rotation), sampled area-uniformly (faces by area, then uniform barycentric points), with
surface noise and optional partial occlusion. Each shape also gets one rendered view: the points
seen from a random viewpoint, splatted with a z-buffer and Lambert-shaded by their face normals
on a white background. :func:`generate` writes the ShapeNet-55 layout, so :class:`SyntheticShapes`
reads it through the real :class:`~recon.data.shapenet.ShapeNet55` loader.
"""

from __future__ import annotations

import json
import logging
import math
import os
import time
from typing import Optional

import numpy as np
from PIL import Image

from recon.atomic import atomic_write, atomic_write_json, atomic_write_text, build_once
from recon.errors import ConfigError

from .shapenet import ShapeNet55

_log = logging.getLogger("recon.data")

__all__ = ["CLASSES", "generate", "SyntheticShapes", "sample_shape", "render_view"]

_VERSION = 1

# ---------------------------------------------------------------------------------------------
# Mesh pieces: (vertices [V, 3], faces [F, 3]).


def _strip(a: np.ndarray, b: np.ndarray, closed: bool = True):
    """Quads between two vertex rings of equal length → (vertices, faces)."""
    n = len(a)
    i = np.arange(n if closed else n - 1)
    j = (i + 1) % n
    v = np.concatenate([a, b])
    f = np.concatenate([np.stack([i, j, n + i], 1), np.stack([j, n + j, n + i], 1)])
    return v, f


def _merge(parts):
    vs, fs, off = [], [], 0
    for v, f in parts:
        vs.append(v)
        fs.append(f + off)
        off += len(v)
    return np.concatenate(vs), np.concatenate(fs)


def _ring(r, y, seg):
    t = np.linspace(0, 2 * np.pi, seg, endpoint=False)
    return np.stack([r * np.cos(t), np.full(seg, y), r * np.sin(t)], 1)


def _lathe(profile, seg: int = 48):
    """Surface of revolution about y of a polyline ``[(r, y), ...]``."""
    rings = [_ring(r, y, seg) for r, y in profile]
    return _merge([_strip(rings[k], rings[k + 1]) for k in range(len(rings) - 1)])


def _box(center, size):
    c, s = np.asarray(center, float), np.asarray(size, float) / 2
    corners = np.array([[x, y, z] for x in (-1, 1) for y in (-1, 1) for z in (-1, 1)], float)
    v = c + corners * s
    f = np.array([[0, 1, 3], [0, 3, 2], [4, 6, 7], [4, 7, 5], [0, 4, 5], [0, 5, 1],
                  [2, 3, 7], [2, 7, 6], [0, 2, 6], [0, 6, 4], [1, 5, 7], [1, 7, 3]])
    return v, f


def _arc(t0, t1, n, r=1.0, cy=0.0):
    t = np.linspace(t0, t1, n)
    return [(r * math.sin(a), cy + r * math.cos(a)) for a in t]


def _sphere(rng):
    return _lathe(_arc(0, np.pi, 24))


def _ellipsoid(rng):
    v, f = _sphere(rng)
    return v * np.array([1.0, rng.uniform(0.35, 0.5), rng.uniform(0.6, 0.75)]), f


def _cube(rng):
    return _box((0, 0, 0), (1.0, rng.uniform(0.85, 1.15), rng.uniform(0.85, 1.15)))


def _cylinder(rng):
    h = rng.uniform(0.8, 1.3)
    return _lathe([(0, -h), (1, -h), (1, h), (0, h)])


def _cone(rng):
    h = rng.uniform(0.8, 1.4)
    return _lathe([(0, -h), (1, -h), (0, h)])


def _torus(rng):
    r = rng.uniform(0.25, 0.4)
    return _lathe([(1 + r * math.cos(a), r * math.sin(a)) for a in np.linspace(0, 2 * np.pi, 25)])


def _pyramid(rng):
    h = rng.uniform(1.0, 1.6)
    v = np.array([[-1, 0, -1], [1, 0, -1], [1, 0, 1], [-1, 0, 1], [0, h, 0]], float)
    f = np.array([[0, 1, 2], [0, 2, 3], [0, 1, 4], [1, 2, 4], [2, 3, 4], [3, 0, 4]])
    return v, f


def _capsule(rng):
    h = rng.uniform(0.7, 1.2)
    top = _arc(0, np.pi / 2, 10, cy=h)
    bottom = _arc(np.pi / 2, np.pi, 10, cy=-h)
    return _lathe(top + bottom)


def _prism(rng):
    h = rng.uniform(0.8, 1.5)
    tri = np.array([[math.cos(a), math.sin(a)] for a in (np.pi / 2, np.pi / 2 + 2 * np.pi / 3,
                                                         np.pi / 2 + 4 * np.pi / 3)])
    lo = np.stack([tri[:, 0], np.full(3, -h), tri[:, 1]], 1)
    hi = np.stack([tri[:, 0], np.full(3, h), tri[:, 1]], 1)
    side = _strip(lo, hi)
    caps = (np.concatenate([lo, hi]), np.array([[0, 1, 2], [3, 4, 5]]))
    return _merge([side, caps])


def _helix(rng):
    turns, pitch, rho = rng.uniform(2.5, 4.0), rng.uniform(0.35, 0.55), rng.uniform(0.12, 0.18)
    t = np.linspace(0, 2 * np.pi * turns, int(60 * turns))
    c = np.stack([np.cos(t), pitch * t / (2 * np.pi) - pitch * turns / 2, np.sin(t)], 1)
    normal = np.stack([-np.cos(t), np.zeros_like(t), -np.sin(t)], 1)
    tangent = np.stack([-np.sin(t), np.full_like(t, pitch / (2 * np.pi)), np.cos(t)], 1)
    tangent /= np.linalg.norm(tangent, axis=1, keepdims=True)
    binormal = np.cross(tangent, normal)
    a = np.linspace(0, 2 * np.pi, 12, endpoint=False)
    tube = c[:, None] + rho * (np.cos(a)[None, :, None] * normal[:, None]
                               + np.sin(a)[None, :, None] * binormal[:, None])
    return _merge([_strip(tube[k], tube[k + 1]) for k in range(len(t) - 1)])


def _plate_with_hole(rng):
    r, th = rng.uniform(0.3, 0.55), 0.06
    a = np.linspace(0, 2 * np.pi, 64, endpoint=False)
    d = np.stack([np.cos(a), np.sin(a)], 1)
    outer = d / np.abs(d).max(1, keepdims=True)
    inner = r * d
    lift = lambda p, y: np.stack([p[:, 0], np.full(len(p), y), p[:, 1]], 1)  # noqa: E731
    return _merge([_strip(lift(inner, th), lift(outer, th)), _strip(lift(inner, -th), lift(outer, -th)),
                   _strip(lift(inner, th), lift(inner, -th)), _strip(lift(outer, th), lift(outer, -th))])


def _chair(rng):
    w, d, leg = 1.0, rng.uniform(0.9, 1.1), rng.uniform(0.8, 1.1)
    back, t = rng.uniform(0.9, 1.3), 0.12
    parts = [_box((0, 0, 0), (w, t, d)), _box((0, back / 2, -d / 2 + t / 2), (w, back, t))]
    for sx in (-1, 1):
        for sz in (-1, 1):
            parts.append(_box((sx * (w / 2 - 0.06), -leg / 2, sz * (d / 2 - 0.06)), (0.1, leg, 0.1)))
    return _merge(parts)


CLASSES = {  # class name (the "describe" text) -> mesh builder
    "sphere": _sphere, "cube": _cube, "cylinder": _cylinder, "cone": _cone, "torus": _torus,
    "pyramid": _pyramid, "capsule": _capsule, "ellipsoid": _ellipsoid, "prism": _prism,
    "helix": _helix, "plate with a hole": _plate_with_hole, "chair": _chair,
}
_NAMES = list(CLASSES)


def _synset(k: int) -> str:
    return f"09{k:06d}"  # leading 0 like real synsets, so json 'catalogue' ints round-trip


# ---------------------------------------------------------------------------------------------
# Sampling and rendering.


def _rotation(rng, tilt_deg: float = 25.0) -> np.ndarray:
    def rot(axis, ang):
        c, s = math.cos(ang), math.sin(ang)
        i, j = [(1, 2), (0, 2), (0, 1)][axis]
        m = np.eye(3)
        m[i, i], m[i, j], m[j, i], m[j, j] = c, -s, s, c
        return m
    t = math.radians(tilt_deg)
    return rot(1, rng.uniform(0, 2 * np.pi)) @ rot(0, rng.uniform(-t, t)) @ rot(2, rng.uniform(-t, t))


def _sample_mesh(v, f, n, rng):
    a, b, c = v[f[:, 0]], v[f[:, 1]], v[f[:, 2]]
    cross = np.cross(b - a, c - a)
    area = np.linalg.norm(cross, axis=1)
    face = rng.choice(len(f), size=n, p=area / area.sum())
    u, w = rng.random(n), rng.random(n)
    su = np.sqrt(u)
    pts = (1 - su)[:, None] * a[face] + (su * (1 - w))[:, None] * b[face] + (su * w)[:, None] * c[face]
    normals = cross[face] / np.maximum(area[face], 1e-12)[:, None]
    return pts, normals


def sample_shape(cls: int, rng: np.random.Generator, num_points: int = 8192, noise: float = 0.01,
                 occlusion: float = 0.0):
    """One shape of class ``cls``: ``(points [num_points, 3] float32, normals [num_points, 3])``.

    Points lie in the unit sphere (centred, max radius 1, then a random scale in [0.7, 1]);
    ``noise`` is the std of the Gaussian surface noise; ``occlusion`` removes that fraction of
    the surface behind a random plane (points then re-sampled from what is left).
    """
    v, f = CLASSES[_NAMES[cls]](rng)
    v = v @ _rotation(rng).T
    extra = int(num_points / max(1e-3, 1 - occlusion)) + 16 if occlusion > 0 else num_points
    pts, nrm = _sample_mesh(v, f, extra, rng)
    if occlusion > 0:
        d = rng.normal(size=3)
        d /= np.linalg.norm(d)
        proj = pts @ d
        keep = proj <= np.quantile(proj, 1 - occlusion)
        pts, nrm = pts[keep], nrm[keep]
        pick = rng.choice(len(pts), num_points, replace=len(pts) < num_points)
        pts, nrm = pts[pick], nrm[pick]
    pts = pts - pts.mean(0)
    pts = pts / np.linalg.norm(pts, axis=1).max() * rng.uniform(0.7, 1.0)
    pts = pts + rng.normal(scale=noise, size=pts.shape)
    return pts.astype(np.float32), nrm.astype(np.float32)


def render_view(points: np.ndarray, normals: np.ndarray, rng: np.random.Generator,
                image_size: int = 224, raster: int = 112) -> Image.Image:
    """Shaded splat rendering of the points from a random viewpoint, white background."""
    az, el = rng.uniform(0, 2 * np.pi), rng.uniform(math.radians(10), math.radians(40))
    ca, sa, ce, se = math.cos(az), math.sin(az), math.cos(el), math.sin(el)
    view = np.array([[ca, 0, -sa], [0, 1, 0], [sa, 0, ca]])
    view = np.array([[1, 0, 0], [0, ce, -se], [0, se, ce]]) @ view
    p, n = points @ view.T, normals @ view.T
    light = np.array([0.4, 0.6, 0.7])
    light /= np.linalg.norm(light)
    shade = 0.25 + 0.75 * np.abs(n @ light)
    px = np.clip(((p[:, 0] * 0.45 + 0.5) * raster).astype(np.int64), 0, raster - 1)
    py = np.clip(((0.5 - p[:, 1] * 0.45) * raster).astype(np.int64), 0, raster - 1)
    order = np.argsort(p[:, 2])  # far (small z towards the camera at +z) first, near painted last
    img = np.full((raster, raster), -1.0)
    for dx in (-1, 0, 1):
        for dy in (-1, 0, 1):
            x = np.clip(px[order] + dx, 0, raster - 1)
            y = np.clip(py[order] + dy, 0, raster - 1)
            img[y, x] = shade[order]
    tint = np.array([0.55, 0.62, 0.75])
    rgb = np.where(img[..., None] < 0, 1.0, img[..., None] * tint)
    im = Image.fromarray((rgb * 255).astype(np.uint8))
    return im.resize((image_size, image_size), Image.BILINEAR) if image_size != raster else im


# ---------------------------------------------------------------------------------------------
# The cache folder.


def _manifest(num_classes, num_per_class, seed, num_points, image_size, noise, occlusion):
    return {"version": _VERSION, "classes": _NAMES[:num_classes], "num_per_class": num_per_class,
            "seed": seed, "num_points": num_points, "image_size": image_size, "noise": noise,
            "occlusion": occlusion}


def _save_npy(path: str, array: np.ndarray) -> None:
    with open(path, "wb") as f:  # a file object: np.save would append ".npy" to a temporary's name
        np.save(f, array, allow_pickle=False)


def _job(args):
    root, k, i, seed, num_points, image_size, noise, occlusion = args
    rng = np.random.default_rng([seed, k, i])
    pts, nrm = sample_shape(k, rng, num_points, noise, occlusion)
    name = f"{_synset(k)}-{k:02d}{i:05d}"
    image = render_view(pts, nrm, rng, image_size)
    # temporary + rename: a generator killed mid-file never leaves a torn file under its final name
    atomic_write(os.path.join(root, "shapenet_pc", name + ".npy"), lambda tmp: _save_npy(tmp, pts), durable=False)
    atomic_write(os.path.join(root, "shapenet_img", name + ".png"),
                 lambda tmp: image.save(tmp, format="PNG", compress_level=1), durable=False)
    return name


def _is_complete(root: str, manifest: dict) -> bool:
    path = os.path.join(root, "synthetic.json")
    if not os.path.exists(path):
        return False
    try:
        with open(path) as f:
            if json.load(f) != manifest:
                return False
        names = []
        for s in ("train", "test"):
            with open(os.path.join(root, "ShapeNet-55", f"{s}.txt")) as f:
                names += [ln.strip() for ln in f if ln.strip()]
    except (OSError, ValueError):
        return False
    expected = len(manifest["classes"]) * manifest["num_per_class"]
    return len(names) == expected and all(
        os.path.exists(os.path.join(root, "shapenet_pc", n))
        and os.path.exists(os.path.join(root, "shapenet_img", n[:-4] + ".png")) for n in names)


def generate(root: str, num_per_class: int = 100, seed: int = 0, num_points: int = 8192,
             image_size: int = 224, workers: Optional[int] = None, num_classes: int = 12,
             noise: float = 0.01, occlusion: float = 0.0, test_fraction: float = 0.2,
             verbose: bool = False) -> str:
    """Writes the synthetic set into ``root`` in the ShapeNet-55 layout; returns ``root``.

    Layout: ``shapenet_pc/<synset>-<model>.npy`` (float32 [num_points, 3]),
    ``shapenet_img/<...>.png``, ``ShapeNet-55/train.txt|test.txt`` (the last ``test_fraction``
    of each class goes to test), ``shapenet55.json`` and ``synthetic.json`` (the parameters,
    written last). A complete folder with the same parameters is reused; a partial or stale one is
    regenerated. Shape ``i`` of class ``k`` depends only on ``(seed, k, i)``.
    """
    if not 1 <= num_classes <= len(_NAMES):
        raise ConfigError(f"num_classes must be in [1, {len(_NAMES)}], got {num_classes}")
    if num_per_class < 2:
        raise ConfigError(f"num_per_class must be >= 2 (train and test), got {num_per_class}")
    if not 0 <= occlusion < 0.9:
        raise ConfigError(f"occlusion must be in [0, 0.9), got {occlusion}")
    manifest = _manifest(num_classes, num_per_class, seed, num_points, image_size, noise, occlusion)
    # One writer: the other ranks of a DDP job (or other jobs sharing ``root``) wait for the lock,
    # then find the folder complete.
    build_once(os.path.join(root, "synthetic.json"), lambda: _is_complete(root, manifest),
               lambda: _write(root, manifest, seed, num_points, image_size, workers, num_classes,
                              num_per_class, noise, occlusion, test_fraction, verbose))
    return root


def _write(root, manifest, seed, num_points, image_size, workers, num_classes, num_per_class, noise,
           occlusion, test_fraction, verbose) -> None:
    t0 = time.time()
    for d in ("shapenet_pc", "shapenet_img", "ShapeNet-55"):
        os.makedirs(os.path.join(root, d), exist_ok=True)
    meta_path = os.path.join(root, "synthetic.json")
    if os.path.exists(meta_path):  # the manifest vouches for the files: gone until they all are
        os.remove(meta_path)
    jobs = [(root, k, i, seed, num_points, image_size, noise, occlusion)
            for k in range(num_classes) for i in range(num_per_class)]
    workers = min(2, os.cpu_count() or 1) if workers is None else workers
    if workers > 1:
        import multiprocessing as mp

        ctx = mp.get_context("fork" if "fork" in mp.get_all_start_methods() else "spawn")
        with ctx.Pool(workers) as pool:
            names = pool.map(_job, jobs, chunksize=16)
    else:
        names = [_job(j) for j in jobs]
    n_test = max(1, int(round(num_per_class * test_fraction)))
    split = {"train": [], "test": []}
    for (_, k, i, *_), name in zip(jobs, names):
        split["test" if i >= num_per_class - n_test else "train"].append(name + ".npy")
    for s, lines in split.items():
        atomic_write_text(os.path.join(root, "ShapeNet-55", f"{s}.txt"), "\n".join(lines) + "\n")
    atomic_write_json(os.path.join(root, "shapenet55.json"),
                      [{"catalogue": int(_synset(k)), "describe": _NAMES[k]} for k in range(num_classes)])
    atomic_write_json(meta_path, manifest)  # last: the folder is complete once this is in place
    if verbose:
        _log.info(f"synthetic shapes: {len(jobs)} shapes in {time.time() - t0:.1f}s -> {root}")


class SyntheticShapes(ShapeNet55):
    """The synthetic set read through :class:`ShapeNet55`; generated into ``root`` on first use.

    Items are ShapeNet-55 items (``points``, ``label`` = class id, ``image``, ``text`` = class
    name, ``index``). Keyword arguments of :func:`generate` (``num_per_class``, ``seed``,
    ``occlusion`` ...) choose the set; the others go to :class:`ShapeNet55`. The clouds are
    packed into ``root/packed`` (``pack_dir``) unless ``pack_dir=None`` is passed.
    """

    name = "SyntheticShapes"

    def __init__(self, root: str, split: str = "train", npoints: int = 1024, *,
                 num_per_class: int = 100, seed: int = 0, num_points: int = 8192,
                 image_size: int = 224, num_classes: int = 12, noise: float = 0.01,
                 occlusion: float = 0.0, workers: Optional[int] = None, **kwargs):
        generate(root, num_per_class=num_per_class, seed=seed, num_points=num_points,
                 image_size=image_size, workers=workers, num_classes=num_classes, noise=noise,
                 occlusion=occlusion)
        kwargs.setdefault("pack_dir", os.path.join(root, "packed"))
        super().__init__(root, split=split, npoints=npoints, **kwargs)
