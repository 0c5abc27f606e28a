// Level sets against spec/quant.md section 6, test vector A1 (and the bit-width rules of section 1.2).
#include <doctest/doctest.h>

#include <cmath>

#include "quant/levels.h"

using namespace minidl;
using namespace minidl::quant;

namespace {
void check_close(const std::vector<double>& got, const std::vector<double>& want, double tol = 1e-9) {
  REQUIRE(got.size() == want.size());
  for (size_t i = 0; i < got.size(); ++i) CHECK(got[i] == doctest::Approx(want[i]).epsilon(tol));
}
std::vector<double> scaled(std::vector<double> v, double d) {
  for (double& x : v) x /= d;
  return v;
}
}  // namespace

TEST_CASE("APoT additive level sets L_2..L_5 match A1") {
  check_close(levels(Scheme::APoT, 2, false), {0, 0.25, 0.5, 1});
  check_close(levels(Scheme::APoT, 3, false), {0, 0.1, 0.2, 0.3, 0.4, 0.6, 0.8, 1});
  check_close(levels(Scheme::APoT, 4, false), {0, 1.0 / 48, 1.0 / 24, 1.0 / 16, 1.0 / 12, 1.0 / 8, 1.0 / 6, 3.0 / 16,
                                               0.25, 1.0 / 3, 3.0 / 8, 0.5, 2.0 / 3, 11.0 / 16, 0.75, 1});
  check_close(levels(Scheme::APoT, 5, false),
              scaled({0,  1,  2,  3,  4,  5,  6,  7,  8,  10, 12, 14, 16, 17, 20, 21,
                      24, 28, 32, 34, 36, 38, 48, 52, 64, 65, 68, 69, 72, 76, 96, 100},
                     100.0));
}

TEST_CASE("APoT L_6 has 64 levels with the A1 landmarks") {
  const auto l6 = levels(Scheme::APoT, 6, false);
  REQUIRE(l6.size() == 64);
  CHECK(l6[0] == 0.0);
  CHECK(l6[1] == doctest::Approx(1.0 / 448));
  CHECK(l6[62] == doctest::Approx(7.0 / 8));
  CHECK(l6[63] == 1.0);
  for (double v : {0.5, 0.75, 6.0 / 7, 55.0 / 64}) {
    bool found = false;
    for (double l : l6) found = found || std::abs(l - v) < 1e-12;
    CHECK_MESSAGE(found, "missing level ", v);
  }
}

TEST_CASE("PoT level sets match A1") {
  check_close(levels(Scheme::PoT, 2, false), {0, 0.25, 0.5, 1});
  check_close(levels(Scheme::PoT, 3, false), {0, 1.0 / 64, 1.0 / 32, 1.0 / 16, 1.0 / 8, 0.25, 0.5, 1});
  std::vector<double> p4{0};
  for (int k = 14; k >= 0; --k) p4.push_back(std::ldexp(1.0, -k));
  check_close(levels(Scheme::PoT, 4, false), p4);
  // B = 2 additive equals PoT B = 2.
  check_close(levels(Scheme::APoT, 2, false), levels(Scheme::PoT, 2, false));
}

TEST_CASE("signed weight sets use the (b-1)-bit magnitudes") {
  // 4-bit weights: 15 values {0, +-0.1, ..., +-1}.
  check_close(levels(Scheme::APoT, 4, true),
              {-1, -0.8, -0.6, -0.4, -0.3, -0.2, -0.1, 0, 0.1, 0.2, 0.3, 0.4, 0.6, 0.8, 1});
  // 3-bit weights: PoT-like {0, 1/4, 1/2, 1}.
  check_close(magnitude_levels(Scheme::APoT, 3, true), {0, 0.25, 0.5, 1});
  // 5-bit weights use L_4.
  check_close(magnitude_levels(Scheme::APoT, 5, true), levels(Scheme::APoT, 4, false));
  // 2-bit weights are ternary in every scheme and take the rounding path.
  for (Scheme s : {Scheme::Uniform, Scheme::PoT, Scheme::APoT}) {
    check_close(levels(s, 2, true), {-1, 0, 1});
    CHECK(uses_rounding(s, 2, true));
  }
  CHECK(levels(Scheme::APoT, 6, true).size() == 63);  // 2^6 - 1 distinct signed values
}

TEST_CASE("uniform sets") {
  check_close(levels(Scheme::Uniform, 3, false), {0, 1.0 / 7, 2.0 / 7, 3.0 / 7, 4.0 / 7, 5.0 / 7, 6.0 / 7, 1});
  check_close(levels(Scheme::Uniform, 3, true), {-1, -2.0 / 3, -1.0 / 3, 0, 1.0 / 3, 2.0 / 3, 1});
  CHECK(levels(Scheme::Uniform, 8, true).size() == 255);
  CHECK(rounding_steps(8, true) == 127);
  CHECK(rounding_steps(4, false) == 15);
}

TEST_CASE("invalid bit widths are rejected with a clear message") {
  CHECK_THROWS_WITH_AS(levels(Scheme::APoT, 1, false), "APoT: bit width 1 is not supported (valid: 2..6 for activations)",
                       Error);
  CHECK_THROWS_WITH_AS(levels(Scheme::APoT, 7, false), doctest::Contains("APoT: bit width 7"), Error);
  CHECK_THROWS_WITH_AS(levels(Scheme::APoT, 7, true), doctest::Contains("valid: 2..6"), Error);
  CHECK_THROWS_WITH_AS(levels(Scheme::Uniform, 9, false), doctest::Contains("Uniform: bit width 9"), Error);
  CHECK_THROWS_WITH_AS(levels(Scheme::PoT, 8, false), doctest::Contains("PoT: bit width 8"), Error);
  CHECK_NOTHROW(levels(Scheme::PoT, 8, true));
  CHECK_THROWS_WITH_AS(raw_power_values(7, true), doctest::Contains("B = 7"), Error);
  CHECK_THROWS_WITH_AS(raw_power_values(1, true), doctest::Contains("B = 1"), Error);
  CHECK_THROWS_WITH_AS(parse_scheme("lloyd"), doctest::Contains("unknown scheme 'lloyd'"), Error);
  CHECK(parse_scheme("APoT") == Scheme::APoT);
}

TEST_CASE("LevelSet tensors: float32 levels rounded as the reference builds them") {
  const LevelSet ls = LevelSet::make(Scheme::APoT, 4, true, DType::f32);
  CHECK_FALSE(ls.rounding);
  const auto v = ls.magnitudes.to_vector<float>();
  REQUIRE(v.size() == 8);
  const float inv = 1.0f / 0.625f;
  CHECK(v[1] == 0.0625f * inv);  // 0.1 as float32(0.0625) * float32(1.6)
  CHECK(v.back() == 1.0f);
  const LevelSet t = LevelSet::make(Scheme::Uniform, 4, false, DType::f64);
  CHECK(t.rounding);
  CHECK(t.steps == 15);
  CHECK(LevelSet::make(Scheme::APoT, 4, false).str() == "APoT 4-bit unsigned");
}
