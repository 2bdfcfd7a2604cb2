// Chamfer distance on CUDA.
//
// Forward: one launch per direction.  One thread per point of the source cloud; the target
// cloud is staged through shared memory one tile of blockDim.x points at a time (the block's
// threads all belong to one cloud) and scanned in index order, keeping the first minimum
// under `closer` (NaN distances as +inf).  When there are too few blocks to fill the GPU, the
// target cloud is split into chunks scanned by separate blocks, and a second kernel merges the
// chunk minima under the same order (exact: the order is total).  The returned distance is
// recomputed from the chosen pair, as the reference does: it is the minimum itself, except for
// a point whose distances are all NaN, which gets index 0 and that pair's (NaN) distance.
//
// Backward: one thread per point and direction.  The direct term (a point's own distance)
// belongs to that thread alone; the term scattered onto the matched point of the other cloud
// uses atomicAdd in the accumulation type.  Atomics make the summation order, and therefore the
// last bits of a gradient that receives several contributions, non-deterministic.
#include "chamfer/chamfer.h"
#include "common/cuda_utils.cuh"
#include "common/geometry.h"

#include <ATen/Dispatch.h>
#include <ATen/cuda/CUDAContext.h>
#include <ATen/ops/empty.h>
#include <ATen/ops/zeros.h>
#include <c10/cuda/CUDAException.h>
#include <c10/cuda/CUDAGuard.h>
#include <c10/macros/Macros.h>
#include <torch/library.h>

#include <cuda_runtime.h>

#include <algorithm>
#include <limits>
#include <tuple>

