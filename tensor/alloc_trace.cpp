// The allocation tags and the cpu allocator's peak trace (see alloc_trace.h).
#include "tensor/alloc_trace.h"

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <map>
#include <mutex>
#include <sstream>
#include <unordered_map>

namespace minidl {
namespace {

thread_local AllocTag g_tag;

std::string tag_name(const AllocTag& t) {
  if (t.name == nullptr) return "(untagged)";
  return std::string(t.phase) + " " + t.name;
}

struct Trace {
  std::mutex mu;
  std::atomic<bool> on{false};
  std::unordered_map<void*, std::pair<size_t, std::string>> live;  // block -> (bytes, tag)
  PeakTrace peak;
};

Trace& trace() {
  static Trace* t = new Trace();  // leaked: the allocator may run during static destruction
  return *t;
}

}  // namespace

AllocTagGuard::AllocTagGuard(const char* phase, const char* name) : prev_(g_tag) { g_tag = AllocTag{name, phase}; }
AllocTagGuard::~AllocTagGuard() { g_tag = prev_; }

AllocTag current_alloc_tag() { return g_tag; }

void set_cpu_alloc_trace(bool on) {
  Trace& t = trace();
  std::lock_guard<std::mutex> lock(t.mu);
  t.on = on;
  t.live.clear();  // blocks allocated before tracing are not known: the trace counts only its own
  t.peak = PeakTrace{};
}

PeakTrace cpu_alloc_peak_trace() {
  Trace& t = trace();
  std::lock_guard<std::mutex> lock(t.mu);
  return t.peak;
}

std::string format_peak_trace(const PeakTrace& t, size_t unit) {
  std::ostringstream os;
  size_t traced = 0;
  for (const auto& b : t.blocks) traced += b.block_bytes * b.count;
  os << "peak " << t.peak_bytes << " B live (" << traced << " B in blocks allocated while tracing), reached in "
     << t.running << "\n";
  char line[256];
  for (const auto& b : t.blocks) {
    const size_t total = b.block_bytes * b.count;
    if (unit > 0)
      std::snprintf(line, sizeof line, "  %-40s %5zu x %12zu B = %12zu B  (%.3f units)\n", b.tag.c_str(), b.count,
                    b.block_bytes, total, static_cast<double>(total) / static_cast<double>(unit));
    else
      std::snprintf(line, sizeof line, "  %-40s %5zu x %12zu B = %12zu B\n", b.tag.c_str(), b.count, b.block_bytes,
                    total);
    os << line;
  }
  return os.str();
}

namespace detail {

bool cpu_alloc_trace_on() { return trace().on.load(std::memory_order_relaxed); }

void trace_alloc(void* p, size_t block_bytes, size_t live_bytes) {
  Trace& t = trace();
  std::lock_guard<std::mutex> lock(t.mu);
  if (!t.on) return;
  t.live[p] = {block_bytes, tag_name(g_tag)};
  if (live_bytes <= t.peak.peak_bytes) return;
  t.peak.peak_bytes = live_bytes;
  t.peak.running = tag_name(g_tag);
  std::map<std::pair<std::string, size_t>, size_t> groups;
  for (const auto& [q, info] : t.live) ++groups[{info.second, info.first}];
  t.peak.blocks.clear();
  for (const auto& [key, n] : groups) t.peak.blocks.push_back({key.first, key.second, n});
  std::sort(t.peak.blocks.begin(), t.peak.blocks.end(),
            [](const PeakBlocks& a, const PeakBlocks& b) { return a.block_bytes * a.count > b.block_bytes * b.count; });
}

void trace_free(void* p) {
  Trace& t = trace();
  std::lock_guard<std::mutex> lock(t.mu);
  t.live.erase(p);
}

}  // namespace detail
}  // namespace minidl
