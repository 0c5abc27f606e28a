// cifar_resnet20: train or evaluate a (quantized) CIFAR-style ResNet with minidl. See README.md for recipes.
#include <minidl.h>

#include <cstdio>
#include <exception>

#include "actnn_adaptive.h"
#include "config.h"
#include "export.h"
#include "run.h"

int main(int argc, char** argv) {
  std::setvbuf(stdout, nullptr, _IOLBF, 0);  // progress lines appear as they are printed, also in logs
  try {
    auto cfg = cifar_resnet20::parse_args(argc, argv);
    if (!cfg) return 0;  // --help
    if (!cfg->export_format.empty()) return cifar_resnet20::run_export(*cfg);
    if (!cfg->evaluate_packed.empty()) return cifar_resnet20::run_evaluate_packed(*cfg);
    minidl::autograd::Profiler::set_enabled(cfg->profile);
    const int rc = !cfg->measure_var.empty() ? cifar_resnet20::run_measure_var(*cfg)
                   : cfg->evaluate.empty()   ? cifar_resnet20::run_training(*cfg)
                                             : cifar_resnet20::run_evaluation(*cfg);
    if (cfg->profile)
      std::printf("=> per-op time, every step of this run:\n%s", minidl::autograd::Profiler::table().c_str());
    return rc;
  } catch (const minidl::Error& e) {
    std::fprintf(stderr, "cifar_resnet20: error: %s\n", e.what());
    return 2;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "cifar_resnet20: error: %s\n", e.what());
    return 2;
  }
}
