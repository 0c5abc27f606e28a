// gemm_u8s8_s32 (backends/int_gemm.h): every kernel against the scalar oracle, byte for byte (C's padding
// included), on shapes that are and are not multiples of the blocking, strides above the sizes, extreme and
// random codes, empty sizes, the vpmaddubsw saturation edge, and bad arguments. Each kernel runs at every ISA cap
// that allows it (set_cpu_isa_cap), so MINIDL_CPU_ISA=baseline runs them too; a kernel the host cannot run is
// reported skipped.
#include <doctest/doctest.h>

#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <optional>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "backends/int_gemm.h"
#include "core/cpu_isa.h"
#include "core/error.h"
#include "core/threads.h"
#include "test_scopes.h"
#include "test_skip.h"

using namespace minidl;
using backends::IntGemmKernel;
using cpu::CpuIsa;
using minidl::test::CapGuard;
using minidl::test::ThreadsGuard;

namespace {

constexpr int32_t kSentinel = -777777;  // C's padding (ldc > n) must keep it

enum class Acts { Random, All255, Zero, Extremes };                           // activation codes
enum class Weights { Random, Max64, FourBit, Min, Max, Alternating, Max32 };  // weight codes

struct Shape3 {
  int64_t m, n, k, lda, ldb, ldc;
};

std::string describe(const Shape3& s, Acts a, Weights w) {
  std::ostringstream os;
  os << "m=" << s.m << " n=" << s.n << " k=" << s.k << " lda=" << s.lda << " ldb=" << s.ldb << " ldc=" << s.ldc
     << " acts=" << static_cast<int>(a) << " weights=" << static_cast<int>(w);
  return os.str();
}

std::vector<uint8_t> make_acts(const Shape3& s, Acts kind, std::mt19937& rng) {
  std::uniform_int_distribution<int> u8(0, 255), bit(0, 1);
  std::vector<uint8_t> a(static_cast<size_t>(std::max<int64_t>(s.m * s.lda, 1)));
  for (int64_t i = 0; i < s.m; ++i)
    for (int64_t q = 0; q < s.lda; ++q) {
      // codes past k (the stride's padding) are random in every mode: a kernel reading them would show
      uint8_t v = static_cast<uint8_t>(u8(rng));
      if (q < s.k) {
        switch (kind) {
          case Acts::Random: break;
          case Acts::All255: v = 255; break;
          case Acts::Zero: v = 0; break;
          case Acts::Extremes: v = bit(rng) != 0 ? 255 : 0; break;
        }
      }
      a[static_cast<size_t>(i * s.lda + q)] = v;
    }
  return a;
}

std::vector<int8_t> make_weights(const Shape3& s, Weights kind, std::mt19937& rng) {
  std::uniform_int_distribution<int> s8(-128, 127), w64(-64, 64), w4(-8, 7), w32(-32, 32);
  std::vector<int8_t> b(static_cast<size_t>(std::max<int64_t>(s.n * s.ldb, 1)));
  for (int64_t j = 0; j < s.n; ++j)
    for (int64_t q = 0; q < s.ldb; ++q) {
      int v = s8(rng);
      if (q < s.k) {
        switch (kind) {
          case Weights::Random: break;
          case Weights::Max64: v = w64(rng); break;
          case Weights::FourBit: v = w4(rng); break;
          case Weights::Min: v = -128; break;
          case Weights::Max: v = 127; break;
          case Weights::Alternating: v = (q + j) % 2 == 0 ? 127 : -128; break;
          case Weights::Max32: v = w32(rng); break;
        }
      }
      b[static_cast<size_t>(j * s.ldb + q)] = static_cast<int8_t>(v);
    }
  return b;
}

// Runs `kernel` and the oracle on one case; true when C (padding included) is identical.
bool same_as_oracle(IntGemmKernel kernel, const Shape3& s, Acts acts, Weights weights, std::mt19937& rng) {
  const auto a = make_acts(s, acts, rng);
  const auto bcodes = make_weights(s, weights, rng);
  const auto packed = backends::pack_int8_weights(s.n, s.k, bcodes.data(), s.ldb);
  const size_t csize = static_cast<size_t>(std::max<int64_t>(s.m * s.ldc, 1));
  std::vector<int32_t> want(csize, kSentinel), got(csize, kSentinel);
  backends::gemm_u8s8_s32_ref(s.m, a.data(), s.lda, packed, want.data(), s.ldc);
  backends::gemm_u8s8_s32_with(kernel, s.m, a.data(), s.lda, packed, got.data(), s.ldc);
  return want == got;
}

// The shape sweep: m, n, k around and off the kernels' blocks (4 / 8 rows, 16 columns, 4 codes), the ResNet-20
// depths, and strides above the sizes; acts and weights cycle so every pair of kinds meets.
int sweep(IntGemmKernel kernel) {
  const int64_t ms[] = {1, 3, 4, 7, 8, 9, 15, 17, 64};
  const int64_t ns[] = {1, 3, 7, 15, 16, 17, 33, 64};
  const int64_t ks[] = {1, 2, 3, 4, 5, 7, 15, 17, 64, 144, 576};
  const Acts acts[] = {Acts::Random, Acts::All255, Acts::Zero, Acts::Extremes};
  // (maddubs_window: Random, Min, Max 0; Max64, Alternating 1; Max32 2; FourBit 4)
  const Weights ws[] = {Weights::Random,      Weights::Max64, Weights::FourBit, Weights::Min,
                        Weights::Alternating, Weights::Max,   Weights::Max32};
  std::mt19937 rng(1234);
  int failures = 0, idx = 0;
  for (int64_t m : ms)
    for (int64_t n : ns)
      for (int64_t k : ks) {
        ++idx;
        // every third case has strides above the sizes
        const int64_t pad = idx % 3 == 0 ? 1 + idx % 13 : 0;
        const Shape3 s{m, n, k, k + pad, k + (pad ? 5 : 0), n + (pad ? 3 : 0)};
        const Acts a = acts[idx % 4];
        const Weights w = ws[(idx / 4) % 7];
        if (!same_as_oracle(kernel, s, a, w, rng)) {
          ++failures;
          MESSAGE("mismatch: " << std::string(backends::int_gemm_kernel_name(kernel)) << " " << describe(s, a, w));
        }
      }
  return failures;
}

// Every pairing of extreme codes on shapes with full and partial blocks.
int extremes(IntGemmKernel kernel) {
  std::mt19937 rng(99);
  int failures = 0;
  for (const Shape3& s :
       {Shape3{17, 33, 579, 579, 579, 33}, Shape3{8, 16, 576, 600, 577, 20}, Shape3{5, 7, 3, 4, 3, 7}})
    for (Acts a : {Acts::All255, Acts::Extremes, Acts::Random})
      for (Weights w :
           {Weights::Min, Weights::Max, Weights::Alternating, Weights::Random, Weights::Max32, Weights::FourBit})
        if (!same_as_oracle(kernel, s, a, w, rng)) {
          ++failures;
          MESSAGE("mismatch: " << std::string(backends::int_gemm_kernel_name(kernel)) << " " << describe(s, a, w));
        }
  return failures;
}

// The caps at which `kernel` may run on this host (empty: the host lacks its instructions).
std::vector<CpuIsa> caps_running(IntGemmKernel kernel) {
  std::vector<CpuIsa> caps;
  for (CpuIsa cap : {CpuIsa::Baseline, CpuIsa::Avx2, CpuIsa::Avx512}) {
    cpu::set_cpu_isa_cap(cap);
    if (backends::int_gemm_kernel_runnable(kernel)) caps.push_back(cap);
  }
  cpu::set_cpu_isa_cap(std::nullopt);
  return caps;
}

// The full check of one kernel at every cap that allows it; skipped when none does.
void check_kernel(IntGemmKernel kernel) {
  CapGuard guard;
  const auto caps = caps_running(kernel);
  if (caps.empty()) {
    MINIDL_SKIP("the " << backends::int_gemm_kernel_name(kernel) << " kernel cannot run on this host (host level "
                       << cpu::isa_name(cpu::host_isa()) << ", no such instructions)");
  }
  for (CpuIsa cap : caps) {
    cpu::set_cpu_isa_cap(cap);
    INFO("cap " << std::string(cpu::isa_name(cap)));
    CHECK(sweep(kernel) == 0);
    CHECK(extremes(kernel) == 0);
  }
}

}  // namespace

