// The schemas of every recon op (namespace `recon`), one line each.
// Kernels register per device in csrc/<op>/<op>_cpu.cpp and <op>_cuda.cu
// (TORCH_LIBRARY_IMPL(recon, CPU|CUDA, m)); fake kernels and autograd are registered
// from Python in recon/ops/.
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
  m.def(
      "furthest_point_sample(Tensor xyz, int npoint, int start_idx, Tensor? lengths=None, "
      "Tensor? counts=None) -> Tensor");
  m.def(
      "knn(Tensor query, Tensor ref, int k, Tensor? lengths1=None, Tensor? lengths2=None) -> "
      "(Tensor, Tensor)");
  m.def(
      "chamfer_forward(Tensor x, Tensor y, Tensor? x_lengths=None, Tensor? y_lengths=None) -> "
      "(Tensor, Tensor, Tensor, Tensor)");
  m.def(
      "chamfer_backward(Tensor grad_dxy, Tensor grad_dyx, Tensor x, Tensor y, Tensor idx_xy, "
      "Tensor idx_yx) -> (Tensor, Tensor)");
  m.def(
      "ball_query(Tensor query, Tensor ref, float radius, int k, Tensor? lengths1=None, "
      "Tensor? lengths2=None) -> (Tensor, Tensor)");
  // Tests and benchmarks: the CPU ball query with its strategy forced (0 auto, 1 grid, 2 brute).
  m.def(
      "_ball_query_path(Tensor query, Tensor ref, float radius, int k, Tensor? lengths1, "
      "Tensor? lengths2, int path) -> (Tensor, Tensor)");
  m.def("build_info() -> str");
}
