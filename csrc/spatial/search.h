// Exact nearest-neighbour searches (k nearest and the single nearest) over any index of this
// folder: the kd-tree (kdtree.h) and the uniform grid (grid.h) share everything but the walk.
//
// An accumulator (KnnAcc, NnAcc) holds the current answer and its worst (distance, index) key;
// a walk offers it contiguous runs of points (scan_run: one kd-tree leaf, one run of grid cells)
// and skips a region only when its key (lower bound, lowest index it may hold) is above that
// worst key.  Results are identical to a brute-force scan with topk_insert / closer (geometry.h)
// over all points in index order, whatever the visiting order, because (distance, index) is a
// total order and every skipped point is provably after the current worst candidate.
#pragma once

#include <algorithm>
#include <cstring>
#include <limits>
#include <utility>
#include <vector>

#include "common/geometry.h"
#include "spatial/bounds.h"
#include "spatial/kdtree.h"

namespace recon {
namespace spatial {

// Distances are computed a block of this many at a time into a small array (a loop the compiler
// vectorises), then offered one by one; runs of any length are scanned block by block.
constexpr int kMaxLeaf = 64;
// Depth of a median-split tree over < 2^31 points is <= 32; siblings pending on the stack <= depth.
constexpr int kStack = 72;

// The (distance, index) order of closer() as one comparable value.  For float, the key packs
// the distance's bit pattern (distances here are >= +0 and never NaN, and such floats order like
// their bits) above a 32-bit index, so every comparison is one branch-free integer compare.
template <typename A>
struct Key;

template <>
struct Key<float> {
  using type = uint64_t;
  static constexpr uint64_t kNoIndex = 0xffffffffu;  // above every index (< 2^31)
  static type make(float d, int64_t i) {
    uint32_t u;
    std::memcpy(&u, &d, sizeof u);
    return (static_cast<uint64_t>(u) << 32) | static_cast<uint64_t>(i);
  }
  static type none() { return make(std::numeric_limits<float>::infinity(), kNoIndex); }
  static float dist(type k) {
    const uint32_t u = static_cast<uint32_t>(k >> 32);
    float d;
    std::memcpy(&d, &u, sizeof d);
    return d;
  }
  static int64_t index(type k) {
    const uint64_t i = k & 0xffffffffu;
    return i == kNoIndex ? std::numeric_limits<int64_t>::max() : static_cast<int64_t>(i);
  }
};

template <>
struct Key<double> {
  using type = std::pair<double, int64_t>;
  static type make(double d, int64_t i) { return {d, i}; }
  static type none() {
    return {std::numeric_limits<double>::infinity(), std::numeric_limits<int64_t>::max()};
  }
  static double dist(const type& k) { return k.first; }
  static int64_t index(const type& k) { return k.second; }
};

// The k best keys so far, ascending (sorted insertion: for k <= a few dozen it moves fewer bytes
// than a heap's sift and keeps the k-th key at a fixed place for the prune test).
template <typename A>
struct KnnAcc {
  using KT = typename Key<A>::type;
  KT* kk;
  int k;
  const KT& worst() const { return kk[k - 1]; }
  void offer(const KT& key) {
    if (!(key < kk[k - 1])) return;
    int pos = k - 1;
    while (pos > 0 && key < kk[pos - 1]) {
      kk[pos] = kk[pos - 1];
      --pos;
    }
    kk[pos] = key;
  }
};

// The single best key so far.
template <typename A>
struct NnAcc {
  using KT = typename Key<A>::type;
  KT best;
  const KT& worst() const { return best; }
  void offer(const KT& key) { best = key < best ? key : best; }
};

// Offers the points [b, e) of an index's sorted arrays to `acc`.
template <typename A, typename Acc>
inline void scan_run(const SortedPoints<A>& p, int32_t b, int32_t e, A qx, A qy, A qz, Acc& acc) {
  using K = Key<A>;
  const A* px = p.x.data();
  const A* py = p.y.data();
  const A* pz = p.z.data();
  const int64_t* pid = p.id.data();
  A dbuf[kMaxLeaf];
  for (int32_t b0 = b; b0 < e; b0 += kMaxLeaf) {
    const int32_t cnt = std::min<int32_t>(kMaxLeaf, e - b0);
    for (int32_t j = 0; j < cnt; ++j)
      dbuf[j] = sq_dist3(qx, qy, qz, px[b0 + j], py[b0 + j], pz[b0 + j]);
    for (int32_t j = 0; j < cnt; ++j) acc.offer(K::make(dbuf[j], pid[b0 + j]));
  }
}

// Depth-first walk of a kd-tree, nearer child first; a node is skipped when (bound, min_id) >
// the accumulator's worst key, i.e. when none of its points can enter.
template <typename A, typename Acc>
void visit(const KdTree<A>& t, A qx, A qy, A qz, Acc& acc) {
  using K = Key<A>;
  using KT = typename K::type;
  if (t.empty()) return;
  const KdNode<A>* nodes = t.nodes.data();
  struct Item {
    KT key;
    int32_t node;
  } stack[kStack];
  int sp = 0;
  stack[sp++] = {K::make(box_bound(nodes[0].lo, nodes[0].hi, qx, qy, qz), nodes[0].min_id), 0};
  while (sp > 0) {
    --sp;
    if (stack[sp].key > acc.worst()) continue;
    int32_t n = stack[sp].node;
    while (nodes[n].child >= 0) {
      int32_t l = nodes[n].child, r = l + 1;
      KT kl = K::make(box_bound(nodes[l].lo, nodes[l].hi, qx, qy, qz), nodes[l].min_id);
      KT kr = K::make(box_bound(nodes[r].lo, nodes[r].hi, qx, qy, qz), nodes[r].min_id);
      if (kr < kl) {
        std::swap(l, r);
        std::swap(kl, kr);
      }
      if (!(kr > acc.worst())) stack[sp++] = {kr, r};
      if (kl > acc.worst()) {
        n = -1;
        break;
      }
      n = l;
    }
    if (n >= 0) scan_run(t, nodes[n].begin, nodes[n].end, qx, qy, qz, acc);
  }
}

// Reusable per-thread buffer of knn_search: the current k best keys, ascending.
template <typename A>
struct KnnScratch {
  std::vector<typename Key<A>::type> best;
};

// The k nearest neighbours of the finite query q among the index's finite points, written to
// dist/idx ascending by (distance, index); missing entries (fewer than k finite points) are
// (+inf, INT64_MAX) as after topk_init.  Index: KdTree, UniformGrid or AnyIndex.
template <typename A, typename Index>
void knn_search(const Index& index, A qx, A qy, A qz, int k, A* dist, int64_t* idx,
                KnnScratch<A>& s) {
  using K = Key<A>;
  s.best.assign(k, K::none());
  KnnAcc<A> acc{s.best.data(), k};
  visit(index, qx, qy, qz, acc);
  for (int j = 0; j < k; ++j) {
    dist[j] = K::dist(acc.kk[j]);
    idx[j] = K::index(acc.kk[j]);
  }
}

// The nearest finite index point to the finite query q, improving on the candidate (best, bid).
template <typename A, typename Index>
void nn_search(const Index& index, A qx, A qy, A qz, A& best_d, int64_t& best_i) {
  using K = Key<A>;
  NnAcc<A> acc{best_i == std::numeric_limits<int64_t>::max() ? K::none() : K::make(best_d, best_i)};
  visit(index, qx, qy, qz, acc);
  best_d = K::dist(acc.best);
  best_i = K::index(acc.best);
}

}  // namespace spatial
}  // namespace recon
