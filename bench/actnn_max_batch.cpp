// actnn_max_batch: the largest ResNet training batch that fits under an allocator memory cap at each ActNN
// level, and its throughput (GACT's speed / memory curve: batch vs img/s). A step is forward + backward + SGD
// update on synthetic data (L3 with ActNN's adaptive bits: --ibits 8, --perlayer); "fits" means that a run from
// scratch (model, optimizer, packer and policy from seed 0) did --steps-per-try steps (default 8) without the
// allocator's memory-limit error (tensor storage only: oneDNN's scratchpads are outside the allocator). From
// scratch, because L3's budgets move after every step: a run that inherits earlier tries' state answers for that
// history, and memory can grow over the first steps (at 3 steps per try a batch "fitted" whose 4th step did not).
// Prints one RESULT line per level.
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
  int threads = 2, timed_steps = 2, steps_per_try = 8;
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
      quant::actnn::Config ac = quant::actnn::Config::for_level(level);
      ac.ibits = ibits;
      ac.per_layer = perlayer;
      ac.count_bn_bits = count_bn_bits;
      ac.validate();
      const int adaptive = quant::actnn::make_adaptive_bits(ac) ? 1 : 0;
      // One run from scratch: model, optimizer, packer and (L3) the adaptive policy, all from seed 0, so a batch
      // either fits or not whatever was tried before (L3's budgets move after every step and would otherwise
      // carry the history of earlier tries). `steps` steps; the last `timed` of them are timed.
      struct Run {
        bool fit = true;
        double img_s = 0;
        size_t peak = 0;
      };
      auto run = [&](int64_t batch, int steps, int timed, bool trace = false) {
        Run r;
        manual_seed(0);
        const std::shared_ptr<quant::actnn::AdaptiveBits> policy = quant::actnn::make_adaptive_bits(ac);
        nn::ResNetConfig rc;
        if (policy) {  // ActNN's L3 adapts bits: the gradient probes it needs on the conv / linear layers
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
        auto step = [&] {
          Tensor x = randn({batch, 3, 32, 32});
          Tensor y = from_vector(std::vector<int64_t>(static_cast<size_t>(batch), 3), {batch},
                                 TensorOptions().dtype(DType::i64));
          autograd::SavedTensorHooksGuard guard(packer.hooks());
          opt.zero_grad();
          Tensor loss = cross_entropy((*model)(std::move(x)), y);  // the model frees x after its stem conv
          loss.backward();
          opt.step();
        };
        try {
          for (int i = 0; i < steps - timed; ++i) step();
          if (trace) {  // what is live at the peak of the next step
            set_cpu_alloc_trace(true);
            allocator_for(kCPU).reset_peak();
            step();
            const PeakTrace t = cpu_alloc_peak_trace();
            set_cpu_alloc_trace(false);
            std::printf("PEAK level=%s batch=%lld allocator_peak=%zu\n%s", name.c_str(), static_cast<long long>(batch),
                        allocator_for(kCPU).stats().peak_bytes,
                        format_peak_trace(t, static_cast<size_t>(batch) * 16 * 32 * 32 * 4).c_str());
            std::fflush(stdout);
          }
          allocator_for(kCPU).reset_peak();
          const auto t0 = std::chrono::steady_clock::now();
          for (int i = 0; i < timed; ++i) step();
          const double sec = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
          if (timed > 0) r.img_s = static_cast<double>(batch * timed) / sec;
          r.peak = allocator_for(kCPU).stats().peak_bytes;
        } catch (const Error& e) {
          set_cpu_alloc_trace(false);
          if (!is_limit_error(e)) throw;
          r.fit = false;
        }
        allocator_for(kCPU).empty_cache();
        return r;
      };
      if (trace_batch > 0) {  // one warm step (the optimizer's momentum buffers then exist), then the traced one
        run(trace_batch, 1, 0, true);
        continue;
      }
      // The cap covers everything live during the step, the model and optimizer state included.
      set_memory_limit(kCPU, limit);
      int tries = 0;
      auto fits = [&](int64_t batch) {
        ++tries;
        const bool ok = run(batch, steps_per_try, 0).fit;
        std::printf("  %s batch %lld %s\n", name.c_str(), static_cast<long long>(batch), ok ? "fits" : "does not fit");
        std::fflush(stdout);
        return ok;
      };
      const int64_t best = bench::largest_fitting_batch(fits, start, max_batch, resolution);
      Run timed_run;
      if (best > 0 && timed_steps > 0) {  // the same run as the search's, with timed steps after it
        timed_run = run(best, steps_per_try + timed_steps, timed_steps);
        MINIDL_CHECK(timed_run.fit, "actnn_max_batch: batch ", best, " fitted ", steps_per_try,
                     " steps but not the timed ones after them; raise --steps-per-try");
      }
      const double img_s = timed_run.img_s;
      const size_t peak = timed_run.peak;
      set_memory_limit(kCPU, 0);
      if (peak_report && best > 0) run(best, 1, 0, true);
      std::printf(
          "RESULT level=%s adaptive=%d model=%s limit=%zu max_batch=%lld img_per_s=%.1f peak_bytes=%zu tries=%d "
          "steps_per_try=%d resolution=%g\n",
          name.c_str(), adaptive, model_name.c_str(), limit, static_cast<long long>(best), img_s, peak, tries,
          steps_per_try, resolution);
      std::fflush(stdout);
    }
  } catch (const std::exception& e) {
    std::fprintf(stderr, "actnn_max_batch: error: %s\n", e.what());
    return 1;
  }
  return 0;
}
