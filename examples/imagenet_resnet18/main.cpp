// imagenet_resnet18: train or evaluate ResNet-18/34 (float or APoT-quantized) on an ImageFolder tree with
// minidl. See README.md ("ImageNet-style training") for recipes.
#include <minidl.h>

#include <cstdio>
#include <exception>

#include "config.h"
#include "train.h"

int main(int argc, char** argv) {
  std::setvbuf(stdout, nullptr, _IOLBF, 0);
  try {
    auto cfg = imagenet_resnet18::parse_args(argc, argv);
    if (!cfg) return 0;
    minidl::autograd::Profiler::set_enabled(cfg->profile);
    const int rc = cfg->evaluate ? imagenet_resnet18::run_evaluation(*cfg) : imagenet_resnet18::run_training(*cfg);
    if (cfg->profile)
      std::printf("=> per-op time, every step of this run:\n%s", minidl::autograd::Profiler::table().c_str());
    return rc;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "imagenet_resnet18: error: %s\n", e.what());
    return 2;
  }
}
