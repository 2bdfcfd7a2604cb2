// Exact farthest point sampling with spatial pruning (the bucket idea of QuickFPS): the points
// live in kd-tree leaves ("buckets"); every node keeps the largest running distance of its points
// and the lowest index reaching it.  Selecting a new point c can only lower the running distance
// of a point p when sq_dist3(p, c) < mind[p] <= max over the node, so every node whose box lower
// bound (kdtree.h: never above the computed distance) is >= that maximum is skipped whole.  The
// arg-max is the root's (key, index) pair under fps_better, i.e. the brute-force kernel's choice:
// same start index, same tie rule (lowest index among equal keys, across buckets too).
#include <ATen/Parallel.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

#include "spatial/kdtree.h"
#include "spatial/spatial.h"
#include "spatial/util.h"

namespace recon {
namespace spatial {
namespace {

constexpr int kLeaf = 64;
constexpr int64_t kNone = std::numeric_limits<int64_t>::max();

template <typename A>
class BucketFps {
 public:
  BucketFps(const A* pts, int64_t n) : pts_(pts) {
    tree_.build(pts, n, kLeaf);
    const size_t nn = tree_.nodes.size();
    const A inf = std::numeric_limits<A>::infinity();
    mind_.assign(tree_.id.size(), inf);
    nmax_.assign(nn, inf);
    nbest_.resize(nn);
    for (size_t i = 0; i < nn; ++i) nbest_[i] = tree_.nodes[i].min_id;
    smind_.assign(tree_.special.size(), inf);
  }

  // Folds point `c` into the chosen set and returns the next farthest point.
  int64_t step(int64_t c) {
    const A* p = pts_ + 3 * c;
    const A cx = p[0], cy = p[1], cz = p[2];
    // A non-finite centre gives NaN/inf distances that the box bound does not describe.
    force_ = !finite3(cx, cy, cz);
    if (!tree_.empty()) update(0, cx, cy, cz);
    A best = -std::numeric_limits<A>::infinity();
    int64_t bid = kNone;
    if (!tree_.empty()) {
      best = nmax_[0];
      bid = nbest_[0];
    }
    for (size_t s = 0; s < tree_.special.size(); ++s) {
      const int64_t i = tree_.special[s];
      const A* q = pts_ + 3 * i;
      smind_[s] = fps_min(smind_[s], sq_dist3(q[0], q[1], q[2], cx, cy, cz));
      if (fps_better(smind_[s], i, best, bid)) {
        best = smind_[s];
        bid = i;
      }
    }
    return bid == kNone ? 0 : bid;  // nobody can win (all NaN): index 0, as the reference
  }

 private:
  void update(int32_t n, A cx, A cy, A cz) {
    const KdNode<A>& nd = tree_.nodes[n];
    if (!force_ && !(box_bound(nd.lo, nd.hi, cx, cy, cz) < nmax_[n])) return;
    if (nd.child < 0) {
      const int32_t b = nd.begin, e = nd.end;
      A* md = mind_.data();
      const A* px = tree_.x.data();
      const A* py = tree_.y.data();
      const A* pz = tree_.z.data();
      // Reference order: d = p - c.
      for (int32_t j = b; j < e; ++j) md[j] = fps_min(md[j], sq_dist3(px[j], py[j], pz[j], cx, cy, cz));
      // Max over the non-NaN keys (NaN never wins, never shrinks); leaves are sorted by index,
      // so the first maximum is the lowest index.
      A mx = -std::numeric_limits<A>::infinity();
      for (int32_t j = b; j < e; ++j) mx = md[j] > mx ? md[j] : mx;
      int64_t bid = kNone;
      for (int32_t j = b; j < e; ++j)
        if (md[j] == mx) {
          bid = tree_.id[j];
          break;
        }
      nmax_[n] = mx;
      nbest_[n] = bid;
      return;
    }
    const int32_t l = nd.child, r = l + 1;
    update(l, cx, cy, cz);
    update(r, cx, cy, cz);
    if (fps_better(nmax_[r], nbest_[r], nmax_[l], nbest_[l])) {
      nmax_[n] = nmax_[r];
      nbest_[n] = nbest_[r];
    } else {
      nmax_[n] = nmax_[l];
      nbest_[n] = nbest_[l];
    }
  }

  const A* pts_;
  KdTree<A> tree_;
  std::vector<A> mind_, nmax_, smind_;
  std::vector<int64_t> nbest_;
  bool force_ = false;
};

template <typename A>
void fps_brute_one(const A* pts, int64_t N, int64_t npoint, int64_t start, int64_t* out) {
  std::vector<A> mind(N, std::numeric_limits<A>::infinity());
  int64_t last = start;
  out[0] = last;
  for (int64_t s = 1; s < npoint; ++s) {
    const A cx = pts[3 * last], cy = pts[3 * last + 1], cz = pts[3 * last + 2];
    A best = -std::numeric_limits<A>::infinity();
    int64_t bid = kNone;
    for (int64_t i = 0; i < N; ++i) {
      mind[i] = fps_min(mind[i], sq_dist3(pts[3 * i], pts[3 * i + 1], pts[3 * i + 2], cx, cy, cz));
      if (fps_better(mind[i], i, best, bid)) {
        best = mind[i];
        bid = i;
      }
    }
    last = bid == kNone ? 0 : bid;
    out[s] = last;
  }
}

}  // namespace

bool fps_prefers_buckets(int64_t B, int64_t N, int64_t npoint) {
  (void)B;
  // Buckets pay a tree build and a walk per step; they win once most buckets can be skipped,
  // i.e. once the chosen set is dense enough.  Measured crossover on a 2-core x86-64
  // (benchmarks/peers.py).
  return N >= 2048 && npoint >= 32;
}

at::Tensor furthest_point_sample_cpu(const at::Tensor& xyz, int64_t npoint, int64_t start_idx,
                                     Path path) {
  check_cloud(xyz, "xyz");
  const int64_t B = xyz.size(0), N = xyz.size(1);
  TORCH_CHECK_VALUE(npoint >= 0 && npoint <= N, "npoint must satisfy 0 <= npoint <= N = ", N,
                    ", got ", npoint);
  TORCH_CHECK_VALUE(npoint == 0 || (start_idx >= 0 && start_idx < N),
                    "start_idx must satisfy 0 <= start_idx < N = ", N, ", got ", start_idx);
  at::Tensor out = at::empty({B, npoint}, xyz.options().dtype(at::kLong));
  if (B == 0 || npoint == 0) return out;
  const at::Tensor p = acc_view(xyz);
  const bool buckets =
      path == Path::kIndex || (path == Path::kAuto && fps_prefers_buckets(B, N, npoint));
  AT_DISPATCH_FLOATING_TYPES(p.scalar_type(), "recon_fps_bucket", [&] {
    const scalar_t* pp = p.data_ptr<scalar_t>();
    int64_t* op = out.data_ptr<int64_t>();
    at::parallel_for(0, B, 1, [&](int64_t b0, int64_t b1) {
      for (int64_t b = b0; b < b1; ++b) {
        const scalar_t* pts = pp + 3 * b * N;
        int64_t* o = op + b * npoint;
        if (!buckets) {
          fps_brute_one(pts, N, npoint, start_idx, o);
          continue;
        }
        BucketFps<scalar_t> fps(pts, N);
        o[0] = start_idx;
        for (int64_t s = 1; s < npoint; ++s) o[s] = fps.step(o[s - 1]);
      }
    });
  });
  return out;
}

}  // namespace spatial
}  // namespace recon
