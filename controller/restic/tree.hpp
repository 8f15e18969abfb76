#pragma once

#include "controller/restic/error.hpp"
#include "controller/restic/store.hpp"

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

// Tree blobs: {"nodes":[...]} with one node per directory entry, sorted by
// name, in the JSON fields restic writes (design document, "Trees and Data").
// Modes are Go's os.FileMode: permission bits plus type and special bits in
// the high bits.
namespace lifeboat::restic {

namespace go_mode {
inline constexpr std::uint32_t dir = 1U << 31;
inline constexpr std::uint32_t symlink = 1U << 27;
inline constexpr std::uint32_t device = 1U << 26;
inline constexpr std::uint32_t named_pipe = 1U << 25;
inline constexpr std::uint32_t socket = 1U << 24;
inline constexpr std::uint32_t setuid = 1U << 23;
inline constexpr std::uint32_t setgid = 1U << 22;
inline constexpr std::uint32_t char_device = 1U << 21;
inline constexpr std::uint32_t sticky = 1U << 20;
}  // namespace go_mode

/// The Go FileMode restic stores for a POSIX st_mode.
std::uint32_t go_file_mode(std::uint32_t st_mode) noexcept;

struct node {
  std::string name;
  std::string type;  // file, dir, symlink, dev, chardev, fifo, socket
  std::uint32_t mode = 0;
  std::string mtime;  // RFC 3339 with nanoseconds, as Go's RFC3339Nano
  std::string atime;
  std::string ctime;
  std::uint32_t uid = 0;
  std::uint32_t gid = 0;
  std::string user;
  std::string group;
  std::uint64_t inode = 0;
  std::uint64_t device_id = 0;
  std::uint64_t size = 0;    // files
  std::uint64_t links = 0;   // all but directories
  std::uint64_t device = 0;  // dev, chardev: st_rdev
  std::string linktarget;
  std::vector<object_id> content;    // files
  std::optional<object_id> subtree;  // dirs
};

/// Go's RFC3339Nano in UTC: fractional seconds without trailing zeros, "Z".
std::string rfc3339_nano(std::int64_t seconds, std::int64_t nanoseconds);

struct unix_time {
  std::int64_t seconds = 0;
  std::int64_t nanoseconds = 0;  // 0..999999999
};

/// Parses RFC 3339 as Go writes it: "YYYY-MM-DDTHH:MM:SS", optional fraction of up
/// to nine digits, then "Z" or "+HH:MM"/"-HH:MM" (restic writes local offsets).
/// invalid_format naming `where` otherwise.
result<unix_time> parse_rfc3339(std::string_view text, std::string_view where);

/// The tree blob's bytes: `{"nodes":[...]}` and a newline, nodes in the given order
/// (callers sort them by name).
std::string serialize_tree(const std::vector<node>& nodes);
/// Parses a tree blob. invalid_format naming `where` and the node's field.
result<std::vector<node>> parse_tree(std::string_view json, std::string_view where);

}  // namespace lifeboat::restic
