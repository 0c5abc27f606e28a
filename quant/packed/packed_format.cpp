// Bit packing of code-book indices (see packed_format.h).
#include "quant/packed/packed_format.h"

#include <algorithm>

#include "core/error.h"

namespace minidl::quant {

int bits_for_book(size_t book_size) {
  MINIDL_CHECK(book_size >= 1 && book_size <= 256, "packed codes: a code book holds 1..256 codes, got ", book_size);
  int b = 1;
  while ((size_t{1} << b) < book_size) ++b;
  return b;
}

PackedCodes pack_codes(const std::vector<int32_t>& codes) {
  PackedCodes p;
  p.book = codes;
  std::sort(p.book.begin(), p.book.end());
  p.book.erase(std::unique(p.book.begin(), p.book.end()), p.book.end());
  if (p.book.empty()) p.book.push_back(0);  // an empty tensor still has a (one-code) book
  MINIDL_CHECK(p.book.size() <= 256, "packed codes: ", p.book.size(),
               " distinct codes; at most 256 fit the 8-bit indices of the packed format");
  p.bits = bits_for_book(p.book.size());
  p.count = static_cast<int64_t>(codes.size());
  p.bytes.assign(static_cast<size_t>((p.count * p.bits + 7) / 8), 0);
  for (int64_t j = 0; j < p.count; ++j) {
    const auto idx = static_cast<uint32_t>(
        std::lower_bound(p.book.begin(), p.book.end(), codes[static_cast<size_t>(j)]) - p.book.begin());
    for (int b = 0; b < p.bits; ++b) {
      const int64_t bit = j * p.bits + b;
      if ((idx >> b) & 1u) p.bytes[static_cast<size_t>(bit / 8)] |= static_cast<uint8_t>(1u << (bit % 8));
    }
  }
  return p;
}

std::vector<int32_t> unpack_codes(const PackedCodes& p, const std::string& what) {
  MINIDL_CHECK(p.bits >= 1 && p.bits <= 8, what, ": index width ", p.bits, " bits is outside 1..8");
  MINIDL_CHECK(!p.book.empty() && p.book.size() <= (size_t{1} << p.bits), what, ": code book of ", p.book.size(),
               " codes does not fit ", p.bits, "-bit indices");
  MINIDL_CHECK(
      std::is_sorted(p.book.begin(), p.book.end()) && std::adjacent_find(p.book.begin(), p.book.end()) == p.book.end(),
      what, ": the code book is not sorted and distinct");
  MINIDL_CHECK(p.count >= 0 && p.bytes.size() == static_cast<size_t>((p.count * p.bits + 7) / 8), what, ": ",
               p.bytes.size(), " bytes of packed codes, expected ", (p.count * p.bits + 7) / 8, " for ", p.count,
               " codes of ", p.bits, " bits");
  std::vector<int32_t> out(static_cast<size_t>(p.count));
  for (int64_t j = 0; j < p.count; ++j) {
    uint32_t idx = 0;
    for (int b = 0; b < p.bits; ++b) {
      const int64_t bit = j * p.bits + b;
      idx |= static_cast<uint32_t>((p.bytes[static_cast<size_t>(bit / 8)] >> (bit % 8)) & 1u) << b;
    }
    MINIDL_CHECK(idx < p.book.size(), what, ": code index ", idx, " at element ", j, " is past the code book (",
                 p.book.size(), " codes)");
    out[static_cast<size_t>(j)] = p.book[idx];
  }
  return out;
}

}  // namespace minidl::quant
