// cifar_resnet20: train or evaluate a (quantized) CIFAR-style ResNet with minidl. See README.md for recipes.
#include <cstdio>
#include <exception>

#include <minidl.h>

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
    if (!cfg->measure_var.empty()) return cifar_resnet20::run_measure_var(*cfg);
    return cfg->evaluate.empty() ? cifar_resnet20::run_training(*cfg) : cifar_resnet20::run_evaluation(*cfg);
  } catch (const minidl::Error& e) {
    std::fprintf(stderr, "cifar_resnet20: error: %s\n", e.what());
    return 2;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "cifar_resnet20: error: %s\n", e.what());
    return 2;
  }
}
