// nn::Module: registration order and dotted names, duplicate names, train/eval, to(dtype) keeping handles,
// zero_grad, state_dict contents (incl. BN's int64 num_batches_tracked), load_state_dict round trip and its
// errors (missing, unexpected, shape mismatch naming the key and both shapes), module names seen by forward.
#include <doctest/doctest.h>

#include <string>
#include <vector>

#include "autograd/saved_tensor.h"
#include "nn/nn.h"

using namespace minidl;
using namespace minidl::nn;

namespace {

// A leaf that records the module name active while its forward runs.
struct Probe : Module {
  std::vector<std::string>* log;
  explicit Probe(std::vector<std::string>* l) : Module("Probe"), log(l) {}
  Tensor forward(const Tensor& x) override {
    log->push_back(autograd::ModuleNameGuard::current());
    return x;
  }
};

struct Block : Module {
  std::shared_ptr<Linear> fc;
  std::shared_ptr<BatchNorm2d> bn;
  std::shared_ptr<Probe> probe;
  Tensor scale;
  explicit Block(std::vector<std::string>* log) : Module("Block") {
    scale = register_parameter("scale", ones({1}));
    fc = register_module("fc", std::make_shared<Linear>(3, 2));
    bn = register_module("bn", std::make_shared<BatchNorm2d>(2));
    probe = register_module("probe", std::make_shared<Probe>(log));
    register_buffer("steps", zeros({2}));
  }
  Tensor forward(const Tensor& x) override { return (*probe)(x); }
};

struct Net : Module {
  std::shared_ptr<Sequential> body;
  explicit Net(std::vector<std::string>* log) : Module("Net") {
    auto seq = std::make_shared<Sequential>();
    seq->push_back(std::make_shared<Block>(log)).push_back(std::make_shared<Block>(log));
    body = register_module("body", seq);  // registered after its children were built
  }
  Tensor forward(const Tensor& x) override { return (*body)(x); }
};

std::vector<std::string> keys(const std::vector<std::pair<std::string, Tensor>>& v) {
  std::vector<std::string> out;
  for (auto& [k, t] : v) out.push_back(k);
  return out;
}

}  // namespace

TEST_CASE("named_parameters and named_buffers: dotted names in registration order") {
  std::vector<std::string> log;
  Net net(&log);
  CHECK(keys(net.named_parameters()) ==
        std::vector<std::string>{"body.0.scale", "body.0.fc.weight", "body.0.fc.bias", "body.0.bn.weight",
                                 "body.0.bn.bias", "body.1.scale", "body.1.fc.weight", "body.1.fc.bias",
                                 "body.1.bn.weight", "body.1.bn.bias"});
  CHECK(keys(net.named_buffers()) ==
        std::vector<std::string>{"body.0.steps", "body.0.bn.running_mean", "body.0.bn.running_var",
                                 "body.0.bn.num_batches_tracked", "body.1.steps", "body.1.bn.running_mean",
                                 "body.1.bn.running_var", "body.1.bn.num_batches_tracked"});
  CHECK(net.parameters().size() == 10);
  CHECK(net.num_parameters() == 2 * (1 + 6 + 2 + 2 + 2));
  CHECK(net.named_parameters(false).empty());
  for (auto& p : net.parameters()) CHECK(p.requires_grad());
  auto mods = net.named_modules();
  REQUIRE(mods.size() == 9);
  CHECK(mods[0].first == "body");
  CHECK(mods[2].first == "body.0.fc");
  CHECK(mods[2].second->path() == "body.0.fc");
}

TEST_CASE("operator() names the running module with its dotted path") {
  std::vector<std::string> log;
  auto net = std::make_shared<Net>(&log);
  (*net)(ones({1}));
  CHECK(log == std::vector<std::string>{"body.0.probe", "body.1.probe"});
  CHECK(autograd::ModuleNameGuard::current().empty());
}

TEST_CASE("registration errors") {
  struct Bad : Module {
    Bad() : Module("Bad") {}
    void dup() {
      register_parameter("w", ones({1}));
      register_buffer("w", ones({1}));
    }
    void dotted() { register_parameter("a.b", ones({1})); }
  };
  Bad b;
  CHECK_THROWS_WITH_AS(b.dup(), doctest::Contains("'w': the name is already taken"), Error);
  CHECK_THROWS_WITH_AS(b.dotted(), doctest::Contains("contain no '.'"), Error);
  CHECK_THROWS_WITH_AS(b.parameter("nope"), doctest::Contains("no parameter named 'nope'"), Error);
}

TEST_CASE("apply visits children before parents") {
  std::vector<std::string> log, seen;
  Net net(&log);
  net.apply([&](Module& m) { seen.push_back(m.path().empty() ? m.type_name() : m.path()); });
  CHECK(seen == std::vector<std::string>{"body.0.fc", "body.0.bn", "body.0.probe", "body.0", "body.1.fc", "body.1.bn",
                                         "body.1.probe", "body.1", "body", "Net"});
}

