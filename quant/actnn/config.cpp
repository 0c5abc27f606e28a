// Parsing and checking of ActNN's configuration.
#include "quant/actnn/config.h"

#include <sstream>

#include "core/error.h"

namespace minidl::quant::actnn {

Level parse_level(const std::string& s) {
  const std::string t = (!s.empty() && (s[0] == 'L' || s[0] == 'l')) ? s.substr(1) : s;
  if (t == "0") return Level::L0;
  if (t == "1") return Level::L1;
  if (t == "2") return Level::L2;
  if (t == "3") return Level::L3;
  MINIDL_FAIL("actnn: unknown optimisation level '", s, "' (valid: L0, L1, L2, L3; L4/L5 are GPU-only in ActNN)");
}

const char* level_name(Level l) {
  switch (l) {
    case Level::L0: return "L0";
    case Level::L1: return "L1";
    case Level::L2: return "L2";
    case Level::L3: return "L3";
  }
  return "?";
}

Config Config::for_level(Level l) {
  Config c;
  c.level = l;
  c.bits = l == Level::L3 ? 2 : 4;
  return c;
}

void Config::validate() const {
  MINIDL_CHECK(bits >= 1 && bits <= 8, "actnn: --cabits ", bits, " is not in 1..8");
  MINIDL_CHECK(ibits >= 1 && ibits <= 8, "actnn: --ibits ", ibits, " is not in 1..8");
  MINIDL_CHECK(coef_bits >= 1 && coef_bits <= 8, "actnn: coefficient bits ", coef_bits, " is not in 1..8");
  MINIDL_CHECK(group_size > 0 && group_size % 8 == 0, "actnn: --groupsize ", group_size,
               " must be a positive multiple of 8");
  for (const auto& [name, b] : module_bits)
    MINIDL_CHECK(b >= 1 && b <= 8, "actnn: bits ", b, " for module '", name, "' is not in 1..8");
}

void Config::parse_module_bits(const std::string& spec) {
  std::stringstream ss(spec);
  std::string item;
  while (std::getline(ss, item, ',')) {
    if (item.empty()) continue;
    const auto eq = item.find('=');
    MINIDL_CHECK(eq != std::string::npos && eq > 0 && eq + 1 < item.size(), "actnn: module bits entry '", item,
                 "' is not name=bits");
    const std::string name = item.substr(0, eq), val = item.substr(eq + 1);
    int b = 0;
    try {
      size_t used = 0;
      b = std::stoi(val, &used);
      MINIDL_CHECK(used == val.size(), "");
    } catch (...) {
      MINIDL_FAIL("actnn: module bits entry '", item, "': '", val, "' is not an integer");
    }
    MINIDL_CHECK(b >= 1 && b <= 8, "actnn: bits ", b, " for module '", name, "' is not in 1..8");
    module_bits[name] = b;
  }
}

std::string Config::str() const {
  std::ostringstream os;
  os << "actnn " << level_name(active() ? level : Level::L0);
  if (active()) {
    os << " cabits " << bits << " groupsize " << group_size << (per_group ? " per-group" : " per-tensor") << " ranges, "
       << (bf16_meta ? "bf16" : "f32") << " metadata, ";
    // the adaptive settings act at L3 only (make_adaptive_bits); ActNN's L1 / L2 keep their bits fixed
    if (level == Level::L3 && (ibits > bits || per_layer)) {
      os << "adaptive bits (ibits " << ibits << (per_layer ? ", perlayer" : "")
         << (per_layer && count_bn_bits ? ", batch-norm codes in the budget" : "")
         << (use_gradient ? ", usegradient" : "") << ")";
    } else {
      os << "fixed bits";
    }
    os << ", seed " << seed;
    if (!module_bits.empty()) os << ", " << module_bits.size() << " per-module override(s)";
  }
  return os.str();
}

}  // namespace minidl::quant::actnn
