// How far apart two CPUs are: the round trip of one cache line bounced between two threads pinned to them
// (bench/core_ping_pong prints it; packed_inference and, through core_ping_pong, compare_pytorch.py print it next
// to their figures).
//
// Why: the 2-vCPU hosts minidl is measured on switch between a mode where the vCPUs share a cache (~70-110 ns per
// round trip) and one where they are far apart (~400 ns). Code that moves data between threads (barriers, buffers
// handed from one thread to the other) runs slower in the second (docs/deploy.md). Linux only (pthread affinity).
#pragma once

#include <pthread.h>
#include <sched.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <exception>
#include <stdexcept>
#include <string>
#include <thread>

namespace minidl::bench {

/// Nanoseconds per round trip over `trips` trips between two new threads pinned to cpu_a and cpu_b (the calling
/// thread's affinity is left alone). Throws std::runtime_error when a CPU cannot be used.
inline double cpu_round_trip_ns(int cpu_a, int cpu_b, int64_t trips = 100000) {
  alignas(64) std::atomic<int64_t> line{0};
  std::atomic<bool> failed{false};
  std::string error;
  auto pin_to = [&](int cpu) {
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET(cpu, &set);
    if (pthread_setaffinity_np(pthread_self(), sizeof set, &set) == 0) return true;
    if (!failed.exchange(true)) error = "cannot pin a thread to cpu " + std::to_string(cpu) + " (online and allowed?)";
    return false;
  };
  double ns = 0;
  // b answers each odd value with the next even one; a times the trips. Either gives up once the other failed.
  std::thread b([&] {
    if (!pin_to(cpu_b)) return;
    for (int64_t i = 0; i < trips; ++i) {
      while (line.load(std::memory_order_acquire) != 2 * i + 1)
        if (failed.load(std::memory_order_relaxed)) return;
      line.store(2 * i + 2, std::memory_order_release);
    }
  });
  std::thread a([&] {
    if (!pin_to(cpu_a)) return;
    const auto t0 = std::chrono::steady_clock::now();
    for (int64_t i = 0; i < trips; ++i) {
      line.store(2 * i + 1, std::memory_order_release);
      while (line.load(std::memory_order_acquire) != 2 * i + 2)
        if (failed.load(std::memory_order_relaxed)) return;
    }
    ns = std::chrono::duration<double, std::nano>(std::chrono::steady_clock::now() - t0).count() /
         static_cast<double>(trips);
  });
  a.join();
  b.join();
  if (failed) throw std::runtime_error(error);
  return ns;
}

}  // namespace minidl::bench
