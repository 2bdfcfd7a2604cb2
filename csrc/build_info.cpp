// recon::build_info(): what this binary was compiled with, as a JSON object.  recon.ops
// compares it with the running torch and reports it from recon.ops.backend_info().
#include <torch/library.h>

#include <string>

#ifndef RECON_TORCH_VERSION
#define RECON_TORCH_VERSION "unknown"
#endif
#ifndef RECON_CUDA_ARCH_LIST
#define RECON_CUDA_ARCH_LIST ""
#endif

namespace recon {

std::string build_info() {
  std::string s = "{\"torch\": \"" RECON_TORCH_VERSION "\"";
#ifdef WITH_CUDA
  s += ", \"with_cuda\": true, \"cuda_arch_list\": \"" RECON_CUDA_ARCH_LIST "\"";
#else
  s += ", \"with_cuda\": false, \"cuda_arch_list\": null";
#endif
#ifdef _OPENMP
  s += ", \"openmp\": true";
#else
  s += ", \"openmp\": false";
#endif
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__) && !defined(RECON_NO_CLONES)
  s += ", \"cpu_simd\": \"x86-64-v3 (AVX2) with baseline fallback\"";
#else
  s += ", \"cpu_simd\": \"compiler default\"";
#endif
  s += "}";
  return s;
}

}  // namespace recon

// No tensor arguments, so no dispatch key can be computed: a CatchAll kernel.
TORCH_LIBRARY_IMPL(recon, CatchAll, m) { m.impl("build_info", &recon::build_info); }
