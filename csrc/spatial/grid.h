// An exact uniform grid over one point cloud, the alternative to the kd-tree (kdtree.h) for the
// kNN and Chamfer searches, plus its ring-by-ring walk (the kd-tree's is in search.h).
//
// Cells are sized from the point density: the finite points' bounding box is cut into about
// m / occupancy cells of (nearly) equal extent on every axis that has one, so a flat or thin
// cloud gets a flat or thin grid.  Points are counting-sorted by cell (z fastest) into the
// SoA arrays of SortedPoints; a cell's points keep ascending original indices.
//
// Exactness: each axis has explicit boundaries bnd[0] = lo <= bnd[1] <= ... <= bnd[n] = hi in
// the point type, and a point is put in cell i only after checking bnd[i] <= v <= bnd[i+1] with
// those very values (the float division that guesses i is only a hint).  Every box the walk
// prunes with — a run of cells, a slab of not yet visited cells — is built from these
// boundaries, so it contains its points and box_bound() (bounds.h) is a lower bound of their
// computed distances.  Queries may lie anywhere, also outside the grid.
//
// Grids degrade on clustered clouds (a few cells hold everything); crowding() measures it so
// the kernels can fall back to the kd-tree (AnyIndex below).
#pragma once

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdint>
#include <limits>
#include <vector>

#include "spatial/bounds.h"
#include "spatial/kdtree.h"
#include "spatial/search.h"

namespace recon {
namespace spatial {

template <typename A>
struct UniformGrid : SortedPoints<A> {
  int32_t n[3] = {0, 0, 0};         // cells per axis
  std::array<std::vector<A>, 3> bnd;  // n[a] + 1 boundaries per axis
  std::vector<int32_t> start;       // cell c holds sorted points [start[c], start[c + 1])
  double lo_d[3] = {0, 0, 0}, inv_h[3] = {0, 0, 0};  // the index guess of cell_of

  // pts: n points, AoS (x, y, z) in the accumulation type; about `occupancy` points per cell.
  void build(const A* pts, int64_t npts, double occupancy) {
    auto& special = this->special;
    special.clear();
    A lo[3], hi[3];
    for (int a = 0; a < 3; ++a) {
      lo[a] = std::numeric_limits<A>::infinity();
      hi[a] = -std::numeric_limits<A>::infinity();
    }
    int64_t m = 0;
    for (int64_t i = 0; i < npts; ++i) {
      const A* p = pts + 3 * i;
      if (!finite3(p[0], p[1], p[2])) {
        special.push_back(i);
        continue;
      }
      ++m;
      for (int a = 0; a < 3; ++a) {
        lo[a] = std::min(lo[a], p[a]);
        hi[a] = std::max(hi[a], p[a]);
      }
    }
    this->x.resize(m);
    this->y.resize(m);
    this->z.resize(m);
    this->id.resize(m);
    if (m == 0) {
      n[0] = n[1] = n[2] = 0;
      start.assign(1, 0);
      return;
    }
    size_cells(lo, hi, m, occupancy);
    const int64_t cells = int64_t(n[0]) * n[1] * n[2];
    // Counting sort by cell, scanning points in index order: cells keep ascending indices.
    std::vector<int32_t> cell_of_pt(npts, -1);
    start.assign(cells + 1, 0);
    for (int64_t i = 0; i < npts; ++i) {
      const A* p = pts + 3 * i;
      if (!finite3(p[0], p[1], p[2])) continue;
      const int32_t c = (cell_of(0, p[0]) * n[1] + cell_of(1, p[1])) * n[2] + cell_of(2, p[2]);
      cell_of_pt[i] = c;
      ++start[c + 1];
    }
    for (int64_t c = 0; c < cells; ++c) start[c + 1] += start[c];
    std::vector<int32_t> fill(start.begin(), start.end() - 1);
    for (int64_t i = 0; i < npts; ++i) {
      const int32_t c = cell_of_pt[i];
      if (c < 0) continue;
      const int32_t j = fill[c]++;
      const A* p = pts + 3 * i;
      this->x[j] = p[0];
      this->y[j] = p[1];
      this->z[j] = p[2];
      this->id[j] = i;
    }
  }

