// Exact kNN on CUDA: one thread per query point, reference points scanned in index order.
//
// The top-k is the sorted list of geometry.h (topk_init / topk_insert semantics: ascending
// (distance, index), NaN as +inf, filled by (+inf, sentinel) so +inf candidates still enter in
// index order).  The order is total over distinct indices, so the list after the scan holds
// exactly the k smallest pairs: the same as the CPU kernel and the stable sort of the reference.
//
//  * k <= 64: the list lives in registers (K = k rounded up to a compiled size; the first k of
//    the top-K are the top-k).  Insertion is the unrolled form of topk_insert: static indices
//    keep the arrays out of local memory.  Reference points are staged through shared memory,
//    one tile of blockDim.x points at a time, shared by the block's queries (one cloud).  When
//    there are too few query tiles to fill the GPU, the reference cloud is split into chunks
//    scanned by separate blocks, and a merge kernel combines the chunks' lists.
//  * larger k: each thread's list is in shared memory (padded to an odd stride, so threads
//    touching the same slot hit different banks) and updated with topk_insert itself; if even
//    one thread's list does not fit in 48 KiB, the list is kept in a global scratch buffer.
#include "common/cuda_utils.cuh"
#include "common/geometry.h"
#include "knn/knn.h"

#include <ATen/Dispatch.h>
#include <ATen/cuda/CUDAContext.h>
#include <ATen/ops/empty.h>
#include <c10/cuda/CUDAException.h>
#include <c10/cuda/CUDAGuard.h>
#include <torch/library.h>

#include <cuda_runtime.h>

#include <algorithm>
#include <limits>
#include <tuple>

