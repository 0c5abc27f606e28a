// Fuzz target: load_safetensors over memory. On success, every tensor must be a dense host tensor whose bytes
// are exactly the bytes its header entry points at (re-read here with an independent JSON parse), and the
// tensors must cover the data section.
#include <cstring>
#include <nlohmann/json.hpp>

#include "fuzz_targets.h"
#include "tensor/safetensors.h"

namespace minidl::fuzz {

Outcome fuzz_safetensors(const uint8_t* data, size_t size) {
  Outcome out;
  attempt(out, [&] {
    SafetensorsFile f = load_safetensors(data, size, "fuzz-input");
    // Accepted, so the 8-byte length and the JSON header are known to be well-formed.
    uint64_t header_len = 0;
    for (int i = 7; i >= 0; --i) header_len = (header_len << 8) | data[i];
    const uint8_t* section = data + 8 + header_len;
    const uint64_t section_size = size - 8 - header_len;
    const auto header = nlohmann::json::parse(data + 8, section);
    uint64_t total = 0;
    for (const auto& [name, t] : f.tensors) {
      FUZZ_REQUIRE(t.defined() && t.device().is_cpu() && t.is_contiguous(), "tensor '", name, "'");
      int64_t numel = 1;
      for (int64_t d : t.sizes()) numel *= d;
      FUZZ_REQUIRE(t.numel() == numel, "tensor '", name, "' numel ", t.numel(), " vs shape ", shape_str(t.sizes()));
      FUZZ_REQUIRE(t.nbytes() == static_cast<size_t>(numel) * dtype_size(t.dtype()), "tensor '", name, "'");
      FUZZ_REQUIRE(header.contains(name), "tensor '", name, "' is not in the header");
      const auto& off = header[name]["data_offsets"];
      const uint64_t begin = off[0].get<uint64_t>(), end = off[1].get<uint64_t>();
      FUZZ_REQUIRE(end - begin == t.nbytes() && end <= section_size, "tensor '", name, "' offsets");
      FUZZ_REQUIRE(t.nbytes() == 0 || std::memcmp(t.raw_data(), section + begin, t.nbytes()) == 0, "tensor '", name,
                   "' bytes differ from the file");
      total += t.nbytes();
    }
    FUZZ_REQUIRE(total == section_size, "tensors hold ", total, " bytes of a ", section_size, "-byte data section");
    const size_t entries = header.size() - (header.contains("__metadata__") ? 1 : 0);
    FUZZ_REQUIRE(f.tensors.size() == entries, f.tensors.size(), " tensors for ", entries, " header entries");
  });
  return out;
}

}  // namespace minidl::fuzz
