// Byte counts as people write them ("1G", "512M", "1.5GiB", "4096") and as error messages print them.
// Used by the allocator's memory limit (MINIDL_MEMORY_LIMIT) and the memory benches.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace minidl {

/// Parses a byte count: a non-negative number (decimals allowed) with an optional binary suffix K, M, G or T
/// (1024-based; "KB"/"KiB" and lower case are accepted too). Throws minidl::Error naming `what` (e.g. the
/// environment variable) and the bad text.
uint64_t parse_byte_size(std::string_view text, std::string_view what);

/// "1073741824 bytes (1.00 GiB)": the exact count for the record, the scaled one for the reader.
std::string format_bytes(uint64_t bytes);

}  // namespace minidl
