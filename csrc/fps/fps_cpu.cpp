// Farthest point sampling on the CPU: the inputs are checked once, then one cost-model choice
// (spatial/plan.h) between two paths that select the same indices:
//  * brute force, O(npoint · N) per cloud: each step folds the distance to the last chosen point
//    into a running minimum and takes the arg-max of that minimum, both in one pass over
//    per-cloud x/y/z arrays; the arg-max is kept per SIMD lane (strict '>' in index order keeps
//    each lane's first maximum) and the lanes are merged with fps_better, so the result is the
//    exact (key, lowest index) arg-max;
//  * buckets with spatial pruning (the bucket idea of QuickFPS): the points are grouped into
//    buckets of nearby points (pieces of a Morton-curve order, see "Buckets" below); every bucket
//    keeps the largest running distance of its points and the lowest index reaching it.
//    Selecting a new point c can only lower the running distance of a point p when
//    sq_dist3(p, c) < mind[p] <= max over the bucket, so every bucket whose box lower bound
//    (spatial/bounds.h: never above the computed distance) is >= that maximum is skipped whole.
//    The arg-max is the best bucket's (key, index) pair under fps_better: same start index,
//    same tie rule (lowest index among equal keys, across buckets too).  Batches smaller than
//    the thread count advance in lock step, each step split over (cloud, bucket range) tasks.
#include <ATen/ATen.h>
#include <ATen/Dispatch.h>
#include <ATen/Parallel.h>
#include <torch/library.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <utility>
#include <vector>

#include "common/cpu_utils.h"
#include "common/geometry.h"
#include "common/ragged.h"
#include "common/simd.h"
#include "fps/fps.h"
#include "spatial/bounds.h"
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
//
// The finite points are sorted along a Morton (Z-order) curve of their cloud's bounding box
// (10 bits per axis, a stable radix sort: O(N), no data-dependent branches), and the sorted run is
// cut at the Morton bits (a midpoint split along x, y, z in turn) until every piece holds at most
// kLeaf points: the pieces are the buckets.  Each bucket keeps the box of its points, its points
// (padded to a multiple of the SIMD width with NaN points, whose key stays NaN and so never wins)
// and its largest running distance (key) with the position of the lowest index reaching it.
// Per step, the box bounds of W buckets at a time are compared with their keys; only the buckets
// that can change are updated.  A bucket's maximum is rescanned only when the running distance
// at its arg-max position moved: keys never grow, so otherwise the maximum and its (lowest-index)
// position stay.  Points with a non-finite coordinate stay on the side (spatial/bounds.h).

constexpr int kLeaf = 64;
constexpr int64_t kNone = std::numeric_limits<int64_t>::max();

// The 10 low bits of v spread to every third bit.
inline uint32_t spread3(uint32_t v) {
  v &= 0x3ffu;
  v = (v | (v << 16)) & 0x030000ffu;
  v = (v | (v << 8)) & 0x0300f00fu;
  v = (v | (v << 4)) & 0x030c30c3u;
  v = (v | (v << 2)) & 0x09249249u;
  return v;
}

template <typename A>
struct Buckets {
  static constexpr int W = simd::Vec<A>::W;
  int64_t nb = 0;  // buckets, padded to a multiple of W with empty ones (key -inf)
  std::vector<A> lox, loy, loz, hix, hiy, hiz, key;
  std::vector<int32_t> beg, end, pos;  // pos: arg-max position, -1 when no point can win
  std::vector<int64_t> bid;  // original index at pos (kNone when none)
  std::vector<A> x, y, z, mind;
  std::vector<int64_t> id;
  std::vector<int64_t> special;  // points with a non-finite coordinate, in index order
  std::vector<A> smind;

