// Safetensors reading and writing (the checkpoint format; PyTorch's `safetensors` package reads what we write).
// Reading trusts nothing in the file: header length, JSON, dtypes, shapes and offsets are all validated before a
// byte of tensor data is copied, and every problem is a minidl::Error naming the file. Writing goes through a
// temporary file, fsync and rename, so a run killed mid-save never leaves a half-written checkpoint behind.
#include "tensor/safetensors.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <bit>
#include <cerrno>
#include <charconv>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>
#include <nlohmann/json.hpp>
#include <optional>
#include <thread>
#include <vector>

#include "core/env.h"

namespace minidl {
namespace {

// The raw data is little-endian and we copy it byte for byte.
static_assert(std::endian::native == std::endian::little, "safetensors I/O assumes a little-endian host");

// The reference implementation refuses headers above 100 MB; a bigger length means a corrupt or foreign file.
constexpr uint64_t kMaxHeaderBytes = 100ull * 1000 * 1000;

const char* st_dtype_name(DType t) {
  switch (t) {
    case DType::f32: return "F32";
    case DType::f64: return "F64";
    case DType::i32: return "I32";
    case DType::i64: return "I64";
    case DType::u8: return "U8";
  }
  return "?";
}

std::optional<DType> parse_st_dtype(const std::string& s) {
  for (DType t : {DType::f32, DType::f64, DType::i32, DType::i64, DType::u8}) {
    if (s == st_dtype_name(t)) return t;
  }
  return std::nullopt;
}

// One tensor entry of the header, validated.
struct Entry {
  std::string name;
  DType dtype;
  Shape shape;
  uint64_t begin = 0, end = 0;
};

// Where the bytes come from: a file (read piecewise, so a checkpoint is never held twice) or a memory buffer.
// Callers only ask for ranges inside [0, size()), validated before they ask.
class ByteSource {
 public:
  virtual ~ByteSource() = default;
  virtual uint64_t size() const = 0;
  /// Copies [offset, offset + n) to dst; false on an I/O error.
  virtual bool read(uint64_t offset, void* dst, uint64_t n) = 0;
};

class FileSource : public ByteSource {
 public:
  explicit FileSource(std::ifstream& in, uint64_t size) : in_(in), size_(size) {}
  uint64_t size() const override { return size_; }
  bool read(uint64_t offset, void* dst, uint64_t n) override {
    in_.seekg(static_cast<std::streamoff>(offset));
    in_.read(static_cast<char*>(dst), static_cast<std::streamsize>(n));
    return in_ && static_cast<uint64_t>(in_.gcount()) == n;
  }

 private:
  std::ifstream& in_;
  uint64_t size_;
};

class MemorySource : public ByteSource {
 public:
  MemorySource(const uint8_t* bytes, size_t size) : bytes_(bytes), size_(size) {}
  uint64_t size() const override { return size_; }
  bool read(uint64_t offset, void* dst, uint64_t n) override {
    if (offset > size_ || n > size_ - offset) return false;
    if (n > 0) std::memcpy(dst, bytes_ + offset, static_cast<size_t>(n));
    return true;
  }

 private:
  const uint8_t* bytes_;
  uint64_t size_;
};

class Loader {
 public:
  explicit Loader(const std::string& path) : path_(path) {}

  template <typename... Args>
  [[noreturn]] void fail(const Args&... args) const {
    MINIDL_FAIL("load_safetensors: ", path_, ": ", args...);
  }

  SafetensorsFile load_file() {
    std::error_code ec;
    if (std::filesystem::is_directory(path_, ec)) fail("is a directory, not a safetensors file");
    std::ifstream in(path_, std::ios::binary | std::ios::ate);
    if (!in) fail("cannot open file (", std::strerror(errno), ")");
    const auto end_pos = in.tellg();
    if (end_pos < 0) fail("cannot determine the file size");
    FileSource src(in, static_cast<uint64_t>(end_pos));
    return load(src);
  }

