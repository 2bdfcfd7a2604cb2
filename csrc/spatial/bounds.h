// What every exact spatial index here (kdtree.h, grid.h) rests on: a box lower bound that never
// exceeds a computed distance, and the sorted structure-of-arrays layout the searches scan.
//
// box_bound() is computed with the very same operations as sq_dist3 (per-axis gap, square,
// ((x+y)+z) in x, y, z order), with the gap taken to the nearest face.  For a point p in the box
// |p - q| >= |face - q| exactly on every axis, and IEEE subtraction, multiplication and addition
// are monotone under round-to-nearest, so fl-bound <= fl-distance.  No epsilon is needed, and
// none is used.  The same holds for any box that contains the point, however loosely, so an
// index may prune with boxes of its own construction (tree nodes, runs of grid cells, slabs) as
// long as each box provably contains the points it stands for.
//
// Points with a non-finite coordinate never enter an index: their distance to every finite query
// is NaN or +inf, so the kernels treat them on the side (`special`), in index order.
#pragma once

#include <cmath>
#include <cstdint>
#include <vector>

#include "common/geometry.h"

namespace recon {
namespace spatial {

template <typename A>
inline bool finite3(A x, A y, A z) {
  return std::isfinite(x) && std::isfinite(y) && std::isfinite(z);
}

// Lower bound of sq_dist3(q, p) over every p in the box [lo, hi] (see the header comment).
template <typename A>
inline A box_bound(const A* lo, const A* hi, A qx, A qy, A qz) {
  const A gx = qx < lo[0] ? lo[0] - qx : (qx > hi[0] ? qx - hi[0] : A(0));
  const A gy = qy < lo[1] ? lo[1] - qy : (qy > hi[1] ? qy - hi[1] : A(0));
  const A gz = qz < lo[2] ? lo[2] - qz : (qz > hi[2] ? qz - hi[2] : A(0));
  return (gx * gx + gy * gy) + gz * gz;
}

// An index's finite points, permuted into its own order (tree leaves, grid cells) as separate
// x/y/z arrays; `id` maps a position back to the original index.  Within every leaf or cell the
// points ascend by original index, so a strict '<' scan breaks distance ties low.
template <typename A>
struct SortedPoints {
  std::vector<A> x, y, z;
  std::vector<int64_t> id;
  std::vector<int64_t> special;  // original indices of points with a non-finite coordinate

  bool empty() const { return id.empty(); }
  int64_t size() const { return static_cast<int64_t>(id.size()); }
};

}  // namespace spatial
}  // namespace recon
