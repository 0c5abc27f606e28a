// DataLoader: batches of a Dataset, in a seeded per-epoch order, loaded by N worker threads into a bounded
// window of prefetched batches and handed out strictly in order, so the result is identical for any number
// of workers. Destroying (or restarting) a loader mid-epoch cancels and joins its workers; a worker's error
// reaches the consumer as a minidl::Error from next().
//
//   DataLoader loader(train_set, {.batch_size = 128, .shuffle = true, .seed = 0, .num_workers = 2});
//   for (int64_t e = 0; e < epochs; ++e)
//     for (Batch& b : loader.epoch(e)) step(b.images, b.labels);
#pragma once

#include <condition_variable>
#include <cstdint>
#include <exception>
#include <iterator>
#include <map>
#include <mutex>
#include <optional>
#include <thread>
#include <vector>

#include "data/dataset.h"
#include "data/sampler.h"

namespace minidl::data {

struct Batch {
  Tensor images;                 // float32 (N, C, H, W)
  Tensor labels;                 // int64 (N)
  std::vector<int64_t> indices;  // the dataset indices in this batch, in order
  int64_t batch_index = 0;       // position within the epoch
};

struct DataLoaderOptions {
  int64_t batch_size = 1;
  bool shuffle = false;
  uint64_t seed = 0;        // the shuffle of epoch e is a function of (seed, e)
  bool drop_last = false;   // drop the final short batch
  int num_workers = 0;      // 0 = load in the consumer's thread
  int prefetch_factor = 2;  // batches in flight per worker (the bounded queue holds num_workers * this)
  std::shared_ptr<const Sampler> sampler = nullptr;  // when set, the epoch's indices (shuffle and seed are then unused)
  /// Where batches are delivered. A CUDA device: each batch is copied there by the thread that loaded it (a
  /// worker, ahead of the consumer), so the consumer gets device tensors.
  Device device = kCPU;
  /// With a CUDA device: stage the copy in page-locked memory and send it asynchronously (cudaMemcpyAsync on
  /// the device's stream), so a worker does not wait for the transfer. Needs a CUDA `device`.
  bool pin_memory = false;
};

/// Stacks examples into a Batch: every image must be float32 CHW of the same shape (apply ToTensor or
/// Normalize first). Throws naming the offending sample.
Batch collate(const std::vector<Example>& examples, const std::vector<int64_t>& indices);

class DataLoader {
 public:
  DataLoader(DatasetPtr dataset, DataLoaderOptions options);
  ~DataLoader();
  DataLoader(const DataLoader&) = delete;
  DataLoader& operator=(const DataLoader&) = delete;

  /// Batches per epoch.
  int64_t num_batches() const;
  const DataLoaderOptions& options() const { return opts_; }
  const DatasetPtr& dataset() const { return dataset_; }
  /// The sample order of an epoch (a permutation of 0..size-1, or the identity without shuffle).
  std::vector<int64_t> epoch_order(int64_t epoch) const;

  /// Starts loading an epoch (cancelling any unfinished one); batches then come from next(). `first_batch`
  /// skips the epoch's first batches without loading them (resuming mid-epoch gives the same later batches).
  void start_epoch(int64_t epoch, int64_t first_batch = 0);
  /// The next batch of the current epoch, or nullopt when the epoch is exhausted (or none was started).
  /// Rethrows a loading error as minidl::Error (the epoch is then cancelled).
  std::optional<Batch> next();
  /// Cancels the current epoch and joins the workers; returns promptly (workers finish at most the batch they
  /// are loading).
  void stop();

  class Iterator {
   public:
    using value_type = Batch;
    using difference_type = std::ptrdiff_t;
    Iterator() = default;
    explicit Iterator(DataLoader* loader) : loader_(loader) { ++*this; }
    Batch& operator*() { return *current_; }
    Batch* operator->() { return &*current_; }
    Iterator& operator++() {
      current_ = loader_->next();
      return *this;
    }
    void operator++(int) { ++*this; }
    bool operator==(std::default_sentinel_t) const { return !current_.has_value(); }

   private:
    DataLoader* loader_ = nullptr;
    std::optional<Batch> current_;
  };

  class EpochRange {
   public:
    explicit EpochRange(DataLoader* loader) : loader_(loader) {}
    Iterator begin() { return Iterator(loader_); }
    std::default_sentinel_t end() { return {}; }

   private:
    DataLoader* loader_;
  };

  /// start_epoch(e, first_batch), then iterate: `for (Batch& b : loader.epoch(e))`.
  EpochRange epoch(int64_t e, int64_t first_batch = 0);

 private:
  struct Slot {
    std::optional<Batch> batch;
    std::exception_ptr error;
  };
  Batch load_batch(int64_t b) const;
  void worker_loop();

  DatasetPtr dataset_;
  DataLoaderOptions opts_;

  // Current epoch. order_/epoch_/num_batches_ are written only while no worker runs.
  std::vector<int64_t> order_;
  int64_t epoch_ = 0;
  int64_t epoch_batches_ = 0;
  bool active_ = false;

  std::mutex mu_;
  std::condition_variable work_cv_;  // workers wait for room in the window
  std::condition_variable done_cv_;  // the consumer waits for the next batch
  int64_t next_claim_ = 0;           // next batch a worker will load
  int64_t next_deliver_ = 0;         // next batch the consumer gets
  std::map<int64_t, Slot> ready_;    // loaded batches not yet delivered (at most the window)
  bool stopping_ = false;
  std::vector<std::thread> workers_;
};

}  // namespace minidl::data
