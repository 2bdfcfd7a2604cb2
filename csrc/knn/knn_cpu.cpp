// Exact kNN on the CPU: the inputs are checked once, then one cost-model choice
// (spatial/plan.h) between two paths that return the same bits:
//  * brute force, O(M · N) distances per cloud, never an M × N matrix: for each query the
//    reference points stream through W-wide vectors of squared distances (NaN -> +inf), and a
//    vector is offered lane by lane to the sorted top-k list (geometry.h topk_insert) only when
//    one of its lanes can enter it, so the cost is the vectorised pass;
//  * an index per reference cloud (uniform grid or kd-tree, spatial/grid.h), built in parallel
//    over the batch and searched in parallel over (cloud, query chunk).
#include <ATen/ATen.h>
#include <ATen/Dispatch.h>
#include <ATen/Parallel.h>
#include <torch/library.h>

#include <limits>
#include <vector>

#include "common/cpu_utils.h"
#include "common/geometry.h"
#include "common/simd.h"
#include "knn/knn.h"
#include "spatial/grid.h"
#include "spatial/plan.h"
#include "spatial/search.h"

namespace recon {
namespace {

// ---------------------------------------------------------------------------------------------
// Brute force

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

// query (B, M, 3) and ref (B, N, 3) of dtype scalar_t -> dist (B, M, k) scalar_t, idx (B, M, k).
template <typename scalar_t>
void knn_brute(const at::Tensor& query, const at::Tensor& ref, int64_t k, at::Tensor& dist,
               at::Tensor& idx) {
  using A = typename acc_type<scalar_t>::type;
  const int64_t B = query.size(0), M = query.size(1), N = ref.size(1);
  const at::Tensor qs = cpu::to_soa(query), rs = cpu::to_soa(ref);
  const cpu::Chunking ch = cpu::chunk_queries(B, M);
  const A* qp = qs.data_ptr<A>();
  const A* rp = rs.data_ptr<A>();
  scalar_t* dp = dist.data_ptr<scalar_t>();
  int64_t* ip = idx.data_ptr<int64_t>();
  at::parallel_for(0, ch.items, 1, [&](int64_t w0, int64_t w1) {
    std::vector<A> topd(k);
    for (int64_t w = w0; w < w1; ++w) {
      const int64_t b = w / ch.per_cloud, q0 = (w % ch.per_cloud) * ch.chunk;
      const int64_t q1 = std::min(M, q0 + ch.chunk);
      const A* q = qp + b * 3 * M;
      const A* r = rp + b * 3 * N;
      for (int64_t m = q0; m < q1; ++m) {
        int64_t* oi = ip + (b * M + m) * k;
        knn_query(r, r + N, r + 2 * N, N, q[m], q[M + m], q[2 * M + m], static_cast<int>(k),
                  topd.data(), oi);
        scalar_t* od = dp + (b * M + m) * k;
        for (int64_t t = 0; t < k; ++t) od[t] = static_cast<scalar_t>(topd[t]);
      }
    }
  });
}

// ---------------------------------------------------------------------------------------------
// Index path

constexpr int64_t kIndexChunk = 64;  // queries per parallel task

// qp (B, M, 3) and rp (B, N, 3) in the accumulation type A; dp/ip (B, M, k).
template <typename A>
void knn_index(const A* qp, const A* rp, int64_t B, int64_t M, int64_t N, int k,
               spatial::IndexKind kind, A* dp, int64_t* ip) {
  using spatial::AnyIndex;
  using spatial::KnnScratch;
  const A inf = std::numeric_limits<A>::infinity();
  // One query: index search, then the non-finite reference points, which sit at +inf (or NaN,
  // read as +inf) and matter only while the list still holds +inf entries.
  auto query = [&](const AnyIndex<A>& ix, const A* ref, int64_t b, int64_t m,
                   KnnScratch<A>& scratch) {
    const A* q = qp + 3 * (b * M + m);
    A* dist = dp + (b * M + m) * k;
    int64_t* idx = ip + (b * M + m) * k;
    if (!spatial::finite3(q[0], q[1], q[2])) {
      // Every distance from a non-finite query is NaN or +inf, i.e. +inf: the first k indices.
      for (int j = 0; j < k; ++j) {
        dist[j] = inf;
        idx[j] = j;
      }
      return;
    }
    spatial::knn_search(ix, q[0], q[1], q[2], k, dist, idx, scratch);
    if (!(dist[k - 1] < inf))
      for (const int64_t s : ix.points().special) {
        const A* r = ref + 3 * s;
        topk_insert(dist, idx, k, sq_dist3(q[0], q[1], q[2], r[0], r[1], r[2]), s);
      }
  };
  if (B >= 2 * at::get_num_threads()) {
    // Enough clouds for every thread: build and query each cloud's index in one go (hot in
    // cache, no barrier between the phases).
    at::parallel_for(0, B, 1, [&](int64_t b0, int64_t b1) {
      AnyIndex<A> ix;
      KnnScratch<A> scratch;
      for (int64_t b = b0; b < b1; ++b) {
        ix.build(rp + 3 * b * N, N, kind, spatial::kKnnIndex);
        for (int64_t m = 0; m < M; ++m) query(ix, rp + 3 * b * N, b, m, scratch);
      }
    });
    return;
  }
  std::vector<AnyIndex<A>> ixs(B);
  at::parallel_for(0, B, 1, [&](int64_t b0, int64_t b1) {
    for (int64_t b = b0; b < b1; ++b) ixs[b].build(rp + 3 * b * N, N, kind, spatial::kKnnIndex);
  });
  const int64_t chunks = (M + kIndexChunk - 1) / kIndexChunk;
  at::parallel_for(0, B * chunks, 1, [&](int64_t t0, int64_t t1) {
    KnnScratch<A> scratch;
    for (int64_t t = t0; t < t1; ++t) {
      const int64_t b = t / chunks, m0 = (t % chunks) * kIndexChunk;
      const int64_t m1 = std::min(M, m0 + kIndexChunk);
      for (int64_t m = m0; m < m1; ++m) query(ixs[b], rp + 3 * b * N, b, m, scratch);
    }
  });
}

// ---------------------------------------------------------------------------------------------
// Entry: one check, one choice

std::tuple<at::Tensor, at::Tensor> knn_run(const at::Tensor& query, const at::Tensor& ref,
                                           int64_t k, spatial::Path path) {
  check_knn_args(query, ref, k, c10::DeviceType::CPU);
  const int64_t B = query.size(0), M = query.size(1), N = ref.size(1);
  at::Tensor idx = at::empty({B, M, k}, query.options().dtype(at::kLong));
  if (B == 0 || M == 0) return {at::empty({B, M, k}, query.options()), idx};
  if (!spatial::use_index(path, spatial::knn_prefers_index(B, M, N, k))) {
    at::Tensor dist = at::empty({B, M, k}, query.options());
    AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, query.scalar_type(), "knn_cpu",
                                    [&] { knn_brute<scalar_t>(query, ref, k, dist, idx); });
    return {dist, idx};
  }
  const at::Tensor q = cpu::to_acc(query), r = cpu::to_acc(ref);
  at::Tensor dist = at::empty({B, M, k}, q.options());
  AT_DISPATCH_FLOATING_TYPES(q.scalar_type(), "knn_cpu_index", [&] {
    knn_index<scalar_t>(q.data_ptr<scalar_t>(), r.data_ptr<scalar_t>(), B, M, N,
                        static_cast<int>(k), spatial::index_kind(path), dist.data_ptr<scalar_t>(),
                        idx.data_ptr<int64_t>());
  });
  return {dist.to(query.scalar_type()), idx};
}

}  // namespace

std::tuple<at::Tensor, at::Tensor> knn_cpu(const at::Tensor& query, const at::Tensor& ref,
                                           int64_t k) {
  return knn_run(query, ref, k, spatial::Path::kAuto);
}

std::tuple<at::Tensor, at::Tensor> knn_path_cpu(const at::Tensor& query, const at::Tensor& ref,
                                                int64_t k, const std::string& path) {
  return knn_run(query, ref, k, spatial::parse_path(path, "_knn_path", true));
}

}  // namespace recon

TORCH_LIBRARY_IMPL(recon, CPU, m) {
  m.impl("knn", &recon::knn_cpu);
  m.impl("_knn_path", &recon::knn_path_cpu);
}