namespace recon {
namespace {

using cuda::kQueryBlock;
constexpr int kNoIdx = std::numeric_limits<int>::max();
constexpr int64_t kListSmemBytes = 48 * 1024;
constexpr int kBlocksPerSM = 8;
constexpr int kMaxSplits = 32;
constexpr int64_t kMaxScratch = int64_t{1} << 22;

// Insert (d, i) into the ascending register list, given closer(d, i, last) holds.  Walking from
// the back, slot j takes slot j-1 while (d, i) precedes slot j-1, and (d, i) itself at the first
// slot it does not precede the predecessor of: the result of topk_insert.
template <typename A, int K>
__device__ __forceinline__ void reg_insert(A (&dist)[K], int (&idx)[K], A d, int i) {
#pragma unroll
  for (int j = K - 1; j > 0; --j) {
    if (closer<A>(d, i, dist[j - 1], idx[j - 1])) {
      dist[j] = dist[j - 1];
      idx[j] = idx[j - 1];
    } else if (closer<A>(d, i, dist[j], idx[j])) {
      dist[j] = d;
      idx[j] = i;
    }
  }
  if (closer<A>(d, i, dist[0], idx[0])) {
    dist[0] = d;
    idx[0] = i;
  }
}

// Block x = ((b * tiles_per_cloud + tile) * splits + split): `split` scans the reference points
// [split * chunk, (split + 1) * chunk).  With one split the first k entries of the list are the
// result; otherwise they go to part_* (`splits` lists of k per query, in split order) and
// knn_merge_kernel merges them.
template <typename scalar_t, int K>
__global__ void __launch_bounds__(kQueryBlock)
    knn_register_kernel(const scalar_t* __restrict__ query, const scalar_t* __restrict__ ref,
                        scalar_t* __restrict__ out_dist, int64_t* __restrict__ out_idx,
                        typename acc_type<scalar_t>::type* __restrict__ part_dist,
                        int* __restrict__ part_idx, int M, int N, int k,
                        int64_t tiles_per_cloud, int splits, int chunk) {
  using A = typename acc_type<scalar_t>::type;
  __shared__ A sx[kQueryBlock], sy[kQueryBlock], sz[kQueryBlock];
  const int64_t blk = blockIdx.x / splits;
  const int split = static_cast<int>(blockIdx.x % splits);
  const int64_t b = blk / tiles_per_cloud;
  const int64_t q = (blk % tiles_per_cloud) * blockDim.x + threadIdx.x;
  const bool active = q < M;
  const int64_t row = b * M + q;
  A qx = A(0), qy = A(0), qz = A(0);
  if (active) {
    qx = static_cast<A>(query[3 * row]);
    qy = static_cast<A>(query[3 * row + 1]);
    qz = static_cast<A>(query[3 * row + 2]);
  }
  A dist[K];
  int idx[K];
#pragma unroll
  for (int j = 0; j < K; ++j) {
    dist[j] = std::numeric_limits<A>::infinity();
    idx[j] = kNoIdx;
  }
  const scalar_t* r = ref + b * N * 3;
  const int begin = split * chunk;  // < N: splits = ceil(N / chunk)
  const int end =
      static_cast<int>(min(static_cast<int64_t>(N), static_cast<int64_t>(begin) + chunk));
  for (int base = begin; base < end; base += blockDim.x) {
    const int n = min(static_cast<int>(blockDim.x), end - base);
    __syncthreads();  // the previous tile has been read by every thread
    if (static_cast<int>(threadIdx.x) < n) {
      const int64_t j = base + threadIdx.x;
      sx[threadIdx.x] = static_cast<A>(r[3 * j]);
      sy[threadIdx.x] = static_cast<A>(r[3 * j + 1]);
      sz[threadIdx.x] = static_cast<A>(r[3 * j + 2]);
    }
    __syncthreads();
    if (active) {
      for (int t = 0; t < n; ++t) {
        const A d = nan_as_inf(sq_dist3(qx, qy, qz, sx[t], sy[t], sz[t]));
        if (closer<A>(d, base + t, dist[K - 1], idx[K - 1])) reg_insert(dist, idx, d, base + t);
      }
    }
  }
  if (!active) return;
  if (splits == 1) {
#pragma unroll
    for (int j = 0; j < K; ++j) {
      if (j < k) {
        out_dist[row * k + j] = static_cast<scalar_t>(dist[j]);
        out_idx[row * k + j] = idx[j];
      }
    }
  } else {
    const int64_t off = (row * splits + split) * k;
#pragma unroll
    for (int j = 0; j < K; ++j) {
      if (j < k) {
        part_dist[off + j] = dist[j];
        part_idx[off + j] = idx[j];
      }
    }
  }
}

// k-way merge of a query's per-split lists.  Each list holds the k first pairs of its (disjoint)
// index range, so the k first pairs of the union are among them; a range shorter than k pads
// its list with (+inf, sentinel), which sorts after every real pair and is never taken because
// the union holds N >= k real pairs.
template <typename scalar_t>
__global__ void __launch_bounds__(kQueryBlock)
    knn_merge_kernel(const typename acc_type<scalar_t>::type* __restrict__ part_dist,
                     const int* __restrict__ part_idx, scalar_t* __restrict__ out_dist,
                     int64_t* __restrict__ out_idx, int k, int splits, int64_t rows) {
  using A = typename acc_type<scalar_t>::type;
  const int64_t row = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (row >= rows) return;
  int pos[kMaxSplits];
  for (int s = 0; s < splits; ++s) pos[s] = 0;
  const A* pd = part_dist + row * splits * k;
  const int* pi = part_idx + row * splits * k;
  for (int j = 0; j < k; ++j) {
    int best_s = -1;
    A best_d = A(0);
    int best_i = 0;
    for (int s = 0; s < splits; ++s) {
      if (pos[s] >= k) continue;
      const A d = pd[s * k + pos[s]];
      const int i = pi[s * k + pos[s]];
      if (best_s < 0 || closer<A>(d, i, best_d, best_i)) {
        best_s = s;
        best_d = d;
        best_i = i;
      }
    }
    ++pos[best_s];  // best_s >= 0: the lists hold splits * k >= k entries
    out_dist[row * k + j] = static_cast<scalar_t>(best_d);
    out_idx[row * k + j] = best_i;
  }
}

// General k.  SHARED: the lists live in dynamic shared memory, [thread][stride] with the int64
// indices first (alignment); otherwise in scratch_dist / scratch_idx, rows of k per query.
template <typename scalar_t, bool SHARED>
__global__ void __launch_bounds__(kQueryBlock)
    knn_list_kernel(const scalar_t* __restrict__ query, const scalar_t* __restrict__ ref,
                    scalar_t* __restrict__ out_dist, int64_t* __restrict__ out_idx,
                    typename acc_type<scalar_t>::type* scratch_dist, int64_t* scratch_idx, int M,
                    int N, int k, int stride, int64_t tiles_per_cloud) {
  using A = typename acc_type<scalar_t>::type;
  extern __shared__ int64_t smem[];
  const int64_t b = blockIdx.x / tiles_per_cloud;
  const int64_t q = (blockIdx.x % tiles_per_cloud) * blockDim.x + threadIdx.x;
  if (q >= M) return;  // no barriers below
  const int64_t row = b * M + q;
  A* dist;
  int64_t* idx;
  if (SHARED) {
    idx = smem + static_cast<int64_t>(threadIdx.x) * stride;
    dist = reinterpret_cast<A*>(smem + static_cast<int64_t>(blockDim.x) * stride) +
           static_cast<int64_t>(threadIdx.x) * stride;
  } else {
    idx = scratch_idx + row * k;
    dist = scratch_dist + row * k;
  }
  topk_init(dist, idx, k);
  A last_d = std::numeric_limits<A>::infinity();  // register copy of the list's last slot
  int64_t last_i = cuda::kNoIndex;
  const A qx = static_cast<A>(query[3 * row]);
  const A qy = static_cast<A>(query[3 * row + 1]);
  const A qz = static_cast<A>(query[3 * row + 2]);
  // Every thread of the block reads the same reference point at once (one cloud per block).
  const scalar_t* r = ref + b * N * 3;
  for (int j = 0; j < N; ++j) {
    const A d = nan_as_inf(sq_dist3(qx, qy, qz, static_cast<A>(r[3 * j]),
                                    static_cast<A>(r[3 * j + 1]), static_cast<A>(r[3 * j + 2])));
    if (closer<A>(d, j, last_d, last_i)) {
      topk_insert(dist, idx, k, d, static_cast<int64_t>(j));
      last_d = dist[k - 1];
      last_i = idx[k - 1];
    }
  }
  for (int j = 0; j < k; ++j) {
    out_dist[row * k + j] = static_cast<scalar_t>(dist[j]);
    out_idx[row * k + j] = idx[j];
  }
}

struct Launch {
  int64_t B;
  int M, N, k;
  cudaStream_t stream;
  at::TensorOptions options;  // device of the inputs, for scratch buffers
  int64_t want_blocks;        // enough blocks to fill the GPU
};

template <typename scalar_t, int K>
bool try_register(const Launch& L, const scalar_t* q, const scalar_t* r, scalar_t* od,
                  int64_t* oi) {
  using A = typename acc_type<scalar_t>::type;
  if (L.k > K) return false;
  // Few queries per cloud (e.g. 64 group centres): smaller blocks, so fewer idle threads.
  const int threads = cuda::warp_round(L.M, kQueryBlock);
  const int64_t tiles = cuda::ceil_div(L.M, threads);
  // Few query tiles leave most of the GPU idle: split the reference cloud too, into chunks of
  // at least 4 tiles, until about kBlocksPerSM blocks per SM, at most kMaxSplits.
  int64_t splits = std::min({cuda::ceil_div(L.want_blocks, L.B * tiles),
                             cuda::ceil_div(L.N, 4 * threads), static_cast<int64_t>(kMaxSplits)});
  // The chunk lists take B * M * splits * k scratch entries: keep them under kMaxScratch.
  splits = std::min(splits, kMaxScratch / (L.B * L.M * L.k));
  if (splits < 1) splits = 1;
  const int64_t chunk =
      std::min<int64_t>(cuda::ceil_div(cuda::ceil_div(L.N, splits), threads) * threads, L.N);
  splits = cuda::ceil_div(L.N, chunk);
  at::Tensor part_dist, part_idx;
  if (splits > 1) {
    const int64_t n = L.B * L.M * splits * L.k;
    part_dist = at::empty({n}, L.options.dtype(c10::CppTypeToScalarType<A>::value));
    part_idx = at::empty({n}, L.options.dtype(at::kInt));
  }
  knn_register_kernel<scalar_t, K>
      <<<static_cast<unsigned>(L.B * tiles * splits), threads, 0, L.stream>>>(
          q, r, od, oi, splits > 1 ? part_dist.mutable_data_ptr<A>() : nullptr,
          splits > 1 ? part_idx.mutable_data_ptr<int>() : nullptr, L.M, L.N, L.k, tiles,
          static_cast<int>(splits), static_cast<int>(chunk));
  C10_CUDA_KERNEL_LAUNCH_CHECK();
  if (splits > 1) {
    const int64_t rows = L.B * L.M;
    knn_merge_kernel<scalar_t>
        <<<static_cast<unsigned>(cuda::ceil_div(rows, kQueryBlock)), kQueryBlock, 0, L.stream>>>(
            part_dist.const_data_ptr<A>(), part_idx.const_data_ptr<int>(), od, oi, L.k,
            static_cast<int>(splits), rows);
    C10_CUDA_KERNEL_LAUNCH_CHECK();
  }
  return true;
}

}  // namespace

std::tuple<at::Tensor, at::Tensor> knn_cuda(const at::Tensor& query, const at::Tensor& ref,
                                            int64_t k) {
  const char* op = "knn";
  check_knn_args(query, ref, k, c10::DeviceType::CUDA);
  const int64_t B = query.size(0), M = query.size(1), N = ref.size(1);
  const c10::cuda::CUDAGuard guard(query.device());
  at::Tensor dist = at::empty({B, M, k}, query.options());
  at::Tensor idx = at::empty({B, M, k}, query.options().dtype(at::kLong));
  if (B == 0 || M == 0) return {dist, idx};
  TORCH_CHECK_VALUE(B * M < std::numeric_limits<int32_t>::max(), op,
                    ": too many queries for one launch (B = ", B, ", M = ", M, ")");
  const Launch L{B,
                 static_cast<int>(M),
                 static_cast<int>(N),
                 static_cast<int>(k),
                 at::cuda::getCurrentCUDAStream(),
                 query.options(),
                 static_cast<int64_t>(kBlocksPerSM) *
                     at::cuda::getCurrentDeviceProperties()->multiProcessorCount};

  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, query.scalar_type(), "knn_cuda", [&] {
    using A = typename acc_type<scalar_t>::type;
    const scalar_t* q = query.const_data_ptr<scalar_t>();
    const scalar_t* r = ref.const_data_ptr<scalar_t>();
    scalar_t* od = dist.mutable_data_ptr<scalar_t>();
    int64_t* oi = idx.mutable_data_ptr<int64_t>();
    if (try_register<scalar_t, 1>(L, q, r, od, oi) || try_register<scalar_t, 8>(L, q, r, od, oi) ||
        try_register<scalar_t, 16>(L, q, r, od, oi) ||
        try_register<scalar_t, 32>(L, q, r, od, oi) ||
        try_register<scalar_t, 64>(L, q, r, od, oi)) {
      return;
    }
    // Odd stride: thread t's slot j is word t * stride + j, distinct banks across a warp.
    const int stride = L.k | 1;
    const int64_t per_thread = static_cast<int64_t>(stride) * (sizeof(int64_t) + sizeof(A));
    int64_t threads = kListSmemBytes / per_thread;
    if (threads >= 32) threads = threads / 32 * 32;
    if (threads > kQueryBlock) threads = kQueryBlock;
    if (threads >= 1) {
      const int64_t tiles = cuda::ceil_div(M, threads);
      const size_t smem = static_cast<size_t>(threads * per_thread);
      knn_list_kernel<scalar_t, true>
          <<<static_cast<unsigned>(B * tiles), static_cast<unsigned>(threads), smem, L.stream>>>(
              q, r, od, oi, nullptr, nullptr, L.M, L.N, L.k, stride, tiles);
      C10_CUDA_KERNEL_LAUNCH_CHECK();
    } else {
      const auto acc = c10::CppTypeToScalarType<A>::value;
      at::Tensor sd = at::empty({B, M, k}, query.options().dtype(acc));
      at::Tensor si = at::empty({B, M, k}, idx.options());
      const int64_t tiles = cuda::ceil_div(M, kQueryBlock);
      knn_list_kernel<scalar_t, false>
          <<<static_cast<unsigned>(B * tiles), kQueryBlock, 0, L.stream>>>(
          q, r, od, oi, sd.mutable_data_ptr<A>(), si.mutable_data_ptr<int64_t>(), L.M, L.N, L.k,
          stride, tiles);
      C10_CUDA_KERNEL_LAUNCH_CHECK();
    }
  });
  return {dist, idx};
}

TORCH_LIBRARY_IMPL(recon, CUDA, m) { m.impl("knn", &knn_cuda); }

}  // namespace recon
