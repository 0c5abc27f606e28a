// Honest skips for doctest cases. A test case that cannot run (no data, no GPU, a kernel switched off on this
// host) calls MINIDL_SKIP(reason...) and returns: the marker line it prints makes CTest report the test as
// *skipped* (tests/CMakeLists.txt sets SKIP_REGULAR_EXPRESSION to it), so it never counts as passed. Print the
// marker only when the whole case did not run: CTest marks the entire test skipped when it sees it.
#pragma once

#include <doctest/doctest.h>

#include <iostream>
#include <sstream>

/// The line CTest looks for (keep in sync with tests/CMakeLists.txt and scripts/isa-matrix).
#define MINIDL_SKIP_MARKER "MINIDL-SKIPPED:"

#define MINIDL_SKIP(...)                                                       \
  do {                                                                         \
    std::ostringstream minidl_skip_os_;                                        \
    minidl_skip_os_ << __VA_ARGS__;                                            \
    std::cout << MINIDL_SKIP_MARKER " " << minidl_skip_os_.str() << std::endl; \
    MESSAGE("skipped: " << minidl_skip_os_.str());                             \
    return;                                                                    \
  } while (0)
