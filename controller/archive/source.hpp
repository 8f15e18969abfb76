#pragma once

#include "controller/archive/error.hpp"

#include <cstddef>
#include <filesystem>
#include <functional>
#include <span>
#include <string>
#include <string_view>
#include <variant>

// What goes into an archive: one source per volume, each put under its own
// top-level folder (the prefix, normally the volume's name).
namespace lifeboat::archive {

/// Pulls the next bytes of a stream: fills a prefix of `into` and returns how
/// many bytes it wrote, 0 only at the end of the stream. An error aborts the
/// archive. Called on the thread that writes the archive, never concurrently.
using pull_source = std::function<result<std::size_t>(std::span<char> into)>;

/// A tar stream, e.g. GET /containers/{id}/archive?path=/data (see
/// engine_source.hpp). The first component of every entry's path ("data" or
/// "."), and of every hard link's target, is replaced by `prefix`:
/// `data/db/base` becomes `app_db/db/base`, and `data` itself becomes the
/// directory `app_db`. Everything else is copied as the stream has it: owners
/// (ids and names), modes, times, symlink targets, extended attributes and
/// sparse maps. Symlink targets are content, never rewritten.
struct tar_stream_source {
  std::string prefix;
  pull_source pull;
};

/// A directory read directly (a volume's mountpoint, when lifeboat can read
/// it): the faster path. The tree under `root` is stored under `prefix`, with
/// `root` itself as the directory `prefix`, entries as the engine path gives
/// them, depth first (a folder's entries right after it) in readdir order.
/// `root` may be a symlink to the folder; every other symlink is stored,
/// never followed. Hard links within the tree are stored once with data and
/// then as links; holes of sparse files stay holes (the engine's tar stream
/// has none: there a sparse file arrives, and is stored, dense); xattrs, ACLs
/// and file flags are kept; owner names come from the passwd and group
/// databases of the process (ids are always stored). Sockets are left out
/// with a warning, as tar cannot store them. A file that changes or vanishes
/// while being read becomes a warning, never an error (see write_archive).
struct directory_source {
  std::string prefix;
  std::filesystem::path root;
};

using volume_source = std::variant<tar_stream_source, directory_source>;

/// How a source was read, for the run's status.
enum class read_path {
  tar_stream,  ///< a tar stream (through the engine)
  direct,      ///< the directory itself
};

/// "engine" or "direct": the spelling used in statuses and logs.
std::string_view to_string(read_path p);

/// The prefix of `s`.
const std::string& prefix_of(const volume_source& s);

}  // namespace lifeboat::archive
