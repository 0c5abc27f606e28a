// Test helper: runs a scope on the reference CPU backend (the float64 oracle) and restores the previous one.
#pragma once

#include <string>

#include "backends/backend.h"

struct RefBackendGuard {
  std::string prev = minidl::cpu_backend_name();
  RefBackendGuard() { minidl::set_cpu_backend("ref"); }
  ~RefBackendGuard() { minidl::set_cpu_backend(prev); }
  RefBackendGuard(const RefBackendGuard&) = delete;
  RefBackendGuard& operator=(const RefBackendGuard&) = delete;
};
