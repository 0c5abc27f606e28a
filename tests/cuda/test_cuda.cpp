// The CUDA device slot: device detection, the clear error on a machine without a GPU, the not-yet-implemented
// primitives, and (when a device is present) host<->device round trips, fill and the caching allocator.
// Without a device (or without CUDA in the build) those cases report skipped to CTest (tests/test_skip.h).
#include <doctest/doctest.h>

#include <algorithm>
#include <string>
#include <vector>

#include "backends/backend.h"
#include "backends/cuda/cuda_device.h"
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

TEST_CASE("cuda: primitives beyond fill and copy say they are not implemented yet") {
  if (!has_cuda_backend()) {
    MINIDL_SKIP("minidl built without CUDA");
  }
  Backend& b = backend_by_name("cuda");
  CHECK(b.name() == "cuda");
  CHECK(b.supports(OpKind::Fill, DType::u8));
  CHECK(b.supports(OpKind::Copy, DType::f64));
  // conv and matmul are cuDNN's and cuBLAS's (test_cuda_libs.cpp)
  CHECK(b.supports(OpKind::Conv2d, DType::f32));
  CHECK(b.supports(OpKind::Matmul, DType::f64));
  Tensor t;
  CHECK_THROWS_WITH_AS(b.unary(UnaryOp::Exp, t, t, {}), doctest::Contains("is not implemented yet"), Error);
  CHECK_THROWS_WITH_AS(b.nll_loss_backward(t, t, t, 0.0), "cuda backend: nll_loss_backward is not implemented yet",
                       Error);
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
  // Ops that are not there yet fail loudly rather than falling back to the host.
  CHECK_THROWS_WITH_AS(z.mul_(2.0), doctest::Contains("cuda backend: unary"), Error);
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
