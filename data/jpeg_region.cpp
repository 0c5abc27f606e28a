// Region decoding with libjpeg(-turbo)'s classic API (see jpeg_region.h). libjpeg reports errors through
// error_exit, which must not return: it longjmps back to the setjmp in the decode function, where only
// trivially destructible locals live between the setjmp and the libjpeg calls (the rule that makes longjmp
// safe in C++). Warnings (a truncated stream, for one) are errors here too: a half-grey training image is
// worse than a clear failure.
#include "data/jpeg_region.h"

#include "core/build_features.h"
#include "core/error.h"

#if defined(MINIDL_HAVE_JPEG)
// jpeglib.h needs size_t and FILE declared first.
#include <cstdio>
// clang-format off
#include <jpeglib.h>
// clang-format on

#include <algorithm>
#include <cmath>
#include <csetjmp>
#include <cstring>
#include <vector>
#endif

namespace minidl::data {

#if defined(MINIDL_HAVE_JPEG)

namespace {

struct ErrorManager {
  jpeg_error_mgr pub;
  std::jmp_buf jump;
  char message[JMSG_LENGTH_MAX];
};

void on_error(j_common_ptr cinfo) {
  auto* err = reinterpret_cast<ErrorManager*>(cinfo->err);
  (*cinfo->err->format_message)(cinfo, err->message);
  std::longjmp(err->jump, 1);
}

void on_message(j_common_ptr cinfo, int level) {
  if (level < 0) on_error(cinfo);  // a warning: corrupt or truncated data
}

// The decompressor with its error manager; destroyed by the caller's scope.
struct Decompressor {
  jpeg_decompress_struct cinfo;
  ErrorManager err;
  bool created = false;
  ~Decompressor() {
    if (created) jpeg_destroy_decompress(&cinfo);
  }
};

// Runs the libjpeg calls of one decode; returns false (with err.message set) when libjpeg failed. All state
// lives in `d` and `out`, so the longjmp skips no destructor.
struct RegionJob {
  int64_t top, left, height, width;
  int scale;
  // results
  int64_t x_off = 0, y_off = 0, rows = 0, cols = 0;
  double sx0 = 0, sy0 = 0, sx1 = 0, sy1 = 0;
  bool cmyk = false, inverted = false;
};

bool run_region(Decompressor& d, const uint8_t* bytes, size_t size, RegionJob& job, std::vector<uint8_t>& buf,
                JpegInfo* info_only) {
  d.cinfo.err = jpeg_std_error(&d.err.pub);
  d.err.pub.error_exit = on_error;
  d.err.pub.emit_message = on_message;
  if (setjmp(d.err.jump)) return false;
  jpeg_create_decompress(&d.cinfo);
  d.created = true;
  jpeg_mem_src(&d.cinfo, bytes, static_cast<unsigned long>(size));
  jpeg_save_markers(&d.cinfo, JPEG_APP0 + 14, 0xFFFF);  // Adobe marker: tells inverted CMYK
  jpeg_read_header(&d.cinfo, TRUE);
  if (info_only) {
    info_only->height = d.cinfo.image_height;
    info_only->width = d.cinfo.image_width;
    return true;
  }
  job.cmyk = d.cinfo.jpeg_color_space == JCS_CMYK || d.cinfo.jpeg_color_space == JCS_YCCK;
  job.inverted = job.cmyk && d.cinfo.saw_Adobe_marker;
  d.cinfo.out_color_space = job.cmyk ? JCS_CMYK : JCS_EXT_RGB;
  d.cinfo.scale_num = static_cast<unsigned>(job.scale);
  d.cinfo.scale_denom = 8;
  d.cinfo.dct_method = JDCT_ISLOW;
  jpeg_start_decompress(&d.cinfo);
  const double f = job.scale / 8.0;
  const auto out_w = static_cast<int64_t>(d.cinfo.output_width), out_h = static_cast<int64_t>(d.cinfo.output_height);
  // The window in scaled pixels, then the whole pixels that cover it.
  job.sx0 = static_cast<double>(job.left) * f, job.sx1 = static_cast<double>(job.left + job.width) * f;
  job.sy0 = static_cast<double>(job.top) * f, job.sy1 = static_cast<double>(job.top + job.height) * f;
  const int64_t px0 = std::clamp<int64_t>(static_cast<int64_t>(std::floor(job.sx0)), 0, out_w - 1);
  const int64_t px1 = std::clamp<int64_t>(static_cast<int64_t>(std::ceil(job.sx1)), px0 + 1, out_w);
  const int64_t py0 = std::clamp<int64_t>(static_cast<int64_t>(std::floor(job.sy0)), 0, out_h - 1);
  const int64_t py1 = std::clamp<int64_t>(static_cast<int64_t>(std::ceil(job.sy1)), py0 + 1, out_h);
  // Ask for one iMCU column more on each side: fancy upsampling treats the decoded columns' edges as the
  // image's edges, so the window's own edge columns need decoded neighbours to equal a full decode.
  const int64_t imcu_cols = int64_t{d.cinfo.max_h_samp_factor} * d.cinfo.min_DCT_scaled_size;
  const int64_t qx0 = std::max<int64_t>(0, px0 - imcu_cols), qx1 = std::min<int64_t>(out_w, px1 + imcu_cols);
  JDIMENSION xoff = static_cast<JDIMENSION>(qx0), xw = static_cast<JDIMENSION>(qx1 - qx0);
  if (xw < d.cinfo.output_width) jpeg_crop_scanline(&d.cinfo, &xoff, &xw);  // widens to iMCU boundaries
  job.x_off = xoff;
  job.cols = xw;
  job.y_off = py0;
  job.rows = py1 - py0;
  const int comps = d.cinfo.output_components;
  buf.resize(static_cast<size_t>(job.rows * job.cols * comps));
  // Skip whole iMCU rows only, and stop one iMCU row early: fancy (smoothing) upsampling of a row needs its
  // neighbours, which a skip to mid-iMCU does not decode. The rows in between are decoded and dropped, so the
  // window's pixels equal a full decode's exactly.
  const int64_t imcu_rows = int64_t{d.cinfo.max_v_samp_factor} * d.cinfo.min_DCT_scaled_size;
  const int64_t skip_to = std::max<int64_t>(0, (py0 / imcu_rows - 1) * imcu_rows);
  if (skip_to > 0) {
    const JDIMENSION skipped = jpeg_skip_scanlines(&d.cinfo, static_cast<JDIMENSION>(skip_to));
    if (static_cast<int64_t>(skipped) != skip_to) {
      std::snprintf(d.err.message, sizeof d.err.message, "cannot skip to row %lld", static_cast<long long>(skip_to));
      return false;
    }
  }
  for (int64_t r = skip_to; r < py0;) {
    JSAMPROW row = buf.data();  // scratch: overwritten by the window's first row below
    const JDIMENSION got = jpeg_read_scanlines(&d.cinfo, &row, 1);
    if (got == 0) {
      std::snprintf(d.err.message, sizeof d.err.message, "premature end of data");
      return false;
    }
    r += got;
  }
  for (int64_t r = 0; r < job.rows;) {
    JSAMPROW row = buf.data() + r * job.cols * comps;
    const JDIMENSION got = jpeg_read_scanlines(&d.cinfo, &row, 1);
    if (got == 0) {
      std::snprintf(d.err.message, sizeof d.err.message, "premature end of data");
      return false;
    }
    r += got;
  }
  // The rows below the window are never decoded; abort instead of finishing.
  jpeg_abort_decompress(&d.cinfo);
  return true;
}

}  // namespace

JpegInfo read_jpeg_info(const uint8_t* bytes, size_t size, const std::string& name) {
  Decompressor d;
  RegionJob job{};
  std::vector<uint8_t> unused;
  JpegInfo info;
  if (!run_region(d, bytes, size, job, unused, &info)) MINIDL_FAIL("image '", name, "': corrupt JPEG: ", d.err.message);
  MINIDL_CHECK(info.height > 0 && info.width > 0, "image '", name, "': JPEG has empty size");
  return info;
}

DecodedRegion decode_jpeg_region(const uint8_t* bytes, size_t size, const std::string& name, int64_t top, int64_t left,
                                 int64_t height, int64_t width, int scale_eighths) {
  MINIDL_CHECK(scale_eighths >= 1 && scale_eighths <= 8, "decode_jpeg_region: scale must be 1..8 eighths, got ",
               scale_eighths);
  MINIDL_CHECK(top >= 0 && left >= 0 && height > 0 && width > 0, "image '", name, "': bad window ", height, "x", width,
               " at (", top, ", ", left, ")");
  Decompressor d;
  RegionJob job{top, left, height, width, scale_eighths};
  std::vector<uint8_t> buf;
  if (!run_region(d, bytes, size, job, buf, nullptr)) MINIDL_FAIL("image '", name, "': corrupt JPEG: ", d.err.message);
  MINIDL_CHECK(top + height <= static_cast<int64_t>(d.cinfo.image_height) &&
                   left + width <= static_cast<int64_t>(d.cinfo.image_width),
               "image '", name, "': window ", height, "x", width, " at (", top, ", ", left, ") outside the ",
               d.cinfo.image_height, "x", d.cinfo.image_width, " image");
  DecodedRegion out;
  out.pixels = empty({job.rows, job.cols, 3}, TensorOptions{}.dtype(DType::u8));
  uint8_t* px = out.pixels.data<uint8_t>();
  const int64_t n = job.rows * job.cols;
  const int comps = d.cinfo.output_components;
  if (job.cmyk) {
    // Adobe-written CMYK is stored inverted (255 = no ink); Pillow's CMYK -> RGB is R = 255 - C ink, darkened by K.
    for (int64_t i = 0; i < n; ++i) {
      const uint8_t* s = &buf[static_cast<size_t>(i * 4)];
      const int k = job.inverted ? s[3] : 255 - s[3];
      for (int c = 0; c < 3; ++c) {
        const int v = job.inverted ? s[c] : 255 - s[c];
        px[i * 3 + c] = static_cast<uint8_t>((v * k + 127) / 255);
      }
    }
  } else {
    MINIDL_CHECK(comps == 3, "image '", name, "': unexpected ", comps, " output components");
    std::memcpy(px, buf.data(), static_cast<size_t>(n * 3));
  }
  out.box = {job.sx0 - static_cast<double>(job.x_off), job.sy0 - static_cast<double>(job.y_off),
             std::min(job.sx1 - static_cast<double>(job.x_off), static_cast<double>(job.cols)),
             std::min(job.sy1 - static_cast<double>(job.y_off), static_cast<double>(job.rows))};
  return out;
}
#else
// Without libjpeg-turbo (MINIDL_HAVE_JPEG off): the same functions, each a one-line error.
JpegInfo read_jpeg_info(const uint8_t*, size_t, const std::string& name) {
  fail_unavailable("libjpeg-turbo", "image '" + name + "': JPEG decoding is",
                   "apt-get install libturbojpeg0-dev libjpeg62-turbo-dev and rebuild");
}

DecodedRegion decode_jpeg_region(const uint8_t*, size_t, const std::string& name, int64_t, int64_t, int64_t, int64_t,
                                 int) {
  fail_unavailable("libjpeg-turbo", "image '" + name + "': JPEG region decoding is",
                   "apt-get install libturbojpeg0-dev libjpeg62-turbo-dev and rebuild");
}
#endif

int dct_scale_for(int64_t crop_h, int64_t crop_w, int64_t out_h, int64_t out_w) {
  for (int m : {1, 2, 4})
    if (crop_h * m >= out_h * 8 && crop_w * m >= out_w * 8) return m;
  return 8;
}

}  // namespace minidl::data
