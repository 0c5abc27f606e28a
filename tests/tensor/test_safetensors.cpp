// Safetensors: round trips of every dtype, files laid out by hand the way Python's writer lays them out, the
// released APoT checkpoint, and one test per malformation, each checking that the error names the file and the
// problem.
#include <doctest/doctest.h>
#include <unistd.h>

#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include "tensor/safetensors.h"
#include "tensor/tensor.h"
#include "test_skip.h"

using namespace minidl;
namespace fs = std::filesystem;

namespace {

// A fresh directory per test case, removed at the end.
struct TempDir {
  fs::path dir;
  TempDir() {
    static int counter = 0;
    dir = fs::temp_directory_path() / ("minidl_st_" + std::to_string(::getpid()) + "_" + std::to_string(counter++));
    fs::create_directories(dir);
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(dir, ec);
  }
  std::string file(const std::string& name) const { return (dir / name).string(); }
};

std::string u64le(uint64_t v) {
  std::string s(8, '\0');
  for (int i = 0; i < 8; ++i) s[i] = static_cast<char>((v >> (8 * i)) & 0xff);
  return s;
}

template <typename T>
std::string bytes_of(const std::vector<T>& v) {
  std::string s(v.size() * sizeof(T), '\0');
  if (!v.empty()) std::memcpy(s.data(), v.data(), s.size());
  return s;
}

void write_bytes(const std::string& path, const std::string& bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  REQUIRE(out.good());
}

std::string read_bytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

// header length + header + data, exactly as given (no padding, no checks): the malformation tests need freedom.
std::string st_file(const std::string& header, const std::string& data) { return u64le(header.size()) + header + data; }

// Loads `path` expecting a minidl::Error whose message names the file and contains `problem`.
void expect_load_error(const std::string& path, const std::string& problem) {
  CAPTURE(problem);
  bool threw = false;
  try {
    load_safetensors(path);
  } catch (const Error& e) {
    threw = true;
    const std::string msg = e.what();
    CAPTURE(msg);
    CHECK(msg.find("load_safetensors: " + path + ": ") != std::string::npos);
    CHECK(msg.find(problem) != std::string::npos);
  }
  CHECK(threw);
}

}  // namespace

TEST_CASE("safetensors round trip: all five dtypes, metadata, 0-dim and empty tensors") {
  TempDir tmp;
  const std::string path = tmp.file("model.safetensors");
  TensorMap in;
  in["f32"] = from_vector(std::vector<float>{1.5f, -2.25f, 3.0f, 1e-30f, -0.0f, 7.0f}, {2, 3});
  in["f64"] = from_vector(std::vector<double>{3.141592653589793, -1e300}, {2}, TensorOptions().dtype(DType::f64));
  in["i32"] =
      from_vector(std::vector<int32_t>{-2147483647 - 1, 0, 2147483647}, {3, 1}, TensorOptions().dtype(DType::i32));
  in["i64"] = from_vector(std::vector<int64_t>{-(int64_t{1} << 62), 5}, {1, 2}, TensorOptions().dtype(DType::i64));
  in["u8"] = from_vector(std::vector<uint8_t>{0, 127, 255, 1}, {2, 2}, TensorOptions().dtype(DType::u8));
  in["scalar"] = scalar_tensor(42.0, TensorOptions().dtype(DType::i64));
  in["empty"] = empty({0, 4});
  in["grad.leaf"] = from_vector(std::vector<float>{0.5f, 0.25f}, {2}).set_requires_grad(true);
  const Metadata meta{{"format", "pt"}, {"epoch", "17"}, {"note", "ünïcode ok"}};
  save_safetensors(path, in, meta);

  // No temporary file is left next to the checkpoint.
  int files = 0;
  for (const auto& entry : fs::directory_iterator(tmp.dir)) {
    (void)entry;
    ++files;
  }
  CHECK(files == 1);

  SafetensorsFile f = load_safetensors(path);
  CHECK(f.metadata == meta);
  REQUIRE(f.tensors.size() == in.size());
  for (const auto& [name, t] : in) {
    CAPTURE(name);
    REQUIRE(f.tensors.count(name) == 1);
    const Tensor& u = f.tensors.at(name);
    CHECK(u.dtype() == t.dtype());
    CHECK(u.sizes() == t.sizes());
    CHECK(u.device() == kCPU);
    CHECK(u.is_contiguous());
    CHECK(!u.requires_grad());
  }
  CHECK(f.tensors.at("f32").to_vector<float>() == in["f32"].to_vector<float>());
  CHECK(std::signbit(f.tensors.at("f32").to_vector<float>()[4]));  // -0.0 survives bit for bit
  CHECK(f.tensors.at("f64").to_vector<double>() == std::vector<double>{3.141592653589793, -1e300});
  CHECK(f.tensors.at("i32").to_vector<int32_t>() == std::vector<int32_t>{-2147483647 - 1, 0, 2147483647});
  CHECK(f.tensors.at("i64").to_vector<int64_t>() == std::vector<int64_t>{-(int64_t{1} << 62), 5});
  CHECK(f.tensors.at("u8").to_vector<uint8_t>() == std::vector<uint8_t>{0, 127, 255, 1});
  CHECK(f.tensors.at("scalar").dim() == 0);
  CHECK(f.tensors.at("scalar").item<int64_t>() == 42);
  CHECK(f.tensors.at("empty").numel() == 0);
  CHECK(f.tensors.at("grad.leaf").to_vector<float>() == std::vector<float>{0.5f, 0.25f});
}

