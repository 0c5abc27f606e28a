// See cpu_isa.h: the summary line (minidl's levels from core/cpu_isa, oneDNN's effective ISA).
#include "backends/cpu/cpu_isa.h"

#include <dnnl.hpp>

#include "core/env.h"

namespace minidl::cpu {
namespace {

const char* onednn_isa_name(dnnl::cpu_isa isa) {
  switch (isa) {
    case dnnl::cpu_isa::sse41: return "sse41";
    case dnnl::cpu_isa::avx: return "avx";
    case dnnl::cpu_isa::avx2: return "avx2";
    case dnnl::cpu_isa::avx2_vnni: return "avx2_vnni";
    case dnnl::cpu_isa::avx512_mic: return "avx512_mic";
    case dnnl::cpu_isa::avx512_mic_4ops: return "avx512_mic_4ops";
    case dnnl::cpu_isa::avx512_core: return "avx512_core";
    case dnnl::cpu_isa::avx512_core_vnni: return "avx512_core_vnni";
    case dnnl::cpu_isa::avx512_core_bf16: return "avx512_core_bf16";
    case dnnl::cpu_isa::avx512_core_amx: return "avx512_core_amx";
    case dnnl::cpu_isa::all: return "all";
    default: return "other";
  }
}

}  // namespace

std::string isa_summary() {
  const auto o = cpu_isa_cap_override();
  const std::string cap =
      o ? std::string(isa_name(*o)) + " (set by the program)" : env_string("MINIDL_CPU_ISA").value_or("auto");
  return std::string("minidl kernels: ") + isa_name(active_isa()) + " (host " + isa_name(host_isa()) +
         ", MINIDL_CPU_ISA " + cap + "); oneDNN: " + onednn_isa_name(dnnl::get_effective_cpu_isa()) +
         " (ONEDNN_MAX_CPU_ISA " + env_string("ONEDNN_MAX_CPU_ISA").value_or("unset") + ")";
}

}  // namespace minidl::cpu
