// Helpers shared by the CUDA kernels only (the arithmetic itself lives in geometry.h).
#pragma once

#include <ATen/core/Tensor.h>
#include <c10/util/Exception.h>

#include <cstdint>
#include <limits>

namespace recon {
namespace cuda {

// Threads per block of the one-thread-per-query kernels (kNN, Chamfer) and the length of the
// reference tile they stage through shared memory: one tile point per thread.
constexpr int kQueryBlock = 128;

// Index sentinel that loses every (distance, index) comparison against a real point.
constexpr int64_t kNoIndex = std::numeric_limits<int64_t>::max();

inline int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }

// Smallest multiple of 32 that is >= n, clamped to [32, cap].
inline int warp_round(int64_t n, int cap) {
  int64_t r = ceil_div(n, 32) * 32;
  if (r < 32) r = 32;
  if (r > cap) r = cap;
  return static_cast<int>(r);
}

// A (B, n, 3) floating point cloud on a CUDA device, contiguous.  Errors name the op and the
// argument; shape and value problems raise ValueError, dtype problems TypeError.
inline void check_cloud(const at::Tensor& t, const char* op, const char* name) {
  TORCH_CHECK_VALUE(t.is_cuda(), op, ": ", name, " must be a CUDA tensor, got device ", t.device());
  TORCH_CHECK_VALUE(t.dim() == 3 && t.size(2) == 3, op, ": ", name,
                    " must have shape (B, N, 3), got ", t.sizes());
  TORCH_CHECK_TYPE(at::isFloatingType(t.scalar_type()), op, ": ", name,
                   " must be a floating tensor (float16, bfloat16, float32 or float64), got ",
                   t.scalar_type());
  TORCH_CHECK_VALUE(t.is_contiguous(), op, ": ", name, " must be contiguous");
  TORCH_CHECK_VALUE(t.size(1) < std::numeric_limits<int32_t>::max(), op, ": ", name,
                    " has too many points (", t.size(1), "); at most 2^31 - 2 are supported");
}

// b on the same device, with the same dtype and batch size as a.
inline void check_pair(const at::Tensor& a, const char* name_a, const at::Tensor& b,
                       const char* name_b, const char* op) {
  TORCH_CHECK_VALUE(a.device() == b.device(), op, ": ", name_a, " and ", name_b,
                    " must be on the same device, got ", a.device(), " and ", b.device());
  TORCH_CHECK_TYPE(a.scalar_type() == b.scalar_type(), op, ": ", name_a, " and ", name_b,
                   " must have the same dtype, got ", a.scalar_type(), " and ", b.scalar_type());
  TORCH_CHECK_VALUE(a.size(0) == b.size(0), op, ": ", name_a, " and ", name_b,
                    " must have the same batch size, got ", a.size(0), " and ", b.size(0));
}

}  // namespace cuda
}  // namespace recon
