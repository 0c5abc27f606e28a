// Pooling of the cpu backend over (N,C,H,W). Max pooling is a hand-written loop (f32/f64) because the
// interface wants PyTorch's i64 indices (flat h*W+w in the input plane, first maximum wins, NaN wins), which
// oneDNN's workspace does not give; planes run in parallel. Average pooling is oneDNN (f32, cached
// primitives, include/exclude padding). Adaptive average pooling is a loop over PyTorch's cell bounds.
#include <cmath>
#include <limits>
#include <type_traits>
#include <vector>

#include "backends/cpu/cpu_backend.h"
#include "backends/cpu/cpu_loops.h"
#include "backends/cpu/dnnl_common.h"

namespace minidl {
namespace {

Shape pool_out_shape(const char* op, const Shape& x, const Pool2dParams& p) {
  MINIDL_CHECK(x.size() == 4, op, " (backend cpu): input must be (N,C,H,W), got ", shape_str(x));
  MINIDL_CHECK(p.kernel_h >= 1 && p.kernel_w >= 1 && p.stride_h >= 1 && p.stride_w >= 1 && p.pad_h >= 0 && p.pad_w >= 0,
               op, " (backend cpu): kernel and stride must be >= 1, padding >= 0");
  MINIDL_CHECK(2 * p.pad_h <= p.kernel_h && 2 * p.pad_w <= p.kernel_w, op,
               " (backend cpu): padding must be at most half the kernel (kernel ", p.kernel_h, "x", p.kernel_w,
               ", pad ", p.pad_h, "x", p.pad_w, ")");
  // A window larger than the padded input has no valid output; PyTorch rejects it, and so do we.
  MINIDL_CHECK(x[2] + 2 * p.pad_h >= p.kernel_h && x[3] + 2 * p.pad_w >= p.kernel_w, op, " (backend cpu): kernel ",
               p.kernel_h, "x", p.kernel_w, " is larger than the padded input ", shape_str(x), " (pad ", p.pad_h, "x",
               p.pad_w, ")");
  const int64_t P = conv_out_size(x[2], p.kernel_h, p.stride_h, p.pad_h);
  const int64_t Q = conv_out_size(x[3], p.kernel_w, p.stride_w, p.pad_w);
  MINIDL_CHECK(P >= 1 && Q >= 1, op, " (backend cpu): input ", shape_str(x), " too small for kernel ", p.kernel_h, "x",
               p.kernel_w);
  return {x[0], x[1], P, Q};
}

// Per output row: the window is walked tap by tap (kh outer, kw inner: the same row-major order as a plain
// window scan, so the first maximum wins) with the inner loop over the output columns, which is branch-free
// and long. NaN: the first NaN of a window wins and sticks, as in the ref backend.
// Per output row: the window is walked tap by tap (kh outer, kw inner: the same row-major order as a plain
// window scan, so the first maximum wins) with the inner loop over the output columns: branch-free selects on
// floats and 32-bit positions that the compiler vectorises (the i64 indices are written once per row).
// NaN: the first NaN of a window wins and sticks, as in the ref backend.
template <typename T>
void max_pool_fwd(T* y, int64_t* ind, const T* x, int64_t planes, int64_t H, int64_t W, int64_t P, int64_t Q,
                  const Pool2dParams& p) {
  using Pos = std::conditional_t<sizeof(T) == 4, int32_t, int64_t>;  // same lane width as T
  cpu::parallel_for(planes, H * W, [&](int64_t b, int64_t e) {
    std::vector<Pos> pos(static_cast<size_t>(Q));
    Pos* ps = pos.data();
    for (int64_t pl = b; pl < e; ++pl) {
      const T* xp = x + pl * H * W;
      for (int64_t oh = 0; oh < P; ++oh) {
        T* best = y + (pl * P + oh) * Q;
        int64_t* idx = ind + (pl * P + oh) * Q;
        const int64_t h0 = oh * p.stride_h - p.pad_h;
        const int64_t hs = std::max<int64_t>(h0, 0), he = std::min<int64_t>(h0 + p.kernel_h, H);
        for (int64_t ow = 0; ow < Q; ++ow) {
          best[ow] = -std::numeric_limits<T>::infinity();
          ps[ow] = static_cast<Pos>(hs * W + std::max<int64_t>(ow * p.stride_w - p.pad_w, 0));  // first real tap
        }
        const int64_t sw = p.stride_w;
        for (int64_t ih = hs; ih < he; ++ih) {
          const T* row = xp + ih * W;
          for (int64_t kw = 0; kw < p.kernel_w; ++kw) {
            // columns ow whose tap iw = ow*sw + off lies inside [0, W)
            const int64_t off = kw - p.pad_w;
            const int64_t lo = off >= 0 ? 0 : (-off + sw - 1) / sw;
            const int64_t hi = std::min<int64_t>(Q, W - off > 0 ? (W - off - 1) / sw + 1 : 0);
            const Pos base = static_cast<Pos>(ih * W + off);
            const Pos step = static_cast<Pos>(sw);
#pragma omp simd
            for (int64_t ow = lo; ow < hi; ++ow) {
              const T v = row[ow * sw + off];
              const T bv = best[ow];
              const bool take = (v > bv) | ((v != v) & (bv == bv));
              best[ow] = take ? v : bv;
              ps[ow] = take ? static_cast<Pos>(base + static_cast<Pos>(ow) * step) : ps[ow];
            }
          }
        }
        for (int64_t ow = 0; ow < Q; ++ow) idx[ow] = static_cast<int64_t>(ps[ow]);
      }
    }
  });
}

template <typename T>
void max_pool_bwd(T* gx, const T* gy, const int64_t* ind, int64_t planes, int64_t HW, int64_t PQ) {
  cpu::parallel_for(planes, HW + PQ, [&](int64_t b, int64_t e) {
    for (int64_t pl = b; pl < e; ++pl) {
      T* g = gx + pl * HW;
      for (int64_t i = 0; i < HW; ++i) g[i] = T(0);
      const T* gp = gy + pl * PQ;
      const int64_t* ip = ind + pl * PQ;
      for (int64_t i = 0; i < PQ; ++i) g[ip[i]] += gp[i];
    }
  });
}

// Channels-last max pooling (x, y and indices all nhwc): per output pixel the window is walked tap by tap in
// the same row-major order as above, the inner loop running along C (contiguous), so the first maximum wins and
// a NaN sticks exactly as in the planar kernel. Parallel over output rows (n, oh).
template <typename T>
void max_pool_fwd_nhwc(T* y, int64_t* ind, const T* x, int64_t N, int64_t C, int64_t H, int64_t W, int64_t P, int64_t Q,
                       const Pool2dParams& p) {
  using Pos = std::conditional_t<sizeof(T) == 4, int32_t, int64_t>;  // same lane width as T: the select vectorises
  cpu::parallel_for(N * P, Q * C * p.kernel_h * p.kernel_w, [&](int64_t b, int64_t e) {
    std::vector<Pos> pos(static_cast<size_t>(C));
    Pos* ps = pos.data();
    for (int64_t row = b; row < e; ++row) {
      const int64_t n = row / P, oh = row % P;
      const int64_t h0 = oh * p.stride_h - p.pad_h;
      const int64_t hs = std::max<int64_t>(h0, 0), he = std::min<int64_t>(h0 + p.kernel_h, H);
      for (int64_t ow = 0; ow < Q; ++ow) {
        const int64_t w0 = ow * p.stride_w - p.pad_w;
        const int64_t ws = std::max<int64_t>(w0, 0), we = std::min<int64_t>(w0 + p.kernel_w, W);
        T* best = y + ((n * P + oh) * Q + ow) * C;
        int64_t* idx = ind + ((n * P + oh) * Q + ow) * C;
        for (int64_t c = 0; c < C; ++c) {
          best[c] = -std::numeric_limits<T>::infinity();
          ps[c] = static_cast<Pos>(hs * W + ws);  // first real tap
        }
        for (int64_t ih = hs; ih < he; ++ih) {
          for (int64_t iw = ws; iw < we; ++iw) {
            const T* xv = x + ((n * H + ih) * W + iw) * C;
            const Pos here = static_cast<Pos>(ih * W + iw);
#pragma omp simd
            for (int64_t c = 0; c < C; ++c) {
              const T v = xv[c];
              const T bv = best[c];
              const bool take = (v > bv) | ((v != v) & (bv == bv));
              best[c] = take ? v : bv;
              ps[c] = take ? here : ps[c];
            }
          }
        }
        for (int64_t c = 0; c < C; ++c) idx[c] = static_cast<int64_t>(ps[c]);
      }
    }
  });
}

// gx (nhwc) = 0, then each output's gradient added at its input position; parallel over samples (the windows
// of one sample overlap, different samples never do).
template <typename T>
void max_pool_bwd_nhwc(T* gx, const T* gy, const int64_t* ind, int64_t N, int64_t C, int64_t HW, int64_t PQ) {
  cpu::parallel_for(N, (HW + PQ) * C, [&](int64_t b, int64_t e) {
    for (int64_t n = b; n < e; ++n) {
      T* g = gx + n * HW * C;
      for (int64_t i = 0; i < HW * C; ++i) g[i] = T(0);
      const T* gp = gy + n * PQ * C;
      const int64_t* ip = ind + n * PQ * C;
      for (int64_t i = 0; i < PQ; ++i) {
        for (int64_t c = 0; c < C; ++c) g[ip[i * C + c] * C + c] += gp[i * C + c];
      }
    }
  });
}

// PyTorch's adaptive cell bounds: [floor(i*In/Out), ceil((i+1)*In/Out)).
inline int64_t cell_start(int64_t i, int64_t in, int64_t out) { return (i * in) / out; }
inline int64_t cell_end(int64_t i, int64_t in, int64_t out) { return ((i + 1) * in + out - 1) / out; }

// ---- oneDNN average pooling ----
using namespace dnnl;

struct AvgPlan {
  pooling_forward::primitive_desc fwd_pd;
  primitive fwd;
  pooling_backward::primitive_desc bwd_pd;
  primitive bwd;
};

cpu::PlanCache<AvgPlan>& avg_cache() {
  static cpu::PlanCache<AvgPlan> c;
  return c;
}

std::shared_ptr<const AvgPlan> avg_plan(const char* op, const Shape& x, const Shape& y, const Pool2dParams& p,
                                        bool backward) {
  std::vector<int64_t> key(x.begin(), x.end());
  for (int64_t v : {p.kernel_h, p.kernel_w, p.stride_h, p.stride_w, p.pad_h, p.pad_w,
                    static_cast<int64_t>(p.count_include_pad), static_cast<int64_t>(backward)})
    key.push_back(v);
  const std::string str = "x " + shape_str(x) + ", kernel " + std::to_string(p.kernel_h) + "x" +
                          std::to_string(p.kernel_w) + ", stride " + std::to_string(p.stride_h) + "x" +
                          std::to_string(p.stride_w) + ", pad " + std::to_string(p.pad_h) + "x" +
                          std::to_string(p.pad_w);
  return cpu::dnnl_call(op, str, [&] {
    return avg_cache().get(key, [&] {
      AvgPlan pl;
      const auto alg =
          p.count_include_pad ? algorithm::pooling_avg_include_padding : algorithm::pooling_avg_exclude_padding;
      const cpu::dnnl_dims strides{p.stride_h, p.stride_w}, kernel{p.kernel_h, p.kernel_w}, pad_l{p.pad_h, p.pad_w};
      // right padding that reproduces our (floor) output extent
      const cpu::dnnl_dims pad_r{(y[2] - 1) * p.stride_h + p.kernel_h - x[2] - p.pad_h,
                                 (y[3] - 1) * p.stride_w + p.kernel_w - x[3] - p.pad_w};
      const auto xmd = cpu::plain_f32(x), ymd = cpu::plain_f32(y);
      pooling_forward::desc fd(prop_kind::forward_training, alg, xmd, ymd, strides, kernel, pad_l, pad_r);
      pl.fwd_pd = pooling_forward::primitive_desc(fd, cpu::dnnl_engine());
      if (backward) {
        pooling_backward::desc bd(alg, xmd, ymd, strides, kernel, pad_l, pad_r);
        pl.bwd_pd = pooling_backward::primitive_desc(bd, cpu::dnnl_engine(), pl.fwd_pd);
        pl.bwd = pooling_backward(pl.bwd_pd);
      } else {
        pl.fwd = pooling_forward(pl.fwd_pd);
      }
      return pl;
    });
  });
}

}  // namespace

void CpuBackend::max_pool2d_forward(Tensor& y, Tensor& indices, const Tensor& x, const Pool2dParams& p) {
  const char* op = "max_pool2d_forward";
  cpu::check_cpu(op, "x", x);
  if (!is_floating(x.dtype())) cpu::unsupported(op, x.dtype());
  const Shape ys = pool_out_shape(op, x.sizes(), p);
  cpu::check_tensor(op, "y", y, x.dtype(), ys);
  cpu::check_tensor(op, "indices", indices, DType::i64, ys);
  MINIDL_CHECK(x.sizes()[2] * x.sizes()[3] < (int64_t{1} << 31), op, " (backend cpu): input plane of ",
               shape_str(x.sizes()), " is too large for 32-bit positions");
  if (cpu::is_nhwc(y)) {  // channels-last network: y, indices and x all nhwc
    MINIDL_CHECK(indices.is_channels_last(), op, " (backend cpu): indices must share y's channels-last layout");
    const Tensor xc = cpu::channels_last_input(x);
    dispatch_floating(x.dtype(), op, [&](auto tag) {
      using T = decltype(tag);
      max_pool_fwd_nhwc<T>(y.data<T>(), indices.data<int64_t>(), xc.data<T>(), ys[0], ys[1], x.sizes()[2], x.sizes()[3],
                           ys[2], ys[3], p);
    });
    return;
  }
  MINIDL_CHECK(y.is_contiguous() && indices.is_contiguous(), op,
               " (backend cpu): outputs must be contiguous or channels-last");
  const Tensor xc = cpu::contiguous_input(x);
  dispatch_floating(x.dtype(), op, [&](auto tag) {
    using T = decltype(tag);
    max_pool_fwd<T>(y.data<T>(), indices.data<int64_t>(), xc.data<T>(), ys[0] * ys[1], x.sizes()[2], x.sizes()[3],
                    ys[2], ys[3], p);
  });
}

void CpuBackend::max_pool2d_backward(Tensor& gx, const Tensor& gy, const Tensor& indices, const Pool2dParams& p) {
  const char* op = "max_pool2d_backward";
  cpu::check_cpu(op, "gx", gx);
  if (!is_floating(gx.dtype())) cpu::unsupported(op, gx.dtype());
  const Shape ys = pool_out_shape(op, gx.sizes(), p);
  cpu::check_tensor(op, "gy", gy, gx.dtype(), ys);
  cpu::check_tensor(op, "indices", indices, DType::i64, ys);
  const bool nhwc = cpu::is_nhwc(gx);
  MINIDL_CHECK(nhwc || gx.is_contiguous(), op, " (backend cpu): gx must be contiguous or channels-last");
  const Tensor gyc = nhwc ? cpu::channels_last_input(gy) : cpu::contiguous_input(gy);
  const Tensor ic = nhwc ? cpu::channels_last_input(indices) : cpu::contiguous_input(indices);
  const int64_t HW = gx.sizes()[2] * gx.sizes()[3];
  {  // indices come from outside: validate so a bad one is an error, not a stray write
    const int64_t* ip = ic.data<int64_t>();
    const int64_t n = ic.numel();
    bool ok = true;
    for (int64_t i = 0; i < n; ++i) ok &= (ip[i] >= 0) & (ip[i] < HW);
    MINIDL_CHECK(ok, op, " (backend cpu): an index is outside the input plane of ", HW, " elements");
  }
  dispatch_floating(gx.dtype(), op, [&](auto tag) {
    using T = decltype(tag);
    if (nhwc)
      max_pool_bwd_nhwc<T>(gx.data<T>(), gyc.data<T>(), ic.data<int64_t>(), ys[0], ys[1], HW, ys[2] * ys[3]);
    else
      max_pool_bwd<T>(gx.data<T>(), gyc.data<T>(), ic.data<int64_t>(), ys[0] * ys[1], HW, ys[2] * ys[3]);
  });
}

void CpuBackend::avg_pool2d_forward(Tensor& y, const Tensor& x, const Pool2dParams& p) {
  const char* op = "avg_pool2d_forward";
  cpu::check_cpu(op, "x", x);
  if (x.dtype() != DType::f32) cpu::unsupported(op, x.dtype());
  const Shape ys = pool_out_shape(op, x.sizes(), p);
  cpu::check_tensor(op, "y", y, DType::f32, ys);
  MINIDL_CHECK(y.is_contiguous(), op, " (backend cpu): y must be contiguous");
  if (y.numel() == 0) return;
  auto plan = avg_plan(op, x.sizes(), ys, p, false);
  const Tensor xc = cpu::contiguous_input(x);
  cpu::dnnl_call(op, shape_str(x.sizes()), [&] {
    plan->fwd.execute(cpu::dnnl_stream(), {{DNNL_ARG_SRC, cpu::wrap(cpu::plain_f32(x.sizes()), xc)},
                                           {DNNL_ARG_DST, cpu::wrap(cpu::plain_f32(ys), y)}});
  });
}

void CpuBackend::avg_pool2d_backward(Tensor& gx, const Tensor& gy, const Pool2dParams& p) {
  const char* op = "avg_pool2d_backward";
  cpu::check_cpu(op, "gx", gx);
  if (gx.dtype() != DType::f32) cpu::unsupported(op, gx.dtype());
  const Shape ys = pool_out_shape(op, gx.sizes(), p);
  cpu::check_tensor(op, "gy", gy, DType::f32, ys);
  MINIDL_CHECK(gx.is_contiguous(), op, " (backend cpu): gx must be contiguous");
  if (gx.numel() == 0) return;
  auto plan = avg_plan(op, gx.sizes(), ys, p, true);
  const Tensor gyc = cpu::contiguous_input(gy);
  cpu::dnnl_call(op, shape_str(gx.sizes()), [&] {
    plan->bwd.execute(cpu::dnnl_stream(), {{DNNL_ARG_DIFF_DST, cpu::wrap(cpu::plain_f32(ys), gyc)},
                                           {DNNL_ARG_DIFF_SRC, cpu::wrap(cpu::plain_f32(gx.sizes()), gx)}});
  });
}

void CpuBackend::adaptive_avg_pool2d_forward(Tensor& y, const Tensor& x) {
  const char* op = "adaptive_avg_pool2d_forward";
  cpu::check_cpu(op, "x", x);
  cpu::check_cpu(op, "y", y);
  if (!is_floating(x.dtype())) cpu::unsupported(op, x.dtype());
  MINIDL_CHECK(x.dim() == 4 && y.dim() == 4 && y.sizes()[0] == x.sizes()[0] && y.sizes()[1] == x.sizes()[1] &&
                   y.sizes()[2] >= 1 && y.sizes()[3] >= 1,
               op, " (backend cpu): x ", shape_str(x.sizes()), " and y ", shape_str(y.sizes()),
               " must be (N,C,H,W) and (N,C,P,Q)");
  cpu::check_tensor(op, "y", y, x.dtype(), y.sizes());
  MINIDL_CHECK(y.is_contiguous(), op, " (backend cpu): y must be contiguous");
  const Tensor xc = cpu::contiguous_input(x);
  const int64_t H = x.sizes()[2], W = x.sizes()[3], P = y.sizes()[2], Q = y.sizes()[3];
  dispatch_floating(x.dtype(), op, [&](auto tag) {
    using T = decltype(tag);
    const T* xp = xc.data<T>();
    T* yp = y.data<T>();
    cpu::parallel_for(x.sizes()[0] * x.sizes()[1], H * W, [&](int64_t b, int64_t e) {
      for (int64_t pl = b; pl < e; ++pl) {
        const T* xs = xp + pl * H * W;
        for (int64_t i = 0; i < P; ++i) {
          const int64_t h0 = cell_start(i, H, P), h1 = cell_end(i, H, P);
          for (int64_t j = 0; j < Q; ++j) {
            const int64_t w0 = cell_start(j, W, Q), w1 = cell_end(j, W, Q);
            double s = 0;
            for (int64_t h = h0; h < h1; ++h)
              for (int64_t w = w0; w < w1; ++w) s += xs[h * W + w];
            yp[(pl * P + i) * Q + j] = static_cast<T>(s / static_cast<double>((h1 - h0) * (w1 - w0)));
          }
        }
      }
    });
  });
}

void CpuBackend::adaptive_avg_pool2d_backward(Tensor& gx, const Tensor& gy) {
  const char* op = "adaptive_avg_pool2d_backward";
  cpu::check_cpu(op, "gx", gx);
  cpu::check_cpu(op, "gy", gy);
  if (!is_floating(gx.dtype())) cpu::unsupported(op, gx.dtype());
  MINIDL_CHECK(gx.dim() == 4 && gy.dim() == 4 && gy.sizes()[0] == gx.sizes()[0] && gy.sizes()[1] == gx.sizes()[1] &&
                   gy.sizes()[2] >= 1 && gy.sizes()[3] >= 1,
               op, " (backend cpu): gx ", shape_str(gx.sizes()), " and gy ", shape_str(gy.sizes()),
               " must be (N,C,H,W) and (N,C,P,Q)");
  cpu::check_tensor(op, "gy", gy, gx.dtype(), gy.sizes());
  MINIDL_CHECK(gx.is_contiguous(), op, " (backend cpu): gx must be contiguous");
  const Tensor gyc = cpu::contiguous_input(gy);
  const int64_t H = gx.sizes()[2], W = gx.sizes()[3], P = gy.sizes()[2], Q = gy.sizes()[3];
  dispatch_floating(gx.dtype(), op, [&](auto tag) {
    using T = decltype(tag);
    const T* gp = gyc.data<T>();
    T* xp = gx.data<T>();
    cpu::parallel_for(gx.sizes()[0] * gx.sizes()[1], H * W, [&](int64_t b, int64_t e) {
      for (int64_t pl = b; pl < e; ++pl) {
        T* xs = xp + pl * H * W;
        for (int64_t k = 0; k < H * W; ++k) xs[k] = T(0);
        for (int64_t i = 0; i < P; ++i) {
          const int64_t h0 = cell_start(i, H, P), h1 = cell_end(i, H, P);
          for (int64_t j = 0; j < Q; ++j) {
            const int64_t w0 = cell_start(j, W, Q), w1 = cell_end(j, W, Q);
            const T g = gp[(pl * P + i) * Q + j] / static_cast<T>((h1 - h0) * (w1 - w0));
            for (int64_t h = h0; h < h1; ++h)
              for (int64_t w = w0; w < w1; ++w) xs[h * W + w] += g;
          }
        }
      }
    });
  });
}

}  // namespace minidl
