// Transforms and the per-sample RNG: crop/flip results against hand-indexed expectations, Normalize against
// (x / 255 - mean) / std, determinism in (seed, epoch, index), and the shuffle permutation.
#include <doctest/doctest.h>

#include <algorithm>
#include <set>

#include "data/sample_rng.h"
#include "data/transforms.h"

using namespace minidl;
using namespace minidl::data;

namespace {

// h x w x c image with value (y * 16 + x) * 3 + ch + 1 (never 0, so zero padding is recognisable).
Tensor make_image(int64_t h, int64_t w, int64_t c) {
  Tensor t = empty({h, w, c}, TensorOptions{}.dtype(DType::u8));
  uint8_t* d = t.data<uint8_t>();
  for (int64_t y = 0; y < h; ++y)
    for (int64_t x = 0; x < w; ++x)
      for (int64_t ch = 0; ch < c; ++ch) d[(y * w + x) * c + ch] = static_cast<uint8_t>((y * 16 + x) * 3 + ch + 1);
  return t;
}

uint8_t at(const Tensor& t, int64_t y, int64_t x, int64_t ch) {
  return t.data<uint8_t>()[(y * t.size(1) + x) * t.size(2) + ch];
}

// A dataset of one fixed image per index, label = index.
class FixedImages : public Dataset {
 public:
  FixedImages(int64_t n, int64_t h, int64_t w) : n_(n), h_(h), w_(w) {}
  int64_t size() const override { return n_; }
  Example get(int64_t i) const override { return {make_image(h_, w_, 3), i}; }
  std::string describe() const override { return "FixedImages"; }

 private:
  int64_t n_, h_, w_;
};

}  // namespace

TEST_CASE("SampleRng: a pure function of (seed, epoch, index), uniform and randint in range") {
  SampleRng a(7, 2, 11), b(7, 2, 11), c(7, 3, 11), d(7, 2, 12), e(8, 2, 11);
  std::vector<uint32_t> va, vb, vc, vd, ve;
  for (int i = 0; i < 10; ++i) {
    va.push_back(a.next_u32());
    vb.push_back(b.next_u32());
    vc.push_back(c.next_u32());
    vd.push_back(d.next_u32());
    ve.push_back(e.next_u32());
  }
  CHECK(va == vb);
  CHECK(va != vc);
  CHECK(va != vd);
  CHECK(va != ve);
  SampleRng r(1, 0, 0);
  std::set<int64_t> seen;
  for (int i = 0; i < 2000; ++i) {
    const double u = r.uniform();
    REQUIRE(u >= 0.0);
    REQUIRE(u < 1.0);
    const int64_t k = r.randint(-2, 3);
    REQUIRE(k >= -2);
    REQUIRE(k <= 3);
    seen.insert(k);
  }
  CHECK(seen.size() == 6);
  CHECK(r.randint(5, 5) == 5);
  CHECK_THROWS_AS(r.randint(3, 2), Error);
}

TEST_CASE("epoch_order: identity without shuffle, a seeded permutation per epoch with shuffle") {
  CHECK(epoch_order(5, false, 9, 3) == std::vector<int64_t>{0, 1, 2, 3, 4});
  CHECK(epoch_order(0, true, 0, 0).empty());
  const auto p0 = epoch_order(1000, true, 42, 0);
  auto sorted = p0;
  std::sort(sorted.begin(), sorted.end());
  for (int64_t i = 0; i < 1000; ++i) REQUIRE(sorted[static_cast<size_t>(i)] == i);
  CHECK(p0 == epoch_order(1000, true, 42, 0));
  CHECK(p0 != epoch_order(1000, true, 42, 1));
  CHECK(p0 != epoch_order(1000, true, 43, 0));
  // Roughly uniform: over 1000 positions, few stay put (expected 1).
  int fixed = 0;
  for (int64_t i = 0; i < 1000; ++i) fixed += p0[static_cast<size_t>(i)] == i;
  CHECK(fixed < 10);
}

