// Custom libFuzzer mutator for the gzip IDX target: mutating compressed bytes almost always breaks the deflate
// stream or the CRC, so plain mutation would only ever test zlib's error paths. Most of the time this one
// inflates the input, mutates the IDX content and deflates it again (libFuzzer's documented compression
// recipe); one mutation in eight works on the raw gzip bytes, to keep truncated and corrupt streams coming.
#include <zlib.h>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <vector>

extern "C" size_t LLVMFuzzerMutate(uint8_t* data, size_t size, size_t max_size);

namespace {

constexpr size_t kMaxInflated = size_t{1} << 20;  // mutate at most 1 MiB of IDX content

bool gunzip(const uint8_t* data, size_t size, std::vector<uint8_t>& out) {
  z_stream s{};
  if (inflateInit2(&s, 16 + MAX_WBITS) != Z_OK) return false;
  out.resize(kMaxInflated);
  s.next_in = const_cast<Bytef*>(data);
  s.avail_in = static_cast<uInt>(size);
  s.next_out = out.data();
  s.avail_out = static_cast<uInt>(out.size());
  const int rc = inflate(&s, Z_FINISH);
  out.resize(s.total_out);
  inflateEnd(&s);
  return rc == Z_STREAM_END;
}

// gzip-compresses src into dst (capacity cap); returns the compressed size, 0 when it does not fit.
size_t gzip(const uint8_t* src, size_t n, uint8_t* dst, size_t cap) {
  z_stream s{};
  if (deflateInit2(&s, Z_DEFAULT_COMPRESSION, Z_DEFLATED, 16 + MAX_WBITS, 8, Z_DEFAULT_STRATEGY) != Z_OK) return 0;
  s.next_in = const_cast<Bytef*>(src);
  s.avail_in = static_cast<uInt>(n);
  s.next_out = dst;
  s.avail_out = static_cast<uInt>(cap);
  const int rc = deflate(&s, Z_FINISH);
  const size_t out = rc == Z_STREAM_END ? s.total_out : 0;
  deflateEnd(&s);
  return out;
}

}  // namespace

extern "C" size_t LLVMFuzzerCustomMutator(uint8_t* data, size_t size, size_t max_size, unsigned int seed) {
  std::vector<uint8_t> plain;
  if (seed % 8 == 0 || !gunzip(data, size, plain)) return LLVMFuzzerMutate(data, size, max_size);
  const size_t n = plain.size();
  plain.resize(std::min(kMaxInflated, std::max<size_t>(2 * n, 64)));
  const size_t mutated = LLVMFuzzerMutate(plain.data(), n, plain.size());
  const size_t packed = gzip(plain.data(), mutated, data, max_size);
  return packed > 0 ? packed : LLVMFuzzerMutate(data, size, max_size);
}
