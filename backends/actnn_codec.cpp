// The reference ActNN codec and 1-bit mask packing (Backend's defaults, the oracle of the conformance rows): one
// element at a time, straight from the definitions in actnn_codec.h. Host memory only; f32 and f64 inputs (f64 is
// rounded to f32 first: the codec's arithmetic is f32 on every backend).
#include <algorithm>
#include <cmath>

#include "backends/backend.h"

namespace minidl {
namespace {

/// The tensor must be dense with the samples outermost (contiguous or channels-last).
void check_dense(const char* op, const char* what, const Tensor& t) {
  MINIDL_CHECK(t.device().is_cpu(), op, ": ", what, " must be a host tensor for this backend, got ", t.device().str());
  MINIDL_CHECK(t.is_contiguous() || t.is_channels_last(), op, ": ", what, " ", shape_str(t.sizes()),
               " must be contiguous or channels-last (dense, samples outermost)");
}

void check_bytes(const char* op, const char* what, const Tensor& t, int64_t n) {
  MINIDL_CHECK(t.dtype() == DType::u8 && t.is_contiguous() && t.numel() == n, op, ": ", what,
               " must be a contiguous u8 tensor of ", n, " bytes, got ", dtype_name(t.dtype()), " ",
               shape_str(t.sizes()));
}

void check_codec_shape(const char* op, const Tensor& x, const ActnnCodec& c) {
  c.validate(op);
  const int64_t n = x.dim() == 0 ? 1 : x.size(0);
  MINIDL_CHECK(n == c.n && n * c.f == x.numel(), op, ": tensor ", shape_str(x.sizes()), " is not ", c.n, " samples of ",
               c.f, " elements");
}

}  // namespace

void Backend::actnn_quantize(Tensor& codes, Tensor& meta, const Tensor& x, const ActnnCodec& c) {
  const char* op = "actnn_quantize";
  check_dense(op, "x", x);
  check_codec_shape(op, x, c);
  check_bytes(op, "codes", codes, c.code_bytes());
  check_bytes(op, "meta", meta, c.meta_bytes());
  const Tensor xl = x.is_contiguous() ? x : x.contiguous();  // the codec's order is the logical one
  dispatch_floating(x.dtype(), op, [&](auto tag) {
    using T = decltype(tag);
    const T* xp = xl.data<T>();
    const int64_t fp = c.padded(), ng = c.groups_per_sample();
    auto elem = [&](int64_t n, int64_t j) { return j < c.f ? static_cast<float>(xp[n * c.f + j]) : 0.0f; };
    float gmn = 0.0f, gmx = 0.0f;  // the one range when !per_group
    if (!c.per_group) {
      bool first = true;
      for (int64_t n = 0; n < c.n; ++n)
        for (int64_t j = 0; j < fp; ++j) {
          const float v = elem(n, j);
          gmn = first ? v : std::min(gmn, v);
          gmx = first ? v : std::max(gmx, v);
          first = false;
        }
    }
    const std::vector<int64_t> off = c.sample_offsets();
    uint8_t* cp = codes.data<uint8_t>();
    uint8_t* mp = meta.data<uint8_t>();
    for (int64_t n = 0; n < c.n; ++n) {
      const int bits = c.bits[static_cast<size_t>(n)];
      for (int64_t g = 0; g < ng; ++g) {
        float mn = gmn, mx = gmx;
        if (c.per_group) {
          mn = mx = elem(n, g * c.group);
          for (int64_t j = g * c.group; j < (g + 1) * c.group; ++j) {
            mn = std::min(mn, elem(n, j));
            mx = std::max(mx, elem(n, j));
          }
        }
        float lo, hi;
        actnn_range(mn, mx, c.bf16_meta, lo, hi);
        actnn_store_meta(mp, n * ng + g, c.bf16_meta, lo, hi);
        const float s = actnn_scale(lo, hi, bits);
        for (int64_t j = g * c.group; j < (g + 1) * c.group; j += 8) {
          uint32_t q[8];
          for (int i = 0; i < 8; ++i) {
            const int64_t jj = j + i;
            const uint64_t e = static_cast<uint64_t>(n * fp + jj);
            q[i] = jj < c.f ? actnn_code(elem(n, jj), lo, s, actnn_uniform(c.key, e), bits) : 0u;
          }
          actnn_pack8(cp + off[static_cast<size_t>(n)] + j / 8 * bits, q, bits);
        }
      }
    }
  });
}

void Backend::actnn_dequantize(Tensor& out, const Tensor& codes, const Tensor& meta, const ActnnCodec& c) {
  const char* op = "actnn_dequantize";
  check_dense(op, "out", out);
  check_codec_shape(op, out, c);
  check_bytes(op, "codes", codes, c.code_bytes());
  check_bytes(op, "meta", meta, c.meta_bytes());
  // Decoded in logical order; a channels-last out gets a copy.
  Tensor ol = out.is_contiguous() ? out : empty(out.sizes(), TensorOptions().dtype(out.dtype()).device(out.device()));
  dispatch_floating(out.dtype(), op, [&](auto tag) {
    using T = decltype(tag);
    T* op_ = ol.data<T>();
    const int64_t ng = c.groups_per_sample();
    const std::vector<int64_t> off = c.sample_offsets();
    const uint8_t* cp = codes.data<uint8_t>();
    const uint8_t* mp = meta.data<uint8_t>();
    for (int64_t n = 0; n < c.n; ++n) {
      const int bits = c.bits[static_cast<size_t>(n)];
      for (int64_t g = 0; g < ng; ++g) {
        float lo, hi;
        actnn_load_meta(mp, n * ng + g, c.bf16_meta, lo, hi);
        const float step = actnn_step(lo, hi, bits);
        for (int64_t j = g * c.group; j < (g + 1) * c.group && j < c.f; j += 8) {
          uint32_t q[8];
          actnn_unpack8(q, cp + off[static_cast<size_t>(n)] + j / 8 * bits, bits);
          for (int i = 0; i < 8 && j + i < c.f; ++i)
            op_[n * c.f + j + i] = static_cast<T>(actnn_decode(lo, q[i], step));
        }
      }
    }
  });
  if (!ol.is_same(out)) out.copy_(ol);
}

void Backend::pack_mask_bits(Tensor& bits, const Tensor& x) {
  const char* op = "pack_mask_bits";
  check_dense(op, "x", x);
  const int64_t n = x.numel();
  check_bytes(op, "bits", bits, (n + 7) / 8);
  uint8_t* bp = bits.data<uint8_t>();
  std::fill(bp, bp + (n + 7) / 8, uint8_t{0});
  dispatch_dtype(x.dtype(), [&](auto tag) {
    using T = decltype(tag);
    const T* xp = x.data<T>();
    for (int64_t i = 0; i < n; ++i)
      if (xp[i] != T(0)) bp[i / 8] = static_cast<uint8_t>(bp[i / 8] | (1u << (i % 8)));
  });
}

void Backend::unpack_mask_bits(Tensor& out, const Tensor& bits) {
  const char* op = "unpack_mask_bits";
  check_dense(op, "out", out);
  const int64_t n = out.numel();
  check_bytes(op, "bits", bits, (n + 7) / 8);
  const uint8_t* bp = bits.data<uint8_t>();
  dispatch_dtype(out.dtype(), [&](auto tag) {
    using T = decltype(tag);
    T* o = out.data<T>();
    for (int64_t i = 0; i < n; ++i) o[i] = static_cast<T>((bp[i / 8] >> (i % 8)) & 1u);
  });
}

// Composed of two virtual primitives, so a device backend with unpack_mask_bits and binary runs it as is.
void Backend::mask_from_bits_(Tensor& g, const Tensor& bits) {
  const char* op = "mask_from_bits_";
  MINIDL_CHECK(g.is_contiguous() || g.is_channels_last(), op, ": g ", shape_str(g.sizes()),
               " must be contiguous or channels-last (dense, samples outermost)");
  MINIDL_CHECK(bits.device() == g.device(), op, ": bits live on ", bits.device().str(), " and g on ", g.device().str());
  MINIDL_CHECK(is_floating(g.dtype()), op, ": g must be floating, got ", dtype_name(g.dtype()));
  check_bytes(op, "bits", bits, (g.numel() + 7) / 8);
  Tensor y = empty(g.sizes(), TensorOptions().dtype(g.dtype()).device(g.device()), g.memory_format());
  unpack_mask_bits(y, bits);
  binary(BinaryOp::ReluBackward, g, g, y);
}

}  // namespace minidl
