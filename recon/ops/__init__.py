"""Point-cloud kernels: farthest point sampling, kNN, ball query, Chamfer distance, and
inverse-distance interpolation; ragged batches (``*_lengths``) and drop-in faces of pytorch3d,
pointnet2_ops and torch_cluster (:mod:`recon.ops.compat`). docs/ops.md has the op table.

Backed by the compiled extension ``recon._C`` (CPU, and CUDA where it was built); every op is
a ``torch.library`` custom op (namespace ``recon``) with a fake kernel, and the Chamfer and kNN
distances (and ball query's) have autograd, so ``torch.compile(fullgraph=True)`` traces through them. Without the
extension the same functions run :mod:`recon.ops.reference` (plain PyTorch) after a one-time
:class:`ReconFallbackWarning`; :func:`backend_info` says which is in use.

Conventions (all ops): points are ``(B, N, 3)`` float16/bfloat16/float32/float64 tensors on cpu
or cuda (any strides); indices are int64; distances are squared L2 in the input dtype
(float32 arithmetic for half types). Results equal :mod:`recon.ops.reference` exactly for
float32/float64, ties going to the lower index. An empty batch (``B == 0``) returns empty
results; a cloud without points (``N == 0``) raises ``ValueError``. NaN coordinates are
ordered as ``+inf`` distances (kNN, Chamfer) or never picked (FPS): see each function.
"""

from ._backend import ReconFallbackWarning, backend_info
from . import ragged
from .ball_query import ball_query
from .chamfer import ChamferDistanceL1, ChamferDistanceL2, chamfer_distance
from .fps import furthest_point_sample
from .gather import gather_points, group_points
from .interpolate import interpolate, inverse_distance_weights, three_nn_interpolate
from .knn import knn

__all__ = [
    "furthest_point_sample",
    "gather_points",
    "knn",
    "ball_query",
    "group_points",
    "three_nn_interpolate",
    "inverse_distance_weights",
    "interpolate",
    "ragged",
    "chamfer_distance",
    "ChamferDistanceL2",
    "ChamferDistanceL1",
    "backend_info",
    "ReconFallbackWarning",
]