TEST_CASE("int gemm: the kernel in use follows the ISA cap") {
  CapGuard guard;
  MESSAGE("int gemm kernel: " << std::string(backends::int_gemm_kernel_name(backends::int_gemm_kernel())) << " (host "
                              << std::string(cpu::isa_name(cpu::host_isa())) << ")");
  cpu::set_cpu_isa_cap(CpuIsa::Baseline);
  CHECK(backends::int_gemm_kernel() == IntGemmKernel::Scalar);
  CHECK_FALSE(backends::int_gemm_kernel_runnable(IntGemmKernel::Avx2));
  CHECK_FALSE(backends::int_gemm_kernel_runnable(IntGemmKernel::AvxVnni));
  CHECK_FALSE(backends::int_gemm_kernel_runnable(IntGemmKernel::Avx512Vnni));
  cpu::set_cpu_isa_cap(CpuIsa::Avx2);
  // AVX-512 VNNI needs the Avx512 level; the VEX-encoded AVX-VNNI does not
  CHECK_FALSE(backends::int_gemm_kernel_runnable(IntGemmKernel::Avx512Vnni));
  if (cpu::host_isa() >= CpuIsa::Avx2) {
    CHECK(backends::int_gemm_kernel_runnable(IntGemmKernel::Avx2));
    CHECK(
        (backends::int_gemm_kernel() == IntGemmKernel::Avx2 || backends::int_gemm_kernel() == IntGemmKernel::AvxVnni));
  }
  cpu::set_cpu_isa_cap(std::nullopt);
  CHECK(backends::int_gemm_kernel_runnable(backends::int_gemm_kernel()));
  CHECK(backends::int_gemm_kernel_runnable(IntGemmKernel::Scalar));
  CHECK(std::string(backends::int_gemm_kernel_name(IntGemmKernel::Avx512Vnni)) == "avx512-vnni");
}

