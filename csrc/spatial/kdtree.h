// A kd-tree over one point cloud, shared by the exact spatial kNN, Chamfer and bucket-FPS kernels.
//
// Nodes are split at the median along their widest axis (depth log2(n) even for duplicated or
// degenerate clouds); each node keeps its bounding box, whose box_bound() (bounds.h) never exceeds
// the computed distance of a point inside, and the lowest original index it holds.
//
// Searches prune a node only when it provably cannot change the answer under the (distance,
// index) order of closer(): (bound, min_id) > the current worst (distance, index), i.e. bound >
// worst, or bound == worst and every index in the node is above the worst index.  Ties at a cell
// boundary are therefore always visited (search.h).
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <numeric>
#include <vector>

#include "spatial/bounds.h"

namespace recon {
namespace spatial {

template <typename A>
struct KdNode {
  A lo[3], hi[3];
  int32_t child;  // index of the left child (right = child + 1); -1 for a leaf
  int32_t begin, end;  // the node's points: [begin, end) of the permuted arrays
  int64_t min_id;  // smallest original index in the node (tie pruning)
};

template <typename A>
struct KdTree : SortedPoints<A> {
  // SortedPoints: every node's points are contiguous, each leaf sorted by original index.
  std::vector<KdNode<A>> nodes;  // nodes[0] is the root (absent when there is no finite point)
  int depth = 0;

  // pts: n points, AoS (x, y, z) in the accumulation type.
  void build(const A* pts, int64_t n, int leaf_size) {
    std::vector<Pt> work;
    work.reserve(n);
    auto& special = this->special;
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
    this->x.resize(m);
    this->y.resize(m);
    this->z.resize(m);
    this->id.resize(m);
    for (int32_t j = 0; j < m; ++j) {
      this->x[j] = work[j].c[0];
      this->y[j] = work[j].c[1];
      this->z[j] = work[j].c[2];
      this->id[j] = work[j].id;
    }
  }

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