TEST_CASE("safetensors writes the layout PyTorch's reader expects") {
  TempDir tmp;
  const std::string path = tmp.file("layout.safetensors");
  TensorMap in;
  in["b"] = from_vector(std::vector<float>{1.0f, 2.0f}, {2});
  in["a"] = from_vector(std::vector<uint8_t>{9}, {1}, TensorOptions().dtype(DType::u8));
  save_safetensors(path, in, {{"k", "v"}});
  const std::string bytes = read_bytes(path);
  REQUIRE(bytes.size() >= 8);
  uint64_t n = 0;
  for (int i = 7; i >= 0; --i) n = (n << 8) | static_cast<unsigned char>(bytes[i]);
  CHECK(n % 8 == 0);  // the data section starts 8-byte aligned
  REQUIRE(bytes.size() == 8 + n + 1 + 8);
  const std::string header = bytes.substr(8, n);
  // Metadata first, then the tensors in name order with offsets in the same order.
  CHECK(header.rfind(R"({"__metadata__":{"k":"v"},"a":{"dtype":"U8","shape":[1],"data_offsets":[0,1]},)"
                     R"("b":{"dtype":"F32","shape":[2],"data_offsets":[1,9]}})",
                     0) == 0);
  CHECK(header.find_first_not_of(' ', header.find_last_of('}') + 1) == std::string::npos);
  CHECK(static_cast<unsigned char>(bytes[8 + n]) == 9);
  float vals[2];
  std::memcpy(vals, bytes.data() + 8 + n + 1, 8);
  CHECK(vals[0] == 1.0f);
  CHECK(vals[1] == 2.0f);
}

TEST_CASE("safetensors loads a file laid out by Python's writer") {
  // safetensors.torch.save_file({"weight": ..., "bias": ..., "steps": ...}, metadata={"format": "pt"}) puts the
  // metadata first, orders tensors by alignment then name, and pads the header with spaces to 8 bytes.
  TempDir tmp;
  const std::string path = tmp.file("python.safetensors");
  std::string header = R"({"__metadata__":{"format":"pt"},"steps":{"dtype":"I64","shape":[],"data_offsets":[0,8]},)"
                       R"("bias":{"dtype":"F32","shape":[2],"data_offsets":[8,16]},)"
                       R"("weight":{"dtype":"F32","shape":[2,2],"data_offsets":[16,32]}})";
  header.append((8 - header.size() % 8) % 8, ' ');
  const std::string data = bytes_of(std::vector<int64_t>{1234}) + bytes_of(std::vector<float>{0.5f, -0.5f}) +
                           bytes_of(std::vector<float>{1.0f, 2.0f, 3.0f, 4.0f});
  write_bytes(path, st_file(header, data));

  SafetensorsFile f = load_safetensors(path);
  CHECK(f.metadata == Metadata{{"format", "pt"}});
  REQUIRE(f.tensors.size() == 3);
  CHECK(f.tensors.at("steps").dim() == 0);
  CHECK(f.tensors.at("steps").item<int64_t>() == 1234);
  CHECK(f.tensors.at("bias").to_vector<float>() == std::vector<float>{0.5f, -0.5f});
  CHECK(f.tensors.at("weight").sizes() == Shape{2, 2});
  CHECK(f.tensors.at("weight").to_vector<float>() == std::vector<float>{1.0f, 2.0f, 3.0f, 4.0f});
}

