// DataLoader: every index exactly once per epoch, seeded order, drop_last, in-order delivery identical for any
// number of workers (with random augmentation and jittered load times), error propagation from workers, and a
// prompt, clean shutdown when a loader is destroyed or restarted mid-epoch.
#include <doctest/doctest.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <thread>

#include "backends/cuda/cuda_device.h"
#include "data/loader.h"
#include "data/subset.h"
#include "data/transforms.h"

using namespace minidl;
using namespace minidl::data;
using Clock = std::chrono::steady_clock;

namespace {

// Image (1, 2, 2) filled with the index, label = index % 10; optional per-sample delay and a failing index.
class IndexDataset : public Dataset {
 public:
  explicit IndexDataset(int64_t n, int delay_us = 0, int64_t fail_at = -1)
      : n_(n), delay_us_(delay_us), fail_at_(fail_at) {}
  int64_t size() const override { return n_; }
  Example get(int64_t i) const override {
    gets_.fetch_add(1);
    // Jitter: different samples take different times, so workers finish out of order.
    if (delay_us_ > 0) std::this_thread::sleep_for(std::chrono::microseconds(delay_us_ * (1 + (i * 7) % 5)));
    if (i == fail_at_) MINIDL_FAIL("IndexDataset: corrupt file 'sample_", i, ".bin'");
    Tensor img = full({1, 2, 2}, static_cast<double>(i));
    return {img, i % 10};
  }
  std::string describe() const override { return "IndexDataset"; }
  int64_t gets() const { return gets_.load(); }

 private:
  int64_t n_;
  int delay_us_;
  int64_t fail_at_;
  mutable std::atomic<int64_t> gets_{0};
};

// uint8 HWC images with per-index content, for the augmentation determinism test.
class PatternDataset : public Dataset {
 public:
  explicit PatternDataset(int64_t n) : n_(n) {}
  int64_t size() const override { return n_; }
  Example get(int64_t i) const override {
    if (i % 3 == 0) std::this_thread::sleep_for(std::chrono::microseconds(200));
    Tensor t = empty({6, 6, 3}, TensorOptions{}.dtype(DType::u8));
    uint8_t* d = t.data<uint8_t>();
    for (int64_t k = 0; k < 108; ++k) d[k] = static_cast<uint8_t>(i * 13 + k * 7);
    return {t, i % 4};
  }
  std::string describe() const override { return "PatternDataset"; }

 private:
  int64_t n_;
};

std::vector<Batch> collect(DataLoader& loader, int64_t epoch) {
  std::vector<Batch> out;
  for (Batch& b : loader.epoch(epoch)) out.push_back(std::move(b));
  return out;
}

std::vector<int64_t> flat_indices(const std::vector<Batch>& batches) {
  std::vector<int64_t> all;
  for (const auto& b : batches) all.insert(all.end(), b.indices.begin(), b.indices.end());
  return all;
}

}  // namespace

TEST_CASE("DataLoader: every index exactly once per epoch, batch contents match their indices") {
  auto ds = std::make_shared<IndexDataset>(50);
  for (int workers : {0, 3}) {
    DataLoader loader(ds, {.batch_size = 7, .shuffle = true, .seed = 1, .num_workers = workers});
    CHECK(loader.num_batches() == 8);
    for (int64_t epoch = 0; epoch < 3; ++epoch) {
      auto batches = collect(loader, epoch);
      REQUIRE(batches.size() == 8);
      auto all = flat_indices(batches);
      CHECK(all == loader.epoch_order(epoch));
      std::sort(all.begin(), all.end());
      for (int64_t i = 0; i < 50; ++i) REQUIRE(all[static_cast<size_t>(i)] == i);
      CHECK(batches.back().indices.size() == 1);  // 50 = 7 * 7 + 1
      for (size_t k = 0; k < batches.size(); ++k) {
        const Batch& b = batches[k];
        CHECK(b.batch_index == static_cast<int64_t>(k));
        const int64_t n = static_cast<int64_t>(b.indices.size());
        REQUIRE(b.images.sizes() == Shape{n, 1, 2, 2});
        REQUIRE(b.labels.sizes() == Shape{n});
        REQUIRE(b.labels.dtype() == DType::i64);
        const float* im = b.images.data<float>();
        const int64_t* lab = b.labels.data<int64_t>();
        for (int64_t j = 0; j < n; ++j) {
          const int64_t idx = b.indices[static_cast<size_t>(j)];
          CHECK(lab[j] == idx % 10);
          for (int p = 0; p < 4; ++p) REQUIRE(im[j * 4 + p] == static_cast<float>(idx));
        }
      }
    }
  }
}

