// A Node is one recorded op on the tape: edges to the producers of its inputs, and a backward function.
// A Node is owned by its outputs' grad_fn; the thread-local tape holds it weakly, so a graph dies with its
// tensors even when no backward runs.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "tensor/tensor.h"

namespace minidl::autograd {

class Node;

/// Where the gradient of one input goes: into another Node's output `output_nr`, or into a leaf's .grad.
struct Edge {
  std::shared_ptr<Node> fn;            // producer of the input (non-leaf), or null
  uint32_t output_nr = 0;
  std::shared_ptr<TensorImpl> leaf;    // leaf requiring grad, or null
  bool active() const { return fn != nullptr || leaf != nullptr; }
};

/// Shape/dtype/device of an output, to materialise a zero gradient for an output that received none.
struct OutputMeta {
  Shape sizes;
  DType dtype = DType::f32;
  Device device = kCPU;
};

class Node {
 public:
  Node();
  virtual ~Node() = default;
  Node(const Node&) = delete;
  Node& operator=(const Node&) = delete;

  uint64_t seq() const { return seq_; }
  virtual std::string name() const = 0;
  /// Gradients w.r.t. the inputs (one per edge; undefined where none) from gradients w.r.t. the outputs.
  virtual std::vector<Tensor> apply(std::vector<Tensor>&& grad_outputs) = 0;
  /// Frees saved tensors after a backward without retain_graph.
  virtual void release_saved() {}

  std::vector<Edge> next_edges;
  std::vector<OutputMeta> outputs;
  /// Non-leaf outputs whose gradient should be kept in .grad (Tensor::retain_grad).
  std::vector<std::weak_ptr<TensorImpl>> retained;

 private:
  uint64_t seq_;
};

/// The thread-local tape: every recorded Node, weakly, in recording order.
class Tape {
 public:
  static void record(const std::shared_ptr<Node>& node);
  /// Live Nodes currently on this thread's tape (drops dead entries).
  static std::vector<std::shared_ptr<Node>> live_nodes();
};

/// Runs backward from `roots` (seeded with `grads`, ones when undefined) in descending sequence number.
void run_backward(const std::vector<Tensor>& roots, const std::vector<Tensor>& grads, bool retain_graph);

/// Adds `g` into the leaf's .grad (allocating it on first use).
void accumulate_grad(TensorImpl& leaf, const Tensor& g);

}  // namespace minidl::autograd