  SafetensorsFile load(ByteSource& src) {
    const uint64_t file_size = src.size();
    if (file_size < 8) fail("file is ", file_size, " bytes, shorter than the 8-byte header length");

    unsigned char len_bytes[8];
    read_exact(src, 0, len_bytes, 8, "the header length");
    uint64_t header_len = 0;
    for (int i = 7; i >= 0; --i) header_len = (header_len << 8) | len_bytes[i];
    if (header_len > kMaxHeaderBytes) {
      fail("header length ", header_len, " is absurd (limit ", kMaxHeaderBytes, " bytes): not a safetensors file?");
    }
    if (header_len > file_size - 8) {
      fail("header length ", header_len, " exceeds the ", file_size - 8, " bytes that follow it (truncated file?)");
    }
    if (header_len < 2) fail("header length ", header_len, " is too small for a JSON object");

    std::string header(static_cast<size_t>(header_len), '\0');
    read_exact(src, 8, header.data(), header_len, "the JSON header");
    const uint64_t data_size = file_size - 8 - header_len;

    nlohmann::json j;
    try {
      j = nlohmann::json::parse(header);
    } catch (const nlohmann::json::exception& e) {
      fail("header is not valid JSON (", e.what(), ")");
    }
    if (!j.is_object()) fail("header is not a JSON object");

    SafetensorsFile out;
    std::vector<Entry> entries;
    for (auto it = j.begin(); it != j.end(); ++it) {
      if (it.key() == "__metadata__") {
        parse_metadata(it.value(), out.metadata);
      } else {
        entries.push_back(parse_entry(it.key(), it.value()));
      }
    }
    check_layout(entries, data_size);

    const uint64_t data_start = 8 + header_len;
    for (const Entry& e : entries) {
      Tensor t = empty(e.shape, TensorOptions().dtype(e.dtype));
      const uint64_t n = e.end - e.begin;
      if (n > 0) read_exact(src, data_start + e.begin, t.raw_data(), n, "the data of tensor '" + e.name + "'");
      out.tensors.emplace(e.name, std::move(t));
    }
    return out;
  }

 private:
  void read_exact(ByteSource& src, uint64_t offset, void* dst, uint64_t n, const std::string& what) const {
    if (!src.read(offset, dst, n)) fail("read error while reading ", what);
  }

  void parse_metadata(const nlohmann::json& m, Metadata& out) const {
    if (!m.is_object()) fail("\"__metadata__\" is not a JSON object");
    for (auto it = m.begin(); it != m.end(); ++it) {
      if (!it.value().is_string()) fail("\"__metadata__\" value of key '", it.key(), "' is not a string");
      out[it.key()] = it.value().get<std::string>();
    }
  }

  Entry parse_entry(const std::string& name, const nlohmann::json& v) const {
    Entry e;
    e.name = name;
    if (!v.is_object()) fail("entry of tensor '", name, "' is not a JSON object");
    for (const char* field : {"dtype", "shape", "data_offsets"}) {
      if (!v.contains(field)) fail("tensor '", name, "' is missing the field \"", field, "\"");
    }
    const auto& dt = v["dtype"];
    if (!dt.is_string()) fail("tensor '", name, "': \"dtype\" is not a string");
    auto parsed = parse_st_dtype(dt.get<std::string>());
    if (!parsed) {
      fail("tensor '", name, "' has unsupported dtype '", dt.get<std::string>(),
           "' (minidl reads F32, F64, I32, I64, U8)");
    }
    e.dtype = *parsed;

    const auto& shape = v["shape"];
    if (!shape.is_array()) fail("tensor '", name, "': \"shape\" is not an array");
    // `extent` multiplies the non-zero sizes: the strides of an empty tensor must fit in int64 too, or a shape
    // like [0, 2^62, 2^62] (found by fuzzing) overflows them.
    uint64_t numel = 1, extent = 1;
    for (const auto& d : shape) {
      if (!d.is_number_unsigned())
        fail("tensor '", name, "': shape entry ", d.dump(), " is not a non-negative integer");
      const uint64_t s = d.get<uint64_t>();
      constexpr auto kMax = static_cast<uint64_t>(std::numeric_limits<int64_t>::max());
      if (s > kMax || __builtin_mul_overflow(extent, std::max<uint64_t>(s, 1), &extent) || extent > kMax) {
        fail("tensor '", name, "': shape ", shape.dump(), " has more elements than fit in 64 bits");
      }
      numel *= s;  // <= extent
      e.shape.push_back(static_cast<int64_t>(s));
    }

    const auto& off = v["data_offsets"];
    if (!off.is_array() || off.size() != 2 || !off[0].is_number_unsigned() || !off[1].is_number_unsigned()) {
      fail("tensor '", name, "': \"data_offsets\" ", off.dump(), " is not a pair of non-negative integers");
    }
    e.begin = off[0].get<uint64_t>();
    e.end = off[1].get<uint64_t>();
    if (e.begin > e.end) fail("tensor '", name, "': data_offsets [", e.begin, ", ", e.end, "] run backwards");
    uint64_t expected = 0;
    if (__builtin_mul_overflow(numel, static_cast<uint64_t>(dtype_size(e.dtype)), &expected) ||
        e.end - e.begin != expected) {
      fail("tensor '", name, "': data_offsets [", e.begin, ", ", e.end, "] hold ", e.end - e.begin, " bytes but dtype ",
           st_dtype_name(e.dtype), " x shape ", shape_str(e.shape), " needs ", numel, " x ", dtype_size(e.dtype),
           " bytes");
    }
    return e;
  }

