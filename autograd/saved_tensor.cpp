// SavedTensor, the pack/unpack hook stack and the current-module name stack (all thread-local).
#include "autograd/saved_tensor.h"

#include <vector>

namespace minidl::autograd {
namespace {
thread_local std::vector<SavedTensorHooks> g_hooks;
thread_local std::vector<std::string> g_modules;
}  // namespace

const char* save_kind_name(SaveKind k) {
  switch (k) {
    case SaveKind::Auto: return "auto";
    case SaveKind::Activation: return "activation";
    case SaveKind::Parameter: return "parameter";
    case SaveKind::Mask: return "mask";
    case SaveKind::Index: return "index";
    case SaveKind::Statistic: return "statistic";
    case SaveKind::Output: return "output";
    case SaveKind::Coefficient: return "coefficient";
  }
  return "?";
}

SavedTensorHooksGuard::SavedTensorHooksGuard(SavedTensorHooks hooks) {
  MINIDL_CHECK(hooks.pack && hooks.unpack, "SavedTensorHooks: both pack and unpack must be set");
  g_hooks.push_back(std::move(hooks));
}
SavedTensorHooksGuard::~SavedTensorHooksGuard() { g_hooks.pop_back(); }

bool SavedTensorHooksGuard::active() { return !g_hooks.empty(); }

ModuleNameGuard::ModuleNameGuard(const std::string& name) { g_modules.push_back(name); }
ModuleNameGuard::~ModuleNameGuard() { g_modules.pop_back(); }
const std::string& ModuleNameGuard::current() {
  static const std::string kEmpty;
  return g_modules.empty() ? kEmpty : g_modules.back();
}

SavedTensor::SavedTensor(const Tensor& t, const SaveInfo& info) : defined_(t.defined()), info_(info) {
  if (!defined_) return;
  storage_ = t.storage();
  saved_version_ = t.version();
  Tensor data_only = t.detach();  // no grad_fn: saving an output never makes a reference cycle
  if (g_hooks.empty()) {
    payload_ = data_only;
  } else {
    const auto& h = g_hooks.back();
    payload_ = h.pack(data_only, info_);
    unpack_ = h.unpack;
    mask_bits_ = h.mask_bits;
  }
}

Tensor SavedTensor::unpack() const {
  if (!defined_) return {};
  check_readable();
  if (!unpack_) return std::any_cast<const Tensor&>(payload_);
  return unpack_(payload_);
}

PackedMask SavedTensor::mask_bits() const {
  if (!defined_ || !mask_bits_) return {};
  check_readable();
  return mask_bits_(payload_);
}

void SavedTensor::check_readable() const {
  MINIDL_CHECK(!released_, "autograd: trying to backward through the graph a second time: the tensors saved by '",
               info_.op, "' were already freed. Pass retain_graph=true to the first backward() to keep them.");
  if (auto st = storage_.lock()) {
    MINIDL_CHECK(st->version() == saved_version_, "autograd: a tensor saved by '", info_.op,
                 "' for backward was modified by an in-place operation (version ", saved_version_, " when saved, now ",
                 st->version(), ")");
  }
}

void SavedTensor::release() {
  released_ = true;
  payload_.reset();
}

}  // namespace minidl::autograd
