// oneDNN engine/stream singletons and reorder helpers for the cpu backend (see dnnl_common.h).
#include "backends/cpu/dnnl_common.h"

namespace minidl::cpu {

dnnl::engine& dnnl_engine() {
  static dnnl::engine eng(dnnl::engine::kind::cpu, 0);
  return eng;
}

dnnl::stream& dnnl_stream() {
  thread_local dnnl::stream s(dnnl_engine());
  return s;
}

dnnl::memory scratch(const dnnl::memory::desc& md, Tensor& holder) {
  const auto bytes = static_cast<int64_t>(md.get_size());
  holder = empty({bytes}, TensorOptions{}.dtype(DType::u8));
  return dnnl::memory(md, dnnl_engine(), holder.raw_data());
}

Reorder::Reorder(const dnnl::memory::desc& from, const dnnl::memory::desc& to) {
  if (from == to) return;
  needed = true;
  prim = dnnl::reorder(dnnl::reorder::primitive_desc(dnnl_engine(), from, dnnl_engine(), to));
}

dnnl::memory Reorder::in(const dnnl::memory& user, const dnnl::memory::desc& to, Tensor& holder) const {
  if (!needed) return user;
  dnnl::memory m = scratch(to, holder);
  prim.execute(dnnl_stream(), {{DNNL_ARG_FROM, user}, {DNNL_ARG_TO, m}});
  return m;
}

void Reorder::out(const dnnl::memory& from, const dnnl::memory& user) const {
  if (!needed) return;
  prim.execute(dnnl_stream(), {{DNNL_ARG_FROM, from}, {DNNL_ARG_TO, user}});
}

}  // namespace minidl::cpu
