// Hooks into the backward pass, for data-parallel training (distributed/ uses them to overlap gradient
// communication with the rest of backward):
// - a leaf's *gradient-ready* hook runs once per backward pass, as soon as no further gradient can reach that
//   leaf, i.e. its .grad is final (for a leaf that no gradient reaches, at the end of the pass);
// - a *backward callback*, queued while a pass runs, runs once when that pass has finished (PyTorch's
//   Variable._execution_engine.queue_callback). An exception it throws leaves loss.backward().
// Both run on the thread that runs backward, with grad mode off.
#pragma once

#include <cstdint>
#include <functional>

#include "tensor/tensor.h"

namespace minidl::autograd {

using GradReadyHook = std::function<void(const Tensor& leaf)>;

/// Registers `hook` on a leaf that requires grad; returns a handle for remove_grad_ready_hook. Thread-safe.
int64_t add_grad_ready_hook(const Tensor& leaf, GradReadyHook hook);
/// Removes a hook (a no-op for an unknown handle). Thread-safe.
void remove_grad_ready_hook(int64_t handle);
/// Queues `fn` to run when the backward pass running on this thread ends; throws when none is running.
void queue_backward_callback(std::function<void()> fn);

}  // namespace minidl::autograd