TEST_CASE("int gemm: the scalar kernel matches the oracle") { check_kernel(IntGemmKernel::Scalar); }
TEST_CASE("int gemm: the AVX2 kernel matches the oracle") { check_kernel(IntGemmKernel::Avx2); }
TEST_CASE("int gemm: the AVX-VNNI kernel matches the oracle") { check_kernel(IntGemmKernel::AvxVnni); }
TEST_CASE("int gemm: the AVX-512 VNNI kernel matches the oracle") { check_kernel(IntGemmKernel::Avx512Vnni); }

TEST_CASE("int gemm: gemm_u8s8_s32 matches the oracle at every ISA cap, on one and several threads") {
  CapGuard guard;
  std::mt19937 rng(7);
  // ResNet-20's three stages as im2col GEMMs (M = H * W of one image, or more), plus a ragged one
  const Shape3 shapes[] = {{1024, 16, 144, 144, 144, 16},
                           {256, 32, 288, 288, 288, 32},
                           {64, 64, 576, 576, 576, 64},
                           {1031, 17, 149, 151, 150, 19},
                           {4100, 64, 576, 576, 576, 64}};
  for (CpuIsa cap : {CpuIsa::Baseline, CpuIsa::Avx2, CpuIsa::Avx512}) {
    cpu::set_cpu_isa_cap(cap);
    const IntGemmKernel kernel = backends::int_gemm_kernel();
    INFO("cap " << std::string(cpu::isa_name(cap)) << ", kernel "
                << std::string(backends::int_gemm_kernel_name(kernel)));
    for (const Shape3& s : shapes)
      for (Weights w : {Weights::Random, Weights::FourBit}) {
        const auto a = make_acts(s, Acts::Random, rng);
        const auto bcodes = make_weights(s, w, rng);
        const auto packed = backends::pack_int8_weights(s.n, s.k, bcodes.data(), s.ldb);
        std::vector<int32_t> want(static_cast<size_t>(s.m * s.ldc), kSentinel);
        backends::gemm_u8s8_s32_ref(s.m, a.data(), s.lda, packed, want.data(), s.ldc);
        // 1 thread, and 3 (row ranges that are not equal; more threads than this host's cores)
        for (int threads : {1, 3}) {
          ThreadsGuard tg(threads);
          std::vector<int32_t> got(want.size(), kSentinel);
          backends::gemm_u8s8_s32(s.m, a.data(), s.lda, packed, got.data(), s.ldc);
          CHECK_MESSAGE(want == got, describe(s, Acts::Random, w) << " threads " << threads);
        }
      }
  }
}

