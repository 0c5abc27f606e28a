// Learning-rate schedulers. Each computes the lr of every parameter group as a closed-form function of the
// step count from the group's initial lr (stored as the group option "initial_lr", as PyTorch does), sets it
// on construction (step 0) and on every step(). A "step" is whatever the caller counts: epochs or iterations.
//   MultiStepLR      lr = base * gamma^(number of milestones <= t)   (any order; one given twice counts twice)
//   CosineAnnealingLR lr = eta_min + (base - eta_min) * (1 + cos(pi * t / T_max)) / 2   (torch's, T_max steps)
//   LinearWarmupLR   lr = base * (start_factor + (1 - start_factor) * t / warmup) for t < warmup, then the
//                    wrapped scheduler's lr at t - warmup (or base when it wraps none)
// State dict: "last_step" (int64 0-dim) and "base_lrs" (float64, one per group). A wrapped scheduler needs no
// state of its own: the wrapper asks it for lr_at(t - warmup).
#pragma once

#include <memory>
#include <vector>

#include "optim/optimizer.h"

namespace minidl::optim {

class LRScheduler {
 public:
  virtual ~LRScheduler() = default;
  LRScheduler(const LRScheduler&) = delete;
  LRScheduler& operator=(const LRScheduler&) = delete;

  /// Advances one step and sets every group's lr.
  void step();
  /// The lr of group g at step t (pure function of the schedule).
  virtual double lr_at(size_t group, int64_t t) const = 0;
  int64_t last_step() const { return last_step_; }
  std::vector<double> get_last_lr() const;
  const std::vector<double>& base_lrs() const { return base_lrs_; }

  virtual TensorMap state_dict() const;
  /// Restores the step count (and base lrs) and applies the lr of that step to the optimizer.
  virtual void load_state_dict(const TensorMap& sd);

 protected:
  explicit LRScheduler(Optimizer& opt);
  /// Sets the lr of every group to lr_at(g, last_step_). Call at the end of a derived constructor.
  void apply();
  Optimizer& opt_;
  std::vector<double> base_lrs_;
  int64_t last_step_ = 0;
};

class MultiStepLR : public LRScheduler {
 public:
  MultiStepLR(Optimizer& opt, std::vector<int64_t> milestones, double gamma = 0.1);
  double lr_at(size_t group, int64_t t) const override;

 private:
  std::vector<int64_t> milestones_;
  double gamma_;
};

class CosineAnnealingLR : public LRScheduler {
 public:
  CosineAnnealingLR(Optimizer& opt, int64_t t_max, double eta_min = 0.0);
  double lr_at(size_t group, int64_t t) const override;

 private:
  int64_t t_max_;
  double eta_min_;
};

class LinearWarmupLR : public LRScheduler {
 public:
  /// `after` (may be null) must be built on the same optimizer; it takes over once warm-up ends.
  LinearWarmupLR(Optimizer& opt, int64_t warmup_steps, std::unique_ptr<LRScheduler> after = nullptr,
                 double start_factor = 0.0);
  double lr_at(size_t group, int64_t t) const override;

 private:
  int64_t warmup_;
  std::unique_ptr<LRScheduler> after_;
  double start_factor_;
};

}  // namespace minidl::optim
