"""Drop-in faces of other point-cloud libraries, built on :mod:`recon.ops`.

One module per peer, with the peer's names, argument order, layouts, index dtypes and padding:
``recon.ops.compat.pytorch3d`` (``pytorch3d.ops``), ``recon.ops.compat.pointnet2``
(``pointnet2_ops.pointnet2_utils``) and ``recon.ops.compat.torch_cluster``. Each works on CPU and
CUDA, in float16/bfloat16/float32/float64, for 3-D points. docs/ops.md lists, per peer, every
behaviour that differs and how to get the peer's.
"""
