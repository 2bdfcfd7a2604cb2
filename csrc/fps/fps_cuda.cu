// Farthest point sampling on CUDA: one block per cloud.
//
// Every iteration each thread updates the running minimum distance of the points it owns,
// keeps its own arg-max, and the block reduces the (key, index) pairs with warp shuffles and
// one shared-memory exchange.  NaN keys become -inf before the reduction, so the order used
// (fps_better: larger key, ties to the lower index) is a total order over distinct indices;
// the arg-max is therefore unique and independent of the reduction tree, i.e. identical to the
// sequential scan of the CPU kernel and of recon.ops.reference.  A cloud whose keys are all
// -inf (every running distance NaN) yields index 0, the first of the -inf keys, like argmax.
//
// Small clouds keep their points and running minima in registers (PPT points per thread);
// larger ones read the points from global memory every iteration and keep the running minima
// in a global workspace (both stay in L2 for the cloud sizes Point-MAE uses).
#include "common/cuda_utils.cuh"
#include "common/geometry.h"
#include "fps/fps.h"

#include <ATen/Dispatch.h>
#include <ATen/cuda/CUDAContext.h>
#include <ATen/ops/empty.h>
#include <c10/cuda/CUDAException.h>
#include <c10/cuda/CUDAGuard.h>
#include <torch/library.h>

#include <cuda_runtime.h>

#include <limits>

