// The rendezvous stores without Gloo: FileStore (one file per key) and PrefixStore, as NCCL's rendezvous and a
// Gloo-less build use them. A reader waits for a key written later by another thread, keys with any bytes
// ('/' from PrefixStore included) stay one file each, prefixes keep groups apart, and a key that never comes
// is an error naming it within the timeout.
#include <doctest/doctest.h>

#include <chrono>
#include <filesystem>
#include <thread>

#include "core/build_features.h"
#include "core/error.h"
#include "distributed/file_store.h"
#include "rank_threads.h"
#include "test_skip.h"

using namespace minidl;
using namespace minidl::distributed;
using namespace std::chrono_literals;

namespace {
std::vector<char> bytes(const std::string& s) { return {s.begin(), s.end()}; }
}  // namespace

TEST_CASE("FileStore: get waits for a key another thread sets later") {
  const std::string dir = minidl_test::fresh_store_dir();
  auto store = std::make_shared<FileStore>(dir, 10s);
  std::thread writer([&] {
    std::this_thread::sleep_for(50ms);
    FileStore(dir, 10s).set("late", bytes("value"));
  });
  CHECK(store->get("late") == bytes("value"));
  writer.join();
  // Replacing a value, an empty value, and a key full of odd bytes.
  store->set("late", bytes("second"));
  CHECK(store->get("late") == bytes("second"));
  store->set("empty", {});
  CHECK(store->get("empty").empty());
  const std::string odd = "../a/b c%\n.";
  store->set(odd, bytes("odd"));
  CHECK(store->get(odd) == bytes("odd"));
  size_t files = 0;
  for (const auto& e : std::filesystem::directory_iterator(dir)) files += e.is_regular_file() ? 1 : 0;
  CHECK(files == 3);  // no temporaries left behind, nothing written outside dir
}

TEST_CASE("FileStore: a key that never comes is an error naming it, within the timeout") {
  FileStore store(minidl_test::fresh_store_dir(), 200ms);
  const auto t0 = std::chrono::steady_clock::now();
  CHECK_THROWS_WITH_AS(store.get("missing-key"), doctest::Contains("key 'missing-key' did not appear"), Error);
  CHECK_THROWS_WITH_AS(store.wait({"a", "b"}, 100ms), doctest::Contains("within 100 ms"), Error);
  CHECK(std::chrono::steady_clock::now() - t0 < 5s);
}

TEST_CASE("PrefixStore: groups with different prefixes do not see each other's keys") {
  auto base = std::make_shared<FileStore>(minidl_test::fresh_store_dir(), 200ms);
  PrefixStore a("pg0", base), b("pg1", base);
  a.set("id", bytes("A"));
  b.set("id", bytes("B"));
  CHECK(a.get("id") == bytes("A"));
  CHECK(b.get("id") == bytes("B"));
  CHECK(base->get("pg0/id") == bytes("A"));
  a.wait({"id"}, 100ms);
  CHECK_THROWS_WITH_AS(a.wait({"other"}, 50ms), doctest::Contains("pg0/other"), Error);
}

TEST_CASE("init_process_group without Gloo: the gloo backend is one error naming Gloo") {
  if (build_features().gloo) MINIDL_SKIP("minidl was built with Gloo (test_process_group.cpp covers the gloo group)");
  const InitOptions o = minidl_test::thread_rank_options(minidl_test::fresh_store_dir(), 0, 1, 1s);
  CHECK_THROWS_WITH_AS(init_process_group(o), doctest::Contains("minidl was built without Gloo"), Error);
}
