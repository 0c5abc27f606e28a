// ActNN activation compression on the GPU through the tape: the packer's codes, metadata and 1-bit masks are made
// and read by the cuda backend's own kernels (backends/cuda/kernels/actnn.h). The codec's bytes are checked
// against ref by the conformance rows; this checks the path a training step takes. Without a device: skipped.
#include <doctest/doctest.h>

#include <cmath>
#include <map>
#include <string>
#include <vector>

#include "actnn_test_step.h"
#include "autograd/ops.h"
#include "autograd/saved_tensor.h"
#include "backends/cuda/cuda_device.h"
#include "backends/cuda_settings.h"
#include "nn/models/resnet.h"
#include "quant/actnn/adaptive_bits.h"
#include "quant/actnn/packer.h"
#include "quant/actnn/probed_layers.h"
#include "tensor/generator.h"
#include "test_skip.h"

using namespace minidl;
using namespace minidl::quant::actnn;

namespace {

using Step = minidl_test::ActnnStepResult;
using minidl_test::resnet_step;

double rel_diff(const std::vector<float>& a, const std::vector<float>& b) {
  double num = 0, den = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    num += (a[i] - b[i]) * (a[i] - b[i]);
    den += static_cast<double>(b[i]) * b[i];
  }
  return std::sqrt(num / std::max(den, 1e-30));
}

}  // namespace

TEST_CASE("cuda: an L2-compressed ResNet-20 step on the device stores what the CPU stores and uses its codes") {
  if (cuda_device_count() == 0) MINIDL_SKIP("no CUDA device (" << cuda_device_status() << ")");
  const bool was_deterministic = cuda_deterministic();
  set_cuda_deterministic(true);  // two forwards of one model give the same bits
  const Device gpu = Device::cuda(0);
  manual_seed(1);
  const Tensor x = randn({8, 3, 16, 16});
  const Tensor y = from_vector<int64_t>({0, 1, 2, 3, 4, 5, 6, 7}, {8}, TensorOptions().dtype(DType::i64));
  manual_seed(7);
  auto host_model = nn::resnet20();
  host_model->train();
  manual_seed(7);
  auto dev_model = nn::resnet20();
  dev_model->train();
  dev_model->to(gpu);
  const Tensor xd = x.to(gpu), yd = y.to(gpu);

  Packer host_packer(Config::for_level(Level::L2)), dev_packer(Config::for_level(Level::L2));
  const Step host = resnet_step(*host_model, x, y, &host_packer);
  const Step exact = resnet_step(*dev_model, xd, yd, nullptr);
  const Step dev = resnet_step(*dev_model, xd, yd, &dev_packer);

  // forward untouched by the packer
  CHECK(dev.logits == exact.logits);
  // the same payloads as on the CPU: the codes are made on the device, not kept exact
  CHECK(dev.peak.codes > 0);
  CHECK(dev.peak.masks > 0);
  CHECK(dev.peak.codes == host.peak.codes);
  CHECK(dev.peak.meta == host.peak.meta);
  CHECK(dev.peak.masks == host.peak.masks);
  CHECK(dev_packer.live().total() == 0);  // freed with the graph
  // conv1 saves the batch itself, so its codes are the CPU's byte for byte (same seed, same save order): the
  // compressed gradient is the CPU's up to float rounding, and far from the exact one (4-bit noise)
  const double vs_host = rel_diff(dev.grads.at("conv1.weight"), host.grads.at("conv1.weight"));
  const double vs_exact = rel_diff(dev.grads.at("conv1.weight"), exact.grads.at("conv1.weight"));
  MESSAGE("conv1.weight gradient, L2 on the GPU: relative difference ", vs_host, " to L2 on the CPU, ", vs_exact,
          " to the exact gradient");
  CHECK(vs_exact > 10 * vs_host);
  CHECK(vs_host < 1e-3);
  set_cuda_deterministic(was_deterministic);
}

TEST_CASE("cuda: L3's adaptive bits (its defaults) stop with a clear error naming the fixed-bit flags") {
  if (cuda_device_count() == 0) MINIDL_SKIP("no CUDA device (" << cuda_device_status() << ")");
  const Config l3 = Config::for_level(Level::L3);
  auto policy = make_adaptive_bits(l3);
  REQUIRE(policy != nullptr);
  nn::ResNetConfig rc;
  rc.conv = probed_conv_factory(policy);
  rc.linear = probed_linear_factory(policy);
  manual_seed(7);
  auto model = nn::resnet20(rc);
  model->train();
  model->to(Device::cuda(0));
  Packer packer(l3);
  packer.set_bit_policy(policy);
  const Tensor x = randn({4, 3, 16, 16}).to(Device::cuda(0));
  const Tensor y = from_vector<int64_t>({0, 1, 2, 3}, {4}, TensorOptions().dtype(DType::i64)).to(Device::cuda(0));
  CHECK_THROWS_WITH_AS(resnet_step(*model, x, y, &packer), doctest::Contains("--ibits 2 --perlayer=false"), Error);
}
