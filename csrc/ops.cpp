// The schemas of every recon op (namespace `recon`), one line each.
// Kernels register per device in csrc/<op>/<op>_cpu.cpp and <op>_cuda.cu
// (TORCH_LIBRARY_IMPL(recon, CPU|CUDA, m)); fake kernels and autograd are registered
// from Python in recon/ops/.  A new op adds its schema here, its <op>.h (contract and the
// checks both devices share), <op>_cpu.cpp and <op>_cuda.cu, and its Python face in recon/ops/.
#include <Python.h>
#include <torch/library.h>

// Importing recon._C from Python loads this library, which runs the registrations below.
extern "C" {
PyObject* PyInit__C(void) {
  static struct PyModuleDef module_def = {PyModuleDef_HEAD_INIT, "_C", nullptr, -1, nullptr};
  return PyModule_Create(&module_def);
}
}

TORCH_LIBRARY(recon, m) {
  m.def("furthest_point_sample(Tensor xyz, int npoint, int start_idx) -> Tensor");
  m.def("knn(Tensor query, Tensor ref, int k) -> (Tensor, Tensor)");
  m.def("chamfer_forward(Tensor x, Tensor y) -> (Tensor, Tensor, Tensor, Tensor)");
  m.def(
      "chamfer_backward(Tensor grad_dxy, Tensor grad_dyx, Tensor x, Tensor y, Tensor idx_xy, "
      "Tensor idx_yx) -> (Tensor, Tensor)");
  m.def("build_info() -> str");
  // Private, CPU only (tests and benchmarks; not part of the public contract): the same kernels
  // with the path forced, "auto" | "brute" | "index" (| "tree" | "grid" for the searches), and
  // what the cost models choose (csrc/spatial/plan.h, plan_ops.cpp).
  m.def("_knn_path(Tensor query, Tensor ref, int k, str path) -> (Tensor, Tensor)");
  m.def("_chamfer_forward_path(Tensor x, Tensor y, str path) -> (Tensor, Tensor, Tensor, Tensor)");
  m.def("_fps_path(Tensor xyz, int npoint, int start_idx, str path) -> Tensor");
  m.def("_path_choice(str op, int B, int M, int N, int k) -> str");
  m.def("_index_uses_grid(Tensor points, str op) -> Tensor");
}