TEST_CASE("int gemm: the vpmaddubsw saturation edge") {
  // A pair of codes (2p, 2p + 1) is safe for vpmaddubsw iff its positive codes sum to <= 128 and its negative
  // codes to >= -128 (255 * 128 = 32640 <= 32767; 255 * 129 = 32895 saturates).
  struct Row {
    std::vector<int8_t> codes;
    bool exact;
  };
  const Row rows[] = {
      {{64, 64}, true},         {{127, 1}, true},          {{127, 2}, false},   {{-128, 0}, true},
      {{-128, -1}, false},      {{-64, -64}, true},        {{-65, -64}, false}, {{127, -128}, true},
      {{0, 127, 127, 0}, true}, {{127, 127, 0, 0}, false},  // pairs are (0, 1) and (2, 3), not (1, 2)
      {{1, 127, 1}, true},      {{1, 1, 127}, true},        // the odd last code pairs with a 0
      {{127, 127}, false},      {{-128, -128}, false},
  };
  CapGuard guard;
  std::vector<CpuIsa> caps = {CpuIsa::Baseline};
  if (cpu::host_isa() >= CpuIsa::Avx2) caps.push_back(CpuIsa::Avx2);
  for (const Row& row : rows) {
    const int64_t k = static_cast<int64_t>(row.codes.size());
    const auto packed = backends::pack_int8_weights(1, k, row.codes.data(), k);
    std::string codes;
    for (int8_t v : row.codes) codes += std::to_string(v) + " ";
    INFO("codes " << codes);
    CHECK(packed.maddubs_exact() == row.exact);
    // the worst inputs: all 255 (the largest pair sums); 9 rows cover a full and a partial row block
    const std::vector<uint8_t> a(static_cast<size_t>(9 * k), 255);
    int32_t want = 0;
    for (int8_t v : row.codes) want += 255 * v;
    for (CpuIsa cap : caps) {
      cpu::set_cpu_isa_cap(cap);
      std::vector<int32_t> c(9, kSentinel);
      backends::gemm_u8s8_s32(9, a.data(), k, packed, c.data(), 1);
      for (int32_t v : c) CHECK(v == want);
    }
  }
  // a whole layer of such rows: 255 x 127 everywhere saturates a plain vpmaddubsw by 2 * 32385 - 32767 per pair
  const int64_t n = 16, k = 576;
  const std::vector<int8_t> b(static_cast<size_t>(n * k), 127), bmin(static_cast<size_t>(n * k), -128);
  const std::vector<uint8_t> a(static_cast<size_t>(4 * k), 255);
  for (CpuIsa cap : caps) {
    cpu::set_cpu_isa_cap(cap);
    std::vector<int32_t> c(static_cast<size_t>(4 * n), 0);
    backends::gemm_u8s8_s32(4, a.data(), k, backends::pack_int8_weights(n, k, b.data(), k), c.data(), n);
    for (int32_t v : c) CHECK(v == 255 * 127 * 576);
    backends::gemm_u8s8_s32(4, a.data(), k, backends::pack_int8_weights(n, k, bmin.data(), k), c.data(), n);
    for (int32_t v : c) CHECK(v == -255 * 128 * 576);
  }
}

TEST_CASE("int gemm: the int16 window of vpmaddubsw sums") {
  // maddubs_window W (a power of two up to 64): the codes of one int16 lane over W groups (2 W codes) must sum
  // to <= 128 (positive) and >= -128 (negative) for inputs up to 255; constant codes v give 2 W v
  struct Row {
    int v;
    int window;
  };
  const Row rows[] = {{8, 8},   {16, 4},  {17, 2},  {32, 2},  {33, 1},  {64, 1},   {65, 0}, {127, 0}, {-16, 4},
                      {-17, 2}, {-32, 2}, {-33, 1}, {-64, 1}, {-65, 0}, {-128, 0}, {0, 64}, {1, 64}};
  CapGuard guard;
  std::vector<CpuIsa> caps = {CpuIsa::Baseline};
  if (cpu::host_isa() >= CpuIsa::Avx2) caps.push_back(CpuIsa::Avx2);
  std::mt19937 rng(3);
  for (const Row& row : rows)
    // k: whole windows of 4 groups, plus leftover groups, plus a partial group
    for (int64_t k : {int64_t{16}, int64_t{32}, int64_t{44}, int64_t{47}, int64_t{579}}) {
      INFO("code " << row.v << " k " << k);
      const int64_t n = 19, m = 11;
      const std::vector<int8_t> b(static_cast<size_t>(n * k), static_cast<int8_t>(row.v));
      const auto packed = backends::pack_int8_weights(n, k, b.data(), k);
      // a window covering every group of the row is the whole row, whatever its size
      const int64_t groups = (k + 3) / 4;
      CHECK(std::min<int64_t>(packed.maddubs_window(), groups) == std::min<int64_t>(row.window, groups));
      std::vector<uint8_t> a(static_cast<size_t>(m * k), 255);
      for (size_t i = a.size() / 2; i < a.size(); ++i) a[i] = static_cast<uint8_t>(rng());  // half 255, half random
      std::vector<int32_t> want(static_cast<size_t>(m * n));
      backends::gemm_u8s8_s32_ref(m, a.data(), k, packed, want.data(), n);
      CHECK(want[0] == 255 * row.v * static_cast<int32_t>(k));
      for (CpuIsa cap : caps) {
        cpu::set_cpu_isa_cap(cap);
        std::vector<int32_t> got(static_cast<size_t>(m * n), kSentinel);
        backends::gemm_u8s8_s32(m, a.data(), k, packed, got.data(), n);
        CHECK(got == want);
      }
    }
  // a window is an aligned run of W groups, a lane the pair h of each group: one large code per lane and window
  // keeps W = 4; two in one lane of a 4-group window give W = 2; two in one pair give 0
  std::vector<int8_t> b(32, 1);
  b[0] = 120;   // group 0, pair 0
  b[18] = 120;  // group 4 (the second window), pair 1
  CHECK(backends::pack_int8_weights(1, 32, b.data(), 32).maddubs_window() == 4);
  b[12] = 120;  // group 3, pair 0: 240 + 6 in lane 0 of groups 0..3; 123 in groups 0..1 and in 2..3
  CHECK(backends::pack_int8_weights(1, 32, b.data(), 32).maddubs_window() == 2);
  b[13] = 120;  // pair (12, 13) sums to 240
  CHECK(backends::pack_int8_weights(1, 32, b.data(), 32).maddubs_window() == 0);
}

