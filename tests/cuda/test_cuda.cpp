// The CUDA device slot: device detection, the clear error on a machine without a GPU, supports(), and (when a
// device is present) host<->device round trips of any layout and dtype, fill, run-to-run determinism of the
// reducing kernels and the caching allocator. The kernels' values are checked by the conformance suite (cuda
// rows with a GPU, cuda-host rows always).
// Without a device (or without CUDA in the build) those cases report skipped to CTest (tests/test_skip.h).
#include <doctest/doctest.h>

#include <algorithm>
#include <string>
#include <vector>

#include "backends/backend.h"
#include "backends/cuda/cuda_device.h"
#include "nn/modules/batch_norm.h"
#include "tensor/allocator.h"
#include "tensor/tensor.h"
#include "test_skip.h"

using namespace minidl;

namespace {

bool has_cuda_backend() {
  const auto names = available_backends();
  return std::find(names.begin(), names.end(), "cuda") != names.end();
}

const Device kGpu = Device::cuda(0);

}  // namespace

TEST_CASE("cuda: device detection and the message without a device") {
  const int n = cuda_device_count();
  const std::string status = cuda_device_status();
#ifdef MINIDL_HAVE_CUDA
  CHECK(has_cuda_backend());
  // the count and the probe's message agree: n devices are named as such; none comes with the driver's reason
  if (n > 0) {
    CHECK(status.find("cudaGetDeviceCount: " + std::to_string(n) + " device") != std::string::npos);
  } else {
    CHECK(n == 0);
    const bool reason =
        status.find("cudaError") != std::string::npos || status.find(": 0 devices") != std::string::npos;
    CHECK_MESSAGE(reason, "no device, and no reason in '", status, "'");
  }
  if (n == 0) {
    // A CUDA build on a machine without a GPU says so clearly instead of crashing.
    CHECK_THROWS_WITH_AS(empty({4}, TensorOptions().device(kGpu)),
                         doctest::Contains("CUDA: no device present (cudaGetDeviceCount"), Error);
    CHECK_THROWS_WITH_AS(ones({2}).to(kGpu), doctest::Contains("CUDA: no device present"), Error);
  }
#else
  CHECK(n == 0);
  CHECK(!has_cuda_backend());
  CHECK(status == "this minidl was built without CUDA");
  CHECK_THROWS_WITH_AS(empty({4}, TensorOptions().device(kGpu)), doctest::Contains("built without"), Error);
#endif
}

TEST_CASE("cuda: supports() is truthful, conv and matmul say they are not implemented yet") {
  if (!has_cuda_backend()) {
    MINIDL_SKIP("minidl built without CUDA");
  }
  Backend& b = backend_by_name("cuda");
  CHECK(b.name() == "cuda");
  CHECK(b.supports(OpKind::Fill, DType::u8));
  CHECK(b.supports(OpKind::Copy, DType::f64));
  // the own kernels: every float primitive but conv and matmul (those are cuDNN's and cuBLAS's)
  for (OpKind k :
       {OpKind::Unary, OpKind::Binary, OpKind::Reduce, OpKind::BatchNorm, OpKind::MaxPool2d, OpKind::AvgPool2d,
        OpKind::AdaptiveAvgPool2d, OpKind::LogSoftmax, OpKind::NllLoss, OpKind::Quantize}) {
    CHECK_MESSAGE(b.supports(k, DType::f32), op_name(k));
    CHECK_MESSAGE(b.supports(k, DType::f64), op_name(k));
    CHECK_MESSAGE(!b.supports(k, DType::i32), op_name(k));
  }
  Tensor t;
  OpStatePtr state;
  if (!b.supports(OpKind::Matmul, DType::f32)) {
    CHECK_THROWS_WITH_AS(b.matmul(t, t, t, false, false), "cuda backend: matmul is not implemented yet", Error);
  }
  if (!b.supports(OpKind::Conv2d, DType::f32)) {
    CHECK_THROWS_WITH_AS(b.conv2d_forward(t, t, t, t, {}, state), "cuda backend: conv2d_forward is not implemented yet",
                         Error);
  }
  // host tensors handed to a device kernel: a clear error naming the backend, never a silent host run
  Tensor h = ones({3});
  Tensor ho = empty({3});
  CHECK_THROWS_WITH_AS(b.unary(UnaryOp::Exp, ho, h, {}), doctest::Contains("cuda exp: out lives on cpu"), Error);
  CHECK_THROWS_WITH_AS(b.unary(UnaryOp::Exp, t, t, {}), "cuda exp: out is an undefined tensor", Error);
}

