// Exact nearest-neighbour searches in a KdTree (kdtree.h): k nearest and the single nearest.
//
// Both are depth-first, nearer child first, with the exact prune rule of cannot_improve().
// Results are identical to a brute-force scan with topk_insert / closer (geometry.h) over all
// points in index order, whatever the visiting order, because that order is a total order on
// (distance, index) and every pruned point is provably after the current k-th candidate.
#pragma once

#include <algorithm>
#include <cstdlib>
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

// Reusable per-thread buffers of knn_search.
template <typename A>
struct KnnScratch {
  std::vector<A> seed;
  std::vector<std::pair<A, int64_t>> cand;
};

// The k nearest neighbours of the finite query q among the tree's finite points, written to
// dist/idx ascending by (distance, index); missing entries (fewer than k finite points) are
// (+inf, INT64_MAX) as after topk_init.
//
// Two passes instead of one sorted insertion per accepted point (which dominated the profile):
//  1. the deepest node on the query's descent path holding >= 2k points gives a radius r = the
//     k-th smallest distance among its points, an upper bound of the true k-th distance;
//  2. every point with distance <= r is collected (nodes with bound > r are pruned: their points
//     are all beyond r, hence beyond the k-th), and the k first of them under the (distance,
//     index) order are selected.  All ties at r are collected, so the tie rule is exact.
template <typename A>
void knn_search(const KdTree<A>& t, A qx, A qy, A qz, int k, A* dist, int64_t* idx,
                KnnScratch<A>& s) {
  topk_init(dist, idx, k);
  if (t.empty()) return;
  const KdNode<A>* nodes = t.nodes.data();
  const A* px = t.x.data();
  const A* py = t.y.data();
  const A* pz = t.z.data();
  const int64_t* pid = t.id.data();
  // Pass 1: the seed radius.
  int32_t n = 0;
  static const int seedmul = getenv("RK_SEED") ? atoi(getenv("RK_SEED")) : 2;
  const int32_t want = seedmul * k;
  while (nodes[n].child >= 0) {
    int32_t l = nodes[n].child;
    const A bl = box_bound(nodes[l].lo, nodes[l].hi, qx, qy, qz);
    const A br = box_bound(nodes[l + 1].lo, nodes[l + 1].hi, qx, qy, qz);
    if (br < bl) ++l;
    if (nodes[l].end - nodes[l].begin < want) break;
    n = l;
  }
  A r = std::numeric_limits<A>::infinity();
  {
    const int32_t b = nodes[n].begin, cnt = nodes[n].end - b;
    if (cnt >= k) {
      s.seed.resize(cnt);
      A* sd = s.seed.data();
      for (int32_t j = 0; j < cnt; ++j) sd[j] = sq_dist3(qx, qy, qz, px[b + j], py[b + j], pz[b + j]);
      std::nth_element(sd, sd + (k - 1), sd + cnt);
      r = sd[k - 1];
    }
  }
  // Pass 2: everything within r.
  s.cand.clear();
  int32_t stack[kStack];
  int sp = 0;
  stack[sp++] = 0;
  A dbuf[kMaxLeaf];
  while (sp > 0) {
    n = stack[--sp];
    while (nodes[n].child >= 0) {
      const int32_t l = nodes[n].child;
      const bool in_l = !(box_bound(nodes[l].lo, nodes[l].hi, qx, qy, qz) > r);
      const bool in_r = !(box_bound(nodes[l + 1].lo, nodes[l + 1].hi, qx, qy, qz) > r);
      if (in_l && in_r) {
        stack[sp++] = l + 1;
        n = l;
      } else if (in_l) {
        n = l;
      } else if (in_r) {
        n = l + 1;
      } else {
        n = -1;
        break;
      }
    }
    if (n < 0) continue;
    const int32_t b = nodes[n].begin, cnt = nodes[n].end - b;
    for (int32_t j = 0; j < cnt; ++j) dbuf[j] = sq_dist3(qx, qy, qz, px[b + j], py[b + j], pz[b + j]);
    for (int32_t j = 0; j < cnt; ++j)
      if (dbuf[j] <= r) s.cand.emplace_back(dbuf[j], pid[b + j]);
  }
  auto* c = s.cand.data();
  const int64_t nc = static_cast<int64_t>(s.cand.size());
  const int64_t take = std::min<int64_t>(k, nc);
  // (distance, index) lexicographic: std::pair's own order; no NaN can be here.
  if (nc > take) std::nth_element(c, c + (take - 1), c + nc);
  std::sort(c, c + take);
  for (int64_t j = 0; j < take; ++j) {
    dist[j] = c[j].first;
    idx[j] = c[j].second;
  }
}

// The nearest finite tree point to the finite query q, improving on the candidate (best, bid).
template <typename A>
void nn_search(const KdTree<A>& t, A qx, A qy, A qz, A& best, int64_t& bid) {
  if (t.empty()) return;
  const KdNode<A>* nodes = t.nodes.data();
  const A* px = t.x.data();
  const A* py = t.y.data();
  const A* pz = t.z.data();
  const int64_t* pid = t.id.data();
  struct Item {
    A bound;
    int32_t node;
  } stack[kStack];
  int sp = 0;
  stack[sp++] = {box_bound(nodes[0].lo, nodes[0].hi, qx, qy, qz), 0};
  A dbuf[kMaxLeaf];
  while (sp > 0) {
    int32_t n = stack[--sp].node;
    if (cannot_improve(stack[sp].bound, nodes[n].min_id, best, bid)) continue;
    while (nodes[n].child >= 0) {
      int32_t l = nodes[n].child, r = l + 1;
      A bl = box_bound(nodes[l].lo, nodes[l].hi, qx, qy, qz);
      A br = box_bound(nodes[r].lo, nodes[r].hi, qx, qy, qz);
      if (br < bl) {
        std::swap(l, r);
        std::swap(bl, br);
      }
      if (!cannot_improve(br, nodes[r].min_id, best, bid)) stack[sp++] = {br, r};
      if (cannot_improve(bl, nodes[l].min_id, best, bid)) {
        n = -1;
        break;
      }
      n = l;
    }
    if (n < 0) continue;
    const int32_t b = nodes[n].begin, cnt = nodes[n].end - b;
    for (int32_t j = 0; j < cnt; ++j) dbuf[j] = sq_dist3(qx, qy, qz, px[b + j], py[b + j], pz[b + j]);
    for (int32_t j = 0; j < cnt; ++j) {
      const A d = dbuf[j];
      if (d < best || (d == best && pid[b + j] < bid)) {
        best = d;
        bid = pid[b + j];
      }
    }
  }
}

}  // namespace spatial
}  // namespace recon
