// Ranks as threads in one process, meeting through a fresh file store (Gloo's own tests do the same over a
// loopback TCP device): run_ranks(world, fn) calls fn(rank) on `world` threads and rethrows the first error.
#pragma once

#include <atomic>
#include <exception>
#include <filesystem>
#include <functional>
#include <string>
#include <thread>
#include <vector>

#include "distributed/init.h"

namespace minidl_test {

/// A new, empty directory for one rendezvous (file stores must not see keys of an earlier run).
inline std::string fresh_store_dir() {
  static std::atomic<int> counter{0};
  namespace fs = std::filesystem;
  const fs::path dir = fs::temp_directory_path() /
                       ("minidl-test-store-" + std::to_string(::getpid()) + "-" + std::to_string(counter.fetch_add(1)));
  fs::remove_all(dir);
  fs::create_directories(dir);
  return dir.string();
}

inline minidl::distributed::InitOptions thread_rank_options(const std::string& store, int rank, int world,
                                                            std::chrono::milliseconds timeout) {
  minidl::distributed::InitOptions o;
  o.rank = rank;
  o.world_size = world;
  o.file_store = store;
  o.timeout = timeout;
  return o;
}

/// fn(rank, errors-are-collected); returns each rank's exception (null when it finished).
inline std::vector<std::exception_ptr> run_ranks_collect(int world, const std::function<void(int)>& fn) {
  std::vector<std::exception_ptr> errors(world);
  std::vector<std::thread> threads;
  for (int r = 0; r < world; ++r)
    threads.emplace_back([&, r] {
      try {
        fn(r);
      } catch (...) {
        errors[r] = std::current_exception();
      }
    });
  for (auto& t : threads) t.join();
  return errors;
}

inline void run_ranks(int world, const std::function<void(int)>& fn) {
  for (auto& e : run_ranks_collect(world, fn))
    if (e) std::rethrow_exception(e);
}

}  // namespace minidl_test
