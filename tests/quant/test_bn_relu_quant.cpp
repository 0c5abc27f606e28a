// quant::batch_norm_relu_quantize / batch_norm_relu_pact (quant/op_bn_relu_quant.cpp) against batch_norm_relu +
// the activation quantizer: a quantized ResNet-20 training step with the fused op (each block's bn1 + ReLU + conv2's
// input quantizer) and with the two ops gives the same loss, gradients, running statistics and counters bit for
// bit, for APoT / PoT / uniform / PACT, both layouts and every ISA level; and the fused op stands aside where it
// does not apply.
#include <doctest/doctest.h>

#include <cstring>
#include <string>

#include "autograd/ops.h"
#include "autograd/profiler.h"
#include "autograd/saved_tensor.h"
#include "backends/cpu/cpu_isa.h"
#include "quant/ops.h"
#include "quant/quant_resnet.h"
#include "tensor/allocator.h"
#include "tensor/generator.h"
#include "test_scopes.h"

using namespace minidl;
using namespace minidl::quant;

namespace {

bool same_bits(const Tensor& a, const Tensor& b) {
  if (a.defined() != b.defined()) return false;
  if (!a.defined()) return true;
  const Tensor ca = a.contiguous(), cb = b.contiguous();
  return ca.dtype() == cb.dtype() && ca.sizes() == cb.sizes() &&
         std::memcmp(ca.raw_data(), cb.raw_data(), ca.nbytes()) == 0;
}

struct FusedScope {
  bool prev = fused_bn_relu_quantize();
  explicit FusedScope(bool on) { set_fused_bn_relu_quantize(on); }
  ~FusedScope() { set_fused_bn_relu_quantize(prev); }
};

struct Step {
  Tensor loss;
  std::vector<std::pair<std::string, Tensor>> grads, buffers;
  int64_t fused_calls = 0;
  size_t peak_bytes = 0;  // the cpu allocator's peak over forward + backward
};

// One training step of `model` on (x, y) with the fusion on or off.
Step train_step(nn::Module& model, const Tensor& x, const Tensor& y, bool fused) {
  FusedScope scope(fused);
  autograd::Profiler::reset();
  Step s;
  Allocator& alloc = allocator_for(kCPU);
  alloc.reset_peak();
  {
    autograd::ProfilerGuard prof;
    s.loss = cross_entropy(model(x), y);
    s.loss.backward();
  }
  s.peak_bytes = alloc.stats().peak_bytes;
  for (const auto& t : autograd::Profiler::report())
    if (t.op == "batch_norm_relu_quantize" && t.phase == "forward") s.fused_calls = t.calls;
  for (auto& [name, p] : model.named_parameters()) s.grads.emplace_back(name, p.grad());
  s.buffers = model.named_buffers();
  return s;
}

}  // namespace

TEST_CASE("batch_norm_relu_quantize: a quantized ResNet-20 step equals the two ops' bit for bit, every ISA level") {
  test::CapGuard guard;
  for (const char* scheme : {"apot", "pot", "uniform", "pact"}) {
    for (Semantics sem : {Semantics::APoT_I, Semantics::APoT_C}) {
      if (std::string(scheme) == "pact" && sem == Semantics::APoT_C) continue;  // PACT has no APoT semantics
      for (bool cl : {true, false}) {
        for (auto cap : {cpu::CpuIsa::Baseline, cpu::CpuIsa::Avx2, cpu::CpuIsa::Avx512}) {
          if (cap > cpu::host_isa()) continue;
          if (!cl && cap != cpu::host_isa()) continue;  // the NCHW runs take the two primitives' path anyway
          INFO(scheme << (sem == Semantics::APoT_C ? " APoT-C" : " APoT-I") << (cl ? ", channels-last" : ", contiguous")
                      << ", level " << cpu::isa_name(cap));
          cpu::set_cpu_isa_cap(cap);
          const QuantConfig cfg = QuantConfig::from_scheme(scheme, 4, 4, sem);
          manual_seed(3);
          auto a = make_quant_resnet_cifar(20, cfg);
          auto b = make_quant_resnet_cifar(20, cfg);
          b->load_state_dict(a->state_dict());
          a->train();
          b->train();
          Tensor x = randn({4, 3, 32, 32});
          if (cl) {
            Tensor t = empty(x.sizes(), TensorOptions{}, MemoryFormat::ChannelsLast);
            t.copy_(x);
            x = t;
          }
          const Tensor y = from_vector(std::vector<int64_t>{1, 7, 3, 0}, {4}, TensorOptions().dtype(DType::i64));
          const Step fused = train_step(*a, x, y, true);
          const Step plain = train_step(*b, x, y, false);
          CHECK(fused.fused_calls == 9);  // one per block (bn1 + ReLU + conv2's quantizer)
          CHECK(plain.fused_calls == 0);
          if (cl && (std::string(scheme) == "pact" || cap >= cpu::CpuIsa::Avx2)) {
            // the one-pass forward keeps no ReLU output: at least the 3 stage-1 blocks' y (4x16x32x32 floats, 256
            // KiB each) fewer bytes at the peak (the end of the forward)
            CHECK(fused.peak_bytes + 3 * (size_t{256} << 10) <= plain.peak_bytes);
          }
          CHECK(same_bits(fused.loss, plain.loss));
          REQUIRE(fused.grads.size() == plain.grads.size());
          for (size_t i = 0; i < fused.grads.size(); ++i) {
            INFO("gradient of " << fused.grads[i].first);
            CHECK(same_bits(fused.grads[i].second, plain.grads[i].second));
          }
          REQUIRE(fused.buffers.size() == plain.buffers.size());
          for (size_t i = 0; i < fused.buffers.size(); ++i) {
            INFO("buffer " << fused.buffers[i].first);
            CHECK(same_bits(fused.buffers[i].second, plain.buffers[i].second));
          }
        }
      }
    }
  }
}

TEST_CASE("batch_norm_relu_quantize stands aside: eval, saved-tensor hooks, switched off, non-ReLU-fed convs") {
  auto fused_calls = [](nn::Module& m, const Tensor& x, bool hooks) {
    autograd::Profiler::reset();
    autograd::ProfilerGuard prof;
    autograd::SavedTensorHooks h;
    h.pack = [](const Tensor& t, const autograd::SaveInfo&) { return std::any(t); };
    h.unpack = [](const std::any& p) { return std::any_cast<Tensor>(p); };
    std::unique_ptr<autograd::SavedTensorHooksGuard> g;
    if (hooks) g = std::make_unique<autograd::SavedTensorHooksGuard>(h);
    m(x);
    int64_t n = 0;
    for (const auto& t : autograd::Profiler::report())
      if (t.op == "batch_norm_relu_quantize") n += t.calls;
    return n;
  };
  manual_seed(5);
  const Tensor x = randn({2, 3, 32, 32});
  auto apot = make_quant_resnet_cifar(20, QuantConfig::apot(4));
  auto pact = make_quant_resnet_cifar(20, QuantConfig::from_scheme("pact", 4, 4));
  apot->train();
  pact->train();
  CHECK(fused_calls(*apot, x, false) == 9);
  CHECK(fused_calls(*pact, x, false) == 9);  // PACT too (batch_norm_relu_pact)
  CHECK(fused_calls(*apot, x, true) == 0);
  {
    FusedScope off(false);
    CHECK(fused_calls(*apot, x, false) == 0);
  }
  apot->eval();
  CHECK(fused_calls(*apot, x, false) == 0);
}
