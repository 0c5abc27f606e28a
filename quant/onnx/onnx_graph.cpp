// GraphBuilder (see onnx_graph.h).
#include "quant/onnx/onnx_graph.h"

#include "core/error.h"

namespace minidl::quant::onnx_export {

std::string GraphBuilder::fresh(const std::string& base) {
  std::string name = base;
  for (int k = 2; used_.count(name); ++k) name = base + "_" + std::to_string(k);
  used_.insert(name);
  return name;
}

std::string GraphBuilder::floats(const std::string& name, const std::vector<float>& values,
                                 const std::vector<int64_t>& dims) {
  int64_t n = 1;
  for (int64_t d : dims) n *= d;
  MINIDL_CHECK(n == static_cast<int64_t>(values.size()), "onnx export: initializer '", name, "' has ", values.size(),
               " values for ", n, " elements");
  onnx::TensorProto* t = g_->add_initializer();
  t->set_name(fresh(name));
  t->set_data_type(onnx::TensorProto::FLOAT);
  for (int64_t d : dims) t->add_dims(d);
  // raw_data is the little-endian bytes, the compact form every reader accepts.
  t->set_raw_data(std::string(reinterpret_cast<const char*>(values.data()), values.size() * sizeof(float)));
  return t->name();
}

std::string GraphBuilder::int64s(const std::string& name, const std::vector<int64_t>& values,
                                 const std::vector<int64_t>& dims) {
  onnx::TensorProto* t = g_->add_initializer();
  t->set_name(fresh(name));
  t->set_data_type(onnx::TensorProto::INT64);
  for (int64_t d : dims) t->add_dims(d);
  for (int64_t v : values) t->add_int64_data(v);
  return t->name();
}

std::string GraphBuilder::int8_scalar(const std::string& name, int v, bool is_signed) {
  MINIDL_CHECK(is_signed ? (v >= -128 && v <= 127) : (v >= 0 && v <= 255), "onnx export: ", v, " does not fit ",
               is_signed ? "int8" : "uint8", " ('", name, "')");
  onnx::TensorProto* t = g_->add_initializer();
  t->set_name(fresh(name));
  t->set_data_type(is_signed ? onnx::TensorProto::INT8 : onnx::TensorProto::UINT8);
  t->add_int32_data(v);  // int8/uint8 values are stored widened in int32_data
  return t->name();
}

onnx::NodeProto* GraphBuilder::node(const std::string& op, const std::vector<std::string>& inputs,
                                    const std::string& name, const std::string& domain) {
  onnx::NodeProto* n = g_->add_node();
  n->set_op_type(op);
  n->set_name(fresh(name));
  if (!domain.empty()) n->set_domain(domain);
  for (const auto& in : inputs) n->add_input(in);
  n->add_output(fresh(name + ":out"));
  return n;
}

void GraphBuilder::attr(onnx::NodeProto* n, const std::string& key, int64_t v) {
  auto* a = n->add_attribute();
  a->set_name(key);
  a->set_type(onnx::AttributeProto::INT);
  a->set_i(v);
}

void GraphBuilder::attr(onnx::NodeProto* n, const std::string& key, float v) {
  auto* a = n->add_attribute();
  a->set_name(key);
  a->set_type(onnx::AttributeProto::FLOAT);
  a->set_f(v);
}

void GraphBuilder::attr(onnx::NodeProto* n, const std::string& key, const std::string& v) {
  auto* a = n->add_attribute();
  a->set_name(key);
  a->set_type(onnx::AttributeProto::STRING);
  a->set_s(v);
}

void GraphBuilder::attr(onnx::NodeProto* n, const std::string& key, const std::vector<int64_t>& v) {
  auto* a = n->add_attribute();
  a->set_name(key);
  a->set_type(onnx::AttributeProto::INTS);
  for (int64_t x : v) a->add_ints(x);
}

}  // namespace minidl::quant::onnx_export
