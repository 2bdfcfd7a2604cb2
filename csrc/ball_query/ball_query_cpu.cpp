// Ball query on the CPU, exact, one of two strategies per cloud:
//  * brute force: reference points in index order, stopping at the k-th hit.  Cheap when hits
//    are dense (about k / p points are read, p the chance that a point is inside the ball);
//  * uniform grid (spatial/grid.h) with cells of about half the radius: only the cells whose
//    box can hold a point closer than the radius are read, then the k lowest indices among the
//    hits are kept (the grid orders points by cell, not by index).
// A cloud's choice comes from its bounding box (ball_cost below); both give identical results,
// because the grid only skips cells whose box_bound (spatial/bounds.h, a lower bound of every
// computed distance inside) is >= radius^2.
#include <ATen/ATen.h>
#include <ATen/Dispatch.h>
#include <ATen/Parallel.h>
#include <torch/library.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <utility>
#include <vector>

#include "ball_query/ball_query.h"
#include "common/cpu_utils.h"
#include "common/geometry.h"
#include "common/lengths.h"
#include "spatial/bounds.h"
#include "spatial/grid.h"

namespace recon {

namespace {

enum class BallPath { kAuto, kGrid, kBrute };

constexpr int kBlock = 64;
// Grid cells of about kCellPerRadius * radius per side: smaller cells read fewer points
// outside the ball but visit more runs (benchmarks/ops.py, ball query rows).
constexpr double kCellPerRadius = 0.5;

template <typename A>
using HitList = std::vector<std::pair<int64_t, A>>;  // (index, squared distance)

// Appends the points [b, e) of x/y/z that lie inside the ball to `hits` (index id[j], or base + j
// without ids); stops after a block once `stop` hits are there.
template <typename A>
RECON_ALWAYS_INLINE void collect(const A* __restrict x, const A* __restrict y,
                                 const A* __restrict z, const int64_t* id, int64_t b, int64_t e,
                                 A qx, A qy, A qz, A r2, size_t stop, HitList<A>& hits) {
  A d[kBlock];
  for (int64_t b0 = b; b0 < e; b0 += kBlock) {
    const int cnt = static_cast<int>(std::min<int64_t>(kBlock, e - b0));
    for (int j = 0; j < cnt; ++j) d[j] = sq_dist3(qx, qy, qz, x[b0 + j], y[b0 + j], z[b0 + j]);
    for (int j = 0; j < cnt; ++j)
      if (d[j] < r2) hits.emplace_back(id ? id[b0 + j] : b0 + j, d[j]);
    if (hits.size() >= stop) return;
  }
}

// One query against one cloud's grid: every run of cells (contiguous along z) that can hold a hit.
template <typename A>
void grid_query(const spatial::UniformGrid<A>& g, A qx, A qy, A qz, A r2, HitList<A>& hits) {
  if (g.empty()) return;
  const A q[3] = {qx, qy, qz};
  int32_t lo[3], hi[3];
  for (int a = 0; a < 3; ++a) {
    const A* bnd = g.bnd[a].data();
    const int32_t c = g.cell_of(a, q[a]);
    // Walk outwards while the gap to the next cell, squared, is < r2 (gap^2 <= box_bound).
    int32_t i = c;
    while (i > 0) {
      const A gap = q[a] - bnd[i];
      if (gap > 0 && !(gap * gap < r2)) break;
      --i;
    }
    lo[a] = i;
    i = c;
    while (i < g.n[a] - 1) {
      const A gap = bnd[i + 1] - q[a];
      if (gap > 0 && !(gap * gap < r2)) break;
      ++i;
    }
    hi[a] = i;
  }
  const int32_t ny = g.n[1], nz = g.n[2];
  for (int32_t i = lo[0]; i <= hi[0]; ++i)
    for (int32_t j = lo[1]; j <= hi[1]; ++j) {
      const int32_t cell = (i * ny + j) * nz;
      const int32_t b = g.start[cell + lo[2]], e = g.start[cell + hi[2] + 1];
      if (b == e) continue;
      const A blo[3] = {g.bnd[0][i], g.bnd[1][j], g.bnd[2][lo[2]]};
      const A bhi[3] = {g.bnd[0][i + 1], g.bnd[1][j + 1], g.bnd[2][hi[2] + 1]};
      if (!(spatial::box_bound(blo, bhi, qx, qy, qz) < r2)) continue;
      collect(g.x.data(), g.y.data(), g.z.data(), g.id.data(), b, e, qx, qy, qz, r2,
              std::numeric_limits<size_t>::max(), hits);
    }
}

// Estimated points read per query: brute force (until the k-th hit) and grid (cells around the
// ball), from the cloud's bounding box, as if the points were spread uniformly in it.
struct BallChoice {
  bool grid;
  double occupancy;  // grid: points per cell
};

template <typename A>
BallChoice ball_cost(const A* pts, int64_t n, int64_t m, double radius, int64_t k) {
  double lo[3] = {INFINITY, INFINITY, INFINITY}, hi[3] = {-INFINITY, -INFINITY, -INFINITY};
  int64_t finite = 0;
  for (int64_t i = 0; i < n; ++i) {
    const A* p = pts + 3 * i;
    if (!spatial::finite3(p[0], p[1], p[2])) continue;
    ++finite;
    for (int a = 0; a < 3; ++a) {
      lo[a] = std::min(lo[a], static_cast<double>(p[a]));
      hi[a] = std::max(hi[a], static_cast<double>(p[a]));
    }
  }
  if (finite < 64) return {false, 1.0};
  const double h = kCellPerRadius * radius;
  auto frac = [&](double w) {  // share of the box within a cube of side w (flat axes count 1)
    double f = 1.0;
    for (int a = 0; a < 3; ++a) {
      const double ext = hi[a] - lo[a];
      if (ext > w) f *= w / ext;
    }
    return f;
  };
  const double p_hit = 0.52 * frac(2 * radius);  // ball / cube = pi / 6
  const double brute = std::min<double>(n, k / std::max(p_hit, 1e-12));
  const double grid = finite * frac(2 * radius + h) + 2.0 * finite / std::max<int64_t>(m, 1);
  const double occupancy = std::max(1.0, finite * frac(h));
  return {grid < brute, occupancy};
}

template <typename scalar_t>
void ball_query_kernel(const at::Tensor& query, const at::Tensor& ref, double radius, int64_t k,
                       const int64_t* len1, const int64_t* len2, BallPath path,
                       at::Tensor& dist, at::Tensor& idx) {
  using A = typename acc_type<scalar_t>::type;
  const int64_t B = query.size(0), M = query.size(1), N = ref.size(1);
  const at::Tensor qa = query.to(cpu::acc_dtype(query.scalar_type())).contiguous();
  const at::Tensor ra = ref.to(cpu::acc_dtype(ref.scalar_type())).contiguous();
  const at::Tensor rs = cpu::to_soa(ref);
  const A* qp = qa.data_ptr<A>();
  const A* rp = ra.data_ptr<A>();
  const A* sp = rs.data_ptr<A>();
  const A r2 = static_cast<A>(radius * radius);

  std::vector<spatial::UniformGrid<A>> grids(B);
  std::vector<char> use_grid(B, 0);
  at::parallel_for(0, B, 1, [&](int64_t b0, int64_t b1) {
    for (int64_t b = b0; b < b1; ++b) {
      const int64_t n = clamp_length(len2, b, N), m = clamp_length(len1, b, M);
      if (n == 0 || m == 0 || path == BallPath::kBrute) continue;
      const BallChoice c = ball_cost(rp + 3 * b * N, n, m, radius, k);
      use_grid[b] = path == BallPath::kGrid || c.grid;
      if (use_grid[b]) grids[b].build(rp + 3 * b * N, n, c.occupancy);
    }
  });

  scalar_t* dp = dist.data_ptr<scalar_t>();
  int64_t* ip = idx.data_ptr<int64_t>();
  const cpu::Chunking ch = cpu::chunk_queries(B, M);
  at::parallel_for(0, ch.items, 1, [&](int64_t w0, int64_t w1) {
    HitList<A> hits;
    for (int64_t w = w0; w < w1; ++w) {
      const int64_t b = w / ch.per_cloud, q0 = (w % ch.per_cloud) * ch.chunk;
      const int64_t q1 = std::min(clamp_length(len1, b, M), q0 + ch.chunk);
      const int64_t n = clamp_length(len2, b, N);
      const A* sx = sp + b * 3 * N;
      for (int64_t q = q0; q < q1; ++q) {
        const A* p = qp + 3 * (b * M + q);
        if (!spatial::finite3(p[0], p[1], p[2])) continue;  // NaN / inf: nothing is inside
        hits.clear();
        if (use_grid[b]) {
          grid_query(grids[b], p[0], p[1], p[2], r2, hits);
          auto by_index = [](const auto& u, const auto& v) { return u.first < v.first; };
          if (hits.size() > static_cast<size_t>(k)) {
            std::nth_element(hits.begin(), hits.begin() + k, hits.end(), by_index);
            hits.resize(k);
          }
          std::sort(hits.begin(), hits.end(), by_index);
        } else {
          collect<A>(sx, sx + N, sx + 2 * N, nullptr, 0, n, p[0], p[1], p[2], r2,
                     static_cast<size_t>(k), hits);
        }
        const int64_t cnt = std::min<int64_t>(k, static_cast<int64_t>(hits.size()));
        scalar_t* od = dp + (b * M + q) * k;
        int64_t* oi = ip + (b * M + q) * k;
        for (int64_t t = 0; t < cnt; ++t) {
          oi[t] = hits[t].first;
          od[t] = static_cast<scalar_t>(hits[t].second);
        }
      }
    }
  });
}

std::tuple<at::Tensor, at::Tensor> ball_query_run(const at::Tensor& query, const at::Tensor& ref,
                                                  double radius, int64_t k,
                                                  const c10::optional<at::Tensor>& lengths1,
                                                  const c10::optional<at::Tensor>& lengths2,
                                                  BallPath path) {
  check_ball_query_args(query, ref, radius, k, c10::DeviceType::CPU);
  const int64_t B = query.size(0), M = query.size(1);
  const at::Tensor l1 = checked_lengths(lengths1, B, query, "lengths1");
  const at::Tensor l2 = checked_lengths(lengths2, B, ref, "lengths2");
  at::Tensor dist = at::zeros({B, M, k}, query.options());
  at::Tensor idx = at::full({B, M, k}, -1, query.options().dtype(at::kLong));
  if (B == 0 || M == 0 || ref.size(1) == 0) return {dist, idx};
  const int64_t* len1 = l1.defined() ? l1.data_ptr<int64_t>() : nullptr;
  const int64_t* len2 = l2.defined() ? l2.data_ptr<int64_t>() : nullptr;
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, query.scalar_type(), "ball_query_cpu", [&] {
    ball_query_kernel<scalar_t>(query, ref, radius, k, len1, len2, path, dist, idx);
  });
  return {dist, idx};
}

}  // namespace

