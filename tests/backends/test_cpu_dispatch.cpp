// The cpu backend's run-time choices: the ISA level of minidl's own kernels (MINIDL_CPU_ISA / set_cpu_isa_cap,
// backends/cpu/cpu_isa.h) and the geometry predicate that keeps oneDNN 2.6's AVX-512 sum post-op crash away
// (backends/cpu/dnnl_workarounds.h). Both are pure logic, tested on every host.
#ifdef MINIDL_WITH_ONEDNN

#include <doctest/doctest.h>

#include <iostream>

#include "backends/cpu/cpu_isa.h"
#include "backends/cpu/cpu_winograd.h"
#include "backends/cpu/dnnl_workarounds.h"
#include "core/error.h"
#include "test_scopes.h"

using namespace minidl;
using cpu::CpuIsa;
using minidl::test::CapGuard;

namespace {

Conv2dParams conv(int64_t sh, int64_t sw, int64_t ph, int64_t pw, int64_t dh, int64_t dw) {
  Conv2dParams p;
  p.stride_h = sh, p.stride_w = sw, p.pad_h = ph, p.pad_w = pw, p.dilation_h = dh, p.dilation_w = dw;
  return p;
}

}  // namespace

TEST_CASE("cpu ISA: the level in use, printed for CI logs") {
  // scripts/isa-matrix greps this line for each leg
  std::cout << "minidl ISA: " << cpu::isa_summary() << std::endl;
  CHECK(static_cast<int>(cpu::active_isa()) <= static_cast<int>(cpu::host_isa()));
}

TEST_CASE("cpu ISA: names parse, bad names are a clear error") {
  CHECK(cpu::parse_isa("baseline") == CpuIsa::Baseline);
  CHECK(cpu::parse_isa("AVX2") == CpuIsa::Avx2);
  CHECK(cpu::parse_isa("avx512") == CpuIsa::Avx512);
  for (CpuIsa i : {CpuIsa::Baseline, CpuIsa::Avx2, CpuIsa::Avx512}) CHECK(cpu::parse_isa(cpu::isa_name(i)) == i);
  CHECK_THROWS_WITH_AS(cpu::parse_isa("sse9"), doctest::Contains("MINIDL_CPU_ISA must be 'baseline', 'avx2'"), Error);
}

TEST_CASE("cpu ISA: a cap lowers the active level and switches the AVX2 kernels off") {
  CapGuard guard;
  cpu::set_cpu_isa_cap(CpuIsa::Baseline);
  CHECK(cpu::active_isa() == CpuIsa::Baseline);
  CHECK_FALSE(cpu::isa_enabled(CpuIsa::Avx2));
  CHECK_FALSE(cpu::winograd_enabled());  // Winograd needs AVX2 + FMA
  CHECK(cpu::isa_summary().find("minidl kernels: baseline") != std::string::npos);
  // a cap above the host never raises the level
  cpu::set_cpu_isa_cap(CpuIsa::Avx512);
  CHECK(cpu::active_isa() == cpu::host_isa());
  cpu::set_cpu_isa_cap(CpuIsa::Avx2);
  CHECK(static_cast<int>(cpu::active_isa()) == std::min(1, static_cast<int>(cpu::host_isa())));
}

TEST_CASE("oneDNN workaround: output rows or columns made only of padding are found") {
  // kernel height 1 with padding 1: the first and last output rows read only padding
  CHECK(cpu::axis_has_padding_only_output(10, 1, 1, 1, 1));
  // 3x3 with padding 1 and 2 with dilation 2: every output touches the input
  CHECK_FALSE(cpu::axis_has_padding_only_output(10, 3, 1, 1, 1));
  CHECK_FALSE(cpu::axis_has_padding_only_output(7, 3, 1, 2, 2));
  // 3x3 padding 2: rows 0 and last see two rows of padding and one of input
  CHECK_FALSE(cpu::axis_has_padding_only_output(8, 3, 1, 2, 1));
  // 3x3 padding 3: the outermost rows see only padding
  CHECK(cpu::axis_has_padding_only_output(8, 3, 1, 3, 1));
  // stride skips past the input: width 8, kernel 4 dilated by 2, stride 3, pad 2 -> outputs 0 and 1 both touch it
  CHECK_FALSE(cpu::axis_has_padding_only_output(8, 4, 3, 2, 2));
  // 1x1 stride 2 pad 1 on an odd extent: output 0 reads index -1 only
  CHECK(cpu::axis_has_padding_only_output(5, 1, 2, 1, 1));
  // dilation jumping over the whole input: kernel 2, dilation 6, pad 3 on extent 2: output 0 reads -3 and 3
  CHECK(cpu::axis_has_padding_only_output(2, 2, 1, 3, 6));

  // the reproducer of shared/notes/onednn-avx512-sum-crash.cpp: rows (kh 1, ph 1) are the culprit
  CHECK(cpu::conv_sum_postop_unsafe({1, 3, 10, 8}, {3, 3, 1, 4}, conv(1, 3, 1, 2, 1, 2)));
  // ResNet shapes are never routed away from the fused primitive
  CHECK_FALSE(cpu::conv_sum_postop_unsafe({128, 16, 32, 32}, {16, 16, 3, 3}, conv(1, 1, 1, 1, 1, 1)));
  CHECK_FALSE(cpu::conv_sum_postop_unsafe({128, 16, 32, 32}, {32, 16, 3, 3}, conv(2, 2, 1, 1, 1, 1)));
  CHECK_FALSE(cpu::conv_sum_postop_unsafe({32, 64, 56, 56}, {128, 64, 1, 1}, conv(2, 2, 0, 0, 1, 1)));
  CHECK_FALSE(cpu::conv_sum_postop_unsafe({32, 3, 224, 224}, {64, 3, 7, 7}, conv(2, 2, 3, 3, 1, 1)));
  // columns alone are enough
  CHECK(cpu::conv_sum_postop_unsafe({1, 8, 6, 5}, {8, 8, 3, 1}, conv(1, 1, 1, 3, 1, 1)));
}

#endif  // MINIDL_WITH_ONEDNN
