// QuantSpec (see quant_spec.h): defaults, validation and printing.
#include "quant/quant_spec.h"

#include <sstream>

namespace minidl::quant {

const char* weight_quant_name(WeightQuant w) {
  switch (w) {
    case WeightQuant::Float: return "float";
    case WeightQuant::Uniform: return "uniform";
    case WeightQuant::PoT: return "pot";
    case WeightQuant::APoT: return "apot";
    case WeightQuant::Binary: return "binary";
    case WeightQuant::SignedMax8: return "int8";
  }
  return "?";
}

const char* act_quant_name(ActQuant a) {
  switch (a) {
    case ActQuant::Float: return "float";
    case ActQuant::Uniform: return "uniform";
    case ActQuant::PoT: return "pot";
    case ActQuant::APoT: return "apot";
    case ActQuant::PACT: return "pact";
    case ActQuant::IntGrid: return "intgrid";
  }
  return "?";
}

namespace {
Scheme weight_scheme(WeightQuant w) {
  return w == WeightQuant::Uniform ? Scheme::Uniform : w == WeightQuant::PoT ? Scheme::PoT : Scheme::APoT;
}
Scheme act_scheme(ActQuant a) {
  return a == ActQuant::Uniform ? Scheme::Uniform : a == ActQuant::PoT ? Scheme::PoT : Scheme::APoT;
}
}  // namespace

QuantSpec QuantSpec::full_precision() {
  QuantSpec s;
  s.weight = WeightQuant::Float;
  s.weight_bits = 32;
  s.act = ActQuant::Float;
  s.act_bits = 32;
  return s;
}

QuantSpec QuantSpec::same(Scheme sc, int bits, Semantics sem) {
  if (bits == 32) return full_precision();
  QuantSpec s;
  s.weight = sc == Scheme::Uniform ? WeightQuant::Uniform : sc == Scheme::PoT ? WeightQuant::PoT : WeightQuant::APoT;
  s.act = sc == Scheme::Uniform ? ActQuant::Uniform : sc == Scheme::PoT ? ActQuant::PoT : ActQuant::APoT;
  s.weight_bits = s.act_bits = bits;
  s.semantics = sem;
  s.validate();
  return s;
}

QuantSpec QuantSpec::first_last_int8(Semantics sem) {
  QuantSpec s = full_precision();
  s.weight = WeightQuant::SignedMax8;
  s.weight_bits = 8;
  s.semantics = sem;
  return s;
}

bool QuantSpec::has_weight_alpha() const {
  return weight_quantized() &&
         (weight == WeightQuant::Uniform || weight == WeightQuant::PoT || weight == WeightQuant::APoT);
}

bool QuantSpec::has_act_alpha() const { return act_quantized() && act != ActQuant::IntGrid; }

double QuantSpec::weight_alpha_default() const { return weight_alpha_init > 0 ? weight_alpha_init : 3.0; }

double QuantSpec::act_alpha_default() const {
  if (act_alpha_init > 0) return act_alpha_init;
  if (act == ActQuant::PACT) return static_cast<double>((1 << act_bits) - 1);
  return semantics == Semantics::APoT_C ? 8.0 : 6.0;
}

void QuantSpec::validate() const {
  if (weight_quantized()) {
    switch (weight) {
      case WeightQuant::Binary:
        MINIDL_CHECK(weight_bits == 1, "binary: weight bit width ", weight_bits, " is not supported (valid: 1, or 32)");
        break;
      case WeightQuant::SignedMax8:
        MINIDL_CHECK(weight_bits == 8, "int8: weight bit width ", weight_bits, " is not supported (valid: 8, or 32)");
        break;
      default: check_bits(weight_scheme(weight), weight_bits, true);
    }
  }
  if (act_quantized()) {
    switch (act) {
      case ActQuant::PACT:
        MINIDL_CHECK(act_bits >= 1 && act_bits <= 8, "PACT: bit width ", act_bits,
                     " is not supported (valid: 1..8, or 32)");
        break;
      case ActQuant::IntGrid:
        MINIDL_CHECK(act_bits >= 1 && act_bits <= 16, "intgrid: bit width ", act_bits,
                     " is not supported (valid: 1..16, or 32)");
        break;
      default: check_bits(act_scheme(act), act_bits, false);
    }
  }
  MINIDL_CHECK(grad_scale > 0, "quant: grad_scale must be > 0, got ", grad_scale);
}

std::string QuantSpec::str() const {
  std::ostringstream os;
  const int wb = weight_quantized() ? weight_bits : 32, ab = act_quantized() ? act_bits : 32;
  os << "w" << wb << "a" << ab << " (";
  if (!weight_quantized() && !act_quantized()) {
    os << "float)";
    return os.str();
  }
  os << (weight_quantized() ? weight_quant_name(weight) : "float") << "/"
     << (act_quantized() ? act_quant_name(act) : "float");
  const bool apot_act = act_quantized() && (act == ActQuant::Uniform || act == ActQuant::PoT || act == ActQuant::APoT);
  if (has_weight_alpha() || apot_act || (weight_quantized() && weight == WeightQuant::SignedMax8))
    os << ", " << semantics_name(semantics);
  os << ")";
  return os.str();
}

}  // namespace minidl::quant
