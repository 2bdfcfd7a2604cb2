// Helpers shared by the CUDA kernels only: launch shapes, loading points, and the tiled scan of
// the kNN and Chamfer kernels (the arithmetic itself lives in geometry.h; input checks in
// checks.h).
#pragma once

#include <cstdint>
#include <limits>

#include "common/geometry.h"

namespace recon {
namespace cuda {

// Threads per block of the one-thread-per-query kernels (kNN, Chamfer) and the length of the
// reference tile they stage through shared memory: one tile point per thread.
constexpr int kQueryBlock = 128;

// Index sentinel that loses every (distance, index) comparison against a real point.
constexpr int64_t kNoIndex = std::numeric_limits<int64_t>::max();

inline int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }

// How a target cloud of n points is split into chunks scanned by separate blocks (so that few
// query tiles still fill the GPU): at most `want` chunks of whole tiles of `threads` points, at
// least 4 tiles each; `splits` = ceil(n / chunk) >= 1.
struct Split {
  int64_t splits, chunk;
};
inline Split split_targets(int64_t n, int threads, int64_t want) {
  int64_t splits = want < ceil_div(n, 4 * threads) ? want : ceil_div(n, 4 * threads);
  if (splits < 1) splits = 1;
  int64_t chunk = ceil_div(ceil_div(n, splits), threads) * threads;
  if (chunk > n) chunk = n;
  return {ceil_div(n, chunk), chunk};
}

// Point j of an AoS (n, 3) array of T, in the accumulation type A.
template <typename A, typename T>
__device__ __forceinline__ void load_point(const T* p, int64_t j, A& x, A& y, A& z) {
  x = static_cast<A>(p[3 * j]);
  y = static_cast<A>(p[3 * j + 1]);
  z = static_cast<A>(p[3 * j + 2]);
}

// Stages points [base, base + n) of the AoS cloud p into the block's shared-memory tile, one per
// thread (n <= blockDim.x).  The first barrier waits until every thread has read the previous
// tile, the second until this one is complete: every thread of the block must call it.
template <typename A, typename T>
__device__ __forceinline__ void stage_tile(const T* p, int base, int n, A* sx, A* sy, A* sz) {
  __syncthreads();
  if (static_cast<int>(threadIdx.x) < n) {
    load_point(p, base + threadIdx.x, sx[threadIdx.x], sy[threadIdx.x], sz[threadIdx.x]);
  }
  __syncthreads();
}

// The work of one block of the split query kernels (kNN, Chamfer): block x = ((b *
// tiles_per_cloud + tile) * splits + split).  The thread's query is point q of cloud b, active
// when q < nq, at row b * nq + q of the flattened queries, with coordinates (qx, qy, qz) (zero
// when inactive); the block scans the target points [begin, end) of cloud b's nt points.
template <typename A>
struct SplitBlock {
  int64_t b, row;
  int split, begin, end;
  bool active;
  A qx = A(0), qy = A(0), qz = A(0);

  template <typename T>
  __device__ __forceinline__ SplitBlock(const T* queries, int nq, int nt, int64_t tiles_per_cloud,
                                        int splits, int chunk) {
    const int64_t blk = blockIdx.x / splits;
    split = static_cast<int>(blockIdx.x % splits);
    b = blk / tiles_per_cloud;
    const int64_t q = (blk % tiles_per_cloud) * blockDim.x + threadIdx.x;
    active = q < nq;
    row = b * nq + q;
    if (active) load_point(queries, row, qx, qy, qz);
    begin = split * chunk;  // < nt: splits = ceil(nt / chunk)
    end = static_cast<int>(min(static_cast<int64_t>(nt), static_cast<int64_t>(begin) + chunk));
  }

  // Offers the block's target points, in index order, to `visit(distance, index)` of every
  // active thread, the distance NaN-as-+inf (geometry.h).  The targets (cloud b of the AoS
  // array t) pass through the shared tile sx/sy/sz of blockDim.x points, one tile at a time;
  // every thread of the block must call it.
  template <typename T, typename Visit>
  __device__ __forceinline__ void scan(const T* t, A* sx, A* sy, A* sz, Visit&& visit) const {
    for (int base = begin; base < end; base += blockDim.x) {
      const int n = min(static_cast<int>(blockDim.x), end - base);
      stage_tile(t, base, n, sx, sy, sz);
      if (!active) continue;
      for (int i = 0; i < n; ++i) visit(nan_as_inf(sq_dist3(qx, qy, qz, sx[i], sy[i], sz[i])), base + i);
    }
  }
};

// Smallest multiple of 32 that is >= n, clamped to [32, cap].
inline int warp_round(int64_t n, int cap) {
  int64_t r = ceil_div(n, 32) * 32;
  if (r < 32) r = 32;
  if (r > cap) r = cap;
  return static_cast<int>(r);
}

}  // namespace cuda
}  // namespace recon
