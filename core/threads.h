// Thread count for every OpenMP region in minidl (and oneDNN / OpenBLAS, which share libgomp's pool).
#pragma once

namespace minidl {

/// Sets the number of threads used by minidl's kernels (OpenMP). n <= 0 means "all cores".
void set_num_threads(int n);
int get_num_threads();

}  // namespace minidl
