// Farthest point sampling on the CPU: brute force, O(npoint · N) per cloud.
//
// Each step folds the distance to the last chosen point into a running minimum and takes the
// arg-max of that minimum.  Both happen in one pass over per-cloud x/y/z arrays; the arg-max is
// kept per SIMD lane (strict '>' in index order keeps each lane's first maximum) and the lanes
// are merged with fps_better, so the result is the exact (key, lowest index) arg-max.
#include <ATen/ATen.h>
#include <ATen/Dispatch.h>
#include <ATen/Parallel.h>
#include <torch/library.h>

#include <limits>
#include <type_traits>
#include <vector>

#include "common/checks.h"
#include "common/cpu_utils.h"
#include "common/geometry.h"
#include "fps/fps.h"

namespace recon {
namespace cpu {

template <typename A>
struct FpsBest {
  A key;
  int64_t idx;  // -1: no point can win (all keys NaN) in the range
};

template <typename A>
RECON_ALWAYS_INLINE FpsBest<A> fps_step_impl(const A* __restrict x, const A* __restrict y,
                                             const A* __restrict z, A* __restrict mind,
                                             int64_t begin, int64_t end, A cx, A cy, A cz) {
  using I = std::conditional_t<sizeof(A) == 4, int32_t, int64_t>;
  constexpr int L = 16;
  constexpr A kNegInf = -std::numeric_limits<A>::infinity();
  A best[L];
  I bidx[L];
  for (int l = 0; l < L; ++l) {
    best[l] = kNegInf;
    bidx[l] = 0;
  }
  int64_t j = begin;
  for (; j + L <= end; j += L) {
    for (int l = 0; l < L; ++l) {
      const A m = fps_min(mind[j + l], sq_dist3(x[j + l], y[j + l], z[j + l], cx, cy, cz));
      mind[j + l] = m;
      const bool w = m > best[l];  // NaN never wins; equal keys keep the earlier index
      best[l] = w ? m : best[l];
      bidx[l] = w ? static_cast<I>(j + l) : bidx[l];
    }
  }
  FpsBest<A> r{kNegInf, -1};
  for (; j < end; ++j) {
    const A m = fps_min(mind[j], sq_dist3(x[j], y[j], z[j], cx, cy, cz));
    mind[j] = m;
    if (m > kNegInf && fps_better(m, j, r.key, r.idx)) r = {m, j};
  }
  for (int l = 0; l < L; ++l) {
    if (best[l] > kNegInf && fps_better(best[l], static_cast<int64_t>(bidx[l]), r.key, r.idx)) {
      r = {best[l], static_cast<int64_t>(bidx[l])};
    }
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
// This is the per-cloud core a spatial (bucket) FPS can later be dispatched beside.
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

}  // namespace cpu

at::Tensor furthest_point_sample_cpu(const at::Tensor& xyz, int64_t npoint, int64_t start_idx) {
  RECON_CHECK_POINTS(xyz, at::kCPU);
  const int64_t B = xyz.size(0), N = xyz.size(1);
  TORCH_CHECK(npoint >= 0 && npoint <= N, "npoint must be in [0, N=", N, "], got ", npoint);
  TORCH_CHECK(N < std::numeric_limits<int32_t>::max(), "N must be < 2^31, got ", N);
  at::Tensor idx = at::empty({B, npoint}, xyz.options().dtype(at::kLong));
  if (B == 0 || npoint == 0) return idx;
  TORCH_CHECK(start_idx >= 0 && start_idx < N, "start_idx must be in [0, N=", N, "), got ", start_idx);
  const at::Tensor soa = cpu::to_soa(xyz);  // (B, 3, N)
  const bool inner = B < at::get_num_threads() && N >= 32768;
  AT_DISPATCH_FLOATING_TYPES(soa.scalar_type(), "furthest_point_sample_cpu", [&] {
    const scalar_t* p = soa.data_ptr<scalar_t>();
    int64_t* out = idx.data_ptr<int64_t>();
    auto run = [&](int64_t b, scalar_t* mind) {
      const scalar_t* c = p + b * 3 * N;
      cpu::fps_cloud<scalar_t>(c, c + N, c + 2 * N, N, npoint, start_idx, mind, out + b * npoint, inner);
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

}  // namespace recon

TORCH_LIBRARY_IMPL(recon, CPU, m) {
  m.impl("furthest_point_sample", &recon::furthest_point_sample_cpu);
}