TEST_CASE("cuda: host <-> device round trips for every dtype") {
  if (cuda_device_count() == 0) MINIDL_SKIP("no CUDA device (" << cuda_device_status() << ")");
  Tensor f32 = from_vector(std::vector<float>{1.5f, -2.0f, 3.25f, 0.0f, 7.0f, -0.5f}, {2, 3});
  Tensor g = f32.to(kGpu);
  CHECK(g.device() == kGpu);
  CHECK(g.sizes() == Shape{2, 3});
  CHECK(g.to(kCPU).to_vector<float>() == f32.to_vector<float>());
  CHECK(g.to_vector<float>() == f32.to_vector<float>());  // to_vector copies from the device itself

  Tensor f64 = from_vector(std::vector<double>{3.141592653589793, -1e300}, {2}, TensorOptions().dtype(DType::f64));
  CHECK(f64.to(kGpu).to(kCPU).to_vector<double>() == f64.to_vector<double>());
  Tensor i32 = from_vector(std::vector<int32_t>{-7, 0, 2147483647}, {3}, TensorOptions().dtype(DType::i32));
  CHECK(i32.to(kGpu).to(kCPU).to_vector<int32_t>() == i32.to_vector<int32_t>());
  Tensor i64 = from_vector(std::vector<int64_t>{int64_t{1} << 40, -3}, {2}, TensorOptions().dtype(DType::i64));
  CHECK(i64.to(kGpu).to(kCPU).to_vector<int64_t>() == i64.to_vector<int64_t>());
  Tensor u8 = from_vector(std::vector<uint8_t>{0, 128, 255}, {3}, TensorOptions().dtype(DType::u8));
  CHECK(u8.to(kGpu).to(kCPU).to_vector<uint8_t>() == u8.to_vector<uint8_t>());

  // A strided host view is made contiguous on the host before the transfer: (2,3) read as its transpose.
  Tensor tr = f32.as_strided({3, 2}, {1, 3}, 0);
  CHECK(tr.to(kGpu).to(kCPU).to_vector<float>() == std::vector<float>{1.5f, 0.0f, -2.0f, 7.0f, 3.25f, -0.5f});

  // Empty and 0-dim tensors.
  CHECK(empty({0, 5}).to(kGpu).to(kCPU).sizes() == Shape{0, 5});
  CHECK(scalar_tensor(2.5).to(kGpu).item<float>() == 2.5f);

  // Device-to-device copy_.
  Tensor d = empty({2, 3}, TensorOptions().device(kGpu));
  d.copy_(g);
  CHECK(d.to_vector<float>() == f32.to_vector<float>());
  CHECK(d.storage() != g.storage());
}

