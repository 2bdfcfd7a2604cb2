"""Datasets of ReCon (one module per format), point transforms and the built-in synthetic set.

Every dataset is a torch ``Dataset`` of dicts: ``points`` FloatTensor ``[N, 3]``, ``label`` int,
``index`` int, and for ShapeNet-55 / the synthetic set also ``image`` ``[3, 224, 224]`` and
``text`` (the category description). Every dataset has ``.classes``.
"""

from ._files import CorruptSampleError
from .fewshot import ModelNetFewShot
from .modelnet import ModelNet40
from .scanobjectnn import ScanObjectNN
from .shapenet import ShapeNet55
from .synthetic import SyntheticShapes

__all__ = ["ShapeNet55", "ModelNet40", "ModelNetFewShot", "ScanObjectNN", "SyntheticShapes",
           "CorruptSampleError"]
from .shapenetpart import ShapeNetPart  # noqa: E402
from .synthetic_parts import SyntheticParts  # noqa: E402
__all__ += ["ShapeNetPart", "SyntheticParts"]
