// minidl::Error and MINIDL_CHECK: the one way library code reports bad input.
// Library code throws; it never calls exit() or abort() on user error.
#pragma once

#include <cstdint>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

namespace minidl {

class Error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

namespace detail {
template <typename... Args>
std::string concat(const Args&... args) {
  std::ostringstream os;
  (os << ... << args);
  return os.str();
}
}  // namespace detail

/// "[2, 3, 4]" — how every error message prints a shape.
std::string shape_str(const std::vector<int64_t>& shape);

}  // namespace minidl

/// MINIDL_CHECK(cond, "op: message ", value, ...) throws minidl::Error with the concatenated message.
#define MINIDL_CHECK(cond, ...)                                               \
  do {                                                                        \
    if (!(cond)) throw ::minidl::Error(::minidl::detail::concat(__VA_ARGS__)); \
  } while (0)

#define MINIDL_FAIL(...) throw ::minidl::Error(::minidl::detail::concat(__VA_ARGS__))
