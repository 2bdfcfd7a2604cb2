// Chamfer distance on the CPU: the inputs are checked once, then one cost-model choice
// (spatial/plan.h) between two nearest-neighbour searches that return the same bits, each run
// both ways (x -> y, y -> x), memory O(B · (N + M)), never an N × M matrix:
//  * brute force, O(N · M) distances per cloud: a running (distance, index) minimum per SIMD
//    lane (strict '<' in index order keeps each lane's first minimum), lanes merged with
//    `closer`, so the result is the exact first minimum, NaN counted as +inf;
//  * an index per cloud and side (uniform grid or kd-tree, spatial/grid.h), queries walked in
//    their own index's order so that consecutive queries are neighbours and the previous answer
//    is a tight first candidate.
// Either way the returned distance is recomputed from the two points, exactly as
// recon.ops.reference does (so a query with a NaN coordinate gets a NaN distance, to index 0).
// The backward needs no search: it reuses the forward's indices.
#include <ATen/ATen.h>
#include <ATen/Dispatch.h>
#include <ATen/Parallel.h>
#include <torch/library.h>

#include <limits>
#include <vector>

#include "chamfer/chamfer.h"
#include "common/cpu_utils.h"
#include "common/geometry.h"
#include "common/simd.h"
#include "spatial/grid.h"
#include "spatial/plan.h"
#include "spatial/search.h"

