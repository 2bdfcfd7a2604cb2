"""The image side of the official pretraining data: read a rendered view, augment, normalise.

Official pipeline (docs/official.md §6): ``cv2.imread`` (so channels are **BGR**, never converted)
→ ToPILImage → resize 256×256 (Pillow's default filter, bicubic) → RandomHorizontalFlip →
RandomResizedCrop(224, scale=(0.64, 1), bicubic: crop, then resize the crop) → RandAugment (FixMatch
pool, n=2, m=10; translations are whole-pixel shifts) with a 16-px Cutout always applied → ToTensor →
ImageNet Normalize. Pillow reads the file here; ``bgr=True`` (default) reproduces cv2's channel
order. Randomness comes from a ``random.Random`` (default: the module RNG, which torch seeds per
DataLoader worker), so feature caches can replay a view exactly.
"""

from __future__ import annotations

import random
from typing import Optional

import numpy as np
import torch
from PIL import Image, ImageDraw, ImageEnhance, ImageOps

__all__ = ["read_image", "ImageTransform", "train_transform", "eval_transform", "crop_params",
           "IMAGENET_MEAN", "IMAGENET_STD"]

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def read_image(path: str, bgr: bool = True) -> Image.Image:
    """Reads an image as 3-channel 8-bit; with ``bgr`` the channels are swapped like ``cv2.imread``.

    Alpha is dropped without compositing, as cv2's IMREAD_COLOR does.
    """
    with Image.open(path) as im:
        im.load()
        if im.mode not in ("RGB", "L", "RGBA", "P", "LA", "I;16", "I"):
            raise ValueError(f"unsupported image mode {im.mode!r} in {path!r}")
        if im.mode in ("I;16", "I"):
            arr = np.asarray(im, dtype=np.float64)
            im = Image.fromarray((arr / max(arr.max(), 1) * 255).astype(np.uint8))
        rgb = im.convert("RGB")
    if bgr:
        rgb = Image.fromarray(np.ascontiguousarray(np.asarray(rgb)[:, :, ::-1]))
    return rgb


# RandAugment pool of FixMatch, magnitudes on the 0..10 scale: (op, max_v, bias).
def _fp(v, max_v):
    return float(v) * max_v / 10


def _ip(v, max_v):
    return int(v * max_v / 10)


def _signed(x, rng):
    return -x if rng.random() < 0.5 else x


def _autocontrast(img, v, max_v, bias, rng):
    return ImageOps.autocontrast(img)


def _enhance(kind):
    def op(img, v, max_v, bias, rng):
        return getattr(ImageEnhance, kind)(img).enhance(_fp(v, max_v) + bias)
    return op


def _equalize(img, v, max_v, bias, rng):
    return ImageOps.equalize(img)


def _identity(img, v, max_v, bias, rng):
    return img


def _posterize(img, v, max_v, bias, rng):
    return ImageOps.posterize(img, _ip(v, max_v) + bias)


def _rotate(img, v, max_v, bias, rng):
    return img.rotate(_signed(_ip(v, max_v) + bias, rng))


def _shear(axis):
    def op(img, v, max_v, bias, rng):
        s = _signed(_fp(v, max_v) + bias, rng)
        m = (1, s, 0, 0, 1, 0) if axis == "x" else (1, 0, 0, s, 1, 0)
        return img.transform(img.size, Image.AFFINE, m)
    return op


def _solarize(img, v, max_v, bias, rng):
    return ImageOps.solarize(img, 256 - (_ip(v, max_v) + bias))


def _translate(axis):
    def op(img, v, max_v, bias, rng):
        # FixMatch truncates the offset to whole pixels: int(v * size)
        t = int(_signed(_fp(v, max_v) + bias, rng) * img.size[0 if axis == "x" else 1])
        m = (1, 0, t, 0, 1, 0) if axis == "x" else (1, 0, 0, 0, 1, t)
        return img.transform(img.size, Image.AFFINE, m)
    return op


_POOL = [
    (_autocontrast, None, None), (_enhance("Brightness"), 0.9, 0.05),
    (_enhance("Color"), 0.9, 0.05), (_enhance("Contrast"), 0.9, 0.05), (_equalize, None, None),
    (_identity, None, None), (_posterize, 4, 4), (_rotate, 30, 0),
    (_enhance("Sharpness"), 0.9, 0.05), (_shear("x"), 0.3, 0), (_shear("y"), 0.3, 0),
    (_solarize, 256, 0), (_translate("x"), 0.3, 0), (_translate("y"), 0.3, 0),
]


def _cutout(img: Image.Image, size: int, rng: random.Random) -> Image.Image:
    w, h = img.size
    x0, y0 = rng.uniform(0, w), rng.uniform(0, h)
    x0, y0 = int(max(0, x0 - size / 2.0)), int(max(0, y0 - size / 2.0))
    x1, y1 = int(min(w, x0 + size)), int(min(h, y0 + size))
    img = img.copy()
    ImageDraw.Draw(img).rectangle((x0, y0, x1, y1), (127, 127, 127))
    return img


