// Chamfer distance: squared nearest-neighbour distances in both directions.
//
// forward:  x (B, N, 3), y (B, M, 3) same floating dtype, contiguous
//           returns d_xy (B, N), d_yx (B, M) in the input dtype, idx_xy (B, N), idx_yx (B, M) int64
//           (first minimum = lowest index; NaN distances count as +inf)
// backward: grad_dxy (B, N), grad_dyx (B, M); the forward's x, y, idx_xy, idx_yx
//           returns grad_x (B, N, 3), grad_y (B, M, 3):
//             grad_x[i]          += 2 g_xy[i] (x_i - y_idx_xy[i]);  grad_y[idx_xy[i]] -= the same
//             grad_y[j]          += 2 g_yx[j] (y_j - x_idx_yx[j]);  grad_x[idx_yx[j]] -= the same
#pragma once
#include <ATen/core/Tensor.h>
#include <tuple>

namespace recon {
std::tuple<at::Tensor, at::Tensor, at::Tensor, at::Tensor> chamfer_forward_cpu(
    const at::Tensor& x, const at::Tensor& y);
std::tuple<at::Tensor, at::Tensor> chamfer_backward_cpu(
    const at::Tensor& grad_dxy, const at::Tensor& grad_dyx, const at::Tensor& x,
    const at::Tensor& y, const at::Tensor& idx_xy, const at::Tensor& idx_yx);
std::tuple<at::Tensor, at::Tensor, at::Tensor, at::Tensor> chamfer_forward_cuda(
    const at::Tensor& x, const at::Tensor& y);
std::tuple<at::Tensor, at::Tensor> chamfer_backward_cuda(
    const at::Tensor& grad_dxy, const at::Tensor& grad_dyx, const at::Tensor& x,
    const at::Tensor& y, const at::Tensor& idx_xy, const at::Tensor& idx_yx);
}  // namespace recon
