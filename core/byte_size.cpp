// parse_byte_size / format_bytes (see byte_size.h).
#include "core/byte_size.h"

#include <cctype>
#include <cmath>
#include <cstdio>
#include <cstdlib>

#include "core/error.h"

namespace minidl {

uint64_t parse_byte_size(std::string_view text, std::string_view what) {
  const std::string s(text);
  auto bad = [&](const char* why) {
    MINIDL_FAIL(what, ": '", s, "' is not a byte count (", why, "; expected e.g. 1073741824, 512M, 1G or 1.5GiB)");
  };
  size_t i = 0;
  while (i < s.size() && (std::isdigit(static_cast<unsigned char>(s[i])) || s[i] == '.')) ++i;
  if (i == 0) bad("no number");
  const std::string digits = s.substr(0, i);  // named: strtod's end pointer points into it
  char* end = nullptr;
  const double number = std::strtod(digits.c_str(), &end);
  if (end == nullptr || *end != '\0') bad("malformed number");
  std::string unit = s.substr(i);
  for (char& ch : unit) ch = static_cast<char>(std::toupper(static_cast<unsigned char>(ch)));
  // Strip the optional "B" / "IB" tail so that K, KB and KiB all mean 1024.
  if (unit.size() >= 3 && unit.substr(unit.size() - 2) == "IB")
    unit.resize(unit.size() - 2);
  else if (unit.size() >= 2 && unit.back() == 'B')
    unit.pop_back();
  double scale = 1;
  if (unit.empty() || unit == "B")
    scale = 1;
  else if (unit == "K")
    scale = 1024.0;
  else if (unit == "M")
    scale = 1024.0 * 1024;
  else if (unit == "G")
    scale = 1024.0 * 1024 * 1024;
  else if (unit == "T")
    scale = 1024.0 * 1024 * 1024 * 1024;
  else
    bad("unknown unit");
  const double bytes = std::floor(number * scale);
  if (!(bytes >= 0) || bytes > 1.8e19) bad("out of range");
  return static_cast<uint64_t>(bytes);
}

std::string format_bytes(uint64_t bytes) {
  const char* units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  double v = static_cast<double>(bytes);
  int u = 0;
  while (v >= 1024 && u < 4) {
    v /= 1024;
    ++u;
  }
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.2f %s", v, units[u]);
  return detail::concat(bytes, " bytes (", buf, ")");
}

}  // namespace minidl
