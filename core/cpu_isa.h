// Run-time instruction-set dispatch of minidl's hand-written kernels (the cpu backend's Winograd and fused
// quantizers, the ActNN codec, data/'s resampling): the level this process uses is the host's best level, capped
// by MINIDL_CPU_ISA (baseline | avx2 | avx512, like oneDNN's ONEDNN_MAX_CPU_ISA) or by set_cpu_isa_cap. The cap
// lets every host test the scalar fallbacks, and an AVX-512 host test its AVX2 variants. It lives in core/ so
// that every floor (data/ included) and every build (with or without oneDNN) dispatches the same way;
// backends/cpu/cpu_isa.h adds the one-line summary that also names oneDNN's own dispatch.
#pragma once

#include <optional>
#include <string>

namespace minidl::cpu {

/// Kernel levels, ordered: a level implies the ones below it.
enum class CpuIsa { Baseline = 0, Avx2 = 1, Avx512 = 2 };

/// "baseline", "avx2" or "avx512".
const char* isa_name(CpuIsa isa);
/// Parses a level name (case-insensitive); throws minidl::Error naming the accepted values otherwise.
CpuIsa parse_isa(const std::string& name);

/// What the CPU can run: Avx2 needs AVX2 + FMA, Avx512 needs AVX-512 F/BW/VL/DQ (oneDNN's avx512_core).
CpuIsa host_isa();
/// The level hand-written kernels use now: min(host_isa(), cap). Throws on a malformed MINIDL_CPU_ISA.
CpuIsa active_isa();
/// True when kernels of level `isa` may run (active_isa() >= isa).
inline bool isa_enabled(CpuIsa isa) { return static_cast<int>(active_isa()) >= static_cast<int>(isa); }

/// Overrides MINIDL_CPU_ISA for this process (tests); nullopt goes back to the environment.
void set_cpu_isa_cap(std::optional<CpuIsa> cap);
/// The override set by set_cpu_isa_cap, if any.
std::optional<CpuIsa> cpu_isa_cap_override();

}  // namespace minidl::cpu
