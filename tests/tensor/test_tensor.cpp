// Tensor core: creation, dtypes, views sharing storage, contiguity, version counter, RNG, printing, allocator.
#include <doctest/doctest.h>

#include <set>
#include <thread>

#include "autograd/grad_mode.h"
#include "tensor/allocator.h"
#include "tensor/generator.h"
#include "tensor/tensor.h"

using namespace minidl;

TEST_CASE("factories make the right shapes, dtypes and values") {
  CHECK(zeros({2, 3}).to_vector<float>() == std::vector<float>(6, 0.0f));
  CHECK(ones({4}, TensorOptions().dtype(DType::i32)).to_vector<int32_t>() == std::vector<int32_t>(4, 1));
  CHECK(full({2}, 2.5, TensorOptions().dtype(DType::f64)).to_vector<double>() == std::vector<double>{2.5, 2.5});
  CHECK(arange(5).to_vector<float>() == std::vector<float>{0, 1, 2, 3, 4});
  CHECK(arange(1.0, 2.0, 0.25).to_vector<double>() == std::vector<double>{1.0, 1.25, 1.5, 1.75});
  Tensor e = empty({3, 0, 2});
  CHECK(e.numel() == 0);
  Tensor s = scalar_tensor(3.0);
  CHECK(s.dim() == 0);
  CHECK(s.item<float>() == 3.0f);
  CHECK(tensor({1, 2, 3, 4}, {2, 2}).sizes() == Shape{2, 2});
  CHECK_THROWS_WITH_AS(tensor({1, 2, 3}, {2, 2}), doctest::Contains("do not fill shape [2, 2]"), Error);
  CHECK(from_vector(std::vector<uint8_t>{1, 255}, {2}, TensorOptions().dtype(DType::u8)).to_vector<int>() ==
        std::vector<int>{1, 255});
}

TEST_CASE("from_vector keeps integers' dtype unless told otherwise, floats default to float32 (torch.tensor's rule)") {
  // before 2026-12-05 integers became float32 by default: labels over 2^24 lost their low bits silently
  const int64_t big = (int64_t{1} << 24) + 1;
  Tensor labels = from_vector<int64_t>({0, big}, {2});
  CHECK(labels.dtype() == DType::i64);
  CHECK(labels.to_vector<int64_t>() == std::vector<int64_t>{0, big});
  CHECK(from_vector<int32_t>({1, 2}, {2}).dtype() == DType::i32);
  CHECK(from_vector<uint8_t>({1, 2}, {2}).dtype() == DType::u8);
  CHECK(from_vector<double>({1.5}, {1}).dtype() == DType::f32);
  CHECK(from_vector<float>({1.5}, {1}).dtype() == DType::f32);
  CHECK(tensor({1.0, 2.0}).dtype() == DType::f32);
  // a dtype given wins, float32 included
  CHECK(from_vector<int64_t>({1, 2}, {2}, TensorOptions().dtype(DType::f32)).dtype() == DType::f32);
  CHECK(from_vector<double>({1.5}, {1}, TensorOptions().dtype(DType::f64)).dtype() == DType::f64);
  CHECK(from_vector<int64_t>({1, 2}, {2}, TensorOptions().device(kCPU)).dtype() == DType::i64);
}

TEST_CASE("dtype casts through to(DType)") {
  Tensor a = tensor({1.7, -2.2, 3.0});
  CHECK(a.to(DType::i64).to_vector<int64_t>() == std::vector<int64_t>{1, -2, 3});
  CHECK(a.to(DType::f64).dtype() == DType::f64);
  CHECK(a.to(DType::f64).to_vector<double>()[0] == doctest::Approx(1.7));
}

