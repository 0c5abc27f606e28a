// minidl_run_op_program: runs one random op program of tests/tools/diff_vs_torch.py (which runs the same program
// in PyTorch and compares) and writes what it computed.
//   minidl_run_op_program PROGRAM.json RESULT.json
// PROGRAM: {"dtype": "float32"|"float64",
//           "leaves": [{"shape": [...], "values": [...], "requires_grad": bool}, ...],
//           "nodes": [{"op": NAME, "in": [ids], ...attributes}, ...],
//           "loss": [{"id": id, "weights": [...]}, ...],
//           "hooks": "none"|"identity"|"mask_bits"}   (optional: saved_tensor_modes.h)
// Ids number the leaves first, then the nodes. The loss is sum over its entries of sum(value(id) * weights), and
// one backward pass of it gives the leaves their gradients.
// RESULT: {"values": [[...] per node], "shapes": [[...] per node], "grads": [[...] or null per leaf],
//          "leaves_after": [[...] per leaf]} (batch norm updates its running statistics in place), or
//         {"error": message} when minidl throws (with "node": the node's index among the nodes when an op
//         threw), which the script reports as a failure: it generates only programs PyTorch accepts.
// The backend is MINIDL_BACKEND's (ref or cpu). The quantization ops (quant_vs_torch.py's) are in
// quant_op_table.h.
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "program_io.h"
#include "quant_op_table.h"
#include "saved_tensor_modes.h"

using namespace minidl;
using json = nlohmann::json;
using program_io::make;
using program_io::values_of;

