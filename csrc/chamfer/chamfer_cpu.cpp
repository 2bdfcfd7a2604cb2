// Chamfer distance on the CPU: two brute-force nearest-neighbour passes (x -> y, y -> x), each
// O(N · M) distances per cloud, memory O(B · (N + M)); never an N × M matrix.
//
// The nearest-neighbour pass keeps a running (distance, index) minimum per SIMD lane (strict
// '<' in index order keeps each lane's first minimum) and merges the lanes with `closer`, so
// the result is the exact first minimum, NaN counted as +inf.  The returned distance is then
// recomputed from the two points, exactly as recon.ops.reference does (so a query with a NaN
// coordinate gets a NaN distance, to index 0).
#include <ATen/ATen.h>
#include <ATen/Dispatch.h>
#include <ATen/Parallel.h>
#include <torch/library.h>

#include <limits>
#include <type_traits>
#include <vector>

#include "chamfer/chamfer.h"
#include "common/checks.h"
#include "common/cpu_utils.h"
#include "common/geometry.h"
#include "common/ragged.h"
#include "common/simd.h"
#include "spatial/spatial.h"

namespace recon {
namespace cpu {

// Index of the nearest of n reference points (x/y/z arrays) to (qx, qy, qz): first minimum,
// NaN as +inf; 0 when every distance is +inf.
template <typename A>
RECON_ALWAYS_INLINE int64_t nearest_impl(const A* __restrict x, const A* __restrict y,
                                         const A* __restrict z, int64_t n, A qx, A qy, A qz) {
  using S = simd::Vec<A>;
  using V = typename S::V;
  using M = typename S::M;
  constexpr int W = S::W;
  constexpr A kInf = std::numeric_limits<A>::infinity();
  const V vx = simd::splat<V>(qx), vy = simd::splat<V>(qy), vz = simd::splat<V>(qz);
  V best0 = simd::splat<V>(kInf), best1 = best0;
  M bidx0 = simd::iota<M>(0) * 0, bidx1 = bidx0;
  M j0 = simd::iota<M>(0), j1 = simd::iota<M>(W);
  const M step = bidx0 + 2 * W;
  int64_t j = 0;
  for (; j + 2 * W <= n; j += 2 * W) {
    const V d0 = simd::nan_as_inf(
        sq_dist3(vx, vy, vz, simd::load<V>(x + j), simd::load<V>(y + j), simd::load<V>(z + j)));
    const V d1 = simd::nan_as_inf(sq_dist3(vx, vy, vz, simd::load<V>(x + j + W),
                                           simd::load<V>(y + j + W), simd::load<V>(z + j + W)));
    const M w0 = d0 < best0, w1 = d1 < best1;  // equal distances keep the earlier index
    best0 = w0 ? d0 : best0;
    bidx0 = w0 ? j0 : bidx0;
    best1 = w1 ? d1 : best1;
    bidx1 = w1 ? j1 : bidx1;
    j0 += step;
    j1 += step;
  }
  A bd = kInf;
  int64_t bi = std::numeric_limits<int64_t>::max();
  for (; j < n; ++j) {
    const A d = nan_as_inf(sq_dist3(qx, qy, qz, x[j], y[j], z[j]));
    if (d < kInf && closer(d, j, bd, bi)) {
      bd = d;
      bi = j;
    }
  }
  for (int l = 0; l < W; ++l) {
    const A k0 = best0[l], k1 = best1[l];
    const int64_t i0 = bidx0[l], i1 = bidx1[l];
    if (k0 < kInf && closer(k0, i0, bd, bi)) bd = k0, bi = i0;
    if (k1 < kInf && closer(k1, i1, bd, bi)) bd = k1, bi = i1;
  }
  return bd < kInf ? bi : 0;  // all +inf: the first minimum is index 0
}

RECON_CLONES int64_t nearest_f32(const float* x, const float* y, const float* z, int64_t n,
                                 float qx, float qy, float qz) {
  return nearest_impl<float>(x, y, z, n, qx, qy, qz);
}
RECON_CLONES int64_t nearest_f64(const double* x, const double* y, const double* z, int64_t n,
                                 double qx, double qy, double qz) {
  return nearest_impl<double>(x, y, z, n, qx, qy, qz);
}
inline int64_t nearest(const float* x, const float* y, const float* z, int64_t n, float qx,
                       float qy, float qz) {
  return nearest_f32(x, y, z, n, qx, qy, qz);
}
inline int64_t nearest(const double* x, const double* y, const double* z, int64_t n, double qx,
                       double qy, double qz) {
  return nearest_f64(x, y, z, n, qx, qy, qz);
}

// Nearest neighbour of queries [q0, q1) of one cloud among n reference points: the per-cloud
// core of one Chamfer direction (a spatial index can be dispatched beside it).
template <typename A, typename Out>
void nearest_cloud(const A* qx, const A* qy, const A* qz, int64_t q0, int64_t q1, const A* rx,
                   const A* ry, const A* rz, int64_t n, Out* dist, int64_t* idx) {
  for (int64_t q = q0; q < q1; ++q) {
    const int64_t j = nearest(rx, ry, rz, n, qx[q], qy[q], qz[q]);
    idx[q] = j;
    dist[q] = static_cast<Out>(sq_dist3(qx[q], qy[q], qz[q], rx[j], ry[j], rz[j]));
  }
}

template <typename A, typename Out>
void nearest_batch(const A* qs, int64_t B, int64_t nq, const A* rs, int64_t nr, Out* dist,
                   int64_t* idx) {
  const Chunking ch = chunk_queries(B, nq, 64);
  at::parallel_for(0, ch.items, 1, [&](int64_t w0, int64_t w1) {
    for (int64_t w = w0; w < w1; ++w) {
      const int64_t b = w / ch.per_cloud, q0 = (w % ch.per_cloud) * ch.chunk;
      const int64_t q1 = std::min(nq, q0 + ch.chunk);
      const A* q = qs + b * 3 * nq;
      const A* r = rs + b * 3 * nr;
      nearest_cloud<A, Out>(q, q + nq, q + 2 * nq, q0, q1, r, r + nr, r + 2 * nr, nr, dist + b * nq,
                            idx + b * nq);
    }
  });
}

}  // namespace cpu

std::tuple<at::Tensor, at::Tensor, at::Tensor, at::Tensor> chamfer_forward_cpu(const at::Tensor& x,
                                                                               const at::Tensor& y) {
  RECON_CHECK_POINTS(x, at::kCPU);
  RECON_CHECK_POINTS(y, at::kCPU);
  RECON_CHECK_SAME(x, y);
  const int64_t B = x.size(0), N = x.size(1), M = y.size(1);
  TORCH_CHECK(B == 0 || (N > 0 && M > 0), "chamfer_forward needs N > 0 and M > 0, got N=", N, ", M=", M);
  // SIMD lanes carry float indices as int32.
  TORCH_CHECK(N < std::numeric_limits<int32_t>::max() && M < std::numeric_limits<int32_t>::max(),
              "chamfer_forward needs fewer than 2^31 points per cloud");
  at::Tensor d_xy = at::empty({B, N}, x.options());
  at::Tensor d_yx = at::empty({B, M}, y.options());
  at::Tensor i_xy = at::empty({B, N}, x.options().dtype(at::kLong));
  at::Tensor i_yx = at::empty({B, M}, y.options().dtype(at::kLong));
  if (B == 0) return {d_xy, d_yx, i_xy, i_yx};
  // Large clouds: exact grid / kd-tree nearest neighbours (csrc/spatial/), identical results.
  if (spatial::chamfer_prefers_index(B, N, M)) return spatial::chamfer_forward_cpu(x, y, spatial::Path::kIndex);
  // Many tiny pairs (the MAE loss: 32 x 32 points per group): the spatial module's brute force
  // sweeps each N x M block once for both directions in one parallel region, without the SoA
  // copies below.  B=832, 32 x 32 on a 2-core x86-64: 2.4 ms vs 4.3 ms (1 thread); 7 ms vs
  // 28 ms with 2 threads on a busy machine, where every extra parallel region can stall.
  if (N * M <= 4096) return spatial::chamfer_forward_cpu(x, y, spatial::Path::kBrute);
  const at::Tensor xs = cpu::to_soa(x), ys = cpu::to_soa(y);
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, x.scalar_type(), "chamfer_forward_cpu", [&] {
    using A = typename acc_type<scalar_t>::type;
    cpu::nearest_batch<A, scalar_t>(xs.data_ptr<A>(), B, N, ys.data_ptr<A>(), M,
                                    d_xy.data_ptr<scalar_t>(), i_xy.data_ptr<int64_t>());
    cpu::nearest_batch<A, scalar_t>(ys.data_ptr<A>(), B, M, xs.data_ptr<A>(), N,
                                    d_yx.data_ptr<scalar_t>(), i_yx.data_ptr<int64_t>());
  });
  return {d_xy, d_yx, i_xy, i_yx};
}

