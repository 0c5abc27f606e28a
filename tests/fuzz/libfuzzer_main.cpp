// libFuzzer entry point of one target, chosen at compile time (MINIDL_FUZZ_TARGET, a function of
// fuzz_targets.h). minidl::Error is the expected answer to garbage and is swallowed by the target; anything
// else that escapes (an invariant violation, another exception type) aborts, which libFuzzer reports as a crash
// and saves the input.
#include <cstdio>
#include <cstdlib>
#include <exception>

#include "fuzz_targets.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  try {
    minidl::fuzz::MINIDL_FUZZ_TARGET(data, size);
  } catch (const minidl::fuzz::InvariantViolation& e) {
    std::fprintf(stderr, "minidl fuzz: silent garbage: %s\n", e.what());
    std::abort();
  } catch (const std::exception& e) {
    std::fprintf(stderr, "minidl fuzz: exception other than minidl::Error escaped: %s\n", e.what());
    std::abort();
  }
  return 0;
}
