#pragma once

#include "controller/archive/source.hpp"

#include <cstdint>
#include <filesystem>
#include <map>
#include <set>
#include <string>
#include <string_view>
#include <vector>

// Helpers shared by the archive tests: scratch folders, subprocesses, a
// generated tree with every kind of entry, and manifests to compare trees.
namespace lifeboat::archive::test {

/// A fresh folder under testing::TempDir(), removed by the destructor.
class scratch_dir {
 public:
  scratch_dir();
  scratch_dir(const scratch_dir&) = delete;
  scratch_dir& operator=(const scratch_dir&) = delete;
  ~scratch_dir();

  const std::filesystem::path& path() const { return path_; }
  std::filesystem::path operator/(std::string_view name) const { return path_ / name; }

 private:
  std::filesystem::path path_;
};

struct command_result {
  int status = -1;     ///< the exit status, or -1 when it did not exit
  std::string output;  ///< stdout and stderr together
};

/// Runs `command` with /bin/sh and returns its exit status and output.
command_result run(const std::string& command);

/// Quotes `s` for /bin/sh.
std::string shell_quote(std::string_view s);

/// What make_tree creates, for tests that look at particular entries.
struct tree_facts {
  std::string sparse_file = "sparse.img";
  std::uint64_t sparse_size = 0;
  std::size_t small_files = 0;
};

/// Fills `root` (which must exist) with: folders with several modes, an empty
/// folder, files owned by root and by ids without names (1234:5678, 999:999),
/// setuid and sticky modes, symlinks (relative, absolute, dangling), a hard
/// link pair and a triple, a FIFO, a non-ASCII name, a path over 100 bytes, a
/// sparse file of `sparse_mib` MiB with three small runs of data, a .cache
/// folder, and `small_files` small files. Times are fixed, so two trees made
/// alike compare equal.
tree_facts make_tree(const std::filesystem::path& root, std::uint64_t sparse_mib = 300,
                     std::size_t small_files = 500);

/// One path's metadata and content digest; hard links share `link_group`.
struct manifest_entry {
  char type = '?';  ///< 'f' file, 'd' folder, 'l' symlink, 'p' fifo
  unsigned mode = 0;
  unsigned uid = 0;
  unsigned gid = 0;
  std::uint64_t size = 0;
  std::int64_t mtime = 0;  ///< seconds
  std::string digest;      ///< SHA-256 of a file's content
  std::string target;      ///< a symlink's target
  std::string link_group;  ///< the first path (sorted) of a file's hard links, or ""

  bool operator==(const manifest_entry&) const = default;
};

using manifest = std::map<std::string, manifest_entry>;

/// The tree under `root` keyed by relative path ("" for the root itself).
/// The root's mtime is left out: extraction sets it after the fact.
manifest take_manifest(const std::filesystem::path& root);

/// "path: field a != b" lines for every difference, empty when equal.
std::vector<std::string> compare(const manifest& expected, const manifest& actual);

/// A pull_source reading the stdout of `command` (e.g. GNU tar -c).
pull_source pull_command(const std::string& command);

/// A pull_source handing out `data` in pieces of at most `piece` bytes.
pull_source pull_bytes(std::string data, std::size_t piece = 4096);

/// Reads the whole of `path`.
std::string read_file(const std::filesystem::path& path);

/// Entries of an archive as libarchive reads it (any compression).
struct listed_entry {
  std::string path;
  char type = '?';
  std::string hardlink;
  std::string uname;
  unsigned uid = 0;
  std::int64_t size = 0;
  int sparse_runs = 0;
};
std::vector<listed_entry> list_archive(const std::filesystem::path& archive);

}  // namespace lifeboat::archive::test
