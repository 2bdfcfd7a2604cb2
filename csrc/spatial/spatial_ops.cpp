// Private ops exposing the spatial kernels for tests and benchmarks (namespace recon, leading
// underscore: not part of the public contract).  Same signatures and outputs as the public ops:
//   _knn_spatial / _chamfer_spatial_forward / _fps_spatial   cost model picks index or brute force
//   _knn_index   / _chamfer_index_forward   / _fps_bucket    always an index (grid or kd-tree,
//                                                             chosen per cloud) / buckets
//   _knn_tree    / _chamfer_tree_forward                     always the kd-tree
//   _knn_grid    / _chamfer_grid_forward                     always the uniform grid
//   _knn_brute   / _chamfer_brute_forward   / _fps_brute     always brute force
//   _spatial_prefers_index(op, B, M, N, k)                    the cost model's choice
//   _spatial_uses_grid(points, op)                            per cloud: grid (true) or kd-tree
// op is "knn" (B, M queries, N refs, k), "chamfer" (B, N=M x points, N y points; k ignored) or
// "fps" (B, N points in M, npoint in k).
#include <torch/library.h>

#include <string>

#include "spatial/grid.h"
#include "spatial/spatial.h"
#include "spatial/util.h"

namespace recon {
namespace spatial {
namespace {

bool prefers_index(const std::string& op, int64_t B, int64_t M, int64_t N, int64_t k) {
  if (op == "knn") return knn_prefers_index(B, M, N, k);
  if (op == "chamfer") return chamfer_prefers_index(B, M, N);
  if (op == "fps") return fps_prefers_buckets(B, M, k);
  TORCH_CHECK_VALUE(false, "op must be one of 'knn', 'chamfer', 'fps', got '", op, "'");
}

// Which index _knn_index / _chamfer_index_forward build for each cloud of `points` ([B, N, 3]):
// op "knn" (reference clouds) or "chamfer" (either side).
at::Tensor uses_grid(const at::Tensor& points, const std::string& op) {
  check_cloud(points, "points");
  TORCH_CHECK_VALUE(op == "knn" || op == "chamfer", "op must be 'knn' or 'chamfer', got '", op,
                    "'");
  const IndexParams& prm = op == "knn" ? kKnnIndex : kNearestIndex;
  const at::Tensor p = acc_view(points);
  const int64_t B = p.size(0), N = p.size(1);
  at::Tensor out = at::empty({B}, p.options().dtype(at::kBool));
  AT_DISPATCH_FLOATING_TYPES(p.scalar_type(), "recon_spatial_uses_grid", [&] {
    for (int64_t b = 0; b < B; ++b) {
      AnyIndex<scalar_t> ix;
      ix.build(p.data_ptr<scalar_t>() + 3 * b * N, N, IndexKind::kAuto, prm);
      out[b] = ix.use_grid;
    }
  });
  return out;
}

template <Path P>
std::tuple<at::Tensor, at::Tensor> knn_op(const at::Tensor& q, const at::Tensor& r, int64_t k) {
  return knn_cpu(q, r, k, P);
}
template <Path P>
std::tuple<at::Tensor, at::Tensor, at::Tensor, at::Tensor> chamfer_op(const at::Tensor& x,
                                                                      const at::Tensor& y) {
  return chamfer_forward_cpu(x, y, P);
}
template <Path P>
at::Tensor fps_op(const at::Tensor& xyz, int64_t npoint, int64_t start_idx) {
  return furthest_point_sample_cpu(xyz, npoint, start_idx, P);
}

}  // namespace
}  // namespace spatial
}  // namespace recon

TORCH_LIBRARY_FRAGMENT(recon, m) {
  m.def("_knn_spatial(Tensor query, Tensor ref, int k) -> (Tensor, Tensor)");
  m.def("_knn_index(Tensor query, Tensor ref, int k) -> (Tensor, Tensor)");
  m.def("_knn_brute(Tensor query, Tensor ref, int k) -> (Tensor, Tensor)");
  m.def("_knn_tree(Tensor query, Tensor ref, int k) -> (Tensor, Tensor)");
  m.def("_knn_grid(Tensor query, Tensor ref, int k) -> (Tensor, Tensor)");
  m.def("_chamfer_spatial_forward(Tensor x, Tensor y) -> (Tensor, Tensor, Tensor, Tensor)");
  m.def("_chamfer_index_forward(Tensor x, Tensor y) -> (Tensor, Tensor, Tensor, Tensor)");
  m.def("_chamfer_brute_forward(Tensor x, Tensor y) -> (Tensor, Tensor, Tensor, Tensor)");
  m.def("_chamfer_tree_forward(Tensor x, Tensor y) -> (Tensor, Tensor, Tensor, Tensor)");
  m.def("_chamfer_grid_forward(Tensor x, Tensor y) -> (Tensor, Tensor, Tensor, Tensor)");
  m.def("_fps_spatial(Tensor xyz, int npoint, int start_idx) -> Tensor");
  m.def("_fps_bucket(Tensor xyz, int npoint, int start_idx) -> Tensor");
  m.def("_fps_brute(Tensor xyz, int npoint, int start_idx) -> Tensor");
  m.def("_spatial_prefers_index(str op, int B, int M, int N, int k) -> bool",
        &recon::spatial::prefers_index);
  m.def("_spatial_uses_grid(Tensor points, str op) -> Tensor", &recon::spatial::uses_grid);
}

TORCH_LIBRARY_IMPL(recon, CPU, m) {
  using recon::spatial::Path;
  namespace s = recon::spatial;
  m.impl("_knn_spatial", &s::knn_op<Path::kAuto>);
  m.impl("_knn_index", &s::knn_op<Path::kIndex>);
  m.impl("_knn_brute", &s::knn_op<Path::kBrute>);
  m.impl("_knn_tree", &s::knn_op<Path::kTree>);
  m.impl("_knn_grid", &s::knn_op<Path::kGrid>);
  m.impl("_chamfer_spatial_forward", &s::chamfer_op<Path::kAuto>);
  m.impl("_chamfer_index_forward", &s::chamfer_op<Path::kIndex>);
  m.impl("_chamfer_brute_forward", &s::chamfer_op<Path::kBrute>);
  m.impl("_chamfer_tree_forward", &s::chamfer_op<Path::kTree>);
  m.impl("_chamfer_grid_forward", &s::chamfer_op<Path::kGrid>);
  m.impl("_fps_spatial", &s::fps_op<Path::kAuto>);
  m.impl("_fps_bucket", &s::fps_op<Path::kIndex>);
  m.impl("_fps_brute", &s::fps_op<Path::kBrute>);
}