TEST_CASE("int gemm: a smaller input bound widens the int16 window, and the sums stay exact at the bound") {
  // max_input 15 (4-bit activation codes): a lane may hold positive codes up to 32767 / 15 = 2184 per window, so
  // constant codes v allow 2 W v <= 2184: v = 64 gives W = 16 (at 255 it gives 1), v = 127 gives 8 (at 255: 0).
  struct Row {
    int v, max_input, window;
  };
  const Row rows[] = {{64, 15, 16},  {127, 15, 8}, {-128, 15, 8}, {64, 255, 1},
                      {127, 255, 0}, {8, 15, 64},  {127, 1, 64}};
  CapGuard guard;
  std::vector<CpuIsa> caps = {CpuIsa::Baseline};
  if (cpu::host_isa() >= CpuIsa::Avx2) caps.push_back(CpuIsa::Avx2);
  for (const Row& row : rows) {
    const int64_t n = 19, m = 9, k = 1155;  // 289 groups, the last partial: many windows and a remainder
    INFO("code " << row.v << " max_input " << row.max_input);
    const std::vector<int8_t> b(static_cast<size_t>(n * k), static_cast<int8_t>(row.v));
    const auto packed = backends::pack_int8_weights(n, k, b.data(), k, row.max_input);
    CHECK(packed.max_input() == row.max_input);
    CHECK(packed.maddubs_window() == row.window);
    // every input at the bound: the extreme sums
    const std::vector<uint8_t> a(static_cast<size_t>(m * k), static_cast<uint8_t>(row.max_input));
    for (CpuIsa cap : caps) {
      cpu::set_cpu_isa_cap(cap);
      std::vector<int32_t> got(static_cast<size_t>(m * n), kSentinel);
      backends::gemm_u8s8_s32(m, a.data(), k, packed, got.data(), n);
      for (int32_t v : got) CHECK(v == row.max_input * row.v * static_cast<int32_t>(k));
    }
  }
  const std::vector<int8_t> one(4, 1);
  CHECK_THROWS_WITH_AS(backends::pack_int8_weights(1, 4, one.data(), 4, 0), doctest::Contains("max_input"), Error);
  CHECK_THROWS_WITH_AS(backends::pack_int8_weights(1, 4, one.data(), 4, 256), doctest::Contains("max_input"), Error);
}

TEST_CASE("int gemm: the deepest K sums exactly in int32") {
  // pack_int8_weights accepts k while k * 255 * 128 fits an int32: the extreme sums at that depth are exact
  const int64_t k = 2147483647 / (255 * 128), n = 3, m = 5;
  std::vector<int8_t> b(static_cast<size_t>(n * k), -128);
  for (int64_t q = 0; q < k; ++q) b[static_cast<size_t>(k + q)] = 127;  // row 1 all 127, row 2 alternating
  for (int64_t q = 0; q < k; ++q) b[static_cast<size_t>(2 * k + q)] = q % 2 == 0 ? 127 : -128;
  const std::vector<uint8_t> a(static_cast<size_t>(m * k), 255);
  const auto packed = backends::pack_int8_weights(n, k, b.data(), k);
  const int32_t alt = static_cast<int32_t>(255 * (127 * ((k + 1) / 2) - 128 * (k / 2)));
  CapGuard guard;
  for (CpuIsa cap : {CpuIsa::Baseline, CpuIsa::Avx2, CpuIsa::Avx512}) {
    cpu::set_cpu_isa_cap(cap);
    std::vector<int32_t> c(static_cast<size_t>(m * n), 0);
    backends::gemm_u8s8_s32(m, a.data(), k, packed, c.data(), n);
    for (int64_t i = 0; i < m; ++i) {
      CHECK(c[static_cast<size_t>(i * n)] == -255 * 128 * static_cast<int32_t>(k));
      CHECK(c[static_cast<size_t>(i * n + 1)] == 255 * 127 * static_cast<int32_t>(k));
      CHECK(c[static_cast<size_t>(i * n + 2)] == alt);
    }
  }
  CHECK_THROWS_WITH_AS(backends::pack_int8_weights(1, k + 1, b.data(), k + 1), doctest::Contains("too large"), Error);
}

