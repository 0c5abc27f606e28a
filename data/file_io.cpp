// File helpers for the readers (see file_io.h). std::filesystem for existence checks, stdio for reading,
// errno text for the reason.
#include "data/file_io.h"

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <memory>

#include "core/error.h"
#include "data/dataset.h"

namespace minidl::data {

namespace detail {

void check_index(const char* who, int64_t index, int64_t size) {
  MINIDL_CHECK(index >= 0 && index < size, who, ": index ", index, " out of range [0, ", size, ")");
}

std::vector<uint8_t> read_file_bytes(const std::string& path, const char* who) {
  std::error_code ec;
  if (std::filesystem::is_directory(path, ec)) MINIDL_FAIL(who, ": '", path, "' is a directory, expected a file");
  std::unique_ptr<FILE, int (*)(FILE*)> f(std::fopen(path.c_str(), "rb"), &std::fclose);
  if (!f) MINIDL_FAIL(who, ": cannot open '", path, "': ", std::strerror(errno));
  std::vector<uint8_t> bytes;
  const auto expected = std::filesystem::file_size(path, ec);
  if (!ec) bytes.reserve(static_cast<size_t>(expected));  // one allocation for a 30 MB CIFAR batch
  uint8_t buf[1 << 16];
  size_t n;
  while ((n = std::fread(buf, 1, sizeof buf, f.get())) > 0) bytes.insert(bytes.end(), buf, buf + n);
  if (std::ferror(f.get()))
    MINIDL_FAIL(who, ": error reading '", path, "' at offset ", bytes.size(), ": ", std::strerror(errno));
  return bytes;
}

void require_directory(const std::string& path, const char* who) {
  std::error_code ec;
  auto st = std::filesystem::status(path, ec);
  if (!std::filesystem::exists(st)) MINIDL_FAIL(who, ": data directory '", path, "' does not exist");
  if (!std::filesystem::is_directory(st)) MINIDL_FAIL(who, ": '", path, "' is not a directory");
}

bool file_exists(const std::string& path) {
  std::error_code ec;
  return std::filesystem::is_regular_file(path, ec);
}

std::string path_join(const std::string& a, const std::string& b) {
  if (a.empty()) return b;
  if (a.back() == '/') return a + b;
  return a + "/" + b;
}

}  // namespace detail

}  // namespace minidl::data
