// The backward engine: visits the Nodes reachable from the roots in descending sequence number (a Node's
// inputs were always recorded before it, so this order is topological without a sort or recursion),
// sums gradients per Node output, writes leaf .grad, and frees saved tensors unless retain_graph.
#include <algorithm>
#include <queue>
#include <unordered_map>
#include <unordered_set>

#include "autograd/grad_hooks_engine.h"
#include "autograd/grad_mode.h"
#include "autograd/node.h"
#include "autograd/ops/op_utils.h"
#include "backends/backend.h"
#include "tensor/alloc_trace.h"

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

// A second gradient for the same output (a residual join) is added into the first when nothing else holds the
// first: the same a + b per element and the same layout as add_same_shape's fresh sum, without a third
// activation-sized buffer at the moment both operands are live.
bool can_sum_in_place(const Tensor& slot, const Tensor& g) {
  return ops_detail::sole_owner(slot) && slot.sizes() == g.sizes() && slot.dtype() == g.dtype() &&
         slot.device() == g.device() && slot.storage() != g.storage() &&
         slot.memory_format() == ops_detail::follow_format(slot.sizes(), {slot, g});
}

Tensor contiguous_copy(const Tensor& g) {
  Tensor out = empty(g.sizes(), TensorOptions().dtype(g.dtype()).device(g.device()));
  backend_for(g).copy(out, g);
  return out;
}

// Gradient-ready hooks (grad_hooks.h): for each hooked leaf, how many edges of the graph below the roots still
// may deliver a gradient to it. The count reaches zero when its .grad is final; the hooks then run.
class LeafReadiness {
 public:
  explicit LeafReadiness(const std::vector<Tensor>& roots) {
    if (!detail::any_grad_ready_hooks()) return;
    std::unordered_set<Node*> seen;
    std::vector<Node*> stack;
    auto visit_leaf = [&](const std::shared_ptr<TensorImpl>& leaf) {
      auto it = pending_.find(leaf.get());
      if (it != pending_.end()) {
        ++it->second.edges;
        return;
      }
      auto hooks = detail::grad_ready_hooks_of(leaf.get());
      if (!hooks.empty()) pending_.emplace(leaf.get(), Pending{leaf, std::move(hooks), 1});
    };
    for (const Tensor& r : roots) {
      if (!r.defined()) continue;
      if (r.grad_fn()) {
        if (seen.insert(r.grad_fn().get()).second) stack.push_back(r.grad_fn().get());
      } else if (r.requires_grad()) {
        visit_leaf(r.impl_ptr());
      }
    }
    while (!stack.empty()) {
      Node* n = stack.back();
      stack.pop_back();
      for (const Edge& e : n->next_edges) {
        if (e.fn) {
          if (seen.insert(e.fn.get()).second) stack.push_back(e.fn.get());
        } else if (e.leaf) {
          visit_leaf(e.leaf);
        }
      }
    }
  }
  /// One edge into `leaf` was processed (with or without a gradient).
  void edge_done(const TensorImpl* leaf) {
    if (pending_.empty()) return;
    auto it = pending_.find(leaf);
    if (it == pending_.end() || --it->second.edges > 0) return;
    Pending p = std::move(it->second);
    pending_.erase(it);
    fire(p);
  }
  /// End of the pass: leaves whose producers never ran get their hooks now (in a stable order).
  void flush() {
    std::vector<Pending> rest;
    for (auto& [k, p] : pending_) rest.push_back(std::move(p));
    pending_.clear();
    std::sort(rest.begin(), rest.end(), [](const Pending& a, const Pending& b) { return a.leaf < b.leaf; });
    for (auto& p : rest) fire(p);
  }

 private:
  struct Pending {
    std::shared_ptr<TensorImpl> leaf;
    std::vector<GradReadyHook> hooks;
    int64_t edges = 0;
  };
  static void fire(const Pending& p) {
    const Tensor leaf(p.leaf);
    for (const auto& h : p.hooks) h(leaf);
  }
  std::unordered_map<const TensorImpl*, Pending> pending_;
};

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
  AllocTagGuard tag("bwd", "engine (seed, sums, leaf grads)");
  detail::BackwardPassScope pass;
  LeafReadiness readiness(roots);
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
    if (!slot.defined()) {
      slot = g;
    } else if (can_sum_in_place(slot, g)) {
      backend_for(slot).binary(BinaryOp::Add, slot, slot, g);
    } else {
      slot = add_same_shape(slot, g);
    }
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
      readiness.edge_done(&root.impl());
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
        // a retained non-leaf gradient accumulates over backward passes, as a leaf's does (and as in PyTorch)
        if (auto impl = node->retained[i].lock()) accumulate_grad(*impl, grad_outputs[i]);
      }
    }
    std::vector<Tensor> grad_inputs = node->apply(std::move(grad_outputs));
    MINIDL_CHECK(grad_inputs.size() == node->next_edges.size(), "autograd: backward of '", node->name(), "' returned ",
                 grad_inputs.size(), " gradients for ", node->next_edges.size(), " inputs");
    for (size_t i = 0; i < grad_inputs.size(); ++i) {
      const Edge& e = node->next_edges[i];
      const Tensor& g = grad_inputs[i];
      if (!e.active()) continue;
      if (!g.defined()) {
        if (e.leaf) readiness.edge_done(e.leaf.get());
        continue;
      }
      if (e.fn) {
        MINIDL_CHECK(g.sizes() == e.fn->outputs[e.output_nr].sizes, "autograd: backward of '", node->name(),
                     "' returned a gradient of shape ", shape_str(g.sizes()), " for input ", i, " of shape ",
                     shape_str(e.fn->outputs[e.output_nr].sizes));
        deliver(e.fn, e.output_nr, g);
      } else {
        accumulate_grad(*e.leaf, g);
        readiness.edge_done(e.leaf.get());
      }
    }
    if (!retain_graph) node->release_saved();
  }
  readiness.flush();
  pass.run_callbacks();
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