  // Offsets must lie inside the data section, must not overlap, and (as the reference reader demands) must
  // cover it completely: a gap or trailing bytes mean the header and the data disagree.
  void check_layout(std::vector<Entry>& entries, uint64_t data_size) const {
    std::sort(entries.begin(), entries.end(),
              [](const Entry& a, const Entry& b) { return a.begin != b.begin ? a.begin < b.begin : a.end < b.end; });
    uint64_t covered = 0;
    const Entry* prev = nullptr;
    for (const Entry& e : entries) {
      if (e.end > data_size) {
        fail("tensor '", e.name, "': data_offsets [", e.begin, ", ", e.end, "] are out of range (the data section has ",
             data_size, " bytes; truncated file?)");
      }
      if (e.begin < covered) {
        fail("tensor '", e.name, "': data_offsets [", e.begin, ", ", e.end, "] overlap tensor '", prev->name, "' [",
             prev->begin, ", ", prev->end, "]");
      }
      if (e.begin > covered) {
        fail("data bytes [", covered, ", ", e.begin, ") belong to no tensor (offsets leave a gap before '", e.name,
             "')");
      }
      if (e.end > e.begin || prev == nullptr) prev = &e;
      covered = std::max(covered, e.end);
    }
    if (covered != data_size) {
      fail("the data section has ", data_size, " bytes but the tensors cover only ", covered);
    }
  }

