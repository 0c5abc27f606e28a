// The allocator's memory cap (set_memory_limit / MINIDL_MEMORY_LIMIT) and the byte-count parser behind it.
#include <doctest/doctest.h>

#include <cstdlib>

#include "core/byte_size.h"
#include "tensor/allocator.h"
#include "tensor/tensor.h"

using namespace minidl;

namespace {
// Restores the cpu allocator's limit when a test case ends, so a failing CHECK cannot cap later cases.
struct LimitGuard {
  size_t saved = memory_limit(kCPU);
  ~LimitGuard() { set_memory_limit(kCPU, saved); }
};
}  // namespace

TEST_CASE("parse_byte_size reads plain counts and K/M/G/T suffixes, 1024-based") {
  CHECK(parse_byte_size("4096", "x") == 4096);
  CHECK(parse_byte_size("64K", "x") == 65536);
  CHECK(parse_byte_size("64kb", "x") == 65536);
  CHECK(parse_byte_size("512M", "x") == 512ull << 20);
  CHECK(parse_byte_size("1G", "x") == 1ull << 30);
  CHECK(parse_byte_size("1GiB", "x") == 1ull << 30);
  CHECK(parse_byte_size("1.5G", "x") == 3ull << 29);
  CHECK(parse_byte_size("2T", "x") == 2ull << 40);
  CHECK(parse_byte_size("0", "x") == 0);
  CHECK_THROWS_WITH_AS(parse_byte_size("", "MINIDL_MEMORY_LIMIT"), doctest::Contains("MINIDL_MEMORY_LIMIT"), Error);
  CHECK_THROWS_WITH_AS(parse_byte_size("lots", "V"), doctest::Contains("'lots' is not a byte count"), Error);
  CHECK_THROWS_WITH_AS(parse_byte_size("1X", "V"), doctest::Contains("unknown unit"), Error);
  CHECK_THROWS_WITH_AS(parse_byte_size("-1G", "V"), doctest::Contains("no number"), Error);
  CHECK_THROWS_WITH_AS(parse_byte_size("1.2.3M", "V"), doctest::Contains("malformed"), Error);
  CHECK_THROWS_AS(parse_byte_size("1IB", "V"), Error);
  CHECK(format_bytes(1ull << 30) == "1073741824 bytes (1.00 GiB)");
}

TEST_CASE("memory_limit_from_env reads MINIDL_MEMORY_LIMIT") {
  const char* old = std::getenv("MINIDL_MEMORY_LIMIT");
  const std::string saved = old ? old : "";
  setenv("MINIDL_MEMORY_LIMIT", "3M", 1);
  CHECK(memory_limit_from_env() == 3u << 20);
  setenv("MINIDL_MEMORY_LIMIT", "3 potatoes", 1);
  CHECK_THROWS_WITH_AS(memory_limit_from_env(), doctest::Contains("MINIDL_MEMORY_LIMIT: '3 potatoes'"), Error);
  unsetenv("MINIDL_MEMORY_LIMIT");
  CHECK(memory_limit_from_env() == 0);
  if (old) setenv("MINIDL_MEMORY_LIMIT", saved.c_str(), 1);
}

TEST_CASE("a capped allocator throws a clear error naming the request, the limit and the live bytes") {
  LimitGuard guard;
  Allocator& al = allocator_for(kCPU);
  const size_t live0 = al.stats().live_bytes;
  set_memory_limit(kCPU, live0 + (8u << 20));  // 8 MiB of headroom
  CHECK(memory_limit(kCPU) == live0 + (8u << 20));
  CHECK(al.stats().reserved_bytes <= al.limit());  // lowering the cap returned the cache
  Tensor a = empty({1 << 20});                     // 4 MiB: fits
  try {
    Tensor b = empty({(1 << 20) + 16});  // 4 MiB + 64 bytes more: does not
    FAIL("allocation above the limit did not throw");
  } catch (const Error& e) {
    const std::string msg = e.what();
    CHECK(msg.find("allocating 4194368 bytes") != std::string::npos);                        // the request
    CHECK(msg.find(std::to_string(live0 + (8u << 20)) + " bytes") != std::string::npos);     // the limit
    CHECK(msg.find(std::to_string(al.stats().live_bytes) + " bytes") != std::string::npos);  // what is live
    CHECK(msg.find("MINIDL_MEMORY_LIMIT") != std::string::npos);
    CHECK(msg.find('\n') == std::string::npos);  // one line
  }
  CHECK(al.stats().live_bytes == live0 + (4u << 20));  // the failed request left nothing behind
}

TEST_CASE("the cap counts cached blocks, and returns them before refusing a request") {
  LimitGuard guard;
  Allocator& al = allocator_for(kCPU);
  al.empty_cache();
  const size_t live0 = al.stats().live_bytes;
  set_memory_limit(kCPU, live0 + (6u << 20));
  { Tensor four = empty({1 << 20}); }  // 4 MiB freed into the cache
  CHECK(al.stats().reserved_bytes >= live0 + (4u << 20));
  // 5 MiB of another size class: live + cached + request passes the cap, so the cache must go first.
  Tensor five = empty({5 << 18});
  CHECK(al.stats().live_bytes == live0 + (5u << 20));
  CHECK(al.stats().reserved_bytes <= live0 + (6u << 20));
  // With the cap lifted, allocation works again.
  set_memory_limit(kCPU, 0);
  CHECK(memory_limit(kCPU) == 0);
  Tensor big = empty({4 << 20});
  CHECK(big.numel() == (4 << 20));
}
