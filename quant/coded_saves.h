// Lossless coded saves of quantizer outputs (issue 17). A quantized conv's input q = quantize(x) takes at most a
// few distinct values (alpha times a level: 16 at 4 bits), yet conv2d saves it for its weight gradient as a full
// float tensor on top of everything the float model saves. While a CodedSaveGuard is alive, a save of exactly that
// tensor is stored as u8 codes into a code book of those values (Backend::codebook_encode) and rebuilt, bit for bit,
// when backward reads it (Backend::codebook_decode: a transient float copy, one layer at a time): a quarter of the
// bytes on the tape, the same gradients. It is a saved-tensor hook scoped to one op, so ops need no change.
//
// It stands aside (the tensor is saved as is) when saved-tensor hooks are already active (ActNN compresses the
// same tensor its own way), off the host (cpu / ref backends only), in eval / no-grad mode, when disabled
// (set_coded_saves(false) or MINIDL_QAT_CODED_SAVES=0), and for a tensor with a value outside the code book.
#pragma once

#include <optional>

#include "autograd/saved_tensor.h"
#include "quant/levels.h"
#include "tensor/tensor.h"

namespace minidl::quant {

/// Whether quantized layers code their quantized inputs when saving them (default on; MINIDL_QAT_CODED_SAVES=0
/// turns it off at start-up). Process-wide.
bool coded_saves();
void set_coded_saves(bool on);

/// Code books: every value the activation quantizers can output for this alpha, bit for bit as the backends
/// compute them (alpha * level; (k / steps) * alpha on the uniform path, k = 0..steps; (k * alpha) / (2^bits - 1)
/// for PACT, k = 0..2^bits - 1; k for the integer grid), plus -0 where a clamp can keep a -0 input's sign, in
/// `dtype`, strictly ascending in IEEE total order: a 1-D host tensor for Backend::codebook_encode. Undefined
/// when they do not fit in 256 entries. (APoT-C's uniform path keeps negative codes, which are not listed: a
/// tensor holding one is saved as is.)
Tensor activation_codebook(const Tensor& alpha, const LevelSet& levels, DType dtype);
Tensor pact_codebook(const Tensor& alpha, int bits, DType dtype);
Tensor int_grid_codebook(int bits, DType dtype);

/// What a coded save keeps: the codes (u8, the value's sizes and layout) and the code book (the value of code k is
/// codebook[k]).
struct CodedTensor {
  Tensor codes;
  Tensor codebook;
  /// The value again, bit for bit: a new tensor of the codebook's dtype in the codes' layout.
  Tensor decode() const;
};
/// value as codes into codebook, or nullopt when some element is not an entry bit for bit (or value is not a
/// dense host tensor of the codebook's dtype).
std::optional<CodedTensor> encode(const Tensor& value, const Tensor& codebook);

/// RAII: while alive (on this thread), a tensor saved for backward that is `value` itself (the same storage,
/// offset, sizes and strides) is kept as `coded`: its codes when defined (made by the quantizer in its forward
/// pass, quantize_activation's `coded`), else encode(value, coded.codebook) at save time when that succeeds. Every
/// other save is kept as is. Does nothing when !wanted(value) or coded holds neither codes nor a code book.
class CodedSaveGuard {
 public:
  CodedSaveGuard(const Tensor& value, const CodedTensor& coded);
  CodedSaveGuard(const CodedSaveGuard&) = delete;
  CodedSaveGuard& operator=(const CodedSaveGuard&) = delete;
  /// Whether a guard for value would code it: coded_saves() on, grad mode on, no saved-tensor hooks active, and
  /// value a dense floating host tensor. Callers ask before building a code book.
  static bool wanted(const Tensor& value);
  bool engaged() const { return guard_.has_value(); }

 private:
  std::optional<autograd::SavedTensorHooksGuard> guard_;
};

}  // namespace minidl::quant