TEST_CASE("views share storage and the version counter") {
  Tensor a = arange(12).reshape({3, 4});
  Tensor row = a.select(0, 1);
  Tensor col = a.narrow(1, 2, 1);
  Tensor t = a.t();
  CHECK(row.storage() == a.storage());
  CHECK(col.storage() == a.storage());
  CHECK(t.storage() == a.storage());
  CHECK_FALSE(t.is_contiguous());
  CHECK(t.sizes() == Shape{4, 3});
  CHECK(t.to_vector<float>() == std::vector<float>{0, 4, 8, 1, 5, 9, 2, 6, 10, 3, 7, 11});
  CHECK(row.to_vector<float>() == std::vector<float>{4, 5, 6, 7});
  CHECK(col.to_vector<float>() == std::vector<float>{2, 6, 10});
  CHECK(a.slice(1, 0, 4, 2).to_vector<float>() == std::vector<float>{0, 2, 4, 6, 8, 10});

  const uint64_t v0 = a.version();
  row.fill_(-1.0);  // write through the view
  CHECK(a.version() == v0 + 1);
  CHECK(t.version() == a.version());
  CHECK(a.to_vector<float>()[4] == -1.0f);
  CHECK(a.to_vector<float>()[7] == -1.0f);
  CHECK(a.detach().storage() == a.storage());
  CHECK(a.detach().version() == a.version());

  Tensor c = t.contiguous();
  CHECK(c.is_contiguous());
  CHECK(c.storage() != a.storage());
  CHECK(a.contiguous().storage() == a.storage());  // already contiguous: no copy
}

TEST_CASE("view ops: expand, squeeze, unsqueeze, permute, flatten") {
  Tensor a = arange(3).reshape({3, 1});
  Tensor e = a.expand({3, 4});
  CHECK(e.strides()[1] == 0);
  CHECK(e.to_vector<float>() == std::vector<float>{0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2});
  CHECK(a.squeeze(1).sizes() == Shape{3});
  CHECK(a.unsqueeze(0).sizes() == Shape{1, 3, 1});
  Tensor b = arange(24).reshape({2, 3, 4});
  CHECK(b.permute({2, 0, 1}).sizes() == Shape{4, 2, 3});
  CHECK(b.permute({2, 0, 1}).contiguous().to_vector<float>()[1] == 4.0f);  // [0][0][1] = b[0][1][0]
  CHECK(b.flatten(1).sizes() == Shape{2, 12});
  CHECK_THROWS_AS(b.view({5, 5}), Error);
  CHECK_THROWS_AS(b.permute({0, 0, 1}), Error);
}

TEST_CASE("copy_ writes into a non-contiguous view") {
  Tensor a = zeros({2, 3});
  a.t().copy_(tensor({1, 2, 3, 4, 5, 6}, {3, 2}));
  CHECK(a.to_vector<float>() == std::vector<float>{1, 3, 5, 2, 4, 6});
  CHECK_THROWS_WITH_AS(a.copy_(zeros({3})), doctest::Contains("[3]"), Error);
}

TEST_CASE("the counter-based generator is a pure function of seed and offset") {
  manual_seed(42);
  Tensor a = rand({1000});
  Tensor b = randn({1000});
  manual_seed(42);
  CHECK(rand({1000}).to_vector<float>() == a.to_vector<float>());
  CHECK(randn({1000}).to_vector<float>() == b.to_vector<float>());
  // Draws of different sizes from the same offset agree on their common prefix.
  std::vector<float> x(10), y(4);
  philox_uniform(x.data(), 10, 7, 0, 100);
  philox_uniform(y.data(), 4, 7, 0, 100);
  CHECK(std::equal(y.begin(), y.end(), x.begin()));
  // Statistics: mean ~ 0.5 / 0, all uniforms in [0, 1).
  manual_seed(1);
  auto u = rand({100000}).to_vector<float>();
  double su = 0;
  for (float v : u) {
    CHECK_UNARY(v >= 0.0f && v < 1.0f);
    su += v;
  }
  CHECK(su / u.size() == doctest::Approx(0.5).epsilon(0.01));
  auto n = randn({100000}, TensorOptions().dtype(DType::f64)).to_vector<double>();
  double sn = 0, sq = 0;
  for (double v : n) sn += v, sq += v * v;
  CHECK(std::abs(sn / n.size()) < 0.02);
  CHECK(sq / n.size() == doctest::Approx(1.0).epsilon(0.02));
  auto w = uniform({1000}, -2.0, 3.0).to_vector<float>();
  for (float v : w) CHECK_UNARY(v >= -2.0f && v < 3.0f);
}

TEST_CASE("printing looks like PyTorch's") {
  CHECK(to_string(tensor({1, 2, 3})) == "tensor([1., 2., 3.])");
  CHECK(to_string(tensor({1.5, -2.25}, {1, 2})) == "tensor([[ 1.5000, -2.2500]])");
  CHECK(to_string(arange(4, TensorOptions().dtype(DType::i64))) == "tensor([0, 1, 2, 3])");
  CHECK(to_string(tensor({1, 2}, {}, TensorOptions().dtype(DType::f64))) == "tensor([1., 2.], dtype=float64)");
  CHECK(to_string(tensor({1.5}, {}, TensorOptions().requires_grad())) == "tensor([1.5000], requires_grad=True)");
  const std::string big = to_string(arange(2000));
  CHECK(big == "tensor([   0.,    1.,    2., ..., 1997., 1998., 1999.])");
  const std::string mat = to_string(arange(4).reshape({2, 2}));
  CHECK(mat == "tensor([[0., 1.],\n        [2., 3.]])");
}