TEST_CASE("safetensors refuses malformed files with the file name and the problem") {
  TempDir tmp;
  int case_no = 0;
  auto check = [&](const std::string& bytes, const std::string& problem) {
    const std::string path = tmp.file("bad" + std::to_string(case_no++) + ".safetensors");
    write_bytes(path, bytes);
    expect_load_error(path, problem);
  };
  const std::string ok_entry = R"("t":{"dtype":"F32","shape":[2],"data_offsets":[0,8]})";
  const std::string data8(8, '\0');

  check("", "shorter than the 8-byte header length");
  check(std::string("\x05\x00\x00", 3), "shorter than the 8-byte header length");
  check(u64le(100) + "{}", "exceeds the 2 bytes that follow it");
  check(u64le(~uint64_t{0}) + "{}", "is absurd");
  check(st_file("{\"t\": [1, 2", ""), "header is not valid JSON");
  check(st_file("[1, 2, 3]", ""), "header is not a JSON object");
  check(st_file(R"({"t":{"shape":[2],"data_offsets":[0,8]}})", data8), "tensor 't' is missing the field \"dtype\"");
  check(st_file(R"({"t":{"dtype":"F32","data_offsets":[0,8]}})", data8), "missing the field \"shape\"");
  check(st_file(R"({"t":{"dtype":"F32","shape":[2]}})", data8), "missing the field \"data_offsets\"");
  check(st_file(R"({"t":{"dtype":"BF16","shape":[2],"data_offsets":[0,4]}})", std::string(4, '\0')),
        "unsupported dtype 'BF16'");
  check(st_file(R"({"t":{"dtype":7,"shape":[2],"data_offsets":[0,8]}})", data8), "\"dtype\" is not a string");
  check(st_file(R"({"t":{"dtype":"F32","shape":[-2],"data_offsets":[0,8]}})", data8), "not a non-negative integer");
  check(st_file(R"({"t":{"dtype":"F32","shape":[2.5],"data_offsets":[0,8]}})", data8), "not a non-negative integer");
  check(st_file(R"({"t":{"dtype":"F32","shape":[2],"data_offsets":[0]}})", data8), "is not a pair");
  check(st_file(R"({"t":{"dtype":"F32","shape":[2],"data_offsets":[8,0]}})", data8), "run backwards");
  // dtype x shape vs byte count: F32 [3] needs 12 bytes, the offsets hold 8.
  check(st_file(R"({"t":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}})", data8), "needs 3 x 4 bytes");
  check(st_file(R"({"t":{"dtype":"F32","shape":[4294967296,4294967296],"data_offsets":[0,8]}})", data8),
        "more elements than fit in 64 bits");
  // Offsets past the data section (a truncated file).
  check(st_file("{" + ok_entry + "}", std::string(4, '\0')), "are out of range (the data section has 4 bytes");
  check(st_file(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},)"
                R"("b":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}})",
                std::string(12, '\0')),
        "overlap tensor 'a' [0, 8]");
  check(st_file(R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}})", data8), "belong to no tensor");
  check(st_file("{" + ok_entry + "}", std::string(12, '\0')), "the tensors cover only 8");
  check(st_file(R"({"__metadata__":{"epoch":3},)" + ok_entry + "}", data8), "value of key 'epoch' is not a string");
  check(st_file(R"({"__metadata__":[1],)" + ok_entry + "}", data8), "\"__metadata__\" is not a JSON object");
  check(st_file(R"({"t":[0,8]})", data8), "entry of tensor 't' is not a JSON object");

  // A good checkpoint cut short loses its tail: the offsets now point past the end.
  const std::string good = tmp.file("good.safetensors");
  save_safetensors(good, {{"w", from_vector(std::vector<float>{1, 2, 3, 4}, {4})}});
  const std::string bytes = read_bytes(good);
  check(bytes.substr(0, bytes.size() - 3), "are out of range");
  check(bytes.substr(0, 12), "exceeds the 4 bytes that follow it");

  expect_load_error(tmp.file("does_not_exist.safetensors"), "cannot open file");
  expect_load_error(tmp.dir.string(), "is a directory");
}

