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

#include <string>

#include "common/checks.h"

namespace recon {

// The checks of both devices' kernels (common/checks.h).
inline void check_fps_args(const at::Tensor& xyz, int64_t npoint, int64_t start_idx,
                           c10::DeviceType device) {
  const char* op = "furthest_point_sample";
  checks::cloud(xyz, op, "xyz", device);
  const int64_t N = xyz.size(1);
  checks::in_range(npoint, 1, N, op, "npoint", "1 <= npoint <= N = ", N);
  checks::in_range(start_idx, 0, N - 1, op, "start_idx", "0 <= start_idx < N = ", N);
}

at::Tensor furthest_point_sample_cpu(const at::Tensor& xyz, int64_t npoint, int64_t start_idx);
// The private op `_fps_path`: path "auto" | "brute" | "index" (kd-tree buckets; spatial/plan.h).
at::Tensor fps_path_cpu(const at::Tensor& xyz, int64_t npoint, int64_t start_idx,
                        const std::string& path);
at::Tensor furthest_point_sample_cuda(const at::Tensor& xyz, int64_t npoint, int64_t start_idx);

}  // namespace recon
