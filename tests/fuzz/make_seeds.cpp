// Writes the fuzzers' seed corpus: small valid inputs for every target, so fuzzing starts inside the formats
// instead of rediscovering their headers. Deterministic (fixed patterns, no RNG), so re-running it reproduces
// the committed files. Usage: minidl_fuzz_make_seeds <tests/fuzz/corpus>
#include <turbojpeg.h>
#include <zlib.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <string>
#include <vector>

#include "data/idx.h"
#include "quant/packed/pack.h"
#include "quant/packed/packed_resnet.h"
#include "quant/quant_resnet.h"
#include "tensor/generator.h"
#include "tensor/safetensors.h"

using namespace minidl;
using Bytes = std::vector<uint8_t>;
namespace fs = std::filesystem;

namespace {

fs::path g_root;

void write(const std::string& target, const std::string& name, const Bytes& b) {
  fs::create_directories(g_root / target);
  std::ofstream(g_root / target / name, std::ios::binary).write(reinterpret_cast<const char*>(b.data()), b.size());
}

Bytes read(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  return Bytes(std::istreambuf_iterator<char>(in), {});
}

// A tensor of `shape` and `dtype` with values 0, 1, 2, ... (cast), so the bytes are recognisable.
Tensor counting(const Shape& shape, DType dtype) {
  Tensor t = empty(shape, TensorOptions().dtype(DType::f64));
  double* p = t.data<double>();
  for (int64_t i = 0; i < t.numel(); ++i) p[i] = static_cast<double>(i % 251);
  return t.to(dtype);
}

void safetensors_seed(const std::string& target, const std::string& name, const TensorMap& m, const Metadata& meta) {
  const fs::path tmp = fs::temp_directory_path() / ("minidl-seed-" + name);
  save_safetensors(tmp.string(), m, meta);
  write(target, name, read(tmp));
  fs::remove(tmp);
}

Bytes gzip(const Bytes& plain) {
  Bytes out(compressBound(plain.size()) + 64);
  z_stream s{};
  deflateInit2(&s, 9, Z_DEFLATED, 16 + MAX_WBITS, 8, Z_DEFAULT_STRATEGY);
  s.next_in = const_cast<Bytef*>(plain.data());
  s.avail_in = static_cast<uInt>(plain.size());
  s.next_out = out.data();
  s.avail_out = static_cast<uInt>(out.size());
  deflate(&s, Z_FINISH);
  out.resize(s.total_out);
  deflateEnd(&s);
  return out;
}

Bytes idx(uint32_t magic, const std::vector<uint32_t>& dims) {
  Bytes b;
  auto be32 = [&](uint32_t v) {
    for (int i = 3; i >= 0; --i) b.push_back(static_cast<uint8_t>(v >> (8 * i)));
  };
  be32(magic);
  uint64_t n = 1;
  for (uint32_t d : dims) be32(d), n *= d;
  for (uint64_t i = 0; i < n; ++i) b.push_back(static_cast<uint8_t>(magic == data::kIdxLabelMagic ? i % 10 : i * 7));
  return b;
}

Bytes cifar(int records, int label_bytes) {
  Bytes b;
  for (int r = 0; r < records; ++r) {
    for (int l = 0; l < label_bytes; ++l) b.push_back(static_cast<uint8_t>(r + 3 * l));
    for (int i = 0; i < 3072; ++i) b.push_back(static_cast<uint8_t>((i * 13 + r) & 0xFF));
  }
  return b;
}

Bytes jpeg(int w, int h, int pixel_format, int subsamp, int flags) {
  const int channels = tjPixelSize[pixel_format];
  Bytes px(static_cast<size_t>(w * h * channels));
  for (size_t i = 0; i < px.size(); ++i) px[i] = static_cast<uint8_t>((i * 29) % 256);
  tjhandle h_ = tjInitCompress();
  unsigned char* out = nullptr;
  unsigned long size = 0;
  if (tjCompress2(h_, px.data(), w, 0, h, pixel_format, &out, &size, subsamp, 75, flags) != 0)
    throw std::runtime_error(tjGetErrorStr2(h_));
  Bytes b(out, out + size);
  tjFree(out);
  tjDestroy(h_);
  return b;
}

// A minimal PNG: IHDR, optional PLTE, one IDAT of unfiltered scanlines, IEND.
Bytes png(int w, int h, int color_type, int bit_depth, int palette_size = 0) {
  Bytes out = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1A, '\n'};
  auto chunk = [&](const char* type, const Bytes& body) {
    Bytes c(type, type + 4);
    c.insert(c.end(), body.begin(), body.end());
    for (int i = 3; i >= 0; --i) out.push_back(static_cast<uint8_t>(body.size() >> (8 * i)));
    out.insert(out.end(), c.begin(), c.end());
    const uLong crc = crc32(0, c.data(), static_cast<uInt>(c.size()));
    for (int i = 3; i >= 0; --i) out.push_back(static_cast<uint8_t>(crc >> (8 * i)));
  };
  const int samples = color_type == 2 ? 3 : color_type == 4 ? 2 : color_type == 6 ? 4 : 1;
  Bytes ihdr;
  for (int v : {w, h})
    for (int i = 3; i >= 0; --i) ihdr.push_back(static_cast<uint8_t>(v >> (8 * i)));
  ihdr.insert(ihdr.end(), {static_cast<uint8_t>(bit_depth), static_cast<uint8_t>(color_type), 0, 0, 0});
  chunk("IHDR", ihdr);
  if (color_type == 3) {
    Bytes plte;
    for (int i = 0; i < palette_size * 3; ++i) plte.push_back(static_cast<uint8_t>(i * 37));
    chunk("PLTE", plte);
  }
  const size_t row_bytes = (static_cast<size_t>(w) * samples * bit_depth + 7) / 8;
  Bytes raw;
  for (int y = 0; y < h; ++y) {
    raw.push_back(static_cast<uint8_t>(y % 5));  // cycle through the five scanline filters
    for (size_t x = 0; x < row_bytes; ++x)
      raw.push_back(color_type == 3 ? static_cast<uint8_t>((x + y) % palette_size) : static_cast<uint8_t>(x * 11 + y));
  }
  Bytes z(compressBound(raw.size()));
  uLongf zn = z.size();
  compress2(z.data(), &zn, raw.data(), raw.size(), 9);
  z.resize(zn);
  chunk("IDAT", z);
  chunk("IEND", {});
  return out;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::cerr << "usage: " << argv[0] << " <corpus dir>\n";
    return 2;
  }
  g_root = argv[1];

  // safetensors: every dtype, a scalar, an empty tensor, metadata, and an empty file.
  safetensors_seed("safetensors", "mixed_dtypes.safetensors",
                   {{"a.f32", counting({2, 3}, DType::f32)},
                    {"b.f64", counting({4}, DType::f64)},
                    {"c.i32", counting({2, 2}, DType::i32)},
                    {"d.i64", counting({}, DType::i64)},
                    {"e.u8", counting({3, 1, 2}, DType::u8)}},
                   {{"format", "pt"}, {"note", "seed"}});
  safetensors_seed("safetensors", "empty_tensor.safetensors", {{"empty", counting({0, 4}, DType::f32)}}, {});
  safetensors_seed("safetensors", "no_tensors.safetensors", {}, {{"k", "v"}});

  // checkpoint: a few real ResNet-20 entries of the quantized model (uint8 to stay small), with and without
  // cifar_resnet20's "model." prefix, and the metadata config_from_metadata reads.
  const auto net = quant::make_quant_resnet_cifar(20, quant::QuantConfig::apot(4));
  TensorMap bare, prefixed;
  for (const auto& [name, t] : net->state_dict()) {
    const bool pick = name.rfind("conv1.", 0) == 0 || name.rfind("bn1.", 0) == 0 || name.rfind("fc.", 0) == 0 ||
                      name.rfind("layer1.0.conv1.", 0) == 0 || name.rfind("layer1.0.bn1.", 0) == 0;
    if (!pick) continue;
    Tensor v = t.dtype() == DType::f32 && t.numel() > 16 ? counting(t.sizes(), DType::u8) : t.detach().clone();
    bare[name] = v;
    prefixed["model." + name] = v;
  }
  safetensors_seed("checkpoint", "resnet20_apot4_part.safetensors", prefixed, {{"bit", "4"}, {"semantics", "APoT-I"}});
  safetensors_seed("checkpoint", "resnet20_bare_part.safetensors", bare, {{"bit", "32"}});

  // packed: two small packed models (ResNet-8, one input channel, fresh weights): APoT W4/A4 with the option-A
  // shortcut and binary weights with PACT A2 and 1x1 downsampling convs (integer layers of both kinds, the
  // float stem and fc, both shortcut kinds).
  struct PackedSeed {
    const char* name;
    const char* scheme;
    int bits, act_bits;
    nn::Shortcut shortcut;
  };
  for (const PackedSeed& ps : {PackedSeed{"resnet8_apot4_A.packed", "apot", 4, 4, nn::Shortcut::A},
                               PackedSeed{"resnet8_binary_pact2_B.packed", "binary", 1, 2, nn::Shortcut::B}}) {
    manual_seed(3);
    quant::QuantConfig cfg = quant::QuantConfig::from_scheme(ps.scheme, ps.bits, ps.act_bits);
    cfg.in_channels = 1;
    cfg.shortcut = ps.shortcut;
    const auto model = quant::make_quant_resnet_cifar(8, cfg);
    model->eval();
    const fs::path tmp = fs::temp_directory_path() / (std::string("minidl-seed-") + ps.name);
    quant::save_packed(quant::pack(*model), tmp.string());
    write("packed", ps.name, read(tmp));
    fs::remove(tmp);
  }

  // IDX: image and label files, raw and gzip.
  const Bytes images = idx(data::kIdxImageMagic, {3, 5, 4}), labels = idx(data::kIdxLabelMagic, {7});
  const Bytes one = idx(data::kIdxImageMagic, {1, 1, 1});
  write("idx_raw", "images_3x5x4.idx", images);
  write("idx_raw", "labels_7.idx", labels);
  write("idx_raw", "images_1x1x1.idx", one);
  write("idx_gzip", "images_3x5x4.idx.gz", gzip(images));
  write("idx_gzip", "labels_7.idx.gz", gzip(labels));
  write("idx_gzip", "images_1x1x1.idx.gz", gzip(one));

  // CIFAR: one CIFAR-10 record, two CIFAR-100 records.
  write("cifar", "cifar10_1_record.bin", cifar(1, 1));
  write("cifar", "cifar100_2_records.bin", cifar(2, 2));

  // JPEG: baseline 4:2:0 RGB, 4:4:4 grayscale-from-gray, progressive 4:2:2, odd sizes (partial MCUs).
  write("jpeg", "rgb_420_16x16.jpg", jpeg(16, 16, TJPF_RGB, TJSAMP_420, 0));
  write("jpeg", "gray_13x7.jpg", jpeg(13, 7, TJPF_GRAY, TJSAMP_GRAY, 0));
  write("jpeg", "progressive_422_33x17.jpg", jpeg(33, 17, TJPF_RGB, TJSAMP_422, TJFLAG_PROGRESSIVE));
  write("jpeg", "rgb_444_40x24.jpg", jpeg(40, 24, TJPF_RGB, TJSAMP_444, 0));

  // PNG: the colour types and a 16-bit and a 1-bit image.
  write("png", "rgb8_5x4.png", png(5, 4, 2, 8));
  write("png", "gray8_3x3.png", png(3, 3, 0, 8));
  write("png", "palette4_6x2.png", png(6, 2, 3, 4, 16));
  write("png", "gray_alpha8_4x4.png", png(4, 4, 4, 8));
  write("png", "rgba8_3x5.png", png(3, 5, 6, 8));
  write("png", "rgb16_2x2.png", png(2, 2, 2, 16));
  write("png", "gray1_9x3.png", png(9, 3, 0, 1));
  std::cout << "seeds written under " << g_root << "\n";
  return 0;
}
