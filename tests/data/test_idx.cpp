// IDX (MNIST-format) reader on tiny raw and gzip files written here, its errors (wrong magic, truncated data,
// label/image count mismatch, trailing bytes, missing file), and Debian's Fashion-MNIST test split when present.
// In a build without zlib the gzip cases report skipped, and the no-zlib reader's own case runs instead.
#include <doctest/doctest.h>
#if defined(MINIDL_HAVE_ZLIB)
#include <zlib.h>
#endif

#include <filesystem>
#include <string>

#include "core/build_features.h"
#include "data/idx.h"
#include "temp_dir.h"
#include "test_skip.h"

using namespace minidl;
using namespace minidl::data;
using minidl_test::TempDir;

namespace {

void put_be32(std::vector<uint8_t>& v, uint32_t x) {
  for (int s = 24; s >= 0; s -= 8) v.push_back(static_cast<uint8_t>(x >> s));
}

uint8_t pix(int i, int y, int x) { return static_cast<uint8_t>(i * 50 + y * 10 + x); }

// count images of rows x cols with pixel (i, y, x) = pix(i, y, x).
std::vector<uint8_t> idx_images(int count, int rows, int cols) {
  std::vector<uint8_t> v;
  put_be32(v, kIdxImageMagic);
  put_be32(v, static_cast<uint32_t>(count));
  put_be32(v, static_cast<uint32_t>(rows));
  put_be32(v, static_cast<uint32_t>(cols));
  for (int i = 0; i < count; ++i)
    for (int y = 0; y < rows; ++y)
      for (int x = 0; x < cols; ++x) v.push_back(pix(i, y, x));
  return v;
}

std::vector<uint8_t> idx_labels(const std::vector<uint8_t>& labels) {
  std::vector<uint8_t> v;
  put_be32(v, kIdxLabelMagic);
  put_be32(v, static_cast<uint32_t>(labels.size()));
  v.insert(v.end(), labels.begin(), labels.end());
  return v;
}

#if defined(MINIDL_HAVE_ZLIB)
void write_gz(const std::string& path, const std::vector<uint8_t>& bytes) {
  gzFile f = gzopen(path.c_str(), "wb");
  REQUIRE(f != nullptr);
  REQUIRE(gzwrite(f, bytes.data(), static_cast<unsigned>(bytes.size())) == static_cast<int>(bytes.size()));
  gzclose(f);
}
#else
void write_gz(const std::string&, const std::vector<uint8_t>&) { FAIL("write_gz: this build has no zlib"); }
#endif

#define SKIP_WITHOUT_ZLIB() \
  if (!build_features().zlib) MINIDL_SKIP("minidl was built without zlib (gzip'd IDX files)")

void check_dataset(const MnistDataset& ds) {
  REQUIRE(ds.size() == 3);
  CHECK(ds.rows() == 2);
  CHECK(ds.cols() == 4);
  CHECK(ds.num_classes() == 8);  // max label 7 + 1
  const std::vector<int64_t> labels = {7, 0, 3};
  for (int i = 0; i < 3; ++i) {
    Example ex = ds.get(i);
    CHECK(ex.label == labels[static_cast<size_t>(i)]);
    REQUIRE(ex.image.sizes() == Shape{2, 4, 1});
    REQUIRE(ex.image.dtype() == DType::u8);
    const uint8_t* d = ex.image.data<uint8_t>();
    for (int y = 0; y < 2; ++y)
      for (int x = 0; x < 4; ++x) CHECK(d[y * 4 + x] == pix(i, y, x));
  }
}

}  // namespace

TEST_CASE("IDX: raw files") {
  TempDir tmp;
  minidl_test::write_bytes(tmp.file("train-images-idx3-ubyte"), idx_images(3, 2, 4));
  minidl_test::write_bytes(tmp.file("train-labels-idx1-ubyte"), idx_labels({7, 0, 3}));
  MnistDataset ds(tmp.str(), true);
  check_dataset(ds);
  CHECK(ds.describe() == "MNIST train (3 images 2x4)");
  IdxArray arr = read_idx(tmp.file("train-images-idx3-ubyte"), kIdxImageMagic);
  CHECK(arr.dims == std::vector<int64_t>{3, 2, 4});
  CHECK(arr.data.size() == 24);
}

