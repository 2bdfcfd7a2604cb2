// Arithmetic shared by the CPU and CUDA kernels.
//
// Both devices must produce bit-identical distances so that CPU tests vouch for the
// GPU path and so that ties are broken identically everywhere.  Two rules follow:
//  * the squared distance is always ((dx*dx + dy*dy) + dz*dz), each operation rounded
//    on its own (no fused multiply-add: nvcc would otherwise contract it, and the
//    plain-PyTorch reference never does);
//  * an ordering between candidates is (distance, index) lexicographic, with NaN
//    distances ordered as +inf, so results never depend on visiting order.
#pragma once

#include <cstdint>
#include <limits>

#if defined(__CUDACC__)
#define RECON_HD __host__ __device__ __forceinline__
#else
#define RECON_HD inline
#endif

namespace recon {

// Accumulation type: half and bfloat16 compute in float, float and double in themselves.
template <typename T> struct acc_type { using type = float; };
template <> struct acc_type<double> { using type = double; };

// One IEEE operation, rounded to nearest: the *_rn intrinsics on the device (nvcc may not fuse
// them into an FMA), the plain operation on the host (the CPU build uses -ffp-contract=off).
#if defined(__CUDA_ARCH__)
#define RECON_RN(device_op, host_expr) device_op(a, b)
#else
#define RECON_RN(device_op, host_expr) (host_expr)
#endif
RECON_HD float mul_rn(float a, float b) { return RECON_RN(__fmul_rn, a * b); }
RECON_HD double mul_rn(double a, double b) { return RECON_RN(__dmul_rn, a * b); }
RECON_HD float add_rn(float a, float b) { return RECON_RN(__fadd_rn, a + b); }
RECON_HD double add_rn(double a, double b) { return RECON_RN(__dadd_rn, a + b); }
#undef RECON_RN

#if !defined(__CUDACC__)
// GCC/Clang vector types (csrc/common/simd.h) on the CPU: the same IEEE operations lane-wise
// (the CPU build uses -ffp-contract=off, so nothing is fused).
template <typename V> __attribute__((always_inline)) inline V mul_rn(V a, V b) { return a * b; }
template <typename V> __attribute__((always_inline)) inline V add_rn(V a, V b) { return a + b; }
#endif

// Squared Euclidean distance, in the exact operation order of recon.ops.reference.
template <typename A>
RECON_HD A sq_dist3(A ax, A ay, A az, A bx, A by, A bz) {
  const A dx = ax - bx, dy = ay - by, dz = az - bz;
  return add_rn(add_rn(mul_rn(dx, dx), mul_rn(dy, dy)), mul_rn(dz, dz));
}

// NaN sorts as +inf: a NaN point is never anybody's nearest neighbour unless nothing else is left.
template <typename A>
RECON_HD A nan_as_inf(A d) {
  return d != d ? std::numeric_limits<A>::infinity() : d;
}

// (d, i) strictly before (bd, bi): smaller distance, ties to the lower index.
template <typename A>
RECON_HD bool closer(A d, int64_t i, A bd, int64_t bi) {
  return d < bd || (d == bd && i < bi);
}

// Insert (d, i) into the ascending list dist[0..k) / idx[0..k) if it belongs there.
// The list starts filled with (+inf, INT64_MAX) so that +inf (and NaN) candidates still fill
// it in index order.  Cost O(k) per accepted insertion; rejections cost one comparison.
template <typename A>
RECON_HD void topk_insert(A* dist, int64_t* idx, int k, A d, int64_t i) {
  d = nan_as_inf(d);
  if (!closer(d, i, dist[k - 1], idx[k - 1])) return;
  int j = k - 1;
  while (j > 0 && closer(d, i, dist[j - 1], idx[j - 1])) {
    dist[j] = dist[j - 1];
    idx[j] = idx[j - 1];
    --j;
  }
  dist[j] = d;
  idx[j] = i;
}

template <typename A>
RECON_HD void topk_init(A* dist, int64_t* idx, int k) {
  for (int j = 0; j < k; ++j) {
    dist[j] = std::numeric_limits<A>::infinity();
    idx[j] = std::numeric_limits<int64_t>::max();
  }
}

// FPS running minimum: NaN propagates, so a point with a NaN coordinate ends with a NaN key
// and is never the arg-max (see fps_better).
template <typename A>
RECON_HD A fps_min(A running, A d) {
  return (d < running || d != d) ? d : running;
}

// FPS arg-max order: larger key first, ties to the lower index; NaN never wins.
template <typename A>
RECON_HD bool fps_better(A key, int64_t i, A best, int64_t bi) {
  return key > best || (key == best && i < bi);
}

}  // namespace recon
