// Saved tensors and the pack/unpack hook stack. Every tensor a backward needs goes through Context::save, which
// stores a SavedTensor produced by the innermost active SavedTensorHooks (identity when none). The hook is told
// what it packs (SaveInfo), so a compressor (activation-compressed training) needs no guessing and no op change.
#pragma once

#include <any>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "tensor/tensor.h"

namespace minidl::autograd {

// What a saved tensor is, as far as backward is concerned: a packer (activation compression) decides by this
// alone how a tensor may be stored, so every op labels truthfully.
enum class SaveKind : uint8_t {
  Auto,         // resolved at save time: Parameter for a leaf requiring grad, else Activation
  Activation,   // an op's input activation, read by value (conv / linear / batch-norm inputs, elementwise operands)
  Parameter,    // a weight, bias or other learnable tensor, or one derived from it (a quantized weight)
  Mask,         // read only through its nonzero pattern: a 0/1 mask (dropout, a quantizer's STE mask) or a ReLU
                // output y >= 0 that backward reads as y > 0
  Index,        // integer indices (max-pool argmax, labels)
  Statistic,    // exact statistics computed in forward (batch norm's batch mean / inverse std): keep them exact
  Output,       // an op's own output, read by value to form its derivative (exp, sigmoid, tanh, log-softmax, ...)
  Coefficient,  // a per-element factor the gradient of a parameter is summed against (a quantizer's alpha
                // coefficient): only sum(g * coef) is needed
};
const char* save_kind_name(SaveKind k);

struct SaveInfo {
  SaveKind kind = SaveKind::Activation;
  std::string op;         // the Function's name, e.g. "conv2d"
  std::string module;     // dotted name of the module running, or "" (see ModuleNameGuard)
  uint64_t node_seq = 0;  // sequence number of the Node that saves it
};

/// A saved mask a pack hook keeps at one bit per element: bit i % 8 of byte i / 8 is element i of the saved
/// tensor in its memory order (`format`), set where the element was non-zero.
struct PackedMask {
  Tensor bits;  // u8, ceil(numel / 8) bytes
  Shape sizes;
  MemoryFormat format = MemoryFormat::Contiguous;
};

struct SavedTensorHooks {
  /// Turns a tensor into any payload (e.g. packed 2-bit codes). Called once per save.
  std::function<std::any(const Tensor&, const SaveInfo&)> pack;
  /// Restores the tensor from the payload. Called each time backward reads it.
  std::function<Tensor(const std::any&)> unpack;
  /// Optional: the payload's bits when it is a 1-bit mask (PackedMask::bits undefined otherwise), so that a
  /// backward can apply the mask straight from the bits instead of restoring a full tensor first.
  std::function<PackedMask(const std::any&)> mask_bits = nullptr;
};

/// RAII: pushes hooks for its scope; the innermost guard applies.
class SavedTensorHooksGuard {
 public:
  /// Whether a guard is active on this thread (saves then go through its pack hook). Ops that can save less when
  /// nothing is packed (a tensor another op saves anyway, instead of derived ones) ask this.
  static bool active();

 public:
  explicit SavedTensorHooksGuard(SavedTensorHooks hooks);
  ~SavedTensorHooksGuard();
  SavedTensorHooksGuard(const SavedTensorHooksGuard&) = delete;
  SavedTensorHooksGuard& operator=(const SavedTensorHooksGuard&) = delete;
};

/// RAII: names the module whose forward runs, for SaveInfo::module (nn::Module sets it; nests with dots).
class ModuleNameGuard {
 public:
  explicit ModuleNameGuard(const std::string& name);
  ~ModuleNameGuard();
  ModuleNameGuard(const ModuleNameGuard&) = delete;
  ModuleNameGuard& operator=(const ModuleNameGuard&) = delete;
  static const std::string& current();
};

class SavedTensor {
 public:
  SavedTensor() = default;
  /// Packs t (stored data-only: no grad_fn, so saving an output never makes a reference cycle).
  SavedTensor(const Tensor& t, const SaveInfo& info);
  /// The tensor for backward; throws if it was modified in place since it was saved, or already released.
  Tensor unpack() const;
  /// The saved mask's bits when the pack hook kept it as a 1-bit mask (PackedMask::bits undefined otherwise:
  /// call unpack()). The same checks as unpack().
  PackedMask mask_bits() const;
  void release();
  bool defined() const { return defined_; }
  const SaveInfo& info() const { return info_; }

 private:
  void check_readable() const;  // throws when released or modified in place since the save

  bool defined_ = false;
  bool released_ = false;
  SaveInfo info_;
  std::any payload_;                               // the detached tensor, or a hook's packed payload
  std::function<Tensor(const std::any&)> unpack_;  // empty: payload_ is the Tensor itself
  std::function<PackedMask(const std::any&)> mask_bits_;
  std::weak_ptr<Storage> storage_;  // for the in-place check (weak: never keeps memory alive)
  uint64_t saved_version_ = 0;
};

}  // namespace minidl::autograd