TEST_CASE("DataLoader: same seed and epoch give the same order, another epoch or seed another, no shuffle is 0..n-1") {
  auto ds = std::make_shared<IndexDataset>(40);
  DataLoader a(ds, {.batch_size = 8, .shuffle = true, .seed = 5}), b(ds, {.batch_size = 8, .shuffle = true, .seed = 5});
  DataLoader c(ds, {.batch_size = 8, .shuffle = true, .seed = 6});
  const auto a0 = flat_indices(collect(a, 0));
  CHECK(a0 == flat_indices(collect(b, 0)));
  CHECK(a0 == flat_indices(collect(a, 0)));  // repeatable
  CHECK(a0 != flat_indices(collect(a, 1)));
  CHECK(a0 != flat_indices(collect(c, 0)));
  DataLoader plain(ds, {.batch_size = 8});
  std::vector<int64_t> iota(40);
  for (int64_t i = 0; i < 40; ++i) iota[static_cast<size_t>(i)] = i;
  CHECK(flat_indices(collect(plain, 0)) == iota);
  CHECK(flat_indices(collect(plain, 7)) == iota);
}

TEST_CASE("DataLoader: drop_last drops the short final batch") {
  auto ds = std::make_shared<IndexDataset>(50);
  DataLoader loader(ds, {.batch_size = 7, .shuffle = true, .seed = 3, .drop_last = true, .num_workers = 2});
  CHECK(loader.num_batches() == 7);
  auto batches = collect(loader, 0);
  REQUIRE(batches.size() == 7);
  for (const auto& b : batches) CHECK(b.indices.size() == 7);
  auto all = flat_indices(batches);
  std::sort(all.begin(), all.end());
  CHECK(std::adjacent_find(all.begin(), all.end()) == all.end());  // 49 distinct indices
  const auto order = loader.epoch_order(0);
  CHECK(flat_indices(batches) == std::vector<int64_t>(order.begin(), order.begin() + 49));
  // Exact multiple: nothing dropped.
  DataLoader exact(std::make_shared<IndexDataset>(21), {.batch_size = 7, .drop_last = true});
  CHECK(exact.num_batches() == 3);
  // Fewer samples than one batch.
  DataLoader none(std::make_shared<IndexDataset>(5), {.batch_size = 7, .drop_last = true, .num_workers = 2});
  CHECK(collect(none, 0).empty());
}

TEST_CASE("DataLoader: multi-worker batches equal single-worker batches, augmentation included") {
  auto base = std::make_shared<PatternDataset>(64);
  auto ds = std::make_shared<TransformDataset>(
      base, standard_augmentation(6, 2, true, {0.5, 0.4, 0.3}, {0.2, 0.25, 0.3}), 17);
  DataLoader single(ds, {.batch_size = 5, .shuffle = true, .seed = 2, .num_workers = 0});
  DataLoader multi(ds, {.batch_size = 5, .shuffle = true, .seed = 2, .num_workers = 4, .prefetch_factor = 1});
  for (int64_t epoch : {0, 1}) {
    auto s = collect(single, epoch), m = collect(multi, epoch);
    REQUIRE(s.size() == m.size());
    REQUIRE(s.size() == 13);
    for (size_t k = 0; k < s.size(); ++k) {
      CHECK(s[k].indices == m[k].indices);
      REQUIRE(s[k].images.sizes() == m[k].images.sizes());
      CHECK(s[k].images.to_vector<float>() == m[k].images.to_vector<float>());
      CHECK(s[k].labels.to_vector<int64_t>() == m[k].labels.to_vector<int64_t>());
    }
  }
  // Augmentation really differs between epochs.
  CHECK(collect(single, 0)[0].images.to_vector<float>() != collect(single, 1)[0].images.to_vector<float>());
}

TEST_CASE("DataLoader: a worker's error reaches the consumer as minidl::Error naming the file") {
  for (int workers : {0, 2}) {
    auto ds = std::make_shared<IndexDataset>(30, 0, 13);
    DataLoader loader(ds, {.batch_size = 4, .num_workers = workers});
    loader.start_epoch(0);
    for (int k = 0; k < 3; ++k) REQUIRE(loader.next().has_value());  // samples 0..11
    try {
      loader.next();  // samples 12..15: 13 fails
      FAIL("expected an error");
    } catch (const Error& e) {
      const std::string msg = e.what();
      CHECK(msg.find("sample_13.bin") != std::string::npos);
      CHECK(msg.find("loading sample 13 (epoch 0, batch 3)") != std::string::npos);
    }
    CHECK(!loader.next().has_value());  // the failed epoch is over
    // The loader is usable again: a range-for over a fresh epoch hits the same error.
    CHECK_THROWS_AS(collect(loader, 1), Error);
  }
}

TEST_CASE("DataLoader: destroying or restarting a loader mid-epoch returns promptly and joins the workers") {
  // 2 ms per sample (up to 10 ms with jitter), batches of 8: a full epoch would take seconds.
  auto ds = std::make_shared<IndexDataset>(400, 2000);
  const auto t0 = Clock::now();
  {
    DataLoader loader(ds, {.batch_size = 8, .shuffle = true, .num_workers = 3});
    loader.start_epoch(0);
    REQUIRE(loader.next().has_value());
  }  // destroyed with workers busy
  const double secs = std::chrono::duration<double>(Clock::now() - t0).count();
  CHECK(secs < 2.0);
  // Bounded prefetch: the workers loaded at most the window (3 workers x 2) plus the delivered batch.
  CHECK(ds->gets() <= 8 * (3 * 2 + 1) + 8 * 3);

  DataLoader loader(ds, {.batch_size = 8, .num_workers = 2});
  loader.start_epoch(0);
  REQUIRE(loader.next().has_value());
  loader.start_epoch(1);  // abandons epoch 0
  auto b = loader.next();
  REQUIRE(b.has_value());
  CHECK(b->indices.front() == 0);
  CHECK(b->batch_index == 0);
  // Breaking out of a range-for, then destroying: no hang.
  for (Batch& batch : loader.epoch(2)) {
    CHECK(batch.batch_index == 0);
    break;
  }
  loader.stop();
  CHECK(!loader.next().has_value());
}