TEST_CASE("train/eval propagate to descendants") {
  std::vector<std::string> log;
  Net net(&log);
  CHECK(net.is_training());
  net.eval();
  for (auto& [n, m] : net.named_modules()) CHECK_FALSE(m->is_training());
  net.train();
  for (auto& [n, m] : net.named_modules()) CHECK(m->is_training());
}

TEST_CASE("to(dtype) converts in place: member handles stay valid, integer buffers keep their dtype") {
  std::vector<std::string> log;
  Net net(&log);
  auto block = std::static_pointer_cast<Block>((*net.body)[0]);
  Tensor w = block->fc->weight;
  auto before = w.to_vector<double>();
  net.to(DType::f64);
  CHECK(block->fc->weight.dtype() == DType::f64);
  CHECK(w.dtype() == DType::f64);
  CHECK(w.to_vector<double>() == before);
  CHECK(block->bn->num_batches_tracked.dtype() == DType::i64);
  CHECK(w.requires_grad());
}

TEST_CASE("zero_grad drops gradients") {
  Linear fc(2, 2);
  fc.weight.set_grad(ones({2, 2}));
  fc.zero_grad();
  CHECK_FALSE(fc.weight.grad().defined());
}

TEST_CASE("state_dict holds parameters and buffers, BN counter is a 0-dim int64") {
  BatchNorm2d bn(3);
  TensorMap sd = bn.state_dict();
  CHECK(sd.size() == 5);
  CHECK(sd.at("num_batches_tracked").dtype() == DType::i64);
  CHECK(sd.at("num_batches_tracked").dim() == 0);
  CHECK(sd.at("running_var").to_vector<float>() == std::vector<float>{1, 1, 1});
  CHECK(sd.at("weight").sizes() == Shape{3});
}

TEST_CASE("load_state_dict round trip between two modules") {
  std::vector<std::string> log;
  Net a(&log), b(&log);
  TensorMap sd = a.state_dict();
  // Make a's state distinctive, including an integer buffer.
  sd.at("body.1.bn.num_batches_tracked").data<int64_t>()[0] = 7;
  sd.at("body.0.steps").data<float>()[1] = 3.5f;
  b.load_state_dict(sd);
  for (auto& [k, t] : b.state_dict()) {
    INFO(k);
    CHECK(t.to_vector<double>() == a.state_dict().at(k).to_vector<double>());
  }
  CHECK(b.state_dict().at("body.1.bn.num_batches_tracked").item<int64_t>() == 7);
  // Handles still point at the module's tensors (values copied, not rebound).
  auto blk = std::static_pointer_cast<Block>((*b.body)[0]);
  CHECK(blk->fc->weight.to_vector<float>() == a.state_dict().at("body.0.fc.weight").to_vector<float>());
}

TEST_CASE("load_state_dict errors name the keys and shapes, a failed load changes nothing") {
  Linear fc(3, 2);
  auto w0 = fc.weight.to_vector<float>();
  TensorMap sd = fc.state_dict();

  TensorMap bad_shape = {{"weight", zeros({2, 4})}, {"bias", zeros({2})}};
  CHECK_THROWS_WITH_AS(fc.load_state_dict(bad_shape),
                       doctest::Contains("size mismatch for 'weight': the checkpoint has shape [2, 4]"), Error);
  CHECK_THROWS_WITH_AS(fc.load_state_dict(bad_shape), doctest::Contains("has shape [2, 3]"), Error);
  CHECK(fc.weight.to_vector<float>() == w0);

  TensorMap missing = {{"weight", zeros({2, 3})}};
  CHECK_THROWS_WITH_AS(fc.load_state_dict(missing), doctest::Contains("missing key(s): 'bias'"), Error);
  CHECK(fc.weight.to_vector<float>() == w0);

  TensorMap extra = sd;
  extra["fc.alpha"] = zeros({1});
  CHECK_THROWS_WITH_AS(fc.load_state_dict(extra), doctest::Contains("unexpected key(s): 'fc.alpha'"), Error);

  LoadResult r = fc.load_state_dict({{"weight", zeros({2, 3})}, {"junk", zeros({1})}}, /*strict=*/false);
  CHECK(r.missing_keys == std::vector<std::string>{"bias"});
  CHECK(r.unexpected_keys == std::vector<std::string>{"junk"});
  CHECK(fc.weight.to_vector<float>() == std::vector<float>(6, 0.0f));
}

TEST_CASE("to_string prints the tree") {
  Sequential s;
  s.push_back(std::make_shared<Conv2d>(3, 16, 3, 1, 1, false)).push_back(std::make_shared<ReLU>());
  const std::string text = to_string(s);
  CHECK(text.find("(0): Conv2d(3, 16, kernel_size=(3, 3), stride=(1, 1), padding=(1, 1), bias=False)") !=
        std::string::npos);
  CHECK(text.find("(1): ReLU()") != std::string::npos);
}
