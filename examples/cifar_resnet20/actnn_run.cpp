// The packer from the flags and the per-epoch memory line.
#include "actnn_run.h"

#include <minidl.h>
#include <tensor/allocator.h>

#include <cstdio>

namespace cifar_resnet20 {

namespace qa = minidl::quant::actnn;

qa::Config actnn_config(const Config& c) {
  MINIDL_CHECK(!c.actnn_level.empty(), "ActNN: --actnn-level L0..L3 is needed here");
  qa::Config ac = qa::Config::for_level(qa::parse_level(c.actnn_level));
  ac.compress = c.ca;
  if (c.cabits > 0) ac.bits = c.cabits;
  ac.ibits = c.ibits;
  ac.per_group = c.pergroup;
  ac.per_layer = c.perlayer;
  ac.count_bn_bits = c.count_bn_bits;
  ac.use_gradient = c.usegradient;
  ac.group_size = c.groupsize;
  ac.seed = c.seed;
  ac.parse_module_bits(c.actnn_bits);
  ac.validate();
  return ac;
}

std::unique_ptr<qa::Packer> make_packer(const Config& c) {
  if (c.actnn_level.empty()) return nullptr;
  const qa::Config ac = actnn_config(c);
  auto p = std::make_unique<qa::Packer>(ac);
  std::printf("=> %s\n", ac.str().c_str());
  return p;
}

namespace {
std::string mb(size_t b) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.2f MB", static_cast<double>(b) / 1e6);
  return buf;
}
}  // namespace

std::string memory_line(qa::Packer& packer) {
  const qa::TapeBytes t = packer.peak();
  minidl::Allocator& alloc = minidl::allocator_for(minidl::kCPU);
  const minidl::AllocatorStats st = alloc.stats();
  const std::string line =
      "=> actnn " + std::string(qa::level_name(packer.config().active() ? packer.config().level : qa::Level::L0)) +
      ": tape peak " + mb(t.total()) + " (codes " + mb(t.codes) + ", meta " + mb(t.meta) + ", masks " + mb(t.masks) +
      ", indices " + mb(t.indices) + ", exact " + mb(t.exact) + "; parameters " + mb(t.params) +
      " not counted) | allocator peak live " + mb(st.peak_bytes) + ", reserved " + mb(st.reserved_bytes);
  packer.reset_peak();
  alloc.reset_peak();
  return line;
}

}  // namespace cifar_resnet20
