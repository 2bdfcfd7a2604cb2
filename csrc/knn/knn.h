// Exact k nearest neighbours.
//
//   query  (B, M, 3) floating, contiguous
//   ref    (B, N, 3) same dtype and device, contiguous
//   k      1 <= k <= N
//   returns dist2 (B, M, k) in the input dtype (accumulated in float for half/bf16),
//           idx   (B, M, k) int64; ascending by (distance, index); NaN distances count as +inf.
#pragma once
#include <ATen/core/Tensor.h>

#include <string>
#include <tuple>

#include "common/checks.h"

namespace recon {

// The checks of both devices' kernels (common/checks.h).
inline void check_knn_args(const at::Tensor& query, const at::Tensor& ref, int64_t k,
                           c10::DeviceType device) {
  checks::cloud(query, "knn", "query", device);
  checks::cloud(ref, "knn", "ref", device);
  checks::pair(query, "query", ref, "ref", "knn");
  checks::in_range(k, 1, ref.size(1), "knn", "k", "1 <= k <= N = ", ref.size(1),
                   " (the number of reference points)");
}

std::tuple<at::Tensor, at::Tensor> knn_cpu(const at::Tensor& query, const at::Tensor& ref,
                                           int64_t k);
// The private op `_knn_path`: path "auto" | "brute" | "index" | "tree" | "grid" (spatial/plan.h).
std::tuple<at::Tensor, at::Tensor> knn_path_cpu(const at::Tensor& query, const at::Tensor& ref,
                                                int64_t k, const std::string& path);
std::tuple<at::Tensor, at::Tensor> knn_cuda(const at::Tensor& query, const at::Tensor& ref,
                                            int64_t k);

}  // namespace recon
