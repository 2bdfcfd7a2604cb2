// Exact Chamfer forward on CPU (nearest neighbour both ways): a spatial index (uniform grid or
// kd-tree) per cloud and per side, queries walked in their own index's order so that
// consecutive queries are neighbours and the previous answer is a tight first candidate; brute
// force over the batch for small clouds.
// The backward needs no search: it reuses the forward's indices (chamfer_backward op).
#include <ATen/Parallel.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

#include "spatial/grid.h"
#include "spatial/search.h"
#include "spatial/spatial.h"
#include "spatial/util.h"

namespace recon {
namespace spatial {
namespace {

constexpr int64_t kChunk = 256;  // queries per parallel task

// Nearest of all targets in index order, NaN read as +inf: the definition of the answer.
template <typename A>
int64_t nearest_brute(A qx, A qy, A qz, const A* tgt, int64_t n) {
  A best = std::numeric_limits<A>::infinity();
  int64_t bid = std::numeric_limits<int64_t>::max();
  for (int64_t j = 0; j < n; ++j) {
    const A d = nan_as_inf(sq_dist3(qx, qy, qz, tgt[3 * j], tgt[3 * j + 1], tgt[3 * j + 2]));
    if (closer(d, j, best, bid)) {
      best = d;
      bid = j;
    }
  }
  return bid;
}

// One direction, one cloud, query positions [p0, p1) of the query index's order (finite points
// first, then the non-finite ones).  Writes the nearest index and the distance recomputed to it,
// exactly as the reference's gather-and-subtract does (NaN stays NaN there).
template <typename A>
void nearest_range(const AnyIndex<A>& iq, const A* qpts, const AnyIndex<A>& tt, const A* tpts,
                   int64_t n_t, int64_t p0, int64_t p1, A* dout, int64_t* iout) {
  const SortedPoints<A>& tq = iq.points();
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
      nn_search(tt, qx, qy, qz, best, bid);
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
      prev = finite3(tpts[3 * bid], tpts[3 * bid + 1], tpts[3 * bid + 2]) ? bid : -1;
    } else {
      qi = tq.special[p - nfin];
      const A* q = qpts + 3 * qi;
      bid = nearest_brute(q[0], q[1], q[2], tpts, n_t);
    }
    const A* q = qpts + 3 * qi;
    const A* r = tpts + 3 * bid;
    dout[qi] = sq_dist3(q[0], q[1], q[2], r[0], r[1], r[2]);
    iout[qi] = bid;
  }
}

template <typename A>
void chamfer_index(const A* xp, const A* yp, int64_t B, int64_t N, int64_t M, IndexKind kind,
                   A* dxy, A* dyx, int64_t* ixy, int64_t* iyx) {
  auto build = [kind](AnyIndex<A>& ix, const A* pts, int64_t n) {
    ix.build(pts, n, kind, kNearestIndex);
  };
  if (B >= 2 * at::get_num_threads()) {
    // Enough clouds for every thread: one parallel region, each cloud's trees built and queried
    // while they are hot in cache, no barrier between building and querying.
    at::parallel_for(0, B, 1, [&](int64_t b0, int64_t b1) {
      AnyIndex<A> tx, ty;
      for (int64_t b = b0; b < b1; ++b) {
        build(tx, xp + 3 * b * N, N);
        build(ty, yp + 3 * b * M, M);
        nearest_range(tx, xp + 3 * b * N, ty, yp + 3 * b * M, M, 0, N, dxy + b * N, ixy + b * N);
        nearest_range(ty, yp + 3 * b * M, tx, xp + 3 * b * N, N, 0, M, dyx + b * M, iyx + b * M);
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
  const int64_t cx = (N + kChunk - 1) / kChunk, cy = (M + kChunk - 1) / kChunk;
  at::parallel_for(0, B * (cx + cy), 1, [&](int64_t t0, int64_t t1) {
    for (int64_t t = t0; t < t1; ++t) {
      const int64_t b = t / (cx + cy), c = t % (cx + cy);
      if (c < cx) {
        nearest_range(tx[b], xp + 3 * b * N, ty[b], yp + 3 * b * M, M, c * kChunk,
                      std::min(N, (c + 1) * kChunk), dxy + b * N, ixy + b * N);
      } else {
        const int64_t c2 = c - cx;
        nearest_range(ty[b], yp + 3 * b * M, tx[b], xp + 3 * b * N, N, c2 * kChunk,
                      std::min(M, (c2 + 1) * kChunk), dyx + b * M, iyx + b * M);
      }
    }
  });
}

// Brute force over one pair of clouds, both directions from one pass over the N x M distances.
template <typename A>
void chamfer_brute_one(const A* x, const A* y, int64_t N, int64_t M, A* dxy, A* dyx,
                       int64_t* ixy, int64_t* iyx) {
  std::vector<A> ys(3 * M), row(M), colbest(M);
  A* yx_ = ys.data();
  A* yy_ = yx_ + M;
  A* yz_ = yy_ + M;
  for (int64_t j = 0; j < M; ++j) {
    yx_[j] = y[3 * j];
    yy_[j] = y[3 * j + 1];
    yz_[j] = y[3 * j + 2];
  }
  A* rw = row.data();
  A* cb = colbest.data();
  for (int64_t i = 0; i < N; ++i) {
    const A qx = x[3 * i], qy = x[3 * i + 1], qz = x[3 * i + 2];
    for (int64_t j = 0; j < M; ++j) rw[j] = nan_as_inf(sq_dist3(qx, qy, qz, yx_[j], yy_[j], yz_[j]));
    // Ascending scans with strict '<' keep the first (lowest-index) minimum.
    A best = rw[0];
    int64_t bid = 0;
    for (int64_t j = 1; j < M; ++j)
      if (rw[j] < best) {
        best = rw[j];
        bid = j;
      }
    ixy[i] = bid;
    if (i == 0) {
      for (int64_t j = 0; j < M; ++j) {
        cb[j] = rw[j];
        iyx[j] = 0;
      }
    } else {
      for (int64_t j = 0; j < M; ++j) {
        const bool better = rw[j] < cb[j];
        cb[j] = better ? rw[j] : cb[j];
        iyx[j] = better ? i : iyx[j];
      }
    }
  }
  for (int64_t i = 0; i < N; ++i) {
    const A* r = y + 3 * ixy[i];
    dxy[i] = sq_dist3(x[3 * i], x[3 * i + 1], x[3 * i + 2], r[0], r[1], r[2]);
  }
  for (int64_t j = 0; j < M; ++j) {
    const A* r = x + 3 * iyx[j];
    dyx[j] = sq_dist3(y[3 * j], y[3 * j + 1], y[3 * j + 2], r[0], r[1], r[2]);
  }
}

}  // namespace

bool chamfer_prefers_index(int64_t B, int64_t N, int64_t M) {
  (void)B;
  // Brute force: N*M distances; trees: two builds (~(N+M) log) and ~log-many leaves per query.
  // Measured crossover on a 2-core x86-64 (benchmarks/peers.py): a few hundred points a side.
  return std::min(N, M) >= 128 && N * M >= 65536;
}

std::tuple<at::Tensor, at::Tensor, at::Tensor, at::Tensor> chamfer_forward_cpu(
    const at::Tensor& x, const at::Tensor& y, Path path) {
  check_cloud(x, "x");
  check_cloud(y, "y");
  TORCH_CHECK_VALUE(x.size(0) == y.size(0), "x and y must have the same batch size, got ",
                    x.size(0), " and ", y.size(0));
  TORCH_CHECK_TYPE(x.scalar_type() == y.scalar_type(), "x and y must have the same dtype, got ",
                   x.scalar_type(), " and ", y.scalar_type());
  const int64_t B = x.size(0), N = x.size(1), M = y.size(1);
  TORCH_CHECK_VALUE(B == 0 || (N > 0) == (M > 0),
                    "x and y must both hold points (or both none), got N = ", N, " and M = ", M);
  const at::Tensor xa = acc_view(x), ya = acc_view(y);
  at::Tensor dxy = at::empty({B, N}, xa.options()), dyx = at::empty({B, M}, xa.options());
  at::Tensor ixy = at::empty({B, N}, xa.options().dtype(at::kLong));
  at::Tensor iyx = at::empty({B, M}, xa.options().dtype(at::kLong));
  if (B > 0 && N > 0) {
    const bool use_index =
        path != Path::kBrute && (path != Path::kAuto || chamfer_prefers_index(B, N, M));
    const IndexKind kind = index_kind(path);
    AT_DISPATCH_FLOATING_TYPES(xa.scalar_type(), "recon_chamfer_spatial", [&] {
      const scalar_t* xp = xa.data_ptr<scalar_t>();
      const scalar_t* yp = ya.data_ptr<scalar_t>();
      scalar_t* pdxy = dxy.data_ptr<scalar_t>();
      scalar_t* pdyx = dyx.data_ptr<scalar_t>();
      int64_t* pixy = ixy.data_ptr<int64_t>();
      int64_t* piyx = iyx.data_ptr<int64_t>();
      if (use_index) {
        chamfer_index<scalar_t>(xp, yp, B, N, M, kind, pdxy, pdyx, pixy, piyx);
      } else {
        // Many small pairs: parallel over the batch, one pass per pair.
        const int64_t grain = std::max<int64_t>(1, 4096 / std::max<int64_t>(1, N * M));
        at::parallel_for(0, B, grain, [&](int64_t b0, int64_t b1) {
          for (int64_t b = b0; b < b1; ++b)
            chamfer_brute_one<scalar_t>(xp + 3 * b * N, yp + 3 * b * M, N, M, pdxy + b * N,
                                        pdyx + b * M, pixy + b * N, piyx + b * M);
        });
      }
    });
  }
  return {dxy.to(x.scalar_type()), dyx.to(y.scalar_type()), ixy, iyx};
}

}  // namespace spatial
}  // namespace recon
