// The Function API: the one way to define a differentiable op (every built-in op and every quant scheme).
//
//   struct MulFn : autograd::Function<MulFn> {
//     static constexpr const char* kName = "mul";
//     static Tensor forward(Context& ctx, const Tensor& a, const Tensor& b) {
//       ctx.save(a); ctx.save(b);
//       return ...;                       // runs with recording off
//     }
//     static std::vector<Tensor> backward(Context& ctx, std::vector<Tensor> grad_outputs) {
//       auto a = ctx.saved(0), b = ctx.saved(1);
//       return {grad_outputs[0] * b, grad_outputs[0] * a};   // one per tensor input, in order
//     }
//   };
//   Tensor y = MulFn::apply(a, b);
//
// Tensor arguments (and std::vector<Tensor> arguments, flattened) are the op's inputs; anything else is passed
// through. forward returns a Tensor or a std::vector<Tensor>. backward returns one gradient per tensor input
// (an undefined Tensor where there is none); grad_outputs are never undefined (zeros are materialised).
#pragma once

#include <any>
#include <chrono>
#include <map>
#include <memory>
#include <string>
#include <type_traits>
#include <vector>

#include "autograd/grad_mode.h"
#include "autograd/node.h"
#include "autograd/profiler.h"
#include "autograd/saved_tensor.h"
#include "backends/backend.h"
#include "tensor/alloc_trace.h"

namespace minidl::autograd {

class Context {
 public:
  /// Saves a tensor for backward through the active pack hook. A no-op when the op is not being recorded.
  void save(const Tensor& t, SaveKind kind = SaveKind::Auto);
  /// The i-th saved tensor (in save order); throws if it was modified in place since or already freed.
  Tensor saved(size_t i) const;
  /// The i-th saved tensor's bits when a pack hook kept it as a 1-bit mask; PackedMask::bits is undefined
  /// otherwise (then read it with saved(i)).
  PackedMask saved_mask_bits(size_t i) const;
  size_t num_saved() const { return saved_.size(); }
  /// Whether input i (in the flattened tensor-input order) needs a gradient.
  bool needs_input_grad(size_t i) const { return i < needs_grad_.size() && needs_grad_[i]; }
  bool recording() const { return recording_; }
  /// Outputs that get no grad_fn (e.g. indices).
  void mark_non_differentiable(const Tensor& t) { non_diff_.push_back(t.impl_ptr().get()); }

  /// Free-form non-tensor state for backward (shapes, scalars, options).
  std::map<std::string, std::any> data;
  template <typename T>
  const T& get(const std::string& key) const {
    auto it = data.find(key);
    MINIDL_CHECK(it != data.end(), "autograd: Context has no entry '", key, "'");
    return std::any_cast<const T&>(it->second);
  }
  /// Backend-private state carried from forward to backward.
  OpStatePtr op_state;

  // ---- used by Function<T>::apply ----
  std::string op_name;
  uint64_t node_seq = 0;
  bool recording_ = false;
  std::vector<bool> needs_grad_;
  std::vector<TensorImpl*> non_diff_;
  std::vector<SavedTensor> saved_;
  void release_saved();
};

namespace detail {

inline void collect_inputs(std::vector<Tensor>& out, const Tensor& t) { out.push_back(t); }
inline void collect_inputs(std::vector<Tensor>& out, const std::vector<Tensor>& ts) {
  out.insert(out.end(), ts.begin(), ts.end());
}
template <typename T>
requires(!std::is_convertible_v<const T&, const Tensor&> &&
         !std::is_convertible_v<const T&, const std::vector<Tensor>&>) void collect_inputs(std::vector<Tensor>&,
                                                                                           const T&) {}

/// Node that calls a Function's static backward.
template <typename F>
class FunctionNode : public Node {
 public:
  std::string name() const override { return F::kName; }
  std::vector<Tensor> apply(std::vector<Tensor>&& grad_outputs) override {
    AllocTagGuard tag("bwd", F::kName);
    if (!Profiler::enabled()) return F::backward(ctx, std::move(grad_outputs));
    const auto t0 = std::chrono::steady_clock::now();
    auto grads = F::backward(ctx, std::move(grad_outputs));
    Profiler::record(F::kName, true, std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
    return grads;
  }
  void release_saved() override { ctx.release_saved(); }
  Context ctx;
};

/// Shared part of apply: decides recording, and wires the node to inputs and outputs.
bool any_requires_grad(const std::vector<Tensor>& inputs);
void prepare_context(Context& ctx, Node& node, const std::vector<Tensor>& inputs, const char* name);
void wire_outputs(const std::shared_ptr<Node>& node, Context& ctx, std::vector<Tensor>& outputs);

}  // namespace detail

template <typename Derived>
struct Function {
  template <typename... Args>
  static auto apply(Args&&... args) {
    AllocTagGuard tag("fwd", Derived::kName);
    if (Profiler::enabled()) {
      const auto t0 = std::chrono::steady_clock::now();
      auto out = apply_impl(std::forward<Args>(args)...);
      Profiler::record(Derived::kName, false,
                       std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
      return out;
    }
    return apply_impl(std::forward<Args>(args)...);
  }

 private:
  template <typename... Args>
  static auto apply_impl(Args&&... args) {
    std::vector<Tensor> inputs;
    (detail::collect_inputs(inputs, args), ...);
    const bool record = GradMode::is_enabled() && detail::any_requires_grad(inputs);
    using Out = decltype(Derived::forward(std::declval<Context&>(), std::forward<Args>(args)...));
    if (!record) {
      inputs.clear();  // these copies would count as owners (ops_detail::sole_owner) while forward runs
      Context ctx;     // recording_ false: save() is a no-op
      ctx.op_name = Derived::kName;
      NoGradGuard no_grad;
      return Derived::forward(ctx, std::forward<Args>(args)...);
    }
    auto node = std::make_shared<detail::FunctionNode<Derived>>();
    detail::prepare_context(node->ctx, *node, inputs, Derived::kName);
    inputs.clear();  // wired: from here on the copies would only count as owners (ops_detail::sole_owner)
    Out out;
    {
      NoGradGuard no_grad;
      out = Derived::forward(node->ctx, std::forward<Args>(args)...);
    }
    if constexpr (std::is_same_v<Out, Tensor>) {
      std::vector<Tensor> outs{out};
      detail::wire_outputs(node, node->ctx, outs);
      return outs[0];
    } else {
      static_assert(std::is_same_v<Out, std::vector<Tensor>>, "forward must return Tensor or vector<Tensor>");
      detail::wire_outputs(node, node->ctx, out);
      return out;
    }
  }
};

}  // namespace minidl::autograd
