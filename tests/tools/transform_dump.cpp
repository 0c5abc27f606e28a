// minidl_transform_dump: applies one data/ transform to one image file and writes the result, so
// tests/tools/check_torchvision_transforms.py can compare it with torchvision + PIL on the same file.
//   minidl_transform_dump IN OUT OP [ARGS...]
//     decode                              whole-image decode to RGB
//     resize S | resize H W               Resize (shorter side) / Resize((H, W))
//     center_crop H W                     CenterCrop((H, W))
//     resized_crop TOP LEFT H W OH OW     crop then resize (torchvision F.resized_crop)
//     rrc_fallback OH OW                  RandomResizedCrop with scale (2, 2): always the central fallback
//     flip                                horizontal flip
//     normalize                           ImageNet mean/std, float32 CHW
//     decode_crop TOP LEFT H W OH OW      JPEG region decode (no DCT scaling) + resize (the training path)
// OUT: a text line "H W C u8|f32" then the raw HWC (u8) or CHW (f32) values.
#include <core/error.h>
#include <data/file_io.h>
#include <data/image_decode.h>
#include <data/jpeg_region.h>
#include <data/resample.h>
#include <data/resize_crop.h>
#include <data/transforms.h>

#include <cstdio>
#include <cstring>
#include <fstream>
#include <string>
#include <vector>

using namespace minidl;
using namespace minidl::data;

namespace {

int64_t arg(char** argv, int argc, int i) {
  MINIDL_CHECK(i < argc, "missing argument ", i);
  return std::stoll(argv[i]);
}

void write(const std::string& path, const Tensor& t) {
  std::ofstream out(path, std::ios::binary);
  MINIDL_CHECK(out.good(), "cannot write ", path);
  if (t.dtype() == DType::u8) {
    out << t.size(0) << ' ' << t.size(1) << ' ' << t.size(2) << " u8\n";
    out.write(reinterpret_cast<const char*>(t.data<uint8_t>()), static_cast<std::streamsize>(t.numel()));
  } else {
    out << t.size(1) << ' ' << t.size(2) << ' ' << t.size(0) << " f32\n";
    out.write(reinterpret_cast<const char*>(t.data<float>()), static_cast<std::streamsize>(t.numel() * 4));
  }
}

}  // namespace

int main(int argc, char** argv) {
  try {
    MINIDL_CHECK(argc >= 4, "usage: minidl_transform_dump IN OUT OP [ARGS...]");
    const std::string in = argv[1], out = argv[2], op = argv[3];
    SampleRng rng(0, 0, 0);
    if (op == "decode_crop") {
      const std::vector<uint8_t> bytes = data::detail::read_file_bytes(in, "image");
      const int64_t top = arg(argv, argc, 4), left = arg(argv, argc, 5), h = arg(argv, argc, 6), w = arg(argv, argc, 7);
      DecodedRegion r = decode_jpeg_region(bytes.data(), bytes.size(), in, top, left, h, w, 8);
      U8View v = view_of(r.pixels);
      v.data += (static_cast<int64_t>(r.box.y0) * v.cols + static_cast<int64_t>(r.box.x0)) * v.channels;
      v.rows = h;
      v.cols = w;
      write(out, resample_bilinear(v, {0, 0, static_cast<double>(w), static_cast<double>(h)}, arg(argv, argc, 8),
                                   arg(argv, argc, 9)));
      return 0;
    }
    const Tensor img = read_image(in);
    Tensor res;
    if (op == "decode") {
      res = img;
    } else if (op == "resize") {
      res = argc > 5 ? Resize(arg(argv, argc, 4), arg(argv, argc, 5)).apply(img, rng)
                     : Resize(arg(argv, argc, 4)).apply(img, rng);
    } else if (op == "center_crop") {
      res = CenterCrop(arg(argv, argc, 4), arg(argv, argc, 5)).apply(img, rng);
    } else if (op == "resized_crop") {
      const CropWindow w{arg(argv, argc, 4), arg(argv, argc, 5), arg(argv, argc, 6), arg(argv, argc, 7)};
      res = Resize(arg(argv, argc, 8), arg(argv, argc, 9)).apply(crop_u8(img, w), rng);
    } else if (op == "rrc_fallback") {
      RandomResizedCropOptions o;
      o.scale_min = o.scale_max = 2.0;
      res = RandomResizedCrop(arg(argv, argc, 4), arg(argv, argc, 5), o).apply(img, rng);
    } else if (op == "flip") {
      res = RandomHorizontalFlip(1.0).apply(img, rng);
    } else if (op == "normalize") {
      res = Normalize({0.485, 0.456, 0.406}, {0.229, 0.224, 0.225}).apply(img, rng);
    } else {
      MINIDL_FAIL("unknown op '", op, "'");
    }
    write(out, res);
    return 0;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "minidl_transform_dump: error: %s\n", e.what());
    return 2;
  }
}
