// What is live at the allocator's peak: a diagnostic for memory work (bench/actnn_max_batch --peak-report).
// When tracing is on, the cpu allocator remembers every live block with the tag that was current when it was
// allocated (the op that made it: "fwd conv2d", "bwd batch_norm_relu", "actnn unpack", ...), and at every new
// peak copies that list, together with the tag running at that moment. Off by default: the only cost then is a
// thread-local pointer set per op (AllocTagGuard).
#pragma once

#include <cstddef>
#include <string>
#include <vector>

namespace minidl {

/// An allocation tag: what was running (a static name) and in which pass.
struct AllocTag {
  const char* name = nullptr;  // static storage (an op's kName), or null when untagged
  const char* phase = "";      // "fwd", "bwd", or a component ("actnn")
};

/// RAII: tags the allocations of this thread in its scope (nests; the innermost applies).
class AllocTagGuard {
 public:
  AllocTagGuard(const char* phase, const char* name);
  ~AllocTagGuard();
  AllocTagGuard(const AllocTagGuard&) = delete;
  AllocTagGuard& operator=(const AllocTagGuard&) = delete;

 private:
  AllocTag prev_;
};

AllocTag current_alloc_tag();

/// One group of blocks live at the peak: same tag, same (rounded) size.
struct PeakBlocks {
  std::string tag;
  size_t block_bytes = 0;
  size_t count = 0;
};

struct PeakTrace {
  size_t peak_bytes = 0;
  std::string running;             // the tag current when the peak was reached
  std::vector<PeakBlocks> blocks;  // largest total first
};

/// Starts (or stops) tracing the cpu allocator's live blocks; starting also resets the recorded peak.
void set_cpu_alloc_trace(bool on);
/// The blocks live at the highest peak since tracing started.
PeakTrace cpu_alloc_peak_trace();
/// A readable table of cpu_alloc_peak_trace(), one line per (tag, size), with sizes in bytes and units of
/// `unit` bytes when nonzero (e.g. one activation of the network's first stage).
std::string format_peak_trace(const PeakTrace& t, size_t unit = 0);

namespace detail {
// Called by the cpu allocator (tensor/allocator.cpp) under its lock while tracing is on.
bool cpu_alloc_trace_on();
void trace_alloc(void* p, size_t block_bytes, size_t live_bytes);
void trace_free(void* p);
}  // namespace detail

}  // namespace minidl