TEST_CASE("RandomCrop: pads with zeros and cuts the window the RNG chose") {
  const Tensor img = make_image(6, 5, 3);
  RandomCrop crop(4, 3, 2);  // 4 high, 3 wide, padding 2 -> padded 10 x 9
  std::set<int64_t> tops, lefts;
  for (int64_t idx = 0; idx < 300; ++idx) {
    SampleRng rng(5, 1, idx), twin(5, 1, idx);
    const Tensor out = crop.apply(img, rng);
    REQUIRE(out.sizes() == Shape{4, 3, 3});
    // The transform draws top then left, each uniform over the valid range.
    const int64_t top = twin.randint(0, 10 - 4), left = twin.randint(0, 9 - 3);
    tops.insert(top);
    lefts.insert(left);
    for (int64_t y = 0; y < 4; ++y)
      for (int64_t x = 0; x < 3; ++x)
        for (int64_t ch = 0; ch < 3; ++ch) {
          const int64_t sy = top + y - 2, sx = left + x - 2;
          const uint8_t expect = (sy >= 0 && sy < 6 && sx >= 0 && sx < 5) ? at(img, sy, sx, ch) : 0;
          REQUIRE(at(out, y, x, ch) == expect);
        }
  }
  CHECK(tops.size() == 7);   // every top in [0, 6] occurs
  CHECK(lefts.size() == 7);  // every left in [0, 6] occurs
  // No padding, full size: identity.
  SampleRng rng(0, 0, 0);
  const Tensor same = RandomCrop(6, 5, 0).apply(img, rng);
  CHECK(same.to_vector<int64_t>() == img.to_vector<int64_t>());
  CHECK_THROWS_AS(RandomCrop(20, 2).apply(img, rng), Error);
  CHECK_THROWS_WITH_AS(RandomCrop(4, 2).apply(empty({3, 6, 6}), rng), doctest::Contains("expected a uint8 HWC"), Error);
}

TEST_CASE("RandomHorizontalFlip: p = 1 mirrors, p = 0 keeps, p = 0.5 flips about half") {
  const Tensor img = make_image(3, 4, 2);
  SampleRng rng(0, 0, 0);
  const Tensor f = RandomHorizontalFlip(1.0).apply(img, rng);
  for (int64_t y = 0; y < 3; ++y)
    for (int64_t x = 0; x < 4; ++x)
      for (int64_t ch = 0; ch < 2; ++ch) CHECK(at(f, y, x, ch) == at(img, y, 3 - x, ch));
  const Tensor k = RandomHorizontalFlip(0.0).apply(img, rng);
  CHECK(k.to_vector<int64_t>() == img.to_vector<int64_t>());
  int flipped = 0;
  RandomHorizontalFlip half(0.5);
  for (int64_t idx = 0; idx < 1000; ++idx) {
    SampleRng r(3, 0, idx);
    flipped += at(half.apply(img, r), 0, 0, 0) != at(img, 0, 0, 0);
  }
  CHECK(flipped > 430);
  CHECK(flipped < 570);
  CHECK_THROWS_AS(RandomHorizontalFlip(1.5), Error);
}

