// ImageFolder scan and lazy decode (see image_folder.h).
#include "data/image_folder.h"

#include <algorithm>
#include <cctype>
#include <filesystem>

#include "core/error.h"
#include "data/file_io.h"

namespace minidl::data {

namespace fs = std::filesystem;

namespace {

bool is_image_file(const fs::path& p) {
  std::string ext = p.extension().string();
  std::transform(ext.begin(), ext.end(), ext.begin(), [](unsigned char c) { return std::tolower(c); });
  return ext == ".jpg" || ext == ".jpeg" || ext == ".png";
}

}  // namespace

ImageFolder::ImageFolder(const std::string& root, DecodeOptions decode) : root_(root), decode_(decode) {
  detail::require_directory(root, "ImageFolder");
  MINIDL_CHECK(decode.channels == 1 || decode.channels == 3, "ImageFolder: channels must be 1 or 3, got ",
               decode.channels);
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator(root, ec))
    if (entry.is_directory()) classes_.push_back(entry.path().filename().string());
  MINIDL_CHECK(!ec, "ImageFolder: cannot list '", root, "': ", ec.message());
  std::sort(classes_.begin(), classes_.end());

  std::vector<std::string> empty_classes;
  for (size_t c = 0; c < classes_.size(); ++c) {
    std::vector<std::string> files;
    const fs::path dir = fs::path(root) / classes_[c];
    for (auto it = fs::recursive_directory_iterator(dir, fs::directory_options::follow_directory_symlink, ec);
         !ec && it != fs::recursive_directory_iterator(); it.increment(ec))
      if (it->is_regular_file() && is_image_file(it->path())) files.push_back(it->path().string());
    MINIDL_CHECK(!ec, "ImageFolder: cannot list '", dir.string(), "': ", ec.message());
    std::sort(files.begin(), files.end());
    if (files.empty()) empty_classes.push_back(classes_[c]);
    for (auto& f : files) samples_.push_back({std::move(f), static_cast<int64_t>(c)});
  }
  MINIDL_CHECK(!samples_.empty(), "ImageFolder: no .jpg/.jpeg/.png images found under '", root,
               "' (expected root/<class>/<image>, found ", classes_.size(), " class folders)");
  // As torchvision: an empty class folder would silently shift no labels but leave a class never seen.
  MINIDL_CHECK(empty_classes.empty(), "ImageFolder: class folder '", (fs::path(root) / empty_classes.front()).string(),
               "' holds no .jpg/.jpeg/.png images (", empty_classes.size(), " empty class folders)");
}

Example ImageFolder::get(int64_t index) const {
  detail::check_index("ImageFolder", index, size());
  const Sample& s = samples_[static_cast<size_t>(index)];
  return {read_image(s.path, decode_), s.label};
}

const std::string& ImageFolder::path(int64_t index) const {
  detail::check_index("ImageFolder", index, size());
  return samples_[static_cast<size_t>(index)].path;
}

int64_t ImageFolder::label(int64_t index) const {
  detail::check_index("ImageFolder", index, size());
  return samples_[static_cast<size_t>(index)].label;
}

std::string ImageFolder::describe() const {
  return ::minidl::detail::concat("ImageFolder '", root_, "' (", size(), " images, ", classes_.size(), " classes)");
}

}  // namespace minidl::data
