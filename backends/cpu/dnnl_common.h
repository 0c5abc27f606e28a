// oneDNN plumbing for the cpu backend: the engine, a per-thread stream, memory descriptors for plain row-major
// tensors, a reorder-if-needed helper, and PlanCache, a small thread-safe map from an op's shape/params key to
// its primitives so a training loop creates each primitive once.
#pragma once

#include <dnnl.hpp>
#include <map>
#include <memory>
#include <mutex>
#include <vector>

#include "tensor/tensor.h"

namespace minidl::cpu {

dnnl::engine& dnnl_engine();
/// A stream per thread: CPU streams execute synchronously, one per thread avoids sharing one across threads.
dnnl::stream& dnnl_stream();

using dnnl_dims = dnnl::memory::dims;
using dnnl_tag = dnnl::memory::format_tag;
using dnnl_dt = dnnl::memory::data_type;

inline dnnl_dims to_dims(const Shape& s) { return dnnl_dims(s.begin(), s.end()); }
/// Descriptor of a plain (row-major) f32 tensor of this shape.
inline dnnl::memory::desc plain_f32(const Shape& s) {
  return dnnl::memory::desc(to_dims(s), dnnl_dt::f32, contiguous_strides(s));
}
inline dnnl::memory::desc any_f32(const Shape& s) {
  return dnnl::memory::desc(to_dims(s), dnnl_dt::f32, dnnl_tag::any);
}

/// Descriptor of an f32 tensor as it lies in memory: nhwc when channels-last, else row-major (callers pass
/// tensors that are one of the two, see dense_input).
inline dnnl::memory::desc layout_f32(const Tensor& t) {
  if (t.memory_format() == MemoryFormat::ChannelsLast)
    return dnnl::memory::desc(to_dims(t.sizes()), dnnl_dt::f32, dnnl_tag::nhwc);
  return plain_f32(t.sizes());
}

/// A dnnl::memory over a contiguous f32 CPU tensor (no copy).
inline dnnl::memory wrap(const dnnl::memory::desc& md, const Tensor& t) {
  return dnnl::memory(md, dnnl_engine(), t.raw_data());
}

/// Scratch memory of descriptor md, backed by a minidl tensor (so the caching allocator serves it);
/// `holder` keeps it alive.
dnnl::memory scratch(const dnnl::memory::desc& md, Tensor& holder);

/// A reorder primitive between two descriptors, or an empty one when they are equal.
struct Reorder {
  dnnl::reorder prim;
  bool needed = false;
  Reorder() = default;
  Reorder(const dnnl::memory::desc& from, const dnnl::memory::desc& to);
  /// Returns `user` when no reorder is needed, else scratch memory in `to` layout filled from user.
  dnnl::memory in(const dnnl::memory& user, const dnnl::memory::desc& to, Tensor& holder) const;
  /// Copies `from` (primitive layout) into user memory (plain layout) when needed.
  void out(const dnnl::memory& from, const dnnl::memory& user) const;
};

/// Thread-safe cache from a key (op shapes + params) to a Plan built by make(); never evicts below kMax entries,
/// clears above (a long run with ever-changing shapes must not grow without bound).
template <typename Plan>
class PlanCache {
 public:
  using Key = std::vector<int64_t>;
  template <typename Make>
  std::shared_ptr<const Plan> get(const Key& key, Make&& make) {
    {
      std::lock_guard<std::mutex> lock(mu_);
      auto it = map_.find(key);
      if (it != map_.end()) return it->second;
    }
    auto plan = std::make_shared<const Plan>(make());  // built outside the lock: creation can take ms
    std::lock_guard<std::mutex> lock(mu_);
    if (map_.size() >= kMax) map_.clear();
    return map_.emplace(key, plan).first->second;
  }
  size_t size() const {
    std::lock_guard<std::mutex> lock(mu_);
    return map_.size();
  }

 private:
  static constexpr size_t kMax = 512;
  mutable std::mutex mu_;
  std::map<Key, std::shared_ptr<const Plan>> map_;
};

/// Runs f() and turns a dnnl::error into a minidl::Error naming the op and shapes.
template <typename F>
decltype(auto) dnnl_call(const char* op, const std::string& shapes, F&& f) {
  try {
    return f();
  } catch (const dnnl::error& e) {
    MINIDL_FAIL(op, " (backend cpu, oneDNN): ", e.what(), " [", shapes, "]");
  }
}

}  // namespace minidl::cpu
