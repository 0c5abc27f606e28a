// ActNN's adaptive bits (spec/quant.md 2.4-2.6) as the packer's BitPolicy: per-sample bits inside each
// compressed layer from its sensitivities, and (--perlayer) a reallocation of the layers' budgets after every
// backward. The arithmetic is in bit_allocation.h / sensitivity.h; this class keeps the per-layer state:
//   - each conv / linear layer's gradient scale S, fed by a probe on its output (probed_layers.h) with the
//     squared norm of each sample's output gradient (one running scalar, or per dataset sample with
//     --usegradient, which needs set_batch(indices) before each forward: the loader's Batch::indices);
//   - the sensitivities C of its last forward and its elements per sample;
//   - its budget bits_l (the level's fixed bits until a per-layer allocation sets it) and ibits.
// Batch-norm layers use C_n = R^2_n and, after a per-layer allocation, the budget of the conv / linear that ran
// just before them in forward.
//
// The per-layer budget (count_bn, off by default as in ActNN): ActNN's greedy weighs each conv / linear by the
// elements of its own input only, yet every batch norm then stores its input at that layer's bits, so the stored
// codes exceed the budget wherever the two differ in size (ResNet-20's stem: 3 channels in, 16 out; at 4 bits its
// batch norm stores 2 bits per element more than the budget saw). With count_bn each conv / linear weighs its
// input plus the inputs of the batch norms that copy its bits, so the budget bounds every code the allocation
// decides: L3 then stores 2 bits per element on average, at the price of fewer bits in the layers the sensitivity
// favours (docs/actnn.md has both measured).
//
// First iteration: S = 0, so every C is 0; the allocations then give uniform bits (bit_allocation.h), not the
// reference's [5, 1, 1, 1] pattern.
#pragma once

#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "quant/actnn/bit_allocation.h"
#include "quant/actnn/bit_policy.h"
#include "quant/actnn/config.h"
#include "quant/actnn/sensitivity.h"

namespace minidl::quant::actnn {

struct AdaptiveOptions {
  double bits = 2;            // --cabits: average bits per element (each layer's starting budget)
  int ibits = 8;              // --ibits: start and maximum of the per-sample greedy (1..8)
  bool per_group = true;      // --pergroup: per-group ranges in the sensitivity, else one range per tensor
  bool per_layer = false;     // --perlayer: reallocate budgets across layers after every backward
  bool use_gradient = false;  // --usegradient: S per dataset sample (needs dataset_size and set_batch)
  bool count_bn = false;      // --count-bn-bits: the per-layer budget counts the batch norms' codes (file comment)
  int64_t dataset_size = 0;
  int64_t group_size = 256;  // --groupsize, as the codec's
};

class AdaptiveBits final : public BitPolicy, public std::enable_shared_from_this<AdaptiveBits> {
 public:
  explicit AdaptiveBits(AdaptiveOptions o);

  /// Declares a conv / linear layer by its module path (kernel area and conv groups for the sensitivity).
  /// Undeclared conv / linear modules are declared on their first save with K = 1.
  void declare_conv(const std::string& module, int64_t kernel_area, int64_t conv_groups);

  /// The training set's size, when it was not known at construction (--usegradient; before the first forward).
  void set_dataset_size(int64_t n);
  /// The dataset indices of the batch about to run forward and backward (--usegradient).
  void set_batch(std::vector<int64_t> indices);
  /// Whether backward passes update the gradient scales (true by default; --measure-var freezes them).
  void set_update_scale(bool on);
  /// Whether backward passes trigger the per-layer allocation (when per_layer; --measure-var forces it itself).
  void set_auto_allocate(bool on);

  /// Called by the output-gradient probe of `module` during backward.
  void record_output_grad(const std::string& module, const Tensor& grad);
  /// Runs the per-layer allocation now (needs a C for every conv / linear layer; a no-op otherwise). Returns
  /// whether it ran.
  bool allocate_per_layer();
  /// Called at the end of a backward pass in which a probe ran.
  void after_backward();

  // BitPolicy
  std::vector<uint8_t> sample_bits(const autograd::SaveInfo& info, const Tensor& x, int layer_bits) override;

  /// Each layer's budget, ibits and last per-sample bits (min / mean / max): one line per layer, forward order.
  std::string bit_map() const;
  /// The per-sample bits of a layer's last save (empty before it); throws for an unknown layer.
  std::vector<uint8_t> last_sample_bits(const std::string& module) const;
  /// Number of per-layer allocations so far.
  int64_t allocations() const;
  /// The budget of a layer (its fixed bits before any allocation); throws for an unknown layer.
  double layer_budget(const std::string& module) const;
  const AdaptiveOptions& options() const { return opts_; }

 private:
  struct Layer {
    bool conv = true;  // conv / linear (else batch norm)
    int64_t kernel_area = 1, conv_groups = 1;
    GradientScale scale;
    std::vector<float> C;
    int64_t dim = 0;
    double bits = 0;  // 0 until the first save (then the save's fixed bits)
    int ibits = 8;
    std::string prev;  // batch norm: the conv / linear saved just before it in forward
    std::vector<uint8_t> last_bits;
    int64_t order = 0;
  };
  Layer& layer_locked(const std::string& module, bool conv);
  std::vector<float> ranges_locked(const Tensor& x) const;

  AdaptiveOptions opts_;
  mutable std::mutex mu_;
  std::map<std::string, Layer> layers_;
  std::vector<int64_t> batch_;
  std::string last_conv_;
  bool update_scale_ = true, auto_allocate_ = true;
  // Alive while this pass's after_backward callback is queued: the callback owns the token, so a pass that fails
  // (and drops its callbacks) frees it too, and the next pass queues a new one.
  std::weak_ptr<const bool> queued_;
  int64_t allocations_ = 0, next_order_ = 0;
};

/// The adaptive-bits policy an ActNN config asks for, or null when its bits are fixed. Adaptivity is L3's (ActNN's
/// L1 / L2 set adaptive_conv_scheme = adaptive_bn_scheme = False), and there it runs when ibits > bits (per-sample
/// bits) or per_layer: L3's defaults (ibits 8, per_layer) are ActNN's. The model's conv / linear layers need
/// output-gradient probes (probed_layers.h) for it. `dataset_size`: the training set's size (use_gradient).
std::shared_ptr<AdaptiveBits> make_adaptive_bits(const Config& config, int64_t dataset_size = 0);

/// Identity in forward (the same values, bit for bit); in backward reports the gradient of `y` to `policy`
/// under the module name that is current in forward, then passes it through.
Tensor grad_probe(const Tensor& y, const std::shared_ptr<AdaptiveBits>& policy);

}  // namespace minidl::quant::actnn
