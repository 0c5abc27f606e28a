// ONNX export of ResNets (see onnx_export.h): walks the model in forward order and writes each module as its
// ONNX op, with the quantizer patterns of onnx_quant_nodes.cpp in front of every quantized conv / gemm.
#include "quant/onnx/onnx_export.h"

#include <cstdio>
#include <fstream>
#include <limits>
#include <typeinfo>

#include "autograd/grad_mode.h"
#include "nn/modules/activation.h"
#include "nn/modules/conv.h"
#include "nn/modules/linear.h"
#include "nn/modules/pooling.h"
#include "quant/onnx/onnx_graph.h"
#include "quant/onnx/onnx_quant_nodes.h"

namespace minidl::quant {

bool onnx_export_available() { return true; }

namespace {

using onnx_export::GraphBuilder;

std::vector<float> host_floats(const Tensor& t) { return t.to(DType::f32).contiguous().to_vector<float>(); }
std::vector<int64_t> dims_of(const Tensor& t) { return {t.sizes().begin(), t.sizes().end()}; }

class Exporter {
 public:
  Exporter(onnx::GraphProto* graph, OnnxExportReport& report) : g_(graph), report_(report) {}

  std::string resnet(nn::ResNet& m, const std::string& x) {
    std::string y = relu(bn(*m.bn1, "bn1", conv(m.conv1, "conv1", x)), "relu");
    if (m.maxpool) y = maxpool(*m.maxpool, "maxpool", y);
    for (size_t i = 0; i < m.layers.size(); ++i) {
      const auto blocks = m.layers[i]->children();
      for (size_t b = 0; b < blocks.size(); ++b) {
        auto* blk = dynamic_cast<nn::BasicBlock*>(blocks[b].get());
        const std::string name = "layer" + std::to_string(i + 1) + "." + std::to_string(b);
        MINIDL_CHECK(blk, "onnx export: ", name, " is a ", blocks[b]->type_name(), ", expected a BasicBlock");
        y = block(*blk, name, y);
      }
    }
    const auto* pool = dynamic_cast<const nn::AdaptiveAvgPool2d*>(m.avgpool.get());
    MINIDL_CHECK(pool && pool->out_h == 1 && pool->out_w == 1,
                 "onnx export: avgpool must be AdaptiveAvgPool2d(1) (global average pooling)");
    y = g_.node("GlobalAveragePool", {y}, "avgpool")->output(0);
    auto* flat = g_.node("Flatten", {y}, "flatten");
    GraphBuilder::attr(flat, "axis", int64_t{1});
    return linear(m.fc, "fc", flat->output(0));
  }

 private:
  std::string block(nn::BasicBlock& b, const std::string& name, const std::string& x) {
    const nn::Module* act = b.relu.get();
    MINIDL_CHECK(act && typeid(*act) == typeid(nn::ReLU), "onnx export: ", name, ".relu is not a ReLU");
    std::string out = relu(bn(*b.bn1, name + ".bn1", conv(b.conv1, name + ".conv1", x)), name + ".relu");
    out = bn(*b.bn2, name + ".bn2", conv(b.conv2, name + ".conv2", out));
    std::string identity = x;
    if (b.downsample) {
      const auto ds = b.downsample->children();
      const auto* dbn = ds.size() == 2 ? dynamic_cast<const nn::BatchNorm2d*>(ds[1].get()) : nullptr;
      MINIDL_CHECK(dbn, "onnx export: ", name, ".downsample must be (conv, BatchNorm2d)");
      identity = bn(*dbn, name + ".downsample.1", conv(ds[0], name + ".downsample.0", x));
    } else if (b.pad_shortcut) {
      identity = pad_shortcut(b, name + ".shortcut", x);
    }
    return relu(g_.node("Add", {out, identity}, name + ".add")->output(0), name + ".relu_out");
  }

  // Option A: every stride-th pixel (Slice with steps), then zero channels before and after (Pad).
  std::string pad_shortcut(const nn::BasicBlock& b, const std::string& name, const std::string& x) {
    std::string y = x;
    if (b.stride != 1) {
      const int64_t big = std::numeric_limits<int64_t>::max();
      y = g_.node("Slice",
                  {x, g_.int64s(name + ".starts", {0, 0}, {2}), g_.int64s(name + ".ends", {big, big}, {2}),
                   g_.int64s(name + ".axes", {2, 3}, {2}), g_.int64s(name + ".steps", {b.stride, b.stride}, {2})},
                  name + ".subsample")
              ->output(0);
    }
    const int64_t extra = b.planes - b.in_planes, front = extra / 2, back = extra - front;
    return g_.node("Pad", {y, g_.int64s(name + ".pads", {0, front, 0, 0, 0, back, 0, 0}, {8})}, name + ".pad")
        ->output(0);
  }

