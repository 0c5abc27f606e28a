// The cuda backend's library paths on a GPU: cuBLAS matmul and cuDNN convolutions against ref (TF32 off, so
// fp32 tolerances are the CPU's), the fused inference conv, deterministic mode repeating bit for bit, the
// optimizers updating parameters and state on the device as the CPU does, and the memory statistics. Without a
// device these cases report skipped; the settings case runs everywhere.
#include <doctest/doctest.h>

#include <array>
#include <cmath>
#include <cstring>
#include <memory>

#include "backends/backend.h"
#include "backends/cuda/cuda_device.h"
#include "backends/cuda_settings.h"
#include "optim/optim.h"
#include "tensor/generator.h"
#include "tensor/tensor.h"
#include "test_skip.h"

using namespace minidl;

namespace {

const Device kGpu = Device::cuda(0);

#define REQUIRE_GPU() \
  if (cuda_device_count() == 0) MINIDL_SKIP("no CUDA device (" << cuda_device_status() << ")")

// max |a - b| / max(1, max |b|) over two host-comparable tensors
double rel_err(const Tensor& got, const Tensor& want) {
  const auto g = got.to(kCPU).to(DType::f64).contiguous().to_vector<double>();
  const auto w = want.to(kCPU).to(DType::f64).contiguous().to_vector<double>();
  REQUIRE(g.size() == w.size());
  double scale = 1, err = 0;
  for (double v : w) scale = std::max(scale, std::abs(v));
  for (size_t i = 0; i < g.size(); ++i) err = std::max(err, std::abs(g[i] - w[i]));
  return err / scale;
}

bool same_bits(const Tensor& a, const Tensor& b) {
  const Tensor ha = a.to(kCPU).contiguous(), hb = b.to(kCPU).contiguous();
  return ha.nbytes() == hb.nbytes() && std::memcmp(ha.raw_data(), hb.raw_data(), ha.nbytes()) == 0;
}

Tensor gpu_empty(const Shape& s) { return empty(s, TensorOptions{}.device(kGpu)); }

// ref's forward, input gradient and weight / bias gradients of one convolution (y, gx, gw, gb)
std::array<Tensor, 4> ref_conv(const Tensor& x, const Tensor& w, const Tensor& bias, const Tensor& gy,
                               const Conv2dParams& p) {
  Backend& ref = backend_by_name("ref");
  OpStatePtr st;
  std::array<Tensor, 4> r{empty(gy.sizes()), empty(x.sizes()), empty(w.sizes()), empty({w.size(0)})};
  ref.conv2d_forward(r[0], x, w, bias, p, st);
  ref.conv2d_backward_data(r[1], gy, w, p, st);
  ref.conv2d_backward_weight(r[2], r[3], gy, x, p, st);
  return r;
}

}  // namespace

TEST_CASE("cuda: settings switches (TF32 off by default, deterministic, benchmark, workspace cap)") {
  if (!std::getenv("MINIDL_CUDA_TF32")) CHECK_FALSE(cuda_allow_tf32());
  set_cuda_allow_tf32(true);
  CHECK(cuda_allow_tf32());
  set_cuda_allow_tf32(false);
  set_cuda_deterministic(true);
  CHECK(cuda_deterministic());
  set_cuda_deterministic(false);
  set_cudnn_benchmark(true);
  CHECK(cudnn_benchmark());
  set_cudnn_benchmark(false);
  const size_t ws = cudnn_workspace_limit();
  set_cudnn_workspace_limit(1 << 20);
  CHECK(cudnn_workspace_limit() == size_t{1} << 20);
  set_cudnn_workspace_limit(ws);
}

TEST_CASE("cuda: cuBLAS matmul matches ref, plain, transposed and batched") {
  REQUIRE_GPU();
  Backend& ref = backend_by_name("ref");
  Backend& gpu = backend_by_name("cuda");
  manual_seed(1);
  for (int ta = 0; ta < 2; ++ta)
    for (int tb = 0; tb < 2; ++tb) {
      Tensor a = randn(ta ? Shape{3, 37, 50} : Shape{3, 50, 37}), b = randn(tb ? Shape{3, 29, 37} : Shape{3, 37, 29});
      Tensor want = empty({3, 50, 29});
      ref.matmul(want, a, b, ta, tb);
      Tensor got = gpu_empty({3, 50, 29});
      gpu.matmul(got, a.to(kGpu), b.to(kGpu), ta, tb);
      CAPTURE(ta);
      CAPTURE(tb);
      CHECK(rel_err(got, want) < 1e-5);
    }
}

TEST_CASE("cuda: cuDNN convolutions match ref, and deterministic mode repeats bit for bit") {
  REQUIRE_GPU();
  Backend& ref = backend_by_name("ref");
  Backend& gpu = backend_by_name("cuda");
  manual_seed(2);
  Conv2dParams p;
  p.stride_h = p.stride_w = 2;
  p.pad_h = p.pad_w = 1;
  Tensor x = randn({4, 8, 15, 15}), w = randn({16, 8, 3, 3}), bias = randn({16});
  const int64_t P = conv_out_size(15, 3, 2, 1);
  Tensor gy = randn({4, 16, P, P});
  OpStatePtr st;
  const auto [y_ref, gx_ref, gw_ref, gb_ref] = ref_conv(x, w, bias, gy, p);
  set_cuda_deterministic(true);
  Tensor gw1;
  for (int rep = 0; rep < 2; ++rep) {
    Tensor y = gpu_empty(y_ref.sizes()), gx = gpu_empty(x.sizes()), gw = gpu_empty(w.sizes()), gb = gpu_empty({16});
    gpu.conv2d_forward(y, x.to(kGpu), w.to(kGpu), bias.to(kGpu), p, st);
    gpu.conv2d_backward_data(gx, gy.to(kGpu), w.to(kGpu), p, st);
    gpu.conv2d_backward_weight(gw, gb, gy.to(kGpu), x.to(kGpu), p, st);
    CHECK(rel_err(y, y_ref) < 1e-5);
    CHECK(rel_err(gx, gx_ref) < 1e-5);
    CHECK(rel_err(gw, gw_ref) < 1e-5);
    CHECK(rel_err(gb, gb_ref) < 1e-5);
    if (rep == 1) CHECK(same_bits(gw, gw1));
    gw1 = gw;
  }
  set_cuda_deterministic(false);
  // fused inference: relu(conv + bias + residual)
  Tensor res = randn(y_ref.sizes()), yi_ref = empty(y_ref.sizes()), yi = gpu_empty(y_ref.sizes());
  ref.conv2d_inference(yi_ref, x, w, bias, p, res, true);
  gpu.conv2d_inference(yi, x.to(kGpu), w.to(kGpu), bias.to(kGpu), p, res.to(kGpu), true);
  CHECK(rel_err(yi, yi_ref) < 1e-5);
}

