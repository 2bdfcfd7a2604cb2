// Exact CPU kernels with spatial pruning for kNN, Chamfer (uniform grid or kd-tree per cloud,
// grid.h / kdtree.h) and FPS (kd-tree buckets), plus the cost models that choose between them
// and plain brute force.
//
// Every function returns exactly what the brute-force kernels and recon.ops.reference return
// (same indices, same tie rule, bit-identical distances); see bounds.h for why the pruning is
// exact.  Shapes, dtypes and semantics are those of csrc/knn/knn.h, csrc/chamfer/chamfer.h and
// csrc/fps/fps.h.  `Path` forces a branch (tests, benchmarks); kAuto asks the cost model.
#pragma once

#include <ATen/core/Tensor.h>

#include <cstdint>
#include <tuple>

namespace recon {
namespace spatial {

// kIndex lets each cloud pick its index (uniform grid unless the cloud is too clustered for one,
// then kd-tree); kTree / kGrid force one.
enum class Path : int64_t { kAuto = 0, kIndex = 1, kBrute = 2, kTree = 3, kGrid = 4 };

// Cost models (per cloud sizes; B is the batch).  true -> spatial index / buckets, false -> brute force.
bool knn_prefers_index(int64_t B, int64_t M, int64_t N, int64_t k);
bool chamfer_prefers_index(int64_t B, int64_t N, int64_t M);
bool fps_prefers_buckets(int64_t B, int64_t N, int64_t npoint);

std::tuple<at::Tensor, at::Tensor> knn_cpu(const at::Tensor& query, const at::Tensor& ref,
                                           int64_t k, Path path = Path::kAuto);
std::tuple<at::Tensor, at::Tensor, at::Tensor, at::Tensor> chamfer_forward_cpu(
    const at::Tensor& x, const at::Tensor& y, Path path = Path::kAuto);
at::Tensor furthest_point_sample_cpu(const at::Tensor& xyz, int64_t npoint, int64_t start_idx,
                                     Path path = Path::kAuto);

}  // namespace spatial
}  // namespace recon
