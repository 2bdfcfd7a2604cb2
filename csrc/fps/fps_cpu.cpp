// Farthest point sampling on the CPU: the inputs are checked once, then one cost-model choice
// (spatial/plan.h) between two paths that select the same indices:
//  * brute force, O(npoint · N) per cloud: each step folds the distance to the last chosen point
//    into a running minimum and takes the arg-max of that minimum, both in one pass over
//    per-cloud x/y/z arrays; the arg-max is kept per SIMD lane (strict '>' in index order keeps
//    each lane's first maximum) and the lanes are merged with fps_better, so the result is the
//    exact (key, lowest index) arg-max;
//  * buckets with spatial pruning (the bucket idea of QuickFPS): the points live in kd-tree
//    leaves; every node keeps the largest running distance of its points and the lowest index
//    reaching it.  Selecting a new point c can only lower the running distance of a point p when
//    sq_dist3(p, c) < mind[p] <= max over the node, so every node whose box lower bound
//    (spatial/bounds.h: never above the computed distance) is >= that maximum is skipped whole.
//    The arg-max is the root's (key, index) pair under fps_better: same start index, same tie
//    rule (lowest index among equal keys, across buckets too).
#include <ATen/ATen.h>
#include <ATen/Dispatch.h>
#include <ATen/Parallel.h>
#include <torch/library.h>

#include <limits>
#include <vector>

#include "common/cpu_utils.h"
#include "common/geometry.h"
#include "common/simd.h"
#include "fps/fps.h"
#include "spatial/kdtree.h"
#include "spatial/plan.h"

