// What backward keeps live under activation compression. A packer restores each saved activation as a fresh
// tensor; backward then works in the buffers it owns alone (batch norm masks its gradient in place and writes gx
// over the restored x, conv2d frees its restored input before allocating gx, the engine adds a residual's second
// gradient into the first). These tests pin that this changes no bit (the same step with every restored tensor
// also held elsewhere, which forces the allocating paths, gives identical gradients) and that the working set
// is what it should be: at most three first-stage activations besides the tape, the input and the gradients.
#include <doctest/doctest.h>

#include <map>
#include <memory>
#include <vector>

#include "autograd/ops.h"
#include "autograd/saved_tensor.h"
#include "backends/backend.h"
#include "nn/models/resnet.h"
#include "quant/actnn/packer.h"
#include "quant/levels.h"
#include "tensor/allocator.h"
#include "tensor/generator.h"

using namespace minidl;
using namespace minidl::quant::actnn;

namespace {

using Grads = std::map<std::string, std::vector<float>>;

// One forward + backward of `model` under `hooks`; the parameters' gradients.
Grads step_grads(nn::ResNet& model, const Tensor& x, const Tensor& y, const autograd::SavedTensorHooks& hooks) {
  for (auto& [name, p] : model.named_parameters()) p.set_grad({});
  {
    autograd::SavedTensorHooksGuard guard(hooks);
    cross_entropy(model(x), y).backward();
  }
  Grads g;
  for (auto& [name, p] : model.named_parameters()) g[name] = p.grad().to_vector<float>();
  return g;
}

// The packer's hooks, with every restored tensor also kept in `held` until the step ends: no backward then owns a
// restored tensor alone, so each op takes the path that allocates its outputs.
autograd::SavedTensorHooks holding(const Packer& packer, std::shared_ptr<std::vector<Tensor>> held) {
  autograd::SavedTensorHooks h = packer.hooks();
  auto unpack = h.unpack;
  h.unpack = [unpack, held](const std::any& a) {
    Tensor t = unpack(a);
    held->push_back(t);
    return t;
  };
  return h;
}

}  // namespace

TEST_CASE("actnn working set: backward in its own buffers gives the same bits as the allocating paths") {
  manual_seed(7);
  auto model = nn::resnet20();
  model->train();
  manual_seed(1);
  const Tensor x = randn({8, 3, 16, 16});
  const Tensor y = from_vector<int64_t>({0, 1, 2, 3, 4, 5, 6, 7}, {8}, TensorOptions().dtype(DType::i64));
  for (Level l : {Level::L1, Level::L2, Level::L3}) {
    const std::string lname = level_name(l);
    CAPTURE(lname);
    Packer lean(Config::for_level(l)), plain(Config::for_level(l));  // same seed: the same codes
    auto held = std::make_shared<std::vector<Tensor>>();
    const Grads a = step_grads(*model, x, y, lean.hooks());
    const Grads b = step_grads(*model, x, y, holding(plain, held));
    CHECK(!held->empty());
    for (const auto& [name, g] : b) CHECK_MESSAGE(a.at(name) == g, name);
  }
}

TEST_CASE(
    "batch norm + add + ReLU writes y over a handed-over x under a pack hook: the same bits, x untouched "
    "when the caller keeps it") {
  manual_seed(5);
  const Tensor x0 = randn({4, 16, 6, 6}).set_requires_grad(), r0 = randn({4, 16, 6, 6}).set_requires_grad();
  const Tensor w = (randn({16}) * 0.5 + 1.0).set_requires_grad(), b = randn({16}).set_requires_grad();
  const Tensor gy = randn({4, 16, 6, 6});
  struct Out {
    std::vector<float> y, gx, gr, gw, gb, kept;
    bool over_x = false;
  };
  // keep: the caller holds x (a copy of the handle) through the call; else it moves its only handle in
  auto run = [&](bool with_hooks, bool keep) {
    Packer packer(Config::for_level(Level::L3));  // BN input at 2 bits: not stored as is
    for (const Tensor& t : {x0, r0, w, b}) t.set_grad({});
    Out o;
    std::unique_ptr<autograd::SavedTensorHooksGuard> guard;
    if (with_hooks) guard = std::make_unique<autograd::SavedTensorHooksGuard>(packer.hooks());
    Tensor x = x0 * 1.5;  // a non-leaf only this test holds, as conv2's output in a block
    Tensor kept = keep ? x : Tensor();
    const void* x_mem = x.raw_data();
    const Tensor y = batch_norm_add_relu(std::move(x), r0 * 1.0, Tensor(), Tensor(), w, b, true);
    o.over_x = y.raw_data() == x_mem;
    o.y = y.to_vector<float>();
    (y * gy).sum().backward();
    o.gx = x0.grad().to_vector<float>();
    o.gr = r0.grad().to_vector<float>();
    o.gw = w.grad().to_vector<float>();
    o.gb = b.grad().to_vector<float>();
    if (keep) o.kept = kept.to_vector<float>();
    return o;
  };
  const bool cpu_backend = backend_for(x0).name() == "cpu";
  const Out moved = run(true, false), kept = run(true, true), plain = run(false, false);
  CHECK(moved.over_x == cpu_backend);  // the cpu backend writes in place; others allocate
  CHECK_FALSE(kept.over_x);
  CHECK_FALSE(plain.over_x);                          // no hook: x is saved as is, so it must stay
  CHECK(kept.kept == (x0 * 1.5).to_vector<float>());  // the caller's x is untouched
  CHECK(moved.y == kept.y);
  CHECK(moved.y == plain.y);  // forward is exact under the packer
  CHECK(moved.gx == kept.gx);
  CHECK(moved.gr == kept.gr);
  CHECK(moved.gw == kept.gw);
  CHECK(moved.gb == kept.gb);
  CHECK(moved.gr == plain.gr);  // the residual's gradient is gy masked by the (exact) ReLU mask
}

