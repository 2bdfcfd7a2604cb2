// Exact kNN on CPU: one spatial index (uniform grid or kd-tree) per reference cloud, built in
// parallel over the batch, queries in parallel over (batch, query chunk); brute force where the
// cost model says it is cheaper.
#include <ATen/Parallel.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

#include "spatial/grid.h"
#include "spatial/search.h"
#include "spatial/spatial.h"
#include "spatial/util.h"

namespace recon {
namespace spatial {
namespace {

constexpr int64_t kChunk = 64;  // queries per parallel task

// All of ref, in index order: the exact definition of the answer (also for non-finite queries).
template <typename A>
void knn_brute_one(A qx, A qy, A qz, const A* ref, int64_t N, int k, A* dist, int64_t* idx) {
  topk_init(dist, idx, k);
  constexpr int64_t kBlock = 256;
  A buf[kBlock];
  for (int64_t j0 = 0; j0 < N; j0 += kBlock) {
    const int64_t cnt = std::min(kBlock, N - j0);
    const A* r = ref + 3 * j0;
    for (int64_t j = 0; j < cnt; ++j)
      buf[j] = nan_as_inf(sq_dist3(qx, qy, qz, r[3 * j], r[3 * j + 1], r[3 * j + 2]));
    A worst = dist[k - 1];
    int64_t wid = idx[k - 1];
    for (int64_t j = 0; j < cnt; ++j) {
      if (closer(buf[j], j0 + j, worst, wid)) {
        topk_insert(dist, idx, k, buf[j], j0 + j);
        worst = dist[k - 1];
        wid = idx[k - 1];
      }
    }
  }
}

template <typename A>
void knn_impl(const A* qp, const A* rp, int64_t B, int64_t M, int64_t N, int k, bool use_index,
              IndexKind kind, A* dp, int64_t* ip) {
  const int64_t chunks = (M + kChunk - 1) / kChunk;
  if (!use_index) {
    at::parallel_for(0, B * chunks, 1, [&](int64_t t0, int64_t t1) {
      for (int64_t t = t0; t < t1; ++t) {
        const int64_t b = t / chunks, m0 = (t % chunks) * kChunk, m1 = std::min(M, m0 + kChunk);
        for (int64_t m = m0; m < m1; ++m) {
          const A* q = qp + 3 * (b * M + m);
          knn_brute_one(q[0], q[1], q[2], rp + 3 * b * N, N, k, dp + (b * M + m) * k,
                        ip + (b * M + m) * k);
        }
      }
    });
    return;
  }
  const A inf = std::numeric_limits<A>::infinity();
  // One query: tree search, then the non-finite reference points, which sit at +inf (or NaN,
  // read as +inf) and matter only while the list still holds +inf entries.
  auto query = [&](const AnyIndex<A>& tree, const A* ref, int64_t b, int64_t m,
                   KnnScratch<A>& scratch) {
    const A* q = qp + 3 * (b * M + m);
    A* dist = dp + (b * M + m) * k;
    int64_t* idx = ip + (b * M + m) * k;
    if (!finite3(q[0], q[1], q[2])) {
      knn_brute_one(q[0], q[1], q[2], ref, N, k, dist, idx);
      return;
    }
    knn_search(tree, q[0], q[1], q[2], k, dist, idx, scratch);
    if (!(dist[k - 1] < inf))
      for (const int64_t s : tree.points().special) {
        const A* r = ref + 3 * s;
        topk_insert(dist, idx, k, sq_dist3(q[0], q[1], q[2], r[0], r[1], r[2]), s);
      }
  };
  if (B >= 2 * at::get_num_threads()) {
    // Enough clouds for every thread: build and query each cloud's tree in one go (hot in cache,
    // no barrier between the phases).
    at::parallel_for(0, B, 1, [&](int64_t b0, int64_t b1) {
      AnyIndex<A> tree;
      KnnScratch<A> scratch;
      for (int64_t b = b0; b < b1; ++b) {
        tree.build(rp + 3 * b * N, N, kind, kKnnIndex);
        for (int64_t m = 0; m < M; ++m) query(tree, rp + 3 * b * N, b, m, scratch);
      }
    });
    return;
  }
  std::vector<AnyIndex<A>> trees(B);
  at::parallel_for(0, B, 1, [&](int64_t b0, int64_t b1) {
    for (int64_t b = b0; b < b1; ++b) trees[b].build(rp + 3 * b * N, N, kind, kKnnIndex);
  });
  at::parallel_for(0, B * chunks, 1, [&](int64_t t0, int64_t t1) {
    KnnScratch<A> scratch;
    for (int64_t t = t0; t < t1; ++t) {
      const int64_t b = t / chunks, m0 = (t % chunks) * kChunk, m1 = std::min(M, m0 + kChunk);
      for (int64_t m = m0; m < m1; ++m) query(trees[b], rp + 3 * b * N, b, m, scratch);
    }
  });
}

}  // namespace

bool knn_prefers_index(int64_t B, int64_t M, int64_t N, int64_t k) {
  (void)B;
  // Brute force costs ~M*N distance evaluations; the tree costs a build (~N log N) plus, per
  // query, the leaves around it (k and a few leaves).  Measured crossover on a 2-core x86-64
  // (benchmarks/peers.py): the tree wins from a few hundred reference points on, unless k is
  // close to N (then every leaf is visited anyway).
  if (N < 256) return false;
  if (k * 4 > N) return false;
  return M * N >= 16384;
}

std::tuple<at::Tensor, at::Tensor> knn_cpu(const at::Tensor& query, const at::Tensor& ref,
                                           int64_t k, Path path) {
  check_cloud(query, "query");
  check_cloud(ref, "ref");
  TORCH_CHECK_VALUE(query.size(0) == ref.size(0), "query and ref must have the same batch size, got ",
                    query.size(0), " and ", ref.size(0));
  TORCH_CHECK_TYPE(query.scalar_type() == ref.scalar_type(),
                   "query and ref must have the same dtype, got ", query.scalar_type(), " and ",
                   ref.scalar_type());
  const int64_t B = query.size(0), M = query.size(1), N = ref.size(1);
  TORCH_CHECK_VALUE(k >= 1 && k <= N, "k must satisfy 1 <= k <= N = ", N, ", got ", k);
  const at::Tensor q = acc_view(query), r = acc_view(ref);
  at::Tensor dist = at::empty({B, M, k}, q.options());
  at::Tensor idx = at::empty({B, M, k}, q.options().dtype(at::kLong));
  if (B * M > 0) {
    const bool use_index =
        path != Path::kBrute && (path != Path::kAuto || knn_prefers_index(B, M, N, k));
    const IndexKind kind = index_kind(path);
    AT_DISPATCH_FLOATING_TYPES(q.scalar_type(), "recon_knn_spatial", [&] {
      knn_impl<scalar_t>(q.data_ptr<scalar_t>(), r.data_ptr<scalar_t>(), B, M, N,
                         static_cast<int>(k), use_index, kind, dist.data_ptr<scalar_t>(),
                         idx.data_ptr<int64_t>());
    });
  }
  return {dist.to(query.scalar_type()), idx};
}

}  // namespace spatial
}  // namespace recon
