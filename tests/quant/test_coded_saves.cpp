// Coded saves (quant/coded_saves.h, issue 17): a quantized layer's quantized input is saved for backward as u8
// codes into a code book of the quantizer's output values and rebuilt bit for bit. These tests pin the code books
// to the quantizers' outputs (every scheme, f32 and f64, contiguous and channels-last, ref and cpu backends), the
// backend coding primitives to their contract (exact bits, -0 apart from +0, refusal of a value outside the book),
// and QuantConv2d / QuantLinear training steps to the uncoded path: the same gradients bit for bit, 3 bytes (f32)
// fewer per input element held by the tape.
#include <doctest/doctest.h>

#include <cmath>
#include <cstring>
#include <limits>
#include <random>
#include <string>

#include "autograd/grad_mode.h"
#include "autograd/ops.h"
#include "autograd/saved_tensor.h"
#include "backends/backend.h"
#include "backends/cpu/cpu_isa.h"
#include "quant/coded_saves.h"
#include "quant/ops.h"
#include "quant/quant_layers.h"
#include "tensor/allocator.h"
#include "tensor/generator.h"
#include "test_scopes.h"

using namespace minidl;
using minidl::test::BackendScope;
using namespace minidl::quant;

namespace {

struct CodedScope {
  bool saved = coded_saves();
  explicit CodedScope(bool on) { set_coded_saves(on); }
  ~CodedScope() { set_coded_saves(saved); }
};

std::vector<std::string> cpu_backends() {
  std::vector<std::string> names;
  for (const auto& n : available_backends()) {
    if (n == "ref" || n == "cpu") names.push_back(n);
  }
  return names;
}

// Values in [lo_f * alpha, hi_f * alpha), with exact -0 and +0 sprinkled in, in the given layout.
Tensor activation(const Shape& s, DType dt, bool channels_last, double alpha, uint64_t seed, double lo_f = -0.4,
                  double hi_f = 1.4) {
  std::mt19937_64 rng(seed);
  std::uniform_real_distribution<double> d(lo_f * alpha, hi_f * alpha);
  std::vector<double> v(static_cast<size_t>(shape_numel(s)));
  for (size_t i = 0; i < v.size(); ++i) v[i] = i % 97 == 3 ? -0.0 : i % 89 == 5 ? 0.0 : d(rng);
  Tensor t = from_vector(v, s, TensorOptions().dtype(dt));
  if (!channels_last) return t;
  Tensor cl = empty(s, TensorOptions().dtype(dt), MemoryFormat::ChannelsLast);
  backend_for(cl).copy(cl, t);
  return cl;
}

// a and b hold the same bits in the same layout (-0 is not +0, NaN payloads count).
void check_same_bits(const Tensor& a, const Tensor& b, const std::string& what) {
  INFO(what);
  REQUIRE(a.defined());
  REQUIRE(b.defined());
  REQUIRE(a.sizes() == b.sizes());
  REQUIRE(a.dtype() == b.dtype());
  REQUIRE(a.memory_format() == b.memory_format());
  const Tensor ac = a.is_contiguous() || a.is_channels_last() ? a : a.contiguous();
  const Tensor bc = b.is_contiguous() || b.is_channels_last() ? b : b.contiguous();
  const size_t n = static_cast<size_t>(a.numel()) * dtype_size(a.dtype());
  const auto* pa = static_cast<const unsigned char*>(ac.raw_data());
  const auto* pb = static_cast<const unsigned char*>(bc.raw_data());
  size_t bad = 0;
  for (size_t i = 0; i < n; ++i) bad += pa[i] != pb[i];
  CHECK_MESSAGE(bad == 0, bad, " of ", n, " bytes differ");
}

// doubles as a 1-D tensor of dt (through float64, so nothing is rounded to float32 on the way)
Tensor vec(const std::vector<double>& v, DType dt) {
  return from_vector(v, {static_cast<int64_t>(v.size())}, TensorOptions().dtype(DType::f64)).to(dt);
}

int64_t count_negative_zeros(const Tensor& t) {
  int64_t k = 0;
  for (double v : t.to_vector<double>()) k += v == 0.0 && std::signbit(v);
  return k;
}

}  // namespace

