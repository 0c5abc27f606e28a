// Built instead of onnx_export.cpp when CMake found no ONNX / protobuf development files: the API exists and
// says why it cannot write (scripts/setup installs libonnx-dev and libprotobuf-dev).
#include "quant/onnx/onnx_export.h"

namespace minidl::quant {

bool onnx_export_available() { return false; }

OnnxExportReport export_onnx(nn::ResNet&, const std::string& path, const OnnxExportOptions&) {
  MINIDL_FAIL(
      "onnx export: this minidl was built without ONNX (install libonnx-dev and libprotobuf-dev, "
      "scripts/setup does, and reconfigure); cannot write ",
      path);
}

}  // namespace minidl::quant
