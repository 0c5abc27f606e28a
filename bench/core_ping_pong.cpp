// How far apart two CPUs are (bench/cpu_round_trip.h): the round trip of one cache line between two pinned threads.
//
//   bench/core_ping_pong --cpus 0,1 --trips 200000 --repeats 3
//
// Prints RESULT cpus=A,B round_trip_ns=N per measurement. On this project's 2-vCPU hosts ~70-110 ns means the vCPUs
// share a cache and ~400 ns that they are far apart: the host's two modes, named with the benchmarks' figures.
#include <CLI/CLI.hpp>
#include <cstdio>
#include <exception>
#include <vector>

#include "cpu_round_trip.h"

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
      std::printf("RESULT cpus=%d,%d round_trip_ns=%.1f\n", cpus[0], cpus[1],
                  minidl::bench::cpu_round_trip_ns(cpus[0], cpus[1], trips));
  } catch (const std::exception& e) {
    std::fprintf(stderr, "core_ping_pong: %s\n", e.what());
    return 1;
  }
  return 0;
}