  std::string path_;
};

// Test-only: MINIDL_TEST_CHECKPOINT_RENAME_DELAY_MS=N makes every save sleep N ms between writing (and fsyncing)
// its temporary file and renaming it into place, so that a kill test can land a SIGKILL inside a checkpoint
// write. Unset or empty: no delay. Read on every save (cheap next to the write) so a test can set it per run.
std::chrono::milliseconds test_rename_delay() {
  const auto v = env_string("MINIDL_TEST_CHECKPOINT_RENAME_DELAY_MS");
  if (!v) return std::chrono::milliseconds(0);
  int64_t ms = -1;
  const auto [end, ec] = std::from_chars(v->data(), v->data() + v->size(), ms);
  MINIDL_CHECK(ec == std::errc() && end == v->data() + v->size() && ms >= 0 && ms <= 600000,
               "MINIDL_TEST_CHECKPOINT_RENAME_DELAY_MS: expected milliseconds in [0, 600000], got '", *v, "'");
  return std::chrono::milliseconds(ms);
}

// Closes a file descriptor and removes the temporary file unless the save completed.
struct TempFile {
  std::string path;
  int fd = -1;
  bool keep = false;
  ~TempFile() {
    if (fd >= 0) ::close(fd);
    if (!keep) ::unlink(path.c_str());
  }
};

void write_all(int fd, const void* data, size_t n, const std::string& path) {
  const char* p = static_cast<const char*>(data);
  while (n > 0) {
    const ssize_t w = ::write(fd, p, n);
    if (w < 0 && errno == EINTR) continue;
    MINIDL_CHECK(w > 0, "save_safetensors: ", path, ": write failed (", std::strerror(errno), ")");
    p += w;
    n -= static_cast<size_t>(w);
  }
}

}  // namespace

SafetensorsFile load_safetensors(const std::string& path) { return Loader(path).load_file(); }

SafetensorsFile load_safetensors(const uint8_t* bytes, size_t size, const std::string& name) {
  MINIDL_CHECK(bytes != nullptr || size == 0, "load_safetensors: ", name, ": null buffer of ", size, " bytes");
  MemorySource src(bytes, size);
  return Loader(name).load(src);
}

void save_safetensors(const std::string& path, const TensorMap& tensors, const Metadata& metadata) {
  // Host, contiguous copies of every tensor (detached, so nothing is recorded on the tape).
  std::vector<std::pair<std::string, Tensor>> host;
  host.reserve(tensors.size());
  for (const auto& [name, t] : tensors) {  // std::map: sorted names, so offsets come in name order
    MINIDL_CHECK(name != "__metadata__", "save_safetensors: ", path, ": '__metadata__' is reserved, not a tensor name");
    MINIDL_CHECK(t.defined(), "save_safetensors: ", path, ": tensor '", name, "' is undefined");
    host.emplace_back(name, t.detach().to(kCPU).contiguous());
  }

  std::string header;
  try {
    // ordered_json keeps "__metadata__" first and the tensors in name order, as Python's writer does.
    nlohmann::ordered_json j = nlohmann::ordered_json::object();
    if (!metadata.empty()) {
      nlohmann::ordered_json m = nlohmann::ordered_json::object();
      for (const auto& [k, v] : metadata) m[k] = v;
      j["__metadata__"] = std::move(m);
    }
    uint64_t offset = 0;
    for (const auto& [name, t] : host) {
      const uint64_t n = t.nbytes();
      j[name] = {{"dtype", st_dtype_name(t.dtype())}, {"shape", t.sizes()}, {"data_offsets", {offset, offset + n}}};
      offset += n;
    }
    header = j.dump();
  } catch (const nlohmann::json::exception& e) {
    MINIDL_FAIL("save_safetensors: ", path, ": cannot encode the header (", e.what(), ")");
  }
  // Pad with spaces to a multiple of 8 so the data section starts aligned (Python's writer does the same).
  header.append((8 - header.size() % 8) % 8, ' ');

  const auto rename_delay = test_rename_delay();
  TempFile tmp;
  tmp.path = path + ".tmp." + std::to_string(::getpid());
  tmp.fd = ::open(tmp.path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  MINIDL_CHECK(tmp.fd >= 0, "save_safetensors: ", path, ": cannot create the temporary file ", tmp.path, " (",
               std::strerror(errno), ")");
  unsigned char len_bytes[8];
  uint64_t len = header.size();
  for (int i = 0; i < 8; ++i) len_bytes[i] = static_cast<unsigned char>((len >> (8 * i)) & 0xff);
  write_all(tmp.fd, len_bytes, 8, path);
  write_all(tmp.fd, header.data(), header.size(), path);
  for (const auto& [name, t] : host) {
    if (t.nbytes() > 0) write_all(tmp.fd, t.raw_data(), t.nbytes(), path);
  }
  MINIDL_CHECK(::fsync(tmp.fd) == 0, "save_safetensors: ", path, ": fsync failed (", std::strerror(errno), ")");
  const int rc = ::close(tmp.fd);
  tmp.fd = -1;
  MINIDL_CHECK(rc == 0, "save_safetensors: ", path, ": close failed (", std::strerror(errno), ")");
  if (rename_delay.count() > 0) std::this_thread::sleep_for(rename_delay);
  MINIDL_CHECK(::rename(tmp.path.c_str(), path.c_str()) == 0, "save_safetensors: ", path, ": cannot rename ", tmp.path,
               " to it (", std::strerror(errno), ")");
  tmp.keep = true;
  // Persist the rename itself: fsync the directory (best effort; some filesystems refuse it).
  const auto slash = path.find_last_of('/');
  const std::string dir = slash == std::string::npos ? "." : (slash == 0 ? "/" : path.substr(0, slash));
  const int dfd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd >= 0) {
    ::fsync(dfd);
    ::close(dfd);
  }
}

}  // namespace minidl