TEST_CASE("IDX: gzip-compressed files, preferred over raw ones of the same name") {
  SKIP_WITHOUT_ZLIB();
  TempDir tmp;
  write_gz(tmp.file("t10k-images-idx3-ubyte.gz"), idx_images(3, 2, 4));
  write_gz(tmp.file("t10k-labels-idx1-ubyte.gz"), idx_labels({7, 0, 3}));
  // A decoy raw file with different contents: the .gz must win.
  minidl_test::write_bytes(tmp.file("t10k-labels-idx1-ubyte"), idx_labels({1, 1, 1}));
  // The file really is compressed (gzip magic 1f 8b).
  auto raw = minidl_test::read_bytes(tmp.file("t10k-images-idx3-ubyte.gz"));
  REQUIRE(raw.size() > 2);
  CHECK(raw[0] == 0x1f);
  CHECK(raw[1] == 0x8b);
  check_dataset(MnistDataset(tmp.str(), false));
  // Explicit files.
  check_dataset(
      MnistDataset::from_files({tmp.file("t10k-images-idx3-ubyte.gz"), tmp.file("t10k-labels-idx1-ubyte.gz")}));
}

TEST_CASE("IDX: a wrong magic number names the file, the magic found and the one expected") {
  TempDir tmp;
  const std::string images = tmp.file("train-images-idx3-ubyte"), labels = tmp.file("train-labels-idx1-ubyte");
  // Swapped: the label file where images belong.
  minidl_test::write_bytes(images, idx_labels({7, 0, 3}));
  minidl_test::write_bytes(labels, idx_images(3, 2, 4));
  try {
    MnistDataset ds(tmp.str(), true);
    FAIL("expected an error");
  } catch (const Error& e) {
    const std::string msg = e.what();
    CHECK(msg.find(images) != std::string::npos);
    CHECK(msg.find("wrong magic number 0x00000801 (expected 0x00000803 for an IDX image file)") != std::string::npos);
  }
  CHECK_THROWS_WITH_AS(read_idx(labels, kIdxLabelMagic),
                       doctest::Contains("wrong magic number 0x00000803 (expected 0x00000801 for an IDX label file)"),
                       Error);
  // A gzip'd PNG-like header also fails on the magic.
  if (build_features().zlib) {
    write_gz(tmp.file("junk.gz"), {0x89, 'P', 'N', 'G', 1, 2, 3, 4});
    CHECK_THROWS_WITH_AS(read_idx(tmp.file("junk.gz"), kIdxImageMagic), doctest::Contains("0x89504E47"), Error);
  }
}

TEST_CASE("IDX: truncated data, short headers and trailing bytes are errors naming the file") {
  TempDir tmp;
  auto images = idx_images(3, 2, 4);
  auto cut = images;
  cut.resize(cut.size() - 5);
  const std::string p = tmp.file("cut-idx3-ubyte");
  minidl_test::write_bytes(p, cut);
  CHECK_THROWS_WITH_AS(read_idx(p, kIdxImageMagic),
                       doctest::Contains("truncated: expected 24 bytes of pixel data ([3, 2, 4]), got 19"), Error);
  CHECK_THROWS_WITH_AS(read_idx(p, kIdxImageMagic), doctest::Contains(p.c_str()), Error);
  // The same, compressed.
  if (build_features().zlib) {
    write_gz(tmp.file("cut-idx3-ubyte.gz"), cut);
    CHECK_THROWS_WITH_AS(read_idx(tmp.file("cut-idx3-ubyte.gz"), kIdxImageMagic),
                         doctest::Contains("expected 24 bytes of pixel data"), Error);
  }
  // Header cut inside the dimensions.
  minidl_test::write_bytes(tmp.file("head"), std::vector<uint8_t>(images.begin(), images.begin() + 9));
  CHECK_THROWS_WITH_AS(read_idx(tmp.file("head"), kIdxImageMagic), doctest::Contains("bytes of dimensions"), Error);
  minidl_test::write_bytes(tmp.file("tiny"), {0, 0});
  CHECK_THROWS_WITH_AS(read_idx(tmp.file("tiny"), kIdxImageMagic), doctest::Contains("too short"), Error);
  // Trailing garbage.
  auto longer = images;
  longer.push_back(42);
  minidl_test::write_bytes(tmp.file("long"), longer);
  CHECK_THROWS_WITH_AS(read_idx(tmp.file("long"), kIdxImageMagic), doctest::Contains("unexpected bytes after"), Error);
  // A zero dimension.
  auto zero = idx_images(3, 2, 4);
  zero[11] = 0;  // rows = 0
  minidl_test::write_bytes(tmp.file("zero"), zero);
  CHECK_THROWS_WITH_AS(read_idx(tmp.file("zero"), kIdxImageMagic), doctest::Contains("implausible dimension 1"), Error);
}

