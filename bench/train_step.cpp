// train_step: img/s of one ResNet training step (forward, backward, SGD update) or eval forward, on synthetic
// data. Prints a RESULT line for bench/compare_pytorch.py, and with --profile the per-op time breakdown.
//   train_step --model resnet20 --mode train --batch 128 --steps 10 --warmup 3 --threads 2 [--profile]
// With --actnn-level L0..L3 (train mode) the step runs under the ActNN packer and the RESULT line adds
// saved_bytes= (the most the tape held through the packer in a measured step: codes, metadata, masks, indices and
// exact tensors, parameters not counted). On the cpu every RESULT line has peak_bytes= and reserved_bytes= (the
// CPU allocator's peak live and reserved bytes over the measured steps). L3 is ActNN's: adaptive bits (--ibits 8,
// --perlayer) on a float model, whose conv / linear layers then carry the policy's gradient probes (adaptive=1 on the
// RESULT line).
//              [--device cuda]   (model, data and optimizer state on the GPU; MINIDL_CUDA_TF32=1 allows TF32)
//              [--image-size 28 --in-channels 1]   (Fashion-MNIST's input; the RESULT line adds input=1x28x28)
// --against-float (with --scheme, train mode, cpu): a float model of the same config is built too and the two step
// in turn, one step each, the first of each pair alternating; each step is timed alone, and a RATIO line gives both
// medians, their ratio and the median of the per-pair ratios. Host noise that lasts longer than a step then falls on
// both sides alike (separate runs on a shared host differ by 10 % and more from one to the next).
#include <backends/cuda/cuda_device.h>
#include <backends/cuda_settings.h>
#include <minidl.h>
#include <nn/models/resnet.h>
#include <optim/sgd.h>
#include <quant/actnn/adaptive_bits.h>
#include <quant/actnn/packer.h>
#include <quant/actnn/probed_layers.h>
#include <quant/quant_resnet.h>
#include <tensor/allocator.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <vector>

using namespace minidl;

