// nn::Module: registration, traversal, train/eval, placement and state dicts (see module.h).
#include "nn/module.h"

#include <algorithm>
#include <sstream>

#include "autograd/grad_mode.h"
#include "autograd/saved_tensor.h"
#include "nn/modules/batch_norm.h"

namespace minidl::nn {

Tensor Module::forward(const Tensor&) {
  MINIDL_FAIL("nn::", type_name_, " ('", path_, "'): forward(const Tensor&) is not defined for this module");
}

Tensor Module::operator()(const Tensor& x) {
  autograd::ModuleNameGuard guard(path_);
  return forward(x);
}

Tensor Module::operator()(Tensor&& x) {
  autograd::ModuleNameGuard guard(path_);
  return forward_owned(std::move(x));
}

Tensor Module::forward_owned(Tensor x) { return forward(x); }

Tensor Module::forward_after_bn_relu(BatchNorm2d& bn, Tensor x) {
  Tensor y = bn.forward_relu(x);
  x = Tensor();  // the batch norm's input goes as soon as nothing needs it (under ActNN the tape holds only a copy)
  return (*this)(std::move(y));
}

void Module::check_new_name(const std::string& name, const char* what) const {
  MINIDL_CHECK(!name.empty() && name.find('.') == std::string::npos, "nn::", type_name_, ": ", what, " name '", name,
               "' must be non-empty and contain no '.'");
  auto taken = [&](const auto& v) {
    return std::any_of(v.begin(), v.end(), [&](const auto& e) { return e.first == name; });
  };
  MINIDL_CHECK(!taken(params_) && !taken(buffers_) && !taken(children_), "nn::", type_name_, ": cannot register ", what,
               " '", name, "': the name is already taken");
}

Tensor Module::register_parameter(const std::string& name, Tensor t, bool requires_grad) {
  check_new_name(name, "parameter");
  MINIDL_CHECK(t.defined(), "nn::", type_name_, ": parameter '", name, "' is undefined");
  MINIDL_CHECK(t.is_leaf(), "nn::", type_name_, ": parameter '", name, "' must be a leaf tensor (detach it first)");
  t.set_requires_grad(requires_grad);
  params_.emplace_back(name, t);
  return t;
}

Tensor Module::register_buffer(const std::string& name, Tensor t) {
  check_new_name(name, "buffer");
  MINIDL_CHECK(t.defined(), "nn::", type_name_, ": buffer '", name, "' is undefined");
  buffers_.emplace_back(name, t);
  return t;
}

void Module::add_child(const std::string& name, ModulePtr m) {
  check_new_name(name, "module");
  MINIDL_CHECK(m != nullptr, "nn::", type_name_, ": module '", name, "' is null");
  MINIDL_CHECK(m.get() != this, "nn::", type_name_, ": a module cannot be its own child");
  children_.emplace_back(name, m);
  m->set_path(path_.empty() ? name : path_ + "." + name);
}

// A parent registered after its children re-prefixes the whole subtree, so paths are right whatever order
// the constructors run in.
void Module::set_path(const std::string& path) {
  path_ = path;
  for (auto& [name, c] : children_) c->set_path(path_.empty() ? name : path_ + "." + name);
}

void Module::collect_named(std::vector<std::pair<std::string, Tensor>>& out, const std::string& prefix, bool params,
                           bool recurse) const {
  for (const auto& [name, t] : params ? params_ : buffers_) out.emplace_back(prefix + name, t);
  if (!recurse) return;
  for (const auto& [name, c] : children_) c->collect_named(out, prefix + name + ".", params, true);
}

std::vector<std::pair<std::string, Tensor>> Module::named_parameters(bool recurse) const {
  std::vector<std::pair<std::string, Tensor>> out;
  collect_named(out, "", true, recurse);
  return out;
}

std::vector<std::pair<std::string, Tensor>> Module::named_buffers(bool recurse) const {
  std::vector<std::pair<std::string, Tensor>> out;
  collect_named(out, "", false, recurse);
  return out;
}

std::vector<Tensor> Module::parameters(bool recurse) const {
  std::vector<Tensor> out;
  for (auto& [n, t] : named_parameters(recurse)) out.push_back(t);
  return out;
}

std::vector<Tensor> Module::buffers(bool recurse) const {
  std::vector<Tensor> out;
  for (auto& [n, t] : named_buffers(recurse)) out.push_back(t);
  return out;
}

std::vector<ModulePtr> Module::children() const {
  std::vector<ModulePtr> out;
  for (const auto& [n, c] : children_) out.push_back(c);
  return out;
}

std::vector<std::pair<std::string, ModulePtr>> Module::named_modules() const {
  std::vector<std::pair<std::string, ModulePtr>> out;
  for (const auto& [name, c] : children_) {
    out.emplace_back(name, c);
    for (auto& [sub, m] : c->named_modules()) out.emplace_back(name + "." + sub, m);
  }
  return out;
}

void Module::apply(const std::function<void(Module&)>& fn) {
  for (auto& [n, c] : children_) c->apply(fn);
  fn(*this);
}

Tensor Module::parameter(const std::string& name) const {
  for (const auto& [n, t] : params_)
    if (n == name) return t;
  MINIDL_FAIL("nn::", type_name_, " ('", path_, "'): no parameter named '", name, "'");
}

bool Module::has_parameter(const std::string& name) const {
  return std::any_of(params_.begin(), params_.end(), [&](const auto& e) { return e.first == name; });
}

Tensor Module::buffer(const std::string& name) const {
  for (const auto& [n, t] : buffers_)
    if (n == name) return t;
  MINIDL_FAIL("nn::", type_name_, " ('", path_, "'): no buffer named '", name, "'");
}

ModulePtr Module::child(const std::string& name) const {
  for (const auto& [n, c] : children_)
    if (n == name) return c;
  MINIDL_FAIL("nn::", type_name_, " ('", path_, "'): no child module named '", name, "'");
}

void Module::train(bool on) {
  training_ = on;
  for (auto& [n, c] : children_) c->train(on);
}

namespace {

// Points t's TensorImpl at `moved`'s storage and geometry, so every handle sharing the impl sees the move.
void rebind(const Tensor& t, const Tensor& moved) {
  TensorImpl& impl = t.impl();
  impl.storage = moved.storage();
  impl.sizes = moved.sizes();
  impl.strides = moved.strides();
  impl.offset = moved.offset();
  impl.dtype = moved.dtype();
}

}  // namespace

void Module::to(Device device) {
  auto move = [&](const Tensor& t) {
    if (t.device() == device) return;
    rebind(t, t.detach().to(device));
    Tensor g = t.grad();
    if (g.defined()) t.set_grad(g.detach().to(device));
  };
  for (auto& [n, t] : named_parameters()) move(t);
  for (auto& [n, t] : named_buffers()) move(t);
}

void Module::to(DType dtype) {
  MINIDL_CHECK(is_floating(dtype), "nn::Module::to: target dtype must be floating, got ", dtype_name(dtype));
  auto convert = [&](const Tensor& t) {
    if (!is_floating(t.dtype()) || t.dtype() == dtype) return;
    rebind(t, t.detach().to(dtype));
    Tensor g = t.grad();
    if (g.defined()) t.set_grad(g.detach().to(dtype));
  };
  for (auto& [n, t] : named_parameters()) convert(t);
  for (auto& [n, t] : named_buffers()) convert(t);
  apply([dtype](Module& m) { m.convert_state(dtype); });
}

void Module::zero_grad() {
  for (auto& t : parameters()) t.set_grad(Tensor());
}

int64_t Module::num_parameters() const {
  int64_t n = 0;
  for (auto& t : parameters()) n += t.numel();
  return n;
}

TensorMap Module::state_dict() const {
  TensorMap out;
  for (auto& [n, t] : named_parameters()) out[n] = t.detach();
  for (auto& [n, t] : named_buffers()) out[n] = t.detach();
  return out;
}

LoadResult Module::load_state_dict(const TensorMap& state, bool strict) {
  std::vector<std::pair<std::string, Tensor>> own = named_parameters();
  for (auto& e : named_buffers()) own.push_back(e);

  LoadResult r;
  // Check everything before writing anything, so a failed load leaves the module unchanged.
  for (const auto& [name, t] : own) {
    auto it = state.find(name);
    if (it == state.end()) {
      r.missing_keys.push_back(name);
      continue;
    }
    MINIDL_CHECK(it->second.defined(), "load_state_dict: entry '", name, "' is undefined");
    MINIDL_CHECK(it->second.sizes() == t.sizes(), "load_state_dict: size mismatch for '", name,
                 "': the checkpoint has shape ", shape_str(it->second.sizes()), ", the module (", type_name_,
                 ") has shape ", shape_str(t.sizes()));
  }
  for (const auto& entry : state) {  // not a structured binding: clang 14 cannot capture one in a lambda
    const std::string& name = entry.first;
    bool known = std::any_of(own.begin(), own.end(), [&](const auto& e) { return e.first == name; });
    if (!known) r.unexpected_keys.push_back(name);
  }
  if (strict && (!r.missing_keys.empty() || !r.unexpected_keys.empty())) {
    std::ostringstream os;
    os << "load_state_dict: error loading state into " << type_name_ << ":";
    if (!r.missing_keys.empty()) {
      os << " missing key(s):";
      for (auto& k : r.missing_keys) os << " '" << k << "'";
      os << ".";
    }
    if (!r.unexpected_keys.empty()) {
      os << " unexpected key(s):";
      for (auto& k : r.unexpected_keys) os << " '" << k << "'";
      os << ".";
    }
    throw Error(os.str());
  }

  autograd::NoGradGuard no_grad;
  for (const auto& [name, t] : own) {
    auto it = state.find(name);
    if (it == state.end()) continue;
    Tensor src = it->second.detach();
    if (src.device() != t.device()) src = src.to(t.device());
    Tensor dst = t.detach();
    dst.copy_(src);  // casts dtype (e.g. an f32 checkpoint into an f64 module)
  }
  return r;
}

namespace {

void print_module(std::ostringstream& os, const Module& m, int indent) {
  os << m.type_name() << "(";
  const auto& kids = m.named_children();
  if (kids.empty()) {
    os << m.extra_repr() << ")";
    return;
  }
  std::string pad(static_cast<size_t>(indent + 2), ' ');
  os << "\n";
  if (!m.extra_repr().empty()) os << pad << m.extra_repr() << "\n";
  for (const auto& [name, c] : kids) {
    os << pad << "(" << name << "): ";
    print_module(os, *c, indent + 2);
    os << "\n";
  }
  os << std::string(static_cast<size_t>(indent), ' ') << ")";
}

}  // namespace

std::string to_string(const Module& m) {
  std::ostringstream os;
  print_module(os, m, 0);
  return os.str();
}

}  // namespace minidl::nn