namespace recon {
namespace {

using cuda::kQueryBlock;
constexpr int kNoIdx = std::numeric_limits<int>::max();
constexpr int kBackwardBlock = 256;
constexpr int kBlocksPerSM = 8;

// Write the result for row `row`: index bi of the target cloud `d` and the distance of that
// pair recomputed in the reference's arithmetic.
template <typename scalar_t, typename A>
__device__ __forceinline__ void write_nearest(const scalar_t* d, int bi, A px, A py, A pz,
                                              int64_t row, scalar_t* out_dist, int64_t* out_idx) {
  const scalar_t* q = d + 3 * static_cast<int64_t>(bi);
  out_dist[row] = static_cast<scalar_t>(
      sq_dist3(px, py, pz, static_cast<A>(q[0]), static_cast<A>(q[1]), static_cast<A>(q[2])));
  out_idx[row] = bi;
}

// For each point of `src` (B, Ns, 3), its nearest point in `dst` (B, Nd, 3), Nd >= 1.
// Block x = ((b * tiles_per_cloud + tile) * splits + split): `split` scans the target points
// [split * chunk, (split + 1) * chunk).  With one split the result is written directly;
// otherwise each split writes its (key, index) to part_* (row-major, `splits` per row) and
// nearest_merge_kernel combines them.
template <typename scalar_t>
__global__ void __launch_bounds__(kQueryBlock)
    nearest_kernel(const scalar_t* __restrict__ src, const scalar_t* __restrict__ dst,
                   scalar_t* __restrict__ out_dist, int64_t* __restrict__ out_idx,
                   typename acc_type<scalar_t>::type* __restrict__ part_dist,
                   int* __restrict__ part_idx, int Ns, int Nd, int64_t tiles_per_cloud,
                   int splits, int chunk) {
  using A = typename acc_type<scalar_t>::type;
  __shared__ A sx[kQueryBlock], sy[kQueryBlock], sz[kQueryBlock];
  const int64_t blk = blockIdx.x / splits;
  const int split = static_cast<int>(blockIdx.x % splits);
  const int64_t b = blk / tiles_per_cloud;
  const int64_t i = (blk % tiles_per_cloud) * blockDim.x + threadIdx.x;
  const bool active = i < Ns;
  const int64_t row = b * Ns + i;
  A px = A(0), py = A(0), pz = A(0);
  if (active) {
    px = static_cast<A>(src[3 * row]);
    py = static_cast<A>(src[3 * row + 1]);
    pz = static_cast<A>(src[3 * row + 2]);
  }
  A best = std::numeric_limits<A>::infinity();
  int bi = kNoIdx;
  const scalar_t* d = dst + b * Nd * 3;
  const int begin = split * chunk;  // < Nd: splits = ceil(Nd / chunk)
  const int end =
      static_cast<int>(min(static_cast<int64_t>(Nd), static_cast<int64_t>(begin) + chunk));
  for (int base = begin; base < end; base += blockDim.x) {
    const int n = min(static_cast<int>(blockDim.x), end - base);
    __syncthreads();  // the previous tile has been read by every thread
    if (static_cast<int>(threadIdx.x) < n) {
      const int64_t j = base + threadIdx.x;
      sx[threadIdx.x] = static_cast<A>(d[3 * j]);
      sy[threadIdx.x] = static_cast<A>(d[3 * j + 1]);
      sz[threadIdx.x] = static_cast<A>(d[3 * j + 2]);
    }
    __syncthreads();
    if (active) {
      for (int t = 0; t < n; ++t) {
        const A dist = nan_as_inf(sq_dist3(px, py, pz, sx[t], sy[t], sz[t]));
        if (closer<A>(dist, base + t, best, bi)) {
          best = dist;
          bi = base + t;
        }
      }
    }
  }
  if (!active) return;
  // bi is a real index: the range is non-empty and its first point beats (+inf, sentinel).
  if (splits == 1) {
    write_nearest(d, bi, px, py, pz, row, out_dist, out_idx);
  } else {
    part_dist[row * splits + split] = best;
    part_idx[row * splits + split] = bi;
  }
}

// Combines the per-split minima of each row under `closer`: a total order, so the result is
// the minimum over the whole target cloud whatever the split.
template <typename scalar_t>
__global__ void __launch_bounds__(kQueryBlock)
    nearest_merge_kernel(const scalar_t* __restrict__ src, const scalar_t* __restrict__ dst,
                         const typename acc_type<scalar_t>::type* __restrict__ part_dist,
                         const int* __restrict__ part_idx, scalar_t* __restrict__ out_dist,
                         int64_t* __restrict__ out_idx, int64_t Ns, int Nd, int splits,
                         int64_t rows) {
  using A = typename acc_type<scalar_t>::type;
  const int64_t row = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (row >= rows) return;
  A best = std::numeric_limits<A>::infinity();
  int bi = kNoIdx;
  for (int s = 0; s < splits; ++s) {
    const A pd = part_dist[row * splits + s];
    const int pi = part_idx[row * splits + s];
    if (closer<A>(pd, pi, best, bi)) {
      best = pd;
      bi = pi;
    }
  }
  const A px = static_cast<A>(src[3 * row]);
  const A py = static_cast<A>(src[3 * row + 1]);
  const A pz = static_cast<A>(src[3 * row + 2]);
  write_nearest(dst + (row / Ns) * Nd * 3, bi, px, py, pz, row, out_dist, out_idx);
}

// Gradient of d_src = |src_i - dst_idx[i]|^2 weighted by grad[i]: g_src[i] += v, g_dst[idx[i]] -= v
// with v = 2 g (src_i - dst_j), formed as (g*diff) + (g*diff) like autograd of diff*diff.
template <typename scalar_t>
__global__ void __launch_bounds__(kBackwardBlock)
    chamfer_grad_kernel(const scalar_t* __restrict__ grad, const scalar_t* __restrict__ src,
                        const scalar_t* __restrict__ dst, const int64_t* __restrict__ idx,
                        typename acc_type<scalar_t>::type* g_src,
                        typename acc_type<scalar_t>::type* g_dst, int64_t Ns, int64_t Nd,
                        int64_t total) {
  using A = typename acc_type<scalar_t>::type;
  const int64_t step = static_cast<int64_t>(gridDim.x) * blockDim.x;
  for (int64_t t = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; t < total;
       t += step) {
    const int64_t j = idx[t];
    CUDA_KERNEL_ASSERT(j >= 0 && j < Nd);
    const int64_t drow = (t / Ns) * Nd + j;
    const A g = static_cast<A>(grad[t]);
#pragma unroll
    for (int c = 0; c < 3; ++c) {
      const A diff = static_cast<A>(src[3 * t + c]) - static_cast<A>(dst[3 * drow + c]);
      const A gd = mul_rn(g, diff);
      const A v = add_rn(gd, gd);
      g_src[3 * t + c] += v;  // row t is this thread's alone within the launch
      atomicAdd(g_dst + 3 * drow + c, -v);
    }
  }
}

template <typename scalar_t>
void launch_nearest(const at::Tensor& src_t, const scalar_t* src, const scalar_t* dst,
                    scalar_t* out_dist, int64_t* out_idx, int64_t B, int64_t Ns, int64_t Nd,
                    cudaStream_t stream) {
  using A = typename acc_type<scalar_t>::type;
  if (B == 0 || Ns == 0) return;
  // Small clouds (e.g. 32-point groups): blocks no larger than the cloud.
  const int threads = cuda::warp_round(Ns, kQueryBlock);
  const int64_t tiles = cuda::ceil_div(Ns, threads);
  // Few large clouds leave most of the GPU idle with one block per tile of queries: split the
  // target cloud too, into chunks of at least 4 tiles, until about kBlocksPerSM blocks per SM.
  const int64_t want = static_cast<int64_t>(kBlocksPerSM) *
                       at::cuda::getCurrentDeviceProperties()->multiProcessorCount;
  int64_t splits = std::min(cuda::ceil_div(want, B * tiles), cuda::ceil_div(Nd, 4 * threads));
  if (splits < 1) splits = 1;
  const int64_t chunk =
      std::min(cuda::ceil_div(cuda::ceil_div(Nd, splits), threads) * threads, Nd);
  splits = cuda::ceil_div(Nd, chunk);
  at::Tensor part_dist, part_idx;
  if (splits > 1) {
    part_dist = at::empty({B * Ns * splits},
                          src_t.options().dtype(c10::CppTypeToScalarType<A>::value));
    part_idx = at::empty({B * Ns * splits}, src_t.options().dtype(at::kInt));
  }
  nearest_kernel<scalar_t><<<static_cast<unsigned>(B * tiles * splits), threads, 0, stream>>>(
      src, dst, out_dist, out_idx, splits > 1 ? part_dist.mutable_data_ptr<A>() : nullptr,
      splits > 1 ? part_idx.mutable_data_ptr<int>() : nullptr, static_cast<int>(Ns),
      static_cast<int>(Nd), tiles, static_cast<int>(splits), static_cast<int>(chunk));
  C10_CUDA_KERNEL_LAUNCH_CHECK();
  if (splits > 1) {
    const int64_t rows = B * Ns;
    nearest_merge_kernel<scalar_t>
        <<<static_cast<unsigned>(cuda::ceil_div(rows, kQueryBlock)), kQueryBlock, 0, stream>>>(
            src, dst, part_dist.const_data_ptr<A>(), part_idx.const_data_ptr<int>(), out_dist,
            out_idx, Ns, static_cast<int>(Nd), static_cast<int>(splits), rows);
    C10_CUDA_KERNEL_LAUNCH_CHECK();
  }
}

template <typename scalar_t>
void launch_grad(const scalar_t* grad, const scalar_t* src, const scalar_t* dst,
                 const int64_t* idx, typename acc_type<scalar_t>::type* g_src,
                 typename acc_type<scalar_t>::type* g_dst, int64_t B, int64_t Ns, int64_t Nd,
                 cudaStream_t stream) {
  const int64_t total = B * Ns;
  if (total == 0) return;
  const int64_t blocks = std::min<int64_t>(cuda::ceil_div(total, kBackwardBlock), 1 << 20);
  chamfer_grad_kernel<scalar_t><<<static_cast<unsigned>(blocks), kBackwardBlock, 0, stream>>>(
      grad, src, dst, idx, g_src, g_dst, Ns, Nd, total);
  C10_CUDA_KERNEL_LAUNCH_CHECK();
}

// Launch limit: the nearest kernels index blocks of 32 points with an int.
void check_launch_size(const char* op, int64_t B, int64_t N, int64_t M) {
  TORCH_CHECK_VALUE(B * std::max<int64_t>(cuda::ceil_div(N, 32), cuda::ceil_div(M, 32)) <
                        std::numeric_limits<int32_t>::max(),
                    op, ": too many points for one launch (B = ", B, ", N = ", N, ", M = ", M, ")");
}

}  // namespace

std::tuple<at::Tensor, at::Tensor, at::Tensor, at::Tensor> chamfer_forward_cuda(
    const at::Tensor& x, const at::Tensor& y) {
  const char* op = "chamfer_forward";
  check_chamfer_args(x, y, c10::DeviceType::CUDA, op);
  const int64_t B = x.size(0), N = x.size(1), M = y.size(1);
  check_launch_size(op, B, N, M);
  const c10::cuda::CUDAGuard guard(x.device());
  at::Tensor d_xy = at::empty({B, N}, x.options());
  at::Tensor d_yx = at::empty({B, M}, x.options());
  at::Tensor idx_xy = at::empty({B, N}, x.options().dtype(at::kLong));
  at::Tensor idx_yx = at::empty({B, M}, x.options().dtype(at::kLong));
  cudaStream_t stream = at::cuda::getCurrentCUDAStream();
  const auto dtype = x.scalar_type();
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, dtype, "chamfer_forward_cuda", [&] {
    const scalar_t* xp = x.const_data_ptr<scalar_t>();
    const scalar_t* yp = y.const_data_ptr<scalar_t>();
    launch_nearest<scalar_t>(x, xp, yp, d_xy.mutable_data_ptr<scalar_t>(),
                             idx_xy.mutable_data_ptr<int64_t>(), B, N, M, stream);
    launch_nearest<scalar_t>(y, yp, xp, d_yx.mutable_data_ptr<scalar_t>(),
                             idx_yx.mutable_data_ptr<int64_t>(), B, M, N, stream);
  });
  return {d_xy, d_yx, idx_xy, idx_yx};
}