TEST_CASE("coded saves: every quantizer's output round-trips through its code book bit for bit") {
  for (const auto& be : cpu_backends()) {
    BackendScope scope(be);
    for (DType dt : {DType::f32, DType::f64}) {
      for (bool cl : {false, true}) {
        const std::string where = "backend " + be + " " + dtype_name(dt) + (cl ? " channels-last" : " contiguous");
        const double alpha = 1.37;
        const Tensor A = scalar_tensor(alpha, TensorOptions().dtype(dt));
        autograd::NoGradGuard ng;
        for (auto [scheme, bits] :
             {std::pair{Scheme::APoT, 4}, std::pair{Scheme::PoT, 4}, std::pair{Scheme::Uniform, 4},
              std::pair{Scheme::APoT, 2}, std::pair{Scheme::Uniform, 2}, std::pair{Scheme::APoT, 6}}) {
          for (Semantics sem : {Semantics::APoT_I, Semantics::APoT_C}) {
            const LevelSet ls = LevelSet::make(scheme, bits, false, dt);
            // APoT-C's uniform path keeps negative codes (no lower clip): give it a ReLU output, as in the ResNets
            const bool relu_input = sem == Semantics::APoT_C && ls.rounding;
            const Tensor X = activation({3, 16, 11, 13}, dt, cl, alpha, 11 + bits, relu_input ? 0.0 : -0.4);
            const Tensor y = quantize_activation(X, A, ls, sem);
            const Tensor cb = activation_codebook(A, ls, dt);
            const std::string what =
                where + " " + scheme_name(scheme) + " " + std::to_string(bits) + "-bit " + semantics_name(sem);
            INFO(what);
            REQUIRE(cb.defined());
            const auto coded = encode(y, cb);
            REQUIRE(coded.has_value());
            CHECK(coded->codes.dtype() == DType::u8);
            CHECK(coded->codes.memory_format() == y.memory_format());
            check_same_bits(coded->decode(), y, what);
          }
        }
        for (int bits : {2, 4}) {
          const std::string what = where + " PACT " + std::to_string(bits) + "-bit";
          INFO(what);
          const Tensor X = activation({3, 16, 11, 13}, dt, cl, alpha, 5 + bits);
          const Tensor y = pact(X, A, bits);
          CHECK(count_negative_zeros(y) > 0);  // small negative inputs round to -0: the book must hold it
          const auto coded = encode(y, pact_codebook(A, bits, dt));
          REQUIRE(coded.has_value());
          check_same_bits(coded->decode(), y, what);
        }
        {
          const Tensor X = activation({2, 8, 7, 9}, dt, cl, 20.0, 3);
          const Tensor y = int_grid_activation(X, 4);
          const auto coded = encode(y, int_grid_codebook(4, dt));
          REQUIRE(coded.has_value());
          check_same_bits(coded->decode(), y, where + " integer grid");
        }
      }
    }
  }
}

TEST_CASE("quantize_activation's codes from its forward pass: the output bit for bit, at every ISA level") {
  // The cpu backend writes the codes in the quantizer's own pass (the AVX2 levels kernel for float32 sets of up to
  // 16 levels, the compiled loops otherwise); ref runs the forward and then codebook_encode. Either way decoding
  // gives the output's bits, and the codes are those codebook_encode finds.
  for (const auto& be : cpu_backends()) {
    BackendScope scope(be);
    for (auto cap : {cpu::CpuIsa::Baseline, cpu::CpuIsa::Avx2, cpu::CpuIsa::Avx512}) {
      if (static_cast<int>(cap) > static_cast<int>(cpu::host_isa())) continue;
      cpu::set_cpu_isa_cap(cap);
      for (DType dt : {DType::f32, DType::f64}) {
        for (bool cl : {false, true}) {
          const double alpha = 0.93;
          const Tensor A = scalar_tensor(alpha, TensorOptions().dtype(dt).requires_grad());
          for (auto [scheme, bits] : {std::pair{Scheme::APoT, 4}, std::pair{Scheme::PoT, 3},
                                      std::pair{Scheme::Uniform, 4}, std::pair{Scheme::APoT, 6}}) {
            for (Semantics sem : {Semantics::APoT_I, Semantics::APoT_C}) {
              const std::string what = "backend " + be + " isa " + cpu::isa_name(cap) + " " + dtype_name(dt) +
                                       (cl ? " channels-last " : " contiguous ") + scheme_name(scheme) + " " +
                                       std::to_string(bits) + "-bit " + semantics_name(sem);
              INFO(what);
              const LevelSet ls = LevelSet::make(scheme, bits, false, dt);
              // 3 * 8 * 13 * 11 elements: several blocks and a partial vector
              const Tensor X = activation({3, 8, 13, 11}, dt, cl, alpha, 17 + bits).set_requires_grad(true);
              CodedTensor coded;
              const Tensor y = quantize_activation(X, A, ls, sem, 1.0, &coded);
              const Tensor plain = quantize_activation(X, A, ls, sem);
              check_same_bits(y, plain, what + ": output");
              if (sem == Semantics::APoT_C && ls.rounding) {
                CHECK_FALSE(coded.codes.defined());  // negative grid points have no code: saved as is
                continue;
              }
              REQUIRE(coded.codes.defined());
              CHECK(coded.codes.memory_format() == y.memory_format());
              check_same_bits(coded.decode(), y, what + ": decoded");
              const auto again = encode(y, activation_codebook(A, ls, dt));
              REQUIRE(again.has_value());
              check_same_bits(coded.codes, again->codes, what + ": codes");
            }
          }
        }
      }
      cpu::set_cpu_isa_cap(std::nullopt);
    }
  }
}