std::tuple<at::Tensor, at::Tensor> ball_query_cpu(const at::Tensor& query, const at::Tensor& ref,
                                                  double radius, int64_t k,
                                                  const c10::optional<at::Tensor>& lengths1,
                                                  const c10::optional<at::Tensor>& lengths2) {
  return ball_query_run(query, ref, radius, k, lengths1, lengths2, BallPath::kAuto);
}

std::tuple<at::Tensor, at::Tensor> ball_query_path_cpu(const at::Tensor& query,
                                                       const at::Tensor& ref, double radius,
                                                       int64_t k,
                                                       const c10::optional<at::Tensor>& lengths1,
                                                       const c10::optional<at::Tensor>& lengths2,
                                                       const std::string& path) {
  TORCH_CHECK_VALUE(path == "auto" || path == "grid" || path == "brute",
                    "_ball_query_path: path must be one of 'auto', 'brute', 'grid', got '", path, "'");
  const BallPath p = path == "grid" ? BallPath::kGrid : (path == "brute" ? BallPath::kBrute : BallPath::kAuto);
  return ball_query_run(query, ref, radius, k, lengths1, lengths2, p);
}

}  // namespace recon

TORCH_LIBRARY_IMPL(recon, CPU, m) {
  m.impl("ball_query", &recon::ball_query_cpu);
  m.impl("_ball_query_path", &recon::ball_query_path_cpu);
}