  void build(const A* pts, int64_t n) {
    const A inf = std::numeric_limits<A>::infinity(), nan = std::numeric_limits<A>::quiet_NaN();
    special.clear();
    A lo[3] = {inf, inf, inf}, hi[3] = {-inf, -inf, -inf};
    for (int64_t i = 0; i < n; ++i) {
      const A* p = pts + 3 * i;
      if (!spatial::finite3(p[0], p[1], p[2])) {
        special.push_back(i);
        continue;
      }
      for (int a = 0; a < 3; ++a) {
        lo[a] = std::min(lo[a], p[a]);
        hi[a] = std::max(hi[a], p[a]);
      }
    }
    smind.assign(special.size(), inf);
    // Morton codes (the quantisation only groups points; the boxes below are the points' own).
    double scale[3];
    for (int a = 0; a < 3; ++a) {
      const double ext = static_cast<double>(hi[a]) - static_cast<double>(lo[a]);
      scale[a] = ext > 0 && std::isfinite(ext) ? 1023.0 / ext : 0.0;
    }
    std::vector<uint64_t> keys, tmp;  // code << 32 | original index
    keys.reserve(n - special.size());
    for (int64_t i = 0; i < n; ++i) {
      const A* p = pts + 3 * i;
      if (!spatial::finite3(p[0], p[1], p[2])) continue;
      uint32_t c = 0;
      for (int a = 0; a < 3; ++a) {
        const double q = (static_cast<double>(p[a]) - static_cast<double>(lo[a])) * scale[a];
        c |= spread3(static_cast<uint32_t>(std::min(1023.0, std::max(0.0, q)))) << a;
      }
      keys.push_back(static_cast<uint64_t>(c) << 32 | static_cast<uint64_t>(i));
    }
    const int64_t m = static_cast<int64_t>(keys.size());
    tmp.resize(m);
    for (int shift = 32; shift < 62; shift += 10) {  // stable LSD radix sort on the 30 code bits
      int64_t count[1025] = {0};
      for (uint64_t k : keys) ++count[((k >> shift) & 1023) + 1];
      for (int d = 0; d < 1024; ++d) count[d + 1] += count[d];
      for (uint64_t k : keys) tmp[count[(k >> shift) & 1023]++] = k;
      keys.swap(tmp);
    }
    std::vector<std::pair<int64_t, int64_t>> pieces;
    cut(keys, 0, m, 61, pieces);
    nb = (static_cast<int64_t>(pieces.size()) + W - 1) / W * W;
    for (auto* v : {&lox, &loy, &loz, &hix, &hiy, &hiz}) v->assign(nb, A(0));
    key.assign(nb, -inf);
    beg.assign(nb, 0);
    end.assign(nb, 0);
    pos.assign(nb, -1);
    bid.assign(nb, kNone);
    int64_t total = 0;
    for (const auto& pc : pieces) total += (pc.second - pc.first + W - 1) / W * W;
    x.assign(total, nan);
    y.assign(total, nan);
    z.assign(total, nan);
    mind.assign(total, nan);
    id.assign(total, kNone);
    int32_t at = 0;
    for (size_t b = 0; b < pieces.size(); ++b) {
      A blo[3] = {inf, inf, inf}, bhi[3] = {-inf, -inf, -inf};
      beg[b] = at;
      for (int64_t j = pieces[b].first; j < pieces[b].second; ++j, ++at) {
        const int64_t i = static_cast<int64_t>(keys[j] & 0xffffffffu);
        const A* p = pts + 3 * i;
        x[at] = p[0], y[at] = p[1], z[at] = p[2];
        for (int a = 0; a < 3; ++a) {
          blo[a] = std::min(blo[a], p[a]);
          bhi[a] = std::max(bhi[a], p[a]);
        }
        id[at] = i;
        mind[at] = inf;
        if (i < bid[b]) {  // every key is +inf: the lowest index is the arg-max
          bid[b] = i;
          pos[b] = at;
        }
      }
      lox[b] = blo[0], loy[b] = blo[1], loz[b] = blo[2];
      hix[b] = bhi[0], hiy[b] = bhi[1], hiz[b] = bhi[2];
      key[b] = inf;
      at = beg[b] + static_cast<int32_t>((pieces[b].second - pieces[b].first + W - 1) / W * W);
      end[b] = at;
    }
  }

 private:
  // Splits the sorted run [b, e) at Morton bit `bit` (and below) until pieces hold <= kLeaf points.
  static void cut(const std::vector<uint64_t>& keys, int64_t b, int64_t e, int bit,
                  std::vector<std::pair<int64_t, int64_t>>& out) {
    if (b >= e) return;
    if (e - b <= kLeaf || bit < 32) {
      out.emplace_back(b, e);
      return;
    }
    // Codes in [b, e) share the bits above `bit`; the first key with `bit` set starts the right half.
    const uint64_t split = (keys[b] >> (bit + 1) << (bit + 1)) | (uint64_t(1) << bit);
    const int64_t mid = std::lower_bound(keys.begin() + b, keys.begin() + e, split) - keys.begin();
    cut(keys, b, mid, bit - 1, out);
    cut(keys, mid, e, bit - 1, out);
  }
};

