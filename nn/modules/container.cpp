// nn::Sequential (see container.h).
#include "nn/modules/container.h"

namespace minidl::nn {

Sequential::Sequential(std::vector<ModulePtr> modules) : Module("Sequential") {
  for (auto& m : modules) push_back(std::move(m));
}

Sequential& Sequential::push_back(ModulePtr m) {
  add_child(std::to_string(size()), std::move(m));
  return *this;
}

Tensor Sequential::forward(const Tensor& x) {
  Tensor y = x;
  for (const auto& [name, m] : named_children()) y = (*m)(y);
  return y;
}

ModulePtr Sequential::operator[](size_t i) const {
  MINIDL_CHECK(i < size(), "nn::Sequential: index ", i, " out of range for ", size(), " modules");
  return named_children()[i].second;
}

}  // namespace minidl::nn
