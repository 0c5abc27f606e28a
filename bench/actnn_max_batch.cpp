// actnn_max_batch: the largest ResNet training batch that fits under an allocator memory cap at each ActNN
// level, and its throughput (GACT's speed / memory curve: batch vs img/s). A step is forward + backward + SGD
// update on synthetic data (L3 with ActNN's adaptive bits: --ibits 8, --perlayer); "fits" means --steps-per-try
// consecutive steps (default 3) ran without the allocator's memory-limit error (tensor storage only: oneDNN's
// scratchpads are outside the allocator). Prints one RESULT line per level.
//   actnn_max_batch --levels L0,L3 --limit 1G --model resnet20 --threads 2
#include <core/byte_size.h>
#include <minidl.h>
#include <nn/models/resnet.h>
#include <optim/sgd.h>
#include <quant/actnn/adaptive_bits.h>
#include <quant/actnn/packer.h>
#include <quant/actnn/probed_layers.h>
#include <tensor/alloc_trace.h>

#include <CLI/CLI.hpp>
#include <chrono>
#include <cstdio>
#include <sstream>

#include "max_batch_search.h"

using namespace minidl;

namespace {

bool is_limit_error(const Error& e) { return std::string(e.what()).find("memory limit") != std::string::npos; }

}  // namespace

