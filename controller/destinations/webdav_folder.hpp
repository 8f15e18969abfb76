#pragma once

#include "controller/destinations/destination.hpp"

#include <memory>

namespace lifeboat::destinations {

/// A WebDAV folder, through libcurl. An archive is streamed (chunked PUT,
/// nothing of its size held) to "<name>.partial", its ".sha256" is put
/// beside it, then it is moved to its name (MOVE, Overwrite: T): nothing is
/// under the final name until complete. Listing is PROPFIND with Depth 1.
/// Errors: errc::refused for credentials refused (the message names
/// username and passwordFile, never the password), a missing folder or an
/// unreachable server; errc::io_error otherwise.
class webdav_folder final : public destination {
 public:
  explicit webdav_folder(api::webdav_destination spec);
  ~webdav_folder() override;

  std::string describe() const override;
  archive::result<void> check() const override;
  archive::result<std::unique_ptr<upload>> begin(const std::string& file_name) override;
  archive::result<std::vector<archive::archive_file>> list() const override;
  archive::result<void> remove(const std::string& file_name) override;
  archive::result<std::unique_ptr<download>> open(const std::string& file_name) const override;
  /// Removes the schedule's "<archive>.partial" files and ".sha256" files
  /// whose archive is gone.
  archive::result<std::vector<std::string>> remove_leftovers(
      const archive::archive_name_pattern& pattern) override;
  /// No links: nothing to point. With insecureSkipVerify, that warning.
  std::string point_latest(const std::string& file_name) override;
  std::string spool_folder() const override { return {}; }

  struct impl;

 private:
  std::shared_ptr<impl> impl_;
};

}  // namespace lifeboat::destinations
