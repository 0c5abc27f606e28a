// resample_bilinear's run-time variants: the AVX2 passes must give the scalar passes' bytes exactly (the sums
// are int32 and exact, so only a bug can make them differ), for every channel count, upscales, downscales and
// fractional boxes. The scalar passes themselves are checked against Pillow by data_torchvision_transforms.
#include <doctest/doctest.h>

#include <cstring>
#include <random>

#include "core/cpu_isa.h"
#include "data/resample.h"
#include "test_skip.h"

using namespace minidl;

namespace {

struct IsaCapGuard {
  explicit IsaCapGuard(cpu::CpuIsa cap) { cpu::set_cpu_isa_cap(cap); }
  ~IsaCapGuard() { cpu::set_cpu_isa_cap(std::nullopt); }
};

Tensor resample_at(cpu::CpuIsa cap, const data::U8View& v, const data::Box& box, int64_t oh, int64_t ow) {
  IsaCapGuard guard(cap);
  return data::resample_bilinear(v, box, oh, ow);
}

}  // namespace

TEST_CASE("resample_bilinear: the AVX2 passes equal the scalar passes byte for byte") {
  if (cpu::host_isa() < cpu::CpuIsa::Avx2)
    MINIDL_SKIP("the host has no AVX2 (minidl level: " << cpu::isa_name(cpu::host_isa()) << ")");
  std::mt19937 gen(7);
  auto uni = [&](int64_t lo, int64_t hi) { return std::uniform_int_distribution<int64_t>(lo, hi)(gen); };
  int compared = 0;
  for (int trial = 0; trial < 200; ++trial) {
    const int64_t channels = trial % 3 == 0 ? 1 : (trial % 3 == 1 ? 3 : 4);
    const int64_t rows = uni(1, 90), cols = uni(1, 90);
    Tensor img = empty({rows, cols, channels}, TensorOptions{}.dtype(DType::u8));
    auto* p = img.data<uint8_t>();
    // Extremes included: saturation at 0 and 255 goes through the packing instructions.
    for (int64_t i = 0; i < img.numel(); ++i)
      p[i] = static_cast<uint8_t>(uni(0, 5) == 0 ? 255 * uni(0, 1) : uni(0, 255));
    const data::U8View v = data::view_of(img);
    std::uniform_real_distribution<double> fx(0.0, static_cast<double>(cols)), fy(0.0, static_cast<double>(rows));
    double x0 = fx(gen), x1 = fx(gen), y0 = fy(gen), y1 = fy(gen);
    if (trial % 4 == 0) x0 = 0, y0 = 0, x1 = static_cast<double>(cols), y1 = static_cast<double>(rows);
    if (x1 < x0) std::swap(x0, x1);
    if (y1 < y0) std::swap(y0, y1);
    if (x1 - x0 < 0.5 || y1 - y0 < 0.5) continue;
    const data::Box box{x0, y0, x1, y1};
    const int64_t oh = uni(1, 120), ow = uni(1, 120);
    const Tensor a = resample_at(cpu::CpuIsa::Baseline, v, box, oh, ow);
    const Tensor b = resample_at(cpu::CpuIsa::Avx2, v, box, oh, ow);
    INFO("trial ", trial, ": ", rows, "x", cols, "x", channels, " box (", x0, ", ", y0, ", ", x1, ", ", y1, ") -> ", oh,
         "x", ow);
    REQUIRE(a.sizes() == b.sizes());
    CHECK(std::memcmp(a.data<uint8_t>(), b.data<uint8_t>(), static_cast<size_t>(a.numel())) == 0);
    ++compared;
  }
  CHECK(compared > 150);
}
