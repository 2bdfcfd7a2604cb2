// The input checks of every kernel's host code, CPU and CUDA alike.
//
// One rule per mistake, whatever the device: shape, size, range, device and contiguity problems
// raise ValueError, dtype and layout problems TypeError (TORCH_CHECK_VALUE / TORCH_CHECK_TYPE
// become those Python exceptions), and every message starts with the op and names the
// argument.  recon/ops/_checks.py applies the same rules from Python before dispatch (with
// friendlier wording); these keep a direct torch.ops.recon.* call from reading out of bounds.
// Each op's header (knn/knn.h, ...) combines them into the one check its CPU and CUDA kernels
// both call.
#pragma once
#include <ATen/core/Tensor.h>
#include <c10/core/DeviceType.h>
#include <c10/util/Exception.h>

#include <cstdint>
#include <limits>

namespace recon {
namespace checks {

// Points per cloud must fit an int32 index (the SIMD lanes and the CUDA kernels use one).
constexpr int64_t kMaxPoints = std::numeric_limits<int32_t>::max() - 1;

// A tensor the kernel reads through a plain pointer: strided (not sparse), on `device`.
inline void dense_on(const at::Tensor& t, const char* op, const char* name, c10::DeviceType device) {
  TORCH_CHECK_TYPE(t.layout() == c10::kStrided, op, ": ", name,
                   " must be a dense (strided) tensor, got layout ", t.layout());
  TORCH_CHECK_VALUE(t.device().type() == device, op, ": ", name, " must be a ",
                    c10::DeviceTypeName(device), " tensor, got device ", t.device());
}

// A (B, n, 3) floating, contiguous cloud on `device` with at most kMaxPoints points.
inline void cloud(const at::Tensor& t, const char* op, const char* name, c10::DeviceType device) {
  dense_on(t, op, name, device);
  TORCH_CHECK_VALUE(t.dim() == 3 && t.size(2) == 3, op, ": ", name,
                    " must have shape (B, N, 3), got ", t.sizes());
  TORCH_CHECK_TYPE(at::isFloatingType(t.scalar_type()), op, ": ", name,
                   " must be a floating tensor (float16, bfloat16, float32 or float64), got ",
                   t.scalar_type());
  TORCH_CHECK_VALUE(t.is_contiguous(), op, ": ", name, " must be contiguous");
  TORCH_CHECK_VALUE(t.size(1) <= kMaxPoints, op, ": ", name, " has too many points (",
                    t.size(1), "); at most 2^31 - 2 are supported");
}

// b used together with a: one device, one dtype, one batch size.
inline void pair(const at::Tensor& a, const char* name_a, const at::Tensor& b, const char* name_b,
                 const char* op) {
  TORCH_CHECK_VALUE(a.device() == b.device(), op, ": ", name_a, " and ", name_b,
                    " must be on the same device, got ", a.device(), " and ", b.device());
  TORCH_CHECK_TYPE(a.scalar_type() == b.scalar_type(), op, ": ", name_a, " and ", name_b,
                   " must have the same dtype, got ", a.scalar_type(), " and ", b.scalar_type());
  TORCH_CHECK_VALUE(a.size(0) == b.size(0), op, ": ", name_a, " and ", name_b,
                    " must have the same batch size, got ", a.size(0), " and ", b.size(0));
}

// A per-point (B, n) tensor of dtype `dtype` on like's device (any strides).
inline void per_point(const at::Tensor& t, const char* name, const at::Tensor& like, int64_t B,
                      int64_t n, at::ScalarType dtype, const char* op) {
  dense_on(t, op, name, like.device().type());
  TORCH_CHECK_VALUE(t.device() == like.device(), op, ": ", name, " must be on ", like.device(),
                    ", got ", t.device());
  TORCH_CHECK_VALUE(t.dim() == 2 && t.size(0) == B && t.size(1) == n, op, ": ", name,
                    " must have shape (", B, ", ", n, "), got ", t.sizes());
  TORCH_CHECK_TYPE(t.scalar_type() == dtype, op, ": ", name, " must have dtype ", dtype,
                   ", got ", t.scalar_type());
}

// An integer argument with low <= v <= high; `what` reads like "1 <= k <= N = 5".
template <typename... Args>
inline void in_range(int64_t v, int64_t low, int64_t high, const char* op, const char* name,
                     const Args&... what) {
  TORCH_CHECK_VALUE(v >= low && v <= high, op, ": ", name, " must satisfy ", what..., ", got ", v);
}

}  // namespace checks
}  // namespace recon
