// The loader fuzz targets, shared by the libFuzzer executables (libfuzzer_main.cpp, one per target) and the
// replay unit test (replay_test.cpp, which runs every committed corpus and regression input in the normal
// build). A target feeds the bytes to minidl's public entry points and checks what a successful load returned.
// Contract: a target returns normally (each load either succeeded with sane results or threw minidl::Error,
// which the target swallows) or throws: InvariantViolation for "silent garbage", anything else is a bug too.
#pragma once

#include <cstddef>
#include <cstdint>
#include <stdexcept>
#include <string>
#include <vector>

#include "core/error.h"

namespace minidl::fuzz {

/// A loader accepted the input but returned something inconsistent (wrong size, bytes that differ from the
/// file, a label out of range). Deliberately not a minidl::Error, so no harness can mistake it for a rejection.
struct InvariantViolation : std::logic_error {
  using std::logic_error::logic_error;
};

#define FUZZ_REQUIRE(cond, ...)                                                         \
  do {                                                                                  \
    if (!(cond))                                                                        \
      throw ::minidl::fuzz::InvariantViolation(                                         \
          ::minidl::detail::concat("invariant '", #cond, "' violated: ", __VA_ARGS__)); \
  } while (0)

/// Result of one target run: how many of its loads accepted the input (the rest threw minidl::Error).
struct Outcome {
  int accepted = 0;
  int rejected = 0;
};

/// Runs `load`; a minidl::Error counts as a rejection, every other exception propagates.
template <typename F>
void attempt(Outcome& out, F&& load) {
  try {
    load();
    ++out.accepted;
  } catch (const ::minidl::Error&) {
    ++out.rejected;
  }
}

using TargetFn = Outcome (*)(const uint8_t* data, size_t size);

Outcome fuzz_safetensors(const uint8_t* data, size_t size);
Outcome fuzz_checkpoint(const uint8_t* data, size_t size);
Outcome fuzz_idx(const uint8_t* data, size_t size);  // raw and gzip alike (gzread detects which)
Outcome fuzz_cifar(const uint8_t* data, size_t size);
Outcome fuzz_image(const uint8_t* data, size_t size);   // JPEG and PNG alike (decode_image sniffs the format)
Outcome fuzz_packed(const uint8_t* data, size_t size);  // quant::load_packed, then the packed model's forwards

struct Target {
  const char* name;  // the corpus folder name: corpus/<name>, regressions/<name>
  TargetFn fn;
};
/// The eight targets, in the order scripts/fuzz runs them.
const std::vector<Target>& all_targets();

/// Writes bytes to a per-process scratch file (in /dev/shm when it exists) for loaders that only take a path;
/// the same path is overwritten by every call with the same tag and removed at exit.
std::string scratch_file(const std::string& tag, const uint8_t* data, size_t size);

}  // namespace minidl::fuzz
