// See skip_bad_samples.h.
#include "data/skip_bad_samples.h"

#include <cstdio>

#include "core/error.h"

namespace minidl::data {

SkipBadSamples::SkipBadSamples(DatasetPtr base)
    : base_(std::move(base)), skipped_(std::make_shared<std::atomic<int64_t>>(0)) {
  MINIDL_CHECK(base_ != nullptr && base_->size() > 0, "SkipBadSamples: empty dataset");
}

Example SkipBadSamples::get_for_epoch(int64_t index, int64_t epoch) const {
  constexpr int kMaxInARow = 16;
  for (int attempt = 0; attempt < kMaxInARow; ++attempt) {
    const int64_t i = (index + attempt) % base_->size();
    try {
      return base_->get_for_epoch(i, epoch);
    } catch (const Error& e) {
      const int64_t n = ++*skipped_;
      std::fprintf(stderr, "warning: skipping bad image (%lld so far): %s\n", static_cast<long long>(n), e.what());
    }
  }
  MINIDL_FAIL("SkipBadSamples: ", kMaxInARow, " samples in a row from index ", index, " failed to load");
}

}  // namespace minidl::data
