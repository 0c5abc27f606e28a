// build_features(): the MINIDL_HAVE_* definitions CMake sets on this file, as values (see build_features.h).
#include "core/build_features.h"

#include "core/error.h"

namespace minidl {

const BuildFeatures& build_features() {
  static const BuildFeatures features = [] {
    BuildFeatures f;
#if defined(MINIDL_HAVE_ZLIB)
    f.zlib = true;
#endif
#if defined(MINIDL_HAVE_JPEG)
    f.jpeg = true;
#endif
#if defined(MINIDL_HAVE_PNG)
    f.png = true;
#endif
#if defined(MINIDL_HAVE_GLOO)
    f.gloo = true;
#endif
#if defined(MINIDL_HAVE_NCCL)
    f.nccl = true;
#endif
    return f;
  }();
  return features;
}

void fail_unavailable(const std::string& library, const std::string& what, const std::string& remedy) {
  MINIDL_FAIL("minidl was built without ", library, ": ", what, " unavailable (", remedy, ")");
}

}  // namespace minidl
