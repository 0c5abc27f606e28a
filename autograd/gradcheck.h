// Finite-difference gradient check, in double on the reference backend.
#pragma once

#include <functional>
#include <vector>

#include "tensor/tensor.h"

namespace minidl::autograd {

struct GradcheckOptions {
  double eps = 1e-6;
  double atol = 1e-6;
  double rtol = 1e-4;
  uint64_t seed = 1234;  // for the random projection of non-scalar outputs
};

/// Checks d(sum(fn(inputs) * r))/d(input) for a fixed random r against central differences, for every input
/// that requires grad. Inputs must be float64. Runs on the ref backend. Throws minidl::Error describing the
/// first mismatch (input, element, analytic, numeric); returns true otherwise.
bool gradcheck(const std::function<Tensor(const std::vector<Tensor>&)>& fn, const std::vector<Tensor>& inputs,
               const GradcheckOptions& opts = {});

}  // namespace minidl::autograd
