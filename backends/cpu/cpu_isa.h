// The cpu backend's view of run-time ISA dispatch: core/cpu_isa.h's levels and cap (MINIDL_CPU_ISA), plus a
// summary line that also names the ISA oneDNN dispatches to (ONEDNN_MAX_CPU_ISA), which is separate.
#pragma once

#include <string>

#include "core/cpu_isa.h"

namespace minidl::cpu {

/// One line for logs and CI: the host's level, the cap and the active level of minidl's kernels, and the ISA
/// oneDNN dispatches to.
std::string isa_summary();

}  // namespace minidl::cpu