TEST_CASE("codebook_encode / codebook_decode: exact bits or refusal, -0 apart from +0, on ref and cpu") {
  for (const auto& be : cpu_backends()) {
    Backend& b = backend_by_name(be);
    for (DType dt : {DType::f32, DType::f64}) {
      const std::string where = "backend " + be + " " + dtype_name(dt);
      INFO(where);
      const Tensor cb = vec({-0.0, 0.0, 0.75, 1.5}, dt);
      // several blocks and a partial one, so the parallel split and the tails are covered
      const int64_t n = 3 * 1024 + 37;
      std::vector<double> v(static_cast<size_t>(n));
      for (int64_t i = 0; i < n; ++i)
        v[static_cast<size_t>(i)] = i % 4 == 0 ? -0.0 : i % 4 == 1 ? 0.0 : 0.75 * (i % 4 - 1);
      const Tensor x = vec(v, dt);
      Tensor codes = empty({n}, TensorOptions().dtype(DType::u8));
      REQUIRE(b.codebook_encode(codes, x, cb));
      const auto c = codes.to_vector<int64_t>();
      for (int64_t i = 0; i < 8; ++i) CHECK(c[static_cast<size_t>(i)] == i % 4);
      CHECK(c[static_cast<size_t>(n - 1)] == (n - 1) % 4);
      Tensor back = empty({n}, TensorOptions().dtype(dt));
      b.codebook_decode(back, codes, cb);
      check_same_bits(back, x, "decode");
      CHECK(std::signbit(back.to_vector<double>()[0]));
      // one element one ulp off an entry, anywhere: refused
      for (int64_t at : {int64_t{0}, n / 2, n - 1}) {
        std::vector<double> w = v;
        w[static_cast<size_t>(at)] = dt == DType::f32 ? std::nextafter(0.75f, 1.0f) : std::nextafter(0.75, 1.0);
        CHECK_FALSE(b.codebook_encode(codes, vec(w, dt), cb));
      }
      // +0 with only -0 in the book: refused (the sign of zero is kept, not rounded away)
      const Tensor no_pos_zero = vec({-0.0, 1.5}, dt);
      CHECK_FALSE(b.codebook_encode(codes, x, no_pos_zero));
      CHECK_FALSE(b.codebook_encode(codes, vec(std::vector<double>(static_cast<size_t>(n), std::nan("")), dt), cb));
      // a code past the book decodes to NaN, never out of bounds
      Tensor wild = from_vector(std::vector<double>{3, 4, 255}, {3}).to(DType::u8);
      Tensor out3 = empty({3}, TensorOptions().dtype(dt));
      b.codebook_decode(out3, wild, cb);
      const auto o3 = out3.to_vector<double>();
      CHECK(o3[0] == 1.5);
      CHECK(std::isnan(o3[1]));
      CHECK(std::isnan(o3[2]));
      // the book must be strictly ascending in IEEE total order
      const Tensor unsorted = vec({0.0, -0.0}, dt);
      CHECK_THROWS_AS(b.codebook_encode(codes, x, unsorted), Error);
      // many entries: the binary-search path
      std::vector<double> big;
      for (int k = 0; k < 200; ++k) big.push_back(k * 0.25);
      const Tensor bigcb = vec(big, dt);
      std::vector<double> bv(static_cast<size_t>(n));
      for (int64_t i = 0; i < n; ++i) bv[static_cast<size_t>(i)] = big[static_cast<size_t>((i * 7) % 200)];
      const Tensor bx = vec(bv, dt);
      REQUIRE(b.codebook_encode(codes, bx, bigcb));
      CHECK(codes.to_vector<int64_t>()[5] == 35);
      b.codebook_decode(back, codes, bigcb);
      check_same_bits(back, bx, "decode, 200 entries");
    }
  }
}

