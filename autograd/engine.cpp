// The backward engine: visits the Nodes reachable from the roots in descending sequence number (a Node's
// inputs were always recorded before it, so this order is topological without a sort or recursion),
// sums gradients per Node output, writes leaf .grad, and frees saved tensors unless retain_graph.
#include <algorithm>
#include <queue>
#include <unordered_map>

#include "autograd/grad_mode.h"
#include "autograd/node.h"
#include "autograd/ops/op_utils.h"
#include "backends/backend.h"

namespace minidl::autograd {
namespace {

thread_local uint64_t g_next_seq = 0;
thread_local std::vector<std::weak_ptr<Node>> g_tape;

Tensor add_same_shape(const Tensor& a, const Tensor& b) {
  MINIDL_CHECK(a.sizes() == b.sizes(), "autograd: gradient shapes ", shape_str(a.sizes()), " and ",
               shape_str(b.sizes()), " do not match");
  // the sum keeps the operands' layout (channels-last on a backend that prefers it)
  Tensor out = ops_detail::new_like(a.sizes(), a, ops_detail::follow_format(a.sizes(), {a, b}));
  backend_for(a).binary(BinaryOp::Add, out, a, b);
  return out;
}

Tensor contiguous_copy(const Tensor& g) {
  Tensor out = empty(g.sizes(), TensorOptions().dtype(g.dtype()).device(g.device()));
  backend_for(g).copy(out, g);
  return out;
}

}  // namespace

Node::Node() : seq_(g_next_seq++) {}

void Tape::record(const std::shared_ptr<Node>& node) {
  // Prune dead entries now and then so the tape stays proportional to the live graph.
  if (g_tape.size() >= 4096 && (g_tape.size() & (g_tape.size() - 1)) == 0) {
    std::erase_if(g_tape, [](const std::weak_ptr<Node>& w) { return w.expired(); });
  }
  g_tape.push_back(node);
}

std::vector<std::shared_ptr<Node>> Tape::live_nodes() {
  std::erase_if(g_tape, [](const std::weak_ptr<Node>& w) { return w.expired(); });
  std::vector<std::shared_ptr<Node>> v;
  for (auto& w : g_tape)
    if (auto n = w.lock()) v.push_back(std::move(n));
  return v;
}

void accumulate_grad(TensorImpl& leaf, const Tensor& g) {
  MINIDL_CHECK(g.sizes() == leaf.sizes, "autograd: gradient of shape ", shape_str(g.sizes()), " for a leaf of shape ",
               shape_str(leaf.sizes));
  if (!leaf.grad) {
    leaf.grad = contiguous_copy(g).impl_ptr();  // own copy: g may be shared with other consumers
  } else {
    Tensor acc(leaf.grad);
    backend_for(acc).binary(BinaryOp::Add, acc, acc, g);
    acc.bump_version();
  }
}

void run_backward(const std::vector<Tensor>& roots, const std::vector<Tensor>& grads, bool retain_graph) {
  NoGradGuard no_grad;  // backward itself is not recorded (no higher-order gradients)
  struct BySeq {
    bool operator()(const std::shared_ptr<Node>& a, const std::shared_ptr<Node>& b) const {
      return a->seq() < b->seq();
    }
  };
  std::priority_queue<std::shared_ptr<Node>, std::vector<std::shared_ptr<Node>>, BySeq> ready;
  std::unordered_map<Node*, std::vector<Tensor>> pending;  // summed gradient per Node output

  auto deliver = [&](const std::shared_ptr<Node>& fn, uint32_t output_nr, const Tensor& g) {
    auto [it, inserted] = pending.try_emplace(fn.get());
    if (inserted) {
      it->second.resize(fn->outputs.size());
      ready.push(fn);
    }
    Tensor& slot = it->second[output_nr];
    slot = slot.defined() ? add_same_shape(slot, g) : g;
  };

  for (size_t i = 0; i < roots.size(); ++i) {
    const Tensor& root = roots[i];
    MINIDL_CHECK(root.defined() && root.requires_grad(),
                 "backward: the tensor does not require grad and has no grad_fn (nothing to differentiate)");
    Tensor g = i < grads.size() ? grads[i] : Tensor();
    if (!g.defined()) {
      MINIDL_CHECK(root.numel() == 1, "backward: a gradient must be given for a non-scalar output of shape ",
                   shape_str(root.sizes()));
      g = ones(root.sizes(), TensorOptions().dtype(root.dtype()).device(root.device()));
    }
    MINIDL_CHECK(g.sizes() == root.sizes(), "backward: gradient shape ", shape_str(g.sizes()),
                 " does not match output shape ", shape_str(root.sizes()));
    if (root.grad_fn()) {
      deliver(root.grad_fn(), root.impl().output_nr, g);
    } else {
      accumulate_grad(root.impl(), g);
    }
  }

  while (!ready.empty()) {
    std::shared_ptr<Node> node = ready.top();
    ready.pop();
    auto it = pending.find(node.get());
    std::vector<Tensor> grad_outputs = std::move(it->second);
    pending.erase(it);
    for (size_t i = 0; i < grad_outputs.size(); ++i) {
      if (!grad_outputs[i].defined()) {
        const auto& m = node->outputs[i];
        grad_outputs[i] = zeros(m.sizes, TensorOptions().dtype(m.dtype).device(m.device));
      }
      if (i < node->retained.size()) {
        if (auto impl = node->retained[i].lock()) {
          impl->grad = nullptr;
          accumulate_grad(*impl, grad_outputs[i]);
        }
      }
    }
    std::vector<Tensor> grad_inputs = node->apply(std::move(grad_outputs));
    MINIDL_CHECK(grad_inputs.size() == node->next_edges.size(), "autograd: backward of '", node->name(), "' returned ",
                 grad_inputs.size(), " gradients for ", node->next_edges.size(), " inputs");
    for (size_t i = 0; i < grad_inputs.size(); ++i) {
      const Edge& e = node->next_edges[i];
      const Tensor& g = grad_inputs[i];
      if (!e.active() || !g.defined()) continue;
      if (e.fn) {
        MINIDL_CHECK(g.sizes() == e.fn->outputs[e.output_nr].sizes, "autograd: backward of '", node->name(),
                     "' returned a gradient of shape ", shape_str(g.sizes()), " for input ", i, " of shape ",
                     shape_str(e.fn->outputs[e.output_nr].sizes));
        deliver(e.fn, e.output_nr, g);
      } else {
        accumulate_grad(*e.leaf, g);
      }
    }
    if (!retain_graph) node->release_saved();
  }
}

}  // namespace minidl::autograd

namespace minidl {

void Tensor::backward(const Tensor& grad, bool retain_graph) const {
  autograd::run_backward({*this}, {grad}, retain_graph);
}

void Tensor::retain_grad() const {
  MINIDL_CHECK(requires_grad(), "retain_grad: the tensor does not require grad");
  if (is_leaf()) return;  // leaves keep .grad anyway
  auto& node = impl().grad_fn;
  const uint32_t i = impl().output_nr;
  if (node->retained.size() <= i) node->retained.resize(i + 1);
  node->retained[i] = impl_ptr();
  impl().retains_grad = true;
}

}  // namespace minidl