std::tuple<at::Tensor, at::Tensor> chamfer_backward_cpu(const at::Tensor& grad_dxy,
                                                        const at::Tensor& grad_dyx,
                                                        const at::Tensor& x, const at::Tensor& y,
                                                        const at::Tensor& idx_xy,
                                                        const at::Tensor& idx_yx) {
  RECON_CHECK_POINTS(x, at::kCPU);
  RECON_CHECK_POINTS(y, at::kCPU);
  RECON_CHECK_SAME(x, y);
  const int64_t B = x.size(0), N = x.size(1), M = y.size(1);
  auto check_vec = [&](const at::Tensor& t, const char* name, int64_t n, bool is_idx) {
    TORCH_CHECK(t.dim() == 2 && t.size(0) == B && t.size(1) == n, name, " must have shape (", B,
                ", ", n, "), got ", t.sizes());
    TORCH_CHECK(t.device().is_cpu() && t.is_contiguous(), name, " must be a contiguous CPU tensor");
    TORCH_CHECK(is_idx ? t.scalar_type() == at::kLong : t.scalar_type() == x.scalar_type(), name,
                " has dtype ", t.dtype());
  };
  check_vec(grad_dxy, "grad_dxy", N, false);
  check_vec(grad_dyx, "grad_dyx", M, false);
  check_vec(idx_xy, "idx_xy", N, true);
  check_vec(idx_yx, "idx_yx", M, true);
  const at::ScalarType acc = cpu::acc_dtype(x.scalar_type());
  const at::Tensor xa = x.to(acc), ya = y.to(acc), gxy = grad_dxy.to(acc), gyx = grad_dyx.to(acc);
  at::Tensor gx = at::zeros({B, N, 3}, x.options().dtype(acc));
  at::Tensor gy = at::zeros({B, M, 3}, y.options().dtype(acc));
  AT_DISPATCH_FLOATING_TYPES(acc, "chamfer_backward_cpu", [&] {
    const scalar_t* xp = xa.data_ptr<scalar_t>();
    const scalar_t* yp = ya.data_ptr<scalar_t>();
    const scalar_t* g1 = gxy.data_ptr<scalar_t>();
    const scalar_t* g2 = gyx.data_ptr<scalar_t>();
    const int64_t* i1 = idx_xy.data_ptr<int64_t>();
    const int64_t* i2 = idx_yx.data_ptr<int64_t>();
    scalar_t* gxp = gx.data_ptr<scalar_t>();
    scalar_t* gyp = gy.data_ptr<scalar_t>();
    // One direction: d = |a_i - b_j|^2, j = idx[i]; grad_a[i] += 2 g (a_i - b_j), grad_b[j] -= it.
    // Scatter targets collide within a cloud, so clouds are the unit of parallelism.
    auto directed = [](const scalar_t* a, const scalar_t* b, const scalar_t* g, const int64_t* idx,
                       int64_t na, int64_t nb, scalar_t* ga, scalar_t* gb) {
      for (int64_t i = 0; i < na; ++i) {
        const int64_t j = idx[i];
        TORCH_CHECK(j >= 0 && j < nb, "chamfer_backward: index ", j, " out of range [0, ", nb, ")");
        const scalar_t two_g = g[i] + g[i];
        for (int c = 0; c < 3; ++c) {
          const scalar_t t = two_g * (a[3 * i + c] - b[3 * j + c]);
          ga[3 * i + c] += t;
          gb[3 * j + c] -= t;
        }
      }
    };
    at::parallel_for(0, B, 1, [&](int64_t b0, int64_t b1) {
      for (int64_t b = b0; b < b1; ++b) {
        directed(xp + b * N * 3, yp + b * M * 3, g1 + b * N, i1 + b * N, N, M, gxp + b * N * 3, gyp + b * M * 3);
        directed(yp + b * M * 3, xp + b * N * 3, g2 + b * M, i2 + b * M, M, N, gyp + b * M * 3, gxp + b * N * 3);
      }
    });
  });
  return {gx.to(x.scalar_type()), gy.to(y.scalar_type())};
}

}  // namespace recon

TORCH_LIBRARY_IMPL(recon, CPU, m) {
  m.impl("chamfer_forward", &recon::ragged::chamfer<&recon::chamfer_forward_cpu>);
  m.impl("chamfer_backward", &recon::chamfer_backward_cpu);
}
