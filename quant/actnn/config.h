// ActNN's configuration (spec/quant.md sections 2.1 and 2.11): the optimisation level and the seed's flags.
// What each level compresses here (ActNN's levels, on minidl's ops):
//   L0  nothing: the packer stores every tensor as is (bit-identical to training without it) and only counts bytes.
//   L1  conv / linear inputs at 4 bits; batch-norm inputs exact; ReLU / dropout / STE masks as 1 bit, indices
//       narrowed, quantizer coefficients at 8 bits (those four are lossless or parameter-side only).
//   L2  L1 with batch-norm inputs at 4 bits too ("4-bit everything").
//   L3  L2 at 2 bits with adaptive bits (ActNN's default configuration: per-sample bits from ibits 8 and a
//       per-layer reallocation after every backward; make_adaptive_bits below builds that BitPolicy).
// L4 (swap packed activations to host memory) and L5 (allocator defragmentation) are GPU-only in ActNN; on the cpu
// backend the packed data already lives in host memory, so L4 would mean swapping to a memory-mapped file and L5
// is the caching allocator's empty_cache(); neither is implemented (docs/actnn.md).
#pragma once

#include <cstdint>
#include <map>
#include <string>

namespace minidl::quant::actnn {

enum class Level : uint8_t { L0 = 0, L1 = 1, L2 = 2, L3 = 3 };

/// "L0".."L3" (also "0".."3"); throws minidl::Error naming the accepted values otherwise.
Level parse_level(const std::string& s);
const char* level_name(Level l);

struct Config {
  Level level = Level::L0;
  bool compress = true;        // --ca: master switch (false behaves as L0)
  int bits = 2;                // --cabits: bits per activation element (the level's default when 0)
  int ibits = 8;               // --ibits: start / maximum of the adaptive allocator (BitPolicy; unused by fixed bits)
  bool per_group = true;       // --pergroup: per-group ranges, else one range per tensor
  bool per_layer = true;       // --perlayer: across-layer reallocation (BitPolicy; ActNN's default, used at L3 only)
  bool use_gradient = false;   // --usegradient: per-sample gradient sensitivity (BitPolicy)
  bool count_bn_bits = false;  // --count-bn-bits: the per-layer budget counts batch-norm codes (adaptive_bits.h)
  int64_t group_size = 256;    // --groupsize
  bool bf16_meta = true;       // metadata as bf16 (ActNN's choice) or f32
  int coef_bits = 8;           // quantizer coefficients (SaveKind::Coefficient)
  uint64_t seed = 0;           // the stochastic rounding stream's seed
  std::map<std::string, int> module_bits;  // per-module bits by dotted name ("layer1.0.conv1": 4)

  /// A level's defaults: bits 4 at L1/L2, 2 at L3.
  static Config for_level(Level l);
  /// Whether anything is compressed (level > L0 and compress).
  bool active() const { return compress && level != Level::L0; }
  /// Checks the values (bits 1..8, group size a positive multiple of 8, ...); throws minidl::Error.
  void validate() const;
  /// Parses "name=bits,name=bits" into module_bits (adds to it); throws on a malformed entry.
  void parse_module_bits(const std::string& spec);
  /// One line: level, bits, group size, ranges, metadata, fixed or adaptive bits (L3), seed.
  std::string str() const;
};

}  // namespace minidl::quant::actnn
