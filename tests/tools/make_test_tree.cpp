// minidl_make_test_tree: writes a small ImageNet-layout tree of generated images for the imagenet_resnet18
// program tests, with the bad inputs those tests need, without Python or Pillow:
//   minidl_make_test_tree ROOT [--classes N] [--train N] [--val N] [--bad corrupt|truncated|non-image|
//                               empty-class|no-images]
// Images: per-class textured patterns (a learnable signal) of varying sizes, as RGB and grayscale JPEGs (4:2:0)
// and a few PNGs. --bad adds one bad file to val/<first class>/ (or an empty class folder, or no images).
#include <stb_image_write.h>
#include <turbojpeg.h>

#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <stdexcept>
#include <string>
#include <vector>

namespace fs = std::filesystem;

namespace {

std::vector<uint8_t> image(int w, int h, int cls, int idx) {
  std::vector<uint8_t> px(static_cast<size_t>(w * h * 3));
  const double f = 0.15 + 0.12 * cls;
  for (int y = 0; y < h; ++y)
    for (int x = 0; x < w; ++x)
      for (int c = 0; c < 3; ++c)
        px[static_cast<size_t>((y * w + x) * 3 + c)] = static_cast<uint8_t>(
            128 + 90 * std::sin(f * (cls % 2 ? x : y) + idx * 0.3 + c) + ((x * 7 + y * 13 + idx) % 23) - 11);
  return px;
}

std::vector<uint8_t> jpeg(const std::vector<uint8_t>& px, int w, int h, bool gray) {
  tjhandle t = tjInitCompress();
  if (!t) throw std::runtime_error("tjInitCompress failed");
  std::vector<uint8_t> src = px;
  int pf = TJPF_RGB;
  if (gray) {
    src.resize(static_cast<size_t>(w * h));
    for (int i = 0; i < w * h; ++i) src[static_cast<size_t>(i)] = px[static_cast<size_t>(i * 3 + 1)];
    pf = TJPF_GRAY;
  }
  unsigned char* buf = nullptr;
  unsigned long size = 0;
  if (tjCompress2(t, src.data(), w, 0, h, pf, &buf, &size, gray ? TJSAMP_GRAY : TJSAMP_420, 90, 0) != 0)
    throw std::runtime_error("tjCompress2 failed");
  std::vector<uint8_t> out(buf, buf + size);
  tjFree(buf);
  tjDestroy(t);
  return out;
}

void write(const fs::path& p, const std::vector<uint8_t>& bytes) {
  fs::create_directories(p.parent_path());
  std::ofstream(p, std::ios::binary)
      .write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr, "usage: minidl_make_test_tree ROOT [--classes N] [--train N] [--val N] [--bad KIND]\n");
    return 2;
  }
  const fs::path root = argv[1];
  int classes = 3, n_train = 12, n_val = 6;
  std::string bad;
  for (int i = 2; i + 1 < argc; i += 2) {
    const std::string k = argv[i], v = argv[i + 1];
    if (k == "--classes")
      classes = std::stoi(v);
    else if (k == "--train")
      n_train = std::stoi(v);
    else if (k == "--val")
      n_val = std::stoi(v);
    else if (k == "--bad")
      bad = v;
    else {
      std::fprintf(stderr, "minidl_make_test_tree: unknown option %s\n", k.c_str());
      return 2;
    }
  }
  if (bad == "no-images") {
    for (const char* split : {"train", "val"})
      for (int c = 0; c < classes; ++c) fs::create_directories(root / split / ("class" + std::to_string(c)));
    return 0;
  }
  for (const auto& [split, n] : {std::pair<std::string, int>{"train", n_train}, {"val", n_val}})
    for (int c = 0; c < classes; ++c)
      for (int i = 0; i < n; ++i) {
        const int w = 40 + (i * 7) % 25, h = 36 + (i * 5) % 20;
        const auto px = image(w, h, c, i + (split == "val" ? 1000 : 0));
        const fs::path dir = root / split / ("class" + std::to_string(c));
        char name[32];
        std::snprintf(name, sizeof name, "%04d", i);
        if (i % 5 == 4) {
          fs::create_directories(dir);
          stbi_write_png((dir / (std::string(name) + ".png")).string().c_str(), w, h, 3, px.data(), w * 3);
        } else {
          write(dir / (std::string(name) + ".jpg"), jpeg(px, w, h, i % 3 == 2));
        }
      }
  const fs::path val0 = root / "val" / "class0";
  if (bad == "corrupt") {
    auto j = jpeg(image(48, 48, 0, 1), 48, 48, false);
    for (size_t i = j.size() / 3; i < j.size() - 2; i += 7) j[i] = 0xFF;  // markers in the entropy-coded data
    write(val0 / "zz_corrupt.jpg", j);
  } else if (bad == "truncated") {
    auto j = jpeg(image(48, 48, 0, 1), 48, 48, false);
    j.resize(j.size() / 2);
    write(val0 / "zz_truncated.jpg", j);
  } else if (bad == "non-image") {
    write(val0 / "zz_notes.jpg", {'n', 'o', 't', ' ', 'a', 'n', ' ', 'i', 'm', 'a', 'g', 'e', '\n'});
  } else if (bad == "empty-class") {
    fs::create_directories(root / "val" / "zz_empty");
    fs::create_directories(root / "train" / "zz_empty");
  } else if (!bad.empty()) {
    std::fprintf(stderr, "minidl_make_test_tree: unknown --bad %s\n", bad.c_str());
    return 2;
  }
  return 0;
}
