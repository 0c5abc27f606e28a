// Dataset: the interface every data source implements (size + random access to one Example), so readers,
// transform wrappers and the DataLoader compose freely. get() must be thread-safe: loader workers call it
// concurrently, so datasets keep their state immutable after construction.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "tensor/tensor.h"

namespace minidl::data {

/// One sample. `image` is uint8 HWC as read from disk (e.g. [32, 32, 3]) or, after ToTensor/Normalize,
/// float32 CHW; `label` is the class index.
struct Example {
  Tensor image;
  int64_t label = 0;
};

class Dataset {
 public:
  virtual ~Dataset() = default;
  virtual int64_t size() const = 0;
  /// The sample at `index` (0 <= index < size()); throws minidl::Error naming the file on a read error.
  virtual Example get(int64_t index) const = 0;
  /// The sample as seen in `epoch`. Random transforms key their draws on (seed, epoch, index), so the result
  /// does not depend on which thread loads it or when. Readers have no randomness: the default ignores epoch.
  virtual Example get_for_epoch(int64_t index, int64_t epoch) const {
    (void)epoch;
    return get(index);
  }
  /// Number of classes when known (0 when not), for building the model's classifier.
  virtual int64_t num_classes() const { return 0; }
  /// Short description for logs, e.g. "CIFAR-10 train (50000 images)".
  virtual std::string describe() const = 0;
};

using DatasetPtr = std::shared_ptr<const Dataset>;

namespace detail {
/// Throws minidl::Error "<who>: index i out of range [0, n)".
void check_index(const char* who, int64_t index, int64_t size);
}  // namespace detail

}  // namespace minidl::data