TEST_CASE("int gemm: empty sizes") {
  CapGuard guard;
  const std::vector<int8_t> b(64, 3);
  const std::vector<uint8_t> a(64, 200);
  for (CpuIsa cap : {CpuIsa::Baseline, CpuIsa::Avx2, CpuIsa::Avx512}) {
    cpu::set_cpu_isa_cap(cap);
    // k = 0: every sum is empty, C is all zeros (padding kept)
    const auto k0 = backends::pack_int8_weights(5, 0, nullptr, 0);
    CHECK(k0.rows() == 5);
    CHECK(k0.depth() == 0);
    std::vector<int32_t> c(3 * 7, kSentinel);
    backends::gemm_u8s8_s32(3, nullptr, 0, k0, c.data(), 7);
    for (int i = 0; i < 3; ++i)
      for (int j = 0; j < 7; ++j) CHECK(c[static_cast<size_t>(i * 7 + j)] == (j < 5 ? 0 : kSentinel));
    // n = 0 and m = 0: nothing is written
    const auto n0 = backends::pack_int8_weights(0, 8, nullptr, 8);
    std::vector<int32_t> c2(8, kSentinel);
    backends::gemm_u8s8_s32(1, a.data(), 8, n0, c2.data(), 0);
    const auto p = backends::pack_int8_weights(4, 8, b.data(), 8);
    backends::gemm_u8s8_s32(0, a.data(), 8, p, c2.data(), 4);
    backends::gemm_u8s8_s32(0, nullptr, 8, p, nullptr, 4);
    for (int32_t v : c2) CHECK(v == kSentinel);
  }
  const backends::PackedInt8Weights none;
  CHECK(none.rows() == 0);
  std::vector<int32_t> c(1, kSentinel);
  backends::gemm_u8s8_s32(1, a.data(), 0, none, c.data(), 0);
  CHECK(c[0] == kSentinel);
}

TEST_CASE("int gemm: the packed layout") {
  // 17 x 5 codes: two column blocks of 16, two groups of 4 codes, zero padding
  std::vector<int8_t> b(17 * 6);
  for (size_t i = 0; i < b.size(); ++i) b[i] = static_cast<int8_t>(i % 251 - 120);
  const auto p = backends::pack_int8_weights(17, 5, b.data(), 6);
  CHECK(p.layout() == backends::kInt8LayoutK4N16);
  REQUIRE(p.blocked().size() == 2 * 2 * 64);
  for (int64_t j = 0; j < 32; ++j)
    for (int64_t q = 0; q < 8; ++q) {
      const int8_t want = j < 17 && q < 5 ? b[static_cast<size_t>(j * 6 + q)] : 0;
      CHECK(p.blocked()[static_cast<size_t>(((j / 16) * 2 + q / 4) * 64 + (j % 16) * 4 + q % 4)] == want);
    }
  // codes up to 127 in magnitude: no vpmaddubsw window, so the int16 copy exists (3 pairs of codes, zero padded)
  REQUIRE(p.maddubs_window() == 0);
  REQUIRE(p.wide().size() == 2 * 3 * 32);
  for (int64_t j = 0; j < 32; ++j)
    for (int64_t q = 0; q < 6; ++q) {
      const int16_t want = j < 17 && q < 5 ? b[static_cast<size_t>(j * 6 + q)] : 0;
      CHECK(p.wide()[static_cast<size_t>(((j / 16) * 3 + q / 2) * 32 + (j % 16) * 2 + q % 2)] == want);
    }
  // 4-bit codes: one int16 window over both groups (2 x 2 codes of -8 per lane), no int16 copy
  const std::vector<int8_t> small(17 * 5, -8);
  const auto p4 = backends::pack_int8_weights(17, 5, small.data(), 5);
  CHECK(p4.maddubs_window() >= 2);
  CHECK(p4.wide().empty());
  for (int64_t j = 0; j < 17; ++j) {
    int32_t s = 0;
    for (int64_t q = 0; q < 5; ++q) {
      CHECK(p.codes()[static_cast<size_t>(j * 5 + q)] == b[static_cast<size_t>(j * 6 + q)]);
      s += b[static_cast<size_t>(j * 6 + q)];
    }
    CHECK(p.row_sums()[static_cast<size_t>(j)] == s);
  }
}

