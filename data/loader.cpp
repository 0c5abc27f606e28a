// DataLoader (see loader.h). Workers claim batch numbers in order from a shared counter, but never more than
// `window` ahead of the consumer, and park finished batches in a map keyed by batch number; the consumer takes
// batch k only when it is there. Order and contents therefore depend only on (seed, epoch), not on timing.
#include "data/loader.h"

#include <algorithm>
#include <cstring>

#include "core/error.h"
#include "data/sample_rng.h"
#include "tensor/device_transfer.h"

namespace minidl::data {

Batch collate(const std::vector<Example>& examples, const std::vector<int64_t>& indices) {
  MINIDL_CHECK(!examples.empty(), "collate: empty batch");
  MINIDL_CHECK(indices.size() == examples.size(), "collate: ", examples.size(), " examples but ", indices.size(),
               " indices");
  const Tensor& first = examples[0].image;
  MINIDL_CHECK(first.defined() && first.dtype() == DType::f32 && first.dim() == 3, "collate: sample ", indices[0],
               " has a ", first.defined() ? dtype_name(first.dtype()) : "undefined", " image of shape ",
               first.defined() ? shape_str(first.sizes()) : "[]",
               "; batches need float32 CHW images (add ToTensor or Normalize to the dataset's transforms)");
  const Shape& chw = first.sizes();
  const int64_t n = static_cast<int64_t>(examples.size());
  const int64_t per = chw[0] * chw[1] * chw[2];
  Batch batch;
  batch.images = empty({n, chw[0], chw[1], chw[2]});
  batch.labels = empty({n}, TensorOptions{}.dtype(DType::i64));
  batch.indices = indices;
  float* dst = batch.images.data<float>();
  int64_t* lab = batch.labels.data<int64_t>();
  for (int64_t i = 0; i < n; ++i) {
    const Example& ex = examples[static_cast<size_t>(i)];
    const int64_t idx = indices[static_cast<size_t>(i)];
    MINIDL_CHECK(ex.image.defined() && ex.image.dtype() == DType::f32 && ex.image.sizes() == chw, "collate: sample ",
                 idx, " has a ", ex.image.defined() ? dtype_name(ex.image.dtype()) : "undefined", " image of shape ",
                 ex.image.defined() ? shape_str(ex.image.sizes()) : "[]", ", but sample ", indices[0], " has float32 ",
                 shape_str(chw), "; all images of a batch must match");
    MINIDL_CHECK(ex.image.device().is_cpu(), "collate: sample ", idx, " is on ", ex.image.device().str());
    const Tensor src = ex.image.is_contiguous() ? ex.image : ex.image.contiguous();
    std::memcpy(dst + i * per, src.data<float>(), static_cast<size_t>(per) * sizeof(float));
    lab[i] = ex.label;
  }
  return batch;
}

DataLoader::DataLoader(DatasetPtr dataset, DataLoaderOptions options) : dataset_(std::move(dataset)), opts_(options) {
  MINIDL_CHECK(dataset_ != nullptr, "DataLoader: null dataset");
  MINIDL_CHECK(opts_.batch_size > 0, "DataLoader: batch_size must be positive, got ", opts_.batch_size);
  MINIDL_CHECK(opts_.num_workers >= 0, "DataLoader: num_workers must be >= 0, got ", opts_.num_workers);
  MINIDL_CHECK(opts_.prefetch_factor > 0, "DataLoader: prefetch_factor must be positive, got ", opts_.prefetch_factor);
  MINIDL_CHECK(!opts_.pin_memory || opts_.device.is_cuda(), "DataLoader: pin_memory needs a CUDA device, got ",
               opts_.device.str());
  if (opts_.device.is_cuda()) {  // fail here, not in a worker: one small allocation says whether the GPU works
    try {
      (void)empty({1}, TensorOptions{}.device(opts_.device));
    } catch (const std::exception& e) {
      MINIDL_FAIL("DataLoader: device ", opts_.device.str(), ": ", e.what());
    }
  }
}

DataLoader::~DataLoader() { stop(); }

int64_t DataLoader::num_batches() const {
  const int64_t n = opts_.sampler ? opts_.sampler->size() : dataset_->size();
  return opts_.drop_last ? n / opts_.batch_size : (n + opts_.batch_size - 1) / opts_.batch_size;
}

std::vector<int64_t> DataLoader::epoch_order(int64_t epoch) const {
  if (opts_.sampler) return opts_.sampler->order(epoch);
  return data::epoch_order(dataset_->size(), opts_.shuffle, opts_.seed, epoch);
}

void DataLoader::start_epoch(int64_t epoch, int64_t first_batch) {
  stop();
  epoch_batches_ = num_batches();
  MINIDL_CHECK(first_batch >= 0 && first_batch <= epoch_batches_, "DataLoader: first_batch ", first_batch,
               " out of range [0, ", epoch_batches_, "]");
  order_ = epoch_order(epoch);
  epoch_ = epoch;
  next_claim_ = first_batch;
  next_deliver_ = first_batch;
  active_ = true;
  for (int w = 0; w < opts_.num_workers; ++w) workers_.emplace_back(&DataLoader::worker_loop, this);
}

DataLoader::EpochRange DataLoader::epoch(int64_t e, int64_t first_batch) {
  start_epoch(e, first_batch);
  return EpochRange(this);
}

Batch DataLoader::load_batch(int64_t b) const {
  const int64_t n = static_cast<int64_t>(order_.size());
  const int64_t begin = b * opts_.batch_size, end = std::min(n, begin + opts_.batch_size);
  std::vector<int64_t> indices(order_.begin() + begin, order_.begin() + end);
  std::vector<Example> examples;
  examples.reserve(indices.size());
  for (int64_t idx : indices) {
    try {
      examples.push_back(dataset_->get_for_epoch(idx, epoch_));
    } catch (const std::exception& e) {
      // Keep the reader's message (it names the file) and add where in the epoch it happened.
      MINIDL_FAIL("DataLoader: loading sample ", idx, " (epoch ", epoch_, ", batch ", b, "): ", e.what());
    }
  }
  Batch batch = collate(examples, indices);
  batch.batch_index = b;
  if (opts_.device.is_cuda()) {
    batch.images = transfer_to(batch.images, opts_.device, opts_.pin_memory);
    batch.labels = transfer_to(batch.labels, opts_.device, opts_.pin_memory);
  }
  return batch;
}

void DataLoader::worker_loop() {
  const int64_t window = static_cast<int64_t>(opts_.num_workers) * opts_.prefetch_factor;
  std::unique_lock<std::mutex> lk(mu_);
  for (;;) {
    work_cv_.wait(lk,
                  [&] { return stopping_ || next_claim_ >= epoch_batches_ || next_claim_ < next_deliver_ + window; });
    if (stopping_ || next_claim_ >= epoch_batches_) return;
    const int64_t b = next_claim_++;
    lk.unlock();
    Slot slot;
    try {
      slot.batch = load_batch(b);
    } catch (...) {
      slot.error = std::current_exception();
    }
    lk.lock();
    if (stopping_) return;
    ready_.emplace(b, std::move(slot));
    done_cv_.notify_all();
  }
}

std::optional<Batch> DataLoader::next() {
  if (!active_) return std::nullopt;
  if (next_deliver_ >= epoch_batches_) {
    stop();  // epoch done: join the (already finished) workers
    return std::nullopt;
  }
  const int64_t b = next_deliver_;
  Slot slot;
  if (opts_.num_workers == 0) {
    try {
      slot.batch = load_batch(b);
    } catch (...) {
      slot.error = std::current_exception();
    }
    ++next_deliver_;
  } else {
    std::unique_lock<std::mutex> lk(mu_);
    done_cv_.wait(lk, [&] { return ready_.count(b) > 0; });
    auto it = ready_.find(b);
    slot = std::move(it->second);
    ready_.erase(it);
    ++next_deliver_;
    lk.unlock();
    work_cv_.notify_all();  // the window moved: a worker may claim another batch
  }
  if (slot.error) {
    stop();  // a failed epoch is over; later next() calls return nullopt
    try {
      std::rethrow_exception(slot.error);
    } catch (const Error&) {
      throw;
    } catch (const std::exception& e) {
      MINIDL_FAIL("DataLoader: batch ", b, ": ", e.what());
    } catch (...) {
      MINIDL_FAIL("DataLoader: batch ", b, ": unknown error");
    }
  }
  return std::move(slot.batch);
}

void DataLoader::stop() {
  {
    std::lock_guard<std::mutex> lk(mu_);
    stopping_ = true;
  }
  work_cv_.notify_all();
  for (auto& t : workers_) t.join();
  workers_.clear();
  std::lock_guard<std::mutex> lk(mu_);
  ready_.clear();
  stopping_ = false;
  active_ = false;
}

}  // namespace minidl::data