  std::string conv(const nn::ModulePtr& m, const std::string& name, const std::string& x) {
    std::string xin = x, w;
    Tensor bias;
    int64_t stride = 1, pad = 0;
    if (auto* qc = dynamic_cast<QuantConv2d*>(m.get())) {
      NoGradGuard no_grad;
      xin = onnx_export::emit_activation(g_, name, x, qc->spec, qc->act_alpha, qc->act_levels, "NCHW", report_);
      w = onnx_export::emit_weight(g_, name, qc->weight, *qc->weight_quant, qc->quantized_weight(), report_);
      bias = qc->bias;
      stride = qc->geometry.stride;
      pad = qc->geometry.padding;
      kernel_ = qc->geometry.kernel;
    } else if (auto* c = dynamic_cast<nn::Conv2d*>(m.get())) {
      MINIDL_CHECK(c->options.groups == 1 && c->options.dilation == 1 && c->options.kernel_h == c->options.kernel_w,
                   "onnx export: ", name, ": only square, ungrouped, undilated convolutions are supported");
      w = g_.floats(name + ".weight", host_floats(c->weight), dims_of(c->weight));
      bias = c->bias;
      stride = c->options.stride;
      pad = c->options.padding;
      kernel_ = c->options.kernel_h;
    } else {
      MINIDL_FAIL("onnx export: ", name, " is a ", m ? m->type_name() : "null module",
                  ", expected Conv2d or QuantConv2d");
    }
    std::vector<std::string> inputs{xin, w};
    if (bias.defined()) inputs.push_back(g_.floats(name + ".bias", host_floats(bias), dims_of(bias)));
    auto* n = g_.node("Conv", inputs, name);
    GraphBuilder::attr(n, "kernel_shape", std::vector<int64_t>{kernel_, kernel_});
    GraphBuilder::attr(n, "strides", std::vector<int64_t>{stride, stride});
    GraphBuilder::attr(n, "pads", std::vector<int64_t>{pad, pad, pad, pad});
    return n->output(0);
  }

  std::string linear(const nn::ModulePtr& m, const std::string& name, const std::string& x) {
    std::string xin = x, w;
    Tensor bias;
    if (auto* ql = dynamic_cast<QuantLinear*>(m.get())) {
      NoGradGuard no_grad;
      xin = onnx_export::emit_activation(g_, name, x, ql->spec, ql->act_alpha, ql->act_levels, "NC", report_);
      w = onnx_export::emit_weight(g_, name, ql->weight, *ql->weight_quant, ql->quantized_weight(), report_);
      bias = ql->bias;
    } else if (auto* l = dynamic_cast<nn::Linear*>(m.get())) {
      w = g_.floats(name + ".weight", host_floats(l->weight), dims_of(l->weight));
      bias = l->bias;
    } else {
      MINIDL_FAIL("onnx export: ", name, " is a ", m ? m->type_name() : "null module",
                  ", expected Linear or QuantLinear");
    }
    std::vector<std::string> inputs{xin, w};
    if (bias.defined()) inputs.push_back(g_.floats(name + ".bias", host_floats(bias), dims_of(bias)));
    auto* n = g_.node("Gemm", inputs, name);
    GraphBuilder::attr(n, "transB", int64_t{1});  // y = x W^T + b, W stored (out, in) as in PyTorch
    return n->output(0);
  }

  // Eval-mode batch norm with the running statistics (kept as a node, not folded: see onnx_export.h).
  std::string bn(const nn::BatchNorm2d& b, const std::string& name, const std::string& x) {
    MINIDL_CHECK(b.running_mean.defined() && b.running_var.defined(), "onnx export: ", name,
                 " has no running statistics (track_running_stats off)");
    const int64_t c = b.num_features;
    const std::vector<float> gamma = b.weight.defined() ? host_floats(b.weight) : std::vector<float>(c, 1.0f);
    const std::vector<float> beta = b.bias.defined() ? host_floats(b.bias) : std::vector<float>(c, 0.0f);
    auto* n = g_.node("BatchNormalization",
                      {x, g_.floats(name + ".weight", gamma, {c}), g_.floats(name + ".bias", beta, {c}),
                       g_.floats(name + ".running_mean", host_floats(b.running_mean), {c}),
                       g_.floats(name + ".running_var", host_floats(b.running_var), {c})},
                      name);
    GraphBuilder::attr(n, "epsilon", static_cast<float>(b.options.eps));
    return n->output(0);
  }

