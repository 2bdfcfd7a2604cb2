// Exact kNN on the CPU: brute force, O(M · N) distances per cloud, never an M × N matrix.
//
// For each query the reference points are visited in blocks: a vectorised pass writes the
// block's squared distances (NaN -> +inf) to a small buffer, then a scalar pass offers each one
// to a sorted top-k list (geometry.h topk_insert).  Once the list is full almost every offer is
// rejected by a single comparison, so the cost is dominated by the vectorised pass.
#include <ATen/ATen.h>
#include <ATen/Dispatch.h>
#include <ATen/Parallel.h>
#include <torch/library.h>

#include <vector>

#include "common/checks.h"
#include "common/cpu_utils.h"
#include "common/geometry.h"
#include "knn/knn.h"

namespace recon {
namespace cpu {

constexpr int64_t kRefBlock = 512;

template <typename A>
RECON_ALWAYS_INLINE void block_dist_impl(const A* __restrict x, const A* __restrict y,
                                         const A* __restrict z, int64_t n, A qx, A qy, A qz,
                                         A* __restrict d) {
  for (int64_t j = 0; j < n; ++j) d[j] = nan_as_inf(sq_dist3(qx, qy, qz, x[j], y[j], z[j]));
}
RECON_CLONES void block_dist_f32(const float* x, const float* y, const float* z, int64_t n,
                                 float qx, float qy, float qz, float* d) {
  block_dist_impl<float>(x, y, z, n, qx, qy, qz, d);
}
RECON_CLONES void block_dist_f64(const double* x, const double* y, const double* z, int64_t n,
                                 double qx, double qy, double qz, double* d) {
  block_dist_impl<double>(x, y, z, n, qx, qy, qz, d);
}
inline void block_dist(const float* x, const float* y, const float* z, int64_t n, float qx,
                       float qy, float qz, float* d) {
  block_dist_f32(x, y, z, n, qx, qy, qz, d);
}
inline void block_dist(const double* x, const double* y, const double* z, int64_t n, double qx,
                       double qy, double qz, double* d) {
  block_dist_f64(x, y, z, n, qx, qy, qz, d);
}

// kNN of queries [q0, q1) of one cloud.  query/ref are x/y/z arrays (nq resp. n points);
// dist/idx receive k entries per query, ascending by (distance, index).  `buf` holds
// kRefBlock + k values of scratch.  The per-cloud core a spatial index can be dispatched beside.
template <typename A, typename Out>
void knn_cloud(const A* qx, const A* qy, const A* qz, int64_t q0, int64_t q1, const A* rx,
               const A* ry, const A* rz, int64_t n, int64_t k, A* buf, Out* dist, int64_t* idx) {
  A* d = buf;
  A* topd = buf + kRefBlock;
  for (int64_t q = q0; q < q1; ++q) {
    int64_t* topi = idx + q * k;
    topk_init(topd, topi, static_cast<int>(k));
    for (int64_t j0 = 0; j0 < n; j0 += kRefBlock) {
      const int64_t len = std::min(kRefBlock, n - j0);
      block_dist(rx + j0, ry + j0, rz + j0, len, qx[q], qy[q], qz[q], d);
      for (int64_t t = 0; t < len; ++t) {
        if (d[t] <= topd[k - 1]) topk_insert(topd, topi, static_cast<int>(k), d[t], j0 + t);
      }
    }
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
  at::Tensor dist = at::empty({B, M, k}, query.options());
  at::Tensor idx = at::empty({B, M, k}, query.options().dtype(at::kLong));
  if (B == 0 || M == 0) return {dist, idx};
  const at::Tensor qs = cpu::to_soa(query), rs = cpu::to_soa(ref);
  const cpu::Chunking ch = cpu::chunk_queries(B, M);
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, query.scalar_type(), "knn_cpu", [&] {
    using A = typename acc_type<scalar_t>::type;
    const A* qp = qs.data_ptr<A>();
    const A* rp = rs.data_ptr<A>();
    scalar_t* dp = dist.data_ptr<scalar_t>();
    int64_t* ip = idx.data_ptr<int64_t>();
    at::parallel_for(0, ch.items, 1, [&](int64_t w0, int64_t w1) {
      std::vector<A> buf(cpu::kRefBlock + k);
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

TORCH_LIBRARY_IMPL(recon, CPU, m) { m.impl("knn", &recon::knn_cpu); }
