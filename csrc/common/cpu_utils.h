// Host-side helpers for the CPU kernels.
#pragma once
#include <ATen/ATen.h>
#include <ATen/Parallel.h>

#include <algorithm>
#include <cstdint>

// Hot loops are compiled twice on x86-64 (AVX2+FMA and baseline) and picked at load time, so
// one binary runs everywhere and still uses 8-wide vectors where the CPU has them.  The flags
// keep -ffp-contract=off, so enabling FMA in the ISA never changes the rounding.
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__) && !defined(RECON_NO_CLONES)
#define RECON_CLONES __attribute__((target_clones("arch=x86-64-v3", "default")))
#else
#define RECON_CLONES
#endif

#if defined(__GNUC__)
#define RECON_ALWAYS_INLINE __attribute__((always_inline)) inline
#else
#define RECON_ALWAYS_INLINE inline
#endif

namespace recon {
namespace cpu {

// The accumulation dtype of an input dtype (see acc_type in geometry.h).
inline at::ScalarType acc_dtype(at::ScalarType t) {
  return t == at::kDouble ? at::kDouble : at::kFloat;
}

// (B, N, 3) any floating dtype -> (B, N, 3) contiguous in the accumulation dtype: the layout the
// spatial indexes are built from (a no-op for contiguous float32 / float64).
inline at::Tensor to_acc(const at::Tensor& pts) {
  return pts.to(acc_dtype(pts.scalar_type())).contiguous();
}

// (B, N, 3) any floating dtype -> (B, 3, N) contiguous in the accumulation dtype: per-cloud x, y,
// z arrays that the inner loops stream through with unit stride.  O(B·N) extra memory.
inline at::Tensor to_soa(const at::Tensor& pts) {
  return pts.to(acc_dtype(pts.scalar_type())).transpose(1, 2).contiguous();
}

// Splits B clouds of `n` queries each into work items (cloud, [begin, end)) so that small
// batches still feed every thread; a chunk never drops below `min_chunk` queries.
struct Chunking {
  int64_t chunk;
  int64_t per_cloud;
  int64_t items;
};

inline Chunking chunk_queries(int64_t B, int64_t n, int64_t min_chunk = 32) {
  const int64_t threads = std::max<int64_t>(1, at::get_num_threads());
  const int64_t want_per_cloud = std::max<int64_t>(1, (4 * threads + B - 1) / std::max<int64_t>(B, 1));
  int64_t chunk = (n + want_per_cloud - 1) / want_per_cloud;
  chunk = std::max<int64_t>(std::min<int64_t>(min_chunk, n), chunk);
  chunk = std::max<int64_t>(chunk, 1);
  const int64_t per_cloud = (n + chunk - 1) / chunk;
  return {chunk, per_cloud, B * per_cloud};
}

}  // namespace cpu
}  // namespace recon