namespace {

Shape shape_of(const json& j) { return j.get<std::vector<int64_t>>(); }

Tensor leaf(const json& j, DType dt) {
  Tensor t = make(j.at("values").get<std::vector<double>>(), shape_of(j.at("shape")), dt);
  if (j.value("requires_grad", false)) t.set_requires_grad(true);
  return t;
}

int64_t i64(const json& node, const char* key, int64_t fallback) { return node.value(key, fallback); }

Conv2dParams conv_params(const json& n) {
  Conv2dParams p;
  p.stride_h = i64(n, "stride_h", 1);
  p.stride_w = i64(n, "stride_w", 1);
  p.pad_h = i64(n, "pad_h", 0);
  p.pad_w = i64(n, "pad_w", 0);
  p.dilation_h = i64(n, "dilation_h", 1);
  p.dilation_w = i64(n, "dilation_w", 1);
  p.groups = i64(n, "groups", 1);
  return p;
}

Pool2dParams pool_params(const json& n) {
  Pool2dParams p;
  p.kernel_h = i64(n, "kernel_h", 1);
  p.kernel_w = i64(n, "kernel_w", 1);
  p.stride_h = i64(n, "stride_h", 1);
  p.stride_w = i64(n, "stride_w", 1);
  p.pad_h = i64(n, "pad_h", 0);
  p.pad_w = i64(n, "pad_w", 0);
  p.count_include_pad = n.value("count_include_pad", true);
  return p;
}

std::vector<int64_t> dims_of(const json& n) { return n.value("dims", std::vector<int64_t>{}); }

using Op = std::function<Tensor(const std::vector<Tensor>&, const json&)>;

// One entry per op name of diff_vs_torch.py's OPS table, with the same attribute names.
const std::map<std::string, Op>& ops() {
  static const std::map<std::string, Op> table = {
      {"add", [](auto& a, auto&) { return add(a[0], a[1]); }},
      {"sub", [](auto& a, auto&) { return sub(a[0], a[1]); }},
      {"mul", [](auto& a, auto&) { return mul(a[0], a[1]); }},
      {"div", [](auto& a, auto&) { return div(a[0], a[1]); }},
      {"pow_tensor", [](auto& a, auto&) { return pow(a[0], a[1]); }},
      {"add_scalar", [](auto& a, auto& n) { return a[0] + n.at("s").template get<double>(); }},
      {"rsub_scalar", [](auto& a, auto& n) { return n.at("s").template get<double>() - a[0]; }},
      {"mul_scalar", [](auto& a, auto& n) { return a[0] * n.at("s").template get<double>(); }},
      {"div_scalar", [](auto& a, auto& n) { return a[0] / n.at("s").template get<double>(); }},
      {"rdiv_scalar", [](auto& a, auto& n) { return n.at("s").template get<double>() / a[0]; }},
      {"neg", [](auto& a, auto&) { return neg(a[0]); }},
      {"exp", [](auto& a, auto&) { return exp(a[0]); }},
      {"log", [](auto& a, auto&) { return log(a[0]); }},
      {"sqrt", [](auto& a, auto&) { return sqrt(a[0]); }},
      {"abs", [](auto& a, auto&) { return abs(a[0]); }},
      {"relu", [](auto& a, auto&) { return relu(a[0]); }},
      {"sigmoid", [](auto& a, auto&) { return sigmoid(a[0]); }},
      {"tanh", [](auto& a, auto&) { return tanh(a[0]); }},
      {"pow", [](auto& a, auto& n) { return pow(a[0], n.at("e").template get<double>()); }},
      {"clamp",
       [](auto& a, auto& n) {
         return clamp(a[0], n.at("lo").template get<double>(), n.at("hi").template get<double>());
       }},
      {"sum", [](auto& a, auto& n) { return sum(a[0], dims_of(n), n.value("keepdim", false)); }},
      {"mean", [](auto& a, auto& n) { return mean(a[0], dims_of(n), n.value("keepdim", false)); }},
      {"amax", [](auto& a, auto& n) { return max(a[0], dims_of(n), n.value("keepdim", false)); }},
      {"matmul", [](auto& a, auto&) { return matmul(a[0], a[1]); }},
      {"linear", [](auto& a, auto&) { return linear(a[0], a[1], a.size() > 2 ? a[2] : Tensor()); }},
      {"cat", [](auto& a, auto& n) { return cat(a, n.at("dim").template get<int64_t>()); }},
      {"reshape", [](auto& a, auto& n) { return a[0].reshape(shape_of(n.at("shape"))); }},
      {"view", [](auto& a, auto& n) { return a[0].view(shape_of(n.at("shape"))); }},
      {"permute", [](auto& a, auto& n) { return a[0].permute(n.at("dims").template get<std::vector<int64_t>>()); }},
      {"transpose",
       [](auto& a, auto& n) {
         return a[0].transpose(n.at("d0").template get<int64_t>(), n.at("d1").template get<int64_t>());
       }},
      {"narrow",
       [](auto& a, auto& n) {
         return a[0].narrow(n.at("dim").template get<int64_t>(), n.at("start").template get<int64_t>(),
                            n.at("length").template get<int64_t>());
       }},
      {"slice",
       [](auto& a, auto& n) {
         return a[0].slice(n.at("dim").template get<int64_t>(), n.at("start").template get<int64_t>(),
                           n.at("end").template get<int64_t>(), n.at("step").template get<int64_t>());
       }},
      {"select",
       [](auto& a, auto& n) {
         return a[0].select(n.at("dim").template get<int64_t>(), n.at("index").template get<int64_t>());
       }},
      {"expand", [](auto& a, auto& n) { return a[0].expand(shape_of(n.at("shape"))); }},
      {"squeeze", [](auto& a, auto& n) { return a[0].squeeze(n.at("dim").template get<int64_t>()); }},
      {"unsqueeze", [](auto& a, auto& n) { return a[0].unsqueeze(n.at("dim").template get<int64_t>()); }},
      {"flatten",
       [](auto& a, auto& n) {
         return a[0].flatten(n.at("start").template get<int64_t>(), n.at("end").template get<int64_t>());
       }},
      {"contiguous", [](auto& a, auto&) { return a[0].contiguous(); }},
      {"clone", [](auto& a, auto&) { return a[0].clone(); }},
      {"log_softmax", [](auto& a, auto& n) { return log_softmax(a[0], n.at("dim").template get<int64_t>()); }},
      {"cross_entropy", [](auto& a, auto& n) { return cross_entropy(a[0], a[1], n.value("label_smoothing", 0.0)); }},
      {"nll_loss", [](auto& a, auto& n) { return nll_loss(a[0], a[1], n.value("label_smoothing", 0.0)); }},
      {"mse_loss", [](auto& a, auto&) { return mse_loss(a[0], a[1]); }},
      {"conv2d", [](auto& a, auto& n) { return conv2d(a[0], a[1], a.size() > 2 ? a[2] : Tensor(), conv_params(n)); }},
      {"max_pool2d", [](auto& a, auto& n) { return max_pool2d(a[0], pool_params(n)); }},
      {"avg_pool2d", [](auto& a, auto& n) { return avg_pool2d(a[0], pool_params(n)); }},
      {"adaptive_avg_pool2d",
       [](auto& a, auto& n) {
         return adaptive_avg_pool2d(a[0], n.at("out_h").template get<int64_t>(), n.at("out_w").template get<int64_t>());
       }},
      {"batch_norm",
       [](auto& a, auto& n) {
         // in: x, running_mean, running_var, then weight and bias when "affine"
         const bool affine = a.size() > 3;
         return batch_norm(a[0], a[1], a[2], affine ? a[3] : Tensor(), affine ? a[4] : Tensor(),
                           n.at("training").template get<bool>(), n.value("momentum", 0.1), n.value("eps", 1e-5));
       }},
      {"batch_norm_relu",
       [](auto& a, auto& n) {
         const bool affine = a.size() > 3;
         return batch_norm_relu(a[0], a[1], a[2], affine ? a[3] : Tensor(), affine ? a[4] : Tensor(),
                                n.at("training").template get<bool>(), n.value("momentum", 0.1), n.value("eps", 1e-5));
       }},
      {"batch_norm_add_relu",
       [](auto& a, auto& n) {
         // in: x, residual, running_mean, running_var, then weight and bias when "affine"
         const bool affine = a.size() > 4;
         return batch_norm_add_relu(a[0], a[1], a[2], a[3], affine ? a[4] : Tensor(), affine ? a[5] : Tensor(),
                                    n.at("training").template get<bool>(), n.value("momentum", 0.1),
                                    n.value("eps", 1e-5));
       }},
      {"conv2d_bn_inference",
       [](auto& a, auto& n) {
         // in: x, w, running_mean, running_var, bn weight, bn bias, then the residual when "residual"; an
         // inference op: no gradient flows through it (PyTorch side: under no_grad)
         NoGradGuard no_grad;
         std::vector<Tensor> d;
         for (const Tensor& t : a) d.push_back(t.detach());
         return conv2d_bn_inference(d[0], d[1], Tensor(), d[2], d[3], d[4], d[5], n.value("eps", 1e-5), conv_params(n),
                                    d.size() > 6 ? d[6] : Tensor(), n.value("relu", false));
       }},
      {"dropout",
       [](auto& a, auto& n) {
         return dropout(a[0], n.at("p").template get<double>(), n.at("training").template get<bool>());
       }},
  };
  return table;
}

json run(const json& program) {
  const DType dt = program_io::dtype_of(program);
  std::vector<Tensor> v;
  for (const json& l : program.at("leaves")) {
    // integer leaves (class targets) keep their dtype
    if (l.value("int64", false)) {
      v.push_back(from_vector(l.at("values").get<std::vector<int64_t>>(), shape_of(l.at("shape"))));
    } else {
      v.push_back(leaf(l, dt));
    }
  }
  const size_t n_leaves = v.size();
  const program_io::SavedTensorMode hooks(program.value("hooks", std::string("none")));
  json values = json::array(), shapes = json::array();
  for (const json& n : program.at("nodes")) {
    const std::string name = n.at("op").get<std::string>();
    const Op* op = nullptr;
    for (const auto* table : {&ops(), &program_io::quant_ops()})
      if (const auto it = table->find(name); it != table->end()) op = &it->second;
    MINIDL_CHECK(op != nullptr, "unknown op ", name);
    std::vector<Tensor> in;
    for (int64_t id : n.at("in").get<std::vector<int64_t>>()) in.push_back(v.at(static_cast<size_t>(id)));
    Tensor out;
    try {
      out = (*op)(in, n);
    } catch (const Error& e) {
      return {{"error", e.what()}, {"node", values.size()}};  // which node threw
    }
    values.push_back(values_of(out));
    shapes.push_back(out.sizes());
    v.push_back(out);
  }
  Tensor loss;
  for (const json& term : program.at("loss")) {
    const Tensor& t = v.at(term.at("id").get<size_t>());
    const Tensor w = make(term.at("weights").get<std::vector<double>>(), t.sizes(), dt);
    const Tensor s = sum(mul(t, w));
    loss = loss.defined() ? add(loss, s) : s;
  }
  if (loss.defined() && loss.requires_grad()) loss.backward();
  json grads = json::array(), after = json::array();
  for (size_t i = 0; i < n_leaves; ++i) {
    const Tensor g = v[i].requires_grad() ? v[i].grad() : Tensor();
    grads.push_back(g.defined() ? values_of(g) : json(nullptr));
    after.push_back(values_of(v[i]));
  }
  return {{"values", values}, {"shapes", shapes}, {"grads", grads}, {"leaves_after", after}};
}

}  // namespace

int main(int argc, char** argv) { return program_io::run_main(argc, argv, run); }
