// --skip-bad-images: a dataset wrapper that turns an unreadable sample (corrupt or truncated image) into a
// warning and substitutes the next readable sample, so one bad file in a million does not end a run. The
// count of skipped reads is kept for the end-of-epoch summary.
#pragma once

#include <atomic>
#include <memory>

#include "data/dataset.h"

namespace minidl::data {

class SkipBadSamples : public Dataset {
 public:
  explicit SkipBadSamples(DatasetPtr base);
  int64_t size() const override { return base_->size(); }
  Example get(int64_t index) const override { return get_for_epoch(index, 0); }
  /// The sample, or, when it throws, a warning on stderr and the next sample (index + 1, ...) that reads;
  /// throws when 16 samples in a row fail (the data is broken, not one file).
  Example get_for_epoch(int64_t index, int64_t epoch) const override;
  int64_t num_classes() const override { return base_->num_classes(); }
  std::string describe() const override { return base_->describe(); }
  /// Unreadable samples met so far (every read counts, across epochs).
  int64_t skipped() const { return skipped_->load(); }

 private:
  DatasetPtr base_;
  std::shared_ptr<std::atomic<int64_t>> skipped_;
};

}  // namespace minidl::data
