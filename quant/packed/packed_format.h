// Bit packing of integer weight codes for packed models (issue 18; docs/deploy.md). A layer's codes are small
// integers (APoT/PoT: +-n over the unit alpha / n_max; uniform: -s..s; binary: -1, 0, +1; 8-bit edge layers:
// -128..127). They are stored as indices into the layer's code book: the sorted distinct codes that occur,
// each index in `bits = max(1, ceil(log2(book size)))` bits, element j at bit j * bits of the byte stream,
// least significant bit first (little-endian bit order, byte by byte). A 4-bit APoT layer (15 codes) thus
// takes 4 bits a weight and a binary layer with no exact zero (codes {-1, +1}) 1 bit.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace minidl::quant {

struct PackedCodes {
  std::vector<int32_t> book;   // sorted, distinct, at most 256 entries
  int bits = 1;                // 1..8
  int64_t count = 0;           // number of codes
  std::vector<uint8_t> bytes;  // ceil(count * bits / 8) bytes
};

/// Bits per index for a code book of `book_size` entries (>= 1): max(1, ceil(log2(book_size))).
int bits_for_book(size_t book_size);
/// Packs codes (any int32 values, at most 256 distinct); throws minidl::Error beyond that.
PackedCodes pack_codes(const std::vector<int32_t>& codes);
/// Unpacks; throws minidl::Error naming `what` when the book is unsorted or too large for `bits`, the byte
/// count does not match count * bits, or an index points past the end of the book.
std::vector<int32_t> unpack_codes(const PackedCodes& p, const std::string& what);

}  // namespace minidl::quant
