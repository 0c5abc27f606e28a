// The cpu allocator's peak trace (tensor/alloc_trace.h): blocks live at the highest peak, grouped by the tag
// current when each was allocated, and the tag running when the peak was reached.
#include <doctest/doctest.h>

#include <algorithm>

#include "tensor/alloc_trace.h"
#include "tensor/allocator.h"
#include "tensor/tensor.h"

using namespace minidl;

namespace {

size_t blocks_of(const PeakTrace& t, const std::string& tag, size_t bytes) {
  for (const auto& b : t.blocks)
    if (b.tag == tag && b.block_bytes == bytes) return b.count;
  return 0;
}

}  // namespace

TEST_CASE("alloc trace: the blocks live at the peak, by tag, and what was running then") {
  set_cpu_alloc_trace(true);
  {
    AllocTagGuard outer("fwd", "first_op");
    Tensor a = empty({1 << 18});  // 1 MiB
    Tensor b = empty({1 << 18});
    {
      AllocTagGuard inner("bwd", "second_op");
      Tensor c = empty({1 << 19});  // 2 MiB: the peak is reached here, with a, b and c live
      CHECK(current_alloc_tag().name == std::string("second_op"));
    }
    CHECK(current_alloc_tag().name == std::string("first_op"));
    b = Tensor();
    Tensor d = empty({1 << 18});  // after c and b were freed: below the peak
  }
  const PeakTrace t = cpu_alloc_peak_trace();
  set_cpu_alloc_trace(false);
  CHECK(current_alloc_tag().name == nullptr);
  CHECK(t.running == "bwd second_op");
  CHECK(blocks_of(t, "fwd first_op", 1u << 20) == 2);
  CHECK(blocks_of(t, "bwd second_op", 2u << 20) == 1);
  CHECK(t.peak_bytes >= (4u << 20));
  const std::string table = format_peak_trace(t, 1u << 20);
  CHECK(table.find("bwd second_op") != std::string::npos);
  CHECK(table.find("(2.000 units)") != std::string::npos);
}

TEST_CASE("alloc trace: off by default, and blocks allocated before it started are not listed") {
  Tensor before = empty({1 << 18});
  set_cpu_alloc_trace(true);
  before = Tensor();  // freeing an unknown block is fine
  { Tensor x = empty({16}); }
  const PeakTrace t = cpu_alloc_peak_trace();
  set_cpu_alloc_trace(false);
  CHECK(blocks_of(t, "(untagged)", 1u << 20) == 0);
  CHECK(blocks_of(t, "(untagged)", 64) == 1);
}
