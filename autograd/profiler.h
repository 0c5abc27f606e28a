// A built-in per-op profiler: wall time of every Function's forward and backward, summed by op name.
// Off by default (one thread-local bool check per op); on inside a ProfilerGuard or with MINIDL_PROFILE=1.
// Backends run synchronously on CPU, so op wall time is kernel time plus dispatch.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace minidl::autograd {

struct OpTiming {
  std::string op;
  std::string phase;  // "forward" or "backward"
  int64_t calls = 0;
  double seconds = 0.0;
};

class Profiler {
 public:
  static bool enabled();
  static void set_enabled(bool on);
  static void record(const char* op, bool backward, double seconds);
  /// Totals since the last reset, largest first.
  static std::vector<OpTiming> report();
  static void reset();
  /// A table: op, phase, calls, total ms, share of the profiled total.
  static std::string table();
};

/// Profiles its scope (and restores the previous state).
class ProfilerGuard {
 public:
  ProfilerGuard() : prev_(Profiler::enabled()) { Profiler::set_enabled(true); }
  ~ProfilerGuard() { Profiler::set_enabled(prev_); }
  ProfilerGuard(const ProfilerGuard&) = delete;
  ProfilerGuard& operator=(const ProfilerGuard&) = delete;

 private:
  bool prev_;
};

}  // namespace minidl::autograd