std::tuple<at::Tensor, at::Tensor> chamfer_backward_cuda(
    const at::Tensor& grad_dxy, const at::Tensor& grad_dyx, const at::Tensor& x,
    const at::Tensor& y, const at::Tensor& idx_xy, const at::Tensor& idx_yx) {
  check_chamfer_backward_args(grad_dxy, grad_dyx, x, y, idx_xy, idx_yx, c10::DeviceType::CUDA);
  const int64_t B = x.size(0), N = x.size(1), M = y.size(1);
  check_launch_size("chamfer_backward", B, N, M);
  const c10::cuda::CUDAGuard guard(x.device());
  // Incoming gradients are often expanded views (e.g. the gradient of a mean): accept any layout.
  const at::Tensor gxy = grad_dxy.contiguous(), gyx = grad_dyx.contiguous();
  cudaStream_t stream = at::cuda::getCurrentCUDAStream();
  at::Tensor grad_x, grad_y;
  const auto dtype = x.scalar_type();
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, dtype, "chamfer_backward_cuda", [&] {
    using A = typename acc_type<scalar_t>::type;
    // Accumulate in A; for float/double these are the outputs themselves.
    const auto acc_opts = x.options().dtype(c10::CppTypeToScalarType<A>::value);
    at::Tensor gx = at::zeros({B, N, 3}, acc_opts);
    at::Tensor gy = at::zeros({B, M, 3}, acc_opts);
    const scalar_t* xp = x.const_data_ptr<scalar_t>();
    const scalar_t* yp = y.const_data_ptr<scalar_t>();
    // Stream order: the second launch's direct terms (gy) follow the first one's scatter.
    launch_grad<scalar_t>(gxy.const_data_ptr<scalar_t>(), xp, yp, idx_xy.const_data_ptr<int64_t>(),
                          gx.mutable_data_ptr<A>(), gy.mutable_data_ptr<A>(), B, N, M, stream);
    launch_grad<scalar_t>(gyx.const_data_ptr<scalar_t>(), yp, xp, idx_yx.const_data_ptr<int64_t>(),
                          gy.mutable_data_ptr<A>(), gx.mutable_data_ptr<A>(), B, M, N, stream);
    grad_x = gx.to(x.scalar_type());
    grad_y = gy.to(x.scalar_type());
  });
  return {grad_x, grad_y};
}

TORCH_LIBRARY_IMPL(recon, CUDA, m) {
  m.impl("chamfer_forward", &chamfer_forward_cuda);
  m.impl("chamfer_backward", &chamfer_backward_cuda);
}

}  // namespace recon
