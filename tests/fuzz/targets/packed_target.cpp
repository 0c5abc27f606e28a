// Fuzz target: a packed model file (quant::save_packed's safetensors layout, docs/deploy.md) read by
// quant::load_packed, which validates and prepares every layer, then run: float32 forward on one and on three
// 8x8 images (the integer kernels, per-pass and whole-batch), and the float64 forward. A file the loader
// accepted must give logits of shape (N, num_classes); what the logits hold is the file's business (garbage
// weights may give any numbers), so only the shape and the agreement of the per-image and batched runs are checked.
#include <cstring>

#include "fuzz_targets.h"
#include "quant/packed/packed_resnet.h"
#include "tensor/tensor.h"

namespace minidl::fuzz {

Outcome fuzz_packed(const uint8_t* data, size_t size) {
  Outcome out;
  quant::PackedResNet model;
  const std::string path = scratch_file("packed", data, size);
  attempt(out, [&] { model = quant::load_packed(path); });
  if (out.accepted == 0) return out;
  FUZZ_REQUIRE(model.in_channels > 0 && model.num_classes > 0, "a loaded model with ", model.in_channels,
               " input channels and ", model.num_classes, " classes");
  // Inputs: counting patterns, deterministic, so a finding replays.
  auto input = [&](int64_t n, DType dtype) {
    Tensor x = empty({n, model.in_channels, 8, 8}, TensorOptions().dtype(DType::f64));
    double* p = x.data<double>();
    for (int64_t i = 0; i < x.numel(); ++i) p[i] = static_cast<double>(i % 17) / 8.0 - 1.0;
    return x.to(dtype);
  };
  Tensor one, three;
  attempt(out, [&] {
    one = model.forward(input(1, DType::f32));
    FUZZ_REQUIRE(one.dim() == 2 && one.size(0) == 1 && one.size(1) == model.num_classes, "logits of shape ",
                 shape_str(one.sizes()), " for one image and ", model.num_classes, " classes");
  });
  attempt(out, [&] {
    model.images_per_pass = 1;  // three passes of one image, then the whole batch: the same bits (header comment)
    three = model.forward(input(3, DType::f32)).contiguous();
    model.images_per_pass = 0;
    const Tensor whole = model.forward(input(3, DType::f32)).contiguous();
    FUZZ_REQUIRE(three.sizes() == whole.sizes() && three.size(0) == 3 && three.size(1) == model.num_classes,
                 "logits of shape ", shape_str(three.sizes()), " and ", shape_str(whole.sizes()), " for three images");
    FUZZ_REQUIRE(std::memcmp(three.raw_data(), whole.raw_data(), whole.nbytes()) == 0,
                 "per-pass and whole-batch logits differ");
  });
  attempt(out, [&] {
    const Tensor y = model.forward_f64(input(1, DType::f64));
    FUZZ_REQUIRE(y.dim() == 2 && y.size(0) == 1 && y.size(1) == model.num_classes, "float64 logits of shape ",
                 shape_str(y.sizes()));
  });
  return out;
}

}  // namespace minidl::fuzz