namespace recon {
namespace {

// ---------------------------------------------------------------------------------------------
// Brute force

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

// One direction of one cloud pair: queries [q0, q1) of the SoA cloud q (nq points) among the nr
// points of the SoA cloud r.
template <typename A, typename Out>
void nearest_range(const A* q, int64_t nq, int64_t q0, int64_t q1, const A* r, int64_t nr,
                   Out* dist, int64_t* idx) {
  const A *rx = r, *ry = r + nr, *rz = r + 2 * nr;
  for (int64_t i = q0; i < q1; ++i) {
    const A qx = q[i], qy = q[nq + i], qz = q[2 * nq + i];
    const int64_t j = nearest(rx, ry, rz, nr, qx, qy, qz);
    idx[i] = j;
    dist[i] = static_cast<Out>(sq_dist3(qx, qy, qz, rx[j], ry[j], rz[j]));
  }
}

// Both directions in one parallel region: many tiny pairs (the MAE loss: 832 pairs of 32
// points) would otherwise pay a second region, which can stall on a busy machine.
template <typename scalar_t>
void chamfer_brute(const at::Tensor& x, const at::Tensor& y, at::Tensor& d_xy, at::Tensor& d_yx,
                   at::Tensor& i_xy, at::Tensor& i_yx) {
  using A = typename acc_type<scalar_t>::type;
  const int64_t B = x.size(0), N = x.size(1), M = y.size(1);
  const at::Tensor xs = cpu::to_soa(x), ys = cpu::to_soa(y);
  const A* xp = xs.data_ptr<A>();
  const A* yp = ys.data_ptr<A>();
  const cpu::Chunking cx = cpu::chunk_queries(B, N, 64), cy = cpu::chunk_queries(B, M, 64);
  scalar_t* dxy = d_xy.data_ptr<scalar_t>();
  scalar_t* dyx = d_yx.data_ptr<scalar_t>();
  int64_t* ixy = i_xy.data_ptr<int64_t>();
  int64_t* iyx = i_yx.data_ptr<int64_t>();
  at::parallel_for(0, cx.items + cy.items, 1, [&](int64_t w0, int64_t w1) {
    for (int64_t w = w0; w < w1; ++w) {
      const bool forward = w < cx.items;
      const cpu::Chunking& ch = forward ? cx : cy;
      const int64_t item = forward ? w : w - cx.items;
      const int64_t b = item / ch.per_cloud, q0 = (item % ch.per_cloud) * ch.chunk;
      if (forward) {
        nearest_range<A, scalar_t>(xp + b * 3 * N, N, q0, std::min(N, q0 + ch.chunk),
                                   yp + b * 3 * M, M, dxy + b * N, ixy + b * N);
      } else {
        nearest_range<A, scalar_t>(yp + b * 3 * M, M, q0, std::min(M, q0 + ch.chunk),
                                   xp + b * 3 * N, N, dyx + b * M, iyx + b * M);
      }
    }
  });
}

// ---------------------------------------------------------------------------------------------
// Index path

constexpr int64_t kIndexChunk = 256;  // queries per parallel task

// One direction, one cloud, query positions [p0, p1) of the query index's order (finite points
// first, then the non-finite ones); qpts / tpts are the AoS clouds.
template <typename A>
void nearest_indexed(const spatial::AnyIndex<A>& iq, const A* qpts,
                     const spatial::AnyIndex<A>& tt, const A* tpts, int64_t p0, int64_t p1,
                     A* dout, int64_t* iout) {
  const spatial::SortedPoints<A>& tq = iq.points();
  const A inf = std::numeric_limits<A>::infinity();
  const int64_t nfin = static_cast<int64_t>(tq.id.size());
  int64_t prev = -1;
  for (int64_t p = p0; p < p1; ++p) {
    int64_t qi, bid;
    if (p < nfin) {
      qi = tq.id[p];
      const A qx = tq.x[p], qy = tq.y[p], qz = tq.z[p];
      A best = inf;
      bid = std::numeric_limits<int64_t>::max();
      if (prev >= 0) {  // warm start: the previous (nearby) query's answer, a finite point
        best = sq_dist3(qx, qy, qz, tpts[3 * prev], tpts[3 * prev + 1], tpts[3 * prev + 2]);
        bid = prev;
      }
      spatial::nn_search(tt, qx, qy, qz, best, bid);
      if (!(best < inf)) {
        for (const int64_t s : tt.points().special) {
          const A* r = tpts + 3 * s;
          const A d = nan_as_inf(sq_dist3(qx, qy, qz, r[0], r[1], r[2]));
          if (closer(d, s, best, bid)) {
            best = d;
            bid = s;
          }
        }
        if (bid == std::numeric_limits<int64_t>::max()) bid = 0;  // unreachable: n_t >= 1
      }
      prev = spatial::finite3(tpts[3 * bid], tpts[3 * bid + 1], tpts[3 * bid + 2]) ? bid : -1;
    } else {
      // Every distance from a non-finite query is NaN or +inf, i.e. +inf: the first minimum
      // is index 0.
      qi = tq.special[p - nfin];
      bid = 0;
    }
    const A* q = qpts + 3 * qi;
    const A* r = tpts + 3 * bid;
    dout[qi] = sq_dist3(q[0], q[1], q[2], r[0], r[1], r[2]);
    iout[qi] = bid;
  }
}

template <typename A>
void chamfer_index(const A* xp, const A* yp, int64_t B, int64_t N, int64_t M,
                   spatial::IndexKind kind, A* dxy, A* dyx, int64_t* ixy, int64_t* iyx) {
  using spatial::AnyIndex;
  auto build = [kind](AnyIndex<A>& ix, const A* pts, int64_t n) {
    ix.build(pts, n, kind, spatial::kNearestIndex);
  };
  if (B >= 2 * at::get_num_threads()) {
    // Enough clouds for every thread: one parallel region, each cloud's indexes built and
    // queried while they are hot in cache, no barrier between building and querying.
    at::parallel_for(0, B, 1, [&](int64_t b0, int64_t b1) {
      AnyIndex<A> tx, ty;
      for (int64_t b = b0; b < b1; ++b) {
        build(tx, xp + 3 * b * N, N);
        build(ty, yp + 3 * b * M, M);
        nearest_indexed(tx, xp + 3 * b * N, ty, yp + 3 * b * M, 0, N, dxy + b * N, ixy + b * N);
        nearest_indexed(ty, yp + 3 * b * M, tx, xp + 3 * b * N, 0, M, dyx + b * M, iyx + b * M);
      }
    });
    return;
  }
  std::vector<AnyIndex<A>> tx(B), ty(B);
  at::parallel_for(0, 2 * B, 1, [&](int64_t t0, int64_t t1) {
    for (int64_t t = t0; t < t1; ++t) {
      const int64_t b = t / 2;
      if (t % 2 == 0)
        build(tx[b], xp + 3 * b * N, N);
      else
        build(ty[b], yp + 3 * b * M, M);
    }
  });
  const int64_t cx = (N + kIndexChunk - 1) / kIndexChunk, cy = (M + kIndexChunk - 1) / kIndexChunk;
  at::parallel_for(0, B * (cx + cy), 1, [&](int64_t t0, int64_t t1) {
    for (int64_t t = t0; t < t1; ++t) {
      const int64_t b = t / (cx + cy), c = t % (cx + cy);
      if (c < cx) {
        nearest_indexed(tx[b], xp + 3 * b * N, ty[b], yp + 3 * b * M, c * kIndexChunk,
                        std::min(N, (c + 1) * kIndexChunk), dxy + b * N, ixy + b * N);
      } else {
        const int64_t c2 = c - cx;
        nearest_indexed(ty[b], yp + 3 * b * M, tx[b], xp + 3 * b * N, c2 * kIndexChunk,
                        std::min(M, (c2 + 1) * kIndexChunk), dyx + b * M, iyx + b * M);
      }
    }
  });
}

// ---------------------------------------------------------------------------------------------
// Entry: one check, one choice

std::tuple<at::Tensor, at::Tensor, at::Tensor, at::Tensor> chamfer_run(const at::Tensor& x,
                                                                       const at::Tensor& y,
                                                                       spatial::Path path) {
  check_chamfer_args(x, y, c10::DeviceType::CPU, "chamfer_forward");
  const int64_t B = x.size(0), N = x.size(1), M = y.size(1);
  at::Tensor i_xy = at::empty({B, N}, x.options().dtype(at::kLong));
  at::Tensor i_yx = at::empty({B, M}, y.options().dtype(at::kLong));
  if (B == 0 || N == 0 || !spatial::use_index(path, spatial::chamfer_prefers_index(B, N, M))) {
    at::Tensor d_xy = at::empty({B, N}, x.options()), d_yx = at::empty({B, M}, y.options());
    if (B > 0 && N > 0) {
      AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, x.scalar_type(), "chamfer_cpu", [&] {
        chamfer_brute<scalar_t>(x, y, d_xy, d_yx, i_xy, i_yx);
      });
    }
    return {d_xy, d_yx, i_xy, i_yx};
  }
  const at::Tensor xa = cpu::to_acc(x), ya = cpu::to_acc(y);
  at::Tensor d_xy = at::empty({B, N}, xa.options()), d_yx = at::empty({B, M}, xa.options());
  AT_DISPATCH_FLOATING_TYPES(xa.scalar_type(), "chamfer_cpu_index", [&] {
    chamfer_index<scalar_t>(xa.data_ptr<scalar_t>(), ya.data_ptr<scalar_t>(), B, N, M,
                            spatial::index_kind(path), d_xy.data_ptr<scalar_t>(),
                            d_yx.data_ptr<scalar_t>(), i_xy.data_ptr<int64_t>(),
                            i_yx.data_ptr<int64_t>());
  });
  return {d_xy.to(x.scalar_type()), d_yx.to(y.scalar_type()), i_xy, i_yx};
}

}  // namespace

