#pragma once

#include "controller/restore/error.hpp"
#include "controller/restore/unpack.hpp"

#include <atomic>
#include <filesystem>
#include <string>

namespace lifeboat::destinations {
class destination;
}

// A Restore whose archive is on a destination (spec.source, or a Backup whose
// archive went to one) reads it through the destination interface.
namespace lifeboat::restore {

/// Copies the published archive `name` of `from` into a file in
/// `spool_folder` that has no name (O_TMPFILE, or a name removed at once
/// where the file system has no O_TMPFILE): nothing is left behind whatever
/// happens to this process, and the file read by Verifying is the one
/// unpacked, as for a local archive. Its ".sha256" is required (lifeboat
/// publishes one with every archive): without it nothing would tell a
/// truncated download from a short archive. Fails with errc::invalid_argument
/// naming the destination when either cannot be read, errc::no_space when the
/// spool folder is full, errc::cancelled when `cancel` is set.
result<archive_file> fetch_archive(const destinations::destination& from, const std::string& name,
                                   const std::filesystem::path& spool_folder,
                                   const std::atomic<bool>* cancel);

}  // namespace lifeboat::restore
