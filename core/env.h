// Reading configuration from the environment, with a clear error on malformed values.
#pragma once

#include <optional>
#include <string>

namespace minidl {

/// The value of an environment variable, or nullopt when unset or empty.
std::optional<std::string> env_string(const char* name);

}  // namespace minidl
