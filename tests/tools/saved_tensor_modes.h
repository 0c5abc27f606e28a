// The program runners' "hooks" setting: run a program's forward under saved-tensor hooks, so that backward reads
// what the ops saved through them. Ops save other tensors under hooks (a quantizer its u8 mask and alpha
// coefficient instead of its input, conv no codes), and a hook may keep a tensor labelled SaveKind::Mask as one bit
// per element, as activation-compressed training does. Both are lossless, so gradients must not change; a label
// that calls a tensor read by value a Mask shows as a wrong gradient.
//   "none"      no hooks (the default)
//   "identity"  every saved tensor kept as is
//   "mask_bits" Mask tensors kept as 1-bit masks (restored as 0/1 of their dtype and layout, and offered to
//               backwards that apply the bits directly), everything else as is
#pragma once

#include <minidl.h>

#include <any>
#include <memory>
#include <optional>
#include <string>

#include "autograd/saved_tensor.h"
#include "backends/backend.h"

namespace minidl::program_io {

/// A mask kept as bits (the "mask_bits" mode's payload for SaveKind::Mask).
struct MaskPayload {
  autograd::PackedMask mask;
  DType dtype = DType::f32;
  Device device = kCPU;
};

inline autograd::SavedTensorHooks saved_tensor_hooks(const std::string& mode) {
  MINIDL_CHECK(mode == "identity" || mode == "mask_bits", "unknown hooks mode ", mode);
  autograd::SavedTensorHooks h;
  const bool bits = mode == "mask_bits";
  h.pack = [bits](const Tensor& t, const autograd::SaveInfo& info) -> std::any {
    if (!bits || info.kind != autograd::SaveKind::Mask) return t;
    const Tensor d = t.is_contiguous() || t.is_channels_last() ? t : t.contiguous();
    auto p = std::make_shared<MaskPayload>();
    p->mask.bits = empty({(d.numel() + 7) / 8}, TensorOptions().dtype(DType::u8).device(d.device()));
    backend_for(d).pack_mask_bits(p->mask.bits, d);
    p->mask.sizes = d.sizes();
    p->mask.format = d.memory_format();
    p->dtype = d.dtype();
    p->device = d.device();
    return std::shared_ptr<const MaskPayload>(p);
  };
  h.unpack = [](const std::any& a) -> Tensor {
    if (const Tensor* t = std::any_cast<Tensor>(&a)) return *t;
    const auto& p = std::any_cast<const std::shared_ptr<const MaskPayload>&>(a);
    Tensor out = empty(p->mask.sizes, TensorOptions().dtype(p->dtype).device(p->device), p->mask.format);
    backend_for(out).unpack_mask_bits(out, p->mask.bits);
    return out;
  };
  h.mask_bits = [](const std::any& a) -> autograd::PackedMask {
    if (std::any_cast<Tensor>(&a)) return {};
    return std::any_cast<const std::shared_ptr<const MaskPayload>&>(a)->mask;
  };
  return h;
}

/// The program's "hooks" installed for the lifetime of this object (nothing for "none" or no setting).
class SavedTensorMode {
 public:
  explicit SavedTensorMode(const std::string& mode) {
    if (mode != "none") guard_.emplace(saved_tensor_hooks(mode));
  }

 private:
  std::optional<autograd::SavedTensorHooksGuard> guard_;
};

}  // namespace minidl::program_io