int main(int argc, char** argv) {
  std::string model_name = "resnet20", mode = "train", shortcut = "B";
  int64_t batch = 128;
  int steps = 10, warmup = 3, threads = 2;
  bool profile = false;
  std::string scheme = "float", device = "cpu";
  int bits = 4;
  std::string actnn_level;
  int cabits = 0, ibits = 8;
  bool perlayer = true, bit_map = false, count_bn_bits = false, against_float = false;
  int64_t groupsize = 256, image_size = 0, in_channels = 3;
  CLI::App app{"train_step: img/s of a ResNet training or eval step"};
  app.add_option("--model", model_name)
      ->check(CLI::IsMember({"resnet20", "resnet32", "resnet56", "resnet18", "resnet34"}));
  app.add_option("--mode", mode)->check(CLI::IsMember({"train", "eval"}));
  app.add_option("--batch", batch);
  app.add_option("--steps", steps);
  app.add_option("--warmup", warmup);
  app.add_option("--threads", threads);
  app.add_option("--shortcut", shortcut)->check(CLI::IsMember({"A", "B"}));
  app.add_option("--image-size", image_size,
                 "input height and width (default: 32, or 224 for resnet18 / resnet34; 28 with --in-channels 1 is "
                 "Fashion-MNIST's)")
      ->check(CLI::Range(int64_t{8}, int64_t{1024}));
  app.add_option("--in-channels", in_channels, "input channels (default 3)")
      ->check(CLI::Range(int64_t{1}, int64_t{64}));
  app.add_option("--device", device, "cpu | cuda")->check(CLI::IsMember({"cpu", "cuda"}));
  app.add_flag("--profile", profile, "print the per-op time breakdown of the measured steps");
  app.add_option("--scheme", scheme, "float, or a quant scheme for CIFAR ResNets (apot, pot, uniform, pact)")
      ->check(CLI::IsMember({"float", "apot", "pot", "uniform", "pact"}));
  app.add_option("--bit", bits, "weight and activation bits of --scheme");
  app.add_option("--actnn-level", actnn_level, "ActNN activation compression level L0..L3 (train mode)");
  app.add_option("--cabits", cabits, "ActNN bits per activation element (default: the level's)");
  app.add_option("--groupsize", groupsize, "ActNN elements per quantization group");
  app.add_option("--ibits", ibits, "ActNN at L3: initial / maximum bits of the adaptive allocator (default 8)");
  app.add_flag("--bit-map", bit_map, "ActNN at L3: print the adaptive bits of each layer after the measured steps");
  app.add_flag("--perlayer{true}", perlayer,
               "ActNN at L3: re-allocate bits across layers after each backward (default true, as ActNN's L3)");
  app.add_flag(
      "--count-bn-bits{true}", count_bn_bits,
      "ActNN at L3: the per-layer budget also counts the codes of the batch norms that copy a conv's bits, so "
      "every stored code averages --cabits (default false: ActNN's budget over conv / linear inputs; docs/actnn.md)");
  app.add_flag("--against-float", against_float,
               "with --scheme: alternate its steps with a float model's (same config) and print both medians and their "
               "ratio (RATIO line)");
  CLI11_PARSE(app, argc, argv);
  try {
    set_num_threads(threads);
    manual_seed(0);
    const bool imagenet = model_name == "resnet18" || model_name == "resnet34";
    nn::ResNetConfig rc;
    rc.num_classes = imagenet ? 1000 : 10;
    rc.shortcut = shortcut == "A" ? nn::Shortcut::A : nn::Shortcut::B;
    rc.in_channels = in_channels;
    // ActNN: the packer's config, and at L3 ActNN's adaptive bits (float models: their conv / linear layers get
    // the output-gradient probes the policy needs; quantized schemes keep fixed bits)
    std::unique_ptr<quant::actnn::Packer> packer;
    std::shared_ptr<quant::actnn::AdaptiveBits> policy;
    if (!actnn_level.empty()) {
      MINIDL_CHECK(mode == "train", "train_step: --actnn-level applies to --mode train");
      quant::actnn::Config ac = quant::actnn::Config::for_level(quant::actnn::parse_level(actnn_level));
      if (cabits > 0) ac.bits = cabits;
      ac.group_size = groupsize;
      ac.ibits = ibits;
      ac.per_layer = perlayer;
      ac.count_bn_bits = count_bn_bits;
      ac.validate();
      packer = std::make_unique<quant::actnn::Packer>(ac);
      if (scheme == "float") policy = quant::actnn::make_adaptive_bits(ac);
      if (policy) {
        packer->set_bit_policy(policy);
        rc.conv = quant::actnn::probed_conv_factory(policy);
        rc.linear = quant::actnn::probed_linear_factory(policy);
      }
    }
    auto build = [&](const std::string& sch) -> std::shared_ptr<nn::Module> {
      if (sch == "float") return nn::resnet_by_name(model_name, rc);
      MINIDL_CHECK(!imagenet, "train_step: --scheme applies to the CIFAR ResNets");
      quant::QuantConfig qc = quant::QuantConfig::from_scheme(sch, bits, bits);
      qc.num_classes = rc.num_classes;
      qc.shortcut = rc.shortcut;
      qc.in_channels = in_channels;
      return quant::make_quant_resnet_cifar(std::stoll(model_name.substr(6)), qc);
    };
    std::shared_ptr<nn::Module> model = build(scheme);
    const Device dev = device == "cuda" ? Device::cuda(0) : kCPU;
    MINIDL_CHECK(dev.is_cpu() || cuda_device_count() > 0, "--device cuda: no usable GPU (", cuda_device_status(), ")");
    model->to(dev);
    const int64_t hw = image_size > 0 ? image_size : imagenet ? 224 : 32;
    Tensor x = randn({batch, in_channels, hw, hw}).to(dev);
    Tensor y =
        from_vector(std::vector<int64_t>(static_cast<size_t>(batch), 3), {batch}, TensorOptions().dtype(DType::i64))
            .to(dev);
    // A GPU runs asynchronously: a device-to-host copy of one value waits for every queued kernel.
    auto sync = [&] {
      if (dev.is_cuda()) (void)model->parameters().front().detach().to(kCPU);
    };
    optim::SGDOptions so;
    so.lr = 0.01;
    so.momentum = 0.9;
    so.weight_decay = 1e-4;
    optim::SGD opt(model->parameters(), so);

    // one training step of m with its optimizer o
    auto train_once = [&](nn::Module& m, optim::SGD& o) {
      m.train();
      Tensor loss = cross_entropy(m(x), y);
      o.zero_grad();
      loss.backward();
      o.step();
    };
    auto step = [&] {
      if (mode == "train") {
        std::unique_ptr<autograd::SavedTensorHooksGuard> guard;
        if (packer) guard = std::make_unique<autograd::SavedTensorHooksGuard>(packer->hooks());
        train_once(*model, opt);
      } else {
        NoGradGuard g;
        model->eval();
        (*model)(x);
      }
    };
    if (against_float) {
      MINIDL_CHECK(scheme != "float" && mode == "train" && !packer && dev.is_cpu() && !profile,
                   "train_step: --against-float needs a quantized --scheme, --mode train, the cpu, no --actnn-level "
                   "and no --profile");
      manual_seed(0);
      std::shared_ptr<nn::Module> ref = build("float");
      optim::SGD ref_opt(ref->parameters(), so);
      auto timed = [&](nn::Module& m, optim::SGD& o) {
        const auto t0 = std::chrono::steady_clock::now();
        train_once(m, o);
        return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
      };
      for (int i = 0; i < warmup; ++i) (void)timed(*ref, ref_opt), (void)timed(*model, opt);
      std::vector<double> tf, tq, pair;
      for (int i = 0; i < steps; ++i) {
        double f = 0, q = 0;
        if (i % 2 == 0) {
          f = timed(*ref, ref_opt);
          q = timed(*model, opt);
        } else {
          q = timed(*model, opt);
          f = timed(*ref, ref_opt);
        }
        tf.push_back(f);
        tq.push_back(q);
        pair.push_back(q / f);
      }
      auto median = [](std::vector<double> v) {
        std::sort(v.begin(), v.end());
        const size_t n = v.size();
        return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
      };
      const double mf = median(tf), mq = median(tq);
      std::printf(
          "RATIO model=%s scheme=%s%d batch=%lld threads=%d steps=%d float_ms=%.2f ms=%.2f ratio=%.4f "
          "pair_ratio=%.4f\n",
          model_name.c_str(), scheme.c_str(), bits, static_cast<long long>(batch), threads, steps, mf, mq, mq / mf,
          median(pair));
      return 0;
    }
    for (int i = 0; i < warmup; ++i) step();
    Allocator& alloc = allocator_for(kCPU);
    alloc.reset_peak();
    if (packer) packer->reset_peak();
    sync();
    autograd::Profiler::reset();
    autograd::Profiler::set_enabled(profile);
    const auto t0 = std::chrono::steady_clock::now();
    for (int i = 0; i < steps; ++i) step();
    sync();
    const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    autograd::Profiler::set_enabled(false);
    std::string extra;  // the input when not the model's default, the ActNN fields and the cpu allocator's
    if (image_size > 0 || in_channels != 3)
      extra = " input=" + std::to_string(in_channels) + "x" + std::to_string(hw) + "x" + std::to_string(hw);
    if (packer) {
      extra += " actnn_level=" + actnn_level + (policy ? " adaptive=1" : " adaptive=0") +
               " saved_bytes=" + std::to_string(packer->peak().total());
    }
    if (!dev.is_cuda()) {
      const AllocatorStats st = alloc.stats();
      extra += " peak_bytes=" + std::to_string(st.peak_bytes) + " reserved_bytes=" + std::to_string(st.reserved_bytes);
    }
    std::printf(
        "RESULT model=%s scheme=%s mode=%s batch=%lld backend=%s threads=%d ms_per_step=%.2f img_per_s=%.1f"
        " device=%s tf32=%d%s\n",
        model_name.c_str(), scheme == "float" ? "float" : (scheme + std::to_string(bits)).c_str(), mode.c_str(),
        static_cast<long long>(batch), dev.is_cuda() ? "cuda" : cpu_backend_name().c_str(), threads, 1e3 * s / steps,
        static_cast<double>(batch) * steps / s, device.c_str(), dev.is_cuda() && cuda_allow_tf32() ? 1 : 0,
        extra.c_str());
    if (dev.is_cuda()) std::printf("MEMORY %s\n", cuda_memory_summary().c_str());
    if (profile) std::printf("%s", autograd::Profiler::table().c_str());
    if (bit_map && policy)
      std::printf("=> actnn adaptive bits after the measured steps:\n%s", policy->bit_map().c_str());
    if (bit_map && packer) std::printf("=> actnn tape (latest save of each):\n%s", packer->bit_map().c_str());
    return 0;
  } catch (const Error& e) {
    std::fprintf(stderr, "train_step: error: %s\n", e.what());
    return 2;
  }
}
