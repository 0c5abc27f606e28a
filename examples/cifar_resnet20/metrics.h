// metrics.csv: one row per finished epoch, each epoch exactly once even across kills and resumes. Every change
// rewrites the (small) file through a temporary file and a rename, so a kill never leaves a torn row.
#pragma once

#include <filesystem>
#include <string>

namespace cifar_resnet20 {

/// Opens the metrics of a run that continues at `next_epoch`: keeps the header and the rows of earlier epochs,
/// drops rows of epochs that will run again (written before a kill that came ahead of their checkpoint) and
/// malformed rows; creates the file with its header when missing.
void prepare_metrics(const std::filesystem::path& file, int64_t next_epoch);

/// Appends one row ("epoch,lr,...", without newline) atomically.
void append_metrics_row(const std::filesystem::path& file, const std::string& row);

}  // namespace cifar_resnet20
