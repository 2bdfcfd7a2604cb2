// Which path an op's CPU kernel takes: SIMD brute force or a spatial index (uniform grid or
// kd-tree per cloud, grid.h / kdtree.h; kd-tree buckets for FPS).  Both paths return the same
// bits (see bounds.h for why the pruning is exact), so the choice is only about speed: the cost
// models below make it from the sizes alone.  `Path` lets the private `_<op>_path` ops force a
// branch for tests and benchmarks.
#pragma once

#include <c10/util/Exception.h>

#include <algorithm>
#include <cstdint>
#include <string>

#include "spatial/grid.h"

namespace recon {
namespace spatial {

// kIndex lets each cloud pick its index (uniform grid unless the cloud is too clustered for one,
// then kd-tree); kTree / kGrid force one.
enum class Path { kAuto, kBrute, kIndex, kTree, kGrid };

// `path` of a private `_<op>_path` op: "auto" | "brute" | "index", and for the searches (not
// FPS, whose buckets are always a kd-tree) also "tree" | "grid".
inline Path parse_path(const std::string& path, const char* op, bool searches) {
  if (path == "auto") return Path::kAuto;
  if (path == "brute") return Path::kBrute;
  if (path == "index") return Path::kIndex;
  if (searches && path == "tree") return Path::kTree;
  if (searches && path == "grid") return Path::kGrid;
  TORCH_CHECK_VALUE(false, op, ": path must be one of 'auto', 'brute', 'index'",
                    searches ? ", 'tree', 'grid'" : "", ", got '", path, "'");
}

// Cost models: true -> index, false -> brute force.  B is the batch; the choice is per call.

inline bool knn_prefers_index(int64_t B, int64_t M, int64_t N, int64_t k) {
  (void)B;
  // Brute force costs ~M*N distance evaluations; the index costs a build (~N log N) plus, per
  // query, the cells or leaves around it.  Measured crossover on a 2-core x86-64
  // (benchmarks/peers.py): the index wins from a few hundred reference points on, unless k is
  // close to N (then every leaf is visited anyway).
  if (N < 256) return false;
  if (k * 4 > N) return false;
  return M * N >= 16384;
}

inline bool chamfer_prefers_index(int64_t B, int64_t N, int64_t M) {
  (void)B;
  // Brute force: N*M distances, each serving both directions; index: two builds (~(N+M) log)
  // and ~log-many cells or leaves per query.  Measured crossover on a 2-core x86-64, 1 thread,
  // uniform clouds (the index's best case): about 2^20 pairs per cloud with at least a few
  // hundred points a side (32 x 512 x 512: brute 4.5 ms, index 8.2 ms; 2 x 2048 x 2048: 3.5 vs
  // 1.8 ms; 4 x 256 x 8192: 4.9 vs 6.3 ms).
  return std::min(N, M) >= 384 && N * M >= (int64_t{1} << 20);
}

inline bool fps_prefers_buckets(int64_t B, int64_t N, int64_t npoint) {
  (void)B;
  // Buckets pay a tree build and a walk per step; they win once most buckets can be skipped,
  // i.e. once the chosen set is dense enough.  Measured crossover on a 2-core x86-64
  // (benchmarks/peers.py).
  return N >= 2048 && npoint >= 32;
}

inline bool fps_buckets_lockstep(int64_t B, int64_t N, int64_t threads) {
  // Fewer clouds than threads: advance all clouds in lock step, each step one parallel region
  // split over (cloud, bucket range), so every thread works.  Each region ends in a barrier, so
  // it pays only when a step has tens of microseconds of work per cloud; the same size as the
  // brute force's split of large clouds (fps_cpu.cpp).  On an oversubscribed machine (more
  // runnable threads than cores) the barriers wait for descheduled threads and the lock step
  // loses (benchmarks/RESULTS.md).
  return B < threads && N >= 32768;
}

// The one decision of an op: the forced path, or the cost model's answer for kAuto.
inline bool use_index(Path path, bool cost_model_prefers_index) {
  return path == Path::kAuto ? cost_model_prefers_index : path != Path::kBrute;
}

inline IndexKind index_kind(Path path) {
  if (path == Path::kTree) return IndexKind::kTree;
  if (path == Path::kGrid) return IndexKind::kGrid;
  return IndexKind::kAuto;
}

}  // namespace spatial
}  // namespace recon
