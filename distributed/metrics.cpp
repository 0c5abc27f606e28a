// all_sum (see metrics.h).
#include "distributed/metrics.h"

#include <cstring>

namespace minidl::distributed {

std::vector<double> all_sum(ProcessGroup* group, std::vector<double> values) {
  if (group == nullptr || group->size() == 1 || values.empty()) return values;
  Tensor t = empty({static_cast<int64_t>(values.size())}, TensorOptions().dtype(DType::f64));
  std::memcpy(t.raw_data(), values.data(), values.size() * sizeof(double));
  group->allreduce(t, ReduceOp::Sum);
  std::memcpy(values.data(), t.raw_data(), values.size() * sizeof(double));
  return values;
}

}  // namespace minidl::distributed
