// Allreduce cost per message size over the process group this program is launched into (mpirun -np N, or
// RANK/WORLD_SIZE/MASTER_ADDR/MASTER_PORT), f32 sum. Prints, per size, the median time of `--iters` allreduces
// and NCCL-tests' bandwidth figures: algbw = bytes / time, busbw = algbw * 2 (N - 1) / N (what each link
// carries in a ring). Rank 0 prints.
#include <minidl.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <vector>

using namespace minidl;

int main(int argc, char** argv) {
  CLI::App app("allreduce_bandwidth");
  int iters = 20;
  int64_t max_bytes = 64 << 20;
  app.add_option("--iters", iters, "allreduces per size (median reported)");
  app.add_option("--max-bytes", max_bytes, "largest message");
  CLI11_PARSE(app, argc, argv);
  try {
    auto pg = distributed::init_process_group(distributed::init_options_from_env());
    const int n = pg->size();
    if (pg->rank() == 0)
      std::printf("# allreduce (sum, f32) over %d ranks, %s; median of %d\n%12s %12s %12s %12s\n", n,
                  pg->backend_name().c_str(), iters, "bytes", "time_us", "algbw_GB/s", "busbw_GB/s");
    for (int64_t bytes = 4096; bytes <= max_bytes; bytes *= 4) {
      Tensor t = ones({bytes / 4});
      pg->allreduce(t);  // warm-up (connections, buffers)
      std::vector<double> times;
      for (int i = 0; i < iters; ++i) {
        pg->barrier();
        const auto t0 = std::chrono::steady_clock::now();
        pg->allreduce(t);
        times.push_back(std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
      }
      std::sort(times.begin(), times.end());
      const double s = times[times.size() / 2];
      const double algbw = static_cast<double>(bytes) / s / 1e9;
      if (pg->rank() == 0)
        std::printf("%12lld %12.1f %12.3f %12.3f\n", static_cast<long long>(bytes), s * 1e6, algbw,
                    algbw * 2.0 * (n - 1) / n);
    }
    return 0;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "allreduce_bandwidth: error: %s\n", e.what());
    return 2;
  }
}
