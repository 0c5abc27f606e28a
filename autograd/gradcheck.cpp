// gradcheck: analytic vector-Jacobian products against central finite differences, in double on `ref`.
#include "autograd/gradcheck.h"

#include <algorithm>
#include <cmath>
#include <sstream>

#include "autograd/grad_mode.h"
#include "autograd/node.h"
#include "backends/backend.h"
#include "tensor/generator.h"

namespace minidl::autograd {
namespace {

// Restores the CPU backend choice when gradcheck returns or throws.
struct RefBackendScope {
  std::string previous = cpu_backend_name();
  RefBackendScope() { set_cpu_backend("ref"); }
  ~RefBackendScope() { set_cpu_backend(previous); }
};

double dot(const Tensor& out, const std::vector<double>& r) {
  const std::vector<double> v = out.to_vector<double>();
  double s = 0;
  for (size_t i = 0; i < v.size(); ++i) s += v[i] * r[i];
  return s;
}

}  // namespace

bool gradcheck(const std::function<Tensor(const std::vector<Tensor>&)>& fn, const std::vector<Tensor>& inputs,
               const GradcheckOptions& opts) {
  RefBackendScope ref_backend;
  for (size_t k = 0; k < inputs.size(); ++k) {
    const Tensor& x = inputs[k];
    if (!x.defined() || !x.requires_grad()) continue;
    MINIDL_CHECK(x.dtype() == DType::f64, "gradcheck: input ", k, " must be float64, got ", dtype_name(x.dtype()));
    MINIDL_CHECK(x.is_leaf() && x.is_contiguous() && x.device().is_cpu(),
                 "gradcheck: input ", k, " must be a contiguous CPU leaf");
    x.set_grad({});
  }

  // Analytic: backward of sum(out * r) seeds out's gradient with r.
  Tensor out = fn(inputs);
  MINIDL_CHECK(out.requires_grad(), "gradcheck: the function's output does not require grad");
  std::vector<double> r(static_cast<size_t>(out.numel()));
  philox_uniform(r.data(), out.numel(), opts.seed, 7, 0);
  for (double& v : r) v = 2.0 * v - 1.0;
  Tensor seed = empty(out.sizes(), TensorOptions().dtype(DType::f64));  // also right for a 0-dim output
  std::copy(r.begin(), r.end(), seed.data<double>());
  run_backward({out}, {out.dtype() == DType::f64 ? seed : seed.to(out.dtype())}, false);

  NoGradGuard no_grad;
  for (size_t k = 0; k < inputs.size(); ++k) {
    const Tensor& x = inputs[k];
    if (!x.defined() || !x.requires_grad()) continue;
    const std::vector<double> analytic =
        x.grad().defined() ? x.grad().to_vector<double>() : std::vector<double>(static_cast<size_t>(x.numel()), 0.0);
    double* p = x.data<double>();
    for (int64_t j = 0; j < x.numel(); ++j) {
      const double orig = p[j];
      p[j] = orig + opts.eps;
      const double f_plus = dot(fn(inputs), r);
      p[j] = orig - opts.eps;
      const double f_minus = dot(fn(inputs), r);
      p[j] = orig;
      const double numeric = (f_plus - f_minus) / (2.0 * opts.eps);
      const double a = analytic[static_cast<size_t>(j)];
      if (!(std::abs(a - numeric) <= opts.atol + opts.rtol * std::abs(numeric))) {
        std::ostringstream os;
        os.precision(10);
        os << "gradcheck: mismatch for input " << k << " (shape " << shape_str(x.sizes()) << ") at element " << j
           << ": analytic " << a << ", numeric " << numeric;
        throw Error(os.str());
      }
    }
  }
  return true;
}

}  // namespace minidl::autograd
