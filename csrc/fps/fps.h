// Farthest point sampling.
//
//   xyz      (B, N, 3) floating, contiguous
//   npoint   1 <= npoint <= N
//   start_idx 0 <= start_idx < N: the first selected point
//   returns  (B, npoint) int64: idx[b, 0] = start_idx, then repeatedly the point whose squared
//            distance to the chosen set is largest (ties -> lowest index).  NaN handling: see
//            csrc/common/geometry.h (fps_min / fps_better); if no point can win, index 0.
#pragma once
#include <ATen/core/Tensor.h>

namespace recon {
at::Tensor furthest_point_sample_cpu(const at::Tensor& xyz, int64_t npoint, int64_t start_idx);
at::Tensor furthest_point_sample_cuda(const at::Tensor& xyz, int64_t npoint, int64_t start_idx);
}  // namespace recon
