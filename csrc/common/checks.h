// Input checks shared by the kernels' host code.  They are the last line of defence: the
// Python face (recon/ops/) validates first and raises ValueError/TypeError with the argument's
// name; these TORCH_CHECKs keep a direct torch.ops.recon.* call from reading out of bounds.
#pragma once
#include <ATen/core/Tensor.h>
#include <c10/util/Exception.h>

#define RECON_CHECK_POINTS(t, dev)                                                            \
  TORCH_CHECK((t).dim() == 3 && (t).size(2) == 3, #t " must have shape (B, N, 3), got ",    \
              (t).sizes());                                                                  \
  TORCH_CHECK((t).is_floating_point(), #t " must be a floating tensor, got ", (t).dtype()); \
  TORCH_CHECK((t).device().type() == (dev), #t " must be on ", (dev), ", got ", (t).device()); \
  TORCH_CHECK((t).is_contiguous(), #t " must be contiguous")

#define RECON_CHECK_SAME(a, b)                                                                \
  TORCH_CHECK((a).scalar_type() == (b).scalar_type(), #a " and " #b " must share a dtype, got ", \
              (a).dtype(), " and ", (b).dtype());                                            \
  TORCH_CHECK((a).device() == (b).device(), #a " and " #b " must be on one device, got ",    \
              (a).device(), " and ", (b).device());                                          \
  TORCH_CHECK((a).size(0) == (b).size(0), #a " and " #b " must have the same batch size, got ", \
              (a).size(0), " and ", (b).size(0))