TEST_CASE("IDX: a corrupt gzip stream is an error naming the file") {
  SKIP_WITHOUT_ZLIB();
  TempDir tmp;
  // Large enough that the damage lands in the deflate data, not the gzip header.
  write_gz(tmp.file("x.gz"), idx_images(40, 28, 28));
  auto bytes = minidl_test::read_bytes(tmp.file("x.gz"));
  for (size_t i = 20; i < bytes.size() - 8; i += 7) bytes[i] ^= 0x5A;
  minidl_test::write_bytes(tmp.file("bad.gz"), bytes);
  CHECK_THROWS_WITH_AS(read_idx(tmp.file("bad.gz"), kIdxImageMagic), doctest::Contains(tmp.file("bad.gz").c_str()),
                       Error);
}

TEST_CASE("IDX: label count must equal image count, missing files and directories are named") {
  TempDir tmp;
  minidl_test::write_bytes(tmp.file("train-images-idx3-ubyte"), idx_images(3, 2, 4));
  minidl_test::write_bytes(tmp.file("train-labels-idx1-ubyte"), idx_labels({7, 0}));
  CHECK_THROWS_WITH_AS(MnistDataset(tmp.str(), true), doctest::Contains("has 2 labels but image file"), Error);

  const std::string missing = tmp.str() + "/nowhere";
  CHECK_THROWS_WITH_AS(MnistDataset(missing, true, "Fashion-MNIST"),
                       doctest::Contains(("Fashion-MNIST: data directory '" + missing + "' does not exist").c_str()),
                       Error);
  // Directory without the test split.
  CHECK_THROWS_WITH_AS(MnistDataset(tmp.str(), false), doctest::Contains("t10k-images-idx3-ubyte.gz"), Error);
  CHECK_THROWS_WITH_AS(read_idx(tmp.str() + "/none.gz", kIdxImageMagic), doctest::Contains("none.gz"), Error);
}

TEST_CASE("IDX without zlib: a gzip file is refused naming zlib, the uncompressed file next to it is read") {
  if (build_features().zlib) MINIDL_SKIP("minidl was built with zlib (the gzip cases above cover it)");
  TempDir tmp;
  // gzip magic 1F 8B followed by bytes that could never be read as IDX.
  minidl_test::write_bytes(tmp.file("t10k-images-idx3-ubyte.gz"), {0x1F, 0x8B, 8, 0, 0, 0, 0, 0, 0, 3});
  minidl_test::write_bytes(tmp.file("t10k-labels-idx1-ubyte.gz"), {0x1F, 0x8B, 8, 0, 0, 0, 0, 0, 0, 3});
  CHECK_THROWS_WITH_AS(read_idx(tmp.file("t10k-images-idx3-ubyte.gz"), kIdxImageMagic),
                       doctest::Contains("is gzip-compressed, but minidl was built without zlib"), Error);
  CHECK_THROWS_WITH_AS(MnistDataset(tmp.str(), false), doctest::Contains("built without zlib"), Error);
  // With the uncompressed files beside them, those are read.
  minidl_test::write_bytes(tmp.file("t10k-images-idx3-ubyte"), idx_images(3, 2, 4));
  minidl_test::write_bytes(tmp.file("t10k-labels-idx1-ubyte"), idx_labels({7, 0, 3}));
  check_dataset(MnistDataset(tmp.str(), false));
}

TEST_CASE("Fashion-MNIST (Debian dataset-fashion-mnist): t10k split") {
  SKIP_WITHOUT_ZLIB();
  if (!std::filesystem::exists(kFashionMnistDefaultDir + "/t10k-images-idx3-ubyte.gz")) {
    MINIDL_SKIP("Fashion-MNIST not installed at " << kFashionMnistDefaultDir
                                                  << " (apt-get install dataset-fashion-mnist)");
  }
  MnistDataset test = fashion_mnist(false);
  REQUIRE(test.size() == 10000);
  CHECK(test.rows() == 28);
  CHECK(test.cols() == 28);
  CHECK(test.num_classes() == 10);
  // The test split is balanced: exactly 1000 images per class.
  std::vector<int> per_class(10, 0);
  double sum = 0;
  for (int64_t i = 0; i < test.size(); ++i) {
    Example ex = test.get(i);
    REQUIRE(ex.label >= 0);
    REQUIRE(ex.label < 10);
    ++per_class[static_cast<size_t>(ex.label)];
    if (i < 1000) {
      const uint8_t* d = ex.image.data<uint8_t>();
      for (int p = 0; p < 784; ++p) sum += d[p];
    }
  }
  for (int c = 0; c < 10; ++c) CHECK(per_class[static_cast<size_t>(c)] == 1000);
  // Images are real pictures, not zeros: the mean pixel of Fashion-MNIST is about 0.286 * 255 = 73.
  const double mean = sum / (1000.0 * 784);
  CHECK(mean > 60);
  CHECK(mean < 85);
}
