// See pipeline.h.
#include "pipeline.h"

#include <data/decode_crop_dataset.h>
#include <data/image_folder.h>
#include <data/resize_crop.h>
#include <data/transforms.h>
#include <minidl.h>

#include <filesystem>

namespace imagenet_resnet18 {

using namespace minidl;

namespace {

const std::vector<double> kMean{0.485, 0.456, 0.406}, kStd{0.229, 0.224, 0.225};

// FakeData: one fixed random image (from the seeded global generator) for every sample, label index % classes, made on
// the fly (no I/O and next to no CPU, so a --synthetic run measures the model alone).
class SyntheticImages : public data::Dataset {
 public:
  SyntheticImages(int64_t n, int64_t classes, int64_t size)
      : n_(n), classes_(classes), image_(randn({3, size, size})) {}
  int64_t size() const override { return n_; }
  data::Example get(int64_t index) const override {
    data::detail::check_index("SyntheticImages", index, n_);
    return {image_, index % classes_};
  }
  int64_t num_classes() const override { return classes_; }
  std::string describe() const override {
    return ::minidl::detail::concat("synthetic images (", n_, " of ", image_.size(1), "x", image_.size(2), ", ",
                                    classes_, " classes)");
  }

 private:
  int64_t n_, classes_;
  Tensor image_;
};

data::DatasetPtr maybe_skip(data::DatasetPtr ds, const Config& c, Datasets& out) {
  if (!c.skip_bad_images) return ds;
  auto s = std::make_shared<const data::SkipBadSamples>(std::move(ds));
  out.skippers.push_back(s);
  return s;
}

}  // namespace

int64_t Datasets::skipped() const {
  int64_t n = 0;
  for (auto& s : skippers) n += s->skipped();
  return n;
}

Datasets make_datasets(const Config& c, bool need_train) {
  Datasets out;
  if (c.synthetic) {
    out.num_classes = 1000;
    out.train = std::make_shared<SyntheticImages>(c.batch_size * 50, 1000, c.image_size);
    out.val = std::make_shared<SyntheticImages>(c.batch_size * 5, 1000, c.image_size);
    return out;
  }
  namespace fs = std::filesystem;
  const std::string val_dir = (fs::path(c.data) / "val").string();
  auto val_folder = std::make_shared<data::ImageFolder>(val_dir);
  auto val_tf = std::make_shared<data::Compose>(std::vector<data::TransformPtr>{
      std::make_shared<data::Resize>(c.val_resize_size()), std::make_shared<data::CenterCrop>(c.image_size),
      std::make_shared<data::Normalize>(kMean, kStd)});
  out.val = maybe_skip(std::make_shared<data::TransformDataset>(val_folder, val_tf, c.seed), c, out);
  out.num_classes = val_folder->num_classes();
  if (need_train) {
    auto train_folder = std::make_shared<data::ImageFolder>((fs::path(c.data) / "train").string());
    MINIDL_CHECK(train_folder->classes() == val_folder->classes(), "'", c.data,
                 "': train/ and val/ have different class folders (", train_folder->num_classes(), " vs ",
                 val_folder->num_classes(), ")");
    data::DecodeCropOptions o;
    o.height = o.width = c.image_size;
    o.crop.scale_min = c.min_scale;
    o.mean = kMean;
    o.stdev = kStd;
    o.dct_scaling = c.dct_scaling;
    out.train = maybe_skip(std::make_shared<data::DecodeCropDataset>(train_folder, o, c.seed), c, out);
  }
  return out;
}

}  // namespace imagenet_resnet18
