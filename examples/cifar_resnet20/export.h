// --export FORMAT OUT: write a trained checkpoint (-e/--evaluate or --resume) in a deployment format. onnx:
// quant::export_onnx (docs/export.md); --export-samples N also writes OUT.samples.safetensors with the first N
// test images (`input`, as the evaluation feeds them) and minidl's `logits` and `labels`, so an outside
// runtime can be compared with minidl on real data. packed: quant::pack + save_packed (docs/deploy.md), printing
// the file sizes (fp32 state dict vs packed) and each layer's path.
#pragma once

#include "config.h"

namespace cifar_resnet20 {

int run_export(const Config& flags);
/// --evaluate-packed FILE [-e CKPT]: top-1 of the packed model over the test set; with the checkpoint also the
/// fake-quant model's top-1, the argmax agreement image by image and the largest logit difference.
int run_evaluate_packed(const Config& flags);

}  // namespace cifar_resnet20
