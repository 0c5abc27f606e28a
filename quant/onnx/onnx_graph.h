// A thin builder over onnx::GraphProto (Debian's libonnx-dev, generated from onnx-ml.proto): unique names,
// float/integer initializers, nodes with attributes. Internal to quant/onnx (it exposes protobuf types).
#pragma once

#include <onnx/onnx_pb.h>  // defines ONNX_API, then includes onnx-ml.pb.h (ONNX_ML=1)

#include <cstdint>
#include <set>
#include <string>
#include <vector>

namespace minidl::quant::onnx_export {

inline constexpr const char* kQonnxDomain = "qonnx.custom_op.general";

class GraphBuilder {
 public:
  explicit GraphBuilder(onnx::GraphProto* graph) : g_(graph) {}

  /// A name not used before: `base`, or `base_2`, `base_3`, ...
  std::string fresh(const std::string& base);

  std::string floats(const std::string& name, const std::vector<float>& values, const std::vector<int64_t>& dims);
  std::string float_scalar(const std::string& name, float v) { return floats(name, {v}, {}); }
  std::string int64s(const std::string& name, const std::vector<int64_t>& values, const std::vector<int64_t>& dims);
  /// A 0-dim int8 (signed) or uint8 initializer: zero points and Clip bounds of the QCDQ patterns.
  std::string int8_scalar(const std::string& name, int v, bool is_signed);

  /// Adds a node with a fresh output name derived from `name`; returns the node (outputs: output(0)).
  onnx::NodeProto* node(const std::string& op, const std::vector<std::string>& inputs, const std::string& name,
                        const std::string& domain = "");
  int64_t node_count() const { return g_->node_size(); }

  static void attr(onnx::NodeProto* n, const std::string& key, int64_t v);
  static void attr(onnx::NodeProto* n, const std::string& key, float v);
  static void attr(onnx::NodeProto* n, const std::string& key, const std::string& v);
  static void attr(onnx::NodeProto* n, const std::string& key, const std::vector<int64_t>& v);

 private:
  onnx::GraphProto* g_;
  std::set<std::string> used_;
};

}  // namespace minidl::quant::onnx_export
