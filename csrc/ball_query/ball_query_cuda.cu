// Ball query on CUDA: brute force, one thread per query, reference points scanned in index
// order through shared-memory tiles of one cloud.  A thread writes each hit as it meets it (so
// the output is in index order) and stops counting at k; the block stops loading tiles once
// every one of its queries is full.  Unused slots keep the (-1, 0) the host filled in.
#include "ball_query/ball_query.h"
#include "common/cuda_utils.cuh"
#include "common/geometry.h"
#include "common/lengths.h"

#include <ATen/ATen.h>
#include <ATen/Dispatch.h>
#include <ATen/cuda/CUDAContext.h>
#include <c10/cuda/CUDAException.h>
#include <c10/cuda/CUDAGuard.h>
#include <torch/library.h>

namespace recon {
namespace {

using cuda::kQueryBlock;

template <typename scalar_t>
__global__ void __launch_bounds__(kQueryBlock)
    ball_query_kernel(const scalar_t* __restrict__ query, const scalar_t* __restrict__ ref,
                      const int64_t* __restrict__ len1, const int64_t* __restrict__ len2,
                      typename acc_type<scalar_t>::type r2, int M, int N, int k,
                      int64_t tiles_per_cloud, scalar_t* __restrict__ out_dist,
                      int64_t* __restrict__ out_idx) {
  using A = typename acc_type<scalar_t>::type;
  __shared__ A sx[kQueryBlock], sy[kQueryBlock], sz[kQueryBlock];
  const int64_t b = blockIdx.x / tiles_per_cloud;
  const int q = static_cast<int>((blockIdx.x % tiles_per_cloud) * kQueryBlock + threadIdx.x);
  const int m = static_cast<int>(clamp_length(len1, b, M));
  const int n = static_cast<int>(clamp_length(len2, b, N));
  A qx = 0, qy = 0, qz = 0;
  int cnt = k;  // a thread without a (valid) query counts as full
  if (q < m) {
    const scalar_t* p = query + (b * M + q) * 3;
    qx = static_cast<A>(p[0]);
    qy = static_cast<A>(p[1]);
    qz = static_cast<A>(p[2]);
    cnt = 0;
  }
  scalar_t* od = out_dist + (b * M + q) * static_cast<int64_t>(k);
  int64_t* oi = out_idx + (b * M + q) * static_cast<int64_t>(k);
  const scalar_t* r = ref + b * static_cast<int64_t>(N) * 3;
  for (int t0 = 0; t0 < n; t0 += kQueryBlock) {
    if (!__syncthreads_or(cnt < k)) break;
    const int j = t0 + threadIdx.x;
    if (j < n) {
      sx[threadIdx.x] = static_cast<A>(r[3 * j]);
      sy[threadIdx.x] = static_cast<A>(r[3 * j + 1]);
      sz[threadIdx.x] = static_cast<A>(r[3 * j + 2]);
    }
    __syncthreads();
    const int len = min(kQueryBlock, n - t0);
    for (int t = 0; t < len && cnt < k; ++t) {
      const A d = sq_dist3(qx, qy, qz, sx[t], sy[t], sz[t]);
      if (d < r2) {
        od[cnt] = static_cast<scalar_t>(d);
        oi[cnt] = t0 + t;
        ++cnt;
      }
    }
    __syncthreads();
  }
}

}  // namespace

std::tuple<at::Tensor, at::Tensor> ball_query_cuda(const at::Tensor& query, const at::Tensor& ref,
                                                   double radius, int64_t k,
                                                   const c10::optional<at::Tensor>& lengths1,
                                                   const c10::optional<at::Tensor>& lengths2) {
  check_ball_query_args(query, ref, radius, k, c10::DeviceType::CUDA);
  const c10::cuda::CUDAGuard guard(query.device());
  const int64_t B = query.size(0), M = query.size(1), N = ref.size(1);
  const at::Tensor l1 = checked_lengths(lengths1, B, query, "lengths1");
  const at::Tensor l2 = checked_lengths(lengths2, B, ref, "lengths2");
  at::Tensor dist = at::zeros({B, M, k}, query.options());
  at::Tensor idx = at::full({B, M, k}, -1, query.options().dtype(at::kLong));
  if (B == 0 || M == 0 || N == 0) return {dist, idx};
  const int64_t tiles = cuda::ceil_div(M, kQueryBlock);
  const int64_t* len1 = l1.defined() ? l1.data_ptr<int64_t>() : nullptr;
  const int64_t* len2 = l2.defined() ? l2.data_ptr<int64_t>() : nullptr;
  const cudaStream_t stream = at::cuda::getCurrentCUDAStream();
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, query.scalar_type(), "ball_query_cuda", [&] {
    using A = typename acc_type<scalar_t>::type;
    ball_query_kernel<scalar_t><<<B * tiles, kQueryBlock, 0, stream>>>(
        query.data_ptr<scalar_t>(), ref.data_ptr<scalar_t>(), len1, len2,
        static_cast<A>(radius * radius), static_cast<int>(M), static_cast<int>(N),
        static_cast<int>(k), tiles, dist.data_ptr<scalar_t>(), idx.data_ptr<int64_t>());
    C10_CUDA_KERNEL_LAUNCH_CHECK();
  });
  return {dist, idx};
}

}  // namespace recon

TORCH_LIBRARY_IMPL(recon, CUDA, m) { m.impl("ball_query", &recon::ball_query_cuda); }
