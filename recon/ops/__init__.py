"""Point-cloud kernels: FPS, kNN grouping, Chamfer distance.

Placeholder face: re-exports the plain-PyTorch reference until the compiled ops land
(issue #2 replaces this module with the kernel-backed one, same names and signatures).
"""

from .reference import (  # noqa: F401
    ChamferDistanceL1,
    ChamferDistanceL2,
    chamfer_distance,
    furthest_point_sample,
    gather_points,
    group_points,
    knn,
)
