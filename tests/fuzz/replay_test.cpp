// Replays every committed fuzz input (tests/fuzz/corpus/<target> and tests/fuzz/regressions/<target>) through the
// same target code the libFuzzer executables run, in the ordinary build (and under the ASan CI job): each input
// must load or throw minidl::Error, and whatever loads must pass the targets' invariants. The seeds themselves
// must be valid, or the corpus would be starting the fuzzer from garbage.
#include <doctest/doctest.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <iterator>

#include "core/build_features.h"
#include "fuzz_targets.h"

namespace fs = std::filesystem;
using namespace minidl::fuzz;

namespace {

std::vector<fs::path> inputs_under(const fs::path& dir) {
  std::vector<fs::path> files;
  if (fs::is_directory(dir))
    for (const auto& e : fs::directory_iterator(dir))
      if (e.is_regular_file() && e.path().filename() != "README.md") files.push_back(e.path());
  std::sort(files.begin(), files.end());
  return files;
}

std::vector<uint8_t> read_bytes(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  return std::vector<uint8_t>(std::istreambuf_iterator<char>(in), {});
}

// Runs one input; a failure names the file and what escaped.
Outcome replay(const Target& t, const fs::path& file) {
  const std::vector<uint8_t> bytes = read_bytes(file);
  try {
    return t.fn(bytes.data(), bytes.size());
  } catch (const InvariantViolation& e) {
    FAIL_CHECK(minidl::detail::concat(t.name, ": ", file.string(), ": silent garbage: ", e.what()));
  } catch (const std::exception& e) {
    FAIL_CHECK(minidl::detail::concat(t.name, ": ", file.string(), ": exception other than minidl::Error: ", e.what()));
  }
  return {};
}

// The optional library a target's seeds need (cmake/optional_deps.cmake), or null. Without it the seeds are still
// replayed (each must load or throw minidl::Error) but cannot be accepted.
const char* missing_library(const std::string& target) {
  const minidl::BuildFeatures& f = minidl::build_features();
  if (target == "idx_gzip" && !f.zlib) return "zlib";
  if (target == "jpeg" && !f.jpeg) return "libjpeg-turbo";
  if (target == "png" && !f.png) return "stb_image";
  return nullptr;
}

}  // namespace

TEST_CASE("fuzz corpus: every seed is accepted by its target") {
  const fs::path root = fs::path(MINIDL_FUZZ_DIR) / "corpus";
  REQUIRE(all_targets().size() == 8);
  for (const Target& t : all_targets()) {
    const auto files = inputs_under(root / t.name);
    INFO("target " << t.name);
    CHECK(files.size() >= 2);
    const char* missing = missing_library(t.name);
    if (missing)
      MESSAGE(t.name << ": minidl was built without " << missing << ": seeds replayed, acceptance not checked");
    for (const auto& f : files) {
      const Outcome o = replay(t, f);
      if (missing) continue;
      CHECK_MESSAGE(o.accepted > 0,
                    minidl::detail::concat(t.name, ": seed ", f.string(), " is rejected by every load"));
    }
  }
}

TEST_CASE("fuzz regressions: inputs that once crashed now load or throw minidl::Error") {
  const fs::path root = fs::path(MINIDL_FUZZ_DIR) / "regressions";
  size_t total = 0;
  for (const Target& t : all_targets()) {
    for (const auto& f : inputs_under(root / t.name)) {
      replay(t, f);
      ++total;
    }
  }
  MESSAGE(total << " regression inputs replayed");
  CHECK(total > 0);
}