namespace {

struct StepResult {
  std::vector<Tensor> grads;  // x, weight, act_alpha, wgt_alpha
  size_t live_after_forward = 0;
};

// One forward + backward of a fresh QuantConv2d (seeded) on x; grads and the bytes live while the graph exists.
StepResult conv_step(const QuantSpec& spec, const Tensor& x0, DType dt, uint64_t seed) {
  manual_seed(seed);
  nn::ConvSpec g;
  g.name = "coded";
  g.in_channels = x0.size(1);
  g.out_channels = 8;
  g.kernel = 3;
  g.padding = 1;
  QuantConv2d conv(g, spec);
  if (dt != DType::f32) conv.to(dt);
  conv.act_alpha.detach().fill_(1.25);
  Tensor x = x0.detach().set_requires_grad(true);
  const size_t live0 = allocator_for(kCPU).stats().live_bytes;
  Tensor y = conv(x);
  StepResult r;
  r.live_after_forward = allocator_for(kCPU).stats().live_bytes - live0;
  const Tensor go = activation(y.sizes(), dt, false, 1.0, 99);
  minidl::sum(minidl::mul(y, go)).backward();
  r.grads = {x.grad(), conv.weight.grad(), conv.act_alpha.grad(), conv.weight_quant->wgt_alpha.grad()};
  return r;
}

}  // namespace

TEST_CASE("codebook_encode / codebook_decode with 4 to 32 entries at every ISA level: exact bits or refusal") {
  // The cpu backend encodes and decodes float32 books of up to 32 entries in AVX2 registers (permutes selected by
  // bits 3 and 4 of the code; decoding books of up to 16 entries with bit 3 alone) and the rest in compiled loops;
  // every path gives the reference's codes and bits.
  for (auto cap : {cpu::CpuIsa::Baseline, cpu::CpuIsa::Avx2, cpu::CpuIsa::Avx512}) {
    if (static_cast<int>(cap) > static_cast<int>(cpu::host_isa())) continue;
    cpu::set_cpu_isa_cap(cap);
    for (int entries : {4, 9, 16, 17, 32}) {
      for (DType dt : {DType::f32, DType::f64}) {
        const std::string where =
            std::string("isa ") + cpu::isa_name(cap) + ", " + std::to_string(entries) + " entries, " + dtype_name(dt);
        INFO(where);
        std::vector<double> book{-0.0};
        for (int k = 0; k + 1 < entries; ++k) book.push_back(k * 0.375);
        const Tensor cb = vec(book, dt);
        const int64_t n = 2 * 1024 + 45;
        std::vector<double> v(static_cast<size_t>(n));
        for (int64_t i = 0; i < n; ++i)
          v[static_cast<size_t>(i)] = book[static_cast<size_t>((i * 5 + i / 7) % entries)];
        const Tensor x = vec(v, dt);
        Tensor codes = empty({n}, TensorOptions().dtype(DType::u8)), ref_codes = codes.clone();
        REQUIRE(backend_by_name("cpu").codebook_encode(codes, x, cb));
        REQUIRE(backend_by_name("ref").codebook_encode(ref_codes, x, cb));
        check_same_bits(codes, ref_codes, "codes");
        Tensor back = empty({n}, TensorOptions().dtype(dt));
        backend_by_name("cpu").codebook_decode(back, codes, cb);
        check_same_bits(back, x, "decoded");
        {  // codes past the book decode to NaN on every path (in a vector, in the tail; past 32 and just past it)
          Tensor bad = codes.clone();
          bad.data<uint8_t>()[5] = static_cast<uint8_t>(entries);
          bad.data<uint8_t>()[17] = 200;
          bad.data<uint8_t>()[n - 1] = 33;
          backend_by_name("cpu").codebook_decode(back, bad, cb);
          const Tensor b64 = back.to(DType::f64);
          for (int64_t at : {int64_t{5}, int64_t{17}, n - 1}) CHECK(std::isnan(b64.data<double>()[at]));
          CHECK(b64.data<double>()[6] == v[6]);
        }
        for (int64_t at : {int64_t{3}, int64_t{1029}, n - 2}) {  // in a vector, after a block, in the tail
          std::vector<double> w = v;
          w[static_cast<size_t>(at)] = 100.0;  // above every entry
          CHECK_FALSE(backend_by_name("cpu").codebook_encode(codes, vec(w, dt), cb));
          w[static_cast<size_t>(at)] = 0.1;  // between entries
          CHECK_FALSE(backend_by_name("cpu").codebook_encode(codes, vec(w, dt), cb));
          w[static_cast<size_t>(at)] = -1.0;  // below every entry
          CHECK_FALSE(backend_by_name("cpu").codebook_encode(codes, vec(w, dt), cb));
        }
      }
    }
    cpu::set_cpu_isa_cap(std::nullopt);
  }
}

