#pragma once

#include "api/text.hpp"
#include "controller/restore/error.hpp"

#include <cstdint>
#include <filesystem>
#include <string>
#include <string_view>
#include <vector>

// Whether an archive's files fit in the target volumes, checked while
// verifying, before anything is held or wiped. The rule:
//  - needed: the files' sizes, each rounded up to 4 KiB; sparse files at
//    their logical size on the engine path (the engine writes them densely),
//    at their stored data on the direct path (holes are kept);
//  - room: the space df shows as available on the volume's file system (the
//    reserve of root is left alone), shared by the targets on one file system;
//  - with wipe, the space the volume's current content takes (du) is
//    credited, since it is removed first. Without wipe nothing is credited:
//    which existing files the archive replaces is not known before it is
//    written, so a restore in place without wipe needs the whole archive's
//    size free.
namespace lifeboat::restore {

/// Sizes in messages.
using api::human_bytes;

/// Where one target volume's data lives and how much room it has.
struct volume_space {
  std::string volume;
  std::uint64_t device = 0;     ///< st_dev of its root: the targets on one file system share it
  std::uint64_t available = 0;  ///< bytes free for unprivileged writers (df's "Available")
  std::uint64_t content = 0;    ///< bytes its content takes now; measured for wipe only
};

/// The direct path: statvfs and stat of `root`, and with `with_content` the
/// blocks of everything under it (hard links once, other file systems
/// skipped). errc::io_error naming the path that could not be read.
result<volume_space> measure_directory(const std::string& volume, const std::filesystem::path& root,
                                       bool with_content);

/// The engine path: a busybox shell script that prints, per folder given as
/// its arguments, one line "<st_dev> <available blocks> <block size>
/// <content KiB>" (content 0 unless its first argument is "du").
std::string_view measure_script();

/// Reads measure_script()'s output for `volumes`, in order.
/// errc::internal quoting the output when it is not one such line per volume.
result<std::vector<volume_space>> parse_measurements(std::string_view output,
                                                     const std::vector<std::string>& volumes);

/// Compares `needs` (bytes per target, in the order of `spaces`) with the room
/// of each file system, crediting the content when `wipe`. errc::no_space
/// naming the volume(s), the bytes needed and the bytes free.
result<void> check_space(const std::vector<volume_space>& spaces,
                         const std::vector<std::uint64_t>& needs, bool wipe);

}  // namespace lifeboat::restore