TEST_CASE("cuda: cuDNN's timed algorithm choice (MINIDL_CUDNN_BENCHMARK) matches ref in both layouts") {
  // cudnnFind* runs every candidate into the real output and workspace before the chosen one runs: its results
  // must equal the heuristics' within float rounding, NCHW and channels-last alike (the layout is part of the key).
  REQUIRE_GPU();
  Backend& gpu = backend_by_name("cuda");
  manual_seed(4);
  Conv2dParams p;
  p.pad_h = p.pad_w = 1;
  const Tensor x = randn({8, 16, 12, 12}), w = randn({24, 16, 3, 3}), bias = randn({24}), gy = randn({8, 24, 12, 12});
  OpStatePtr st;
  const auto [y_ref, gx_ref, gw_ref, gb_ref] = ref_conv(x, w, bias, gy, p);
  set_cudnn_benchmark(true);
  for (bool cl : {false, true}) {
    CAPTURE(cl);
    const MemoryFormat f = cl ? MemoryFormat::ChannelsLast : MemoryFormat::Contiguous;
    auto dev = [&](const Tensor& t) {
      Tensor d = empty(t.sizes(), TensorOptions{}.device(kGpu), f);
      d.copy_(t.to(kGpu));
      return d;
    };
    Tensor y = empty(y_ref.sizes(), TensorOptions{}.device(kGpu), f),
           gx = empty(x.sizes(), TensorOptions{}.device(kGpu), f);
    Tensor gw = gpu_empty(w.sizes()), gb = gpu_empty({24});
    gpu.conv2d_forward(y, dev(x), w.to(kGpu), bias.to(kGpu), p, st);
    gpu.conv2d_backward_data(gx, dev(gy), w.to(kGpu), p, st);
    gpu.conv2d_backward_weight(gw, gb, dev(gy), dev(x), p, st);
    CHECK(rel_err(y, y_ref) < 1e-5);
    CHECK(rel_err(gx, gx_ref) < 1e-5);
    CHECK(rel_err(gw, gw_ref) < 1e-5);
    CHECK(rel_err(gb, gb_ref) < 1e-5);
  }
  set_cudnn_benchmark(false);
}

TEST_CASE("cuda: optimizers update parameters and state on the device as on the CPU") {
  REQUIRE_GPU();
  using OptPtr = std::unique_ptr<optim::Optimizer>;
  auto make = [](int which, std::vector<Tensor> ps) -> OptPtr {
    if (which == 0) {
      optim::SGDOptions o;
      o.lr = 0.1, o.momentum = 0.9, o.nesterov = true, o.weight_decay = 5e-4;
      return std::make_unique<optim::SGD>(ps, o);
    }
    if (which == 1) return std::make_unique<optim::AdamW>(ps);
    optim::HysteresisOptions o;
    o.threshold = 0.02;
    std::vector<optim::ParamGroup> g(1);
    g[0].params = ps;
    return std::make_unique<optim::Hysteresis>(g, o);
  };
  for (int which = 0; which < 3; ++which) {
    manual_seed(3);
    Tensor pc = randn({1000, 33}), pg = pc.to(kGpu);
    pc.set_requires_grad(true);
    pg.set_requires_grad(true);
    OptPtr oc = make(which, {pc}), og = make(which, {pg});
    for (int s = 0; s < 3; ++s) {
      Tensor g = randn(pc.sizes());
      pc.set_grad(g);
      pg.set_grad(g.to(kGpu));
      oc->step();
      og->step();
    }
    CAPTURE(which);
    CHECK(pg.device() == kGpu);
    CHECK(rel_err(pg, pc) < 1e-5);
    for (const auto& [k, t] : og->state(0))
      if (k != "step") CHECK_MESSAGE(t.device() == kGpu, "state ", k, " left the device");
  }
}

TEST_CASE("cuda: memory statistics of the caching allocator") {
  REQUIRE_GPU();
  cuda_reset_peak_memory();
  const AllocatorStats before = cuda_memory_stats();
  {
    Tensor t = gpu_empty({1 << 20});
    const AllocatorStats during = cuda_memory_stats();
    CHECK(during.live_bytes >= before.live_bytes + (4u << 20));
    CHECK(during.peak_bytes >= during.live_bytes);
    CHECK(during.reserved_bytes >= during.live_bytes);
  }
  const AllocatorStats after = cuda_memory_stats();
  CHECK(after.live_bytes == before.live_bytes);
  CHECK(after.peak_bytes >= before.live_bytes + (4u << 20));
  CHECK(!cuda_memory_summary().empty());
}
