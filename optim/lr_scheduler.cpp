// Learning-rate schedulers (see lr_scheduler.h).
#include "optim/lr_scheduler.h"

#include <algorithm>
#include <cmath>
#include <numbers>

namespace minidl::optim {

LRScheduler::LRScheduler(Optimizer& opt) : opt_(opt) {
  for (auto& g : opt_.param_groups()) {
    // The first scheduler on an optimizer records each group's initial lr; later ones (a wrapped one) reuse it.
    if (!g.options.count("initial_lr")) g.options["initial_lr"] = g.lr();
    base_lrs_.push_back(g.get("initial_lr"));
  }
}

void LRScheduler::apply() {
  auto& groups = opt_.param_groups();
  MINIDL_CHECK(groups.size() == base_lrs_.size(), "optim::LRScheduler: the optimizer has ", groups.size(),
               " parameter groups, the scheduler was built for ", base_lrs_.size());
  for (size_t g = 0; g < groups.size(); ++g) groups[g].set_lr(lr_at(g, last_step_));
}

void LRScheduler::step() {
  ++last_step_;
  apply();
}

std::vector<double> LRScheduler::get_last_lr() const {
  std::vector<double> out;
  for (const auto& g : opt_.param_groups()) out.push_back(g.lr());
  return out;
}

TensorMap LRScheduler::state_dict() const {
  TensorMap sd;
  sd["last_step"] = scalar_tensor(static_cast<double>(last_step_), TensorOptions{}.dtype(DType::i64));
  sd["base_lrs"] = from_vector(base_lrs_, {static_cast<int64_t>(base_lrs_.size())}, TensorOptions{}.dtype(DType::f64));
  return sd;
}

void LRScheduler::load_state_dict(const TensorMap& sd) {
  auto ls = sd.find("last_step");
  auto bl = sd.find("base_lrs");
  MINIDL_CHECK(ls != sd.end() && bl != sd.end(), "optim::LRScheduler::load_state_dict: missing 'last_step' or ",
               "'base_lrs'");
  MINIDL_CHECK(bl->second.dim() == 1 && bl->second.size(0) == static_cast<int64_t>(base_lrs_.size()),
               "optim::LRScheduler::load_state_dict: 'base_lrs' has shape ", shape_str(bl->second.sizes()),
               ", expected [", base_lrs_.size(), "]");
  MINIDL_CHECK(ls->second.numel() == 1, "optim::LRScheduler::load_state_dict: 'last_step' must hold one value");
  const int64_t step = ls->second.item<int64_t>();
  MINIDL_CHECK(step >= 0, "optim::LRScheduler::load_state_dict: negative last_step ", step);
  last_step_ = step;
  base_lrs_ = bl->second.to_vector<double>();
  apply();
}

MultiStepLR::MultiStepLR(Optimizer& opt, std::vector<int64_t> milestones, double gamma)
    : LRScheduler(opt), milestones_(std::move(milestones)), gamma_(gamma) {
  // PyTorch takes the milestones as a multiset (a Counter): any order, and a milestone given twice applies gamma
  // twice. Sorted, upper_bound counts the same.
  std::sort(milestones_.begin(), milestones_.end());
  apply();
}

double MultiStepLR::lr_at(size_t group, int64_t t) const {
  const auto passed = std::upper_bound(milestones_.begin(), milestones_.end(), t) - milestones_.begin();
  return base_lrs_.at(group) * std::pow(gamma_, static_cast<double>(passed));
}

CosineAnnealingLR::CosineAnnealingLR(Optimizer& opt, int64_t t_max, double eta_min)
    : LRScheduler(opt), t_max_(t_max), eta_min_(eta_min) {
  MINIDL_CHECK(t_max > 0, "optim::CosineAnnealingLR: T_max must be positive, got ", t_max);
  apply();
}

double CosineAnnealingLR::lr_at(size_t group, int64_t t) const {
  const double base = base_lrs_.at(group);
  return eta_min_ + (base - eta_min_) *
                        (1.0 + std::cos(std::numbers::pi * static_cast<double>(t) / static_cast<double>(t_max_))) /
                        2.0;
}

LinearWarmupLR::LinearWarmupLR(Optimizer& opt, int64_t warmup_steps, std::unique_ptr<LRScheduler> after,
                               double start_factor)
    : LRScheduler(opt), warmup_(warmup_steps), after_(std::move(after)), start_factor_(start_factor) {
  MINIDL_CHECK(warmup_steps >= 0, "optim::LinearWarmupLR: warm-up steps must be non-negative, got ", warmup_steps);
  MINIDL_CHECK(start_factor >= 0.0 && start_factor <= 1.0, "optim::LinearWarmupLR: start_factor must be in [0, 1], got ",
               start_factor);
  apply();
}

double LinearWarmupLR::lr_at(size_t group, int64_t t) const {
  if (t < warmup_) {
    const double frac = static_cast<double>(t) / static_cast<double>(warmup_);
    return base_lrs_.at(group) * (start_factor_ + (1.0 - start_factor_) * frac);
  }
  return after_ ? after_->lr_at(group, t - warmup_) : base_lrs_.at(group);
}

}  // namespace minidl::optim
