// nn::Module: the base of every layer and model. Parameters, buffers and child modules are registered by name
// in the constructor (insertion order is kept), so named_parameters() and state_dict() produce PyTorch's dotted
// names (`layer1.0.conv1.weight`) and a checkpoint converts 1:1 between minidl and PyTorch/torchvision.
// Modules are held by std::shared_ptr; operator() names the running module for saved-tensor hooks.
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "tensor/safetensors.h"
#include "tensor/tensor.h"

namespace minidl::nn {

class Module;
class BatchNorm2d;  // nn/modules/batch_norm.h
using ModulePtr = std::shared_ptr<Module>;

/// What load_state_dict found when strict=false (with strict=true any entry here is an error).
struct LoadResult {
  std::vector<std::string> missing_keys;     // the module has them, the map does not
  std::vector<std::string> unexpected_keys;  // the map has them, the module does not
};

class Module {
 public:
  /// `type_name` is what printing and error messages call the module ("Conv2d", "QuantConv2d", ...).
  explicit Module(std::string type_name = "Module") : type_name_(std::move(type_name)) {}
  virtual ~Module() = default;
  Module(const Module&) = delete;
  Module& operator=(const Module&) = delete;

  /// The computation. The default throws: a module that takes other inputs (a loss) defines its own call.
  virtual Tensor forward(const Tensor& x);
  /// Runs forward() with this module's dotted name on the ModuleNameGuard stack (for SaveInfo::module).
  Tensor operator()(const Tensor& x);
  /// The same for an input the caller hands over (`model(std::move(batch))`, or a temporary): runs
  /// forward_owned(), which may release the input as soon as it has been consumed instead of holding it
  /// through the whole forward. The caller's tensor is empty afterwards.
  Tensor operator()(Tensor&& x);
  /// The computation on an input this call owns. The default is forward(x); ResNet frees the input batch once
  /// its first convolution has run (when the tape keeps only a compressed copy, that is memory given back).
  virtual Tensor forward_owned(Tensor x);
  /// This module applied to relu(bn(x)) (a ResNet block's bn1 + ReLU before its second conv). The default is
  /// (*this)(bn.forward_relu(x)), releasing x in between (the caller hands it over, as it did when it reassigned
  /// its tensor); a module may compute both in one op (QuantConv2d folds the ReLU's output into
  /// its input quantizer: quant/ops.h batch_norm_relu_quantize) with the same results.
  virtual Tensor forward_after_bn_relu(BatchNorm2d& bn, Tensor x);

  /// "Conv2d", "BatchNorm2d", "ResNet", ...
  const std::string& type_name() const { return type_name_; }
  /// Dotted path from the root that registered it ("layer1.0.conv1"); "" for a root.
  const std::string& path() const { return path_; }
  /// One-line description of the hyper-parameters, e.g. "3, 16, kernel_size=(3, 3), stride=(1, 1)".
  virtual std::string extra_repr() const { return ""; }

  // ---- traversal (insertion order; recursive ones go depth-first, own entries before children's) ----
  std::vector<Tensor> parameters(bool recurse = true) const;
  std::vector<std::pair<std::string, Tensor>> named_parameters(bool recurse = true) const;
  std::vector<Tensor> buffers(bool recurse = true) const;
  std::vector<std::pair<std::string, Tensor>> named_buffers(bool recurse = true) const;
  std::vector<ModulePtr> children() const;
  const std::vector<std::pair<std::string, ModulePtr>>& named_children() const { return children_; }
  /// Every module below this one (not this one), with dotted names relative to this module.
  std::vector<std::pair<std::string, ModulePtr>> named_modules() const;
  /// Calls fn on every descendant (depth-first, parents first), then on this module, as PyTorch's apply.
  void apply(const std::function<void(Module&)>& fn);
  /// Direct lookups by local name; throw when absent.
  Tensor parameter(const std::string& name) const;
  Tensor buffer(const std::string& name) const;
  ModulePtr child(const std::string& name) const;
  bool has_parameter(const std::string& name) const;

  // ---- mode and placement ----
  /// Sets training mode here and in every descendant.
  void train(bool on = true);
  void eval() { train(false); }
  bool is_training() const { return training_; }
  /// Moves every parameter and buffer (and any gradient) to `device`, in place: existing Tensor handles (the
  /// module's own members, an optimizer's list) stay valid because their TensorImpl is kept.
  void to(Device device);
  /// Converts floating parameters and buffers to `dtype` in place (integer buffers such as num_batches_tracked
  /// keep theirs), recursively, then calls convert_state(dtype) on every module of the tree, so state that is
  /// neither a parameter nor a buffer (a quantizer's level set) follows.
  void to(DType dtype);
  /// Drops every parameter's gradient (PyTorch's set_to_none=true).
  void zero_grad();

  // ---- checkpoints ----
  /// Parameters and buffers by dotted name. The tensors share storage with the module (like PyTorch).
  TensorMap state_dict() const;
  /// Copies values into the existing parameters and buffers (values cast to their dtype, moved to their
  /// device). Shape mismatch always throws naming the key and both shapes; with strict, missing and unexpected
  /// keys throw too (all of them listed). Returns what was missing/unexpected.
  LoadResult load_state_dict(const TensorMap& state, bool strict = true);

  /// Total number of parameter elements.
  int64_t num_parameters() const;

 protected:
  /// Hook of to(DType): converts floating state a subclass keeps outside its parameters and buffers (those are
  /// already converted when it runs). The default has none.
  virtual void convert_state(DType /*dtype*/) {}
  /// Registers a learnable tensor (marked requires_grad) and returns it (the same handle).
  Tensor register_parameter(const std::string& name, Tensor t, bool requires_grad = true);
  /// Registers a non-learnable state tensor (running statistics, counters, ...).
  Tensor register_buffer(const std::string& name, Tensor t);
  /// Registers a child module and gives it (and its subtree) its dotted path.
  template <typename M>
  std::shared_ptr<M> register_module(const std::string& name, std::shared_ptr<M> m) {
    add_child(name, m);
    return m;
  }
  void add_child(const std::string& name, ModulePtr m);

 private:
  void set_path(const std::string& path);
  void check_new_name(const std::string& name, const char* what) const;
  void collect_named(std::vector<std::pair<std::string, Tensor>>& out, const std::string& prefix, bool params,
                     bool recurse) const;

  std::string type_name_;
  std::string path_;
  bool training_ = true;
  std::vector<std::pair<std::string, Tensor>> params_;
  std::vector<std::pair<std::string, Tensor>> buffers_;
  std::vector<std::pair<std::string, ModulePtr>> children_;
};

/// PyTorch-like multi-line print of a module tree: `ResNet(\n  (conv1): Conv2d(3, 16, ...)\n ...)`.
std::string to_string(const Module& m);

}  // namespace minidl::nn