TEST_CASE("DataLoader: bad options and bad samples") {
  auto ds = std::make_shared<IndexDataset>(10);
  CHECK_THROWS_AS(DataLoader(ds, {.batch_size = 0}), Error);
  CHECK_THROWS_AS(DataLoader(ds, {.batch_size = 2, .num_workers = -1}), Error);
  CHECK_THROWS_AS(DataLoader(nullptr, {.batch_size = 2}), Error);
  // uint8 images without ToTensor/Normalize cannot be batched.
  DataLoader raw(std::make_shared<PatternDataset>(4), {.batch_size = 2});
  raw.start_epoch(0);
  CHECK_THROWS_WITH_AS(raw.next(), doctest::Contains("add ToTensor or Normalize"), Error);
  CHECK(!DataLoader(ds, {.batch_size = 2}).next().has_value());  // no epoch started
}

TEST_CASE("DataLoader: starting at a later batch gives the same remaining batches (mid-epoch resume)") {
  auto ds = std::make_shared<IndexDataset>(45);
  for (int workers : {0, 2}) {
    DataLoader loader(ds, {.batch_size = 6, .shuffle = true, .seed = 4, .num_workers = workers});
    const auto full = collect(loader, 3);
    std::vector<Batch> tail;
    for (Batch& b : loader.epoch(3, 5)) tail.push_back(std::move(b));
    REQUIRE(tail.size() == full.size() - 5);
    for (size_t k = 0; k < tail.size(); ++k) {
      CHECK(tail[k].batch_index == full[k + 5].batch_index);
      CHECK(tail[k].indices == full[k + 5].indices);
    }
    CHECK(collect(loader, 3).size() == full.size());
    loader.start_epoch(3, loader.num_batches());
    CHECK(!loader.next().has_value());
    CHECK_THROWS_AS(loader.start_epoch(0, loader.num_batches() + 1), Error);
  }
}

TEST_CASE("Subset: selected samples, first(n), range checks") {
  auto ds = std::make_shared<IndexDataset>(20);
  Subset s(ds, {5, 3, 19});
  REQUIRE(s.size() == 3);
  CHECK(s.get(0).label == 5);
  CHECK(s.get(2).label == 9);
  CHECK(s.get(1).image.data<float>()[0] == 3.0f);
  CHECK_THROWS_AS(s.get(3), Error);
  CHECK_THROWS_WITH_AS(Subset(ds, {20}), doctest::Contains("index 20 out of range [0, 20)"), Error);
  CHECK(Subset::first(ds, 7)->size() == 7);
  CHECK(Subset::first(ds, 70)->size() == 20);
  DataLoader loader(Subset::first(ds, 10), {.batch_size = 4, .shuffle = true, .num_workers = 2});
  auto all = flat_indices(collect(loader, 0));
  std::sort(all.begin(), all.end());
  CHECK(all == std::vector<int64_t>{0, 1, 2, 3, 4, 5, 6, 7, 8, 9});
}

TEST_CASE("DataLoader: device and pin_memory options are checked up front") {
  auto ds = std::make_shared<IndexDataset>(8);
  CHECK_THROWS_WITH_AS(DataLoader(ds, {.batch_size = 4, .pin_memory = true}),
                       doctest::Contains("pin_memory needs a CUDA device, got cpu"), Error);
  if (cuda_device_count() == 0) {  // without a GPU, asking for one is a clear error, not a silent host loader
    CHECK_THROWS_WITH_AS(DataLoader(ds, {.batch_size = 4, .device = Device::cuda(0), .pin_memory = true}),
                         doctest::Contains("DataLoader: device cuda:0: "), Error);
  } else {  // batches arrive on the GPU with the host loader's values
    DataLoader host(ds, {.batch_size = 4});
    DataLoader gpu(ds, {.batch_size = 4, .num_workers = 2, .device = Device::cuda(0), .pin_memory = true});
    const auto hb = collect(host, 0), gb = collect(gpu, 0);
    REQUIRE(hb.size() == gb.size());
    for (size_t i = 0; i < hb.size(); ++i) {
      CHECK(gb[i].images.device() == Device::cuda(0));
      CHECK(gb[i].images.to(kCPU).to_vector<float>() == hb[i].images.to_vector<float>());
      CHECK(gb[i].labels.to(kCPU).to_vector<int64_t>() == hb[i].labels.to_vector<int64_t>());
    }
  }
}