TEST_CASE("errors name the op and the shapes") {
  Tensor a = zeros({2, 3});
  CHECK_THROWS_WITH_AS(a.size(2), doctest::Contains("out of range"), Error);
  CHECK_THROWS_WITH_AS(a.item<float>(), doctest::Contains("[2, 3]"), Error);
  CHECK_THROWS_AS(a.to(Device::cuda(0)), Error);
}

TEST_CASE("the caching allocator reuses freed blocks and reports live/peak/reserved") {
  Allocator& al = allocator_for(kCPU);
  al.empty_cache();
  al.reset_peak();
  const auto s0 = al.stats();
  void* p = nullptr;
  {
    Tensor t = empty({1 << 20});  // 4 MiB
    p = t.raw_data();
    CHECK(al.stats().live_bytes >= s0.live_bytes + (4u << 20));
  }
  const auto s1 = al.stats();
  CHECK(s1.live_bytes == s0.live_bytes);
  CHECK(s1.reserved_bytes >= s0.reserved_bytes + (4u << 20));  // cached, not returned
  CHECK(s1.peak_bytes >= s0.live_bytes + (4u << 20));
  Tensor again = empty({1 << 20});
  CHECK(again.raw_data() == p);  // the same block comes back
  CHECK(reinterpret_cast<uintptr_t>(again.raw_data()) % 64 == 0);
}

TEST_CASE("the caching allocator hands a thread back the block it freed itself, not the latest one") {
  Allocator& al = allocator_for(kCPU);
  al.empty_cache();
  constexpr size_t kBytes = 3 << 20;  // one size class for all blocks here
  void* mine = al.allocate(kBytes);
  void* theirs = nullptr;
  std::thread([&] { theirs = al.allocate(kBytes); }).join();
  REQUIRE(mine != theirs);
  al.deallocate(mine, kBytes);
  std::thread([&] { al.deallocate(theirs, kBytes); }).join();  // the latest free, by another thread
  void* back = al.allocate(kBytes);
  CHECK(back == mine);  // a plain LIFO cache would give `theirs`
  // A thread that freed nothing of the class gets the latest block.
  void* other = nullptr;
  std::thread([&] { other = al.allocate(kBytes); }).join();
  CHECK(other == theirs);
  al.deallocate(back, kBytes);
  al.deallocate(other, kBytes);
  al.empty_cache();
}

TEST_CASE("channels-last: strides, detection and allocation") {
  using namespace minidl;
  CHECK(channels_last_strides({2, 3, 4, 5}) == Shape{60, 1, 15, 3});
  Tensor t = empty({2, 3, 4, 5}, TensorOptions{}, MemoryFormat::ChannelsLast);
  CHECK(t.strides() == Shape{60, 1, 15, 3});
  CHECK(t.is_channels_last());
  CHECK_FALSE(t.is_contiguous());
  CHECK(t.storage()->nbytes() == 120 * sizeof(float));
  Tensor c = empty({2, 3, 4, 5});
  CHECK(c.is_contiguous());
  CHECK_FALSE(c.is_channels_last());
  // size-1 dims make both layouts the same memory: both predicates hold
  Tensor one = empty({2, 1, 4, 5}, TensorOptions{}, MemoryFormat::ChannelsLast);
  CHECK(one.is_contiguous());
  CHECK(one.is_channels_last());
  Tensor pooled = empty({2, 8, 1, 1}, TensorOptions{}, MemoryFormat::ChannelsLast);
  CHECK(pooled.is_contiguous());
  // values survive a round trip through the layout
  Tensor src = arange(0.0, 120.0, 1.0).view({2, 3, 4, 5});
  t.copy_(src);
  CHECK(t.to_vector<float>() == src.to_vector<float>());
  CHECK(t.contiguous().is_contiguous());
  CHECK(t.contiguous().to_vector<float>() == src.to_vector<float>());
  CHECK_THROWS_WITH(empty({2, 3}, TensorOptions{}, MemoryFormat::ChannelsLast), doctest::Contains("4-D"));
}
