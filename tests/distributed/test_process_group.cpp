// The Gloo process group with ranks as threads over loopback TCP: every collective against values computed
// here, rendezvous through a file store and through the TCP store (MASTER_ADDR/MASTER_PORT), the environment
// parsing, and the failure modes: a dead peer and a silent peer end in minidl::Error on the survivor within the
// timeout, a missing rank fails the rendezvous.
// minidl-test-requires: GLOO (tests/CMakeLists.txt leaves this file out, reported skipped, without them)
#include <doctest/doctest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>

#include "distributed/init.h"
#include "distributed/metrics.h"
#include "distributed/process_group_nccl.h"
#include "rank_threads.h"
#include "tensor/tensor.h"

using namespace minidl;
using namespace minidl::distributed;
using minidl_test::fresh_store_dir;
using minidl_test::run_ranks;
using minidl_test::run_ranks_collect;
using minidl_test::thread_rank_options;
using namespace std::chrono_literals;

namespace {

Tensor filled(Shape s, double v, DType d) { return full(s, v, TensorOptions().dtype(d)); }

int free_port() {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = 0;
  ::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a);
  socklen_t len = sizeof a;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
  ::close(fd);
  return ntohs(a.sin_port);
}

}  // namespace

TEST_CASE("process group (gloo): allreduce, broadcast, allgather, barrier over 3 ranks") {
  const std::string store = fresh_store_dir();
  run_ranks(3, [&](int r) {
    auto pg = init_process_group(thread_rank_options(store, r, 3, 20s));
    CHECK(pg->rank() == r);
    CHECK(pg->size() == 3);
    CHECK(pg->backend_name() == "gloo");
    for (DType d : {DType::f32, DType::f64, DType::i64}) {
      Tensor s = filled({5}, r + 1, d);  // 1 + 2 + 3
      pg->allreduce(s, ReduceOp::Sum);
      for (double v : s.to_vector<double>()) CHECK(v == 6);
      Tensor m = filled({2, 3}, 10 * r, d);
      pg->allreduce(m, ReduceOp::Max);
      for (double v : m.to_vector<double>()) CHECK(v == 20);
    }
    Tensor a = filled({4}, r, DType::f32);
    pg->allreduce(a, ReduceOp::Average);
    for (float v : a.to_vector<float>()) CHECK(v == doctest::Approx(1.0));
    Tensor b = filled({3}, r == 2 ? 7.5 : -1, DType::f64);
    pg->broadcast(b, 2);
    for (double v : b.to_vector<double>()) CHECK(v == 7.5);
    auto all = pg->allgather(filled({2}, 100 + r, DType::i64));
    REQUIRE(all.size() == 3);
    for (int k = 0; k < 3; ++k) CHECK(all[k].to_vector<int64_t>() == std::vector<int64_t>{100 + k, 100 + k});
    pg->barrier();
    // a second communicator works independently of the first
    auto g2 = pg->new_group();
    Tensor c = filled({1}, 1, DType::f32);
    g2->allreduce(c);
    CHECK(c.item<float>() == 3);
    CHECK(all_sum(pg.get(), {1.0, static_cast<double>(r)}) == std::vector<double>{3.0, 3.0});
  });
}

TEST_CASE("process group (gloo): rendezvous through the TCP store (MASTER_ADDR/MASTER_PORT)") {
  const int port = free_port();
  run_ranks(2, [&](int r) {
    InitOptions o;
    o.rank = r;
    o.world_size = 2;
    o.master_addr = "127.0.0.1";
    o.master_port = port;
    o.timeout = 20s;
    auto pg = init_process_group(o);
    Tensor t = filled({3}, r == 0 ? 2 : 5, DType::f32);
    pg->allreduce(t);
    CHECK(t.to_vector<float>() == std::vector<float>{7, 7, 7});
    pg->barrier();  // rank 0 serves the store: it must outlive rank 1's use of it
  });
}

