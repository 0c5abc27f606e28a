// loader: ImageNet training-input throughput of minidl's data pipeline on an ImageFolder tree: read + JPEG
// region decode (crop before decode) + RandomResizedCrop + flip + normalise + collate, through the DataLoader
// with N worker threads. Prints one line per worker count, "minidl workers=N img/s=X img/s/core=Y", read by
// bench/loader_vs_torchvision.py, which runs torchvision + PIL on the same files in the same run.
//   loader ROOT [--size 224] [--batch 32] [--workers 1,2] [--epochs 2] [--no-dct-scaling]
#include <data/decode_crop_dataset.h>
#include <data/loader.h>
#include <minidl.h>

#include <CLI/CLI.hpp>
#include <chrono>
#include <cstdio>
#include <sstream>

using namespace minidl;

int main(int argc, char** argv) {
  std::string root, workers_list = "1,2";
  int64_t size = 224, batch = 32;
  int epochs = 2;
  bool no_dct = false;
  CLI::App app{"minidl loader throughput"};
  app.add_option("root", root, "ImageFolder root (class folders of JPEGs)")->required();
  app.add_option("--size", size, "output crop size");
  app.add_option("--batch", batch, "batch size");
  app.add_option("--workers", workers_list, "comma-separated worker counts");
  app.add_option("--epochs", epochs, "passes over the files per worker count (the first warms the page cache)");
  app.add_flag("--no-dct-scaling", no_dct, "decode every crop at full resolution");
  CLI11_PARSE(app, argc, argv);
  try {
    set_num_threads(1);
    auto folder = std::make_shared<const data::ImageFolder>(root);
    data::DecodeCropOptions o;
    o.height = o.width = size;
    o.dct_scaling = !no_dct;
    auto ds = std::make_shared<const data::DecodeCropDataset>(folder, o, 0);
    std::stringstream ss(workers_list);
    for (std::string item; std::getline(ss, item, ',');) {
      const int n = std::stoi(item);
      data::DataLoader loader(ds, {.batch_size = batch, .shuffle = true, .seed = 0, .num_workers = n});
      double best = 0;
      for (int e = 0; e < epochs; ++e) {
        const auto t0 = std::chrono::steady_clock::now();
        int64_t images = 0;
        for (data::Batch& b : loader.epoch(e)) images += b.labels.numel();
        const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
        best = std::max(best, static_cast<double>(images) / s);
      }
      std::printf("minidl workers=%d img/s=%.1f img/s/core=%.1f\n", n, best, best / std::max(n, 1));
      std::fflush(stdout);
    }
  } catch (const std::exception& e) {
    std::fprintf(stderr, "loader: error: %s\n", e.what());
    return 2;
  }
  return 0;
}
