// Exact kNN on the CPU: brute force, O(M · N) distances per cloud, never an M × N matrix.
//
// For each query the reference points are streamed through W-wide vectors of squared distances
// (NaN -> +inf); a vector is offered lane by lane to a sorted top-k list (geometry.h
// topk_insert) only when one of its lanes can enter it, so the cost is the vectorised pass.
#include <ATen/ATen.h>
#include <ATen/Dispatch.h>
#include <ATen/Parallel.h>
#include <torch/library.h>

#include <limits>
#include <vector>

#include "common/checks.h"
#include "common/cpu_utils.h"
#include "common/geometry.h"
#include "common/ragged.h"
#include "common/simd.h"
#include "knn/knn.h"
#include "spatial/spatial.h"

namespace recon {
namespace cpu {

// Offers every reference point of [0, n) to the sorted top-k list of one query.  Distances are
// computed W at a time; a vector of W is only looked at lane by lane when one of its lanes can
// enter the list (d <= current k-th distance), which after the first few hundred points is rare.
template <typename A>
RECON_ALWAYS_INLINE void knn_query_impl(const A* __restrict x, const A* __restrict y,
                                        const A* __restrict z, int64_t n, A qx, A qy, A qz,
                                        int k, A* __restrict topd, int64_t* __restrict topi) {
  using S = simd::Vec<A>;
  using V = typename S::V;
  constexpr int W = S::W;
  const V vx = simd::splat<V>(qx), vy = simd::splat<V>(qy), vz = simd::splat<V>(qz);
  topk_init(topd, topi, k);
  int64_t j = 0;
  for (; j + W <= n; j += W) {
    const V d = simd::nan_as_inf(
        sq_dist3(vx, vy, vz, simd::load<V>(x + j), simd::load<V>(y + j), simd::load<V>(z + j)));
    if (!simd::any(d <= simd::splat<V>(topd[k - 1]))) continue;
    for (int l = 0; l < W; ++l) {
      if (d[l] <= topd[k - 1]) topk_insert(topd, topi, k, static_cast<A>(d[l]), j + l);
    }
  }
  for (; j < n; ++j) topk_insert(topd, topi, k, sq_dist3(qx, qy, qz, x[j], y[j], z[j]), j);
}
RECON_CLONES void knn_query_f32(const float* x, const float* y, const float* z, int64_t n,
                                float qx, float qy, float qz, int k, float* topd, int64_t* topi) {
  knn_query_impl<float>(x, y, z, n, qx, qy, qz, k, topd, topi);
}
RECON_CLONES void knn_query_f64(const double* x, const double* y, const double* z, int64_t n,
                                double qx, double qy, double qz, int k, double* topd,
                                int64_t* topi) {
  knn_query_impl<double>(x, y, z, n, qx, qy, qz, k, topd, topi);
}
inline void knn_query(const float* x, const float* y, const float* z, int64_t n, float qx,
                      float qy, float qz, int k, float* topd, int64_t* topi) {
  knn_query_f32(x, y, z, n, qx, qy, qz, k, topd, topi);
}
inline void knn_query(const double* x, const double* y, const double* z, int64_t n, double qx,
                      double qy, double qz, int k, double* topd, int64_t* topi) {
  knn_query_f64(x, y, z, n, qx, qy, qz, k, topd, topi);
}

// kNN of queries [q0, q1) of one cloud.  query/ref are x/y/z arrays (nq resp. n points);
// dist/idx receive k entries per query, ascending by (distance, index); `topd` is k scratch
// values.  This is the per-cloud core a spatial index can be dispatched beside.
template <typename A, typename Out>
void knn_cloud(const A* qx, const A* qy, const A* qz, int64_t q0, int64_t q1, const A* rx,
               const A* ry, const A* rz, int64_t n, int64_t k, A* topd, Out* dist, int64_t* idx) {
  for (int64_t q = q0; q < q1; ++q) {
    knn_query(rx, ry, rz, n, qx[q], qy[q], qz[q], static_cast<int>(k), topd, idx + q * k);
    Out* od = dist + q * k;
    for (int64_t t = 0; t < k; ++t) od[t] = static_cast<Out>(topd[t]);
  }
}

}  // namespace cpu

std::tuple<at::Tensor, at::Tensor> knn_cpu(const at::Tensor& query, const at::Tensor& ref, int64_t k) {
  RECON_CHECK_POINTS(query, at::kCPU);
  RECON_CHECK_POINTS(ref, at::kCPU);
  RECON_CHECK_SAME(query, ref);
  const int64_t B = query.size(0), M = query.size(1), N = ref.size(1);
  TORCH_CHECK(k >= 1 && k <= N, "k must be in [1, N=", N, "], got ", k);
  TORCH_CHECK(k <= std::numeric_limits<int>::max(), "k too large: ", k);
  TORCH_CHECK(N < std::numeric_limits<int32_t>::max(), "ref must have < 2^31 points, got ", N);
  at::Tensor dist = at::empty({B, M, k}, query.options());
  at::Tensor idx = at::empty({B, M, k}, query.options().dtype(at::kLong));
  if (B == 0 || M == 0) return {dist, idx};
  // Large clouds: the exact grid / kd-tree search (csrc/spatial/), identical results, chosen by its cost model.
  if (spatial::knn_prefers_index(B, M, N, k)) return spatial::knn_cpu(query, ref, k, spatial::Path::kIndex);
  const at::Tensor qs = cpu::to_soa(query), rs = cpu::to_soa(ref);
  const cpu::Chunking ch = cpu::chunk_queries(B, M);
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, query.scalar_type(), "knn_cpu", [&] {
    using A = typename acc_type<scalar_t>::type;
    const A* qp = qs.data_ptr<A>();
    const A* rp = rs.data_ptr<A>();
    scalar_t* dp = dist.data_ptr<scalar_t>();
    int64_t* ip = idx.data_ptr<int64_t>();
    at::parallel_for(0, ch.items, 1, [&](int64_t w0, int64_t w1) {
      std::vector<A> buf(k);
      for (int64_t w = w0; w < w1; ++w) {
        const int64_t b = w / ch.per_cloud, q0 = (w % ch.per_cloud) * ch.chunk;
        const int64_t q1 = std::min(M, q0 + ch.chunk);
        const A* q = qp + b * 3 * M;
        const A* r = rp + b * 3 * N;
        cpu::knn_cloud<A, scalar_t>(q, q + M, q + 2 * M, q0, q1, r, r + N, r + 2 * N, N, k,
                                    buf.data(), dp + b * M * k, ip + b * M * k);
      }
    });
  });
  return {dist, idx};
}

}  // namespace recon

TORCH_LIBRARY_IMPL(recon, CPU, m) { m.impl("knn", &recon::ragged::knn<&recon::knn_cpu>); }
