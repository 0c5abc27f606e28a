// Small file helpers shared by the readers: every failure becomes a minidl::Error that names the reader,
// the path and the OS reason, so a bad --data flag is a one-line message rather than a crash.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace minidl::data::detail {

/// The whole file as bytes; throws "<who>: cannot open '<path>': <reason>".
std::vector<uint8_t> read_file_bytes(const std::string& path, const char* who);
/// Throws "<who>: data directory '<path>' does not exist" (or "is not a directory").
void require_directory(const std::string& path, const char* who);
/// True when a regular file exists at path.
bool file_exists(const std::string& path);
/// a + "/" + b, without doubling the separator.
std::string path_join(const std::string& a, const std::string& b);

}  // namespace minidl::data::detail
