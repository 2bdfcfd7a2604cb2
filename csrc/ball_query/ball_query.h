// Ball query: for every query point, the first k reference points (in index order) whose squared
// distance ((dx*dx + dy*dy) + dz*dz, geometry.h) is < radius^2.
//
//   query    (B, M, 3) floating, contiguous
//   ref      (B, N, 3) same dtype and device, contiguous
//   radius   > 0 and finite; radius^2 is rounded once to the accumulation type
//   k        >= 1 (may exceed N)
//   lengths1, lengths2  optional int64 (B,): valid queries / reference points per cloud
//   returns dist2 (B, M, k) in the input dtype (computed in float for half/bf16; 0 in unused
//           slots), idx (B, M, k) int64 ascending (-1 in unused slots and for padded queries).
#pragma once
#include <ATen/core/Tensor.h>
#include <c10/util/Optional.h>

#include <cmath>
#include <cstdint>
#include <string>
#include <tuple>

#include "common/checks.h"

namespace recon {

std::tuple<at::Tensor, at::Tensor> ball_query_cpu(const at::Tensor& query, const at::Tensor& ref,
                                                  double radius, int64_t k,
                                                  const c10::optional<at::Tensor>& lengths1,
                                                  const c10::optional<at::Tensor>& lengths2);
std::tuple<at::Tensor, at::Tensor> ball_query_cuda(const at::Tensor& query, const at::Tensor& ref,
                                                   double radius, int64_t k,
                                                   const c10::optional<at::Tensor>& lengths1,
                                                   const c10::optional<at::Tensor>& lengths2);

// The checks of both devices' kernels (common/checks.h).
inline void check_ball_query_args(const at::Tensor& query, const at::Tensor& ref, double radius,
                                  int64_t k, c10::DeviceType device) {
  checks::cloud(query, "ball_query", "query", device);
  checks::cloud(ref, "ball_query", "ref", device);
  checks::pair(query, "query", ref, "ref", "ball_query");
  TORCH_CHECK_VALUE(radius > 0 && std::isfinite(radius),
                    "ball_query: radius must be positive and finite, got ", radius);
  checks::in_range(k, 1, checks::kMaxPoints, "ball_query", "k", "k >= 1");
}

// The private op `_ball_query_path`: path "auto" | "brute" | "grid" (ball_query_cpu.cpp).
std::tuple<at::Tensor, at::Tensor> ball_query_path_cpu(const at::Tensor& query,
                                                       const at::Tensor& ref, double radius,
                                                       int64_t k,
                                                       const c10::optional<at::Tensor>& lengths1,
                                                       const c10::optional<at::Tensor>& lengths2,
                                                       const std::string& path);

}  // namespace recon
