// A Store in a directory every rank sees (single-node mpirun, the tests' ranks as threads): one file per key,
// written to a temporary name and renamed into place, so a reader sees a whole value or none. Readers poll.
#pragma once

#include <chrono>
#include <string>

#include "distributed/store.h"

namespace minidl::distributed {

class FileStore : public Store {
 public:
  /// Creates `dir` when missing; get() waits up to `timeout` for a key.
  FileStore(std::string dir, std::chrono::milliseconds timeout);

  void set(const std::string& key, const std::vector<char>& value) override;
  std::vector<char> get(const std::string& key) override;
  void wait(const std::vector<std::string>& keys, std::chrono::milliseconds timeout) override;

 private:
  std::string path_of(const std::string& key) const;

  std::string dir_;
  std::chrono::milliseconds timeout_;
};

}  // namespace minidl::distributed