std::tuple<at::Tensor, at::Tensor, at::Tensor, at::Tensor> chamfer_forward_cpu(const at::Tensor& x,
                                                                               const at::Tensor& y) {
  return chamfer_run(x, y, spatial::Path::kAuto);
}

std::tuple<at::Tensor, at::Tensor, at::Tensor, at::Tensor> chamfer_forward_path_cpu(
    const at::Tensor& x, const at::Tensor& y, const std::string& path) {
  return chamfer_run(x, y, spatial::parse_path(path, "_chamfer_forward_path", true));
}

std::tuple<at::Tensor, at::Tensor> chamfer_backward_cpu(const at::Tensor& grad_dxy,
                                                        const at::Tensor& grad_dyx,
                                                        const at::Tensor& x, const at::Tensor& y,
                                                        const at::Tensor& idx_xy,
                                                        const at::Tensor& idx_yx) {
  check_chamfer_backward_args(grad_dxy, grad_dyx, x, y, idx_xy, idx_yx, c10::DeviceType::CPU);
  const int64_t B = x.size(0), N = x.size(1), M = y.size(1);
  // Incoming gradients are often expanded views (e.g. the gradient of a mean): any layout.
  const at::Tensor xa = cpu::to_acc(x), ya = cpu::to_acc(y);
  const at::Tensor gxy = cpu::to_acc(grad_dxy), gyx = cpu::to_acc(grad_dyx);
  at::Tensor gx = at::zeros({B, N, 3}, xa.options());
  at::Tensor gy = at::zeros({B, M, 3}, xa.options());
  AT_DISPATCH_FLOATING_TYPES(xa.scalar_type(), "chamfer_backward_cpu", [&] {
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
                       int64_t na, int64_t nb, scalar_t* ga, scalar_t* gb, const char* name) {
      for (int64_t i = 0; i < na; ++i) {
        const int64_t j = idx[i];
        TORCH_CHECK_VALUE(j >= 0 && j < nb, "chamfer_backward: ", name, " holds index ", j,
                          ", out of range [0, ", nb, ")");
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
        directed(xp + b * N * 3, yp + b * M * 3, g1 + b * N, i1 + b * N, N, M, gxp + b * N * 3,
                 gyp + b * M * 3, "idx_xy");
        directed(yp + b * M * 3, xp + b * N * 3, g2 + b * M, i2 + b * M, M, N, gyp + b * M * 3,
                 gxp + b * N * 3, "idx_yx");
      }
    });
  });
  return {gx.to(x.scalar_type()), gy.to(y.scalar_type())};
}

}  // namespace recon

TORCH_LIBRARY_IMPL(recon, CPU, m) {
  m.impl("chamfer_forward", &recon::chamfer_forward_cpu);
  m.impl("chamfer_backward", &recon::chamfer_backward_cpu);
  m.impl("_chamfer_forward_path", &recon::chamfer_forward_path_cpu);
}
