// Level sets of the quantization schemes (spec/quant.md section 1.2): uniform, plain powers of two (PoT) and
// additive powers of two (APoT, the reference's build_power_value). A b-bit signed (weight) set uses the
// magnitude set of b-1 bits mirrored around 0 (2-bit signed = ternary in every scheme); a b-bit unsigned
// (activation) set uses b bits. Every set is normalised to max 1; the caller multiplies by its clip alpha.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "tensor/tensor.h"

namespace minidl::quant {

enum class Scheme : uint8_t { Uniform, PoT, APoT };

const char* scheme_name(Scheme s);  // "uniform", "pot", "apot"
/// Parses "uniform" / "pot" / "apot" (case-insensitive); anything else throws listing the valid names.
Scheme parse_scheme(const std::string& name);

struct BitRange {
  int lo, hi;
};
/// Valid bit widths of a scheme: Uniform 2..8; APoT 2..6 (the reference's additive builder has no set outside
/// B = 2..6); PoT 2..7 unsigned (2^-(2^8-2) underflows float32) and 2..8 signed (uses the 7-bit magnitudes).
BitRange valid_bits(Scheme s, bool is_signed);
/// Throws "APoT: bit width 1 is not supported (valid: 2..6)" style errors.
void check_bits(Scheme s, int bits, bool is_signed);

/// The reference's build_power_value(B, additive) before normalisation: sums of one term from each list of
/// the section 1.2 table (PoT: {0} and 2^-1 .. 2^-(2^B-1)), sorted, duplicates removed. Exact in double.
std::vector<double> raw_power_values(int B, bool additive);

/// The non-negative levels a quantizer projects |x| (signed) or x (unsigned) onto, sorted, max 1:
/// signed b-bit -> the (b-1)-bit magnitude set (b = 2: {0, 1}); unsigned b-bit -> the b-bit set.
/// Uniform magnitudes are k / s, s = 2^(b-1) - 1 (signed) or 2^b - 1 (unsigned).
std::vector<double> magnitude_levels(Scheme s, int bits, bool is_signed);

/// The full level set in [-1, 1] (signed: magnitudes mirrored, 2^b - 1 values) or [0, 1] (unsigned), sorted.
std::vector<double> levels(Scheme s, int bits, bool is_signed);

/// Whether the quantizer uses the rounding path round(c * s) / s (half-to-even) instead of a projection onto
/// the level set: uniform schemes, and 2-bit signed weights (ternary: "for 2-bit weights PoT = uniform").
bool uses_rounding(Scheme s, int bits, bool is_signed);
/// s of the rounding path: 2^(b-1) - 1 (signed) or 2^b - 1 (unsigned).
double rounding_steps(int bits, bool is_signed);

struct LevelSet;
/// The integer codes of a PoT / APoT level set's magnitudes (ascending): every level is raw / max(raw) with raw
/// a sum of powers of two (section 1.2), so raw * 2^E is an integer n for the largest exponent E and the level
/// is exactly n / n_max (APoT 3-bit unsigned: {0,1,2,3,4,6,8,10}, n_max 10). Used by the ONNX export and the
/// packed models (quant/packed), whose codes are these n over the unit alpha / n_max. Throws for a rounding
/// (uniform) set, which has the grid k / steps instead.
std::vector<int64_t> integer_levels(const LevelSet& ls, int64_t& n_max);

/// A quantizer's grid, ready for the ops: the magnitude levels as a 1-D tensor of `dtype` on `device` (for
/// Backend::project_to_levels), or the rounding steps. Levels are rounded the way the reference builds them
/// (float32(v) * float32(1 / max)), so projections agree with it bit for bit; float64 holds those same float32
/// values, as the reference's float64 run does (exact v / max differs by up to 7e-8 for APoT, whose maxima
/// 5/8, 3/4, 25/32, 7/8 have no exact float32 reciprocal: on the released W4/A4 checkpoint in float64 that
/// moved one of the 16 reference rows by 0.15).
struct LevelSet {
  Scheme scheme = Scheme::APoT;
  int bits = 4;
  bool is_signed = false;
  bool rounding = false;  // round(c * steps) / steps instead of projecting onto `magnitudes`
  double steps = 0.0;
  Tensor magnitudes;  // sorted, non-negative; undefined when `rounding`

  static LevelSet make(Scheme s, int bits, bool is_signed, DType dtype = DType::f32, Device device = kCPU);
  /// The same set with its magnitudes in `dtype`, on the same device (the same values: see above); a rounding
  /// set has no tensor and is returned as is.
  LevelSet to(DType dtype) const;
  /// "APoT 4-bit signed" for messages.
  std::string str() const;
};

}  // namespace minidl::quant