namespace recon {
namespace {

// ---------------------------------------------------------------------------------------------
// Brute force

template <typename A>
struct FpsBest {
  A key;
  int64_t idx;  // -1: no point can win (all keys NaN) in the range
};

template <typename A>
RECON_ALWAYS_INLINE FpsBest<A> fps_step_impl(const A* __restrict x, const A* __restrict y,
                                             const A* __restrict z, A* __restrict mind,
                                             int64_t begin, int64_t end, A cx, A cy, A cz) {
  using S = simd::Vec<A>;
  using V = typename S::V;
  using M = typename S::M;
  constexpr int W = S::W;
  constexpr A kNegInf = -std::numeric_limits<A>::infinity();
  const V vx = simd::splat<V>(cx), vy = simd::splat<V>(cy), vz = simd::splat<V>(cz);
  // Two independent accumulators (2W lanes) hide the latency of the compare/blend chain.
  V best0 = simd::splat<V>(kNegInf), best1 = best0;
  M bidx0 = simd::iota<M>(0) * 0, bidx1 = bidx0;
  M j0 = simd::iota<M>(begin), j1 = simd::iota<M>(begin + W);
  const M step = bidx0 + 2 * W;
  int64_t j = begin;
  for (; j + 2 * W <= end; j += 2 * W) {
    const V d0 = sq_dist3(simd::load<V>(x + j), simd::load<V>(y + j), simd::load<V>(z + j), vx, vy, vz);
    const V d1 = sq_dist3(simd::load<V>(x + j + W), simd::load<V>(y + j + W), simd::load<V>(z + j + W),
                          vx, vy, vz);
    V m0 = simd::load<V>(mind + j), m1 = simd::load<V>(mind + j + W);
    m0 = ((d0 < m0) | (d0 != d0)) ? d0 : m0;  // fps_min, lane-wise: NaN propagates
    m1 = ((d1 < m1) | (d1 != d1)) ? d1 : m1;
    simd::store(mind + j, m0);
    simd::store(mind + j + W, m1);
    const M w0 = m0 > best0, w1 = m1 > best1;  // NaN never wins; equal keys keep the earlier index
    best0 = w0 ? m0 : best0;
    bidx0 = w0 ? j0 : bidx0;
    best1 = w1 ? m1 : best1;
    bidx1 = w1 ? j1 : bidx1;
    j0 += step;
    j1 += step;
  }
  FpsBest<A> r{kNegInf, -1};
  for (; j < end; ++j) {
    const A m = fps_min(mind[j], sq_dist3(x[j], y[j], z[j], cx, cy, cz));
    mind[j] = m;
    if (m > kNegInf && fps_better(m, j, r.key, r.idx)) r = {m, j};
  }
  for (int l = 0; l < W; ++l) {
    const A k0 = best0[l], k1 = best1[l];
    const int64_t i0 = bidx0[l], i1 = bidx1[l];
    if (k0 > kNegInf && fps_better(k0, i0, r.key, r.idx)) r = {k0, i0};
    if (k1 > kNegInf && fps_better(k1, i1, r.key, r.idx)) r = {k1, i1};
  }
  return r;
}

RECON_CLONES FpsBest<float> fps_step_f32(const float* x, const float* y, const float* z, float* mind,
                                         int64_t begin, int64_t end, float cx, float cy, float cz) {
  return fps_step_impl<float>(x, y, z, mind, begin, end, cx, cy, cz);
}
RECON_CLONES FpsBest<double> fps_step_f64(const double* x, const double* y, const double* z,
                                          double* mind, int64_t begin, int64_t end, double cx,
                                          double cy, double cz) {
  return fps_step_impl<double>(x, y, z, mind, begin, end, cx, cy, cz);
}
inline FpsBest<float> fps_step(const float* x, const float* y, const float* z, float* mind,
                               int64_t b, int64_t e, float cx, float cy, float cz) {
  return fps_step_f32(x, y, z, mind, b, e, cx, cy, cz);
}
inline FpsBest<double> fps_step(const double* x, const double* y, const double* z, double* mind,
                                int64_t b, int64_t e, double cx, double cy, double cz) {
  return fps_step_f64(x, y, z, mind, b, e, cx, cy, cz);
}

// FPS of one cloud given as x/y/z arrays of n points.  `mind` is n scratch values.  With
// `inner_threads` the pass over the points of each step is split over threads (for batches
// smaller than the thread count); the caller must then not be inside a parallel region.
template <typename A>
void fps_cloud(const A* x, const A* y, const A* z, int64_t n, int64_t npoint, int64_t start,
               A* mind, int64_t* out, bool inner_threads) {
  std::fill(mind, mind + n, std::numeric_limits<A>::infinity());
  int64_t last = start;
  out[0] = last;
  const int64_t grain = 8192;
  const int64_t nchunks = inner_threads ? (n + grain - 1) / grain : 1;
  std::vector<FpsBest<A>> partial(nchunks);
  for (int64_t i = 1; i < npoint; ++i) {
    const A cx = x[last], cy = y[last], cz = z[last];
    FpsBest<A> r;
    if (nchunks > 1) {
      at::parallel_for(0, nchunks, 1, [&](int64_t c0, int64_t c1) {
        for (int64_t c = c0; c < c1; ++c) {
          partial[c] = fps_step(x, y, z, mind, c * grain, std::min(n, (c + 1) * grain), cx, cy, cz);
        }
      });
      r = partial[0];
      for (int64_t c = 1; c < nchunks; ++c) {
        if (partial[c].idx >= 0 && (r.idx < 0 || fps_better(partial[c].key, partial[c].idx, r.key, r.idx))) {
          r = partial[c];
        }
      }
    } else {
      r = fps_step(x, y, z, mind, 0, n, cx, cy, cz);
    }
    last = r.idx < 0 ? 0 : r.idx;  // nothing can win (all NaN): index 0, like argmax of all -inf
    out[i] = last;
  }
}

// ---------------------------------------------------------------------------------------------
// Buckets

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
    force_ = !spatial::finite3(cx, cy, cz);
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
    const spatial::KdNode<A>& nd = tree_.nodes[n];
    if (!force_ && !(spatial::box_bound(nd.lo, nd.hi, cx, cy, cz) < nmax_[n])) return;
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
  spatial::KdTree<A> tree_;
  std::vector<A> mind_, nmax_, smind_;
  std::vector<int64_t> nbest_;
  bool force_ = false;
};

// ---------------------------------------------------------------------------------------------
// Entry: one check, one choice

at::Tensor fps_run(const at::Tensor& xyz, int64_t npoint, int64_t start_idx, spatial::Path path) {
  check_fps_args(xyz, npoint, start_idx, c10::DeviceType::CPU);
  const int64_t B = xyz.size(0), N = xyz.size(1);
  at::Tensor idx = at::empty({B, npoint}, xyz.options().dtype(at::kLong));
  if (B == 0) return idx;
  int64_t* out = idx.data_ptr<int64_t>();
  if (spatial::use_index(path, spatial::fps_prefers_buckets(B, N, npoint))) {
    const at::Tensor p = cpu::to_acc(xyz);
    AT_DISPATCH_FLOATING_TYPES(p.scalar_type(), "fps_cpu_buckets", [&] {
      const scalar_t* pp = p.data_ptr<scalar_t>();
      at::parallel_for(0, B, 1, [&](int64_t b0, int64_t b1) {
        for (int64_t b = b0; b < b1; ++b) {
          int64_t* o = out + b * npoint;
          BucketFps<scalar_t> fps(pp + 3 * b * N, N);
          o[0] = start_idx;
          for (int64_t s = 1; s < npoint; ++s) o[s] = fps.step(o[s - 1]);
        }
      });
    });
    return idx;
  }
  const at::Tensor soa = cpu::to_soa(xyz);  // (B, 3, N)
  const bool inner = B < at::get_num_threads() && N >= 32768;
  AT_DISPATCH_FLOATING_TYPES(soa.scalar_type(), "fps_cpu", [&] {
    const scalar_t* p = soa.data_ptr<scalar_t>();
    auto run = [&](int64_t b, scalar_t* mind) {
      const scalar_t* c = p + b * 3 * N;
      fps_cloud<scalar_t>(c, c + N, c + 2 * N, N, npoint, start_idx, mind, out + b * npoint, inner);
    };
    if (inner) {
      std::vector<scalar_t> mind(N);
      for (int64_t b = 0; b < B; ++b) run(b, mind.data());
    } else {
      at::parallel_for(0, B, 1, [&](int64_t b0, int64_t b1) {
        std::vector<scalar_t> mind(N);
        for (int64_t b = b0; b < b1; ++b) run(b, mind.data());
      });
    }
  });
  return idx;
}

}  // namespace

at::Tensor furthest_point_sample_cpu(const at::Tensor& xyz, int64_t npoint, int64_t start_idx) {
  return fps_run(xyz, npoint, start_idx, spatial::Path::kAuto);
}

at::Tensor fps_path_cpu(const at::Tensor& xyz, int64_t npoint, int64_t start_idx,
                        const std::string& path) {
  return fps_run(xyz, npoint, start_idx, spatial::parse_path(path, "_fps_path", false));
}

}  // namespace recon

TORCH_LIBRARY_IMPL(recon, CPU, m) {
  m.impl("furthest_point_sample", &recon::furthest_point_sample_cpu);
  m.impl("_fps_path", &recon::fps_path_cpu);
}
