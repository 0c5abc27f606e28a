// Subset: a view of some samples of another dataset, by index (a validation split, or the first N samples for
// a quick run). Samples keep the base dataset's random-transform keys, i.e. sample j of the subset is
// base.get_for_epoch(indices[j], epoch).
#pragma once

#include <cstdint>
#include <vector>

#include "data/dataset.h"

namespace minidl::data {

class Subset : public Dataset {
 public:
  /// Every index must be in [0, base->size()).
  Subset(DatasetPtr base, std::vector<int64_t> indices);
  /// The first n samples of base (all of them when n >= size).
  static std::shared_ptr<Subset> first(DatasetPtr base, int64_t n);

  int64_t size() const override { return static_cast<int64_t>(indices_.size()); }
  Example get(int64_t index) const override { return get_for_epoch(index, 0); }
  Example get_for_epoch(int64_t index, int64_t epoch) const override;
  int64_t num_classes() const override { return base_->num_classes(); }
  std::string describe() const override;

 private:
  DatasetPtr base_;
  std::vector<int64_t> indices_;
};

}  // namespace minidl::data
