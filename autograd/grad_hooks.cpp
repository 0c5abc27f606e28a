// The registry of gradient-ready hooks and the per-thread queue of backward callbacks (see grad_hooks.h).
// Hooks are keyed by the leaf's TensorImpl and hold it weakly, so a dead leaf's address reused by a new
// tensor never fires a stale hook.
#include "autograd/grad_hooks.h"

#include <atomic>
#include <mutex>
#include <unordered_map>

#include "autograd/grad_hooks_engine.h"

namespace minidl::autograd {
namespace {

struct Entry {
  int64_t handle;
  std::weak_ptr<TensorImpl> leaf;
  GradReadyHook hook;
};

std::mutex g_mu;
std::unordered_multimap<const TensorImpl*, Entry> g_hooks;
std::atomic<int64_t> g_count{0};
int64_t g_next_handle = 1;

thread_local int g_backward_depth = 0;
thread_local std::vector<std::function<void()>> g_callbacks;

}  // namespace

int64_t add_grad_ready_hook(const Tensor& leaf, GradReadyHook hook) {
  MINIDL_CHECK(leaf.defined() && leaf.requires_grad() && leaf.is_leaf(),
               "add_grad_ready_hook: the tensor must be a leaf that requires grad");
  MINIDL_CHECK(hook != nullptr, "add_grad_ready_hook: empty hook");
  std::lock_guard lock(g_mu);
  const int64_t h = g_next_handle++;
  g_hooks.emplace(leaf.impl_ptr().get(), Entry{h, leaf.impl_ptr(), std::move(hook)});
  g_count.fetch_add(1);
  return h;
}

void remove_grad_ready_hook(int64_t handle) {
  std::lock_guard lock(g_mu);
  for (auto it = g_hooks.begin(); it != g_hooks.end(); ++it) {
    if (it->second.handle == handle) {
      g_hooks.erase(it);
      g_count.fetch_sub(1);
      return;
    }
  }
}

void queue_backward_callback(std::function<void()> fn) {
  MINIDL_CHECK(g_backward_depth > 0, "queue_backward_callback: no backward pass is running on this thread");
  g_callbacks.push_back(std::move(fn));
}

namespace detail {

bool any_grad_ready_hooks() { return g_count.load() > 0; }

std::vector<GradReadyHook> grad_ready_hooks_of(const TensorImpl* leaf) {
  std::vector<GradReadyHook> out;
  std::lock_guard lock(g_mu);
  auto [b, e] = g_hooks.equal_range(leaf);
  for (auto it = b; it != e; ++it) {
    auto alive = it->second.leaf.lock();
    if (alive && alive.get() == leaf) out.push_back(it->second.hook);
  }
  return out;
}

BackwardPassScope::BackwardPassScope() {
  if (g_backward_depth++ == 0) g_callbacks.clear();
}

BackwardPassScope::~BackwardPassScope() {
  if (--g_backward_depth == 0) g_callbacks.clear();  // a failed pass drops what it queued
}

void BackwardPassScope::run_callbacks() {
  if (g_backward_depth != 1) return;  // a nested pass leaves them to the outermost one
  // A callback may queue another: run until the queue stays empty.
  while (!g_callbacks.empty()) {
    auto cbs = std::move(g_callbacks);
    g_callbacks.clear();
    for (auto& cb : cbs) cb();
  }
}

}  // namespace detail
}  // namespace minidl::autograd
