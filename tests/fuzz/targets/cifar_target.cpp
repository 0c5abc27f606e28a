// Fuzz target: a file holding the input read by CifarDataset as CIFAR-10, CIFAR-100 (fine labels) and
// CIFAR-100 (coarse labels). When accepted, the record count must follow from the size, and the first and last
// examples must carry the record's label and its planar R, G, B bytes interleaved to HWC.
#include "data/cifar.h"
#include "fuzz_targets.h"

namespace minidl::fuzz {
namespace {

void check_variant(const std::string& path, const uint8_t* data, size_t size, data::CifarVariant variant, bool coarse) {
  const data::CifarDataset ds({path}, variant, coarse);
  const int64_t rec = data::CifarDataset::record_size(variant);
  const int64_t label_bytes = rec - 3072;
  FUZZ_REQUIRE(ds.size() * rec == static_cast<int64_t>(size), ds.size(), " records of ", rec, " bytes from ", size);
  for (int64_t i : {int64_t{0}, ds.size() - 1}) {
    const data::Example ex = ds.get(i);
    const uint8_t* record = data + i * rec;
    const int64_t label = variant == data::CifarVariant::cifar10 ? record[0] : record[coarse ? 0 : 1];
    FUZZ_REQUIRE(ex.label == label && ex.label < ds.num_classes(), "record ", i, " label ", ex.label, " vs ", label);
    FUZZ_REQUIRE(ex.image.sizes() == (Shape{32, 32, 3}), "record ", i, " shape ", shape_str(ex.image.sizes()));
    const uint8_t* px = ex.image.data<uint8_t>();
    for (int64_t p = 0; p < 1024; ++p)
      for (int64_t c = 0; c < 3; ++c)
        FUZZ_REQUIRE(px[p * 3 + c] == record[label_bytes + c * 1024 + p], "record ", i, " pixel ", p, " channel ", c);
  }
}

}  // namespace

Outcome fuzz_cifar(const uint8_t* data, size_t size) {
  Outcome out;
  const std::string path = scratch_file("cifar", data, size);
  attempt(out, [&] { check_variant(path, data, size, data::CifarVariant::cifar10, false); });
  attempt(out, [&] { check_variant(path, data, size, data::CifarVariant::cifar100, false); });
  attempt(out, [&] { check_variant(path, data, size, data::CifarVariant::cifar100, true); });
  return out;
}

}  // namespace minidl::fuzz
