// packed_inference: packed low-bit ResNet inference against float minidl (issue 18's speed lines, docs/deploy.md).
// For each batch size, interleaved rounds: every round runs the float ResNet (same depth, shortcut and input
// channels as the packed model, random weights: the speed of a float conv does not depend on its values, and
// eval mode fuses conv + batch norm as float inference does) and each packed model `--reps` times; reported are
// the medians over rounds of the per-call time and the float / packed ratio of medians.
//   packed_inference --packed apot4.packed.safetensors --packed binary.packed.safetensors
//                    --batch 1 --batch 128 --rounds 9 --threads 2 [--image 28]
// --cpu-time measures the calling thread's CPU time instead of wall time (only meaningful with --threads 1: a
// way to compare single-thread cost on a busy host, where wall time includes the waits for a core).
// --images-per-pass N sets PackedResNet::images_per_pass (0: every layer on the whole batch).
// --without-bitserial also times each model with the bit-serial convolutions of binary layers switched off
// (backends::set_bitserial_conv_enabled(false): the GEMM kernels instead), in the same rounds; those rows say
// "(gemm)". Where no layer can take the bit-serial path the two rows time the same code.
#include <backends/int_conv_bitserial.h>
#include <minidl.h>
#include <quant/packed/packed_resnet.h>
#include <time.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <string>
#include <vector>

#include "cpu_round_trip.h"

using namespace minidl;

namespace {

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  const size_t n = v.size();
  return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

double clock_ms(bool cpu_time) {
  if (cpu_time) {
    timespec ts{};
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return 1e3 * static_cast<double>(ts.tv_sec) + 1e-6 * static_cast<double>(ts.tv_nsec);
  }
  return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

// Milliseconds per call of f, over `reps` calls (after one untimed call).
template <class F>
double time_calls(F&& f, int reps, bool cpu_time) {
  f();
  const double t0 = clock_ms(cpu_time);
  for (int i = 0; i < reps; ++i) f();
  return (clock_ms(cpu_time) - t0) / reps;
}

}  // namespace

// ", cpu 0-1 round trip N ns" (bench/cpu_round_trip.h): the host's mode after a batch's rounds, when more than one
// thread runs; empty when the CPUs cannot be pinned.
static std::string host_mode(int threads) {
  if (threads < 2) return "";
  try {
    char buf[64];
    std::snprintf(buf, sizeof buf, " (cpu 0-1 round trip %.0f ns)", minidl::bench::cpu_round_trip_ns(0, 1));
    return buf;
  } catch (const std::exception&) {
    return "";
  }
}

int main(int argc, char** argv) {
  CLI::App app{"packed low-bit ResNet inference vs float minidl"};
  std::vector<std::string> files;
  std::vector<int64_t> batches{1, 128};
  int rounds = 7, reps = 0, threads = 2;
  int64_t image = 28, per_pass = -1;
  bool cpu_time = false;
  app.add_option("--packed", files, "packed model files (cifar_resnet20 --export packed)")->required();
  app.add_option("--batch", batches, "batch sizes")->check(CLI::PositiveNumber);
  app.add_option("--rounds", rounds, "interleaved rounds")->check(CLI::PositiveNumber);
  app.add_option("--reps", reps, "calls per variant per round (0: 64 at batch 1, 2 at 128, in between scaled)");
  app.add_option("--threads", threads, "OpenMP threads")->check(CLI::PositiveNumber);
  app.add_option("--image", image, "input height = width (Fashion-MNIST 28, CIFAR 32)")->check(CLI::PositiveNumber);
  app.add_option("--images-per-pass", per_pass,
                 "PackedResNet::images_per_pass (0: the whole batch per layer; default: the library's)");
  bool without_bitserial = false;
  app.add_flag("--without-bitserial", without_bitserial,
               "also time every model with the bit-serial convolutions switched off (rows marked (gemm))");
  app.add_flag("--cpu-time", cpu_time, "time the calling thread's CPU time (use with --threads 1)");
  CLI11_PARSE(app, argc, argv);
  if (cpu_time && threads != 1) {
    std::fprintf(stderr, "packed_inference: --cpu-time counts the calling thread only; use it with --threads 1\n");
    return 2;
  }
  try {
    set_num_threads(threads);
    std::vector<quant::PackedResNet> models;
    for (const auto& f : files) models.push_back(quant::load_packed(f));
    if (per_pass >= 0)
      for (auto& m : models) m.images_per_pass = per_pass;
    const quant::PackedResNet& first = models.front();
    nn::ResNetConfig cfg;
    cfg.depth = 2 + 6 * static_cast<int64_t>(first.blocks.size() / 3);
    cfg.in_channels = first.in_channels;
    cfg.num_classes = first.num_classes;
    bool option_a = false;
    for (const auto& b : first.blocks) option_a = option_a || b.shortcut == quant::PackedBlock::Shortcut::Pad;
    cfg.shortcut = option_a ? nn::Shortcut::A : nn::Shortcut::B;
    manual_seed(1);
    auto float_model = nn::resnet_cifar(cfg);
    float_model->eval();
    NoGradGuard ng;
    std::printf("packed_inference: ResNet-%lld (%s shortcut), %lld x %lld input, %d threads, %d rounds, %s time\n",
                static_cast<long long>(cfg.depth), option_a ? "A" : "B", static_cast<long long>(image),
                static_cast<long long>(image), threads, rounds, cpu_time ? "thread CPU" : "wall");
    for (int64_t batch : batches) {
      const int r = reps > 0 ? reps : static_cast<int>(std::max<int64_t>(2, 64 / batch));
      manual_seed(2);
      const Tensor x = randn({batch, cfg.in_channels, image, image});
      std::vector<double> t_float;
      const int variants = without_bitserial ? 2 : 1;  // variant 1: bit-serial off
      std::vector<std::vector<double>> t_packed(models.size() * static_cast<size_t>(variants));
      for (int round = 0; round < rounds; ++round) {
        t_float.push_back(time_calls([&] { (*float_model)(x); }, r, cpu_time));
        for (int v = 0; v < variants; ++v) {
          backends::set_bitserial_conv_enabled(v == 0);
          for (size_t m = 0; m < models.size(); ++m)
            t_packed[m * static_cast<size_t>(variants) + static_cast<size_t>(v)].push_back(
                time_calls([&] { models[m].forward(x); }, r, cpu_time));
        }
        backends::set_bitserial_conv_enabled(true);
      }
      const double mf = median(t_float);
      std::printf("batch %lld (%d calls x %d rounds): float minidl %.3f ms%s\n", static_cast<long long>(batch), r,
                  rounds, mf, host_mode(threads).c_str());
      for (size_t m = 0; m < models.size(); ++m)
        for (int v = 0; v < variants; ++v) {
          const double mp = median(t_packed[m * static_cast<size_t>(variants) + static_cast<size_t>(v)]);
          std::printf("  %-40s %-30s %.3f ms  float/packed %.2fx\n", files[m].c_str(),
                      (models[m].description + (v == 1 ? " (gemm)" : "")).c_str(), mp, mf / mp);
        }
    }
  } catch (const Error& e) {
    std::fprintf(stderr, "packed_inference: %s\n", e.what());
    return 1;
  }
  return 0;
}
