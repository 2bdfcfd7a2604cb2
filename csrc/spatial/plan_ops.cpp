// Private ops that show tests and benchmarks what the CPU kernels decide (spatial/plan.h):
//   _path_choice(op, B, M, N, k) -> "brute" | "index"   the cost model of op "knn" (B clouds, M
//       queries, N references, k), "chamfer" (N = M x points, N y points; k ignored) or "fps"
//       (N = M points, npoint in k)
//   _index_uses_grid(points, op) -> (B,) bool   per cloud: the uniform grid (true) or the kd-tree
//       that the index path builds for op "knn" (reference clouds) or "chamfer" (either side)
#include <ATen/ATen.h>
#include <ATen/Dispatch.h>
#include <torch/library.h>

#include <string>

#include "common/checks.h"
#include "common/cpu_utils.h"
#include "spatial/grid.h"
#include "spatial/plan.h"

namespace recon {
namespace spatial {
namespace {

std::string path_choice(const std::string& op, int64_t B, int64_t M, int64_t N, int64_t k) {
  bool index = false;
  if (op == "knn")
    index = knn_prefers_index(B, M, N, k);
  else if (op == "chamfer")
    index = chamfer_prefers_index(B, M, N);
  else if (op == "fps")
    index = fps_prefers_buckets(B, M, k);
  else
    TORCH_CHECK_VALUE(false, "_path_choice: op must be one of 'knn', 'chamfer', 'fps', got '", op, "'");
  return index ? "index" : "brute";
}

at::Tensor index_uses_grid(const at::Tensor& points, const std::string& op) {
  checks::cloud(points, "_index_uses_grid", "points", c10::DeviceType::CPU);
  TORCH_CHECK_VALUE(op == "knn" || op == "chamfer",
                    "_index_uses_grid: op must be 'knn' or 'chamfer', got '", op, "'");
  const IndexParams& prm = op == "knn" ? kKnnIndex : kNearestIndex;
  const at::Tensor p = cpu::to_acc(points);
  const int64_t B = p.size(0), N = p.size(1);
  at::Tensor out = at::empty({B}, p.options().dtype(at::kBool));
  AT_DISPATCH_FLOATING_TYPES(p.scalar_type(), "_index_uses_grid", [&] {
    for (int64_t b = 0; b < B; ++b) {
      AnyIndex<scalar_t> ix;
      ix.build(p.data_ptr<scalar_t>() + 3 * b * N, N, IndexKind::kAuto, prm);
      out[b] = ix.use_grid;
    }
  });
  return out;
}

}  // namespace
}  // namespace spatial
}  // namespace recon

// No tensor arguments, so no dispatch key can be computed: a CatchAll kernel.
TORCH_LIBRARY_IMPL(recon, CatchAll, m) { m.impl("_path_choice", &recon::spatial::path_choice); }
TORCH_LIBRARY_IMPL(recon, CPU, m) { m.impl("_index_uses_grid", &recon::spatial::index_uses_grid); }
