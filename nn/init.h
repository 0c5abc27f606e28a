// Parameter initialisers with PyTorch's formulas (torch.nn.init), drawing from the counter-based default
// generator (tensor/generator.h), so the same seed gives the same weights on every backend. Each writes its
// tensor in place (no autograd recording) and returns it.
#pragma once

#include <string>
#include <utility>

#include "tensor/tensor.h"

namespace minidl::nn::init {

enum class FanMode { FanIn, FanOut };

/// (fan_in, fan_out) as PyTorch: dim 1 / dim 0 times the receptive field (product of dims 2..); needs >= 2 dims.
std::pair<int64_t, int64_t> calculate_fan_in_and_fan_out(const Tensor& t);
/// PyTorch's calculate_gain for "linear", "conv2d", "sigmoid", "tanh", "relu", "leaky_relu" (param = slope).
double calculate_gain(const std::string& nonlinearity, double param = 0.01);

Tensor& uniform_(Tensor& t, double lo, double hi);
Tensor& normal_(Tensor& t, double mean = 0.0, double std = 1.0);
Tensor& constant_(Tensor& t, double value);
Tensor& zeros_(Tensor& t);
Tensor& ones_(Tensor& t);
/// U(-b, b) with b = gain * sqrt(3 / fan), gain = calculate_gain(nonlinearity, a).
Tensor& kaiming_uniform_(Tensor& t, double a = 0.0, FanMode mode = FanMode::FanIn,
                         const std::string& nonlinearity = "leaky_relu");
/// N(0, std^2) with std = gain / sqrt(fan).
Tensor& kaiming_normal_(Tensor& t, double a = 0.0, FanMode mode = FanMode::FanIn,
                        const std::string& nonlinearity = "leaky_relu");
/// U(-b, b) with b = gain * sqrt(6 / (fan_in + fan_out)).
Tensor& xavier_uniform_(Tensor& t, double gain = 1.0);

}  // namespace minidl::nn::init
