// A kd-tree over one point cloud, shared by the exact spatial kNN, Chamfer and bucket-FPS kernels.
//
// Exactness rests on one property: the lower bound of a box, box_bound(), is never larger than
// the distance sq_dist3() computes for any point inside the box, *including rounding*.  It is
// computed with the very same operations as sq_dist3 (per-axis gap, square, ((x+y)+z)), with the
// gap taken to the nearest face.  For a point p in the box |p - q| >= |face - q| exactly on every
// axis, and IEEE subtraction, multiplication and addition are monotone under round-to-nearest,
// so fl-bound <= fl-distance.  No epsilon is needed, and none is used.
//
// Searches prune a node only when it provably cannot change the answer under the (distance,
// index) order of closer(): (bound, min_id) > the current worst (distance, index), i.e. bound >
// worst, or bound == worst and every index in the node is above the worst index.  Ties at a cell
// boundary are therefore always visited (search.h).
//
// Points with a non-finite coordinate never enter the tree: their distance to every finite query
// is NaN or +inf, so the kernels treat them on the side (`special`), in index order.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <numeric>
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

template <typename A>
struct KdNode {
  A lo[3], hi[3];
  int32_t child;  // index of the left child (right = child + 1); -1 for a leaf
  int32_t begin, end;  // the node's points: [begin, end) of the permuted arrays
  int64_t min_id;  // smallest original index in the node (tie pruning)
};

template <typename A>
struct KdTree {
  // Finite points, permuted so that every node's points are contiguous; within a leaf they are
  // sorted by original index, so a strict '<' scan inside a leaf already breaks ties low.
  std::vector<A> x, y, z;
  std::vector<int64_t> id;
  std::vector<KdNode<A>> nodes;  // nodes[0] is the root (absent when there is no finite point)
  std::vector<int64_t> special;  // original indices of points with a non-finite coordinate
  int depth = 0;

  // pts: n points, AoS (x, y, z) in the accumulation type.
  void build(const A* pts, int64_t n, int leaf_size) {
    std::vector<Pt> work;
    work.reserve(n);
    special.clear();
    for (int64_t i = 0; i < n; ++i) {
      const A* p = pts + 3 * i;
      if (finite3(p[0], p[1], p[2]))
        work.push_back({{p[0], p[1], p[2]}, static_cast<int32_t>(i)});
      else
        special.push_back(i);
    }
    const int32_t m = static_cast<int32_t>(work.size());
    nodes.clear();
    depth = 0;
    if (m > 0) {
      nodes.reserve(4 * (m / std::max(1, leaf_size)) + 2);
      nodes.emplace_back();
      split(work.data(), 0, 0, m, std::max(1, leaf_size), 1);
    }
    x.resize(m);
    y.resize(m);
    z.resize(m);
    id.resize(m);
    for (int32_t j = 0; j < m; ++j) {
      x[j] = work[j].c[0];
      y[j] = work[j].c[1];
      z[j] = work[j].c[2];
      id[j] = work[j].id;
    }
  }

  bool empty() const { return nodes.empty(); }

 private:
  struct Pt {
    A c[3];
    int32_t id;
  };

  // Points are partitioned by value (not through an index array) so the build streams memory.
  void split(Pt* w, int32_t node, int32_t b, int32_t e, int leaf_size, int level) {
    depth = std::max(depth, level);
    A lo[3] = {w[b].c[0], w[b].c[1], w[b].c[2]};
    A hi[3] = {lo[0], lo[1], lo[2]};
    int32_t mn = w[b].id;
    for (int32_t j = b + 1; j < e; ++j) {
      for (int a = 0; a < 3; ++a) {
        lo[a] = std::min(lo[a], w[j].c[a]);
        hi[a] = std::max(hi[a], w[j].c[a]);
      }
      mn = std::min(mn, w[j].id);
    }
    {
      KdNode<A>& nd = nodes[node];
      for (int a = 0; a < 3; ++a) {
        nd.lo[a] = lo[a];
        nd.hi[a] = hi[a];
      }
      nd.begin = b;
      nd.end = e;
      nd.min_id = mn;
      nd.child = -1;
    }
    if (e - b <= leaf_size) {
      std::sort(w + b, w + e, [](const Pt& p, const Pt& q) { return p.id < q.id; });
      return;
    }
    int axis = 0;
    A ext = hi[0] - lo[0];
    for (int a = 1; a < 3; ++a)
      if (hi[a] - lo[a] > ext) {
        ext = hi[a] - lo[a];
        axis = a;
      }
    // Median split by count: depth stays log2(n) even for duplicated or degenerate clouds.
    const int32_t mid = b + (e - b) / 2;
    std::nth_element(w + b, w + mid, w + e,
                     [axis](const Pt& p, const Pt& q) { return p.c[axis] < q.c[axis]; });
    const int32_t child = static_cast<int32_t>(nodes.size());
    nodes[node].child = child;
    nodes.emplace_back();
    nodes.emplace_back();
    split(w, child, b, mid, leaf_size, level + 1);
    split(w, child + 1, mid, e, leaf_size, level + 1);
  }
};

}  // namespace spatial
}  // namespace recon
