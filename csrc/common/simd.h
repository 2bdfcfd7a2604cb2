// Portable 256-bit vectors for the CPU kernels (GCC/Clang vector extensions).  The compiler
// lowers them to AVX2 inside RECON_CLONES functions on x86-64 and to two SSE/NEON registers
// elsewhere; the arithmetic is plain IEEE, lane-wise, identical to the scalar helpers.
#pragma once
#include <cstdint>
#include <cstring>
#include <limits>

#define RECON_SIMD_INLINE __attribute__((always_inline)) inline

namespace recon {
namespace simd {

template <typename A> struct Vec;
template <> struct Vec<float> {
  typedef float V __attribute__((vector_size(32)));
  typedef int32_t M __attribute__((vector_size(32)));  // comparison masks and lane indices
  typedef int32_t I;                                     // one lane of M
  static constexpr int W = 8;
};
template <> struct Vec<double> {
  typedef double V __attribute__((vector_size(32)));
  typedef int64_t M __attribute__((vector_size(32)));
  typedef int64_t I;
  static constexpr int W = 4;
};

template <typename V, typename A>
RECON_SIMD_INLINE V load(const A* p) {
  V v;
  std::memcpy(&v, p, sizeof(V));
  return v;
}
template <typename V, typename A>
RECON_SIMD_INLINE void store(A* p, V v) {
  std::memcpy(p, &v, sizeof(V));
}
template <typename V, typename A>
RECON_SIMD_INLINE V splat(A a) {
  return V{} + a;
}
// Lane indices base, base+1, ... as the mask type.
template <typename M>
RECON_SIMD_INLINE M iota(int64_t base) {
  M m;
  for (int l = 0; l < static_cast<int>(sizeof(M) / sizeof(m[0])); ++l) m[l] = base + l;
  return m;
}
// NaN -> +inf lane-wise (geometry.h nan_as_inf).
template <typename V>
RECON_SIMD_INLINE V nan_as_inf(V d) {
  using A = decltype(d[0] + 0);
  return d != d ? splat<V>(std::numeric_limits<A>::infinity()) : d;
}

}  // namespace simd
}  // namespace recon

namespace recon {
namespace simd {
// Whether any lane of a comparison mask is set.
template <typename M>
RECON_SIMD_INLINE bool any(M m) {
  uint64_t w[sizeof(M) / 8];
  std::memcpy(w, &m, sizeof(M));
  uint64_t acc = 0;
  for (uint64_t v : w) acc |= v;
  return acc != 0;
}
}  // namespace simd
}  // namespace recon
