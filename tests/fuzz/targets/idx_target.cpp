// Fuzz target: read_idx on a file holding the input (raw or gzip: gzread detects which), as an image file and as
// a label file. An accepted image file is then paired with a label file of matching count and read through
// MnistDataset::from_files, whose examples must be the file's pixels.
#include <cstring>

#include "data/idx.h"
#include "fuzz_targets.h"

namespace minidl::fuzz {
namespace {

void require_consistent(const data::IdxArray& a, size_t rank) {
  FUZZ_REQUIRE(a.dims.size() == rank, "rank ", a.dims.size(), " instead of ", rank);
  int64_t total = 1;
  for (int64_t d : a.dims) {
    FUZZ_REQUIRE(d > 0, "dimension ", d, " in ", shape_str(a.dims));
    total *= d;
  }
  FUZZ_REQUIRE(a.data.size() == static_cast<size_t>(total), a.data.size(), " bytes for dims ", shape_str(a.dims));
}

}  // namespace

Outcome fuzz_idx(const uint8_t* data, size_t size) {
  Outcome out;
  const std::string path = scratch_file("idx", data, size);
  attempt(out, [&] { require_consistent(data::read_idx(path, data::kIdxLabelMagic), 1); });
  data::IdxArray images;
  attempt(out, [&] {
    images = data::read_idx(path, data::kIdxImageMagic);
    require_consistent(images, 3);
  });
  if (images.dims.empty()) return out;

  const int64_t n = images.dims[0], rows = images.dims[1], cols = images.dims[2];
  std::vector<uint8_t> labels = {0, 0, 8, 1, 0, 0, 0, 0};  // label magic, then the big-endian count
  for (int i = 0; i < 4; ++i) labels[4 + i] = static_cast<uint8_t>(n >> (24 - 8 * i));
  for (int64_t i = 0; i < n; ++i) labels.push_back(static_cast<uint8_t>(i % 10));
  const std::string label_path = scratch_file("idx-labels", labels.data(), labels.size());
  attempt(out, [&] {
    const data::MnistDataset ds = data::MnistDataset::from_files({path, label_path}, "fuzz");
    FUZZ_REQUIRE(ds.size() == n && ds.rows() == rows && ds.cols() == cols, ds.describe());
    for (int64_t i : {int64_t{0}, n - 1}) {
      const data::Example ex = ds.get(i);
      FUZZ_REQUIRE(ex.image.sizes() == (Shape{rows, cols, 1}), "example ", i, " has shape ",
                   shape_str(ex.image.sizes()));
      FUZZ_REQUIRE(ex.label == i % 10, "example ", i, " has label ", ex.label);
      FUZZ_REQUIRE(
          std::memcmp(ex.image.raw_data(), images.data.data() + i * rows * cols, static_cast<size_t>(rows * cols)) == 0,
          "example ", i, " pixels differ from the file");
    }
  });
  return out;
}

}  // namespace minidl::fuzz
