// Profiler storage: a process-wide table guarded by a mutex (only touched when profiling is on).
#include "autograd/profiler.h"

#include <algorithm>
#include <cstdio>
#include <map>
#include <mutex>

#include "core/env.h"

namespace minidl::autograd {
namespace {
struct Table {
  std::mutex mu;
  std::map<std::pair<std::string, bool>, OpTiming> rows;
};
Table& table_() {
  static Table t;
  return t;
}
bool initial_state() {
  auto v = env_string("MINIDL_PROFILE");
  return v && *v != "0";
}
thread_local bool g_enabled = initial_state();
}  // namespace

bool Profiler::enabled() { return g_enabled; }
void Profiler::set_enabled(bool on) { g_enabled = on; }

void Profiler::record(const char* op, bool backward, double seconds) {
  auto& t = table_();
  std::lock_guard<std::mutex> lock(t.mu);
  auto& row = t.rows[{op, backward}];
  if (row.calls == 0) {
    row.op = op;
    row.phase = backward ? "backward" : "forward";
  }
  ++row.calls;
  row.seconds += seconds;
}

std::vector<OpTiming> Profiler::report() {
  auto& t = table_();
  std::lock_guard<std::mutex> lock(t.mu);
  std::vector<OpTiming> v;
  for (auto& [k, row] : t.rows) v.push_back(row);
  std::sort(v.begin(), v.end(), [](const OpTiming& a, const OpTiming& b) { return a.seconds > b.seconds; });
  return v;
}

void Profiler::reset() {
  auto& t = table_();
  std::lock_guard<std::mutex> lock(t.mu);
  t.rows.clear();
}

std::string Profiler::table() {
  const auto rows = report();
  double total = 0;
  for (auto& r : rows) total += r.seconds;
  std::string s = "op                         phase      calls    total ms   share\n";
  char buf[160];
  for (auto& r : rows) {
    std::snprintf(buf, sizeof buf, "%-26s %-9s %6lld %11.2f %6.1f%%\n", r.op.c_str(), r.phase.c_str(),
                  static_cast<long long>(r.calls), r.seconds * 1e3, total > 0 ? 100.0 * r.seconds / total : 0.0);
    s += buf;
  }
  std::snprintf(buf, sizeof buf, "%-26s %-9s %6s %11.2f\n", "total", "", "", total * 1e3);
  return s + buf;
}

}  // namespace minidl::autograd
