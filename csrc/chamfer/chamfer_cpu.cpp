// Chamfer distance on the CPU: the inputs are checked once, then one cost-model choice
// (spatial/plan.h) between two nearest-neighbour searches that return the same bits, for both
// directions (x -> y, y -> x), memory O(B · (N + M)), never an N × M matrix:
//  * brute force: each pair's N · M distances computed once, SIMD, serving both directions;
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
#include "common/ragged.h"
#include "common/simd.h"
#include "spatial/grid.h"
#include "spatial/plan.h"
#include "spatial/search.h"

namespace recon {
namespace {

// ---------------------------------------------------------------------------------------------
// Brute force

// The brute force sweeps each cloud pair's N × M distances once, for both directions: the rows
// are the points of the larger cloud, the columns those of the other.  A row keeps a running
// (distance, index) minimum per SIMD lane (strict '<' in column order keeps each lane's first
// minimum), merged across lanes with `closer`; every column keeps its running minimum over the
// rows seen so far (strict '<' in row order keeps the first).  Either is the exact first
// minimum, NaN counted as +inf, index 0 when every distance is +inf.

// Rows [i0, i1) of the SoA cloud r (nr points) against every point of the SoA cloud c (nc
// points): each row's nearest column goes to row_idx[i]; each column's minimum over these rows
// is folded into (col_d, col_i), which start at (+inf, 0).
template <typename A>
RECON_ALWAYS_INLINE void block_impl(const A* __restrict r, int64_t nr, int64_t i0, int64_t i1,
                                    const A* __restrict c, int64_t nc, int64_t* __restrict row_idx,
                                    A* __restrict col_d, typename simd::Vec<A>::I* __restrict col_i) {
  using S = simd::Vec<A>;
  using V = typename S::V;
  using M = typename S::M;
  constexpr int W = S::W;
  constexpr A kInf = std::numeric_limits<A>::infinity();
  const A *cx = c, *cy = c + nc, *cz = c + 2 * nc;
  for (int64_t i = i0; i < i1; ++i) {
    const A qx = r[i], qy = r[nr + i], qz = r[2 * nr + i];
    const V vx = simd::splat<V>(qx), vy = simd::splat<V>(qy), vz = simd::splat<V>(qz);
    const M row = simd::iota<M>(0) * 0 + static_cast<typename S::I>(i);
    V best = simd::splat<V>(kInf);
    M bidx = row * 0, jv = simd::iota<M>(0);
    int64_t j = 0;
    for (; j + W <= nc; j += W) {
      const V d = simd::nan_as_inf(
          sq_dist3(vx, vy, vz, simd::load<V>(cx + j), simd::load<V>(cy + j), simd::load<V>(cz + j)));
      const M w = d < best;  // equal distances keep the earlier column
      best = w ? d : best;
      bidx = w ? jv : bidx;
      const V cb = simd::load<V>(col_d + j);
      const M u = d < cb;  // equal distances keep the earlier row
      simd::store(col_d + j, u ? d : cb);
      simd::store(col_i + j, u ? row : simd::load<M>(col_i + j));
      jv += W;
    }
    A bd = kInf;
    int64_t bi = std::numeric_limits<int64_t>::max();
    for (; j < nc; ++j) {
      const A d = nan_as_inf(sq_dist3(qx, qy, qz, cx[j], cy[j], cz[j]));
      if (d < kInf && closer(d, j, bd, bi)) bd = d, bi = j;
      if (d < col_d[j]) col_d[j] = d, col_i[j] = static_cast<typename S::I>(i);
    }
    for (int l = 0; l < W; ++l) {
      const A dl = best[l];
      const int64_t il = bidx[l];
      if (dl < kInf && closer(dl, il, bd, bi)) bd = dl, bi = il;
    }
    row_idx[i] = bd < kInf ? bi : 0;  // all +inf: the first minimum is index 0
  }
}

RECON_CLONES void block_f32(const float* r, int64_t nr, int64_t i0, int64_t i1, const float* c,
                            int64_t nc, int64_t* row_idx, float* col_d, int32_t* col_i) {
  block_impl<float>(r, nr, i0, i1, c, nc, row_idx, col_d, col_i);
}
RECON_CLONES void block_f64(const double* r, int64_t nr, int64_t i0, int64_t i1, const double* c,
                            int64_t nc, int64_t* row_idx, double* col_d, int64_t* col_i) {
  block_impl<double>(r, nr, i0, i1, c, nc, row_idx, col_d, col_i);
}
inline void block(const float* r, int64_t nr, int64_t i0, int64_t i1, const float* c, int64_t nc,
                  int64_t* row_idx, float* col_d, int32_t* col_i) {
  block_f32(r, nr, i0, i1, c, nc, row_idx, col_d, col_i);
}
inline void block(const double* r, int64_t nr, int64_t i0, int64_t i1, const double* c,
                  int64_t nc, int64_t* row_idx, double* col_d, int64_t* col_i) {
  block_f64(r, nr, i0, i1, c, nc, row_idx, col_d, col_i);
}

// The distance of each of the n SoA points q to its chosen partner in the SoA cloud t (nt
// points), recomputed as the reference's gather-and-subtract does (NaN stays NaN there).
template <typename A, typename Out>
void recompute(const A* q, int64_t n, const A* t, int64_t nt, const int64_t* idx, Out* dist) {
  for (int64_t i = 0; i < n; ++i) {
    const int64_t j = idx[i];
    dist[i] = static_cast<Out>(sq_dist3(q[i], q[n + i], q[2 * n + i], t[j], t[nt + j], t[2 * nt + j]));
  }
}

template <typename scalar_t>
void chamfer_brute(const at::Tensor& x, const at::Tensor& y, at::Tensor& d_xy, at::Tensor& d_yx,
                   at::Tensor& i_xy, at::Tensor& i_yx) {
  using A = typename acc_type<scalar_t>::type;
  using I = typename simd::Vec<A>::I;
  const int64_t B = x.size(0);
  // Rows: the larger cloud, so the column minima (one set per chunk of rows) stay small.
  const bool x_rows = x.size(1) >= y.size(1);
  const at::Tensor rs = cpu::to_soa(x_rows ? x : y), cs = cpu::to_soa(x_rows ? y : x);
  const int64_t nr = rs.size(2), nc = cs.size(2);
  const A* rp = rs.data_ptr<A>();
  const A* cp = cs.data_ptr<A>();
  scalar_t* row_d = (x_rows ? d_xy : d_yx).data_ptr<scalar_t>();
  scalar_t* col_d = (x_rows ? d_yx : d_xy).data_ptr<scalar_t>();
  int64_t* row_i = (x_rows ? i_xy : i_yx).data_ptr<int64_t>();
  int64_t* col_i = (x_rows ? i_yx : i_xy).data_ptr<int64_t>();
  const cpu::Chunking ch = cpu::chunk_queries(B, nr, 64);
  // Column minima per (cloud, chunk of rows), merged in row order once a cloud is done.
  std::vector<A> part_d(ch.items * nc, std::numeric_limits<A>::infinity());
  std::vector<I> part_i(ch.items * nc, 0);
  auto finish = [&](int64_t b) {
    const int64_t w0 = b * ch.per_cloud;
    A* best = part_d.data() + w0 * nc;
    I* bidx = part_i.data() + w0 * nc;
    for (int64_t w = w0 + 1; w < w0 + ch.per_cloud; ++w) {
      const A* d = part_d.data() + w * nc;
      const I* i = part_i.data() + w * nc;
      for (int64_t j = 0; j < nc; ++j)
        if (d[j] < best[j]) best[j] = d[j], bidx[j] = i[j];  // strict: the earlier rows win ties
    }
    for (int64_t j = 0; j < nc; ++j) col_i[b * nc + j] = bidx[j];
    const A* r = rp + b * 3 * nr;
    const A* c = cp + b * 3 * nc;
    recompute<A, scalar_t>(r, nr, c, nc, row_i + b * nr, row_d + b * nr);
    recompute<A, scalar_t>(c, nc, r, nr, col_i + b * nc, col_d + b * nc);
  };
  at::parallel_for(0, ch.items, 1, [&](int64_t w0, int64_t w1) {
    for (int64_t w = w0; w < w1; ++w) {
      const int64_t b = w / ch.per_cloud, i0 = (w % ch.per_cloud) * ch.chunk;
      block(rp + b * 3 * nr, nr, i0, std::min(nr, i0 + ch.chunk), cp + b * 3 * nc, nc,
            row_i + b * nr, part_d.data() + w * nc, part_i.data() + w * nc);
      // Many small clouds (the MAE loss: 832 pairs of 32 points): one region does it all.
      if (ch.per_cloud == 1) finish(b);
    }
  });
  if (ch.per_cloud > 1) {
    at::parallel_for(0, B, 1, [&](int64_t b0, int64_t b1) {
      for (int64_t b = b0; b < b1; ++b) finish(b);
    });
  }
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
  m.impl("chamfer_forward", &recon::ragged::chamfer<&recon::chamfer_forward_cpu>);
  m.impl("chamfer_backward", &recon::chamfer_backward_cpu);
  m.impl("_chamfer_forward_path", &recon::chamfer_forward_path_cpu);
}