TEST_CASE("safetensors save errors name the path") {
  TempDir tmp;
  const std::string path = tmp.file("no_such_dir/model.safetensors");
  const std::string expected = "save_safetensors: " + path + ": cannot create the temporary file";
  CHECK_THROWS_WITH_AS(save_safetensors(path, {{"w", ones({2})}}), doctest::Contains(expected.c_str()), Error);
  CHECK_THROWS_WITH_AS(save_safetensors(tmp.file("m.safetensors"), {{"__metadata__", ones({2})}}),
                       doctest::Contains("'__metadata__' is reserved"), Error);
  CHECK_THROWS_WITH_AS(save_safetensors(tmp.file("m.safetensors"), {{"w", Tensor()}}),
                       doctest::Contains("tensor 'w' is undefined"), Error);
  CHECK(!fs::exists(tmp.file("m.safetensors")));
}

TEST_CASE("safetensors overwrites an existing checkpoint atomically") {
  TempDir tmp;
  const std::string path = tmp.file("ckpt.safetensors");
  save_safetensors(path, {{"w", full({3}, 1.0)}});
  save_safetensors(path, {{"w", full({2}, 2.0)}, {"v", zeros({1})}});
  SafetensorsFile f = load_safetensors(path);
  CHECK(f.tensors.size() == 2);
  CHECK(f.tensors.at("w").to_vector<float>() == std::vector<float>{2.0f, 2.0f});
}

// Sets an environment variable for one scope.
struct ScopedEnv {
  const char* name;
  ScopedEnv(const char* n, const char* value) : name(n) { ::setenv(n, value, 1); }
  ~ScopedEnv() { ::unsetenv(name); }
};

TEST_CASE("safetensors test-only rename delay: a complete temporary file waits, the old checkpoint stays") {
  TempDir tmp;
  const std::string path = tmp.file("ckpt.safetensors");
  save_safetensors(path, {{"w", full({3}, 1.0)}});
  const std::string temp = path + ".tmp." + std::to_string(::getpid());
  {
    ScopedEnv delay("MINIDL_TEST_CHECKPOINT_RENAME_DELAY_MS", "400");
    const auto t0 = std::chrono::steady_clock::now();
    std::thread saver([&] { save_safetensors(path, {{"w", full({2}, 2.0)}}); });
    bool seen = false;
    for (int i = 0; i < 2000 && !seen; ++i) {
      seen = fs::exists(temp);
      if (!seen) std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
    // Inside the window a kill would leave: the old checkpoint intact next to the finished temporary file.
    const bool old_intact = seen && load_safetensors(path).tensors.at("w").numel() == 3;
    saver.join();
    CHECK(std::chrono::steady_clock::now() - t0 >= std::chrono::milliseconds(400));
    CHECK(seen);
    CHECK(old_intact);
  }
  CHECK(!fs::exists(temp));
  CHECK(load_safetensors(path).tensors.at("w").to_vector<float>() == std::vector<float>{2.0f, 2.0f});

  ScopedEnv bad("MINIDL_TEST_CHECKPOINT_RENAME_DELAY_MS", "soon");
  CHECK_THROWS_WITH_AS(save_safetensors(path, {{"w", zeros({1})}}),
                       doctest::Contains("MINIDL_TEST_CHECKPOINT_RENAME_DELAY_MS: expected milliseconds"), Error);
  CHECK(load_safetensors(path).tensors.at("w").numel() == 2);
}

TEST_CASE("safetensors loads the released APoT ResNet-20 checkpoint") {
  const std::string path = std::string(MINIDL_SHARED_DIR) + "/data/apot/apot_res20_4bit.safetensors";
  if (!fs::exists(path)) {
    MINIDL_SKIP("APoT checkpoint not found at " << path);
  }
  SafetensorsFile f = load_safetensors(path);
  REQUIRE(f.tensors.count("conv1.weight") == 1);
  CHECK(f.tensors.at("conv1.weight").sizes() == Shape{16, 3, 3, 3});
  CHECK(f.tensors.at("conv1.weight").dtype() == DType::f32);
  REQUIRE(f.tensors.count("bn1.num_batches_tracked") == 1);
  CHECK(f.tensors.at("bn1.num_batches_tracked").dtype() == DType::i64);
  CHECK(f.tensors.at("bn1.num_batches_tracked").dim() == 0);
  REQUIRE(f.tensors.count("fc.weight") == 1);
  CHECK(f.tensors.at("fc.weight").sizes() == Shape{10, 64});
  CHECK(f.metadata.at("arch") == "resnet20");
  CHECK(f.metadata.at("bit") == "4");
  // Running variances of a trained network are positive and finite.
  for (float v : f.tensors.at("bn1.running_var").to_vector<float>()) CHECK((v > 0.0f && std::isfinite(v)));
}
