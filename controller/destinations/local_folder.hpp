#pragma once

#include "controller/destinations/destination.hpp"

#include <filesystem>
#include <optional>

namespace lifeboat::destinations {

/// A folder on this machine (local_archive_file and friends underneath):
/// archives are written as "<name>.partial" (O_EXCL|O_NOFOLLOW, mode 0600),
/// fsynced, checksummed, renamed into place; "latest" is a relative symlink.
class local_folder final : public destination {
 public:
  /// `container_root`: when this process runs in a container, its own root
  /// ("/"): a folder on the same file system is inside the container's layer
  /// and is refused (archives there vanish with the container). Unset on a
  /// host, where any folder will do.
  local_folder(std::filesystem::path path, std::optional<std::filesystem::path> container_root);

  std::string describe() const override;
  archive::result<void> check() const override;
  archive::result<std::unique_ptr<upload>> begin(const std::string& file_name) override;
  archive::result<std::vector<archive::archive_file>> list() const override;
  archive::result<void> remove(const std::string& file_name) override;
  archive::result<std::unique_ptr<download>> open(const std::string& file_name) const override;
  archive::result<std::vector<std::string>> remove_leftovers(
      const archive::archive_name_pattern& pattern) override;
  std::string point_latest(const std::string& file_name) override;
  std::string spool_folder() const override { return path_.string(); }

 private:
  std::filesystem::path path_;
  std::optional<std::filesystem::path> container_root_;
};

/// The root to pass as `container_root`: "/" when this process runs in
/// lifeboat's image (which sets LIFEBOAT_IN_IMAGE=1), unset otherwise.
std::optional<std::filesystem::path> own_container_root();

}  // namespace lifeboat::destinations
