// The checkpoint format: safetensors (8-byte little-endian header length, JSON header with
// dtype/shape/data_offsets and an optional "__metadata__" string map, then raw little-endian data).
// Written atomically (temp file, fsync, rename), so a run that dies never leaves a half-written file.
#pragma once

#include <map>
#include <string>

#include "tensor/tensor.h"

namespace minidl {

using TensorMap = std::map<std::string, Tensor>;
using Metadata = std::map<std::string, std::string>;

struct SafetensorsFile {
  TensorMap tensors;
  Metadata metadata;
};

/// Writes tensors (any device; copied to host) and metadata to `path` atomically.
void save_safetensors(const std::string& path, const TensorMap& tensors, const Metadata& metadata = {});
/// Reads a file; any malformation (bad header length, bad JSON, unknown dtype, offsets out of range or
/// overlapping, byte count not matching dtype x shape) throws minidl::Error naming the file and the problem.
SafetensorsFile load_safetensors(const std::string& path);
/// The same parser over bytes already in memory (an archive member, a network buffer, the fuzz harness);
/// `name` stands in for the path in error messages.
SafetensorsFile load_safetensors(const uint8_t* bytes, size_t size, const std::string& name = "<memory>");

}  // namespace minidl
