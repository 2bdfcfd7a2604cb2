// Small helpers of the spatial kernels: input checks and the accumulation-type view of a cloud.
#pragma once

#include <ATen/ATen.h>
#include <c10/util/Exception.h>

#include <string>

#include "spatial/grid.h"
#include "spatial/spatial.h"

namespace recon {
namespace spatial {

inline void check_cloud(const at::Tensor& t, const char* name) {
  TORCH_CHECK_VALUE(t.dim() == 3 && t.size(2) == 3, name, " must have shape (B, N, 3), got ",
                    t.sizes());
  TORCH_CHECK_TYPE(at::isFloatingType(t.scalar_type()), name,
                   " must be a floating tensor (float16/bfloat16/float32/float64), got ",
                   t.scalar_type());
  TORCH_CHECK_VALUE(t.size(1) < (int64_t(1) << 31), name,
                    " may hold at most 2^31 - 1 points per cloud, got ", t.size(1));
  TORCH_CHECK_VALUE(t.device().is_cpu(), name, " must be a CPU tensor, got ", t.device());
}

// float64 stays double, everything else is computed in float (geometry.h acc_type).
inline at::Tensor acc_view(const at::Tensor& t) {
  const auto dt = t.scalar_type() == at::kDouble ? at::kDouble : at::kFloat;
  return t.to(dt).contiguous();
}

inline IndexKind index_kind(Path path) {
  if (path == Path::kTree) return IndexKind::kTree;
  if (path == Path::kGrid) return IndexKind::kGrid;
  return IndexKind::kAuto;
}

}  // namespace spatial
}  // namespace recon