def _rand_augment(img: Image.Image, n: int, m: int, rng: random.Random) -> Image.Image:
    for op, max_v, bias in rng.choices(_POOL, k=n):
        v = rng.randint(1, m - 1)  # numpy randint(1, m): 1..m-1
        if rng.random() < 0.5:
            img = op(img, v, max_v, bias, rng)
    return _cutout(img, 16, rng)


def crop_params(w: int, h: int, scale, ratio, rng) -> tuple[int, int, int, int]:
    """RandomResizedCrop's box ``(x, y, width, height)`` for a ``w``×``h`` image, drawn from ``rng``
    with torchvision's rule (10 tries at a random area and log-uniform ratio, then a centre crop)."""
    area = w * h
    log_r = (np.log(ratio[0]), np.log(ratio[1]))
    for _ in range(10):
        target = area * rng.uniform(*scale)
        ar = float(np.exp(rng.uniform(*log_r)))
        cw, ch = int(round(np.sqrt(target * ar))), int(round(np.sqrt(target / ar)))
        if 0 < cw <= w and 0 < ch <= h:
            x, y = rng.randint(0, w - cw), rng.randint(0, h - ch)
            break
    else:  # fallback: central crop at the clamped ratio
        in_r = w / h
        if in_r < ratio[0]:
            cw, ch = w, int(round(w / ratio[0]))
        elif in_r > ratio[1]:
            ch, cw = h, int(round(h * ratio[1]))
        else:
            cw, ch = w, h
        x, y = (w - cw) // 2, (h - ch) // 2
    return x, y, cw, ch


def _random_resized_crop(img, size, scale, ratio, rng):
    x, y, cw, ch = crop_params(img.size[0], img.size[1], scale, ratio, rng)
    # crop, then resize (torchvision's resized_crop); resize(box=...) would filter across the box edge
    return img.crop((x, y, x + cw, y + ch)).resize((size, size), Image.BICUBIC)


_MEAN255 = np.array(IMAGENET_MEAN, np.float32) * 255
_INV_STD255 = 1.0 / (np.array(IMAGENET_STD, np.float32) * 255)


def _to_tensor(img: Image.Image) -> torch.Tensor:
    # ToTensor + Normalize in numpy: single-threaded, no intra-op thread start-up per image
    arr = (np.asarray(img, dtype=np.float32) - _MEAN255) * _INV_STD255
    return torch.from_numpy(np.ascontiguousarray(arr.transpose(2, 0, 1)))


class ImageTransform:
    """PIL image → normalised FloatTensor ``[3, size, size]``.

    Args:
        train: the official random pipeline (flip, RandomResizedCrop, RandAugment + Cutout);
            otherwise deterministic resize 256 → centre crop.
        size: output side (224).
        randaugment: apply RandAugment + Cutout in train mode (official: yes).
    """

    def __init__(self, train: bool = True, size: int = 224, resize: int = 256,
                 crop_scale=(0.64, 1.0), randaugment: bool = True, n: int = 2, m: int = 10):
        self.train, self.size, self.resize = train, size, resize
        self.crop_scale, self.randaugment, self.n, self.m = tuple(crop_scale), randaugment, n, m

    def __call__(self, img: Image.Image, rng: Optional[random.Random] = None) -> torch.Tensor:
        rng = rng if rng is not None else random  # the module works as an RNG
        img = img.resize((self.resize, self.resize), Image.BICUBIC)  # Pillow's default filter, as the official
        if not self.train:
            off = (self.resize - self.size) // 2
            return _to_tensor(img.crop((off, off, off + self.size, off + self.size)))
        if rng.random() < 0.5:
            img = img.transpose(Image.FLIP_LEFT_RIGHT)
        img = _random_resized_crop(img, self.size, self.crop_scale, (3 / 4, 4 / 3), rng)
        if self.randaugment:
            img = _rand_augment(img, self.n, self.m, rng)
        return _to_tensor(img)

    def __repr__(self) -> str:
        # part of the teacher-cache key: say the filters, so caches of the old bilinear pipeline are not reused
        return (f"ImageTransform(train={self.train}, size={self.size}, resize={self.resize} bicubic, "
                f"crop_scale={self.crop_scale} crop-then-resize, randaugment={self.randaugment} int-translate)")


def train_transform(size: int = 224) -> ImageTransform:
    """The official pretraining image pipeline."""
    return ImageTransform(train=True, size=size)


def eval_transform(size: int = 224) -> ImageTransform:
    """Deterministic: resize 256×256 → centre crop ``size`` → normalise."""
    return ImageTransform(train=False, size=size)