TEST_CASE("process group: options from the environment") {
  for (const char* v : {"WORLD_SIZE", "RANK", "MASTER_ADDR", "MASTER_PORT", "OMPI_COMM_WORLD_SIZE",
                        "OMPI_COMM_WORLD_RANK", "OMPI_MCA_ess_base_jobid", "MINIDL_DIST_STORE", "MINIDL_DIST_TIMEOUT"})
    ::unsetenv(v);
  CHECK_FALSE(launched_distributed());
  CHECK(init_options_from_env().world_size == 1);
  ::setenv("WORLD_SIZE", "4", 1);
  ::setenv("RANK", "3", 1);
  ::setenv("MASTER_ADDR", "10.0.0.1", 1);
  ::setenv("MASTER_PORT", "29500", 1);
  ::setenv("MINIDL_DIST_TIMEOUT", "7", 1);
  CHECK(launched_distributed());
  InitOptions o = init_options_from_env();
  CHECK(o.rank == 3);
  CHECK(o.world_size == 4);
  CHECK(o.master_addr == "10.0.0.1");
  CHECK(o.master_port == 29500);
  CHECK(o.timeout == 7s);
  ::setenv("RANK", "4", 1);
  CHECK_THROWS_WITH_AS(init_options_from_env(), doctest::Contains("outside world size 4"), Error);
  ::setenv("RANK", "x", 1);
  CHECK_THROWS_WITH_AS(init_options_from_env(), doctest::Contains("RANK='x' is not an integer"), Error);
  for (const char* v : {"WORLD_SIZE", "RANK", "MASTER_ADDR", "MASTER_PORT"}) ::unsetenv(v);
  // mpirun: OpenMPI's variables, a file store per job when MASTER_ADDR is not set
  ::setenv("OMPI_COMM_WORLD_SIZE", "2", 1);
  ::setenv("OMPI_COMM_WORLD_RANK", "1", 1);
  ::setenv("OMPI_MCA_ess_base_jobid", "1234", 1);
  o = init_options_from_env();
  CHECK(o.rank == 1);
  CHECK(o.world_size == 2);
  CHECK(o.file_store == "/tmp/minidl-rendezvous-1234");
  for (const char* v :
       {"OMPI_COMM_WORLD_SIZE", "OMPI_COMM_WORLD_RANK", "OMPI_MCA_ess_base_jobid", "MINIDL_DIST_TIMEOUT"})
    ::unsetenv(v);
}

TEST_CASE("process group (gloo): a dead peer is a clear error on the survivor, not a hang") {
  const std::string store = fresh_store_dir();
  const auto t0 = std::chrono::steady_clock::now();
  auto errors = run_ranks_collect(2, [&](int r) {
    auto pg = init_process_group(thread_rank_options(store, r, 2, 3s));
    Tensor t = filled({1000}, 1, DType::f32);
    pg->allreduce(t);    // both alive
    if (r == 1) return;  // rank 1 dies: its connections close with its process group
    for (int i = 0; i < 3; ++i) pg->allreduce(t);
  });
  const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  CHECK(errors[1] == nullptr);
  REQUIRE(errors[0] != nullptr);
  try {
    std::rethrow_exception(errors[0]);
  } catch (const Error& e) {
    const std::string msg = e.what();
    MESSAGE("survivor's error after " << s << " s: " << msg);
    CHECK(msg.find("rank 0 of 2") != std::string::npos);
    CHECK(msg.find("allreduce failed") != std::string::npos);
  }
  CHECK(s < 10);
}

TEST_CASE("process group (gloo): a silent peer times out on the survivor") {
  const std::string store = fresh_store_dir();
  std::atomic<bool> survivor_done{false};
  const auto t0 = std::chrono::steady_clock::now();
  auto errors = run_ranks_collect(2, [&](int r) {
    auto pg = init_process_group(thread_rank_options(store, r, 2, 1s));
    if (r == 1) {  // alive, connected, but never joins the collective (a rank stuck elsewhere)
      while (!survivor_done) std::this_thread::sleep_for(10ms);
      return;
    }
    Tensor t = filled({4}, 1, DType::f32);
    try {
      pg->allreduce(t);
    } catch (...) {
      survivor_done = true;
      throw;
    }
    survivor_done = true;
  });
  const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  REQUIRE(errors[0] != nullptr);
  CHECK_THROWS_WITH_AS(std::rethrow_exception(errors[0]), doctest::Contains("timed out"), Error);
  CHECK(s < 10);
}

TEST_CASE("process group (gloo): a rank that never arrives fails the rendezvous within the timeout") {
  const std::string store = fresh_store_dir();
  const auto t0 = std::chrono::steady_clock::now();
  CHECK_THROWS_WITH_AS(init_process_group(thread_rank_options(store, 0, 2, 1s)), doctest::Contains("rendezvous"),
                       Error);
  CHECK(std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count() < 10);
}

TEST_CASE("process group: bad arguments") {
  const std::string store = fresh_store_dir();
  auto pg = init_process_group(thread_rank_options(store, 0, 1, 5s));
  CHECK_THROWS_WITH_AS(pg->allreduce(randn({4, 4}).transpose(0, 1)), doctest::Contains("contiguous"), Error);
  CHECK_THROWS_WITH_AS(pg->broadcast(randn({2}), 3), doctest::Contains("root 3"), Error);
  InitOptions o = thread_rank_options(store, 0, 1, 5s);
  o.backend = "mpi";
  CHECK_THROWS_WITH_AS(init_process_group(o), doctest::Contains("unknown backend 'mpi'"), Error);
  if (!nccl_available()) {
    o.backend = "nccl";
    CHECK_THROWS_WITH_AS(init_process_group(o), doctest::Contains("needs a minidl built with CUDA and NCCL"), Error);
  }
}