  std::string maxpool(const nn::Module& m, const std::string& name, const std::string& x) {
    const auto* p = dynamic_cast<const nn::MaxPool2d*>(&m);
    MINIDL_CHECK(p, "onnx export: ", name, " is a ", m.type_name(), ", expected MaxPool2d");
    auto* n = g_.node("MaxPool", {x}, name);
    GraphBuilder::attr(n, "kernel_shape", std::vector<int64_t>{p->params.kernel_h, p->params.kernel_w});
    GraphBuilder::attr(n, "strides", std::vector<int64_t>{p->params.stride_h, p->params.stride_w});
    GraphBuilder::attr(n, "pads",
                       std::vector<int64_t>{p->params.pad_h, p->params.pad_w, p->params.pad_h, p->params.pad_w});
    return n->output(0);
  }

  std::string relu(const std::string& x, const std::string& name) { return g_.node("Relu", {x}, name)->output(0); }

  GraphBuilder g_;
  OnnxExportReport& report_;
  int64_t kernel_ = 3;
};

void set_dims(onnx::ValueInfoProto* v, const std::vector<std::string>& params, const std::vector<int64_t>& values) {
  v->mutable_type()->mutable_tensor_type()->set_elem_type(onnx::TensorProto::FLOAT);
  auto* shape = v->mutable_type()->mutable_tensor_type()->mutable_shape();
  for (size_t i = 0; i < params.size(); ++i) {
    auto* d = shape->add_dim();
    if (params[i].empty())
      d->set_dim_value(values[i]);
    else
      d->set_dim_param(params[i]);
  }
}

}  // namespace

OnnxExportReport export_onnx(nn::ResNet& model, const std::string& path, const OnnxExportOptions& options) {
  MINIDL_CHECK(options.opset >= 13, "onnx export: opset ", options.opset,
               " is too old (QuantizeLinear -> Clip on int8 needs opset 13)");
  for (const auto& [name, p] : model.named_parameters()) {
    MINIDL_CHECK(p.device().is_cpu(), "onnx export: parameter ", name, " lives on ", p.device().str(),
                 "; move the model to the CPU first");
  }
  OnnxExportReport report;
  onnx::ModelProto mp;
  mp.set_ir_version(onnx::IR_VERSION);
  mp.set_producer_name("minidl");
  mp.set_producer_version("0.1");
  mp.set_doc_string("minidl ResNet, eval mode; quantizer patterns: docs/export.md");
  onnx::GraphProto* graph = mp.mutable_graph();
  graph->set_name(model.kind == nn::ResNet::Kind::Cifar ? "resnet_cifar" : "resnet_imagenet");

  Exporter ex(graph, report);
  const std::string out = ex.resnet(model, "input");
  for (auto& n : *graph->mutable_node()) {
    for (auto& o : *n.mutable_output()) {
      if (o == out) o = "logits";
    }
  }
  set_dims(graph->add_input(), {"N", "", "H", "W"}, {0, model.config.in_channels, 0, 0});
  graph->mutable_input(0)->set_name("input");
  set_dims(graph->add_output(), {"N", ""}, {0, model.config.num_classes});
  graph->mutable_output(0)->set_name("logits");
  report.nodes = graph->node_size();

  auto* std_opset = mp.add_opset_import();
  std_opset->set_domain("");
  std_opset->set_version(options.opset);
  if (!report.standard_only()) {
    auto* q = mp.add_opset_import();
    q->set_domain(onnx_export::kQonnxDomain);
    q->set_version(1);
  }
  auto meta = options.metadata;
  meta["minidl.weight_tie_fixes"] = std::to_string(report.weight_tie_fixes);
  meta["minidl.qcdq_patterns"] = std::to_string(report.qcdq_patterns);
  meta["minidl.qonnx_nodes"] = std::to_string(report.qonnx_nodes);
  for (size_t i = 0; i < report.notes.size(); ++i) meta["minidl.note" + std::to_string(i)] = report.notes[i];
  for (const auto& [k, v] : meta) {
    auto* p = mp.add_metadata_props();
    p->set_key(k);
    p->set_value(v);
  }

  // Atomic: a temporary next to the target, renamed over it once complete.
  const std::string tmp = path + ".tmp";
  {
    std::ofstream f(tmp, std::ios::binary | std::ios::trunc);
    MINIDL_CHECK(f.good(), "onnx export: cannot open ", tmp, " for writing");
    MINIDL_CHECK(mp.SerializeToOstream(&f), "onnx export: serializing the model to ", tmp, " failed");
    f.close();
    MINIDL_CHECK(f.good(), "onnx export: writing ", tmp, " failed");
  }
  MINIDL_CHECK(std::rename(tmp.c_str(), path.c_str()) == 0, "onnx export: cannot rename ", tmp, " to ", path);
  return report;
}

}  // namespace minidl::quant
