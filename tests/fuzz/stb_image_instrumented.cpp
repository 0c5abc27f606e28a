// stb_image's implementation, compiled into libminidl in the fuzz build only (MINIDL_BUILD_FUZZERS): the
// prebuilt libstb carries no coverage instrumentation, so libFuzzer would fuzz the PNG decoder blind and ASan
// would miss overflows inside it. The normal build links libstb instead (notes/toolchain.md: no own copy).
#define STB_IMAGE_IMPLEMENTATION
#define STBI_ONLY_PNG  // decode_image hands stb nothing else
#include <stb_image.h>
