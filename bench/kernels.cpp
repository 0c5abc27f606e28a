// Kernel benchmarks (Google Benchmark): the backend primitives on the shapes that dominate ResNet-20 (CIFAR,
// batch 128) and ResNet-18 (ImageNet, batch 32). Reports GFLOP/s or GB/s. The backend is MINIDL_BACKEND (cpu
// by default). Activation-shaped tensors come in both layouts: /0 plain NCHW, /1 channels-last (how the cpu
// backend keeps activations during training). Example:
//   build/release/bench/kernels --benchmark_filter=Conv --benchmark_min_time=0.5 [--threads=N (default:
//   MINIDL_BENCH_THREADS, else 2)]
#include <benchmark/benchmark.h>
#include <minidl.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <random>
#include <vector>

#include "backends/int_conv.h"
#include "backends/int_conv_bitserial.h"
#include "backends/int_gemm.h"
#ifdef MINIDL_WITH_ONEDNN
#include <oneapi/dnnl/dnnl.hpp>
#endif

using namespace minidl;

namespace {

struct ConvShape {
  int64_t n, c, h, k, r, stride, pad;
};
// ResNet-20 stages at batch 128 and the ResNet-18 stem + stages at batch 32.
const ConvShape kConvShapes[] = {
    {128, 16, 32, 16, 3, 1, 1},  {128, 32, 16, 32, 3, 1, 1},  {128, 64, 8, 64, 3, 1, 1},
    {128, 16, 32, 32, 3, 2, 1},  {32, 3, 224, 64, 7, 2, 3},   {32, 64, 56, 64, 3, 1, 1},
    {32, 128, 28, 128, 3, 1, 1}, {32, 256, 14, 256, 3, 1, 1}, {32, 512, 7, 512, 3, 1, 1},
};

enum class ConvPass { Forward, BackwardData, BackwardWeight };

// A random activation in the benchmark's layout (state.range(layout_arg): 0 NCHW, 1 channels-last).
Tensor activation(const Shape& shape, bool channels_last) {
  Tensor r = randn(shape);
  if (!channels_last) return r;
  Tensor t = empty(shape, TensorOptions{}, MemoryFormat::ChannelsLast);
  backend_for(t).copy(t, r);
  return t;
}
Tensor activation_out(const Shape& shape, bool channels_last) {
  return empty(shape, TensorOptions{}, channels_last ? MemoryFormat::ChannelsLast : MemoryFormat::Contiguous);
}
const char* layout_label(bool channels_last) { return channels_last ? " channels-last" : " nchw"; }

void BM_Conv(benchmark::State& state, ConvPass pass) {
  const ConvShape& s = kConvShapes[state.range(0)];
  const bool cl = state.range(1) != 0;
  Conv2dParams p;
  p.stride_h = p.stride_w = s.stride;
  p.pad_h = p.pad_w = s.pad;
  const int64_t out = conv_out_size(s.h, s.r, s.stride, s.pad);
  Tensor x = activation({s.n, s.c, s.h, s.h}, cl), w = randn({s.k, s.c, s.r, s.r});
  Tensor gy = activation({s.n, s.k, out, out}, cl);
  Tensor y = activation_out(gy.sizes(), cl), gx = activation_out(x.sizes(), cl), gw = empty(w.sizes()), none;
  Backend& b = backend_for(x);
  OpStatePtr st;
  b.conv2d_forward(y, x, w, none, p, st);
  for (auto _ : state) {
    if (pass == ConvPass::Forward) b.conv2d_forward(y, x, w, none, p, st);
    if (pass == ConvPass::BackwardData) b.conv2d_backward_data(gx, gy, w, p, st);
    if (pass == ConvPass::BackwardWeight) b.conv2d_backward_weight(gw, none, gy, x, p, st);
  }
  const double flops = 2.0 * s.n * s.k * out * out * s.c * s.r * s.r;
  state.counters["GFLOP/s"] =
      benchmark::Counter(flops, benchmark::Counter::kIsIterationInvariantRate, benchmark::Counter::kIs1000);
  state.SetLabel(shape_str({s.n, s.c, s.h, s.h}) + " k" + std::to_string(s.k) + " r" + std::to_string(s.r) + " s" +
                 std::to_string(s.stride) + layout_label(cl));
}

// mode: 0 forward, 1 backward, 2 fused bn+relu forward, 3 fused bn+relu backward
void BM_BatchNorm(benchmark::State& state, int mode) {
  const int64_t n = state.range(0), c = state.range(1), h = state.range(2);
  const bool cl = state.range(3) != 0;
  Tensor x = activation({n, c, h, h}, cl), y = activation_out(x.sizes(), cl), gy = activation(x.sizes(), cl);
  Tensor gx = activation_out(x.sizes(), cl);
  Tensor w = ones({c}), bias = zeros({c}), mean = empty({c}), invstd = empty({c}), gw = empty({c}), gb = empty({c});
  Backend& b = backend_for(x);
  OpStatePtr st;
  b.batch_norm_forward_training(y, mean, invstd, x, w, bias, 1e-5, st);
  if (mode >= 2) b.batch_norm_relu_forward_training(y, mean, invstd, x, w, bias, 1e-5, st);
  for (auto _ : state) {
    if (mode == 0) b.batch_norm_forward_training(y, mean, invstd, x, w, bias, 1e-5, st);
    if (mode == 1) b.batch_norm_backward(gx, gw, gb, gy, x, mean, invstd, w, 1e-5, st);
    if (mode == 2) b.batch_norm_relu_forward_training(y, mean, invstd, x, w, bias, 1e-5, st);
    if (mode == 3) b.batch_norm_relu_backward(gx, gw, gb, gy, y, x, mean, invstd, w, 1e-5, st);
  }
  // bytes of the tensors each call must touch once (x and y; gy, x and gx; plus y for the fused backward)
  const double touched[] = {2, 3, 2, 4};
  state.counters["GB/s"] =
      benchmark::Counter(static_cast<double>(x.nbytes()) * touched[mode], benchmark::Counter::kIsIterationInvariantRate,
                         benchmark::Counter::kIs1000);
  state.SetLabel(layout_label(cl));
}

void BM_MaxPool(benchmark::State& state) {
  const bool cl = state.range(0) != 0;
  Tensor x = activation({32, 64, 112, 112}, cl);
  Pool2dParams p{3, 3, 2, 2, 1, 1, true};
  Tensor y = activation_out({32, 64, 56, 56}, cl);
  Tensor idx = empty({32, 64, 56, 56}, TensorOptions().dtype(DType::i64),
                     cl ? MemoryFormat::ChannelsLast : MemoryFormat::Contiguous);
  state.SetLabel(layout_label(cl));
  Backend& b = backend_for(x);
  for (auto _ : state) b.max_pool2d_forward(y, idx, x, p);
  state.counters["GB/s"] = benchmark::Counter(
      static_cast<double>(x.nbytes()), benchmark::Counter::kIsIterationInvariantRate, benchmark::Counter::kIs1000);
}

void BM_Gemm(benchmark::State& state) {
  const int64_t n = state.range(0);
  Tensor a = randn({n, n}), c = randn({n, n}), out = empty({n, n});
  Backend& b = backend_for(a);
  for (auto _ : state) b.matmul(out, a, c, false, false);
  state.counters["GFLOP/s"] =
      benchmark::Counter(2.0 * n * n * n, benchmark::Counter::kIsIterationInvariantRate, benchmark::Counter::kIs1000);
}

void BM_Elementwise(benchmark::State& state, bool binary) {
  Tensor x = randn({128, 16, 32, 32}), z = randn({128, 16, 32, 32}), y = empty(x.sizes());
  Backend& b = backend_for(x);
  for (auto _ : state) {
    if (binary) {
      b.binary(BinaryOp::Add, y, x, z);
    } else {
      b.unary(UnaryOp::Relu, y, x, {});
    }
  }
  state.counters["GB/s"] =
      benchmark::Counter(static_cast<double>(x.nbytes()) * (binary ? 3 : 2),
                         benchmark::Counter::kIsIterationInvariantRate, benchmark::Counter::kIs1000);
}

// The ActNN codec on a first-stage ResNet-20 activation (128x16x32x32, channels-last as in training):
// mode 0 quantize, 1 dequantize (state.range(0) bits, groups of 256), 2 pack a ReLU output's 1-bit mask, 3 unpack it.
void BM_Actnn(benchmark::State& state, int mode) {
  const int bits = static_cast<int>(state.range(0));
  Tensor x = activation({128, 16, 32, 32}, true), out = activation_out(x.sizes(), true);
  ActnnCodec c;
  c.n = 128;
  c.f = x.numel() / 128;
  c.key = 1234;
  c.bits.assign(128, static_cast<uint8_t>(bits));
  Tensor codes = empty({c.code_bytes()}, TensorOptions().dtype(DType::u8));
  Tensor meta = empty({c.meta_bytes()}, TensorOptions().dtype(DType::u8));
  Tensor mask = empty({(x.numel() + 7) / 8}, TensorOptions().dtype(DType::u8));
  Backend& b = backend_for(x);
  b.actnn_quantize(codes, meta, x, c);
  b.pack_mask_bits(mask, x);
  for (auto _ : state) {
    if (mode == 0) b.actnn_quantize(codes, meta, x, c);
    if (mode == 1) b.actnn_dequantize(out, codes, meta, c);
    if (mode == 2) b.pack_mask_bits(mask, x);
    if (mode == 3) b.unpack_mask_bits(out, mask);
  }
  // the float side of each call (read for 0 and 2, written for 1 and 3)
  state.counters["Gelem/s"] = benchmark::Counter(
      static_cast<double>(x.numel()), benchmark::Counter::kIsIterationInvariantRate, benchmark::Counter::kIs1000);
}

// The activation quantizer on a ResNet-20 stage-1 activation (128x16x32x32, channels-last) with 16 APoT-like
// levels: 0 forward (out only, as the cpu backend runs it without hooks), 1 the backward from the saved input, 2
// the same with the forward's codes in place of the level search.
void BM_QuantClip(benchmark::State& state, int mode) {
  Tensor x = activation({128, 16, 32, 32}, true), out = activation_out(x.sizes(), true);
  Tensor gy = activation(x.sizes(), true), gx = activation_out(x.sizes(), true);
  Tensor alpha = full({}, 2.0f), galpha = empty({});
  std::vector<float> lv{0, 1, 2, 3, 4, 6, 8, 10, 12, 16, 20, 24, 32, 40, 44, 48};
  Tensor levels = empty({16});
  for (int i = 0; i < 16; ++i) levels.data<float>()[i] = lv[static_cast<size_t>(i)] / 48.0f;
  Tensor no_mask, no_coef;
  Backend& b = backend_for(x);
  Tensor codes = empty(x.sizes(), TensorOptions().dtype(DType::u8), MemoryFormat::ChannelsLast);
  if (mode == 2 && !b.quantize_clip_forward_coded(out, codes, x, alpha, levels, 0.0, 0.0, 1.0)) {
    state.SkipWithError("no codes");
    return;
  }
  for (auto _ : state) {
    if (mode == 0) b.quantize_clip_forward(out, no_mask, no_coef, x, alpha, levels, 0.0, 0.0, 1.0);
    if (mode == 1) b.quantize_clip_backward_from_input(gx, galpha, gy, x, alpha, levels, 0.0, 0.0, 1.0, 1.0);
    if (mode == 2 && !b.quantize_clip_backward_from_codes(gx, galpha, gy, x, codes, alpha, levels, 0.0, 1.0, 1.0)) {
      state.SkipWithError("no backward from codes on this host");
      return;
    }
  }
  state.counters["Gelem/s"] = benchmark::Counter(
      static_cast<double>(x.numel()), benchmark::Counter::kIsIterationInvariantRate, benchmark::Counter::kIs1000);
}

// Batch norm + ReLU + the activation quantizer on a stage-1 activation (128x16x32x32, channels-last, 16 APoT-like
// levels), forward and backward: 0 the primitives of the two ops (batch_norm_relu_forward_training and
// quantize_clip_forward_coded, keeping y; quantize_clip_backward_from_input, then batch_norm_relu_backward), 1 the
// fused pair (batch_norm_relu_quantize_forward_training, y recomputed by batch_norm_relu_quantize_backward), 2 the
// fused pair with the forward's codes read in backward in place of the level search. Before
// each iteration a 64 MiB buffer is rewritten (not timed), so the operands start in memory as in a training step.
void BM_BnReluQuant(benchmark::State& state, int mode) {
  Tensor x = activation({128, 16, 32, 32}, true), g = activation(x.sizes(), true);
  Tensor y = activation_out(x.sizes(), true), q = activation_out(x.sizes(), true), gx = activation_out(x.sizes(), true),
         gq = activation_out(x.sizes(), true);
  Tensor codes = empty(x.sizes(), TensorOptions().dtype(DType::u8), MemoryFormat::ChannelsLast);
  Tensor w = ones({16}), bias = zeros({16}), mean = empty({16}), invstd = empty({16}), gw = empty({16}),
         gb = empty({16}), ya = empty({16}), yb = empty({16});
  Tensor alpha = full({}, 2.0f), galpha = empty({});
  std::vector<float> lv{0, 1, 2, 3, 4, 6, 8, 10, 12, 16, 20, 24, 32, 40, 44, 48};
  Tensor levels = empty({16});
  for (int i = 0; i < 16; ++i) levels.data<float>()[i] = lv[static_cast<size_t>(i)] / 48.0f;
  Backend& b = backend_for(x);
  OpStatePtr st;
  std::vector<float> flush(size_t{16} << 20, 1.0f);
  for (auto _ : state) {
    state.PauseTiming();
    for (size_t i = 0; i < flush.size(); i += 16) flush[i] += 1.0f;
    benchmark::DoNotOptimize(flush.data());
    state.ResumeTiming();
    if (mode == 0) {
      b.batch_norm_relu_forward_training(y, mean, invstd, x, w, bias, 1e-5, st);
      b.quantize_clip_forward_coded(q, codes, y, alpha, levels, 0.0, 0.0, 1.0);
      b.quantize_clip_backward_from_input(gq, galpha, g, y, alpha, levels, 0.0, 0.0, 1.0, 1.0);
      b.batch_norm_relu_backward(gx, gw, gb, gq, y, x, mean, invstd, w, 1e-5, st);
    } else {
      Tensor c = codes;
      ActQuantizer quantizer;
      quantizer.alpha = alpha;
      quantizer.levels = levels;
      if (!b.batch_norm_relu_quantize_forward_training(q, c, mean, invstd, ya, yb, x, w, bias, 1e-5, quantizer, st)) {
        state.SkipWithError("no fused batch norm + ReLU + quantizer on this host");
        return;
      }
      // mode 2: the backward reads the forward's codes in place of the level search
      b.batch_norm_relu_quantize_backward(gx, gw, gb, galpha, g, Tensor(), x, mean, invstd, w, 1e-5, quantizer, 1.0, ya,
                                          yb, mode == 2 ? c : Tensor(), st);
    }
  }
}

// The coded saves of a quantized conv's input (quant/coded_saves.h) on the same activation: 0 codebook_encode of
// the quantizer's output (16 APoT levels times alpha), 1 codebook_decode back to float32. state.range(0) is the
// book's size: 16, or 17 with -0 in front as the uniform grid's book has it.
void BM_Codebook(benchmark::State& state, int mode) {
  Tensor x = activation({128, 16, 32, 32}, true), q = activation_out(x.sizes(), true);
  Tensor alpha = full({}, 2.0f);
  std::vector<float> lv{0, 1, 2, 3, 4, 6, 8, 10, 12, 16, 20, 24, 32, 40, 44, 48};
  const int64_t entries = state.range(0), first = entries - 16;
  Tensor levels = empty({16}), book = empty({entries});
  if (first == 1) book.data<float>()[0] = -0.0f;
  for (int i = 0; i < 16; ++i) {
    levels.data<float>()[i] = lv[static_cast<size_t>(i)] / 48.0f;
    book.data<float>()[first + i] = levels.data<float>()[i] * 2.0f;
  }
  Tensor no_mask, no_coef;
  Backend& b = backend_for(x);
  b.quantize_clip_forward(q, no_mask, no_coef, x, alpha, levels, 0.0, 0.0, 1.0);
  Tensor codes = empty(x.sizes(), TensorOptions().dtype(DType::u8), MemoryFormat::ChannelsLast);
  if (!b.codebook_encode(codes, q, book)) state.SkipWithError("codebook_encode refused the quantizer's output");
  for (auto _ : state) {
    if (mode == 0) benchmark::DoNotOptimize(b.codebook_encode(codes, q, book));
    if (mode == 1) b.codebook_decode(q, codes, book);
  }
  state.counters["Gelem/s"] = benchmark::Counter(
      static_cast<double>(x.numel()), benchmark::Counter::kIsIterationInvariantRate, benchmark::Counter::kIs1000);
}

// gemm_u8s8_s32 on ResNet-20's convolutions as im2col GEMMs (docs/deploy.md, "Integer kernels"): M = batch * H
// * W rows of C * 3 * 3 activation codes against N output channels. state.range(0) indexes kIntGemmShapes.
struct IntGemmShape {
  int64_t m, n, k;
};
const IntGemmShape kIntGemmShapes[] = {
    {32 * 32, 16, 144},       {16 * 16, 32, 288},       {8 * 8, 64, 576},        // batch 1
    {128 * 32 * 32, 16, 144}, {128 * 16 * 16, 32, 288}, {128 * 8 * 8, 64, 576},  // batch 128
};

void set_gops(benchmark::State& state, const IntGemmShape& s) {
  state.counters["GOPS"] =
      benchmark::Counter(2.0 * static_cast<double>(s.m * s.n * s.k), benchmark::Counter::kIsIterationInvariantRate,
                         benchmark::Counter::kIs1000);
}

// state.range(1): the kernel (backends::IntGemmKernel); state.range(2): the codes, 0 random 8-bit weights (the
// AVX2 kernel's int16 vpmaddwd path), 1 4-bit weights (its 4-group vpmaddubsw window), both with inputs up to 255;
// 2 a packed APoT W4/A4 layer's: weights +-{0, 1, 2, 3, 4, 6, 8, 10}, inputs up to 48 (a 32-group window).
void BM_IntGemm(benchmark::State& state) {
  const IntGemmShape& s = kIntGemmShapes[state.range(0)];
  const auto kernel = static_cast<backends::IntGemmKernel>(state.range(1));
  const int64_t codes = state.range(2);
  const char* label[] = {" w8", " w4", " apot w4a4"};
  state.SetLabel(std::string(backends::int_gemm_kernel_name(kernel)) + label[codes]);
  if (!backends::int_gemm_kernel_runnable(kernel)) {
    state.SkipWithError("kernel not runnable on this host / ISA cap");
    return;
  }
  std::mt19937 rng(5);
  const int max_input = codes == 2 ? 48 : 255;
  const int apot[] = {0, 1, 2, 3, 4, 6, 8, 10};
  std::uniform_int_distribution<int> in(0, max_input), w(codes == 1 ? -8 : -128, codes == 1 ? 7 : 127);
  std::vector<uint8_t> a(static_cast<size_t>(s.m * s.k));
  std::vector<int8_t> b(static_cast<size_t>(s.n * s.k));
  for (auto& v : a) v = static_cast<uint8_t>(in(rng));
  for (auto& v : b) v = static_cast<int8_t>(codes == 2 ? (rng() % 2 != 0 ? -1 : 1) * apot[rng() % 8] : w(rng));
  const auto packed = backends::pack_int8_weights(s.n, s.k, b.data(), s.k, max_input);
  std::vector<int32_t> c(static_cast<size_t>(s.m * s.n));
  for (auto _ : state) {
    backends::gemm_u8s8_s32_with(kernel, s.m, a.data(), s.k, packed, c.data(), s.n);
    benchmark::DoNotOptimize(c.data());
  }
  set_gops(state, s);
}

// The packed convolutions' epilogue alone (backends/int_conv.h, detail::int_conv_epilogue) on one tile of 96 output
// pixels, as int_conv2d_nhwc runs it per tile: arg 0 = out_c (16 or 64); arg 1 = 0: codes for one 4-bit consumer only
// (conv1 -> conv2 in a block), 1: float output + residual + two 4-bit consumers (a block's conv2 before a
// downsampling block). Items are output values.
void BM_IntConvEpilogue(benchmark::State& state) {
  const int64_t out_c = state.range(0), rows = 96, n = rows * out_c;
  const bool tail = state.range(1) != 0;
  std::mt19937 rng(7);
  std::vector<float> t;
  std::vector<uint8_t> book;
  for (int c = 0; c < 16; ++c) book.push_back(static_cast<uint8_t>(c));
  for (int c = 1; c < 16; ++c) t.push_back(0.1f * static_cast<float>(c * c) / 16.0f);  // uneven, as APoT's
  const backends::CodeThresholds q(t, book);
  std::vector<int32_t> acc(static_cast<size_t>(n));
  for (auto& a : acc) a = static_cast<int32_t>(rng() % 4001) - 2000;
  std::vector<float> scale(static_cast<size_t>(out_c), 0.9f), shift(static_cast<size_t>(out_c), 0.1f);
  std::vector<float> residual(static_cast<size_t>(n), 0.05f), out(static_cast<size_t>(n)),
      scratch(static_cast<size_t>(n));
  std::vector<uint8_t> c0(static_cast<size_t>(n)), c1(static_cast<size_t>(n));
  backends::IntConvEpilogue e;
  e.unit = 1e-3;
  e.scale = scale.data();
  e.shift = shift.data();
  e.relu = true;
  e.quant[0] = &q;
  e.codes[0] = c0.data();
  if (tail) {
    e.residual = residual.data();
    e.out = out.data();
    e.quant[1] = &q;
    e.codes[1] = c1.data();
  }
  const backends::detail::EpiloguePlan plan(e, out_c);
  for (auto _ : state) {
    benchmark::DoNotOptimize(backends::detail::int_conv_epilogue(e, plan, out_c, 0, rows, acc.data(), scratch.data()));
    benchmark::ClobberMemory();
  }
  state.SetItemsProcessed(state.iterations() * n);
}

// A whole binary-weight convolution with 2-bit input codes (backends::int_conv2d_nhwc), ResNet-20's 3x3 layers on
// Fashion-MNIST at batch 32: arg 0 = stage (0: 16 channels at 28 x 28, 1: 32 at 14 x 14, 2: 64 at 7 x 7); arg 1 = 0:
// the GEMM kernels (bit-serial switched off), 1: the bit-serial kernels (int_conv_bitserial.h; the same as 0 where
// the host cannot run them). The epilogue writes one consumer's 2-bit codes into a bordered buffer, as a block's
// first conv does. On the calling thread. Items are multiply-adds.
void BM_IntConvBinary(benchmark::State& state) {
  const int64_t stage = state.range(0), c = 16 << stage, hw = 28 >> stage, batch = 32;
  const bool bitserial = state.range(1) != 0;
  std::mt19937 rng(5);
  backends::IntConvGeometry g{batch, hw, hw, c, c, 3, 1, 1, 1};
  std::vector<uint8_t> codes(static_cast<size_t>(backends::padded_codes_size(batch, hw, hw, c, 1)), 0);
  for (int64_t n = 0; n < batch; ++n)
    for (int64_t y = 1; y <= hw; ++y)
      for (int64_t i = 0; i < hw * c; ++i)
        codes[static_cast<size_t>(((n * (hw + 2) + y) * (hw + 2) + 1) * c + i)] = static_cast<uint8_t>(rng() % 4);
  std::vector<int8_t> w(static_cast<size_t>(c * c * 9));
  for (auto& v : w) v = (rng() & 1u) != 0 ? 1 : -1;
  const auto packed = backends::pack_conv_weights_rsc(c, c, 3, w.data(), 3);
  const backends::CodeThresholds q({0.5f, 1.5f, 2.5f}, {0, 1, 2, 3});
  std::vector<float> scale(static_cast<size_t>(c), 0.01f), shift(static_cast<size_t>(c), 0.1f);
  std::vector<uint8_t> out(codes.size());
  backends::IntConvEpilogue e;
  e.unit = 1.0;
  e.scale = scale.data();
  e.shift = shift.data();
  e.relu = true;
  e.quant[0] = &q;
  e.codes[0] = out.data();
  e.codes_pad = 1;
  const bool saved = backends::bitserial_conv_enabled();
  backends::set_bitserial_conv_enabled(bitserial);
  const int threads = get_num_threads();
  set_num_threads(1);
  state.SetLabel(backends::bitserial_conv_runnable(g, packed)
                     ? "bit-serial"
                     : backends::int_gemm_kernel_name(backends::int_gemm_kernel()));
  for (auto _ : state) {
    benchmark::DoNotOptimize(backends::int_conv2d_nhwc(g, codes.data(), packed, e));
    benchmark::ClobberMemory();
  }
  set_num_threads(threads);
  backends::set_bitserial_conv_enabled(saved);
  state.SetItemsProcessed(state.iterations() * batch * hw * hw * c * c * 9);
}

// The float GEMM of the same shape through the cpu backend's matmul (OpenBLAS sgemm).
void BM_IntGemmFloatRef(benchmark::State& state) {
  const IntGemmShape& s = kIntGemmShapes[state.range(0)];
  Tensor a = randn({s.m, s.k}), w = randn({s.k, s.n}), out = empty({s.m, s.n});
  Backend& b = backend_for(a);
  for (auto _ : state) b.matmul(out, a, w, false, false);
  set_gops(state, s);
}

#ifdef MINIDL_WITH_ONEDNN
// oneDNN's int8 matmul of the same shape: u8 x s8 -> s32, weights in the layout oneDNN picks (format any,
// reordered once, as for a deployed model). state.range(1): 0 random 8-bit weight codes, 1 4-bit codes.
void BM_IntGemmOnednn(benchmark::State& state) {
  const IntGemmShape& s = kIntGemmShapes[state.range(0)];
  using dt = dnnl::memory::data_type;
  using tag = dnnl::memory::format_tag;
  dnnl::engine eng(dnnl::engine::kind::cpu, 0);
  dnnl::stream strm(eng);
  const dnnl::memory::desc src_md({s.m, s.k}, dt::u8, tag::ab), dst_md({s.m, s.n}, dt::s32, tag::ab);
  const dnnl::memory::desc w_plain({s.k, s.n}, dt::s8, tag::ba), w_any({s.k, s.n}, dt::s8, tag::any);
  const dnnl::matmul::primitive_desc pd(dnnl::matmul::desc(src_md, w_any, dst_md), eng);
  const bool four_bit = state.range(1) != 0;
  state.SetLabel(std::string("onednn ") + pd.impl_info_str() + (four_bit ? " w4" : " w8"));
  std::mt19937 rng(5);
  std::uniform_int_distribution<int> u8(0, 255), s8(four_bit ? -8 : -128, four_bit ? 7 : 127);
  dnnl::memory src(src_md, eng), dst(dst_md, eng), w_user(w_plain, eng), w(pd.weights_desc(), eng);
  auto* ap = static_cast<uint8_t*>(src.get_data_handle());
  for (int64_t i = 0; i < s.m * s.k; ++i) ap[i] = static_cast<uint8_t>(u8(rng));
  auto* wp = static_cast<int8_t*>(w_user.get_data_handle());
  for (int64_t i = 0; i < s.k * s.n; ++i) wp[i] = static_cast<int8_t>(s8(rng));
  dnnl::reorder(w_user, w).execute(strm, w_user, w);
  dnnl::matmul mm(pd);
  for (auto _ : state) {
    mm.execute(strm, {{DNNL_ARG_SRC, src}, {DNNL_ARG_WEIGHTS, w}, {DNNL_ARG_DST, dst}});
    strm.wait();
  }
  set_gops(state, s);
  // oneDNN does not promise exact sums without VNNI (its AVX2 int8 path uses vpmaddubsw): count the outputs that
  // differ from the exact ones
  const auto packed = backends::pack_int8_weights(s.n, s.k, wp, s.k);
  std::vector<int32_t> exact(static_cast<size_t>(s.m * s.n));
  backends::gemm_u8s8_s32(s.m, ap, s.k, packed, exact.data(), s.n);
  const auto* dp = static_cast<const int32_t*>(dst.get_data_handle());
  int64_t wrong = 0;
  for (int64_t i = 0; i < s.m * s.n; ++i) wrong += dp[i] != exact[static_cast<size_t>(i)];
  state.counters["inexact"] = static_cast<double>(wrong);
}
#endif

}  // namespace

