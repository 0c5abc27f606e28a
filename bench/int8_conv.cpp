// int8_conv: the baseline packed low-bit inference has to beat (issue 18, docs/deploy.md). For every convolution
// shape of ResNet-20 (CIFAR, option B), at batch 1 and 128, the forward time of
//   minidl   minidl's float conv on the cpu backend (what float minidl inference runs: Winograd / oneDNN),
//   dnnl_f32 oneDNN's f32 convolution (nhwc activations, weights in oneDNN's preferred layout),
//   dnnl_s8  oneDNN's int8 convolution (u8 nhwc input, s8 weights in its preferred layout, one f32 output scale,
//            f32 nhwc output): the int8 baseline,
// in interleaved rounds (each round runs every variant of every shape once, `--reps` calls each), reported as
// medians over the rounds, plus the ResNet-20 forward total (each shape times its count in the network).
//   int8_conv --batch 1 --batch 128 --rounds 7 --threads 2
#include <minidl.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <dnnl.hpp>
#include <string>
#include <vector>

using namespace minidl;

namespace {

struct Shape2d {
  const char* name;
  int64_t c, h, k, r, stride, pad, count;  // count: how many convs of ResNet-20 have this shape
};
// ResNet-20 (option B): stem, stage 1 (6 convs), stage 2 (first conv strided + 1x1 shortcut, 5 more), stage 3.
const Shape2d kShapes[] = {
    {"stem 3->16 @32", 3, 32, 16, 3, 1, 1, 1}, {"16->16 @32", 16, 32, 16, 3, 1, 1, 6},
    {"16->32 @32 s2", 16, 32, 32, 3, 2, 1, 1}, {"1x1 16->32 s2", 16, 32, 32, 1, 2, 0, 1},
    {"32->32 @16", 32, 16, 32, 3, 1, 1, 5},    {"32->64 @16 s2", 32, 16, 64, 3, 2, 1, 1},
    {"1x1 32->64 s2", 32, 16, 64, 1, 2, 0, 1}, {"64->64 @8", 64, 8, 64, 3, 1, 1, 5},
};

double now_ms() {
  return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  const size_t n = v.size();
  return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

// One oneDNN convolution (f32 or u8 x s8), its memories created once.
struct DnnlConv {
  dnnl::convolution_forward prim;
  std::unordered_map<int, dnnl::memory> args;

  DnnlConv(dnnl::engine& eng, dnnl::stream& strm, int64_t n, const Shape2d& s, bool int8) {
    using dt = dnnl::memory::data_type;
    using tag = dnnl::memory::format_tag;
    const int64_t oh = (s.h + 2 * s.pad - s.r) / s.stride + 1;
    const dnnl::memory::dims src{n, s.c, s.h, s.h}, wei{s.k, s.c, s.r, s.r}, dst{n, s.k, oh, oh};
    const dnnl::memory::desc src_md(src, int8 ? dt::u8 : dt::f32, tag::nhwc);
    const dnnl::memory::desc wei_any(wei, int8 ? dt::s8 : dt::f32, tag::any);
    const dnnl::memory::desc dst_md(dst, dt::f32, tag::nhwc);
    const dnnl::convolution_forward::desc d(dnnl::prop_kind::forward_inference, dnnl::algorithm::convolution_direct,
                                            src_md, wei_any, dst_md, {s.stride, s.stride}, {s.pad, s.pad},
                                            {s.pad, s.pad});
    dnnl::primitive_attr attr;
    if (int8) attr.set_output_scales(0, {0.0123f});
    const dnnl::convolution_forward::primitive_desc pd(d, attr, eng);
    prim = dnnl::convolution_forward(pd);
    dnnl::memory src_m(pd.src_desc(), eng), dst_m(pd.dst_desc(), eng);
    // weights: plain oihw filled, then reordered once into the primitive's layout (as a deployed model would)
    const dnnl::memory::desc wei_plain(wei, int8 ? dt::s8 : dt::f32, tag::oihw);
    dnnl::memory wp(wei_plain, eng), wm(pd.weights_desc(), eng);
    fill(src_m, int8);
    fill(wp, int8);
    dnnl::reorder(wp, wm).execute(strm, wp, wm);
    strm.wait();
    args = {{DNNL_ARG_SRC, src_m}, {DNNL_ARG_WEIGHTS, wm}, {DNNL_ARG_DST, dst_m}};
  }

  static void fill(dnnl::memory& m, bool int8) {
    const size_t bytes = m.get_desc().get_size();
    auto* p = static_cast<uint8_t*>(m.get_data_handle());
    if (int8) {
      for (size_t i = 0; i < bytes; ++i) p[i] = static_cast<uint8_t>((i * 37u) % 16u);  // 4-bit codes
    } else {
      auto* f = reinterpret_cast<float*>(p);
      for (size_t i = 0; i < bytes / sizeof(float); ++i) f[i] = static_cast<float>((i * 37u) % 16u) / 16.0f;
    }
  }

  void run(dnnl::stream& strm) {
    prim.execute(strm, args);
    strm.wait();
  }
};

}  // namespace

int main(int argc, char** argv) {
  std::vector<int64_t> batches;
  int rounds = 7, reps = 0, threads = 2;
  CLI::App app{"int8_conv: ResNet-20 convolutions, minidl float vs oneDNN f32 vs oneDNN int8 (u8 x s8)"};
  app.add_option("--batch", batches, "batch sizes (repeatable; default 1 and 128)");
  app.add_option("--rounds", rounds, "interleaved rounds; the medians are over rounds")->check(CLI::PositiveNumber);
  app.add_option("--reps", reps, "calls per variant per round (default: 50 at batch 1, 3 at larger batches)")
      ->check(CLI::NonNegativeNumber);
  app.add_option("--threads", threads)->check(CLI::PositiveNumber);
  CLI11_PARSE(app, argc, argv);
  if (batches.empty()) batches = {1, 128};
  try {
    set_num_threads(threads);
    dnnl::engine eng(dnnl::engine::kind::cpu, 0);
    dnnl::stream strm(eng);
    std::printf("int8_conv: %d threads, %d rounds, backend %s\n", threads, rounds, cpu_backend_name().c_str());
    for (const int64_t n : batches) {
      MINIDL_CHECK(n >= 1, "--batch must be >= 1, got ", n);
      const int r = reps > 0 ? reps : (n == 1 ? 50 : 3);
      struct Case {
        Tensor x, w;
        Conv2dParams p;
        std::unique_ptr<DnnlConv> f32, s8;
        std::vector<double> t[3];
      };
      std::vector<Case> cases;
      for (const Shape2d& s : kShapes) {
        Case c;
        c.x = empty({n, s.c, s.h, s.h}, TensorOptions{}, MemoryFormat::ChannelsLast);
        backend_for(c.x).copy(c.x, rand({n, s.c, s.h, s.h}));
        c.w = randn({s.k, s.c, s.r, s.r});
        c.p.stride_h = c.p.stride_w = s.stride;
        c.p.pad_h = c.p.pad_w = s.pad;
        c.f32 = std::make_unique<DnnlConv>(eng, strm, n, s, false);
        c.s8 = std::make_unique<DnnlConv>(eng, strm, n, s, true);
        cases.push_back(std::move(c));
      }
      NoGradGuard no_grad;
      for (int round = 0; round <= rounds; ++round) {  // round 0 warms up (primitive JIT, allocator, caches)
        for (Case& c : cases) {
          double t0 = now_ms();
          for (int i = 0; i < r; ++i) (void)conv2d(c.x, c.w, Tensor(), c.p);
          double t1 = now_ms();
          for (int i = 0; i < r; ++i) c.f32->run(strm);
          double t2 = now_ms();
          for (int i = 0; i < r; ++i) c.s8->run(strm);
          double t3 = now_ms();
          if (round == 0) continue;
          c.t[0].push_back((t1 - t0) / r);
          c.t[1].push_back((t2 - t1) / r);
          c.t[2].push_back((t3 - t2) / r);
        }
      }
      std::printf("\nbatch %lld (ms per call, median of %d rounds of %d calls)\n", static_cast<long long>(n), rounds,
                  r);
      std::printf("%-16s %5s %10s %10s %10s %12s\n", "shape", "count", "minidl", "dnnl_f32", "dnnl_s8", "minidl/s8");
      double total[3] = {0, 0, 0};
      for (size_t i = 0; i < cases.size(); ++i) {
        double m[3];
        for (int v = 0; v < 3; ++v) {
          m[v] = median(cases[i].t[v]);
          total[v] += m[v] * static_cast<double>(kShapes[i].count);
        }
        std::printf("%-16s %5lld %10.4f %10.4f %10.4f %11.2fx\n", kShapes[i].name,
                    static_cast<long long>(kShapes[i].count), m[0], m[1], m[2], m[0] / m[2]);
      }
      std::printf("%-16s %5s %10.4f %10.4f %10.4f %11.2fx\n", "ResNet-20 convs", "19", total[0], total[1], total[2],
                  total[0] / total[2]);
      std::printf("RESULT bench=int8_conv batch=%lld threads=%d minidl_ms=%.4f dnnl_f32_ms=%.4f dnnl_s8_ms=%.4f\n",
                  static_cast<long long>(n), threads, total[0], total[1], total[2]);
    }
  } catch (const std::exception& e) {
    std::fprintf(stderr, "int8_conv: %s\n", e.what());
    return 1;
  }
  return 0;
}
