// Context (saved tensors, per-op state) and the non-template half of Function<T>::apply.
#include "autograd/function.h"

#include <algorithm>

namespace minidl::autograd {

void Context::save(const Tensor& t, SaveKind kind) {
  if (!recording_) return;
  if (kind == SaveKind::Auto && t.defined()) {
    kind = (t.is_leaf() && t.requires_grad()) ? SaveKind::Parameter : SaveKind::Activation;
  }
  SaveInfo info{kind, op_name, ModuleNameGuard::current(), node_seq};
  saved_.emplace_back(t, info);
}

Tensor Context::saved(size_t i) const {
  MINIDL_CHECK(i < saved_.size(), "autograd: '", op_name, "' asked for saved tensor ", i, " but saved only ",
               saved_.size());
  return saved_[i].unpack();
}

PackedMask Context::saved_mask_bits(size_t i) const {
  MINIDL_CHECK(i < saved_.size(), "autograd: '", op_name, "' asked for saved tensor ", i, " but saved only ",
               saved_.size());
  return saved_[i].mask_bits();
}

void Context::release_saved() {
  for (auto& s : saved_) s.release();
  op_state.reset();
}

namespace detail {

bool any_requires_grad(const std::vector<Tensor>& inputs) {
  return std::any_of(inputs.begin(), inputs.end(), [](const Tensor& t) { return t.defined() && t.requires_grad(); });
}

void prepare_context(Context& ctx, Node& node, const std::vector<Tensor>& inputs, const char* name) {
  ctx.op_name = name;
  ctx.node_seq = node.seq();
  ctx.recording_ = true;
  ctx.needs_grad_.resize(inputs.size());
  node.next_edges.resize(inputs.size());
  for (size_t i = 0; i < inputs.size(); ++i) {
    const Tensor& t = inputs[i];
    const bool needs = t.defined() && t.requires_grad();
    ctx.needs_grad_[i] = needs;
    if (!needs) continue;
    Edge& e = node.next_edges[i];
    if (t.grad_fn()) {
      e.fn = t.grad_fn();
      e.output_nr = t.impl().output_nr;
    } else {
      e.leaf = t.impl_ptr();
    }
  }
}

void wire_outputs(const std::shared_ptr<Node>& node, Context& ctx, std::vector<Tensor>& outputs) {
  node->outputs.resize(outputs.size());
  node->retained.resize(outputs.size());
  for (size_t i = 0; i < outputs.size(); ++i) {
    Tensor& out = outputs[i];
    if (!out.defined()) continue;
    node->outputs[i] = OutputMeta{out.sizes(), out.dtype(), out.device()};
    const bool non_diff =
        std::find(ctx.non_diff_.begin(), ctx.non_diff_.end(), out.impl_ptr().get()) != ctx.non_diff_.end();
    if (non_diff || !is_floating(out.dtype())) continue;
    // The output gets its own impl: a forward that returned an input unchanged must not re-parent that input.
    out = out.detach();
    out.impl().requires_grad = true;
    out.impl().grad_fn = node;
    out.impl().output_nr = static_cast<uint32_t>(i);
  }
  Tape::record(node);
}

}  // namespace detail
}  // namespace minidl::autograd