BENCHMARK_CAPTURE(BM_Conv, forward, ConvPass::Forward)
    ->ArgsProduct({benchmark::CreateDenseRange(0, 8, 1), {0, 1}})
    ->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(BM_Conv, backward_data, ConvPass::BackwardData)
    ->ArgsProduct({benchmark::CreateDenseRange(0, 8, 1), {0, 1}})
    ->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(BM_Conv, backward_weight, ConvPass::BackwardWeight)
    ->ArgsProduct({benchmark::CreateDenseRange(0, 8, 1), {0, 1}})
    ->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(BM_BatchNorm, forward, 0)
    ->ArgsProduct({{128}, {16}, {32}, {0, 1}})
    ->Args({32, 64, 56, 0})
    ->Args({32, 64, 56, 1})
    ->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(BM_BatchNorm, backward, 1)
    ->ArgsProduct({{128}, {16}, {32}, {0, 1}})
    ->Args({32, 64, 56, 0})
    ->Args({32, 64, 56, 1})
    ->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(BM_BatchNorm, relu_forward, 2)
    ->Args({128, 16, 32, 1})
    ->Args({32, 64, 56, 1})
    ->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(BM_BatchNorm, relu_backward, 3)
    ->Args({128, 16, 32, 1})
    ->Args({32, 64, 56, 1})
    ->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(BM_Actnn, quantize, 0)->Arg(1)->Arg(2)->Arg(3)->Arg(4)->Arg(8)->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(BM_Actnn, dequantize, 1)->Arg(1)->Arg(2)->Arg(3)->Arg(4)->Arg(8)->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(BM_Actnn, pack_mask, 2)->Arg(1)->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(BM_Actnn, unpack_mask, 3)->Arg(1)->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(BM_QuantClip, forward, 0)->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(BM_QuantClip, backward_from_input, 1)->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(BM_QuantClip, backward_from_codes, 2)->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(BM_BnReluQuant, two_ops, 0)->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(BM_BnReluQuant, fused, 1)->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(BM_BnReluQuant, fused_codes, 2)->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(BM_Codebook, encode, 0)->Arg(16)->Arg(17)->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(BM_Codebook, decode, 1)->Arg(16)->Arg(17)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_MaxPool)->Arg(0)->Arg(1)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_Gemm)->Arg(256)->Arg(1024)->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(BM_Elementwise, relu, false)->Unit(benchmark::kMicrosecond);