TEST_CASE("QuantConv2d with coded saves: the uncoded path's gradients bit for bit, 3 bytes fewer per element") {
  QuantSpec pact_spec = QuantSpec::same(Scheme::APoT, 4);
  pact_spec.act = ActQuant::PACT;
  for (const auto& be : cpu_backends()) {
    BackendScope scope(be);
    for (DType dt : {DType::f32, DType::f64}) {
      if (be == "cpu" && dt == DType::f64) continue;  // the cpu backend's convolutions are float32 only
      for (bool cl : {false, true}) {
        for (const auto& [name, spec] :
             {std::pair{"apot", QuantSpec::same(Scheme::APoT, 4)}, std::pair{"pot", QuantSpec::same(Scheme::PoT, 4)},
              std::pair{"uniform", QuantSpec::same(Scheme::Uniform, 4)},
              std::pair{"apot-c", QuantSpec::same(Scheme::APoT, 4, Semantics::APoT_C)}, std::pair{"pact", pact_spec}}) {
          const std::string what =
              "backend " + be + " " + dtype_name(dt) + (cl ? " channels-last " : " contiguous ") + name;
          INFO(what);
          const Tensor x = activation({4, 16, 10, 10}, dt, cl, 1.25, 21);
          StepResult plain, coded;
          {
            CodedScope off(false);
            plain = conv_step(spec, x, dt, 5);
          }
          {
            CodedScope on(true);
            coded = conv_step(spec, x, dt, 5);
          }
          const char* names[] = {"gx", "gweight", "gact_alpha", "gwgt_alpha"};
          for (size_t i = 0; i < plain.grads.size(); ++i) check_same_bits(coded.grads[i], plain.grads[i], names[i]);
          // the tape held xq as float; now as one byte per element (the allocator rounds blocks up a little)
          const auto saved =
              static_cast<double>(plain.live_after_forward) - static_cast<double>(coded.live_after_forward);
          const double want = static_cast<double>(x.numel()) * (static_cast<double>(dtype_size(dt)) - 1.0);
          CHECK(saved >= want * 0.98);
          CHECK(saved <= want * 1.1 + 4096);
        }
      }
    }
  }
}

TEST_CASE("coded saves stand aside under saved-tensor hooks, without grad, and when switched off") {
  const Tensor x = activation({2, 8, 6, 6}, DType::f32, true, 1.0, 4);
  CHECK(CodedSaveGuard::wanted(x));
  {
    CodedScope off(false);
    CHECK_FALSE(CodedSaveGuard::wanted(x));
  }
  {
    autograd::NoGradGuard ng;
    CHECK_FALSE(CodedSaveGuard::wanted(x));
  }
  // an outer packer (ActNN) sees the quantized input itself, as before
  int64_t seen = 0;
  autograd::SavedTensorHooks h;
  h.pack = [&](const Tensor& t, const autograd::SaveInfo& info) -> std::any {
    if (info.op == "conv2d" && info.kind == autograd::SaveKind::Activation && t.dtype() == DType::f32) ++seen;
    return t;
  };
  h.unpack = [](const std::any& p) { return std::any_cast<const Tensor&>(p); };
  {
    autograd::SavedTensorHooksGuard g(h);
    CHECK_FALSE(CodedSaveGuard::wanted(x));
    nn::ConvSpec gs;
    gs.name = "hooked";
    gs.in_channels = 8;
    gs.out_channels = 4;
    gs.kernel = 3;
    gs.padding = 1;
    QuantConv2d conv(gs, QuantSpec::same(Scheme::APoT, 4));
    minidl::sum(conv(x.detach().set_requires_grad(true))).backward();
  }
  CHECK(seen == 1);
}

TEST_CASE("QuantLinear with coded saves: the uncoded path's gradients bit for bit") {
  nn::LinearSpec g;
  g.name = "fc";
  g.in_features = 24;
  g.out_features = 5;
  const Tensor x0 = activation({6, 24}, DType::f32, false, 1.25, 8);
  auto run = [&](bool on) {
    CodedScope scope(on);
    manual_seed(3);
    QuantLinear fc(g, QuantSpec::same(Scheme::APoT, 4));
    fc.act_alpha.detach().fill_(1.25);
    Tensor x = x0.detach().set_requires_grad(true);
    minidl::sum(minidl::mul(fc(x), activation({6, 5}, DType::f32, false, 1.0, 2))).backward();
    return std::vector<Tensor>{x.grad(), fc.weight.grad(), fc.act_alpha.grad()};
  };
  const auto a = run(false), b = run(true);
  for (size_t i = 0; i < a.size(); ++i) check_same_bits(b[i], a[i], "grad " + std::to_string(i));
}
