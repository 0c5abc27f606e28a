// See dnnl_workarounds.h.
#include "backends/cpu/dnnl_workarounds.h"

namespace minidl::cpu {

bool axis_has_padding_only_output(int64_t in, int64_t kernel, int64_t stride, int64_t pad, int64_t dilation) {
  const int64_t out = conv_out_size(in, kernel, stride, pad, dilation);
  for (int64_t o = 0; o < out; ++o) {
    bool touches_input = false;
    for (int64_t k = 0; k < kernel && !touches_input; ++k) {
      const int64_t i = o * stride - pad + k * dilation;
      touches_input = i >= 0 && i < in;
    }
    if (!touches_input) return true;
  }
  return false;
}

bool conv_sum_postop_unsafe(const Shape& x, const Shape& w, const Conv2dParams& p) {
  return axis_has_padding_only_output(x[2], w[2], p.stride_h, p.pad_h, p.dilation_h) ||
         axis_has_padding_only_output(x[3], w[3], p.stride_w, p.pad_w, p.dilation_w);
}

}  // namespace minidl::cpu