TEST_CASE("cuda: fill on the device for every dtype") {
  if (cuda_device_count() == 0) MINIDL_SKIP("no CUDA device (" << cuda_device_status() << ")");
  const int64_t n = 2000000;  // 7813 blocks of 256: more than the 4096-block cap, so the grid-stride loop runs
  CHECK(full({n}, 2.5, TensorOptions().device(kGpu)).to_vector<float>() == std::vector<float>(n, 2.5f));
  CHECK(full({3}, -1.25, TensorOptions().dtype(DType::f64).device(kGpu)).to_vector<double>() ==
        std::vector<double>(3, -1.25));
  CHECK(full({4}, -9, TensorOptions().dtype(DType::i32).device(kGpu)).to_vector<int32_t>() ==
        std::vector<int32_t>(4, -9));
  CHECK(full({2}, 1e12, TensorOptions().dtype(DType::i64).device(kGpu)).to_vector<int64_t>() ==
        std::vector<int64_t>(2, 1000000000000));
  CHECK(full({5}, 200, TensorOptions().dtype(DType::u8).device(kGpu)).to_vector<uint8_t>() ==
        std::vector<uint8_t>(5, 200));
  Tensor z = zeros({2, 2}, TensorOptions().device(kGpu));
  CHECK(z.to_vector<float>() == std::vector<float>(4, 0.0f));
  const uint64_t v0 = z.version();
  z.fill_(4.0);
  CHECK(z.version() == v0 + 1);
  CHECK(z.to_vector<float>() == std::vector<float>(4, 4.0f));
  z.mul_(2.0);  // a unary kernel on the device
  CHECK(z.to_vector<float>() == std::vector<float>(4, 8.0f));
}

TEST_CASE("cuda: the caching allocator reuses freed blocks and reports its bytes") {
  if (cuda_device_count() == 0) MINIDL_SKIP("no CUDA device (" << cuda_device_status() << ")");
  Allocator& a = allocator_for(kGpu);
  a.empty_cache();
  const AllocatorStats before = a.stats();
  void* p = nullptr;
  {
    Tensor t = empty({1000}, TensorOptions().device(kGpu));
    p = t.storage()->data();
    CHECK(p != nullptr);
    CHECK(a.stats().live_bytes >= before.live_bytes + 4000);
  }
  CHECK(a.stats().live_bytes == before.live_bytes);
  CHECK(a.stats().reserved_bytes > before.reserved_bytes);  // the block is cached, not returned
  Tensor again = empty({1000}, TensorOptions().device(kGpu));
  CHECK(again.storage()->data() == p);
  a.empty_cache();
  CHECK(a.stats().reserved_bytes == a.stats().live_bytes);
}

TEST_CASE("cuda: strided host <-> device copies with casts (staging through contiguous buffers)") {
  if (cuda_device_count() == 0) MINIDL_SKIP("no CUDA device (" << cuda_device_status() << ")");
  Backend& b = backend_by_name("cuda");
  Backend& r = backend_by_name("ref");
  std::vector<double> v(4 * 5 * 3);
  for (size_t i = 0; i < v.size(); ++i) v[i] = static_cast<double>(i) * 0.75 - 20.0;
  const Tensor base = from_vector(v, {4, 5, 3}, TensorOptions().dtype(DType::f64));
  const Tensor src = base.permute({2, 0, 1});  // (3, 4, 5), not contiguous
  // host f64 permuted -> device f32, every other element of a wider buffer
  Tensor wide = full({3, 4, 11}, -1.0, TensorOptions().device(kGpu));
  Tensor dview = wide.as_strided({3, 4, 5}, {44, 11, 2}, 1);
  b.copy(dview, src);
  Tensor want32 = empty({3, 4, 5});
  r.copy(want32, src);
  Tensor back32 = empty({3, 4, 5});
  b.copy(back32, dview);
  CHECK(back32.to_vector<float>() == want32.to_vector<float>());
  CHECK(wide.to_vector<float>()[0] == -1.0f);  // the gaps of the view stay untouched
  // device strided f32 -> host strided i32 (truncation through the cast)
  Tensor hbase = full({3, 4, 10}, 99.0, TensorOptions().dtype(DType::i32));
  Tensor hview = hbase.as_strided({3, 4, 5}, {40, 10, 2}, 0);
  b.copy(hview, dview);
  Tensor want_i = empty({3, 4, 5}, TensorOptions().dtype(DType::i32));
  r.copy(want_i, want32);
  Tensor got_i = empty({3, 4, 5}, TensorOptions().dtype(DType::i32));
  r.copy(got_i, hview);
  CHECK(got_i.to_vector<int32_t>() == want_i.to_vector<int32_t>());
  CHECK(hbase.to_vector<int32_t>()[1] == 99);
}

