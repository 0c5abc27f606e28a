// IDX reader (see idx.h). The format: a big-endian magic number 0x000008NN (0x08 = unsigned byte data, NN =
// number of dims), NN big-endian uint32 dimensions, then the data. gzread reads gzip and raw files alike, so
// compression is detected, not configured. A build without zlib (MINIDL_HAVE_ZLIB off) reads raw files with
// stdio and refuses a gzip file with one line saying so.
#include "data/idx.h"

#if defined(MINIDL_HAVE_ZLIB)
#include <zlib.h>
#endif

#include <algorithm>
#include <cerrno>
#include <climits>
#include <cstdio>
#include <cstring>
#include <memory>

#include "core/build_features.h"
#include "core/error.h"
#include "data/file_io.h"

namespace minidl::data {

namespace {

std::string hex32(uint32_t v) {
  char buf[16];
  std::snprintf(buf, sizeof buf, "0x%08X", v);
  return buf;
}

#if defined(MINIDL_HAVE_ZLIB)
// One gz stream with position tracking, so every error can say where in the (uncompressed) file it happened.
class GzReader {
 public:
  explicit GzReader(const std::string& path) : path_(path) {
    MINIDL_CHECK(detail::file_exists(path), "IDX: file '", path, "' does not exist");
    f_ = gzopen(path.c_str(), "rb");
    MINIDL_CHECK(f_ != nullptr, "IDX: cannot open '", path, "': ", std::strerror(errno));
    gzbuffer(f_, 1 << 17);
  }
  ~GzReader() {
    if (f_) gzclose(f_);
  }
  GzReader(const GzReader&) = delete;
  GzReader& operator=(const GzReader&) = delete;

  // Reads up to n bytes; returns how many were read (fewer only at end of file). A zlib error throws.
  int64_t read(uint8_t* out, int64_t n) {
    int64_t got = 0;
    while (got < n) {
      const auto chunk = static_cast<unsigned>(std::min<int64_t>(n - got, 1 << 24));
      const int r = gzread(f_, out + got, chunk);
      if (r < 0) {
        int errnum = 0;
        const char* msg = gzerror(f_, &errnum);
        MINIDL_FAIL("IDX: '", path_, "': gzip error at uncompressed offset ", offset_ + got, ": ",
                    errnum == Z_ERRNO ? std::strerror(errno) : msg);
      }
      if (r == 0) break;
      got += r;
    }
    offset_ += got;
    return got;
  }
  int64_t offset() const { return offset_; }

 private:
  std::string path_;
  gzFile f_ = nullptr;
  int64_t offset_ = 0;
};
#else
// Without zlib: raw files only, through stdio, with the same interface. A gzip file (magic 1F 8B) is refused
// before its compressed bytes could be misread as an IDX header.
class GzReader {
 public:
  explicit GzReader(const std::string& path) : path_(path) {
    MINIDL_CHECK(detail::file_exists(path), "IDX: file '", path, "' does not exist");
    f_ = std::fopen(path.c_str(), "rb");
    MINIDL_CHECK(f_ != nullptr, "IDX: cannot open '", path, "': ", std::strerror(errno));
    uint8_t magic[2] = {0, 0};
    const size_t n = std::fread(magic, 1, 2, f_);
    if (n == 2 && magic[0] == 0x1F && magic[1] == 0x8B)
      MINIDL_FAIL("IDX: '", path, "' is gzip-compressed, but minidl was built without zlib: gzip'd IDX files are ",
                  "unavailable (gunzip it; an uncompressed file next to it is read first)");
    std::rewind(f_);
  }
  ~GzReader() {
    if (f_) std::fclose(f_);
  }
  GzReader(const GzReader&) = delete;
  GzReader& operator=(const GzReader&) = delete;

  int64_t read(uint8_t* out, int64_t n) {
    const size_t got = std::fread(out, 1, static_cast<size_t>(n), f_);
    MINIDL_CHECK(got == static_cast<size_t>(n) || !std::ferror(f_), "IDX: '", path_, "': read error at offset ",
                 offset_ + static_cast<int64_t>(got), ": ", std::strerror(errno));
    offset_ += static_cast<int64_t>(got);
    return static_cast<int64_t>(got);
  }
  int64_t offset() const { return offset_; }