namespace recon {
namespace {

constexpr int kNoIdx = std::numeric_limits<int>::max();

template <typename A>
__device__ __forceinline__ A neg_inf() {
  return -std::numeric_limits<A>::infinity();
}

// Keep (key, idx) unless (ok, oi) comes first in the fps order.
template <typename A>
__device__ __forceinline__ void argmax_merge(A& key, int& idx, A ok, int oi) {
  if (fps_better<A>(ok, oi, key, idx)) {
    key = ok;
    idx = oi;
  }
}

// Butterfly reduction: every lane ends with the warp's best pair (the order is total, so the
// result does not depend on which lanes meet first).
template <typename A>
__device__ __forceinline__ void warp_argmax(A& key, int& idx) {
#pragma unroll
  for (int off = 16; off > 0; off >>= 1) {
    const A ok = __shfl_xor_sync(0xffffffffu, key, off);
    const int oi = __shfl_xor_sync(0xffffffffu, idx, off);
    argmax_merge(key, idx, ok, oi);
  }
}

// Block arg-max; every thread returns the winning index.  One __syncthreads per call: the
// per-warp slots alternate between two buffers (`parity`), and a warp can only overwrite a
// buffer after every warp has passed the barrier of the following call, i.e. after every warp
// has finished reading it.  blockDim.x must be a multiple of 32 (at most 1024).
template <typename A>
__device__ __forceinline__ int block_argmax(A key, int idx, A (*s_key)[32], int (*s_idx)[32],
                                            int parity) {
  const int lane = threadIdx.x & 31;
  const int warp = threadIdx.x >> 5;
  const int nwarps = blockDim.x >> 5;
  warp_argmax(key, idx);
  if (lane == 0) {
    s_key[parity][warp] = key;
    s_idx[parity][warp] = idx;
  }
  __syncthreads();
  key = lane < nwarps ? s_key[parity][lane] : neg_inf<A>();
  idx = lane < nwarps ? s_idx[parity][lane] : kNoIdx;
  warp_argmax(key, idx);
  return idx;
}

template <typename A>
__device__ __forceinline__ A fps_key(A running) {
  return running != running ? neg_inf<A>() : running;
}

// Points and running minima in registers: thread t owns points t + s * blockDim.x, s < PPT.
template <typename scalar_t, int PPT, int MAX_THREADS>
__global__ void __launch_bounds__(MAX_THREADS)
    fps_register_kernel(const scalar_t* __restrict__ xyz, int64_t* __restrict__ out, int N,
                        int npoint, int start) {
  using A = typename acc_type<scalar_t>::type;
  __shared__ A s_key[2][32];
  __shared__ int s_idx[2][32];
  const scalar_t* p = xyz + static_cast<int64_t>(blockIdx.x) * N * 3;
  int64_t* o = out + static_cast<int64_t>(blockIdx.x) * npoint;

  A px[PPT], py[PPT], pz[PPT], md[PPT];
#pragma unroll
  for (int s = 0; s < PPT; ++s) {
    const int j = threadIdx.x + s * blockDim.x;
    px[s] = py[s] = pz[s] = A(0);
    md[s] = std::numeric_limits<A>::infinity();
    if (j < N) {
      px[s] = static_cast<A>(p[3 * j]);
      py[s] = static_cast<A>(p[3 * j + 1]);
      pz[s] = static_cast<A>(p[3 * j + 2]);
    }
  }
  if (threadIdx.x == 0) o[0] = start;
  int last = start;
  for (int it = 1; it < npoint; ++it) {
    const A cx = static_cast<A>(p[3 * last]);
    const A cy = static_cast<A>(p[3 * last + 1]);
    const A cz = static_cast<A>(p[3 * last + 2]);
    A best = neg_inf<A>();
    int bi = kNoIdx;
#pragma unroll
    for (int s = 0; s < PPT; ++s) {
      const int j = threadIdx.x + s * blockDim.x;
      if (j < N) {
        md[s] = fps_min(md[s], sq_dist3(px[s], py[s], pz[s], cx, cy, cz));
        argmax_merge(best, bi, fps_key(md[s]), j);
      }
    }
    last = block_argmax(best, bi, s_key, s_idx, it & 1);
    if (threadIdx.x == 0) o[it] = last;
  }
}

// Any N: points re-read from global memory, running minima in `mind` (B, N), which needs no
// initialisation (the first iteration starts from +inf).
template <typename scalar_t>
__global__ void __launch_bounds__(1024)
    fps_global_kernel(const scalar_t* __restrict__ xyz, typename acc_type<scalar_t>::type* mind,
                      int64_t* __restrict__ out, int N, int npoint, int start) {
  using A = typename acc_type<scalar_t>::type;
  __shared__ A s_key[2][32];
  __shared__ int s_idx[2][32];
  const scalar_t* p = xyz + static_cast<int64_t>(blockIdx.x) * N * 3;
  A* m = mind + static_cast<int64_t>(blockIdx.x) * N;
  int64_t* o = out + static_cast<int64_t>(blockIdx.x) * npoint;

  if (threadIdx.x == 0) o[0] = start;
  int last = start;
  for (int it = 1; it < npoint; ++it) {
    const A cx = static_cast<A>(p[3 * last]);
    const A cy = static_cast<A>(p[3 * last + 1]);
    const A cz = static_cast<A>(p[3 * last + 2]);
    A best = neg_inf<A>();
    int bi = kNoIdx;
    for (int j = threadIdx.x; j < N; j += blockDim.x) {
      const A d = sq_dist3(static_cast<A>(p[3 * j]), static_cast<A>(p[3 * j + 1]),
                           static_cast<A>(p[3 * j + 2]), cx, cy, cz);
      const A running = fps_min(it == 1 ? std::numeric_limits<A>::infinity() : m[j], d);
      m[j] = running;  // each j belongs to one thread: no race
      argmax_merge(best, bi, fps_key(running), j);
    }
    last = block_argmax(best, bi, s_key, s_idx, it & 1);
    if (threadIdx.x == 0) o[it] = last;
  }
}

// Launch the register kernel with the fewest points per thread that fit; false if none does.
template <typename scalar_t, int PPT, int MAX_THREADS>
bool try_register(const scalar_t* xyz, int64_t* out, int64_t B, int N, int npoint, int start,
                  cudaStream_t stream) {
  if (static_cast<int64_t>(N) > static_cast<int64_t>(PPT) * MAX_THREADS) return false;
  const int threads = cuda::warp_round(cuda::ceil_div(N, PPT), MAX_THREADS);
  fps_register_kernel<scalar_t, PPT, MAX_THREADS>
      <<<static_cast<unsigned>(B), threads, 0, stream>>>(xyz, out, N, npoint, start);
  C10_CUDA_KERNEL_LAUNCH_CHECK();
  return true;
}

}  // namespace

at::Tensor furthest_point_sample_cuda(const at::Tensor& xyz, int64_t npoint, int64_t start_idx) {
  const char* op = "furthest_point_sample";
  check_fps_args(xyz, npoint, start_idx, c10::DeviceType::CUDA);
  const int64_t B = xyz.size(0), N = xyz.size(1);
  TORCH_CHECK_VALUE(B <= std::numeric_limits<int32_t>::max(), op,
                    ": at most 2^31 - 1 clouds per call, got B = ", B);
  const c10::cuda::CUDAGuard guard(xyz.device());
  at::Tensor out = at::empty({B, npoint}, xyz.options().dtype(at::kLong));
  if (B == 0) return out;
  cudaStream_t stream = at::cuda::getCurrentCUDAStream();
  const int n = static_cast<int>(N), np = static_cast<int>(npoint);
  const int st = static_cast<int>(start_idx);

  const auto dtype = xyz.scalar_type();
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, dtype, "furthest_point_sample_cuda", [&] {
    using A = typename acc_type<scalar_t>::type;
    const scalar_t* p = xyz.const_data_ptr<scalar_t>();
    int64_t* o = out.mutable_data_ptr<int64_t>();
    bool done = try_register<scalar_t, 1, 1024>(p, o, B, n, np, st, stream) ||
                try_register<scalar_t, 4, 1024>(p, o, B, n, np, st, stream);
    // 16 points per thread keep 64 (float) registers of state: fine for float at 512 threads,
    // it would spill for double.
    if constexpr (sizeof(A) == 4) {
      if (!done) done = try_register<scalar_t, 16, 512>(p, o, B, n, np, st, stream);
    }
    if (!done) {
      at::Tensor mind = at::empty({B, N}, xyz.options().dtype(c10::CppTypeToScalarType<A>::value));
      fps_global_kernel<scalar_t><<<static_cast<unsigned>(B), 1024, 0, stream>>>(
          p, mind.mutable_data_ptr<A>(), o, n, np, st);
      C10_CUDA_KERNEL_LAUNCH_CHECK();
    }
  });
  return out;
}

TORCH_LIBRARY_IMPL(recon, CUDA, m) { m.impl("furthest_point_sample", &furthest_point_sample_cuda); }

}  // namespace recon