int main(int argc, char** argv) {
  std::string levels = "L0,L1,L2,L3", limit_text = "1G", model_name = "resnet20";
  int64_t start = 16, max_batch = 65536;
  int threads = 2, timed_steps = 2, steps_per_try = 3;
  bool peak_report = false;
  int64_t trace_batch = 0;
  double resolution = 0;
  int ibits = 8;
  bool perlayer = true, count_bn_bits = false;
  CLI::App app{"actnn_max_batch: the largest batch under a memory cap per ActNN level, and its img/s"};
  app.add_option("--levels", levels, "comma-separated ActNN levels");
  app.add_option("--limit", limit_text, "allocator memory cap (bytes, K/M/G suffixes)");
  app.add_option("--model", model_name)->check(CLI::IsMember({"resnet20", "resnet32", "resnet56"}));
  app.add_option("--start", start, "first batch tried (then doubled)");
  app.add_option("--max-batch", max_batch);
  app.add_option("--threads", threads);
  app.add_option("--timed-steps", timed_steps, "steps timed at the largest batch (after the search's own steps)");
  app.add_option("--steps-per-try", steps_per_try, "consecutive steps a batch must run under the cap to fit")
      ->check(CLI::Range(1, 1000));
  app.add_option("--resolution", resolution,
                 "stop bisecting when the gap is at most this fraction of the batch found (0: exact)");
  app.add_flag("--peak-report", peak_report,
               "after the search, trace one step at the batch found and print what is live at its peak");
  app.add_option("--trace-batch", trace_batch,
                 "skip the search: trace one step at this batch (no cap) and print what is live at its peak");
  app.add_option("--ibits", ibits, "ActNN at L3: initial / maximum bits of the adaptive allocator (default 8)");
  app.add_flag("--perlayer{true}", perlayer,
               "ActNN at L3: re-allocate bits across layers after each backward (default true, as ActNN's L3)");
  app.add_flag(
      "--count-bn-bits{true}", count_bn_bits,
      "ActNN at L3: the per-layer budget also counts the codes of the batch norms that copy a conv's bits, so "
      "every stored code averages --cabits (default false: ActNN's budget over conv / linear inputs; docs/actnn.md)");
  CLI11_PARSE(app, argc, argv);
  try {
    set_num_threads(threads);
    const size_t limit = parse_byte_size(limit_text, "--limit");
    std::stringstream ss(levels);
    std::string name;
    while (std::getline(ss, name, ',')) {
      const quant::actnn::Level level = quant::actnn::parse_level(name);
      set_memory_limit(kCPU, 0);
      allocator_for(kCPU).empty_cache();
      manual_seed(0);
      quant::actnn::Config ac = quant::actnn::Config::for_level(level);
      ac.ibits = ibits;
      ac.per_layer = perlayer;
      ac.count_bn_bits = count_bn_bits;
      ac.validate();
      // ActNN's L3 adapts bits: the policy, and the gradient probes it needs on the conv / linear layers
      const std::shared_ptr<quant::actnn::AdaptiveBits> policy = quant::actnn::make_adaptive_bits(ac);
      nn::ResNetConfig rc;
      if (policy) {
        rc.conv = quant::actnn::probed_conv_factory(policy);
        rc.linear = quant::actnn::probed_linear_factory(policy);
      }
      auto model = nn::resnet_by_name(model_name, rc);
      optim::SGDOptions so;
      so.lr = 0.01;
      so.momentum = 0.9;
      optim::SGD opt(model->parameters(), so);
      model->train();
      quant::actnn::Packer packer(ac);
      if (policy) packer.set_bit_policy(policy);
      auto step = [&](int64_t batch) {
        Tensor x = randn({batch, 3, 32, 32});
        Tensor y = from_vector(std::vector<int64_t>(static_cast<size_t>(batch), 3), {batch},
                               TensorOptions().dtype(DType::i64));
        autograd::SavedTensorHooksGuard guard(packer.hooks());
        opt.zero_grad();
        Tensor loss = cross_entropy((*model)(std::move(x)), y);  // the model frees x after its stem conv
        loss.backward();
        opt.step();
      };
      // What is live at the step's peak, in units of one first-stage activation (16x32x32 floats per sample).
      auto report_peak = [&](int64_t batch) {
        step(batch);  // warm: the optimizer's momentum buffers exist, as in every later step
        set_cpu_alloc_trace(true);
        allocator_for(kCPU).reset_peak();
        step(batch);
        const PeakTrace t = cpu_alloc_peak_trace();
        set_cpu_alloc_trace(false);
        std::printf("PEAK level=%s batch=%lld allocator_peak=%zu\n%s", name.c_str(), static_cast<long long>(batch),
                    allocator_for(kCPU).stats().peak_bytes,
                    format_peak_trace(t, static_cast<size_t>(batch) * 16 * 32 * 32 * 4).c_str());
        std::fflush(stdout);
      };
      if (trace_batch > 0) {
        report_peak(trace_batch);
        continue;
      }
      // The cap covers everything live during the step, the model and optimizer state included.
      set_memory_limit(kCPU, limit);
      int tries = 0;
      auto fits = [&](int64_t batch) {
        ++tries;
        try {
          // L3's budgets move after every backward, so one step that fits says little about the next: a batch
          // fits when --steps-per-try consecutive steps do.
          for (int i = 0; i < steps_per_try; ++i) step(batch);
          std::printf("  %s batch %lld fits\n", name.c_str(), static_cast<long long>(batch));
          std::fflush(stdout);
          return true;
        } catch (const Error& e) {
          if (!is_limit_error(e)) throw;
          std::printf("  %s batch %lld does not fit\n", name.c_str(), static_cast<long long>(batch));
          std::fflush(stdout);
          allocator_for(kCPU).empty_cache();
          return false;
        }
      };
      const int64_t best = bench::largest_fitting_batch(fits, start, max_batch, resolution);
      double img_s = 0;
      size_t peak = 0;
      if (best > 0 && timed_steps > 0) {
        allocator_for(kCPU).reset_peak();
        const auto t0 = std::chrono::steady_clock::now();
        for (int i = 0; i < timed_steps; ++i) step(best);
        const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
        img_s = static_cast<double>(best * timed_steps) / s;
        peak = allocator_for(kCPU).stats().peak_bytes;
      }
      set_memory_limit(kCPU, 0);
      if (peak_report && best > 0) report_peak(best);
      std::printf(
          "RESULT level=%s adaptive=%d model=%s limit=%zu max_batch=%lld img_per_s=%.1f peak_bytes=%zu tries=%d "
          "steps_per_try=%d resolution=%g\n",
          name.c_str(), policy ? 1 : 0, model_name.c_str(), limit, static_cast<long long>(best), img_s, peak, tries,
          steps_per_try, resolution);
      std::fflush(stdout);
    }
  } catch (const std::exception& e) {
    std::fprintf(stderr, "actnn_max_batch: error: %s\n", e.what());
    return 1;
  }
  return 0;
}
