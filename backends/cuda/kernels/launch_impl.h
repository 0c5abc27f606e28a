// The launchers of launch.h, defined once for both executors. Each hands a kernel body (elementwise.h,
// reduce.h, batch_norm.h, pool.h, softmax_nll.h, quant.h, actnn.h) to the executor as a MINIDL_HD_LAMBDA:
//   Exec::for_each(n, f)                        f(i) for every i in [0, n)
//   Exec::reduce_groups(G, len, init, load, combine, store)
//                                               per group g: fold load(g, r) for r in [0, len) in reduce.h's
//                                               fixed lane/tree order, then store(g, result)
// Included only by the files that instantiate the launchers (backends/cuda/*.cu for DeviceExec,
// backends/cuda/host/cuda_host_launchers.cpp for HostExec). The typed helpers live in a named namespace, not an
// anonymous one, because nvcc's extended lambdas need an enclosing function it can name.
#pragma once

#include "backends/cuda/kernels/actnn.h"
#include "backends/cuda/kernels/batch_norm.h"
#include "backends/cuda/kernels/elementwise.h"
#include "backends/cuda/kernels/launch.h"
#include "backends/cuda/kernels/pool.h"
#include "backends/cuda/kernels/quant.h"
#include "backends/cuda/kernels/reduce.h"
#include "backends/cuda/kernels/softmax_nll.h"

