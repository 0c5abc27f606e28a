// Shared by minidl_run_op_program and minidl_run_optim_program: tensors from and to JSON value lists, and the
// programs' main (read PROGRAM.json, run, write RESULT.json or {"error": message}).
#pragma once

#include <minidl.h>

#include <cstdio>
#include <fstream>
#include <functional>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace minidl::program_io {

using json = nlohmann::json;

/// The values of t, row-major, as float64.
inline json values_of(const Tensor& t) {
  const Tensor c = t.detach().to(DType::f64).contiguous();
  const double* p = c.data<double>();
  return json(std::vector<double>(p, p + c.numel()));
}

/// A tensor of `shape` holding `values`; an empty shape is a 0-dim tensor (from_vector reads it as 1-D, as
/// torch.tensor([...])).
inline Tensor make(const std::vector<double>& values, const Shape& shape, DType dt) {
  if (shape.empty() && values.size() == 1) return scalar_tensor(values[0], TensorOptions().dtype(dt));
  return from_vector(values, shape, TensorOptions().dtype(dt));
}

/// The program's "dtype": float32 or float64.
inline DType dtype_of(const json& program) {
  const std::string name = program.at("dtype").get<std::string>();
  MINIDL_CHECK(name == "float32" || name == "float64", "unknown dtype ", name);
  return name == "float32" ? DType::f32 : DType::f64;
}

/// main() of a program runner: argv[1] is the program, argv[2] the result. `run` returns the result; what it throws
/// becomes {"error": message}.
inline int run_main(int argc, char** argv, const std::function<json(const json&)>& run) {
  if (argc != 3) {
    std::fprintf(stderr, "usage: %s PROGRAM.json RESULT.json\n", argv[0]);
    return 2;
  }
  json result;
  try {
    std::ifstream in(argv[1]);
    MINIDL_CHECK(in.good(), "cannot read ", argv[1]);
    result = run(json::parse(in));
  } catch (const std::exception& e) {
    result = {{"error", e.what()}};
  }
  std::ofstream out(argv[2]);
  out << result.dump();
  return out.good() ? 0 : 1;
}

}  // namespace minidl::program_io