TEST_CASE("ToTensor and Normalize: HWC uint8 -> CHW float, (x / 255 - mean) / std") {
  const Tensor img = make_image(2, 3, 3);
  SampleRng rng(0, 0, 0);
  const Tensor t = ToTensor().apply(img, rng);
  REQUIRE(t.sizes() == Shape{3, 2, 3});
  REQUIRE(t.dtype() == DType::f32);
  const std::vector<double> mean = {0.5, 0.25, 0.125}, stdv = {0.5, 0.2, 0.1};
  const Tensor n = Normalize(mean, stdv).apply(img, rng);
  const Tensor n2 = Normalize(mean, stdv).apply(t, rng);  // float CHW input: same result
  REQUIRE(n.sizes() == Shape{3, 2, 3});
  const float* pt = t.data<float>();
  const float* pn = n.data<float>();
  const float* pn2 = n2.data<float>();
  for (int64_t ch = 0; ch < 3; ++ch)
    for (int64_t y = 0; y < 2; ++y)
      for (int64_t x = 0; x < 3; ++x) {
        const double v = at(img, y, x, ch) / 255.0;
        const size_t i = static_cast<size_t>((ch * 2 + y) * 3 + x);
        CHECK(pt[i] == doctest::Approx(v).epsilon(1e-6));
        const double expect = (v - mean[static_cast<size_t>(ch)]) / stdv[static_cast<size_t>(ch)];
        CHECK(pn[i] == doctest::Approx(expect).epsilon(1e-5));
        CHECK(pn2[i] == doctest::Approx(expect).epsilon(1e-5));
      }
  // One mean/std for all channels.
  const Tensor one = Normalize({0.5}, {0.5}).apply(img, rng);
  CHECK(one.data<float>()[0] == doctest::Approx((1 / 255.0 - 0.5) / 0.5).epsilon(1e-5));
  CHECK_THROWS_WITH_AS(Normalize({0.1, 0.2}, {1, 1}).apply(img, rng), doctest::Contains("2 entries"), Error);
  CHECK_THROWS_AS(Normalize({0.1}, {0.0}), Error);
}

TEST_CASE("TransformDataset: augmentation is a function of (seed, epoch, index)") {
  auto base = std::make_shared<FixedImages>(50, 8, 8);
  auto tf = standard_augmentation(8, 2, true, {0.5}, {0.25});
  TransformDataset a(base, tf, 11), b(base, tf, 11), other_seed(base, tf, 12);
  CHECK(a.size() == 50);
  int differ_epoch = 0, differ_seed = 0;
  for (int64_t i = 0; i < 50; ++i) {
    const auto x = a.get_for_epoch(i, 4).image.to_vector<float>();
    REQUIRE(x == b.get_for_epoch(i, 4).image.to_vector<float>());
    differ_epoch += x != a.get_for_epoch(i, 5).image.to_vector<float>();
    differ_seed += x != other_seed.get_for_epoch(i, 4).image.to_vector<float>();
    CHECK(a.get_for_epoch(i, 4).label == i);
  }
  // 7 x 7 crop positions times 2 flips: a repeat is rare.
  CHECK(differ_epoch > 40);
  CHECK(differ_seed > 40);
  CHECK(a.get(3).image.to_vector<float>() == a.get_for_epoch(3, 0).image.to_vector<float>());
  const Tensor img = a.get(0).image;
  CHECK(img.sizes() == Shape{3, 8, 8});
  // Without augmentation the output is the normalised image.
  TransformDataset plain(base, standard_augmentation(8, 2, false, {0.5}, {0.25}), 11);
  const float v = plain.get_for_epoch(0, 9).image.data<float>()[0];
  CHECK(v == doctest::Approx((1 / 255.0 - 0.5) / 0.25).epsilon(1e-5));
  CHECK(a.describe().find("RandomCrop(8x8, padding=2)") != std::string::npos);
}

TEST_CASE("Transforms accept non-contiguous images (a strided view)") {
  // Every other column of a 4 x 6 x 3 image: a 4 x 3 x 3 view with column stride 6.
  const Tensor base = make_image(4, 6, 3);
  const Tensor view = base.as_strided({4, 3, 3}, {18, 6, 1}, 0);
  REQUIRE(!view.is_contiguous());
  SampleRng rng(0, 0, 0);
  const Tensor f = RandomHorizontalFlip(1.0).apply(view, rng);
  REQUIRE(f.sizes() == Shape{4, 3, 3});
  for (int64_t y = 0; y < 4; ++y)
    for (int64_t x = 0; x < 3; ++x)
      for (int64_t ch = 0; ch < 3; ++ch) CHECK(at(f, y, x, ch) == at(base, y, 2 * (2 - x), ch));
  const Tensor n = ToTensor().apply(view, rng);
  CHECK(n.data<float>()[1] == doctest::Approx(at(base, 0, 2, 0) / 255.0).epsilon(1e-6));
}
