#pragma once

#include "controller/destinations/destination.hpp"

#include <memory>

namespace lifeboat::destinations {

/// A folder on an SSH server, over SFTP through libcurl (libssh2). An archive
/// is streamed (nothing of its size held) to "<name>.partial"; commit writes
/// its ".sha256" beside it and renames the archive to its name: nothing is
/// under the final name until complete. Every connection checks the server's
/// host key against knownHostsFile; a key that is missing there or differs
/// refuses the connection. The client signs in with identityFile (public key)
/// or the password in passwordFile.
///
/// Each operation is its own SSH connection; whole requests (listing,
/// removing, the checksum and the rename) are tried again after connection
/// failures and timeouts, a streamed upload or download is not.
///
/// Sizes and times come from the server's long listing ("ls -l" lines, as
/// OpenSSH's sftp-server writes them): times to the minute, read as UTC.
///
/// Errors: errc::refused for a host key not accepted, credentials refused
/// (the message names the files to check, never what they hold), a missing
/// folder or an unreachable server; errc::no_space when the server says its
/// disk is full; errc::io_error otherwise. Messages start with describe():
/// "sftp backup@backup.example.com:22/srv/backups".
class sftp_folder final : public destination {
 public:
  explicit sftp_folder(api::sftp_destination spec);
  ~sftp_folder() override;

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
  /// No "latest" link is kept remotely: nothing to point, no warning.
  std::string point_latest(const std::string& file_name) override;
  std::string spool_folder() const override { return {}; }

  struct impl;

 private:
  std::shared_ptr<impl> impl_;
};

}  // namespace lifeboat::destinations