TEST_CASE("int gemm: bad arguments are clear errors") {
  CapGuard guard;
  const std::vector<int8_t> b(64, 1);
  const std::vector<uint8_t> a(64, 1);
  std::vector<int32_t> c(64, 0);
  CHECK_THROWS_WITH_AS(backends::pack_int8_weights(-1, 4, b.data(), 4), doctest::Contains("sizes must be >= 0"), Error);
  CHECK_THROWS_WITH_AS(backends::pack_int8_weights(2, -4, b.data(), 4), doctest::Contains("sizes must be >= 0"), Error);
  CHECK_THROWS_WITH_AS(backends::pack_int8_weights(2, 8, b.data(), 7), doctest::Contains("ldb 7 is below k 8"), Error);
  CHECK_THROWS_WITH_AS(backends::pack_int8_weights(2, 8, nullptr, 8), doctest::Contains("null weight codes"), Error);
  const auto p = backends::pack_int8_weights(4, 8, b.data(), 8);
  CHECK_THROWS_WITH_AS(backends::gemm_u8s8_s32(-1, a.data(), 8, p, c.data(), 4), doctest::Contains("m must be >= 0"),
                       Error);
  CHECK_THROWS_WITH_AS(backends::gemm_u8s8_s32(2, a.data(), 7, p, c.data(), 4), doctest::Contains("lda 7"), Error);
  CHECK_THROWS_WITH_AS(backends::gemm_u8s8_s32(2, a.data(), 8, p, c.data(), 3), doctest::Contains("ldc 3"), Error);
  CHECK_THROWS_WITH_AS(backends::gemm_u8s8_s32(2, nullptr, 8, p, c.data(), 4), doctest::Contains("null"), Error);
  CHECK_THROWS_WITH_AS(backends::gemm_u8s8_s32(2, a.data(), 8, p, nullptr, 4), doctest::Contains("null"), Error);
  CHECK_THROWS_WITH_AS(backends::gemm_u8s8_s32_ref(2, a.data(), 7, p, c.data(), 4), doctest::Contains("lda 7"), Error);
  // a kernel the cap (or the host) rules out is refused, not run
  cpu::set_cpu_isa_cap(CpuIsa::Baseline);
  for (IntGemmKernel k : {IntGemmKernel::Avx2, IntGemmKernel::AvxVnni, IntGemmKernel::Avx512Vnni})
    CHECK_THROWS_WITH_AS(backends::gemm_u8s8_s32_with(k, 2, a.data(), 8, p, c.data(), 4),
                         doctest::Contains("cannot run here"), Error);
}

namespace {

// gemm_u8s8_s32_segments of m rows of `pieces` pieces of `len` codes (activation codes up to max_input: all of them
// at it when `at_bound`, else random) against n rows of weights w, checked against the oracle on the dense rows.
void check_segments(int64_t m, int64_t pieces, int64_t len, int64_t n, const std::vector<int8_t>& w, int max_input,
                    bool at_bound, std::mt19937& rng) {
  const int64_t k = pieces * len;
  CAPTURE(m);
  CAPTURE(k);
  CAPTURE(n);
  CAPTURE(max_input);
  const auto b = backends::pack_int8_weights(n, k, w.data(), k, max_input);
  REQUIRE(backends::gemm_u8s8_s32_segments_runnable(b, len));
  // the pieces live apart in a pool, row i's piece s at i * (len + 5) + s * stride (the rows interleaved, as an
  // image's kernel rows are); the dense rows are their concatenation
  const int64_t stride = (m + 1) * (len + 5);
  std::vector<uint8_t> pool(static_cast<size_t>(pieces * stride)), dense(static_cast<size_t>(m * k));
  for (auto& v : pool) v = static_cast<uint8_t>(at_bound ? max_input : static_cast<int>(rng() % (max_input + 1)));
  std::vector<const uint8_t*> rows(static_cast<size_t>(m));
  for (int64_t i = 0; i < m; ++i) {
    rows[static_cast<size_t>(i)] = pool.data() + i * (len + 5);
    for (int64_t s = 0; s < pieces; ++s) {
      const uint8_t* at = rows[static_cast<size_t>(i)] + s * stride;
      std::copy(at, at + len, dense.begin() + i * k + s * len);
    }
  }
  std::vector<int32_t> want(static_cast<size_t>(m * n)), got(want.size(), -1);
  backends::gemm_u8s8_s32_ref(m, dense.data(), k, b, want.data(), n);
  backends::gemm_u8s8_s32_segments(m, rows.data(), pieces, len, stride, b, got.data(), n);
  CHECK(got == want);
}

}  // namespace

