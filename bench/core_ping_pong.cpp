// How far apart two CPUs are: the round trip of one cache line bounced between two threads pinned to them.
//
//   bench/core_ping_pong --cpus 0,1 --trips 200000 --repeats 3
//
// Why: the 2-vCPU hosts minidl is measured on switch between a mode where the vCPUs share a cache (~80 ns per
// round trip) and one where they are far apart (~400 ns). Code that moves data between the threads (barriers,
// buffers handed from one thread to the other) runs slower in the second; the benchmarks' notes name the mode
// with this figure (docs/deploy.md). Linux only (pthread affinity).
#include <pthread.h>
#include <sched.h>

#include <CLI/CLI.hpp>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <stdexcept>
#include <string>
#include <thread>

namespace {

void pin_to(int cpu) {
  cpu_set_t set;
  CPU_ZERO(&set);
  CPU_SET(cpu, &set);
  if (pthread_setaffinity_np(pthread_self(), sizeof set, &set) != 0)
    throw std::runtime_error("cannot pin a thread to cpu " + std::to_string(cpu) + " (is it online and allowed?)");
}

// Round trip in ns: this thread writes an odd value, the other answers with the next even one.
double round_trip_ns(int cpu_a, int cpu_b, int64_t trips) {
  alignas(64) std::atomic<int64_t> line{0};
  std::exception_ptr error;
  std::thread other([&] {
    try {
      pin_to(cpu_b);
    } catch (...) {
      error = std::current_exception();
      line.store(-1, std::memory_order_release);
      return;
    }
    for (int64_t i = 0; i < trips; ++i) {
      while (line.load(std::memory_order_acquire) != 2 * i + 1) {
      }
      line.store(2 * i + 2, std::memory_order_release);
    }
  });
  pin_to(cpu_a);
  const auto t0 = std::chrono::steady_clock::now();
  for (int64_t i = 0; i < trips; ++i) {
    line.store(2 * i + 1, std::memory_order_release);
    int64_t v;
    while ((v = line.load(std::memory_order_acquire)) != 2 * i + 2) {
      if (v < 0) break;
    }
    if (v < 0) break;
  }
  const auto t1 = std::chrono::steady_clock::now();
  other.join();
  if (error) std::rethrow_exception(error);
  return std::chrono::duration<double, std::nano>(t1 - t0).count() / static_cast<double>(trips);
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"round trip of a cache line between two pinned threads"};
  std::vector<int> cpus{0, 1};
  int64_t trips = 200000;
  int repeats = 3;
  app.add_option("--cpus", cpus, "the two CPUs")->delimiter(',')->expected(2);
  app.add_option("--trips", trips, "round trips per measurement")->check(CLI::PositiveNumber);
  app.add_option("--repeats", repeats, "measurements")->check(CLI::PositiveNumber);
  CLI11_PARSE(app, argc, argv);
  try {
    for (int r = 0; r < repeats; ++r)
      std::printf("RESULT cpus=%d,%d round_trip_ns=%.1f\n", cpus[0], cpus[1], round_trip_ns(cpus[0], cpus[1], trips));
  } catch (const std::exception& e) {
    std::fprintf(stderr, "core_ping_pong: %s\n", e.what());
    return 1;
  }
  return 0;
}
