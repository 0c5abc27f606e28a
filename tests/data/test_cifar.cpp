// CIFAR-10/100 binary reader on tiny files written here: pixel layout (planar on disk -> HWC), labels, split
// resolution, and the errors for a truncated file, a bad label and a missing directory.
#include <doctest/doctest.h>

#include <string>

#include "data/cifar.h"
#include "temp_dir.h"

using namespace minidl;
using namespace minidl::data;
using minidl_test::TempDir;

namespace {

// Pixel value of record r (global index), channel c, pixel p (= y * 32 + x): distinct enough to catch a
// transposed layout or an off-by-one record.
uint8_t pix(int r, int c, int p) { return static_cast<uint8_t>((r * 37 + c * 101 + p * 3) % 256); }

std::vector<uint8_t> cifar_records(int first, int count, int label_bytes, const std::vector<std::vector<int>>& labels) {
  std::vector<uint8_t> out;
  for (int r = first; r < first + count; ++r) {
    for (int l = 0; l < label_bytes; ++l)
      out.push_back(static_cast<uint8_t>(labels[static_cast<size_t>(r)][static_cast<size_t>(l)]));
    for (int c = 0; c < 3; ++c)
      for (int p = 0; p < 1024; ++p) out.push_back(pix(r, c, p));
  }
  return out;
}

void check_image(const Example& ex, int r) {
  REQUIRE(ex.image.dtype() == DType::u8);
  REQUIRE(ex.image.sizes() == Shape{32, 32, 3});
  const uint8_t* d = ex.image.data<uint8_t>();
  int bad = 0;
  for (int y = 0; y < 32; ++y)
    for (int x = 0; x < 32; ++x)
      for (int c = 0; c < 3; ++c) bad += d[(y * 32 + x) * 3 + c] != pix(r, c, y * 32 + x);
  CHECK(bad == 0);
}

}  // namespace

TEST_CASE("CIFAR-10: train split reads the five batch files in order, test split reads test_batch") {
  TempDir tmp;
  std::vector<std::vector<int>> labels;
  for (int r = 0; r < 13; ++r) labels.push_back({(r * 3) % 10});
  // Records 0..9 in the five training files (2 each), 10..12 in the test file.
  for (int b = 0; b < 5; ++b)
    minidl_test::write_bytes(tmp.file("data_batch_" + std::to_string(b + 1) + ".bin"),
                             cifar_records(2 * b, 2, 1, labels));
  minidl_test::write_bytes(tmp.file("test_batch.bin"), cifar_records(10, 3, 1, labels));

  CifarDataset train(tmp.str(), true);
  REQUIRE(train.size() == 10);
  CHECK(train.num_classes() == 10);
  for (int r = 0; r < 10; ++r) {
    Example ex = train.get(r);
    CHECK(ex.label == (r * 3) % 10);
    check_image(ex, r);
  }
  CifarDataset test(tmp.str(), false);
  REQUIRE(test.size() == 3);
  for (int r = 0; r < 3; ++r) {
    CHECK(test.get(r).label == ((r + 10) * 3) % 10);
    check_image(test.get(r), r + 10);
  }
  CHECK(test.describe().find("CIFAR-10 test (3 images") != std::string::npos);
  CHECK_THROWS_AS(test.get(3), Error);
  CHECK_THROWS_AS(test.get(-1), Error);
}

TEST_CASE("CIFAR-10: the archive's folder under root is found") {
  TempDir tmp;
  std::vector<std::vector<int>> labels = {{4}, {9}};
  minidl_test::write_bytes(tmp.file("cifar-10-batches-bin/test_batch.bin"), cifar_records(0, 2, 1, labels));
  CifarDataset test(tmp.str(), false);
  CHECK(test.size() == 2);
  CHECK(test.get(1).label == 9);
}