  // Mean number of points sharing a cell with a random point (sum of squared cell counts / m):
  // about the occupancy for well-spread clouds, up to m when everything sits in one cell.
  double crowding() const {
    if (this->empty()) return 0.0;
    double s = 0.0;
    for (size_t c = 0; c + 1 < start.size(); ++c) {
      const double k = start[c + 1] - start[c];
      s += k * k;
    }
    return s / static_cast<double>(this->size());
  }

  // The cell of coordinate v on axis a: bnd[i] <= v <= bnd[i + 1] for finite v in [lo, hi];
  // values outside clamp to the first / last cell.
  int32_t cell_of(int a, A v) const {
    const double t = (static_cast<double>(v) - lo_d[a]) * inv_h[a];
    const int32_t last = n[a] - 1;
    int32_t i = t >= 0 ? (t < last ? static_cast<int32_t>(t) : last) : 0;
    const A* b = bnd[a].data();
    while (i > 0 && v < b[i]) --i;  // the guess rounded up: step back below v
    while (i < last && !(v < b[i + 1])) ++i;  // rounded down (or v on a boundary): step on
    return i;
  }

 private:
  // Cell counts: one cell on every axis narrower than the common cell width h, and h chosen so
  // that the product of extent / h over the other axes is about m / occupancy.
  void size_cells(const A* lo, const A* hi, int64_t m, double occupancy) {
    const double target = std::max(1.0, static_cast<double>(m) / std::max(occupancy, 1e-9));
    double ext[3];
    bool active[3];
    for (int a = 0; a < 3; ++a) {
      ext[a] = static_cast<double>(hi[a]) - static_cast<double>(lo[a]);
      active[a] = ext[a] > 0 && std::isfinite(ext[a]);
    }
    double log_h = 0;
    for (;;) {
      int d = 0;
      double s = 0;
      for (int a = 0; a < 3; ++a)
        if (active[a]) {
          ++d;
          s += std::log(ext[a]);
        }
      if (d == 0) break;
      log_h = (s - std::log(target)) / d;  // logs: no overflow for extents near 1e±300
      bool changed = false;
      for (int a = 0; a < 3; ++a)
        if (active[a] && std::log(ext[a]) < log_h) {
          active[a] = false;
          changed = true;
        }
      if (!changed) break;
    }
    for (int a = 0; a < 3; ++a) {
      double cnt = active[a] ? std::floor(std::exp(std::log(ext[a]) - log_h)) : 1.0;
      cnt = std::min(std::max(cnt, 1.0), std::min(target, 1048576.0));
      n[a] = static_cast<int32_t>(cnt);
      const double h = ext[a] / n[a];
      lo_d[a] = static_cast<double>(lo[a]);
      inv_h[a] = n[a] > 1 ? 1.0 / h : 0.0;
      std::vector<A>& b = bnd[a];
      b.resize(n[a] + 1);
      b[0] = lo[a];
      // lo + i*h rounded to A is non-decreasing in i; the min keeps every boundary <= hi.
      for (int32_t i = 1; i < n[a]; ++i) b[i] = std::min(hi[a], static_cast<A>(lo_d[a] + i * h));
      b[n[a]] = hi[a];
    }
  }
};

// The grid's walk: rings of cells at Chebyshev distance r = 0, 1, ... from the query's (clamped)
// cell, each ring as runs of cells contiguous along z.  A run is skipped when its box cannot
// hold a point before the worst key; the walk stops after ring r when the slabs of cells outside
// the visited block are all beyond the worst key.  Both tests compare (bound, index 0), i.e.
// bound > worst distance, so a tie at a boundary is always visited.
template <typename A, typename Acc>
void visit(const UniformGrid<A>& g, A qx, A qy, A qz, Acc& acc) {
  using K = Key<A>;
  if (g.empty()) return;
  const A q[3] = {qx, qy, qz};
  int32_t c[3];
  int32_t rmax = 0;
  for (int a = 0; a < 3; ++a) {
    c[a] = g.cell_of(a, q[a]);
    rmax = std::max({rmax, c[a], g.n[a] - 1 - c[a]});
  }
  const A* bx = g.bnd[0].data();
  const A* by = g.bnd[1].data();
  const A* bz = g.bnd[2].data();
  const int32_t* start = g.start.data();
  const int32_t ny = g.n[1], nz = g.n[2];
  auto run = [&](int32_t i, int32_t j, int32_t k0, int32_t k1) {
    const int32_t cell = (i * ny + j) * nz;
    const int32_t b = start[cell + k0], e = start[cell + k1 + 1];
    if (b == e) return;
    const A lo[3] = {bx[i], by[j], bz[k0]}, hi[3] = {bx[i + 1], by[j + 1], bz[k1 + 1]};
    if (K::make(box_bound(lo, hi, qx, qy, qz), 0) > acc.worst()) return;
    scan_run(g, b, e, qx, qy, qz, acc);
  };
  for (int32_t r = 0; r <= rmax; ++r) {
    const int32_t i0 = std::max(0, c[0] - r), i1 = std::min(g.n[0] - 1, c[0] + r);
    const int32_t j0 = std::max(0, c[1] - r), j1 = std::min(ny - 1, c[1] + r);
    const int32_t k0 = std::max(0, c[2] - r), k1 = std::min(nz - 1, c[2] + r);
    for (int32_t i = i0; i <= i1; ++i)
      for (int32_t j = j0; j <= j1; ++j) {
        if (i == c[0] - r || i == c[0] + r || j == c[1] - r || j == c[1] + r) {
          run(i, j, k0, k1);  // on the ring's x or y face: the whole z extent
        } else {  // inside the ring in x and y: only its two z faces
          if (c[2] - r >= 0) run(i, j, c[2] - r, c[2] - r);
          if (r > 0 && c[2] + r < nz) run(i, j, c[2] + r, c[2] + r);
        }
      }
    if (r == rmax) break;
    // Lower bound over every cell outside the block [c - r, c + r]: the six slabs beyond it.
    const A* b3[3] = {bx, by, bz};
    A glo[3], ghi[3];
    for (int a = 0; a < 3; ++a) {
      glo[a] = b3[a][0];
      ghi[a] = b3[a][g.n[a]];
    }
    A lb = std::numeric_limits<A>::infinity();
    for (int a = 0; a < 3; ++a) {
      A slo[3] = {glo[0], glo[1], glo[2]}, shi[3] = {ghi[0], ghi[1], ghi[2]};
      if (c[a] - r > 0) {
        shi[a] = b3[a][c[a] - r];
        lb = std::min(lb, box_bound(slo, shi, qx, qy, qz));
        shi[a] = ghi[a];
      }
      if (c[a] + r < g.n[a] - 1) {
        slo[a] = b3[a][c[a] + r + 1];
        lb = std::min(lb, box_bound(slo, shi, qx, qy, qz));
      }
    }
    if (K::make(lb, 0) > acc.worst()) break;
  }
}

// Which index a cloud gets.  kAuto builds the grid and keeps it unless crowding() shows the
// cloud is too clustered for it, then builds the kd-tree instead.
enum class IndexKind { kTree, kGrid, kAuto };

struct IndexParams {
  int leaf_size;        // kd-tree: points per leaf
  double occupancy;     // grid: points per cell
  double max_crowding;  // kAuto: above this UniformGrid::crowding() the kd-tree takes over
};

// Grid or tree, per cloud (benchmarks/spatial_index.py, 2-core x86-64, 1 thread): the grid takes
// 0.5-0.8x the tree's time on uniform, planar and sphere-surface clouds (crowding() up to ~7x the
// occupancy), and 1.2-8x on tight clusters or a line (crowding() 40-250x the occupancy); the
// thresholds sit at 8x the occupancy.  kNN with k = 32 likes fuller cells than a single nearest.
constexpr IndexParams kKnnIndex{32, 3.0, 24.0};
constexpr IndexParams kNearestIndex{16, 2.0, 16.0};

template <typename A>
struct AnyIndex {
  KdTree<A> tree;
  UniformGrid<A> grid;
  bool use_grid = false;

  void build(const A* pts, int64_t n, IndexKind kind, const IndexParams& prm) {
    use_grid = kind != IndexKind::kTree;
    if (use_grid) {
      grid.build(pts, n, prm.occupancy);
      if (kind == IndexKind::kAuto && grid.crowding() > prm.max_crowding) use_grid = false;
    }
    if (!use_grid) tree.build(pts, n, prm.leaf_size);
  }
  const SortedPoints<A>& points() const {
    if (use_grid) return grid;
    return tree;
  }
};

template <typename A, typename Acc>
void visit(const AnyIndex<A>& ix, A qx, A qy, A qz, Acc& acc) {
  if (ix.use_grid)
    visit(ix.grid, qx, qy, qz, acc);
  else
    visit(ix.tree, qx, qy, qz, acc);
}

}  // namespace spatial
}  // namespace recon
