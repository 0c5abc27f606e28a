// FileStore (see file_store.h).
#include "distributed/file_store.h"

#include <unistd.h>

#include <atomic>
#include <cctype>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <thread>

#include "core/error.h"

namespace minidl::distributed {

namespace fs = std::filesystem;

FileStore::FileStore(std::string dir, std::chrono::milliseconds timeout) : dir_(std::move(dir)), timeout_(timeout) {
  std::error_code ec;
  fs::create_directories(dir_, ec);
  MINIDL_CHECK(fs::is_directory(dir_), "FileStore: cannot create the store directory '", dir_, "': ", ec.message());
}

// Keys hold '/' (PrefixStore) and anything else a caller picks: every byte but [A-Za-z0-9_.-] is %XX-escaped,
// so a key is always one plain file name.
std::string FileStore::path_of(const std::string& key) const {
  std::string name;
  for (unsigned char c : key) {
    if (std::isalnum(c) || c == '_' || c == '-' || (c == '.' && !name.empty())) {
      name += static_cast<char>(c);
    } else {
      char hex[4];
      std::snprintf(hex, sizeof hex, "%%%02X", c);
      name += hex;
    }
  }
  return (fs::path(dir_) / name).string();
}

void FileStore::set(const std::string& key, const std::vector<char>& value) {
  // A temporary name unique to this process and call (the tests run ranks as threads of one process).
  static std::atomic<uint64_t> counter{0};
  const std::string path = path_of(key);
  const std::string tmp = path + ".tmp-" + std::to_string(::getpid()) + "-" + std::to_string(counter.fetch_add(1));
  {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    out.write(value.data(), static_cast<std::streamsize>(value.size()));
    out.close();
    MINIDL_CHECK(out.good(), "FileStore: cannot write '", tmp, "'");
  }
  std::error_code ec;
  fs::rename(tmp, path, ec);
  MINIDL_CHECK(!ec, "FileStore: cannot rename '", tmp, "' to '", path, "': ", ec.message());
}

std::vector<char> FileStore::get(const std::string& key) {
  wait({key}, timeout_);
  std::ifstream in(path_of(key), std::ios::binary);
  MINIDL_CHECK(in.good(), "FileStore: cannot read key '", key, "' in '", dir_, "'");
  return std::vector<char>(std::istreambuf_iterator<char>(in), {});
}

void FileStore::wait(const std::vector<std::string>& keys, std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  for (const auto& key : keys) {
    const std::string path = path_of(key);
    while (!fs::exists(path)) {
      MINIDL_CHECK(std::chrono::steady_clock::now() < deadline, "FileStore: key '", key, "' did not appear in '", dir_,
                   "' within ", timeout.count(), " ms (a rank missing?)");
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
  }
}

}  // namespace minidl::distributed
