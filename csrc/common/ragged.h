// Ragged batches for the ops whose kernels know only dense (B, N, 3) clouds (kNN, Chamfer, FPS).
//
// Cloud b of a padded tensor holds its first lengths[b] points (pytorch3d's convention).  The
// wrappers below hand the dense kernel a copy whose padding can never be chosen, then write the
// padding conventions into the outputs, all with ATen ops on the tensors' device:
//  * kNN / Chamfer: padded points become +inf.  Their distance to any query is +inf (or NaN,
//    ordered as +inf), which the kernels order after every finite point and, among +inf, by
//    index; padded indices are above every real one, so the real points' result is unchanged.
//  * FPS: padded points become NaN, which FPS never selects (fps.h).
// Outputs for padded rows, or slots past a cloud's length, are index -1 and distance 0.
#pragma once
#include <ATen/ATen.h>
#include <c10/util/Optional.h>

#include <limits>
#include <tuple>

#include "common/lengths.h"

namespace recon {
namespace ragged {

// (B, n) bool: position i of cloud b is inside its length (lengths int64, already checked).
inline at::Tensor valid(const at::Tensor& lengths, int64_t n) {
  return at::arange(n, lengths.options()).unsqueeze(0) < lengths.unsqueeze(1);
}

// Whether some cloud is shorter than n.  Read on the CPU only (free there); on CUDA it would
// synchronise the stream, so CUDA always takes the masking path.
inline bool any_short(const at::Tensor& lengths, int64_t n) {
  if (!lengths.defined()) return false;
  if (!lengths.is_cpu()) return true;
  return (lengths < n).any().item<bool>();
}

// pts with every padded point replaced by (fill, fill, fill).
inline at::Tensor mask_points(const at::Tensor& pts, const at::Tensor& lengths, double fill) {
  if (!any_short(lengths, pts.size(1))) return pts;
  return at::where(valid(lengths, pts.size(1)).unsqueeze(-1), pts,
                   at::scalar_tensor(fill, pts.options()))
      .contiguous();
}

// Rows past `rows` (query lengths) get idx -1 and dist 0, and so do the slots (last dim of a
// (B, M, k) result) past `slots`; a (B, M) result (Chamfer) loses every row when the other
// cloud is empty (slots[b] == 0).
inline std::tuple<at::Tensor, at::Tensor> pad_outputs(const at::Tensor& dist, const at::Tensor& idx,
                                                      const at::Tensor& rows,
                                                      const at::Tensor& slots) {
  const bool knn = idx.dim() == 3;
  at::Tensor keep;
  if (any_short(rows, idx.size(1)))
    keep = knn ? valid(rows, idx.size(1)).unsqueeze(-1) : valid(rows, idx.size(1));
  if (knn ? any_short(slots, idx.size(2)) : any_short(slots, 1)) {
    const at::Tensor s = knn ? valid(slots, idx.size(2)).unsqueeze(1) : (slots > 0).unsqueeze(1);
    keep = keep.defined() ? keep & s : s;
  }
  if (!keep.defined()) return {dist, idx};
  return {at::where(keep, dist, at::zeros({}, dist.options())),
          at::where(keep, idx, at::full({}, -1, idx.options()))};
}

template <std::tuple<at::Tensor, at::Tensor> (*Fn)(const at::Tensor&, const at::Tensor&, int64_t)>
std::tuple<at::Tensor, at::Tensor> knn(const at::Tensor& query, const at::Tensor& ref, int64_t k,
                                       const c10::optional<at::Tensor>& lengths1,
                                       const c10::optional<at::Tensor>& lengths2) {
  const at::Tensor l1 = checked_lengths(lengths1, query.size(0), query, "lengths1");
  const at::Tensor l2 = checked_lengths(lengths2, ref.size(0), ref, "lengths2");
  if (!l1.defined() && !l2.defined()) return Fn(query, ref, k);
  auto [dist, idx] = Fn(query, mask_points(ref, l2, std::numeric_limits<double>::infinity()), k);
  return pad_outputs(dist, idx, l1, l2);
}

using ChamferOut = std::tuple<at::Tensor, at::Tensor, at::Tensor, at::Tensor>;

template <ChamferOut (*Fn)(const at::Tensor&, const at::Tensor&)>
ChamferOut chamfer(const at::Tensor& x, const at::Tensor& y,
                   const c10::optional<at::Tensor>& x_lengths,
                   const c10::optional<at::Tensor>& y_lengths) {
  const at::Tensor lx = checked_lengths(x_lengths, x.size(0), x, "x_lengths");
  const at::Tensor ly = checked_lengths(y_lengths, y.size(0), y, "y_lengths");
  if (!lx.defined() && !ly.defined()) return Fn(x, y);
  const double inf = std::numeric_limits<double>::infinity();
  auto [dxy, dyx, ixy, iyx] = Fn(mask_points(x, lx, inf), mask_points(y, ly, inf));
  // A row is kept when it is a real point and the other cloud has one.
  auto all = [](const at::Tensor& p) { return at::full({p.size(0)}, p.size(1), p.options().dtype(at::kLong)); };
  const at::Tensor rx = lx.defined() ? lx : all(x), ry = ly.defined() ? ly : all(y);
  auto [d1, i1] = pad_outputs(dxy, ixy, rx, ry);
  auto [d2, i2] = pad_outputs(dyx, iyx, ry, rx);
  return {d1, d2, i1, i2};
}

template <at::Tensor (*Fn)(const at::Tensor&, int64_t, int64_t)>
at::Tensor fps(const at::Tensor& xyz, int64_t npoint, int64_t start_idx,
               const c10::optional<at::Tensor>& lengths, const c10::optional<at::Tensor>& counts) {
  const at::Tensor l = checked_lengths(lengths, xyz.size(0), xyz, "lengths");
  const at::Tensor c = checked_lengths(counts, xyz.size(0), xyz, "counts");
  if (!l.defined() && !c.defined()) return Fn(xyz, npoint, start_idx);
  at::Tensor idx = Fn(mask_points(xyz, l, std::numeric_limits<double>::quiet_NaN()), npoint, start_idx);
  at::Tensor n = c.defined() ? c : at::full({xyz.size(0)}, npoint, idx.options());
  if (l.defined()) n = at::minimum(n, l);
  if (!any_short(n, npoint)) return idx;
  return at::where(valid(n, npoint), idx, at::full({}, -1, idx.options()));
}

}  // namespace ragged
}  // namespace recon
