// Exact nearest-neighbour searches in a KdTree (kdtree.h): k nearest and the single nearest.
//
// Exact prune rule: a node goes only when (bound, min_id) > the current k-th (distance, index).
// Results are identical to a brute-force scan with topk_insert / closer (geometry.h) over all
// points in index order, whatever the visiting order, because that order is a total order on
// (distance, index) and every pruned point is provably after the current k-th candidate.
#pragma once

#include <algorithm>
#include <cstring>
#include <limits>
#include <utility>
#include <vector>

#include "common/geometry.h"
#include "spatial/kdtree.h"

namespace recon {
namespace spatial {

// Most leaves hold <= kMaxLeaf points (the builder's leaf_size must not exceed it).
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

// Reusable per-thread buffer of knn_search: the current k best keys, ascending.
template <typename A>
struct KnnScratch {
  std::vector<typename Key<A>::type> best;
};

// The k nearest neighbours of the finite query q among the tree's finite points, written to
// dist/idx ascending by (distance, index); missing entries (fewer than k finite points) are
// (+inf, INT64_MAX) as after topk_init.  Depth-first, nearer child first; a node is skipped
// when (bound, min_id) > the current k-th key, i.e. when none of its points can enter.
template <typename A>
void knn_search(const KdTree<A>& t, A qx, A qy, A qz, int k, A* dist, int64_t* idx,
                KnnScratch<A>& s) {
  using K = Key<A>;
  using KT = typename K::type;
  s.best.assign(k, K::none());
  KT* kk = s.best.data();
  if (!t.empty()) {
    const KdNode<A>* nodes = t.nodes.data();
    const A* px = t.x.data();
    const A* py = t.y.data();
    const A* pz = t.z.data();
    const int64_t* pid = t.id.data();
    struct Item {
      KT key;
      int32_t node;
    } stack[kStack];
    int sp = 0;
    stack[sp++] = {K::make(box_bound(nodes[0].lo, nodes[0].hi, qx, qy, qz), nodes[0].min_id), 0};
    A dbuf[kMaxLeaf];
    while (sp > 0) {
      --sp;
      if (stack[sp].key > kk[k - 1]) continue;
      int32_t n = stack[sp].node;
      while (nodes[n].child >= 0) {
        int32_t l = nodes[n].child, r = l + 1;
        KT kl = K::make(box_bound(nodes[l].lo, nodes[l].hi, qx, qy, qz), nodes[l].min_id);
        KT kr = K::make(box_bound(nodes[r].lo, nodes[r].hi, qx, qy, qz), nodes[r].min_id);
        if (kr < kl) {
          std::swap(l, r);
          std::swap(kl, kr);
        }
        if (!(kr > kk[k - 1])) stack[sp++] = {kr, r};
        if (kl > kk[k - 1]) {
          n = -1;
          break;
        }
        n = l;
      }
      if (n < 0) continue;
      const int32_t b = nodes[n].begin, cnt = nodes[n].end - b;
      for (int32_t j = 0; j < cnt; ++j) dbuf[j] = sq_dist3(qx, qy, qz, px[b + j], py[b + j], pz[b + j]);
      for (int32_t j = 0; j < cnt; ++j) {
        const KT key = K::make(dbuf[j], pid[b + j]);
        if (!(key < kk[k - 1])) continue;
        int pos = k - 1;
        while (pos > 0 && key < kk[pos - 1]) {
          kk[pos] = kk[pos - 1];
          --pos;
        }
        kk[pos] = key;
      }
    }
  }
  for (int j = 0; j < k; ++j) {
    dist[j] = K::dist(kk[j]);
    idx[j] = K::index(kk[j]);
  }
}

// The nearest finite tree point to the finite query q, improving on the candidate (best, bid).
template <typename A>
void nn_search(const KdTree<A>& t, A qx, A qy, A qz, A& best_d, int64_t& best_i) {
  using K = Key<A>;
  if (t.empty()) return;
  const KdNode<A>* nodes = t.nodes.data();
  const A* px = t.x.data();
  const A* py = t.y.data();
  const A* pz = t.z.data();
  const int64_t* pid = t.id.data();
  typename K::type best = best_i == std::numeric_limits<int64_t>::max() ? K::none() : K::make(best_d, best_i);
  struct Item {
    typename K::type key;  // (bound, min_id): nothing in the node comes before it
    int32_t node;
  } stack[kStack];
  int sp = 0;
  stack[sp++] = {K::make(box_bound(nodes[0].lo, nodes[0].hi, qx, qy, qz), nodes[0].min_id), 0};
  A dbuf[kMaxLeaf];
  while (sp > 0) {
    --sp;
    if (stack[sp].key > best) continue;
    int32_t n = stack[sp].node;
    while (nodes[n].child >= 0) {
      int32_t l = nodes[n].child, r = l + 1;
      auto kl = K::make(box_bound(nodes[l].lo, nodes[l].hi, qx, qy, qz), nodes[l].min_id);
      auto kr = K::make(box_bound(nodes[r].lo, nodes[r].hi, qx, qy, qz), nodes[r].min_id);
      if (kr < kl) {
        std::swap(l, r);
        std::swap(kl, kr);
      }
      if (!(kr > best)) stack[sp++] = {kr, r};
      if (kl > best) {
        n = -1;
        break;
      }
      n = l;
    }
    if (n < 0) continue;
    const int32_t b = nodes[n].begin, cnt = nodes[n].end - b;
    for (int32_t j = 0; j < cnt; ++j) dbuf[j] = sq_dist3(qx, qy, qz, px[b + j], py[b + j], pz[b + j]);
    for (int32_t j = 0; j < cnt; ++j) {
      const auto kj = K::make(dbuf[j], pid[b + j]);
      best = kj < best ? kj : best;
    }
  }
  best_d = K::dist(best);
  best_i = K::index(best);
}

}  // namespace spatial
}  // namespace recon
