// JPEG (TurboJPEG 2.x API) and PNG (stb_image, implementation linked from libstb) decoding; see image_decode.h.
// Every decode error, including TurboJPEG warnings such as a truncated stream, throws naming the file: a
// silently half-grey training image is worse than a clear failure. A build without libjpeg-turbo
// (MINIDL_HAVE_JPEG off) or stb (MINIDL_HAVE_PNG off) throws one line naming the missing library instead.
#include "data/image_decode.h"

#if defined(MINIDL_HAVE_PNG)
#include <stb_image.h>
#endif
#if defined(MINIDL_HAVE_JPEG)
#include <turbojpeg.h>
#endif

#include <climits>
#include <cstring>
#include <memory>

#include "core/build_features.h"
#include "core/error.h"
#include "data/file_io.h"
#include "data/jpeg_region.h"

namespace minidl::data {

bool is_jpeg(const uint8_t* b, size_t n) { return n >= 3 && b[0] == 0xFF && b[1] == 0xD8 && b[2] == 0xFF; }
bool is_png(const uint8_t* b, size_t n) {
  static const uint8_t sig[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1A, '\n'};
  return n >= 8 && std::memcmp(b, sig, 8) == 0;
}

namespace {

[[maybe_unused]] void check_pixels(const std::string& name, const char* format, int64_t w, int64_t h,
                                   const DecodeOptions& opts) {
  MINIDL_CHECK(w * h <= opts.max_pixels, "image '", name, "': ", format, " claims ", w, "x", h, " = ", w * h,
               " pixels, above the limit of ", opts.max_pixels, " (DecodeOptions::max_pixels); corrupt file?");
}

#if defined(MINIDL_HAVE_PNG)
// Walks the PNG chunk list and refuses a chunk whose length runs past the end of the buffer. stb_image trusts
// those lengths and reallocates its IDAT buffer to the claimed size before reading (fuzzing: a 116-byte file
// made it allocate 1.3 GB); with this check every allocation stays bounded by the file size. Stops at IEND
// (stb ignores what follows it, the CRC included).
void check_png_chunks(const uint8_t* b, size_t n, const std::string& name) {
  size_t pos = 8;  // after the signature
  while (n - pos >= 8) {
    const uint32_t len =
        (uint32_t{b[pos]} << 24) | (uint32_t{b[pos + 1]} << 16) | (uint32_t{b[pos + 2]} << 8) | b[pos + 3];
    const std::string type(reinterpret_cast<const char*>(b + pos + 4), 4);
    MINIDL_CHECK(len <= n - pos - 8, "image '", name, "': corrupt PNG: chunk '", type, "' at offset ", pos, " claims ",
                 len, " bytes but only ", n - pos - 8, " follow (truncated file?)");
    if (type == "IEND") return;
    pos += 8 + size_t{len};
    if (n - pos < 4) return;  // a missing final CRC is stb's to judge
    pos += 4;
  }
}
#endif

#if defined(MINIDL_HAVE_JPEG)
struct TjDeleter {
  void operator()(void* h) const { tjDestroy(h); }
};

Tensor decode_jpeg(const uint8_t* bytes, size_t size, const std::string& name, const DecodeOptions& opts) {
  MINIDL_CHECK(size <= ULONG_MAX, "image '", name, "': file too large");
  // One handle per call: handles are not thread-safe, and creating one is cheap next to a decode.
  std::unique_ptr<void, TjDeleter> h(tjInitDecompress());
  MINIDL_CHECK(h != nullptr, "image '", name, "': cannot create a TurboJPEG decompressor: ", tjGetErrorStr2(nullptr));
  int width = 0, height = 0, subsamp = 0, colorspace = 0;
  if (tjDecompressHeader3(h.get(), bytes, static_cast<unsigned long>(size), &width, &height, &subsamp, &colorspace) !=
      0)
    MINIDL_FAIL("image '", name, "': corrupt JPEG header: ", tjGetErrorStr2(h.get()));
  MINIDL_CHECK(width > 0 && height > 0, "image '", name, "': JPEG has empty size ", width, "x", height);
  if (colorspace == TJCS_CMYK || colorspace == TJCS_YCCK) {
    // TurboJPEG cannot convert CMYK to RGB; libjpeg's API can give CMYK, converted as Pillow does.
    MINIDL_CHECK(opts.channels == 3, "image '", name, "': CMYK JPEGs decode to RGB only");
    return decode_jpeg_region(bytes, size, name, 0, 0, height, width).pixels;
  }

  int out_w = width, out_h = height;
  if (opts.min_side > 0) {
    int nf = 0;
    tjscalingfactor* factors = tjGetScalingFactors(&nf);
    // Pick the smallest scaled size whose shorter side still reaches min_side (never upscale).
    for (int i = 0; factors && i < nf; ++i) {
      const tjscalingfactor f = factors[i];
      if (f.num > f.denom) continue;
      const int w = TJSCALED(width, f), hh = TJSCALED(height, f);
      if (std::min(w, hh) >= std::min(opts.min_side, std::min(width, height)) &&
          int64_t{w} * hh < int64_t{out_w} * out_h) {
        out_w = w;
        out_h = hh;
      }
    }
  }
  check_pixels(name, "JPEG", out_w, out_h, opts);
  const int pf = opts.channels == 1 ? TJPF_GRAY : TJPF_RGB;
  Tensor img = empty({out_h, out_w, opts.channels}, TensorOptions{}.dtype(DType::u8));
  if (tjDecompress2(h.get(), bytes, static_cast<unsigned long>(size), img.data<uint8_t>(), out_w, 0, out_h, pf,
                    TJFLAG_ACCURATEDCT) != 0)
    MINIDL_FAIL("image '", name, "': corrupt JPEG: ", tjGetErrorStr2(h.get()));
  return img;
}
#else
Tensor decode_jpeg(const uint8_t*, size_t, const std::string& name, const DecodeOptions&) {
  fail_unavailable("libjpeg-turbo", "image '" + name + "': JPEG decoding is",
                   "apt-get install libturbojpeg0-dev libjpeg62-turbo-dev and rebuild");
}
#endif

Tensor decode_stb(const uint8_t* bytes, size_t size, const std::string& name, const DecodeOptions& opts) {
  // Only PNG reaches stb_image: ImageFolder lists .jpg/.jpeg/.png only, and stb's other decoders (GIF, PSD,
  // PIC, PNM, HDR, TGA, BMP) are attack surface no dataset of ours needs.
  MINIDL_CHECK(is_png(bytes, size), "image '", name, "': not a JPEG or PNG image (unknown signature)");
  MINIDL_CHECK(size <= static_cast<size_t>(INT_MAX), "image '", name, "': file too large for stb_image");
#if defined(MINIDL_HAVE_PNG)
  check_png_chunks(bytes, size, name);
  int w = 0, h = 0, c = 0;
  // The header first: stb_image allocates the whole decoded image (and, for PNG, the inflated scanlines) up
  // front from the claimed size, which must be bounded before it does.
  if (stbi_info_from_memory(bytes, static_cast<int>(size), &w, &h, &c)) check_pixels(name, "PNG", w, h, opts);
  std::unique_ptr<stbi_uc, void (*)(void*)> px(
      stbi_load_from_memory(bytes, static_cast<int>(size), &w, &h, &c, opts.channels), &stbi_image_free);
  if (!px) {
    const char* reason = stbi_failure_reason();
    MINIDL_FAIL("image '", name, "': corrupt PNG: ", reason ? reason : "unknown error");
  }
  Tensor img = empty({h, w, opts.channels}, TensorOptions{}.dtype(DType::u8));
  std::memcpy(img.data<uint8_t>(), px.get(), static_cast<size_t>(h) * w * opts.channels);
  return img;
#else
  (void)opts;
  fail_unavailable("stb_image", "image '" + name + "': PNG decoding is", "apt-get install libstb-dev and rebuild");
#endif
}

}  // namespace

Tensor decode_image(const uint8_t* bytes, size_t size, const std::string& name, const DecodeOptions& opts) {
  MINIDL_CHECK(opts.channels == 1 || opts.channels == 3, "image '", name, "': channels must be 1 or 3, got ",
               opts.channels);
  MINIDL_CHECK(size > 0, "image '", name, "': file is empty");
  if (is_jpeg(bytes, size)) return decode_jpeg(bytes, size, name, opts);
  return decode_stb(bytes, size, name, opts);
}

Tensor read_image(const std::string& path, const DecodeOptions& opts) {
  std::vector<uint8_t> bytes = detail::read_file_bytes(path, "image");
  return decode_image(bytes.data(), bytes.size(), path, opts);
}

}  // namespace minidl::data
