// Subset (see subset.h).
#include "data/subset.h"

#include <algorithm>

#include "core/error.h"

namespace minidl::data {

Subset::Subset(DatasetPtr base, std::vector<int64_t> indices) : base_(std::move(base)), indices_(std::move(indices)) {
  MINIDL_CHECK(base_ != nullptr, "Subset: null dataset");
  const int64_t n = base_->size();
  for (int64_t i : indices_)
    MINIDL_CHECK(i >= 0 && i < n, "Subset: index ", i, " out of range [0, ", n, ") of ", base_->describe());
}

std::shared_ptr<Subset> Subset::first(DatasetPtr base, int64_t n) {
  MINIDL_CHECK(base != nullptr, "Subset: null dataset");
  MINIDL_CHECK(n >= 0, "Subset::first: negative count ", n);
  std::vector<int64_t> idx(static_cast<size_t>(std::min(n, base->size())));
  for (size_t i = 0; i < idx.size(); ++i) idx[i] = static_cast<int64_t>(i);
  return std::make_shared<Subset>(std::move(base), std::move(idx));
}

Example Subset::get_for_epoch(int64_t index, int64_t epoch) const {
  detail::check_index("Subset", index, size());
  return base_->get_for_epoch(indices_[static_cast<size_t>(index)], epoch);
}

std::string Subset::describe() const {
  return ::minidl::detail::concat(base_->describe(), " [subset of ", size(), "]");
}

}  // namespace minidl::data
