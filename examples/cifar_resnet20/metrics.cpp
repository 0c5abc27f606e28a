// metrics.csv reading and atomic rewriting; see metrics.h.
#include "metrics.h"

#include <minidl.h>

#include <algorithm>
#include <fstream>
#include <vector>

namespace cifar_resnet20 {

namespace fs = std::filesystem;

namespace {

const char* const kHeader = "epoch,lr,train_loss,train_acc,test_loss,test_acc,epoch_seconds,img_per_s";

std::vector<std::string> read_lines(const fs::path& file) {
  std::vector<std::string> lines;
  if (std::ifstream in(file); in) {
    std::string line;
    while (std::getline(in, line))
      if (!line.empty()) lines.push_back(line);
  }
  return lines;
}

void write_lines(const fs::path& file, const std::vector<std::string>& lines) {
  const fs::path tmp = file.string() + ".tmp";
  {
    std::ofstream out(tmp, std::ios::trunc);
    MINIDL_CHECK(out.good(), "cannot write ", tmp.string());
    for (const auto& l : lines) out << l << '\n';
    out.flush();
    MINIDL_CHECK(out.good(), "cannot write ", tmp.string());
  }
  fs::rename(tmp, file);
}

// The epoch of a data row, or -1 for a row that is not "<epoch>,<7 more fields>".
int64_t row_epoch(const std::string& line) {
  if (std::count(line.begin(), line.end(), ',') != 7) return -1;
  try {
    size_t used = 0;
    const int64_t e = std::stoll(line, &used);
    return used > 0 && line[used] == ',' ? e : -1;
  } catch (const std::exception&) {
    return -1;
  }
}

}  // namespace

void prepare_metrics(const fs::path& file, int64_t next_epoch) {
  std::vector<std::string> keep{kHeader};
  for (const auto& line : read_lines(file)) {
    const int64_t e = row_epoch(line);
    if (e >= 0 && e < next_epoch) keep.push_back(line);
  }
  write_lines(file, keep);
}

void append_metrics_row(const fs::path& file, const std::string& row) {
  std::vector<std::string> lines = read_lines(file);
  if (lines.empty()) lines.push_back(kHeader);
  lines.push_back(row);
  write_lines(file, lines);
}

}  // namespace cifar_resnet20
