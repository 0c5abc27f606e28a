// ActNN adaptive bits as a BitPolicy (see adaptive_bits.h).
#include "quant/actnn/adaptive_bits.h"

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <limits>

#include "autograd/function.h"
#include "autograd/grad_hooks.h"
#include "backends/actnn_codec.h"
#include "core/error.h"
#include "quant/actnn/sample_passes.h"

namespace minidl::quant::actnn {
namespace {

bool is_conv_or_linear(const std::string& op) { return op == "conv2d" || op == "linear"; }

// Lanes of the independent running minima / maxima below (one running value would be a chain of
// dependent instructions, a few cycles per element). GCC / clang vector types: SSE on the baseline target.
constexpr int kLanes = 16;
typedef float Float4 __attribute__((vector_size(16)));

// min and max of x[0, n) (n > 0) as std::min / std::max would give them element by element: both are exact and
// ignore a NaN (std::min(a, NaN) is a; v < a is false for a NaN v), so the lane order does not change the values
// (bar the sign of a zero, which the squared range does not see).
void group_min_max(const float* x, int64_t n, float& mn, float& mx) {
  constexpr float inf = std::numeric_limits<float>::infinity();
  Float4 a[kLanes / 4], b[kLanes / 4];
  for (int l = 0; l < kLanes / 4; ++l) {
    a[l] = Float4{inf, inf, inf, inf};
    b[l] = -a[l];
  }
  int64_t j = 0;
  for (; j + kLanes <= n; j += kLanes) {
    for (int l = 0; l < kLanes / 4; ++l) {
      Float4 v;
      std::memcpy(&v, x + j + 4 * l, sizeof v);
      a[l] = v < a[l] ? v : a[l];
      b[l] = b[l] < v ? v : b[l];
    }
  }
  mn = inf;
  mx = -inf;
  for (int l = 0; l < kLanes / 4; ++l) {
    for (int k = 0; k < 4; ++k) {
      mn = std::min(mn, a[l][k]);
      mx = std::max(mx, b[l][k]);
    }
  }
  for (; j < n; ++j) {
    mn = std::min(mn, x[j]);
    mx = std::max(mx, x[j]);
  }
}

// The ranges and gradient norms are read on the host; a GPU run needs fixed bits.
constexpr const char* kDeviceHelp =
    "actnn: L3's adaptive bits (ibits above cabits, or perlayer) run on the cpu backend only; on a GPU use fixed "
    "bits (--ibits 2 --perlayer=false at L3, or L1 / L2)";

// x's elements, sample-major (contiguous or channels-last), or null when x is not a dense f32 tensor of that kind.
const float* dense_samples(const Tensor& x) {
  if (x.dtype() != DType::f32 || x.dim() < 1 || x.numel() == 0) return nullptr;
  if (!x.is_contiguous() && !x.is_channels_last()) return nullptr;
  return x.data<float>();
}

struct GradProbeFn : autograd::Function<GradProbeFn> {
  static constexpr const char* kName = "actnn_grad_probe";
  static Tensor forward(autograd::Context& ctx, const Tensor& y, const std::shared_ptr<AdaptiveBits>& policy) {
    ctx.data["policy"] = policy;
    ctx.data["module"] = autograd::ModuleNameGuard::current();
    return y.detach();  // the same storage: forward is untouched
  }
  static std::vector<Tensor> backward(autograd::Context& ctx, std::vector<Tensor> g) {
    ctx.get<std::shared_ptr<AdaptiveBits>>("policy")->record_output_grad(ctx.get<std::string>("module"), g[0]);
    return {g[0]};
  }
};

}  // namespace

std::shared_ptr<AdaptiveBits> make_adaptive_bits(const Config& config, int64_t dataset_size) {
  if (!config.active() || config.level != Level::L3 || (config.ibits <= config.bits && !config.per_layer))
    return nullptr;
  AdaptiveOptions o;
  o.bits = config.bits;
  o.ibits = config.ibits;
  o.per_group = config.per_group;
  o.per_layer = config.per_layer;
  o.use_gradient = config.use_gradient;
  o.count_bn = config.count_bn_bits;
  o.dataset_size = dataset_size;
  o.group_size = config.group_size;
  return std::make_shared<AdaptiveBits>(o);
}

AdaptiveBits::AdaptiveBits(AdaptiveOptions o) : opts_(o) {
  MINIDL_CHECK(o.bits >= 1 && o.bits <= 8, "actnn: --cabits ", o.bits, " is not in 1..8");
  MINIDL_CHECK(o.ibits >= 1 && o.ibits <= 8, "actnn: --ibits ", o.ibits, " is not in 1..8");
  MINIDL_CHECK(o.group_size > 0, "actnn: --groupsize ", o.group_size, " must be positive");
  MINIDL_CHECK(o.dataset_size >= 0, "actnn: dataset size ", o.dataset_size, " is negative");
}

void AdaptiveBits::set_dataset_size(int64_t n) {
  std::lock_guard<std::mutex> lock(mu_);
  MINIDL_CHECK(n > 0 && layers_.empty(), "actnn: set_dataset_size(", n,
               ") needs a positive size before the first save");
  opts_.dataset_size = n;
}

void AdaptiveBits::declare_conv(const std::string& module, int64_t kernel_area, int64_t conv_groups) {
  MINIDL_CHECK(kernel_area > 0 && conv_groups > 0, "actnn: layer '", module, "': kernel area ", kernel_area,
               " and groups ", conv_groups, " must be positive");
  std::lock_guard<std::mutex> lock(mu_);
  Layer& l = layer_locked(module, true);
  l.kernel_area = kernel_area;
  l.conv_groups = conv_groups;
}

AdaptiveBits::Layer& AdaptiveBits::layer_locked(const std::string& module, bool conv) {
  auto it = layers_.find(module);
  if (it == layers_.end()) {
    MINIDL_CHECK(!opts_.use_gradient || opts_.dataset_size > 0,
                 "actnn: --usegradient needs the training set's size (per-sample gradient scales)");
    Layer l;
    l.conv = conv;
    l.scale = GradientScale(opts_.use_gradient && conv, opts_.dataset_size);
    l.ibits = opts_.ibits;
    l.order = next_order_++;
    it = layers_.emplace(module, std::move(l)).first;
  }
  return it->second;
}

void AdaptiveBits::set_batch(std::vector<int64_t> indices) {
  std::lock_guard<std::mutex> lock(mu_);
  batch_ = std::move(indices);
}

void AdaptiveBits::set_update_scale(bool on) {
  std::lock_guard<std::mutex> lock(mu_);
  update_scale_ = on;
}

void AdaptiveBits::set_auto_allocate(bool on) {
  std::lock_guard<std::mutex> lock(mu_);
  auto_allocate_ = on;
}

std::vector<float> AdaptiveBits::ranges_locked(const Tensor& x) const {
  const float* p = dense_samples(x);
  const int64_t n = x.size(0), f = x.numel() / n, g = opts_.group_size;
  const int64_t gps = (f + g - 1) / g;
  std::vector<float> mn(static_cast<size_t>(n * gps)), mx(mn.size());
  // The codec's groups: runs of the logical (NCHW) order. A channels-last sample is read as it lies, all channels
  // at once, in segments of pixels inside which no channel crosses a group boundary: the segments end at every
  // pixel where some channel's plane is cut by a group boundary (at a multiple of g in the logical order). Groups
  // inside one plane (32 x 32 pixels in groups of 256) give segments of g pixels, groups of whole planes (8 x 8
  // pixels in groups of 256) one segment, and planes that groups cut anywhere (28 x 28 or 7 x 7 pixels in groups of
  // 256) as many segments as distinct cuts. Min / max ignore a NaN and the squared range does not see the sign of
  // a zero, so combining the segments' ranges gives the contiguous layout's values.
  const bool channels_last = x.memory_format() == MemoryFormat::ChannelsLast;
  const int64_t ch = x.dim() >= 2 ? x.size(1) : 1, pix = f / ch;
  const std::vector<int64_t> cuts = channels_last ? actnn_plane_cuts(ch, pix, g) : std::vector<int64_t>{};
  const int64_t pix_groups = pix / g, pix_rest = pix % g;
  const ChannelMinMax channel_min_max = channel_min_max_kernel();  // chosen once, outside the threads
  // One pass over the activation, samples in parallel (the codec reads it once more to quantize).
#pragma omp parallel for schedule(static)
  for (int64_t s = 0; s < n; ++s) {
    const float* ps = p + s * f;
    float* smn = mn.data() + s * gps;
    float* smx = mx.data() + s * gps;
    if (channels_last) {
      constexpr float inf = std::numeric_limits<float>::infinity();
      std::fill(smn, smn + gps, inf);
      std::fill(smx, smx + gps, -inf);
      std::vector<float> a(static_cast<size_t>(ch)), b(a.size());
      for (size_t i = 0; i + 1 < cuts.size(); ++i) {
        const int64_t p0 = cuts[i], p1 = cuts[i + 1];
        channel_min_max(ps + p0 * ch, p1 - p0, ch, a.data(), b.data());
        // channel c's segment is in group (c * pix + p0) / g, stepped without a division per channel
        int64_t k = p0 / g, r = p0 % g;
        for (int64_t c = 0; c < ch; ++c) {
          smn[k] = std::min(smn[k], a[static_cast<size_t>(c)]);
          smx[k] = std::max(smx[k], b[static_cast<size_t>(c)]);
          k += pix_groups;
          r += pix_rest;
          if (r >= g) {
            r -= g;
            ++k;
          }
        }
      }
      if (f % g != 0) {  // zero padding takes part in the last group's range (spec pitfall 3)
        smn[gps - 1] = std::min(smn[gps - 1], 0.0f);
        smx[gps - 1] = std::max(smx[gps - 1], 0.0f);
      }
      continue;
    }
    for (int64_t k = 0; k < gps; ++k) {
      const int64_t lo = k * g, hi = std::min(f, lo + g);
      float a = 0, b = 0;
      group_min_max(ps + lo, hi - lo, a, b);
      if (hi - lo < g) {  // zero padding takes part in the last group's range (spec pitfall 3)
        a = std::min(a, 0.0f);
        b = std::max(b, 0.0f);
      }
      mn[static_cast<size_t>(s * gps + k)] = a;
      mx[static_cast<size_t>(s * gps + k)] = b;
    }
  }
  if (!opts_.per_group) {  // one range for the whole padded tensor
    const float a = *std::min_element(mn.begin(), mn.end()), b = *std::max_element(mx.begin(), mx.end());
    std::fill(mn.begin(), mn.end(), a);
    std::fill(mx.begin(), mx.end(), b);
  }
  const double pixels = x.dim() >= 2 ? static_cast<double>(f) / static_cast<double>(x.size(1)) : 1.0;
  return range_sqr(mn.data(), mx.data(), n, gps, g, pixels);
}

std::vector<uint8_t> AdaptiveBits::sample_bits(const autograd::SaveInfo& info, const Tensor& x, int layer_bits) {
  MINIDL_CHECK(x.device().is_cpu(), kDeviceHelp, " ('", info.module, "' saved a tensor on ", x.device().str(), ")");
  const int64_t n = x.dim() == 0 ? 1 : x.size(0);
  if (dense_samples(x) == nullptr)
    return std::vector<uint8_t>(static_cast<size_t>(n), static_cast<uint8_t>(layer_bits));
  const bool conv = is_conv_or_linear(info.op);
  std::lock_guard<std::mutex> lock(mu_);
  Layer& l = layer_locked(info.module, conv);
  if (l.bits == 0) l.bits = layer_bits;
  if (conv) {
    last_conv_ = info.module;
  } else {
    l.prev = last_conv_;
  }
  const std::vector<float> r2 = ranges_locked(x);
  if (conv) {
    std::vector<float> s;
    if (l.scale.per_sample()) {
      MINIDL_CHECK(static_cast<int64_t>(batch_.size()) == n, "actnn: --usegradient: layer '", info.module, "' got ", n,
                   " samples but set_batch gave ", batch_.size(), " indices (the loader's Batch::indices)");
      s = l.scale.get(batch_);
    } else {
      s = l.scale.get({});
    }
    l.C = conv_sensitivity(r2, s, l.kernel_area, l.conv_groups);
  } else {
    l.C = bn_sensitivity(r2);
  }
  l.dim = x.numel() / n;
  const std::vector<int> b = per_sample_bits(l.C, l.bits, l.ibits);
  l.last_bits.assign(b.begin(), b.end());
  return l.last_bits;
}

void AdaptiveBits::record_output_grad(const std::string& module, const Tensor& grad) {
  MINIDL_CHECK(grad.device().is_cpu(), kDeviceHelp, " ('", module, "' has a gradient on ", grad.device().str(), ")");
  std::lock_guard<std::mutex> lock(mu_);
  if (update_scale_) {
    Tensor g = dense_samples(grad) ? grad : grad.contiguous().to(DType::f32);
    const float* p = g.data<float>();
    const int64_t n = g.size(0), f = g.numel() / n;
    std::vector<float> sq(static_cast<size_t>(n));
    const SquaredNorm squared_norm = squared_norm_kernel();
#pragma omp parallel for schedule(static)
    for (int64_t s = 0; s < n; ++s) {
      sq[static_cast<size_t>(s)] = static_cast<float>(squared_norm(p + s * f, f));
    }
    Layer& l = layer_locked(module, true);
    if (l.scale.per_sample()) {
      MINIDL_CHECK(static_cast<int64_t>(batch_.size()) == n, "actnn: --usegradient: layer '", module, "' got ", n,
                   " output gradients but set_batch gave ", batch_.size(), " indices");
      l.scale.update(sq, batch_);
    } else {
      l.scale.update(sq, {});
    }
  }
  if (opts_.per_layer && auto_allocate_ && queued_.expired()) {
    auto token = std::make_shared<const bool>(true);
    queued_ = token;
    std::weak_ptr<AdaptiveBits> self = weak_from_this();
    autograd::queue_backward_callback([self, token] {
      if (auto p = self.lock()) p->after_backward();
    });
  }
}

void AdaptiveBits::after_backward() { allocate_per_layer(); }

bool AdaptiveBits::allocate_per_layer() {
  std::lock_guard<std::mutex> lock(mu_);
  std::vector<std::pair<int64_t, std::string>> convs;
  for (const auto& [name, l] : layers_) {
    if (!l.conv) continue;
    if (l.C.empty()) return false;  // a layer that has not run forward yet
    convs.emplace_back(l.order, name);
  }
  if (convs.empty()) return false;
  std::sort(convs.begin(), convs.end());
  std::vector<LayerSensitivity> in;
  for (const auto& [o, name] : convs) in.push_back({layers_.at(name).C, layers_.at(name).dim});
  if (opts_.count_bn) {  // a conv / linear's bits also decide the codes of the batch norms that copy them
    for (const auto& [name, l] : layers_) {
      if (l.conv) continue;
      for (size_t i = 0; i < convs.size(); ++i) {
        if (convs[i].second == l.prev) in[i].dim += l.dim;
      }
    }
  }
  const PerLayerBits r = actnn::allocate_per_layer(in, opts_.bits, opts_.ibits);
  for (size_t i = 0; i < convs.size(); ++i) {
    Layer& l = layers_.at(convs[i].second);
    l.bits = r.bits[i];
    l.ibits = r.initial_bits[i];
  }
  // Batch norms take the budget (and ibits) of the conv / linear before them; 8 bits when there is none.
  for (auto& [name, l] : layers_) {
    if (l.conv) continue;
    auto it = layers_.find(l.prev);
    l.bits = it != layers_.end() ? it->second.bits : 8;
    l.ibits = it != layers_.end() ? std::max(it->second.ibits, opts_.ibits) : opts_.ibits;
  }
  ++allocations_;
  return true;
}

std::string AdaptiveBits::bit_map() const {
  std::lock_guard<std::mutex> lock(mu_);
  std::vector<std::pair<int64_t, std::string>> order;
  for (const auto& [name, l] : layers_) order.emplace_back(l.order, name);
  std::sort(order.begin(), order.end());
  std::string out;
  char buf[256];
  for (const auto& [o, name] : order) {
    const Layer& l = layers_.at(name);
    int lo = 0, hi = 0;
    double mean = 0;
    if (!l.last_bits.empty()) {
      lo = *std::min_element(l.last_bits.begin(), l.last_bits.end());
      hi = *std::max_element(l.last_bits.begin(), l.last_bits.end());
      for (uint8_t b : l.last_bits) mean += b;
      mean /= static_cast<double>(l.last_bits.size());
    }
    std::snprintf(buf, sizeof buf, "%-24s %-4s budget %.3f ibits %d  samples min %d mean %.3f max %d\n", name.c_str(),
                  l.conv ? "conv" : "bn", l.bits, l.ibits, lo, mean, hi);
    out += buf;
  }
  return out;
}

int64_t AdaptiveBits::allocations() const {
  std::lock_guard<std::mutex> lock(mu_);
  return allocations_;
}

std::vector<uint8_t> AdaptiveBits::last_sample_bits(const std::string& module) const {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = layers_.find(module);
  MINIDL_CHECK(it != layers_.end(), "actnn: no compressed layer named '", module, "'");
  return it->second.last_bits;
}

double AdaptiveBits::layer_budget(const std::string& module) const {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = layers_.find(module);
  MINIDL_CHECK(it != layers_.end(), "actnn: no compressed layer named '", module, "'");
  return it->second.bits;
}

Tensor grad_probe(const Tensor& y, const std::shared_ptr<AdaptiveBits>& policy) {
  MINIDL_CHECK(policy != nullptr, "actnn::grad_probe: no policy");
  return GradProbeFn::apply(y, policy);
}

}  // namespace minidl::quant::actnn