TEST_CASE("CIFAR-100: fine labels by default, coarse labels on request") {
  TempDir tmp;
  std::vector<std::vector<int>> labels = {{3, 77}, {19, 99}, {0, 5}};  // {coarse, fine}
  minidl_test::write_bytes(tmp.file("train.bin"), cifar_records(0, 3, 2, labels));
  minidl_test::write_bytes(tmp.file("test.bin"), cifar_records(0, 1, 2, labels));
  CifarDataset fine(tmp.str(), true, CifarVariant::cifar100);
  REQUIRE(fine.size() == 3);
  CHECK(fine.num_classes() == 100);
  CHECK(fine.get(0).label == 77);
  CHECK(fine.get(1).label == 99);
  CHECK(fine.get(2).label == 5);
  for (int r = 0; r < 3; ++r) check_image(fine.get(r), r);
  CifarDataset coarse(tmp.str(), true, CifarVariant::cifar100, true);
  CHECK(coarse.num_classes() == 20);
  CHECK(coarse.get(0).label == 3);
  CHECK(coarse.get(1).label == 19);
  CHECK(CifarDataset(tmp.str(), false, CifarVariant::cifar100).size() == 1);
  CHECK_THROWS_AS(CifarDataset(tmp.str(), true, CifarVariant::cifar10, true), Error);
}

TEST_CASE("CIFAR: a truncated file is an error naming the file, its size and the record size") {
  TempDir tmp;
  std::vector<std::vector<int>> labels = {{1}, {2}};
  auto bytes = cifar_records(0, 2, 1, labels);
  bytes.resize(bytes.size() - 5);  // 6141 bytes
  const std::string path = tmp.file("test_batch.bin");
  minidl_test::write_bytes(path, bytes);
  try {
    CifarDataset ds(tmp.str(), false);
    FAIL("expected an error");
  } catch (const Error& e) {
    const std::string msg = e.what();
    CHECK(msg.find(path) != std::string::npos);
    CHECK(msg.find("6141 bytes") != std::string::npos);
    CHECK(msg.find("3073-byte records") != std::string::npos);
  }
  // CIFAR-100 records are 3074 bytes: a CIFAR-10 file read as CIFAR-100 fails the same check.
  minidl_test::write_bytes(tmp.file("c100/test.bin"), cifar_records(0, 2, 1, labels));
  CHECK_THROWS_WITH_AS(CifarDataset(tmp.str() + "/c100", false, CifarVariant::cifar100),
                       doctest::Contains("3074-byte records"), Error);
  // An empty file too.
  minidl_test::write_bytes(tmp.file("empty/test_batch.bin"), {});
  CHECK_THROWS_WITH_AS(CifarDataset(tmp.str() + "/empty", false), doctest::Contains("is empty"), Error);
}

TEST_CASE("CIFAR: an out-of-range label is an error naming the file and the record offset") {
  TempDir tmp;
  std::vector<std::vector<int>> labels = {{1}, {10}};
  const std::string path = tmp.file("test_batch.bin");
  minidl_test::write_bytes(path, cifar_records(0, 2, 1, labels));
  try {
    CifarDataset ds(tmp.str(), false);
    FAIL("expected an error");
  } catch (const Error& e) {
    const std::string msg = e.what();
    CHECK(msg.find(path) != std::string::npos);
    CHECK(msg.find("offset 3073") != std::string::npos);
    CHECK(msg.find("label 10") != std::string::npos);
  }
}

TEST_CASE("CIFAR: a missing directory or file is an error naming the path") {
  TempDir tmp;
  const std::string missing = tmp.str() + "/no_such_dir";
  CHECK_THROWS_WITH_AS(CifarDataset(missing, true), doctest::Contains(missing.c_str()), Error);
  CHECK_THROWS_WITH_AS(CifarDataset(missing, true), doctest::Contains("does not exist"), Error);
  // Directory present, but data_batch_3.bin is missing.
  std::vector<std::vector<int>> labels = {{1}, {2}};
  for (int b : {1, 2, 4, 5})
    minidl_test::write_bytes(tmp.file("d/data_batch_" + std::to_string(b) + ".bin"), cifar_records(0, 1, 1, labels));
  CHECK_THROWS_WITH_AS(CifarDataset(tmp.str() + "/d", true), doctest::Contains("data_batch_3.bin"), Error);
  // Explicit file list.
  CHECK_THROWS_WITH_AS(CifarDataset(std::vector<std::string>{tmp.str() + "/nope.bin"}, CifarVariant::cifar10),
                       doctest::Contains("nope.bin"), Error);
}
