// nn::Sequential: children named "0", "1", ... (PyTorch's names, e.g. `downsample.0.weight`), run in order.
#pragma once

#include <initializer_list>

#include "nn/module.h"

namespace minidl::nn {

class Sequential : public Module {
 public:
  Sequential() : Module("Sequential") {}
  explicit Sequential(std::vector<ModulePtr> modules);
  /// Appends a module under the next index; returns *this for chaining.
  Sequential& push_back(ModulePtr m);
  Tensor forward(const Tensor& x) override;
  size_t size() const { return named_children().size(); }
  ModulePtr operator[](size_t i) const;
};

}  // namespace minidl::nn
