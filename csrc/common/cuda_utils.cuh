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

}  // namespace cuda
}  // namespace recon