BENCHMARK_CAPTURE(BM_Elementwise, add, true)->Unit(benchmark::kMicrosecond);
// Wall-clock rates (UseRealTime): the calls are multi-threaded. The scalar kernel on the batch-1 shapes only
// (batch 128 takes a second per call); kernels the host cannot run report an error line.
BENCHMARK(BM_IntGemm)->ArgsProduct({{0, 1, 2}, {0}, {0}})->Unit(benchmark::kMicrosecond)->UseRealTime();
BENCHMARK(BM_IntGemm)
    ->ArgsProduct({benchmark::CreateDenseRange(0, 5, 1), {1, 2, 3}, {0, 1, 2}})
    ->Unit(benchmark::kMicrosecond)
    ->UseRealTime();
BENCHMARK(BM_IntConvEpilogue)->ArgsProduct({{16, 64}, {0, 1}})->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_IntConvBinary)->ArgsProduct({{0, 1, 2}, {0, 1}})->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_IntGemmFloatRef)->DenseRange(0, 5, 1)->Unit(benchmark::kMicrosecond)->UseRealTime();
#ifdef MINIDL_WITH_ONEDNN
BENCHMARK(BM_IntGemmOnednn)
    ->ArgsProduct({benchmark::CreateDenseRange(0, 5, 1), {0, 1}})
    ->Unit(benchmark::kMicrosecond)
    ->UseRealTime();
#endif

int main(int argc, char** argv) {
  // --threads=N (taken out before Google Benchmark parses its own flags), else MINIDL_BENCH_THREADS, else 2 (the
  // machines' core count). 1 gives single-core figures whose CPU time is the whole work, which a host shared with
  // other jobs still measures well.
  const char* env_threads = std::getenv("MINIDL_BENCH_THREADS");
  int threads = env_threads != nullptr ? std::atoi(env_threads) : 2;
  int kept = 1;
  for (int i = 1; i < argc; ++i) {
    if (std::strncmp(argv[i], "--threads=", 10) == 0) {
      threads = std::atoi(argv[i] + 10);
    } else {
      argv[kept++] = argv[i];
    }
  }
  argc = kept;
  if (threads < 1) {
    std::fprintf(stderr, "kernels: the thread count (--threads= or MINIDL_BENCH_THREADS) must be >= 1\n");
    return 1;
  }
  set_num_threads(threads);
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  std::printf("minidl kernels on backend %s, %d threads\n", cpu_backend_name().c_str(), get_num_threads());
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