namespace minidl::cuda::kern {
namespace typed {

template <class Exec, class T>
void fill(const FillArgs& a) {
  const T v = cast_value<T>(a.value);
  T* out = static_cast<T*>(a.out);
  const Walk<1> w = a.walk;
  Exec::for_each(a.n, [=] MINIDL_HD_LAMBDA(int64_t i) {
    int64_t off[1];
    walk_offsets(w, i, off);
    out[off[0]] = v;
  });
}

template <class Exec, class D, class S>
void copy(const CopyArgs& a) {
  D* dst = static_cast<D*>(a.dst);
  const S* src = static_cast<const S*>(a.src);
  const Walk<2> w = a.walk;
  Exec::for_each(a.n, [=] MINIDL_HD_LAMBDA(int64_t i) {
    int64_t off[2];
    walk_offsets(w, i, off);
    dst[off[0]] = cast_value<D>(src[off[1]]);
  });
}

template <class Exec, class T>
void unary(const UnaryArgs& a) {
  T* out = static_cast<T*>(a.out);
  const T* in = static_cast<const T*>(a.in);
  const UnaryOp op = a.op;
  const T pa = static_cast<T>(a.a), pb = static_cast<T>(a.b);
  const Walk<2> w = a.walk;
  Exec::for_each(a.n, [=] MINIDL_HD_LAMBDA(int64_t i) {
    int64_t off[2];
    walk_offsets(w, i, off);
    out[off[0]] = unary_value<T>(op, in[off[1]], pa, pb);
  });
}

template <class Exec, class T, class O>
void binary(const BinaryArgs& a) {
  O* out = static_cast<O*>(a.out);
  const T* pa = static_cast<const T*>(a.a);
  const T* pb = static_cast<const T*>(a.b);
  const BinaryOp op = a.op;
  const Walk<3> w = a.walk;
  Exec::for_each(a.n, [=] MINIDL_HD_LAMBDA(int64_t i) {
    int64_t off[3];
    walk_offsets(w, i, off);
    out[off[0]] = cast_value<O>(binary_value<T>(op, pa[off[1]], pb[off[2]]));
  });
}

template <class Exec, class T>
void reduce(const ReduceArgs& a) {
  const ReduceOp op = a.op;
  const T* in = static_cast<const T*>(a.in);
  T* out = static_cast<T*>(a.out);
  const Walk<2> kept = a.kept;
  const Walk<1> red = a.reduced;
  const double count = static_cast<double>(a.len);
  Exec::reduce_groups(
      a.groups, a.len, reduce_init(op),
      [=] MINIDL_HD_LAMBDA(int64_t g, int64_t r) {
        int64_t ko[2], ro[1];
        walk_offsets(kept, g, ko);
        walk_offsets(red, r, ro);
        return static_cast<double>(in[ko[0] + ro[0]]);
      },
      [=] MINIDL_HD_LAMBDA(double x, double y) { return reduce_combine(op, x, y); },
      [=] MINIDL_HD_LAMBDA(int64_t g, double acc) {
        int64_t ko[2];
        walk_offsets(kept, g, ko);
        out[ko[1]] = static_cast<T>(op == ReduceOp::Mean ? acc / count : acc);  // an empty mean is NaN
      });
}

template <class Exec, class T>
void log_softmax_forward(const LogSoftmaxArgs& a) {
  Exec::for_each(a.rows, [=] MINIDL_HD_LAMBDA(int64_t r) { log_softmax_row<T>(a, r); });
}

template <class Exec, class T>
void log_softmax_backward(const LogSoftmaxArgs& a) {
  Exec::for_each(a.rows, [=] MINIDL_HD_LAMBDA(int64_t r) { log_softmax_backward_row<T>(a, r); });
}

template <class Exec, class T>
void nll_forward(const NllArgs& a) {
  Exec::reduce_groups(
      int64_t{1}, a.N, 0.0, [=] MINIDL_HD_LAMBDA(int64_t, int64_t n) { return nll_row_term<T>(a, n); },
      [] MINIDL_HD_LAMBDA(double x, double y) { return x + y; },
      [=] MINIDL_HD_LAMBDA(int64_t, double total) { nll_store_loss<T>(a, total); });
}

template <class Exec, class T>
void nll_backward(const NllArgs& a) {
  Exec::for_each(a.N * a.C, [=] MINIDL_HD_LAMBDA(int64_t i) { nll_backward_elem<T>(a, i); });
}

template <class Exec, class T>
void bn_forward_training(const BnArgs& a) {
  const int64_t M = a.dims.N * a.dims.H * a.dims.W;
  const auto add = [] MINIDL_HD_LAMBDA(double x, double y) { return x + y; };
  Exec::reduce_groups(
      a.dims.C, M, 0.0, [=] MINIDL_HD_LAMBDA(int64_t c, int64_t m) { return bn_load_x<T>(a, c, m); }, add,
      [=] MINIDL_HD_LAMBDA(int64_t c, double s) { bn_store_mean(a, c, s); });
  Exec::reduce_groups(
      a.dims.C, M, 0.0, [=] MINIDL_HD_LAMBDA(int64_t c, int64_t m) { return bn_load_sqdev<T>(a, c, m); }, add,
      [=] MINIDL_HD_LAMBDA(int64_t c, double s) { bn_store_invstd<T>(a, c, s); });
  Exec::for_each(a.dims.numel(), [=] MINIDL_HD_LAMBDA(int64_t i) { bn_apply_training<T>(a, i); });
}

template <class Exec, class T>
void bn_forward_inference(const BnArgs& a) {
  Exec::for_each(a.dims.numel(), [=] MINIDL_HD_LAMBDA(int64_t i) { bn_apply_inference<T>(a, i); });
}

template <class Exec, class T>
void bn_backward(const BnArgs& a) {
  const int64_t M = a.dims.N * a.dims.H * a.dims.W;
  if (a.gx || a.gweight || a.gbias) {
    Exec::reduce_groups(
        a.dims.C, M, Sum2{0.0, 0.0},
        [=] MINIDL_HD_LAMBDA(int64_t c, int64_t m) { return bn_load_grad_sums<T>(a, c, m); },
        [] MINIDL_HD_LAMBDA(Sum2 x, Sum2 y) {
          return Sum2{x.a + y.a, x.b + y.b};
        },
        [=] MINIDL_HD_LAMBDA(int64_t c, Sum2 s) { bn_store_grad_sums<T>(a, c, s); });
  }
  if ((a.gx && M > 0) || a.gresidual) {
    Exec::for_each(a.dims.numel(), [=] MINIDL_HD_LAMBDA(int64_t i) { bn_backward_elem<T>(a, i); });
  }
}

template <class Exec, class T>
void max_pool_forward(const PoolArgs& a) {
  Exec::for_each(pooled_dims(a).numel(), [=] MINIDL_HD_LAMBDA(int64_t i) { max_pool_forward_cell<T>(a, i); });
}
template <class Exec, class T>
void max_pool_backward(const PoolArgs& a) {
  Exec::for_each(a.plane.numel(), [=] MINIDL_HD_LAMBDA(int64_t i) { max_pool_backward_elem<T>(a, i); });
}
template <class Exec, class T>
void avg_pool_forward(const PoolArgs& a) {
  Exec::for_each(pooled_dims(a).numel(), [=] MINIDL_HD_LAMBDA(int64_t i) { avg_pool_forward_cell<T>(a, i); });
}
template <class Exec, class T>
void avg_pool_backward(const PoolArgs& a) {
  Exec::for_each(a.plane.numel(), [=] MINIDL_HD_LAMBDA(int64_t i) { avg_pool_backward_elem<T>(a, i); });
}
template <class Exec, class T>
void adaptive_pool_forward(const PoolArgs& a) {
  Exec::for_each(pooled_dims(a).numel(), [=] MINIDL_HD_LAMBDA(int64_t i) { adaptive_pool_forward_cell<T>(a, i); });
}
template <class Exec, class T>
void adaptive_pool_backward(const PoolArgs& a) {
  Exec::for_each(a.plane.numel(), [=] MINIDL_HD_LAMBDA(int64_t i) { adaptive_pool_backward_elem<T>(a, i); });
}

template <class Exec, class T>
void project_to_levels(const QuantArgs& a) {
  Exec::for_each(a.n, [=] MINIDL_HD_LAMBDA(int64_t i) { project_elem<T>(a, i); });
}
template <class Exec, class T>
void quantize_clip_forward(const QuantArgs& a) {
  Exec::for_each(a.n, [=] MINIDL_HD_LAMBDA(int64_t i) { quantize_clip_elem<T>(a, i); });
}
template <class Exec, class T>
void pact_forward(const QuantArgs& a) {
  Exec::for_each(a.n, [=] MINIDL_HD_LAMBDA(int64_t i) { pact_elem<T>(a, i); });
}
template <class Exec, class T>
void quantize_clip_backward(const QuantBackwardArgs& a) {
  if (a.gx) Exec::for_each(a.n, [=] MINIDL_HD_LAMBDA(int64_t i) { quantize_clip_backward_elem<T>(a, i); });
  if (a.galpha) {
    Exec::reduce_groups(
        int64_t{1}, a.n, 0.0, [=] MINIDL_HD_LAMBDA(int64_t, int64_t i) { return quantize_clip_alpha_term<T>(a, i); },
        [] MINIDL_HD_LAMBDA(double x, double y) { return x + y; },
        [=] MINIDL_HD_LAMBDA(int64_t, double s) { quantize_clip_store_alpha<T>(a, s); });
  }
}

// ActNN: the range pass (a reduction per group, or one over the tensor then spread to every group's metadata),
// then the codes; each pass reads what the one before wrote, in launch order.
template <class Exec, class T>
void actnn_quantize(const ActnnArgs& a) {
  const int64_t groups = a.n * a.ng;
  if (groups == 0) return;
  const auto combine = [] MINIDL_HD_LAMBDA(ActnnMinMax x, ActnnMinMax y) { return actnn_minmax_combine(x, y); };
  if (a.per_group) {
    Exec::reduce_groups(
        groups, a.group, actnn_minmax_empty(),
        [=] MINIDL_HD_LAMBDA(int64_t gi, int64_t r) { return actnn_load_group<T>(a, gi, r); }, combine,
        [=] MINIDL_HD_LAMBDA(int64_t gi, ActnnMinMax m) { actnn_store_range_meta(a, gi, m.mn, m.mx); });
  } else {
    Exec::reduce_groups(
        int64_t{1}, a.n * a.fp, actnn_minmax_empty(),
        [=] MINIDL_HD_LAMBDA(int64_t, int64_t r) { return actnn_load_tensor<T>(a, r); }, combine,
        [=] MINIDL_HD_LAMBDA(int64_t, ActnnMinMax m) {
          a.range[0] = m.mn;
          a.range[1] = m.mx;
        });
    Exec::for_each(groups, [=] MINIDL_HD_LAMBDA(int64_t gi) { actnn_store_range_meta(a, gi, a.range[0], a.range[1]); });
  }
  Exec::for_each(a.n * (a.fp / 8), [=] MINIDL_HD_LAMBDA(int64_t i) { actnn_quantize_unit<T>(a, i); });
}

template <class Exec, class T>
void actnn_dequantize(const ActnnArgs& a) {
  Exec::for_each(a.n * (a.fp / 8), [=] MINIDL_HD_LAMBDA(int64_t i) { actnn_dequantize_unit<T>(a, i); });
}

template <class Exec, class T>
void pack_mask_bits(const MaskBitsArgs& a) {
  Exec::for_each((a.n + 7) / 8, [=] MINIDL_HD_LAMBDA(int64_t i) { mask_pack_byte<T>(a, i); });
}

template <class Exec, class T>
void unpack_mask_bits(const MaskBitsArgs& a) {
  Exec::for_each((a.n + 7) / 8, [=] MINIDL_HD_LAMBDA(int64_t i) { mask_unpack_byte<T>(a, i); });
}

}  // namespace typed

// ---- the untyped entry points: dispatch on dtype ----
#define MINIDL_FLOAT_LAUNCHER(name, Args)                                                      \
  template <class Exec>                                                                        \
  void launch_##name(const Args& a) {                                                          \
    dispatch_floating(a.dtype, #name, [&](auto tag) { typed::name<Exec, decltype(tag)>(a); }); \
  }
MINIDL_FLOAT_LAUNCHER(unary, UnaryArgs)
MINIDL_FLOAT_LAUNCHER(reduce, ReduceArgs)
MINIDL_FLOAT_LAUNCHER(log_softmax_forward, LogSoftmaxArgs)
MINIDL_FLOAT_LAUNCHER(log_softmax_backward, LogSoftmaxArgs)
MINIDL_FLOAT_LAUNCHER(nll_forward, NllArgs)
MINIDL_FLOAT_LAUNCHER(nll_backward, NllArgs)
MINIDL_FLOAT_LAUNCHER(bn_forward_training, BnArgs)
MINIDL_FLOAT_LAUNCHER(bn_forward_inference, BnArgs)
MINIDL_FLOAT_LAUNCHER(bn_backward, BnArgs)
MINIDL_FLOAT_LAUNCHER(max_pool_forward, PoolArgs)
MINIDL_FLOAT_LAUNCHER(max_pool_backward, PoolArgs)
MINIDL_FLOAT_LAUNCHER(avg_pool_forward, PoolArgs)
MINIDL_FLOAT_LAUNCHER(avg_pool_backward, PoolArgs)
MINIDL_FLOAT_LAUNCHER(adaptive_pool_forward, PoolArgs)
MINIDL_FLOAT_LAUNCHER(adaptive_pool_backward, PoolArgs)
MINIDL_FLOAT_LAUNCHER(project_to_levels, QuantArgs)
MINIDL_FLOAT_LAUNCHER(quantize_clip_forward, QuantArgs)
MINIDL_FLOAT_LAUNCHER(pact_forward, QuantArgs)
MINIDL_FLOAT_LAUNCHER(quantize_clip_backward, QuantBackwardArgs)
MINIDL_FLOAT_LAUNCHER(actnn_quantize, ActnnArgs)
MINIDL_FLOAT_LAUNCHER(actnn_dequantize, ActnnArgs)
#undef MINIDL_FLOAT_LAUNCHER

template <class Exec>
void launch_fill(const FillArgs& a) {
  dispatch_dtype(a.dtype, [&](auto tag) { typed::fill<Exec, decltype(tag)>(a); });
}

template <class Exec>
void launch_pack_mask_bits(const MaskBitsArgs& a) {
  dispatch_dtype(a.dtype, [&](auto tag) { typed::pack_mask_bits<Exec, decltype(tag)>(a); });
}

template <class Exec>
void launch_unpack_mask_bits(const MaskBitsArgs& a) {
  dispatch_dtype(a.dtype, [&](auto tag) { typed::unpack_mask_bits<Exec, decltype(tag)>(a); });
}

template <class Exec>
void launch_copy(const CopyArgs& a) {
  dispatch_dtype(a.dst_dtype, [&](auto d) {
    dispatch_dtype(a.src_dtype, [&](auto s) { typed::copy<Exec, decltype(d), decltype(s)>(a); });
  });
}

template <class Exec>
void launch_binary(const BinaryArgs& a) {
  dispatch_floating(a.dtype, "binary", [&](auto t) {
    dispatch_dtype(a.out_dtype, [&](auto o) { typed::binary<Exec, decltype(t), decltype(o)>(a); });
  });
}

#define MINIDL_CUDA_INSTANTIATE_LAUNCHER(name, Args) template void name<MINIDL_CUDA_EXEC>(const Args&);

}  // namespace minidl::cuda::kern