// Folds centre c into buckets [b0, b1) (multiples of W) and returns their arg-max.
template <typename A>
RECON_ALWAYS_INLINE FpsBest<A> bucket_step_impl(Buckets<A>& s, int64_t b0, int64_t b1, A cx, A cy, A cz,
                                                bool force) {
  using S = simd::Vec<A>;
  using V = typename S::V;
  constexpr int W = S::W;
  constexpr A kNegInf = -std::numeric_limits<A>::infinity();
  const V qx = simd::splat<V>(cx), qy = simd::splat<V>(cy), qz = simd::splat<V>(cz), zero = simd::splat<V>(A(0));
  A* __restrict md = s.mind.data();
  const A* __restrict px = s.x.data();
  const A* __restrict py = s.y.data();
  const A* __restrict pz = s.z.data();
  for (int64_t b = b0; b < b1; b += W) {
    // box_bound (spatial/bounds.h), W buckets at a time, the same operations lane-wise.
    const V lx = simd::load<V>(&s.lox[b]), hx = simd::load<V>(&s.hix[b]);
    const V ly = simd::load<V>(&s.loy[b]), hy = simd::load<V>(&s.hiy[b]);
    const V lz = simd::load<V>(&s.loz[b]), hz = simd::load<V>(&s.hiz[b]);
    const V gx = qx < lx ? lx - qx : (qx > hx ? qx - hx : zero);
    const V gy = qy < ly ? ly - qy : (qy > hy ? qy - hy : zero);
    const V gz = qz < lz ? lz - qz : (qz > hz ? qz - hz : zero);
    const V bound = (gx * gx + gy * gy) + gz * gz;
    const auto hit = bound < simd::load<V>(&s.key[b]);
    if (!force && !simd::any(hit)) continue;
    for (int l = 0; l < W; ++l) {
      if (!force && !hit[l]) continue;
      const int64_t k = b + l;
      const int32_t e = s.end[k], p = s.pos[k];
      const A old = p >= 0 ? md[p] : A(0);
      for (int32_t j = s.beg[k]; j < e; j += W) {
        const V d = sq_dist3(simd::load<V>(px + j), simd::load<V>(py + j), simd::load<V>(pz + j), qx, qy, qz);
        V m = simd::load<V>(md + j);
        m = ((d < m) | (d != d)) ? d : m;  // fps_min, lane-wise: NaN propagates
        simd::store(md + j, m);
      }
      if (p >= 0 && md[p] == old) continue;  // the arg-max kept its key: nothing above it appeared
      V mx = simd::splat<V>(kNegInf);
      for (int32_t j = s.beg[k]; j < e; j += W) {
        const V m = simd::load<V>(md + j);
        mx = m > mx ? m : mx;  // NaN never wins
      }
      A best = kNegInf;
      for (int i = 0; i < W; ++i) best = mx[i] > best ? mx[i] : best;
      s.key[k] = best;
      s.pos[k] = -1;
      s.bid[k] = kNone;
      if (best == kNegInf) continue;  // only NaN keys left
      for (int32_t j = s.beg[k]; j < e; ++j)
        if (md[j] == best && s.id[j] < s.bid[k]) {  // ties: the lowest original index
          s.pos[k] = j;
          s.bid[k] = s.id[j];
        }
    }
  }
  FpsBest<A> r{kNegInf, -1};
  for (int64_t b = b0; b < b1; ++b)
    if (s.pos[b] >= 0 && (r.idx < 0 || fps_better(s.key[b], s.bid[b], r.key, r.idx))) r = {s.key[b], s.bid[b]};
  return r;
}

RECON_CLONES FpsBest<float> bucket_step_f32(Buckets<float>& s, int64_t b0, int64_t b1, float cx, float cy,
                                            float cz, bool force) {
  return bucket_step_impl<float>(s, b0, b1, cx, cy, cz, force);
}
RECON_CLONES FpsBest<double> bucket_step_f64(Buckets<double>& s, int64_t b0, int64_t b1, double cx,
                                             double cy, double cz, bool force) {
  return bucket_step_impl<double>(s, b0, b1, cx, cy, cz, force);
}
inline FpsBest<float> bucket_step(Buckets<float>& s, int64_t b0, int64_t b1, float cx, float cy, float cz,
                                  bool force) {
  return bucket_step_f32(s, b0, b1, cx, cy, cz, force);
}
inline FpsBest<double> bucket_step(Buckets<double>& s, int64_t b0, int64_t b1, double cx, double cy, double cz,
                                   bool force) {
  return bucket_step_f64(s, b0, b1, cx, cy, cz, force);
}

// Merges a partial arg-max into r (fps_better order; idx < 0: nothing can win there).
template <typename A>
inline void fps_merge(FpsBest<A>& r, const FpsBest<A>& p) {
  if (p.idx >= 0 && (r.idx < 0 || fps_better(p.key, p.idx, r.key, r.idx))) r = p;
}

