// Optional per-cloud lengths of a ragged batch (pytorch3d's convention): cloud b of a padded
// (B, N, 3) tensor holds its first lengths[b] points; the rest is padding the kernels ignore.
#pragma once
#include <ATen/core/Tensor.h>
#include <c10/util/Exception.h>
#include <c10/util/Optional.h>

#include <algorithm>
#include <cstdint>

namespace recon {

// `lengths`, when given, must be an integer (B,) tensor on the device of the points; it is
// returned as contiguous int64 (an undefined tensor when absent).  Values are not read here
// (that would synchronise a CUDA stream): kernels clamp them to [0, n] with clamp_length.
inline at::Tensor checked_lengths(const c10::optional<at::Tensor>& lengths, int64_t B,
                                  const at::Tensor& points, const char* name) {
  if (!lengths.has_value() || !lengths->defined()) return at::Tensor();
  const at::Tensor& l = *lengths;
  TORCH_CHECK_VALUE(l.dim() == 1 && l.size(0) == B, name, " must have shape (B,) = (", B,
                    ",), got ", l.sizes());
  TORCH_CHECK_TYPE(l.scalar_type() == at::kLong || l.scalar_type() == at::kInt, name,
                   " must be int64 (or int32), got ", l.scalar_type());
  TORCH_CHECK_VALUE(l.device() == points.device(), name, " must be on ", points.device(),
                    " like the points, got ", l.device());
  return l.to(at::kLong).contiguous();
}

#if defined(__CUDACC__)
__host__ __device__
#endif
inline int64_t clamp_length(const int64_t* lengths, int64_t b, int64_t n) {
  if (lengths == nullptr) return n;
  const int64_t v = lengths[b];
  return v < 0 ? 0 : (v > n ? n : v);
}

}  // namespace recon