 private:
  std::string path_;
  std::FILE* f_ = nullptr;
  int64_t offset_ = 0;
};
#endif

uint32_t be32(const uint8_t* p) {
  return (uint32_t{p[0]} << 24) | (uint32_t{p[1]} << 16) | (uint32_t{p[2]} << 8) | uint32_t{p[3]};
}

}  // namespace

IdxArray read_idx(const std::string& path, uint32_t expected_magic) {
  const char* kind = expected_magic == kIdxImageMagic   ? "an IDX image file"
                     : expected_magic == kIdxLabelMagic ? "an IDX label file"
                                                        : "an IDX file";
  const char* what = expected_magic == kIdxImageMagic   ? "pixel data"
                     : expected_magic == kIdxLabelMagic ? "label data"
                                                        : "data";
  GzReader in(path);
  uint8_t head[4];
  const int64_t got_head = in.read(head, 4);
  MINIDL_CHECK(got_head == 4, "IDX: '", path, "' is truncated: ", got_head,
               " bytes, too short for the 4-byte magic "
               "number of ",
               kind);
  const uint32_t magic = be32(head);
  MINIDL_CHECK(magic == expected_magic, "IDX: '", path, "': wrong magic number ", hex32(magic), " (expected ",
               hex32(expected_magic), " for ", kind, ")");

  IdxArray arr;
  const int ndims = static_cast<int>(magic & 0xFF);
  std::vector<uint8_t> dimbytes(static_cast<size_t>(4 * ndims));
  const int64_t got_dims = in.read(dimbytes.data(), 4 * ndims);
  MINIDL_CHECK(got_dims == 4 * ndims, "IDX: '", path, "' is truncated: expected ", 4 * ndims,
               " bytes of dimensions after the magic number, got ", got_dims);
  int64_t total = 1;
  for (int d = 0; d < ndims; ++d) {
    const int64_t dim = be32(dimbytes.data() + 4 * d);
    // 2^40 bytes is far beyond any real IDX file; the bound is checked by division, so the product itself can
    // never overflow (fuzzing found `total * dim` overflowing for 2^40 x 2^31 before).
    MINIDL_CHECK(dim > 0 && dim < (int64_t{1} << 31) && dim <= (int64_t{1} << 40) / total, "IDX: '", path,
                 "': implausible dimension ", d, " = ", dim);
    total *= dim;
    arr.dims.push_back(dim);
  }

  // Read in bounded chunks rather than allocating `total` up front: the dimensions are only a claim, and a
  // 16-byte file claiming 2^40 bytes must fail as truncated, not allocate a terabyte first.
  constexpr int64_t kChunk = int64_t{1} << 22;
  int64_t got = 0;
  while (got < total) {
    const int64_t want = std::min(kChunk, total - got);
    arr.data.resize(static_cast<size_t>(got + want));
    const int64_t r = in.read(arr.data.data() + got, want);
    got += r;
    if (r < want) break;
  }
  arr.data.resize(static_cast<size_t>(got));
  MINIDL_CHECK(got == total, "IDX: '", path, "' is truncated: expected ", total, " bytes of ", what, " (",
               shape_str(arr.dims), "), got ", got);
  uint8_t extra[1];
  MINIDL_CHECK(in.read(extra, 1) == 0, "IDX: '", path, "' has unexpected bytes after the ", total, " bytes of ", what,
               " (dimensions ", shape_str(arr.dims), "); not ", kind, "?");
  return arr;
}

MnistFiles MnistDataset::split_files(const std::string& root, bool train, const std::string& name) {
  detail::require_directory(root, name.c_str());
  const std::string prefix = train ? "train" : "t10k";
  auto find = [&](const std::string& stem) {
    // The common spellings: Debian/Fashion-MNIST's "train-images-idx3-ubyte(.gz)" and the occasional
    // "train-images.idx3-ubyte" of unpacked MNIST archives.
    const std::string base = detail::path_join(root, prefix + "-" + stem);
    std::string dotted = stem;
    dotted[dotted.find('-')] = '.';
    std::vector<std::string> cands = {base + ".gz", base, detail::path_join(root, prefix + "-" + dotted),
                                      detail::path_join(root, prefix + "-" + dotted + ".gz")};
    // Without zlib the uncompressed spellings come first, so a directory holding both still loads.
    if (!build_features().zlib)
      std::stable_partition(cands.begin(), cands.end(), [](const std::string& c) {
        return c.size() < 3 || c.compare(c.size() - 3, 3, ".gz") != 0;
      });
    for (const std::string& cand : cands)
      if (detail::file_exists(cand)) return cand;
    MINIDL_FAIL(name, ": missing file '", base, ".gz' (or uncompressed '", base, "') in '", root, "'");
  };
  return {find("images-idx3-ubyte"), find("labels-idx1-ubyte")};
}

MnistDataset::MnistDataset(const std::string& root, bool train, std::string name)
    : MnistDataset(split_files(root, train, name), name, train ? "train" : "test") {}

MnistDataset MnistDataset::from_files(const MnistFiles& files, std::string name) {
  return MnistDataset(files, std::move(name), "files");
}

MnistDataset::MnistDataset(const MnistFiles& files, std::string name, std::string split)
    : name_(std::move(name)), split_(std::move(split)) {
  IdxArray images = read_idx(files.images, kIdxImageMagic);
  IdxArray labels = read_idx(files.labels, kIdxLabelMagic);
  MINIDL_CHECK(labels.dims[0] == images.dims[0], name_, ": label file '", files.labels, "' has ", labels.dims[0],
               " labels but image file '", files.images, "' has ", images.dims[0], " images");
  rows_ = images.dims[1];
  cols_ = images.dims[2];
  pixels_ = std::move(images.data);
  labels_.assign(labels.data.begin(), labels.data.end());
  for (int64_t l : labels_) num_classes_ = std::max(num_classes_, l + 1);
}

Example MnistDataset::get(int64_t index) const {
  detail::check_index(name_.c_str(), index, size());
  const int64_t n = rows_ * cols_;
  Tensor img = empty({rows_, cols_, 1}, TensorOptions{}.dtype(DType::u8));
  std::memcpy(img.data<uint8_t>(), pixels_.data() + index * n, static_cast<size_t>(n));
  return {img, labels_[static_cast<size_t>(index)]};
}

std::string MnistDataset::describe() const {
  return ::minidl::detail::concat(name_, " ", split_, " (", size(), " images ", rows_, "x", cols_, ")");
}

}  // namespace minidl::data
