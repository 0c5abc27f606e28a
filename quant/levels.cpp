// Level sets (see levels.h): the additive table of spec/quant.md section 1.2, PoT, uniform, and the tensor form
// the projection kernels take.
#include "quant/levels.h"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <set>
#include <sstream>

namespace minidl::quant {

const char* scheme_name(Scheme s) {
  switch (s) {
    case Scheme::Uniform: return "uniform";
    case Scheme::PoT: return "pot";
    case Scheme::APoT: return "apot";
  }
  return "?";
}

Scheme parse_scheme(const std::string& name) {
  std::string n = name;
  for (auto& ch : n) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
  if (n == "uniform") return Scheme::Uniform;
  if (n == "pot") return Scheme::PoT;
  if (n == "apot") return Scheme::APoT;
  MINIDL_FAIL("quant: unknown scheme '", name, "' (valid: uniform, pot, apot)");
}

namespace {
const char* display_name(Scheme s) {
  switch (s) {
    case Scheme::Uniform: return "Uniform";
    case Scheme::PoT: return "PoT";
    case Scheme::APoT: return "APoT";
  }
  return "?";
}
}  // namespace

BitRange valid_bits(Scheme s, bool is_signed) {
  switch (s) {
    case Scheme::Uniform: return {2, 8};
    case Scheme::APoT: return {2, 6};
    case Scheme::PoT: return is_signed ? BitRange{2, 8} : BitRange{2, 7};
  }
  return {0, -1};
}

void check_bits(Scheme s, int bits, bool is_signed) {
  const BitRange r = valid_bits(s, is_signed);
  MINIDL_CHECK(bits >= r.lo && bits <= r.hi, display_name(s), ": bit width ", bits, " is not supported (valid: ", r.lo,
               "..", r.hi, is_signed ? " for weights" : " for activations", ")");
}

std::vector<double> raw_power_values(int B, bool additive) {
  std::vector<double> a{0.0}, b{0.0}, c{0.0};
  const auto p = [](int k) { return std::ldexp(1.0, -k); };
  if (additive) {
    switch (B) {
      case 2: a.insert(a.end(), {p(1), p(2), p(3)}); break;
      case 3:
        a.insert(a.end(), {p(1), p(2), p(4)});
        b.insert(b.end(), {p(3)});
        break;
      case 4:
        a.insert(a.end(), {p(1), p(3), p(5)});
        b.insert(b.end(), {p(2), p(4), p(6)});
        break;
      case 5:
        a.insert(a.end(), {p(1), p(3), p(6)});
        b.insert(b.end(), {p(2), p(4), p(7)});
        c.insert(c.end(), {p(5)});
        break;
      case 6:
        a.insert(a.end(), {p(1), p(4), p(7)});
        b.insert(b.end(), {p(2), p(5), p(8)});
        c.insert(c.end(), {p(3), p(6), p(9)});
        break;
      default:
        // The reference leaves the lists empty here and divides by a zero maximum (NaN levels).
        MINIDL_FAIL("APoT: additive level set for B = ", B, " is not defined (valid: 2..6)");
    }
  } else {
    MINIDL_CHECK(B >= 1 && B <= 7, "PoT: level set for B = ", B, " is not supported (valid: 1..7)");
    for (int k = 1; k <= (1 << B) - 1; ++k) a.push_back(p(k));
  }
  std::set<double> sums;
  for (double x : a)
    for (double y : b)
      for (double z : c) sums.insert(x + y + z);  // sums of a few powers of two: exact in double
  return {sums.begin(), sums.end()};
}

bool uses_rounding(Scheme s, int bits, bool is_signed) { return s == Scheme::Uniform || (is_signed && bits == 2); }

double rounding_steps(int bits, bool is_signed) {
  return static_cast<double>((int64_t{1} << (is_signed ? bits - 1 : bits)) - 1);
}

namespace {
// The raw (unnormalised) magnitude values and their maximum, for the power schemes.
std::vector<double> raw_magnitudes(Scheme s, int bits, bool is_signed) {
  const int B = is_signed ? bits - 1 : bits;
  return raw_power_values(B, s == Scheme::APoT);
}
}  // namespace

std::vector<double> magnitude_levels(Scheme s, int bits, bool is_signed) {
  check_bits(s, bits, is_signed);
  std::vector<double> out;
  if (uses_rounding(s, bits, is_signed)) {
    const double st = rounding_steps(bits, is_signed);
    for (int k = 0; k <= static_cast<int>(st); ++k) out.push_back(k / st);
    return out;
  }
  out = raw_magnitudes(s, bits, is_signed);
  const double mx = out.back();
  for (double& v : out) v /= mx;
  return out;
}

std::vector<double> levels(Scheme s, int bits, bool is_signed) {
  const std::vector<double> mag = magnitude_levels(s, bits, is_signed);
  if (!is_signed) return mag;
  std::vector<double> out;
  for (auto it = mag.rbegin(); it != mag.rend(); ++it)
    if (*it > 0.0) out.push_back(-*it);
  out.insert(out.end(), mag.begin(), mag.end());
  return out;
}

LevelSet LevelSet::make(Scheme s, int bits, bool is_signed, DType dtype, Device device) {
  check_bits(s, bits, is_signed);
  LevelSet ls;
  ls.scheme = s;
  ls.bits = bits;
  ls.is_signed = is_signed;
  ls.rounding = uses_rounding(s, bits, is_signed);
  ls.steps = rounding_steps(bits, is_signed);
  if (ls.rounding) return ls;
  MINIDL_CHECK(dtype == DType::f32 || dtype == DType::f64, "quant::LevelSet: levels must be float32 or float64, got ",
               dtype_name(dtype));
  const std::vector<double> raw = raw_magnitudes(s, bits, is_signed);
  // As the reference: levels stored as float32, then multiplied by float32(1 / max) in float32. float64 holds
  // the same float32 numbers (widened exactly): the reference's own float64 run (logits_f64 of the released
  // checkpoints) quantizes onto them, so a model converted to float64 is the same model in finer arithmetic.
  const float inv = 1.0f / static_cast<float>(raw.back());
  std::vector<float> v;
  for (double r : raw) v.push_back(static_cast<float>(r) * inv);
  Tensor t = from_vector(v, {static_cast<int64_t>(v.size())});
  if (dtype == DType::f64) t = t.to(DType::f64);
  ls.magnitudes = device.is_cpu() ? t : t.to(device);
  return ls;
}

LevelSet LevelSet::to(DType dtype) const {
  if (rounding || !magnitudes.defined() || magnitudes.dtype() == dtype) return *this;
  return make(scheme, bits, is_signed, dtype, magnitudes.device());
}

std::string LevelSet::str() const {
  std::ostringstream os;
  os << display_name(scheme) << " " << bits << "-bit " << (is_signed ? "signed" : "unsigned");
  return os.str();
}

std::vector<int64_t> integer_levels(const LevelSet& ls, int64_t& n_max) {
  MINIDL_CHECK(!ls.rounding && ls.magnitudes.defined(), "quant::integer_levels: ", ls.str(),
               " is a rounding grid (k / steps), not a level set");
  const int mag_bits = ls.is_signed ? ls.bits - 1 : ls.bits;
  const std::vector<double> raw = raw_power_values(mag_bits, ls.scheme == Scheme::APoT);
  int e = 0;
  for (double v : raw) {
    while (std::ldexp(v, e) != std::floor(std::ldexp(v, e))) {
      ++e;
      MINIDL_CHECK(e <= 62, "quant::integer_levels: the ", ls.str(), " levels have no integer grid below 2^62");
    }
  }
  std::vector<int64_t> n;
  for (double v : raw) n.push_back(static_cast<int64_t>(std::ldexp(v, e)));
  n_max = n.back();
  MINIDL_CHECK(static_cast<int64_t>(n.size()) == ls.magnitudes.numel(), "quant::integer_levels: ", ls.str(), " has ",
               ls.magnitudes.numel(), " levels, its integer grid ", n.size());
  return n;
}

}  // namespace minidl::quant
