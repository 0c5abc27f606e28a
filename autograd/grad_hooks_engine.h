// The engine's private side of grad_hooks.h: the scope of one backward pass (which owns the callback queue).
#pragma once

#include <vector>

#include "autograd/grad_hooks.h"

namespace minidl::autograd::detail {

/// Whether any gradient-ready hook is registered (the engine skips its bookkeeping otherwise).
bool any_grad_ready_hooks();
/// The live hooks of one leaf.
std::vector<GradReadyHook> grad_ready_hooks_of(const TensorImpl* leaf);

class BackwardPassScope {
 public:
  BackwardPassScope();
  ~BackwardPassScope();
  BackwardPassScope(const BackwardPassScope&) = delete;
  BackwardPassScope& operator=(const BackwardPassScope&) = delete;
  /// Runs the queued callbacks (outermost pass only); call after the pass succeeded.
  void run_callbacks();
};

}  // namespace minidl::autograd::detail