// The points with a non-finite coordinate, folded in after the buckets; returns the next index.
template <typename A>
int64_t bucket_finish(Buckets<A>& s, const A* pts, FpsBest<A> r, A cx, A cy, A cz) {
  for (size_t k = 0; k < s.special.size(); ++k) {
    const int64_t i = s.special[k];
    const A* q = pts + 3 * i;
    s.smind[k] = fps_min(s.smind[k], sq_dist3(q[0], q[1], q[2], cx, cy, cz));
    if (fps_better(s.smind[k], i, r.idx < 0 ? -std::numeric_limits<A>::infinity() : r.key,
                   r.idx < 0 ? kNone : r.idx))
      r = {s.smind[k], i};
  }
  return r.idx < 0 ? 0 : r.idx;  // nobody can win (all NaN): index 0, as the reference
}

// B clouds in lock step, each step one parallel region over (cloud, bucket range) tasks: for
// batches smaller than the thread count, where one cloud per thread would leave threads idle.
template <typename A>
void bucket_fps_lockstep(const A* pp, int64_t B, int64_t N, int64_t npoint, int64_t start, int64_t* out) {
  std::vector<Buckets<A>> s(B);
  at::parallel_for(0, B, 1, [&](int64_t b0, int64_t b1) {
    for (int64_t b = b0; b < b1; ++b) s[b].build(pp + 3 * b * N, N);
  });
  const int64_t per = std::max<int64_t>(1, (at::get_num_threads() + B - 1) / B);
  std::vector<FpsBest<A>> partial(B * per);
  for (int64_t b = 0; b < B; ++b) out[b * npoint] = start;
  for (int64_t i = 1; i < npoint; ++i) {
    at::parallel_for(0, B * per, 1, [&](int64_t t0, int64_t t1) {
      for (int64_t t = t0; t < t1; ++t) {
        const int64_t b = t / per, c = t % per, W = Buckets<A>::W;
        const int64_t groups = s[b].nb / W;
        const int64_t g0 = groups * c / per, g1 = groups * (c + 1) / per;
        const A* p = pp + 3 * (b * N + out[b * npoint + i - 1]);
        partial[t] = bucket_step(s[b], g0 * W, g1 * W, p[0], p[1], p[2], !spatial::finite3(p[0], p[1], p[2]));
      }
    });
    for (int64_t b = 0; b < B; ++b) {
      FpsBest<A> r{-std::numeric_limits<A>::infinity(), -1};
      for (int64_t c = 0; c < per; ++c) fps_merge(r, partial[b * per + c]);
      const A* p = pp + 3 * (b * N + out[b * npoint + i - 1]);
      out[b * npoint + i] = bucket_finish(s[b], pp + 3 * b * N, r, p[0], p[1], p[2]);
    }
  }
}

// One cloud per thread.
template <typename A>
void bucket_fps_cloud(const A* pts, int64_t N, int64_t npoint, int64_t start, int64_t* o) {
  Buckets<A> s;
  s.build(pts, N);
  o[0] = start;
  for (int64_t i = 1; i < npoint; ++i) {
    const A* p = pts + 3 * o[i - 1];
    // A non-finite centre gives NaN/inf distances that the box bound does not describe.
    const FpsBest<A> r = bucket_step(s, 0, s.nb, p[0], p[1], p[2], !spatial::finite3(p[0], p[1], p[2]));
    o[i] = bucket_finish(s, pts, r, p[0], p[1], p[2]);
  }
}

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
    const bool lockstep = B < at::get_num_threads() && !at::in_parallel_region() &&
                          spatial::fps_buckets_lockstep(B, N, at::get_num_threads());
    AT_DISPATCH_FLOATING_TYPES(p.scalar_type(), "fps_cpu_buckets", [&] {
      const scalar_t* pp = p.data_ptr<scalar_t>();
      if (lockstep) {
        bucket_fps_lockstep<scalar_t>(pp, B, N, npoint, start_idx, out);
        return;
      }
      at::parallel_for(0, B, 1, [&](int64_t b0, int64_t b1) {
        for (int64_t b = b0; b < b1; ++b) bucket_fps_cloud<scalar_t>(pp + 3 * b * N, N, npoint, start_idx, out + b * npoint);
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
  m.impl("furthest_point_sample", &recon::ragged::fps<&recon::furthest_point_sample_cpu>);
  m.impl("_fps_path", &recon::fps_path_cpu);
}