TEST_CASE("Tensor::take_buffer moves the memory to a new storage, and refuses a shared tensor") {
  Tensor a = from_vector<float>({1, 2, 3, 4}, {2, 2});
  const void* p = a.raw_data();
  const uint64_t v = a.version();
  {
    Tensor view = a.detach();
    CHECK_THROWS_WITH_AS(a.take_buffer(), doctest::Contains("other owners"), Error);
  }
  const Tensor b = a.take_buffer();
  CHECK(b.raw_data() == p);
  CHECK(b.to_vector<float>() == std::vector<float>{1, 2, 3, 4});
  CHECK(b.storage() != a.storage());
  CHECK(b.version() == 0);
  CHECK(a.storage()->nbytes() == 0);  // a no longer owns memory
  CHECK(a.version() == v);            // what saved a sees no write
}

TEST_CASE("autograd engine: a second gradient is summed into the first in place only when nothing shares it") {
  const Tensor w = from_vector<float>({1, 2, 3, 4}, {4});
  Tensor x = from_vector<float>({0.5f, -1, 2, 3}, {4}).set_requires_grad();
  {
    // h receives 3 then 5 (the first is owned by the engine alone: summed in place)
    Tensor h = x * w;
    ((h * 3.0).sum() + (h * 5.0).sum()).backward();
    CHECK(x.grad().to_vector<float>() == std::vector<float>{8, 16, 24, 32});
  }
  x.set_grad({});
  {
    // add's backward hands the same gradient to both operands, then mul adds 3: the shared one is not written
    Tensor h = x * w;
    ((h + h).sum() + (h * 3.0).sum()).backward();
    CHECK(x.grad().to_vector<float>() == std::vector<float>{5, 10, 15, 20});
  }
}

TEST_CASE("actnn working set: at L3 a ResNet-20 step needs at most three activations besides what it keeps") {
  manual_seed(3);
  auto model = nn::resnet20();
  model->train();
  const int64_t n = 32;
  manual_seed(4);
  const Tensor x = randn({n, 3, 32, 32});
  const Tensor y = zeros({n}, TensorOptions().dtype(DType::i64));
  Packer packer(Config::for_level(Level::L3));
  step_grads(*model, x, y, packer.hooks());  // the gradients exist from here on, as in training
  Allocator& al = allocator_for(kCPU);
  const size_t before = al.stats().live_bytes;
  al.reset_peak();
  packer.reset_peak();
  step_grads(*model, x, y, packer.hooks());
  const size_t step_peak = al.stats().peak_bytes - before;
  const size_t unit = static_cast<size_t>(n) * 16 * 32 * 32 * 4;  // one first-stage activation
  const size_t tape = packer.peak().total();
  MESSAGE("L3 step peak above the model: ", step_peak, " B = ", static_cast<double>(step_peak) / unit,
          " activations; tape peak ", tape, " B = ", static_cast<double>(tape) / unit);
  // 3 activations (forward: the block input, the op's input and output; backward: the residual's gradient, the
  // conv's gy and its restored x, then its gx), the part of the compressed tape still live when the first stage
  // runs (the first stage saves a little over half of the tape: tape / 2 plus the margin), and a margin of a
  // quarter activation for per-channel vectors, the loss and the small later-stage tensors.
  // (Before the buffers were reused and the forward's temporaries released this was about 6 activations.)
  CHECK(step_peak <= 3 * unit + tape / 2 + unit / 4);
}
