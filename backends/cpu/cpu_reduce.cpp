// Reductions (sum, mean, max, min) of the cpu backend. A contiguous input whose reduced dims form one block is
// seen as (A, R, B) and reduced over R: B == 1 reduces contiguous rows, B > 1 accumulates whole rows of B so the
// inner loop is stride-1 and vectorises. Anything else (strided input, interleaved reduced dims) takes a
// generic strided loop, parallel over output elements; (reduced, kept, reduced) blocks such as per-channel
// sums of (N,C,H,W) have their own loop. Sums accumulate in double.
#include "backends/cpu/cpu_reduce.h"

#include <cmath>
#include <limits>

#include "backends/cpu/cpu_backend.h"
#include "backends/cpu/cpu_loops.h"

namespace minidl {
namespace {

template <typename T, ReduceOp Op>
struct Reducer {
  using A = std::conditional_t<Op == ReduceOp::Sum || Op == ReduceOp::Mean, double, T>;
  static A init() {
    if constexpr (Op == ReduceOp::Max)
      return -std::numeric_limits<T>::infinity();
    else if constexpr (Op == ReduceOp::Min)
      return std::numeric_limits<T>::infinity();
    else
      return A(0);
  }
  static A step(A acc, T v) {
    if constexpr (Op == ReduceOp::Max)
      return (v > acc || std::isnan(v)) ? v : acc;
    else if constexpr (Op == ReduceOp::Min)
      return (v < acc || std::isnan(v)) ? v : acc;
    else
      return acc + static_cast<A>(v);
  }
  // combine for vectorisable column accumulation (no NaN check: fine for sums, and max/min use the
  // comparison form which g++ turns into vmax/vmin)
  static A step_fast(A acc, T v) {
    if constexpr (Op == ReduceOp::Max)
      return v > acc ? v : acc;
    else if constexpr (Op == ReduceOp::Min)
      return v < acc ? v : acc;
    else
      return acc + static_cast<A>(v);
  }
  static T finish(A acc, int64_t count) {
    if constexpr (Op == ReduceOp::Mean)
      return static_cast<T>(acc / static_cast<double>(count));
    else
      return static_cast<T>(acc);
  }
};

// Folds the contiguous run p[0..n) into acc. Sums use an OpenMP simd reduction: without it g++ may not
// reassociate a floating sum and the loop stays scalar (one add latency per element).
template <typename T, ReduceOp Op>
typename Reducer<T, Op>::A fold_run(typename Reducer<T, Op>::A acc, const T* p, int64_t n) {
  if constexpr (Op == ReduceOp::Sum || Op == ReduceOp::Mean) {
    double s = 0;
#pragma omp simd reduction(+ : s)
    for (int64_t i = 0; i < n; ++i) s += static_cast<double>(p[i]);
    return acc + s;
  } else {
    for (int64_t i = 0; i < n; ++i) acc = Reducer<T, Op>::step(acc, p[i]);
    return acc;
  }
}

// (A, R, B) view of a contiguous input; returns false when the reduced dims are not one block.
bool as_arb(const Shape& sizes, const std::vector<bool>& reduced, int64_t& A, int64_t& R, int64_t& B) {
  // collapse to runs of (size, reduced) skipping size-1 dims
  std::vector<std::pair<int64_t, bool>> runs;
  for (size_t d = 0; d < sizes.size(); ++d) {
    if (sizes[d] == 1) continue;
    if (!runs.empty() && runs.back().second == reduced[d]) {
      runs.back().first *= sizes[d];
    } else {
      runs.emplace_back(sizes[d], reduced[d]);
    }
  }
  A = R = B = 1;
  size_t i = 0;
  if (i < runs.size() && !runs[i].second) A = runs[i++].first;
  if (i < runs.size() && runs[i].second) R = runs[i++].first;
  if (i < runs.size() && !runs[i].second) B = runs[i++].first;
  return i == runs.size();
}

template <typename T, ReduceOp Op>
void reduce_arb(T* out, const T* in, int64_t A, int64_t R, int64_t B, int64_t count) {
  using Rd = Reducer<T, Op>;
  using Ac = typename Rd::A;
  if (B == 1) {
    if (A >= omp_get_max_threads() || A * R < cpu::kParallelGrain) {
      cpu::parallel_for(A, R, [&](int64_t a0, int64_t a1) {
        for (int64_t a = a0; a < a1; ++a) {
          const T* row = in + a * R;
          out[a] = Rd::finish(fold_run<T, Op>(Rd::init(), row, R), count);
        }
      });
    } else {
      // few long rows: split each row across threads, combine the partials in thread order (deterministic)
      const int nt = cpu::threads_for(R);
      std::vector<Ac> part(static_cast<size_t>(nt));
      for (int64_t a = 0; a < A; ++a) {
        const T* row = in + a * R;
        std::fill(part.begin(), part.end(), Rd::init());
#pragma omp parallel num_threads(nt)
        {
          const int tid = omp_get_thread_num(), nthr = omp_get_num_threads();
          const int64_t chunk = (R + nthr - 1) / nthr;
          const int64_t b = std::min<int64_t>(R, chunk * tid), e = std::min<int64_t>(R, b + chunk);
          part[static_cast<size_t>(tid)] = fold_run<T, Op>(Rd::init(), row + b, std::max<int64_t>(e - b, 0));
        }
        Ac acc = Rd::init();
        for (auto v : part) {
          if constexpr (Op == ReduceOp::Sum || Op == ReduceOp::Mean)
            acc += v;
          else
            acc = Rd::step(acc, static_cast<T>(v));
        }
        out[a] = Rd::finish(acc, count);
      }
    }
    return;
  }
  // B > 1: out[a, :] = reduce_r in[a, r, :], in column blocks of kBlock
  constexpr int64_t kBlock = 512;
  const int64_t nblk = (B + kBlock - 1) / kBlock;
  cpu::parallel_for(A * nblk, R * std::min(B, kBlock), [&](int64_t t0, int64_t t1) {
    Ac acc[kBlock];
    bool has_nan[kBlock];
    for (int64_t t = t0; t < t1; ++t) {
      const int64_t a = t / nblk, b0 = (t % nblk) * kBlock, nb = std::min(kBlock, B - b0);
      for (int64_t j = 0; j < nb; ++j) acc[j] = Rd::init();
      const T* base = in + a * R * B + b0;
      for (int64_t r = 0; r < R; ++r) {
        const T* row = base + r * B;
        for (int64_t j = 0; j < nb; ++j) acc[j] = Rd::step_fast(acc[j], row[j]);
      }
      if constexpr (Op == ReduceOp::Max || Op == ReduceOp::Min) {
        // step_fast drops NaN; redo NaN detection (cheap compared with the reduction)
        for (int64_t j = 0; j < nb; ++j) has_nan[j] = false;
        for (int64_t r = 0; r < R; ++r) {
          const T* row = base + r * B;
          for (int64_t j = 0; j < nb; ++j) has_nan[j] |= std::isnan(row[j]);
        }
        for (int64_t j = 0; j < nb; ++j) {
          if (has_nan[j]) acc[j] = std::numeric_limits<T>::quiet_NaN();
        }
      }
      T* o = out + a * B + b0;
      for (int64_t j = 0; j < nb; ++j) o[j] = Rd::finish(acc[j], count);
    }
  });
}

template <typename T, ReduceOp Op>
void reduce_generic(Tensor& out, const Tensor& in, const std::vector<bool>& reduced, int64_t count) {
  using Rd = Reducer<T, Op>;
  using Ac = typename Rd::A;
  const T* x = static_cast<const T*>(in.raw_data());
  T* o = static_cast<T*>(out.raw_data());
  Shape ks, kst, rs, rst;  // kept and reduced sizes / input strides
  for (size_t d = 0; d < reduced.size(); ++d) {
    if (reduced[d]) {
      rs.push_back(in.sizes()[d]);
      rst.push_back(in.strides()[d]);
    } else {
      ks.push_back(in.sizes()[d]);
      kst.push_back(in.strides()[d]);
    }
  }
  const int64_t nout = out.numel();
  cpu::parallel_for(nout, std::max<int64_t>(count, 1), [&](int64_t o0, int64_t o1) {
    std::vector<int64_t> ridx(rs.size());
    for (int64_t oi = o0; oi < o1; ++oi) {
      int64_t rem = oi, base = 0;
      for (size_t d = ks.size(); d-- > 0;) {
        base += (rem % ks[d]) * kst[d];
        rem /= ks[d];
      }
      Ac acc = Rd::init();
      if (count > 0) {
        std::fill(ridx.begin(), ridx.end(), 0);
        int64_t off = base;
        for (int64_t i = 0; i < count; ++i) {
          acc = Rd::step(acc, x[off]);
          for (size_t d = rs.size(); d-- > 0;) {
            off += rst[d];
            if (++ridx[d] < rs[d]) break;
            off -= ridx[d] * rst[d];
            ridx[d] = 0;
          }
        }
      }
      o[oi] = Rd::finish(acc, count);
    }
  });
}

// (Ro, K, Ri) view of a contiguous input (reduced, kept, reduced: the per-channel sums of (N,C,H,W) over
// N, H, W); returns false for any other pattern.
bool as_rkr(const Shape& sizes, const std::vector<bool>& reduced, int64_t& Ro, int64_t& K, int64_t& Ri) {
  std::vector<std::pair<int64_t, bool>> runs;
  for (size_t d = 0; d < sizes.size(); ++d) {
    if (sizes[d] == 1) continue;
    if (!runs.empty() && runs.back().second == reduced[d]) {
      runs.back().first *= sizes[d];
    } else {
      runs.emplace_back(sizes[d], reduced[d]);
    }
  }
  if (runs.size() != 3 || !runs[0].second || runs[1].second || !runs[2].second) return false;
  Ro = runs[0].first, K = runs[1].first, Ri = runs[2].first;
  return true;
}

// out[k] = reduce over (o, i) of in[o, k, i]: parallel over k, contiguous inner runs of Ri.
template <typename T, ReduceOp Op>
void reduce_rkr(T* out, const T* in, int64_t Ro, int64_t K, int64_t Ri, int64_t count) {
  using Rd = Reducer<T, Op>;
  using Ac = typename Rd::A;
  cpu::parallel_for(K, Ro * Ri, [&](int64_t k0, int64_t k1) {
    for (int64_t k = k0; k < k1; ++k) {
      Ac acc = Rd::init();
      for (int64_t o = 0; o < Ro; ++o) {
        acc = fold_run<T, Op>(acc, in + (o * K + k) * Ri, Ri);
      }
      out[k] = Rd::finish(acc, count);
    }
  });
}

template <typename T, ReduceOp Op>
void reduce_typed(Tensor& out, const Tensor& in, const std::vector<bool>& reduced, int64_t count) {
  int64_t A, R, B;
  if (in.is_contiguous() && as_arb(in.sizes(), reduced, A, R, B)) {
    reduce_arb<T, Op>(static_cast<T*>(out.raw_data()), static_cast<const T*>(in.raw_data()), A, R, B, count);
  } else if (in.is_contiguous() && as_rkr(in.sizes(), reduced, A, R, B)) {
    reduce_rkr<T, Op>(static_cast<T*>(out.raw_data()), static_cast<const T*>(in.raw_data()), A, R, B, count);
  } else {
    reduce_generic<T, Op>(out, in, reduced, count);
  }
}

}  // namespace

void CpuBackend::reduce(ReduceOp op, Tensor& out, const Tensor& in, std::span<const int64_t> dims) {
  const char* name = op_name(op);
  cpu::check_cpu(name, "input", in);
  const int64_t rank = in.dim();
  std::vector<bool> reduced(static_cast<size_t>(rank), false);
  Shape want = in.sizes();
  int64_t count = 1;
  for (int64_t d : dims) {
    MINIDL_CHECK(d >= 0 && d < rank, name, " (backend cpu): reduce dim ", d, " out of range for input shape ",
                 shape_str(in.sizes()));
    MINIDL_CHECK(!reduced[static_cast<size_t>(d)], name, " (backend cpu): reduce dim ", d, " repeated");
    reduced[static_cast<size_t>(d)] = true;
    want[static_cast<size_t>(d)] = 1;
    count *= in.sizes()[static_cast<size_t>(d)];
  }
  if (!is_floating(in.dtype())) cpu::unsupported(name, in.dtype());
  cpu::check_tensor(name, "out", out, in.dtype(), want);
  MINIDL_CHECK(out.is_contiguous(), name, " (backend cpu): out must be contiguous");
  MINIDL_CHECK(count > 0 || op == ReduceOp::Sum || op == ReduceOp::Mean, name,
               " (backend cpu): cannot reduce an empty extent of input shape ", shape_str(in.sizes()));
  if (out.numel() == 0) return;
  dispatch_floating(in.dtype(), name, [&](auto tag) {
    using T = decltype(tag);
    switch (op) {
      case ReduceOp::Sum: return reduce_typed<T, ReduceOp::Sum>(out, in, reduced, count);
      case ReduceOp::Mean: return reduce_typed<T, ReduceOp::Mean>(out, in, reduced, count);
      case ReduceOp::Max: return reduce_typed<T, ReduceOp::Max>(out, in, reduced, count);
      case ReduceOp::Min: return reduce_typed<T, ReduceOp::Min>(out, in, reduced, count);
      case ReduceOp::kCount: break;
    }
    MINIDL_FAIL(name, " (backend cpu): unknown reduce op");
  });
}

namespace cpu {

template <typename T>
T reduce_whole(ReduceOp op, const T* p, int64_t n) {
  T out{};
  if (op == ReduceOp::Sum)
    reduce_arb<T, ReduceOp::Sum>(&out, p, 1, n, 1, n);
  else if (op == ReduceOp::Mean)
    reduce_arb<T, ReduceOp::Mean>(&out, p, 1, n, 1, n);
  else
    MINIDL_FAIL("cpu::reduce_whole: only Sum and Mean");
  return out;
}

template float reduce_whole<float>(ReduceOp, const float*, int64_t);
template double reduce_whole<double>(ReduceOp, const double*, int64_t);

}  // namespace cpu

}  // namespace minidl