TEST_CASE("int gemm: rows given as pieces read in place equal the dense rows") {
  CapGuard guard;
  // the caps whose kernel reads pieces: AVX-512 VNNI (any weights), AVX2 (weights with an int16 window)
  std::vector<std::optional<CpuIsa>> caps;
  std::vector<IntGemmKernel> seen;
  for (const std::optional<CpuIsa> cap : {std::optional<CpuIsa>{}, std::optional<CpuIsa>{CpuIsa::Avx2}}) {
    cpu::set_cpu_isa_cap(cap);
    const IntGemmKernel kernel = backends::int_gemm_kernel();
    if ((kernel == IntGemmKernel::Avx512Vnni || kernel == IntGemmKernel::Avx2) &&
        std::find(seen.begin(), seen.end(), kernel) == seen.end()) {
      seen.push_back(kernel);
      caps.push_back(cap);
    }
  }
  cpu::set_cpu_isa_cap(std::nullopt);
  if (caps.empty())
    MINIDL_SKIP("no kernel that reads pieces runs here (kernel in use: "
                << backends::int_gemm_kernel_name(backends::int_gemm_kernel()) << ")");
  std::mt19937 rng(3);
  for (const auto& cap : caps) {
    cpu::set_cpu_isa_cap(cap);
    const bool avx2 = backends::int_gemm_kernel() == IntGemmKernel::Avx2;
    INFO("kernel " << backends::int_gemm_kernel_name(backends::int_gemm_kernel()));
    // (rows, pieces, piece length, columns): ResNet-20's kernel rows (48, 96, 192 codes), a partial column block,
    // row counts off the 12- and 8-row tiles
    const int64_t shapes[][4] = {{29, 3, 48, 16}, {17, 3, 96, 32}, {13, 3, 192, 64},
                                 {7, 2, 8, 20},   {1, 1, 4, 5},    {5, 2, 16, 7}};
    for (const auto& sh : shapes) {
      const int64_t m = sh[0], pieces = sh[1], len = sh[2], n = sh[3], k = pieces * len;
      std::vector<int8_t> w(static_cast<size_t>(n * k));
      // any 8-bit codes where the kernel takes them; 4-bit APoT-like codes (+-10) under 4-bit (15) and APoT 4-bit
      // (48) activation codes otherwise, and for both
      if (!avx2) {
        for (auto& v : w) v = static_cast<int8_t>(static_cast<int>(rng() % 256) - 128);
        check_segments(m, pieces, len, n, w, 255, false, rng);
      }
      for (auto& v : w) v = static_cast<int8_t>(static_cast<int>(rng() % 21) - 10);
      for (int max_input : {15, 48}) check_segments(m, pieces, len, n, w, max_input, false, rng);
    }
    // The AVX2 kernel's int16 sums must be widened at every multiple of maddubs_window() groups, whatever the
    // pieces: constant codes v at inputs 255 allow W = 2 (v = 32) or 4 (v = 16); pieces of 3, 5 and 12 groups
    // put window ends inside pieces, and one group more in an int16 sum saturates it.
    for (int v : {32, -32, 16, -16})
      for (int64_t len : {12, 20, 48}) {
        const int64_t n = 19, pieces = 3;
        const std::vector<int8_t> w(static_cast<size_t>(n * pieces * len), static_cast<int8_t>(v));
        CHECK(backends::pack_int8_weights(n, pieces * len, w.data(), pieces * len).maddubs_window() ==
              (std::abs(v) == 32 ? 2 : 4));
        check_segments(6, pieces, len, n, w, 255, true, rng);
      }
  }
  cpu::set_cpu_isa_cap(std::nullopt);
  // 8-bit codes at inputs up to 255 have no int16 window: the AVX2 kernel does not read them in place
  cpu::set_cpu_isa_cap(CpuIsa::Avx2);
  if (backends::int_gemm_kernel() == IntGemmKernel::Avx2) {
    const std::vector<int8_t> wide(8, 127);
    CHECK_FALSE(backends::gemm_u8s8_s32_segments_runnable(backends::pack_int8_weights(1, 8, wide.data(), 8), 8));
  }
  cpu::set_cpu_isa_cap(std::nullopt);
  const auto probe = backends::pack_int8_weights(1, 4, std::vector<int8_t>(4, 1).data(), 4);
  if (!backends::gemm_u8s8_s32_segments_runnable(probe, 4)) return;
  // pieces closer than their length would overlap
  const auto two = backends::pack_int8_weights(1, 8, std::vector<int8_t>(8, 1).data(), 8);
  const std::vector<uint8_t> codes(16, 1);
  const uint8_t* one_row[] = {codes.data()};
  int32_t out = 0;
  CHECK_THROWS_WITH_AS(backends::gemm_u8s8_s32_segments(1, one_row, 2, 4, 3, two, &out, 1),
                       doctest::Contains("bad sizes"), Error);
  backends::gemm_u8s8_s32_segments(1, one_row, 2, 4, 4, two, &out, 1);
  CHECK(out == 8);
  CHECK_THROWS_WITH_AS(backends::gemm_u8s8_s32_segments(1, nullptr, 2, 6, 6, probe, nullptr, 1),
                       doctest::Contains("not runnable"), Error);
}
