// Coded saves of quantizer outputs (see coded_saves.h): the code books, encode / decode through the backend, and the
// scoped saved-tensor hook.
#include "quant/coded_saves.h"

#include <algorithm>
#include <atomic>
#include <cmath>
#include <vector>

#include "autograd/grad_mode.h"
#include "backends/backend.h"
#include "backends/codebook.h"
#include "core/env.h"

namespace minidl::quant {

namespace {

std::atomic<bool>& coded_saves_flag() {
  static std::atomic<bool> on{env_string("MINIDL_QAT_CODED_SAVES").value_or("1") != "0"};
  return on;
}

// values (any order, duplicates allowed) as a code book: sorted by codebook_key, duplicates (equal bits) dropped;
// undefined past 256 entries.
template <typename T>
Tensor make_codebook(std::vector<T> values, DType dtype) {
  std::sort(values.begin(), values.end(), [](T a, T b) { return codebook_key(a) < codebook_key(b); });
  values.erase(std::unique(values.begin(), values.end(), [](T a, T b) { return codebook_key(a) == codebook_key(b); }),
               values.end());
  if (values.empty() || values.size() > 256) return {};
  Tensor cb = empty({static_cast<int64_t>(values.size())}, TensorOptions{}.dtype(dtype));
  std::copy(values.begin(), values.end(), cb.data<T>());
  return cb;
}

// alpha's value in T, read the way the kernels read it (the one element, already of the tensor's dtype)
template <typename T>
T alpha_value(const Tensor& alpha, DType dtype) {
  MINIDL_CHECK(alpha.defined() && alpha.numel() == 1, "quant code book: alpha must hold one value");
  MINIDL_CHECK(alpha.dtype() == dtype, "quant code book: alpha is ", dtype_name(alpha.dtype()), ", the values ",
               dtype_name(dtype));
  return static_cast<T>(alpha.item<double>());
}

bool same_view(const Tensor& a, const Tensor& b) {
  return a.storage() == b.storage() && a.offset() == b.offset() && a.sizes() == b.sizes() && a.strides() == b.strides();
}

bool dense_host_floating(const Tensor& t) {
  return t.defined() && t.device().is_cpu() && is_floating(t.dtype()) && (t.is_contiguous() || t.is_channels_last());
}

}  // namespace

bool coded_saves() { return coded_saves_flag().load(std::memory_order_relaxed); }
void set_coded_saves(bool on) { coded_saves_flag().store(on, std::memory_order_relaxed); }

Tensor activation_codebook(const Tensor& alpha, const LevelSet& levels, DType dtype) {
  MINIDL_CHECK(!levels.is_signed, "activation_codebook: activations use an unsigned level set, got ", levels.str());
  MINIDL_CHECK(alpha.defined() && alpha.numel() == 1 && alpha.dtype() == dtype, "activation_codebook: alpha must be ",
               "one element of ", dtype_name(dtype));
  const Tensor host_alpha = alpha.device().is_cpu() ? alpha : alpha.to(kCPU);
  Tensor lv;
  if (!levels.rounding) {
    MINIDL_CHECK(levels.magnitudes.defined(), "activation_codebook: level set ", levels.str(), " has no levels");
    lv = levels.magnitudes.dtype() == dtype && levels.magnitudes.device().is_cpu()
             ? levels.magnitudes
             : LevelSet::make(levels.scheme, levels.bits, false, dtype).magnitudes;
  }
  return quantize_clip_codebook(host_alpha, lv, levels.steps);
}

Tensor pact_codebook(const Tensor& alpha, int bits, DType dtype) {
  if (bits < 1 || bits > 7) return {};  // 2^bits values + -0 must fit in 256 entries
  return dispatch_floating(dtype, "pact_codebook", [&](auto tag) {
    using T = decltype(tag);
    const T a = alpha_value<T>(alpha, dtype);
    const T k = static_cast<T>((int64_t{1} << bits) - 1);
    std::vector<T> v;
    for (int64_t t = 0; t <= static_cast<int64_t>(k); ++t) v.push_back(static_cast<T>(t) * a / k);
    v.push_back(-T(0) * a / k);  // clamp(-0, 0, k) keeps -0 (a small negative x rounds to -0)
    return make_codebook(std::move(v), dtype);
  });
}

Tensor int_grid_codebook(int bits, DType dtype) {
  if (bits < 1 || bits > 7) return {};
  return dispatch_floating(dtype, "int_grid_codebook", [&](auto tag) {
    using T = decltype(tag);
    std::vector<T> v{-T(0)};
    for (int64_t t = 0; t < (int64_t{1} << bits); ++t) v.push_back(static_cast<T>(t));
    return make_codebook(std::move(v), dtype);
  });
}

Tensor CodedTensor::decode() const {
  const MemoryFormat fmt =
      codes.is_contiguous() ? MemoryFormat::Contiguous : MemoryFormat::ChannelsLast;  // codes are dense
  Tensor out = empty(codes.sizes(), TensorOptions{}.dtype(codebook.dtype()).device(codes.device()), fmt);
  backend_for(out).codebook_decode(out, codes, codebook);
  return out;
}

std::optional<CodedTensor> encode(const Tensor& value, const Tensor& codebook) {
  if (!dense_host_floating(value) || !codebook.defined() || codebook.dtype() != value.dtype()) return std::nullopt;
  const MemoryFormat fmt = value.is_contiguous() ? MemoryFormat::Contiguous : MemoryFormat::ChannelsLast;
  Tensor codes = empty(value.sizes(), TensorOptions{}.dtype(DType::u8).device(value.device()), fmt);
  if (!backend_for(value).codebook_encode(codes, value, codebook)) return std::nullopt;
  return CodedTensor{codes, codebook};
}

bool CodedSaveGuard::wanted(const Tensor& value) {
  return coded_saves() && autograd::GradMode::is_enabled() && !autograd::SavedTensorHooksGuard::active() &&
         dense_host_floating(value);
}

CodedSaveGuard::CodedSaveGuard(const Tensor& value, const CodedTensor& coded) {
  if ((!coded.codes.defined() && !coded.codebook.defined()) || !wanted(value)) return;
  MINIDL_CHECK(
      !coded.codes.defined() || (coded.codes.sizes() == value.sizes() &&
                                 coded.codes.memory_format() == value.memory_format() && coded.codebook.defined()),
      "CodedSaveGuard: codes ", shape_str(coded.codes.sizes()), " do not match the value ", shape_str(value.sizes()),
      " in shape or layout, or have no code book");
  autograd::SavedTensorHooks h;
  // pack holds `value` (a handle: the guard's scope only); unpack, which every saved tensor keeps, holds nothing
  h.pack = [value, coded](const Tensor& t, const autograd::SaveInfo&) -> std::any {
    if (same_view(t, value)) {
      if (coded.codes.defined()) return coded;
      if (auto c = encode(t, coded.codebook)) return *c;
    }
    return t;
  };
  h.unpack = [](const std::any& payload) -> Tensor {
    if (const auto* c = std::any_cast<CodedTensor>(&payload)) return c->decode();
    return std::any_cast<const Tensor&>(payload);
  };
  guard_.emplace(std::move(h));
}

}  // namespace minidl::quant
