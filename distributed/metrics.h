// Reducing per-rank numbers for logging: sums of counts and losses over the ranks, so every rank prints (and
// rank 0 logs) the figures of the global batch.
#pragma once

#include <vector>

#include "distributed/process_group.h"

namespace minidl::distributed {

/// Element-wise sum over the ranks (in place, returned for convenience). A null group is world size 1.
std::vector<double> all_sum(ProcessGroup* group, std::vector<double> values);

}  // namespace minidl::distributed
