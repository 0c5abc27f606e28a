// The conformance harness: a table row names a Backend primitive, a case, the OpKind that supports() is asked
// about, tolerances per dtype, an input generator (host tensors, possibly permuted / sliced / broadcast views)
// and a lambda that runs the primitive on a given backend. run_rows() runs every non-ref backend in
// available_backends() (cuda only when a device exists; cuda-host, the CUDA kernels' bodies on the CPU, in every
// build) against `ref` and reports op, case, dtype, output, max abs / rel error and the worst element. A row is
// one line in the table (test_conformance.cpp).
#pragma once

#include <doctest/doctest.h>

#include <cmath>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "backends/backend.h"
#include "tensor/tensor.h"

namespace conf {

using namespace minidl;

/// Element i passes when |got - want| <= atol * scale + rtol * |want|, scale = max(1, max_i |want_i|):
/// atol is relative to the output's magnitude so one number serves small and large outputs.
struct Tol {
  double atol = 0, rtol = 0;
};

using Inputs = std::vector<Tensor>;
using Rng = std::mt19937_64;

/// Where a row runs: the backend, its device and the dtype of the floating operands.
struct Ctx {
  Backend& be;
  Device dev;
  DType dt;
  /// A fresh contiguous output on the backend's device, pre-filled with a sentinel so unwritten cells show.
  Tensor out(const Shape& s) const { return out(s, dt); }
  Tensor out(const Shape& s, DType d) const {
    Tensor t = empty(s, TensorOptions{}.dtype(d).device(dev));
    be.fill(t, is_floating(d) ? std::nan("") : -7.0);
    return t;
  }
  /// An activation-shaped output the way autograd allocates it for this backend: channels-last when the
  /// backend prefers it (Backend::prefers_channels_last) and s is 4-D, else contiguous.
  Tensor act_out(const Shape& s) const {
    if (s.size() != 4 || !be.prefers_channels_last(dt)) return out(s);
    Tensor t = empty(s, TensorOptions{}.dtype(dt).device(dev), MemoryFormat::ChannelsLast);
    be.fill(t, std::nan(""));
    return t;
  }
  /// act_out for an output shaped like `in` when `in` is channels-last (a layout-following op), else out().
  Tensor out_following(const Tensor& in) const {
    const bool cl = in.memory_format() == MemoryFormat::ChannelsLast;
    return cl ? act_out(in.sizes()) : out(in.sizes());
  }
};

using Gen = std::function<Inputs(DType, Rng&)>;
using Run = std::function<std::vector<Tensor>(Ctx&, const Inputs&)>;

struct Row {
  std::string op;       // the Backend primitive, e.g. "conv2d_backward_weight"
  std::string variant;  // what this case exercises
  OpKind kind;          // asked of supports()
  Tol f32, f64;
  Gen gen;
  Run run;
  std::vector<DType> dtypes = {DType::f32, DType::f64};
  /// false for primitives with a reference implementation in the Backend base class (every backend has them,
  /// whatever its supports() says)
  bool ask_supports = true;
};

inline Backend& ref() { return backend_by_name("ref"); }

// ---- input makers (host) ----

/// Contiguous tensor of dtype dt with values uniform in [lo, hi).
inline Tensor uni(const Shape& s, DType dt, Rng& rng, double lo = -1.0, double hi = 1.0) {
  std::uniform_real_distribution<double> d(lo, hi);
  std::vector<double> v(static_cast<size_t>(shape_numel(s)));
  for (auto& x : v) x = d(rng);
  Tensor t64 = from_vector(v, {static_cast<int64_t>(v.size())}, TensorOptions{}.dtype(DType::f64))
                   .as_strided(s, contiguous_strides(s), 0);
  if (dt == DType::f64) return t64;
  Tensor t = empty(s, TensorOptions{}.dtype(dt));
  ref().copy(t, t64);
  return t;
}

/// Values k * step for integer k in [lo, hi] (exact in any dtype; gives ties for comparisons, halves for round).
inline Tensor grid(const Shape& s, DType dt, Rng& rng, int lo, int hi, double step = 1.0) {
  std::uniform_int_distribution<int> d(lo, hi);
  std::vector<double> v(static_cast<size_t>(shape_numel(s)));
  for (auto& x : v) x = d(rng) * step;
  Tensor t64 = from_vector(v, {static_cast<int64_t>(v.size())}, TensorOptions{}.dtype(DType::f64))
                   .as_strided(s, contiguous_strides(s), 0);
  if (dt == DType::f64) return t64;
  Tensor t = empty(s, TensorOptions{}.dtype(dt));
  ref().copy(t, t64);
  return t;
}

/// Uniform magnitude in [lo, hi) with a random sign (keeps divisors away from zero).
inline Tensor away_from_zero(const Shape& s, DType dt, Rng& rng, double lo = 0.5, double hi = 2.0) {
  Tensor m = uni(s, DType::f64, rng, lo, hi);
  std::bernoulli_distribution coin(0.5);
  double* p = m.data<double>();
  for (int64_t i = 0; i < m.numel(); ++i) p[i] = coin(rng) ? p[i] : -p[i];
  if (dt == DType::f64) return m;
  Tensor t = empty(s, TensorOptions{}.dtype(dt));
  ref().copy(t, m);
  return t;
}

/// ChannelsLast (4-D only): the (N, H, W, C) memory order the cpu backend keeps activations in.
enum class Layout { Contig, Permuted, Sliced, ChannelsLast };
inline const char* layout_name(Layout l) {
  switch (l) {
    case Layout::Contig: return "contiguous";
    case Layout::Permuted: return "permuted";
    case Layout::Sliced: return "sliced";
    case Layout::ChannelsLast: return "channels-last";
  }
  return "?";
}

/// A view with src's values in another memory layout: Permuted stores dims in reverse order, Sliced stores
/// every other element of a padded last dim (offset 1). Contig returns src.
inline Tensor relayout(const Tensor& src, Layout l) {
  const Shape& s = src.sizes();
  const size_t r = s.size();
  if (l == Layout::Contig || r == 0) return src;
  Tensor view;
  if (l == Layout::ChannelsLast) {
    view = empty(s, TensorOptions{}.dtype(src.dtype()), MemoryFormat::ChannelsLast);
  } else if (l == Layout::Permuted) {
    Shape rev(s.rbegin(), s.rend());
    Tensor base = empty(rev, TensorOptions{}.dtype(src.dtype()));
    Shape bst = base.strides();
    Shape st(r);
    for (size_t i = 0; i < r; ++i) st[i] = bst[r - 1 - i];
    view = base.as_strided(s, st, 0);
  } else {
    Shape padded = s;
    padded[r - 1] = 2 * s[r - 1] + 1;
    Tensor base = empty(padded, TensorOptions{}.dtype(src.dtype()));
    Shape st = base.strides();
    st[r - 1] = 2;
    view = base.as_strided(s, st, 1);
  }
  ref().copy(view, src);
  return view;
}

/// A broadcast view: random values of `s` with dims in `bdims` set to 1, expanded back to `s` (stride 0).
inline Tensor expanded(const Shape& s, const std::vector<int64_t>& bdims, DType dt, Rng& rng, double lo = -1.0,
                       double hi = 1.0) {
  Shape small = s;
  for (int64_t d : bdims) small[static_cast<size_t>(d)] = 1;
  Tensor base = uni(small, dt, rng, lo, hi);
  Shape st = base.strides();
  for (int64_t d : bdims) st[static_cast<size_t>(d)] = 0;
  return base.as_strided(s, st, 0);
}

/// i64 (or i32) class indices in [0, C).
inline Tensor targets(int64_t N, int64_t C, Rng& rng, DType dt = DType::i64) {
  std::uniform_int_distribution<int64_t> d(0, C - 1);
  std::vector<int64_t> v(static_cast<size_t>(N));
  for (auto& x : v) x = d(rng);
  if (dt == DType::i64) return from_vector(v, {N}, TensorOptions{}.dtype(DType::i64));
  std::vector<int32_t> w(v.begin(), v.end());
  return from_vector(w, {N}, TensorOptions{}.dtype(DType::i32));
}

// ---- device transfer ----

/// The same view on dev: the whole storage is copied, so strides, offset and stride-0 dims survive.
inline Tensor to_device(const Tensor& t, Device dev, Backend& be) {
  if (!t.defined() || dev.is_cpu()) return t;
  const int64_t n = static_cast<int64_t>(t.storage()->nbytes() / t.element_size());
  Tensor flat = t.as_strided({n}, {1}, 0);
  Tensor d = empty({n}, TensorOptions{}.dtype(t.dtype()).device(dev));
  be.copy(d, flat);
  return d.as_strided(t.sizes(), t.strides(), t.offset());
}

/// A contiguous host copy of t.
inline Tensor to_host(const Tensor& t, Backend& be) {
  Tensor c = t;
  if (!t.is_contiguous()) {
    c = empty(t.sizes(), TensorOptions{}.dtype(t.dtype()).device(t.device()));
    be.copy(c, t);
  }
  if (c.device().is_cpu()) return c;
  Tensor h = empty(c.sizes(), TensorOptions{}.dtype(c.dtype()));
  be.copy(h, c);
  return h;
}

inline std::vector<double> as_doubles(const Tensor& host) {
  Tensor d = empty(host.sizes(), TensorOptions{}.dtype(DType::f64));
  ref().copy(d, host);
  const double* p = d.data<double>();
  return std::vector<double>(p, p + d.numel());
}

/// True when a CUDA device can hold memory (the cuda backend may be built on a machine without a GPU).
inline bool cuda_device_present() {
  try {
    Tensor t = empty({1}, TensorOptions{}.device(Device::cuda(0)));
    backend_by_name("cuda").fill(t, 0.0);
    return true;
  } catch (const std::exception&) {
    return false;
  }
}

inline std::string row_name(const Row& r, const std::string& backend, DType dt) {
  return backend + " vs ref: " + r.op + " [" + r.variant + "] " + dtype_name(dt);
}

/// Compares one output; returns an empty string when it passes, else a description of the worst element.
inline std::string compare(const Tensor& got_h, const Tensor& want_h, Tol tol) {
  std::ostringstream os;
  if (got_h.sizes() != want_h.sizes()) {
    os << "shape " << shape_str(got_h.sizes()) << " != ref " << shape_str(want_h.sizes());
    return os.str();
  }
  if (got_h.dtype() != want_h.dtype()) {
    os << "dtype " << dtype_name(got_h.dtype()) << " != ref " << dtype_name(want_h.dtype());
    return os.str();
  }
  const auto g = as_doubles(got_h), w = as_doubles(want_h);
  double scale = 1.0;
  for (double v : w) {
    if (std::isfinite(v)) scale = std::max(scale, std::abs(v));
  }
  double max_abs = 0, max_rel = 0, worst_excess = 0;
  int64_t worst = -1, bad = 0;
  for (size_t i = 0; i < g.size(); ++i) {
    if (std::isnan(w[i]) || std::isnan(g[i])) {
      if (std::isnan(w[i]) != std::isnan(g[i])) {
        ++bad;
        if (worst < 0 || worst_excess < 1e300) worst_excess = 1e300, worst = static_cast<int64_t>(i);
      }
      continue;
    }
    if (std::isinf(w[i]) || std::isinf(g[i])) {
      if (g[i] != w[i]) ++bad, worst = static_cast<int64_t>(i), worst_excess = 1e300;
      continue;
    }
    const double d = std::abs(g[i] - w[i]);
    max_abs = std::max(max_abs, d);
    max_rel = std::max(max_rel, d / std::max(std::abs(w[i]), 1e-30));
    const double excess = d - (tol.atol * scale + tol.rtol * std::abs(w[i]));
    if (excess > 0) {
      ++bad;
      if (excess > worst_excess || worst < 0) worst_excess = excess, worst = static_cast<int64_t>(i);
    }
  }
  if (bad == 0) return "";
  os.precision(9);
  os << bad << " of " << g.size() << " elements out of tolerance (atol " << tol.atol << " x scale " << scale
     << ", rtol " << tol.rtol << "); max abs err " << max_abs << ", max rel err " << max_rel << "; worst at flat "
     << worst << ": got " << g[static_cast<size_t>(worst)] << ", ref " << w[static_cast<size_t>(worst)] << " (shape "
     << shape_str(got_h.sizes()) << ")";
  return os.str();
}

/// MINIDL_CONFORMANCE_BACKENDS=name[,name...] limits the rows to those backends (scripts/isa-matrix runs only
/// the ISA-sensitive cpu backend per leg); unset or empty: every built backend.
inline bool backend_selected(const std::string& name) {
  const char* env = std::getenv("MINIDL_CONFORMANCE_BACKENDS");
  if (env == nullptr || *env == '\0') return true;
  std::stringstream ss(env);
  for (std::string item; std::getline(ss, item, ',');) {
    if (item == name) return true;
  }
  return false;
}

/// Rows that are the oracle itself on this backend, so comparing them would compare ref with ref: cuda-host's
/// convolution and matmul delegate to ref (on the GPU they are cuDNN's and cuBLAS's, not own kernels).
inline bool delegates_to_ref(const std::string& backend, OpKind kind) {
  return backend == "cuda-host" && (kind == OpKind::Conv2d || kind == OpKind::Matmul);
}

/// The non-ref backends this process can run rows on (cuda only with a device present).
inline std::vector<std::string> runnable_backends() {
  std::vector<std::string> out;
  for (const std::string& name : available_backends()) {
    if (name == "ref" || !backend_selected(name) || (name == "cuda" && !cuda_device_present())) continue;
    out.push_back(name);
  }
  return out;
}

/// Runs the rows accepted by `pick` for every non-ref backend against ref; returns the number of comparisons.
/// The fused activation quantizers' rows (test_quant_clip.cpp), part of the one table in test_conformance.cpp.
std::vector<Row> quant_clip_rows();
/// The ActNN codec and mask-bit rows (test_actnn.cpp).
std::vector<Row> actnn_rows();
/// The optimizer-update primitives' rows (test_optim_update.cpp).
std::vector<Row> optim_update_rows();

inline int run_rows(const std::vector<Row>& rows, const std::function<bool(const Row&)>& pick) {
  int compared = 0;
  Backend& oracle = ref();
  for (const std::string& name : available_backends()) {
    if (name == "ref" || !backend_selected(name)) continue;
    Device dev = kCPU;
    if (name == "cuda") {
      if (!cuda_device_present()) {
        MESSAGE("cuda backend built but no CUDA device present: skipping its conformance rows");
        continue;
      }
      dev = Device::cuda(0);
    }
    Backend& be = backend_by_name(name);
    for (const Row& row : rows) {
      if (!pick(row) || delegates_to_ref(name, row.kind)) continue;
      for (DType dt : row.dtypes) {
        if (row.ask_supports && is_floating(dt) && !oracle.supports(row.kind, dt)) continue;
        const std::string what = row_name(row, name, dt);
        INFO(what);
        // a seed per (row, dtype), so a row's inputs do not depend on which other rows ran
        Rng rng(std::hash<std::string>{}(row.op + "|" + row.variant + "|" + dtype_name(dt)));
        const Inputs in = row.gen(dt, rng);
        Inputs din;
        for (const Tensor& t : in) din.push_back(to_device(t, dev, be));
        Ctx bctx{be, dev, dt};
        if (row.ask_supports && !be.supports(row.kind, dt)) {
          // an unsupported op must be a clear error naming the backend, never a silent fallback
          bool threw_clear = false;
          std::string msg;
          try {
            row.run(bctx, din);
          } catch (const Error& e) {
            msg = e.what();
            threw_clear = msg.find(name) != std::string::npos;
          }
          INFO("error message: " << msg);
          CHECK_MESSAGE(threw_clear, what, ": supports() is false, so the call must throw naming the backend");
          continue;
        }
        Ctx rctx{oracle, kCPU, dt};
        std::vector<Tensor> want, got;
        try {
          want = row.run(rctx, in);
        } catch (const std::exception& e) {
          FAIL_CHECK(what, ": the ref backend threw: ", std::string(e.what()));
          continue;
        }
        try {
          got = row.run(bctx, din);
        } catch (const std::exception& e) {
          FAIL_CHECK(what, ": threw: ", std::string(e.what()));
          continue;
        }
        REQUIRE(got.size() == want.size());
        const Tol tol = dt == DType::f64 ? row.f64 : row.f32;
        for (size_t k = 0; k < got.size(); ++k) {
          const std::string err =
              compare(to_host(got[k], be), want[k].is_contiguous() ? want[k] : to_host(want[k], oracle), tol);
          CHECK_MESSAGE(err.empty(), what, ": output ", k, ": ", err);
          ++compared;
        }
      }
    }
  }
  return compared;
}

/// Runs each picked row twice on every non-ref CPU backend with the same inputs and checks the outputs are
/// bit-identical (same backend, same thread count => same bits); returns the number of outputs checked.
inline int run_twice_identical(const std::vector<Row>& rows, const std::function<bool(const Row&)>& pick) {
  int checked = 0;
  for (const std::string& name : available_backends()) {
    if (name == "ref" || name == "cuda" || !backend_selected(name)) continue;
    Backend& be = backend_by_name(name);
    for (const Row& row : rows) {
      if (!pick(row) || delegates_to_ref(name, row.kind)) continue;
      for (DType dt : row.dtypes) {
        if (row.ask_supports && !be.supports(row.kind, dt)) continue;
        const std::string what = row_name(row, name, dt) + " (run twice)";
        INFO(what);
        Rng rng(std::hash<std::string>{}(row.op + "|" + row.variant + "|" + dtype_name(dt)));
        const Inputs in = row.gen(dt, rng);
        Ctx c{be, kCPU, dt};
        const auto a = row.run(c, in), b = row.run(c, in);
        REQUIRE(a.size() == b.size());
        for (size_t k = 0; k < a.size(); ++k) {
          const Tensor ha = to_host(a[k], be), hb = to_host(b[k], be);
          const bool same = std::memcmp(ha.raw_data(), hb.raw_data(), ha.nbytes()) == 0;
          CHECK_MESSAGE(same, what, ": output ", k, " differs bitwise between two identical calls");
          ++checked;
        }
      }
    }
  }
  return checked;
}

}  // namespace conf