TEST_CASE("cuda: the reducing kernels give the same bits run after run") {
  if (cuda_device_count() == 0) MINIDL_SKIP("no CUDA device (" << cuda_device_status() << ")");
  Backend& b = backend_by_name("cuda");
  std::vector<float> v(1 << 20);
  for (size_t i = 0; i < v.size(); ++i) v[i] = static_cast<float>((i * 2654435761u) % 1000003) * 1e-3f - 500.0f;
  const Tensor x = from_vector(v, {16, 64, 32, 32}).to(kGpu);
  const TensorOptions g = TensorOptions().device(kGpu);
  const std::vector<int64_t> all = {0, 1, 2, 3}, nhw = {0, 2, 3};
  Tensor s1 = empty({1, 1, 1, 1}, g), s2 = empty({1, 1, 1, 1}, g);
  b.reduce(ReduceOp::Sum, s1, x, all);
  b.reduce(ReduceOp::Sum, s2, x, all);
  CHECK(s1.item<float>() == s2.item<float>());
  Tensor c1 = empty({1, 64, 1, 1}, g), c2 = empty({1, 64, 1, 1}, g);
  b.reduce(ReduceOp::Mean, c1, x, nhw);
  b.reduce(ReduceOp::Mean, c2, x, nhw);
  CHECK(c1.to_vector<float>() == c2.to_vector<float>());
  Tensor y1 = empty(x.sizes(), g), y2 = empty(x.sizes(), g);
  Tensor m1 = empty({64}, g), m2 = empty({64}, g), i1 = empty({64}, g), i2 = empty({64}, g);
  OpStatePtr st;
  b.batch_norm_forward_training(y1, m1, i1, x, Tensor(), Tensor(), 1e-5, st);
  b.batch_norm_forward_training(y2, m2, i2, x, Tensor(), Tensor(), 1e-5, st);
  CHECK(m1.to_vector<float>() == m2.to_vector<float>());
  CHECK(i1.to_vector<float>() == i2.to_vector<float>());
  CHECK(y1.to_vector<float>() == y2.to_vector<float>());
}

TEST_CASE("cuda: BatchNorm2d counts num_batches_tracked on the device, also after a load and a move") {
  if (cuda_device_count() == 0) MINIDL_SKIP("no CUDA device (" << cuda_device_status() << ")");
  nn::BatchNorm2d bn(3);
  bn.to(kGpu);
  bn.train();
  const Tensor x = randn({4, 3, 5, 5}).to(kGpu);
  for (int i = 0; i < 3; ++i) bn.forward(x);
  CHECK(bn.num_batches_tracked.item<int64_t>() == 3);
  // a load between steps: the device value is read again, not the host mirror's
  TensorMap state = bn.state_dict();
  state["num_batches_tracked"] = full({}, 100, TensorOptions().dtype(DType::i64));
  bn.load_state_dict(state);
  bn.forward_relu(x);
  CHECK(bn.num_batches_tracked.item<int64_t>() == 101);
  // to the host and back: counted there in place, then on the device from the moved value
  bn.to(kCPU);
  bn.forward(x.to(kCPU));
  CHECK(bn.num_batches_tracked.item<int64_t>() == 102);
  bn.to(kGpu);
  bn.forward_add_relu(x, x);
  CHECK(bn.num_batches_tracked.item<int64_t>() == 103);
  // eval does not count
  bn.eval();
  bn.forward(x);
  CHECK(bn.num_batches_tracked.item<int64_t>() == 103);
}
