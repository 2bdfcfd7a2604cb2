// Exact k nearest neighbours.
//
//   query  (B, M, 3) floating, contiguous
//   ref    (B, N, 3) same dtype and device, contiguous
//   k      1 <= k <= N
//   returns dist2 (B, M, k) in the input dtype (accumulated in float for half/bf16),
//           idx   (B, M, k) int64; ascending by (distance, index); NaN distances count as +inf.
#pragma once
#include <ATen/core/Tensor.h>
#include <tuple>

namespace recon {
std::tuple<at::Tensor, at::Tensor> knn_cpu(const at::Tensor& query, const at::Tensor& ref, int64_t k);
std::tuple<at::Tensor, at::Tensor> knn_cuda(const at::Tensor& query, const at::Tensor& ref, int64_t k);
}  // namespace recon
