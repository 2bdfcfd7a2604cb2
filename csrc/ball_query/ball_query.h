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

#include <cstdint>
#include <tuple>

namespace recon {

std::tuple<at::Tensor, at::Tensor> ball_query_cpu(const at::Tensor& query, const at::Tensor& ref,
                                                  double radius, int64_t k,
                                                  const c10::optional<at::Tensor>& lengths1,
                                                  const c10::optional<at::Tensor>& lengths2);
std::tuple<at::Tensor, at::Tensor> ball_query_cuda(const at::Tensor& query, const at::Tensor& ref,
                                                   double radius, int64_t k,
                                                   const c10::optional<at::Tensor>& lengths1,
                                                   const c10::optional<at::Tensor>& lengths2);

// Checks shared by both devices (ValueError / TypeError naming the argument).
void check_ball_query_args(const at::Tensor& query, const at::Tensor& ref, double radius,
                           int64_t k);

// The CPU strategy (kAuto: per cloud, the cost model of ball_query_cpu.cpp).
enum class BallPath : int64_t { kAuto = 0, kGrid = 1, kBrute = 2 };
std::tuple<at::Tensor, at::Tensor> ball_query_cpu_path(const at::Tensor& query,
                                                       const at::Tensor& ref, double radius,
                                                       int64_t k,
                                                       const c10::optional<at::Tensor>& lengths1,
                                                       const c10::optional<at::Tensor>& lengths2,
                                                       BallPath path);

}  // namespace recon
