// Which optional dependencies this minidl was built with. CMake finds them or not (cmake/optional_deps.cmake);
// a feature whose library was absent throws one clear minidl::Error when used, and its tests ask here so they
// can report *skipped* instead of failing (or, worse, passing without having run).
#pragma once

#include <string>

namespace minidl {

struct BuildFeatures {
  bool zlib = false;  // gzip-compressed IDX files (data/idx)
  bool jpeg = false;  // libjpeg-turbo (TurboJPEG + libjpeg): JPEG images (data/image_decode, data/jpeg_region)
  bool png = false;   // stb_image: PNG images (data/image_decode)
  bool gloo = false;  // Gloo: the CPU process group of distributed/
  bool nccl = false;  // NCCL: the CUDA process group of distributed/
};

/// The features of this build (fixed at compile time).
const BuildFeatures& build_features();

/// Throws minidl::Error "minidl was built without <library>: <what> unavailable (<how to get it>)".
[[noreturn]] void fail_unavailable(const std::string& library, const std::string& what, const std::string& remedy);

}  // namespace minidl
