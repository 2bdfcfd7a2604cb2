// Exact nearest-neighbour searches in a KdTree (kdtree.h): k nearest and the single nearest.
//
// Both are depth-first, nearer child first, with the exact prune rule of cannot_improve().
// Results are identical to a brute-force scan with topk_insert / closer (geometry.h) over all
// points in index order, whatever the visiting order, because that order is a total order on
// (distance, index) and every pruned point is provably after the current k-th candidate.
#pragma once

#include "common/geometry.h"
#include "spatial/kdtree.h"

namespace recon {
namespace spatial {

// Most leaves hold <= kMaxLeaf points (the builder's leaf_size must not exceed it).
constexpr int kMaxLeaf = 64;
// Depth of a median-split tree over < 2^31 points is <= 32; siblings pending on the stack <= depth.
constexpr int kStack = 72;

// Adds the k nearest neighbours of the finite query q among the tree's finite points into the
// sorted list dist/idx (already initialised, possibly with candidates).
template <typename A>
void knn_search(const KdTree<A>& t, A qx, A qy, A qz, int k, A* dist, int64_t* idx) {
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
    if (cannot_improve(stack[sp].bound, nodes[n].min_id, dist[k - 1], idx[k - 1])) continue;
    while (nodes[n].child >= 0) {
      int32_t l = nodes[n].child, r = l + 1;
      A bl = box_bound(nodes[l].lo, nodes[l].hi, qx, qy, qz);
      A br = box_bound(nodes[r].lo, nodes[r].hi, qx, qy, qz);
      if (br < bl) {
        std::swap(l, r);
        std::swap(bl, br);
      }
      if (!cannot_improve(br, nodes[r].min_id, dist[k - 1], idx[k - 1])) stack[sp++] = {br, r};
      if (cannot_improve(bl, nodes[l].min_id, dist[k - 1], idx[k - 1])) {
        n = -1;
        break;
      }
      n = l;
    }
    if (n < 0) continue;
    const int32_t b = nodes[n].begin, cnt = nodes[n].end - b;
    for (int32_t j = 0; j < cnt; ++j) dbuf[j] = sq_dist3(qx, qy, qz, px[b + j], py[b + j], pz[b + j]);
    A worst = dist[k - 1];
    int64_t wid = idx[k - 1];
    for (int32_t j = 0; j < cnt; ++j) {
      const A d = dbuf[j];
      if (d < worst || (d == worst && pid[b + j] < wid)) {
        topk_insert(dist, idx, k, d, pid[b + j]);
        worst = dist[k - 1];
        wid = idx[k - 1];
      }
    }
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
