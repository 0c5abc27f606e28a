// Backend registry and selection: backend_for(tensor) picks by device; on CPU, `ref` or `cpu` from
// MINIDL_BACKEND (default `cpu` when built with oneDNN) or set_cpu_backend().
#include <map>
#include <mutex>

#include "backends/backend.h"
#include "core/env.h"

namespace minidl {
namespace {

struct Registry {
  std::mutex mu;
  std::map<std::string, Backend*> backends;
  Backend* cpu_choice = nullptr;  // resolved lazily
};

Registry& registry() {
  static Registry r;
  return r;
}

Backend* find_locked(Registry& r, const std::string& name) {
  auto it = r.backends.find(name);
  return it == r.backends.end() ? nullptr : it->second;
}

std::string names_locked(Registry& r) {
  std::string s;
  for (auto& [n, b] : r.backends) s += (s.empty() ? "" : ", ") + n;
  return s;
}

Backend& resolve_cpu_locked(Registry& r) {
  if (r.cpu_choice) return *r.cpu_choice;
  std::string want = env_string("MINIDL_BACKEND").value_or("");
  if (want.empty()) want = find_locked(r, "cpu") ? "cpu" : "ref";
  MINIDL_CHECK(want == "ref" || want == "cpu", "MINIDL_BACKEND=", want,
               " is not a CPU backend (expected ref or cpu)");
  Backend* b = find_locked(r, want);
  MINIDL_CHECK(b != nullptr, "MINIDL_BACKEND=", want, ": backend not built into this minidl (available: ",
               names_locked(r), ")");
  r.cpu_choice = b;
  return *b;
}

}  // namespace

void register_backend(const std::string& name, Backend* b) {
  auto& r = registry();
  std::lock_guard<std::mutex> lock(r.mu);
  r.backends[name] = b;
}

Backend& backend_by_name(const std::string& name) {
  auto& r = registry();
  std::lock_guard<std::mutex> lock(r.mu);
  Backend* b = find_locked(r, name);
  MINIDL_CHECK(b != nullptr, "backend '", name, "' is not built into this minidl (available: ", names_locked(r),
               ")");
  return *b;
}

Backend& backend_for(Device d) {
  auto& r = registry();
  std::lock_guard<std::mutex> lock(r.mu);
  if (d.is_cpu()) return resolve_cpu_locked(r);
  Backend* b = find_locked(r, "cuda");
  MINIDL_CHECK(b != nullptr, "no backend for device ", d.str(), " (this minidl was built without CUDA)");
  return *b;
}

Backend& backend_for(const Tensor& t) { return backend_for(t.device()); }

void set_cpu_backend(const std::string& name) {
  auto& r = registry();
  std::lock_guard<std::mutex> lock(r.mu);
  MINIDL_CHECK(name == "ref" || name == "cpu", "set_cpu_backend: '", name, "' is not a CPU backend (ref or cpu)");
  Backend* b = find_locked(r, name);
  MINIDL_CHECK(b != nullptr, "set_cpu_backend: backend '", name, "' is not built into this minidl (available: ",
               names_locked(r), ")");
  r.cpu_choice = b;
}

std::string cpu_backend_name() {
  auto& r = registry();
  std::lock_guard<std::mutex> lock(r.mu);
  return resolve_cpu_locked(r).name();
}

std::vector<std::string> available_backends() {
  auto& r = registry();
  std::lock_guard<std::mutex> lock(r.mu);
  std::vector<std::string> v;
  for (auto& [n, b] : r.backends) v.push_back(n);
  return v;
}

}  // namespace minidl
