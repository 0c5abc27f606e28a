// --export FORMAT OUT: write a trained checkpoint (-e/--evaluate or --resume) in a deployment format. onnx:
// quant::export_onnx (docs/export.md); --export-samples N also writes OUT.samples.safetensors with the first N
// test images (`input`, as the evaluation feeds them) and minidl's `logits` and `labels`, so an outside
// runtime can be compared with minidl on real data.
#pragma once

#include "config.h"

namespace cifar_resnet20 {

int run_export(const Config& flags);

}  // namespace cifar_resnet20
