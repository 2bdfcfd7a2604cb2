"""One of several processes that meet on fresh folders and use what is made there on first use.

    python first_use_worker.py KIND ID ROOT [ROOT ...]

For each ROOT, in order: wait until every peer is ready (a file barrier, so the processes arrive
together), then use ROOT as a user would (KIND: ``synthetic``, ``modelnet`` or ``teachers``), read
everything back, and append one line per build this process ran to ``ROOT/builds.log``.
"""

import glob
import os
import sys
import time
import warnings

import numpy as np

PEERS = 2


def _barrier(root: str, me: str) -> None:
    os.makedirs(root, exist_ok=True)
    open(os.path.join(root, f"ready-{me}"), "w").close()
    deadline = time.time() + 120
    while len(glob.glob(os.path.join(root, "ready-*"))) < PEERS:
        if time.time() > deadline:
            raise TimeoutError(f"peers did not reach {root}")
        time.sleep(0.005)


def _count_builds(module, name: str, root: str) -> None:
    """Wraps ``module.name`` (once per process) so that every call appends a line to ``root/builds.log``."""
    real = getattr(module, name)
    real = getattr(real, "real", real)

    def counted(*args, **kwargs):
        with open(os.path.join(root, "builds.log"), "a") as f:
            f.write(f"{os.getpid()}\n")
        return real(*args, **kwargs)

    counted.real = real
    setattr(module, name, counted)


def synthetic(root: str) -> None:
    from recon.data import SyntheticShapes, synthetic as syn

    _count_builds(syn, "_write", root)
    data = os.path.join(root, "data")
    for split in ("train", "test"):
        ds = SyntheticShapes(data, split, npoints=64, num_classes=4, num_per_class=6, num_points=256,
                             image_size=32, workers=1, pack_dir=None)
        for i in range(len(ds)):
            assert ds.load_points(i).shape == (256, 3)
            ds.load_image(i).load()


def modelnet(root: str) -> None:
    from recon.data import modelnet as mn

    data = os.path.join(root, "data")  # the txt files, written by the test beforehand
    _count_builds(mn, "build_fps_cache", root)
    ds = mn.ModelNet40(data, "train", npoints=64)
    assert len(ds) == 6 and all(ds[i]["points"].shape == (64, 3) for i in range(len(ds)))


def teachers(root: str) -> None:
    from recon.data import SyntheticShapes
    from recon.teachers import TeacherFeatureCache, build_image_teacher, build_text_teacher

    ds = SyntheticShapes(os.path.join(root, "data"), "train", npoints=64, num_classes=3, num_per_class=4,
                         num_points=128, image_size=32, workers=1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        text, image = build_text_teacher("tiny", "random"), build_image_teacher("tiny", "random")
    cache = TeacherFeatureCache(os.path.join(root, "cache"), ds, text, image, views=2, progress=False)
    for store in (cache.text_store, cache.image_store):
        _count_builds(store, "open_for_write", root)
    cache.build()
    np.save(os.path.join(root, f"feats-{os.getpid()}.npy"),
            np.stack([cache.image_features(i) for i in range(len(ds))]))


if __name__ == "__main__":
    kind, me, roots = sys.argv[1], sys.argv[2], sys.argv[3:]
    for root in roots:
        _barrier(root, me)
        globals()[kind](root)
    print("ok", flush=True)
