// Chamfer distance: squared nearest-neighbour distances in both directions.
//
// forward:  x (B, N, 3), y (B, M, 3) same floating dtype, contiguous; N and M both > 0 (or both
//           0, or B == 0)
//           returns d_xy (B, N), d_yx (B, M) in the input dtype, idx_xy (B, N), idx_yx (B, M) int64
//           (first minimum = lowest index; NaN distances count as +inf)
// backward: grad_dxy (B, N), grad_dyx (B, M) of x's dtype, any strides; the forward's x, y,
//           idx_xy, idx_yx (contiguous)
//           returns grad_x (B, N, 3), grad_y (B, M, 3):
//             grad_x[i]          += 2 g_xy[i] (x_i - y_idx_xy[i]);  grad_y[idx_xy[i]] -= the same
//             grad_y[j]          += 2 g_yx[j] (y_j - x_idx_yx[j]);  grad_x[idx_yx[j]] -= the same
#pragma once
#include <ATen/core/Tensor.h>

#include <string>
#include <tuple>

#include "common/checks.h"

namespace recon {

// The checks of both devices' kernels (common/checks.h).
inline void check_chamfer_args(const at::Tensor& x, const at::Tensor& y, c10::DeviceType device,
                               const char* op) {
  checks::cloud(x, op, "x", device);
  checks::cloud(y, op, "y", device);
  checks::pair(x, "x", y, "y", op);
  TORCH_CHECK_VALUE(x.size(0) == 0 || (x.size(1) == 0) == (y.size(1) == 0), op,
                    ": x and y must both have points (or both have none), got N = ", x.size(1),
                    " and M = ", y.size(1));
}

inline void check_chamfer_backward_args(const at::Tensor& grad_dxy, const at::Tensor& grad_dyx,
                                        const at::Tensor& x, const at::Tensor& y,
                                        const at::Tensor& idx_xy, const at::Tensor& idx_yx,
                                        c10::DeviceType device) {
  const char* op = "chamfer_backward";
  check_chamfer_args(x, y, device, op);
  const int64_t B = x.size(0), N = x.size(1), M = y.size(1);
  checks::per_point(grad_dxy, "grad_dxy", x, B, N, x.scalar_type(), op);
  checks::per_point(grad_dyx, "grad_dyx", x, B, M, x.scalar_type(), op);
  checks::per_point(idx_xy, "idx_xy", x, B, N, at::kLong, op);
  checks::per_point(idx_yx, "idx_yx", x, B, M, at::kLong, op);
  TORCH_CHECK_VALUE(idx_xy.is_contiguous() && idx_yx.is_contiguous(), op,
                    ": idx_xy and idx_yx must be contiguous");
}

std::tuple<at::Tensor, at::Tensor, at::Tensor, at::Tensor> chamfer_forward_cpu(
    const at::Tensor& x, const at::Tensor& y);
// The private op `_chamfer_forward_path`: path "auto" | "brute" | "index" | "tree" | "grid"
// (spatial/plan.h).
std::tuple<at::Tensor, at::Tensor, at::Tensor, at::Tensor> chamfer_forward_path_cpu(
    const at::Tensor& x, const at::Tensor& y, const std::string& path);
std::tuple<at::Tensor, at::Tensor> chamfer_backward_cpu(
    const at::Tensor& grad_dxy, const at::Tensor& grad_dyx, const at::Tensor& x,
    const at::Tensor& y, const at::Tensor& idx_xy, const at::Tensor& idx_yx);
std::tuple<at::Tensor, at::Tensor, at::Tensor, at::Tensor> chamfer_forward_cuda(
    const at::Tensor& x, const at::Tensor& y);
std::tuple<at::Tensor, at::Tensor> chamfer_backward_cuda(
    const at::Tensor& grad_dxy, const at::Tensor& grad_dyx, const at::Tensor& x,
    const at::Tensor& y, const at::Tensor& idx_xy, const at::Tensor& idx_yx);

}  // namespace recon
