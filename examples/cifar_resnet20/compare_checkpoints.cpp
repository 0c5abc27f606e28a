// compare_checkpoints A.safetensors B.safetensors: are two checkpoints bit-identical, tensor by tensor? Used by
// tests/resume_bitexact.sh to compare an uninterrupted run with a killed-and-resumed one. Compares every tensor
// (model, optimizer, scheduler) byte for byte and the training-position metadata; the config and timings may
// differ (save directory, wall time). Exit 0: identical; 1: they differ (the first differing tensor is named
// with its first differing element); 2: a file cannot be read.
#include <minidl.h>

#include <cstdio>
#include <cstring>
#include <set>

using namespace minidl;

namespace {

// Metadata that must match for the runs to be at the same point with the same state.
const char* const kStateKeys[] = {"next_epoch", "next_step",     "best_acc", "epoch_loss_sum",
                                  "epoch_seen", "epoch_correct", "rng_seed", "rng_offset"};

std::string element(const Tensor& t, int64_t i) {
  char buf[64];
  switch (t.dtype()) {
    case DType::f32: std::snprintf(buf, sizeof buf, "%.9g", static_cast<double>(t.data<float>()[i])); break;
    case DType::f64: std::snprintf(buf, sizeof buf, "%.17g", t.data<double>()[i]); break;
    case DType::i32: std::snprintf(buf, sizeof buf, "%d", t.data<int32_t>()[i]); break;
    case DType::i64: std::snprintf(buf, sizeof buf, "%lld", static_cast<long long>(t.data<int64_t>()[i])); break;
    case DType::u8: std::snprintf(buf, sizeof buf, "%u", static_cast<unsigned>(t.data<uint8_t>()[i])); break;
  }
  return buf;
}

// Empty when identical, else what differs.
std::string compare(const std::string& name, const Tensor& a, const Tensor& b) {
  if (a.dtype() != b.dtype()) return name + ": dtype " + dtype_name(a.dtype()) + " vs " + dtype_name(b.dtype());
  if (a.sizes() != b.sizes()) return name + ": shape " + shape_str(a.sizes()) + " vs " + shape_str(b.sizes());
  if (a.nbytes() == 0 || std::memcmp(a.raw_data(), b.raw_data(), a.nbytes()) == 0) return {};
  const size_t es = a.element_size();
  const auto* pa = static_cast<const unsigned char*>(a.raw_data());
  const auto* pb = static_cast<const unsigned char*>(b.raw_data());
  int64_t first = -1, count = 0;
  for (int64_t i = 0; i < a.numel(); ++i) {
    if (std::memcmp(pa + static_cast<size_t>(i) * es, pb + static_cast<size_t>(i) * es, es) != 0) {
      if (first < 0) first = i;
      ++count;
    }
  }
  return name + ": " + std::to_string(count) + " of " + std::to_string(a.numel()) + " elements differ, first at " +
         std::to_string(first) + " (" + element(a, first) + " vs " + element(b, first) + ")";
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 3) {
    std::fprintf(stderr, "usage: compare_checkpoints A.safetensors B.safetensors\n");
    return 2;
  }
  SafetensorsFile a, b;
  try {
    a = load_safetensors(argv[1]);
    b = load_safetensors(argv[2]);
  } catch (const Error& e) {
    std::fprintf(stderr, "compare_checkpoints: error: %s\n", e.what());
    return 2;
  }
  std::vector<std::string> diffs;
  std::set<std::string> names;
  for (auto& [k, v] : a.tensors) names.insert(k);
  for (auto& [k, v] : b.tensors) names.insert(k);
  for (const auto& k : names) {
    auto ia = a.tensors.find(k), ib = b.tensors.find(k);
    if (ia == a.tensors.end() || ib == b.tensors.end()) {
      diffs.push_back(k + ": only in " + (ia == a.tensors.end() ? argv[2] : argv[1]));
    } else if (auto d = compare(k, ia->second, ib->second); !d.empty()) {
      diffs.push_back(d);
    }
  }
  for (const char* key : kStateKeys) {
    auto ia = a.metadata.find(key), ib = b.metadata.find(key);
    const std::string va = ia == a.metadata.end() ? "(none)" : ia->second;
    const std::string vb = ib == b.metadata.end() ? "(none)" : ib->second;
    if (va != vb) diffs.push_back(std::string("metadata ") + key + ": " + va + " vs " + vb);
  }
  if (diffs.empty()) {
    std::printf("identical: %zu tensors bit for bit, training state metadata equal\n", names.size());
    return 0;
  }
  std::printf("DIFFERENT: %zu of %zu tensors/metadata differ; first: %s\n", diffs.size(), names.size(),
              diffs.front().c_str());
  for (size_t i = 1; i < diffs.size() && i < 10; ++i) std::printf("  also %s\n", diffs[i].c_str());
  return 1;
}
