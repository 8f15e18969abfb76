#include "controller/restic/restore.hpp"

#include "controller/restic/backup.hpp"
#include "controller/restic/tree.hpp"

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstring>
#include <map>
#include <optional>
#include <string_view>
#include <unordered_map>
#include <unordered_set>
#include <utility>
#include <vector>

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

namespace lifeboat::restic {

namespace {

namespace fs = std::filesystem;

error io_error(const std::string& what, int err) {
  return make_error(errc::io, what + ": " + std::strerror(err));
}

/// Prefixes an error's message with where it happened, keeping its code.
error at(const std::string& path, const error& e) {
  return make_error(e.code, path + ": " + e.message);
}

/// A file descriptor closed when it goes out of scope.
class unique_fd {
 public:
  explicit unique_fd(int fd = -1) : fd_(fd) {}
  unique_fd(unique_fd&& other) noexcept : fd_(std::exchange(other.fd_, -1)) {}
  unique_fd& operator=(unique_fd&&) = delete;
  unique_fd(const unique_fd&) = delete;
  unique_fd& operator=(const unique_fd&) = delete;
  ~unique_fd() {
    if (fd_ >= 0) {
      ::close(fd_);
    }
  }
  int get() const { return fd_; }

 private:
  int fd_;
};

std::string child_path(const std::string& dir, const std::string& name) {
  return dir == "/" ? "/" + name : dir + "/" + name;
}

/// A name restic's trees may hold for one directory entry: never a way out of it.
result<void> check_name(const std::string& dir, const std::string& name) {
  if (name.empty() || name == "." || name == ".." || name.find('/') != std::string::npos ||
      name.find('\0') != std::string::npos) {
    std::string shown;
    for (const char c : name) {
      shown += c == '\0' ? std::string("\\0") : std::string(1, c);
    }
    return make_error(errc::invalid_format,
                      dir + ": entry name \"" + shown + "\" is not a single path element");
  }
  return {};
}

result<std::vector<node>> load_tree(const repository& repo, const blob_index& index,
                                    const object_id& id, const std::string& path) {
  auto blob = read_blob(repo, index, id);
  if (!blob) {
    return at(path, blob.error());
  }
  return parse_tree({reinterpret_cast<const char*>(blob->data()), blob->size()},
                    path + ": tree " + to_hex(id));
}

/// The components of a subtree path, "/a/b" -> {"a", "b"}; "" and "/" -> {}.
result<std::vector<std::string>> split_subtree(const std::string& subtree) {
  std::vector<std::string> parts;
  std::size_t pos = 0;
  while (pos <= subtree.size()) {
    const std::size_t slash = std::min(subtree.find('/', pos), subtree.size());
    std::string part = subtree.substr(pos, slash - pos);
    if (part == "." || part == "..") {
      return make_error(errc::invalid_format,
                        "subtree \"" + subtree + "\": \"" + part + "\" is not allowed");
    }
    if (!part.empty()) {
      parts.push_back(std::move(part));
    }
    pos = slash + 1;
  }
  return parts;
}

struct located {
  object_id tree{};
  std::optional<node> top;  // the subtree's own node; none for the snapshot's root
  std::string path;         // "/" or "/a/b"
};

/// Walks from the snapshot's root tree to `options.subtree`.
result<located> locate(const repository& repo, const blob_index& index,
                       const object_id& snapshot_id, const restore_options& options,
                       restore_stats& stats) {
  const std::string name = "snapshots/" + to_hex(snapshot_id);
  auto text = read_unpacked(repo, "snapshots", snapshot_id);
  if (!text) {
    return text.error();
  }
  auto snap = parse_snapshot(*text, name);
  if (!snap) {
    return snap.error();
  }
  auto parts = split_subtree(options.subtree);
  if (!parts) {
    return parts.error();
  }
  located out;
  out.tree = snap->tree;
  out.path = "/";
  for (const std::string& part : *parts) {
    auto nodes = load_tree(repo, index, out.tree, out.path);
    if (!nodes) {
      return nodes.error();
    }
    ++stats.blobs_read;
    auto it =
        std::find_if(nodes->begin(), nodes->end(), [&](const node& n) { return n.name == part; });
    const std::string path = child_path(out.path, part);
    if (it == nodes->end()) {
      return make_error(errc::invalid_format, name + ": " + path + " is not in the snapshot");
    }
    if (it->type != "dir" || !it->subtree) {
      return make_error(errc::invalid_format, name + ": " + path + " is not a folder");
    }
    out.tree = *it->subtree;
    out.top = std::move(*it);
    out.path = path;
  }
  return out;
}

bool is_device(const node& n) { return n.type == "dev" || n.type == "chardev"; }

error device_refused(const std::string& path) {
  return make_error(errc::refused, path +
                                       " is a device node, written only when devices are allowed "
                                       "(--allow-devices)");
}

bool known_type(const std::string& type) {
  return type == "file" || type == "dir" || type == "symlink" || type == "dev" ||
         type == "chardev" || type == "fifo" || type == "socket";
}

/// The checks on one node's own fields that need no blob.
result<void> check_node(const std::string& path, const node& n) {
  if (!known_type(n.type)) {
    return make_error(errc::invalid_format, path + ": type \"" + n.type + "\" is unknown");
  }
  if (n.type == "dir" && !n.subtree) {
    return make_error(errc::invalid_format, path + ": folder without a subtree");
  }
  if (n.type == "symlink" &&
      (n.linktarget.empty() || n.linktarget.find('\0') != std::string::npos)) {
    return make_error(errc::invalid_format, path + ": symlink target is empty or holds NUL");
  }
  for (const std::string* t : {&n.mtime, &n.atime}) {
    if (!t->empty()) {
      if (auto r = parse_rfc3339(*t, path); !r) {
        return r.error();
      }
    }
  }
  return {};
}

class verifier {
 public:
  verifier(const repository& repo, const blob_index& index, bool allow_devices,
           restore_stats& stats)
      : repo_(repo), index_(index), allow_devices_(allow_devices), stats_(stats) {}

  result<void> tree(const object_id& id, const std::string& path) {
    if (const auto seen = trees_.find(id); seen != trees_.end()) {
      // The same tree elsewhere: checked whole already, and restored again here.
      add(stats_, seen->second, 1);
      return {};
    }
    const restore_stats before = stats_;
    auto nodes = load_tree(repo_, index_, id, path);
    if (!nodes) {
      return nodes.error();
    }
    ++stats_.blobs_read;
    // Two entries of one name would let the second write through the first (a symlink
    // and then a folder of its name): restic never writes that, so it is refused.
    std::unordered_set<std::string_view> names;
    for (const node& n : *nodes) {
      if (auto r = check_name(path, n.name); !r) {
        return r;
      }
      if (!names.insert(n.name).second) {
        return make_error(errc::invalid_format,
                          path + ": entry name \"" + n.name + "\" appears twice");
      }
      const std::string sub = child_path(path, n.name);
      if (auto r = check_node(sub, n); !r) {
        return r;
      }
      if (n.type == "dir") {
        ++stats_.dirs;
        if (auto r = tree(*n.subtree, sub); !r) {
          return r;
        }
      } else if (n.type == "file") {
        ++stats_.files;
        stats_.bytes += n.size;
        if (auto r = file(n, sub); !r) {
          return r;
        }
      } else if (n.type == "symlink") {
        ++stats_.symlinks;
      } else if (!allow_devices_ && is_device(n)) {
        return device_refused(sub);
      } else {
        ++stats_.special;
      }
    }
    restore_stats inside = stats_;
    add(inside, before, -1);
    inside.blobs_read = 0;  // read once, however often the tree recurs
    inside.blob_bytes = 0;
    trees_.emplace(id, inside);
    return {};
  }

 private:
  result<void> file(const node& n, const std::string& path) {
    std::uint64_t size = 0;
    for (const object_id& blob : n.content) {
      auto known = blob_sizes_.find(blob);
      if (known == blob_sizes_.end()) {
        auto data = read_blob(repo_, index_, blob);
        if (!data) {
          return at(path, data.error());
        }
        ++stats_.blobs_read;
        stats_.blob_bytes += data->size();
        known = blob_sizes_.emplace(blob, data->size()).first;
      }
      size += known->second;
    }
    if (size != n.size) {
      return make_error(errc::corrupt, path + ": its blobs hold " + std::to_string(size) +
                                           " bytes, the node says " + std::to_string(n.size));
    }
    return {};
  }

  // Adds (sign 1) or subtracts (-1) the entry counts of `other` to `to`.
  static void add(restore_stats& to, const restore_stats& other, int sign) {
    for (auto member : {&restore_stats::files, &restore_stats::dirs, &restore_stats::symlinks,
                        &restore_stats::special, &restore_stats::bytes, &restore_stats::blobs_read,
                        &restore_stats::blob_bytes}) {
      to.*member = sign > 0 ? to.*member + other.*member : to.*member - other.*member;
    }
  }

  const repository& repo_;
  const blob_index& index_;
  bool allow_devices_;
  restore_stats& stats_;
  /// Each tree checked, with what is under it.
  std::unordered_map<object_id, restore_stats, object_id_hash> trees_;
  std::unordered_map<object_id, std::size_t, object_id_hash> blob_sizes_;
};

/// POSIX permission and special bits from restic's Go file mode.
mode_t posix_mode(std::uint32_t go) {
  auto mode = static_cast<mode_t>(go & 0777U);
  if ((go & go_mode::setuid) != 0U) {
    mode |= S_ISUID;
  }
  if ((go & go_mode::setgid) != 0U) {
    mode |= S_ISGID;
  }
  if ((go & go_mode::sticky) != 0U) {
    mode |= S_ISVTX;
  }
  return mode;
}

/// atime and mtime for utimensat/futimens; a missing one is left alone.
std::array<timespec, 2> node_times(const node& n) {
  std::array<timespec, 2> times{};
  const std::string* fields[2] = {&n.atime, &n.mtime};
  for (std::size_t i = 0; i < 2; ++i) {
    auto t = fields[i]->empty() ? result<unix_time>(make_error(errc::invalid_format, ""))
                                : parse_rfc3339(*fields[i], "");
    if (t) {
      times.at(i).tv_sec = static_cast<time_t>(t->seconds);
      times.at(i).tv_nsec = static_cast<long>(t->nanoseconds);
    } else {
      times.at(i).tv_sec = 0;
      times.at(i).tv_nsec = UTIME_OMIT;
    }
  }
  if (n.atime.empty() && !n.mtime.empty()) {
    times[0] = times[1];  // restic restores atime = mtime when none is recorded
  }
  return times;
}

result<void> write_all(int fd, const unsigned char* data, std::size_t size, off_t offset,
                       const std::string& path) {
  std::size_t done = 0;
  while (done < size) {
    const ssize_t n = ::pwrite(fd, data + done, size - done, offset + static_cast<off_t>(done));
    if (n < 0) {
      if (errno == EINTR) {
        continue;
      }
      return io_error("cannot write " + path, errno);
    }
    done += static_cast<std::size_t>(n);
  }
  return {};
}

class restorer {
 public:
  restorer(const repository& repo, const blob_index& index, int root, bool owners,
           bool allow_devices, restore_stats& stats)
      : repo_(repo),
        index_(index),
        root_(root),
        owners_(owners),
        allow_devices_(allow_devices),
        stats_(stats) {}

  /// Writes the entries of `tree` into the open folder `dir`; `path` is the snapshot
  /// path (errors), `rel` the folder's path under the target ("" for the target).
  result<void> directory(int dir, const object_id& tree, const std::string& path,
                         const std::string& rel) {
    auto nodes = load_tree(repo_, index_, tree, path);
    if (!nodes) {
      return nodes.error();
    }
    for (const node& n : *nodes) {
      // Checked again: the repository may have changed since verifying.
      if (auto r = check_name(path, n.name); !r) {
        return r;
      }
      const std::string sub = child_path(path, n.name);
      const std::string sub_rel = rel.empty() ? n.name : rel + "/" + n.name;
      if (auto r = check_node(sub, n); !r) {
        return r;
      }
      if (auto r = entry(dir, n, sub, sub_rel); !r) {
        return r;
      }
    }
    return {};
  }

  /// Owner, mode, then times of an open file or folder (chown clears setuid bits, and
  /// every write changes mtime: so this comes last).
  result<void> metadata(int fd, const node& n, const std::string& path) {
    if (owners_ && ::fchown(fd, n.uid, n.gid) != 0) {
      return io_error("cannot set the owner of " + path, errno);
    }
    if (::fchmod(fd, posix_mode(n.mode)) != 0) {
      return io_error("cannot set the mode of " + path, errno);
    }
    const auto times = node_times(n);
    if (::futimens(fd, times.data()) != 0) {
      return io_error("cannot set the times of " + path, errno);
    }
    return {};
  }

 private:
  result<void> entry(int dir, const node& n, const std::string& path, const std::string& rel) {
    const char* name = n.name.c_str();
    if (n.type == "dir") {
      if (::mkdirat(dir, name, 0700) != 0) {
        return io_error("cannot create the folder " + path, errno);
      }
      unique_fd fd(::openat(dir, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
      if (fd.get() < 0) {
        return io_error("cannot open the folder " + path, errno);
      }
      ++stats_.dirs;
      if (auto r = directory(fd.get(), *n.subtree, path, rel); !r) {
        return r;
      }
      return metadata(fd.get(), n, path);
    }
    if (n.type == "file") {
      return file(dir, n, path, rel);
    }
    if (n.type == "symlink") {
      if (::symlinkat(n.linktarget.c_str(), dir, name) != 0) {
        return io_error("cannot create the symlink " + path, errno);
      }
      ++stats_.symlinks;
      return link_metadata(dir, n, path);
    }
    if (n.type == "socket") {
      return {};  // a socket is made by the program that listens on it, as restic does too
    }
    mode_t type = S_IFIFO;
    dev_t device = 0;
    if (!allow_devices_ && is_device(n)) {
      return device_refused(path);  // verified elsewhere; checked again where it is written
    }
    if (n.type == "dev" || n.type == "chardev") {
      type = n.type == "dev" ? S_IFBLK : S_IFCHR;
      device = static_cast<dev_t>(n.device);
    }
    if (::mknodat(dir, name, type | 0600, device) != 0) {
      return io_error("cannot create " + path, errno);
    }
    ++stats_.special;
    // Opening a fifo or device to set its metadata would block or touch the device:
    // *at calls on the name just made instead (fchmodat cannot refuse to follow a
    // symlink, but the entry is the node mknodat made in a folder this restore made).
    if (owners_ && ::fchownat(dir, name, n.uid, n.gid, AT_SYMLINK_NOFOLLOW) != 0) {
      return io_error("cannot set the owner of " + path, errno);
    }
    if (::fchmodat(dir, name, posix_mode(n.mode), 0) != 0) {
      return io_error("cannot set the mode of " + path, errno);
    }
    const auto times = node_times(n);
    if (::utimensat(dir, name, times.data(), AT_SYMLINK_NOFOLLOW) != 0) {
      return io_error("cannot set the times of " + path, errno);
    }
    return {};
  }

  result<void> link_metadata(int dir, const node& n, const std::string& path) {
    const char* name = n.name.c_str();
    if (owners_ && ::fchownat(dir, name, n.uid, n.gid, AT_SYMLINK_NOFOLLOW) != 0) {
      return io_error("cannot set the owner of " + path, errno);
    }
    const auto times = node_times(n);
    if (::utimensat(dir, name, times.data(), AT_SYMLINK_NOFOLLOW) != 0) {
      return io_error("cannot set the times of " + path, errno);
    }
    return {};
  }

  result<void> file(int dir, const node& n, const std::string& path, const std::string& rel) {
    std::optional<std::pair<std::uint64_t, std::uint64_t>> key;
    if (n.links > 1) {
      key.emplace(n.device_id, n.inode);
      if (auto first = linked_.find(*key); first != linked_.end()) {
        if (::linkat(root_, first->second.c_str(), dir, n.name.c_str(), 0) != 0) {
          return io_error("cannot link " + path + " to the file restored before it", errno);
        }
        ++stats_.hard_links;
        return {};
      }
    }
    unique_fd fd(::openat(dir, n.name.c_str(),
                          O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY, 0600));
    if (fd.get() < 0) {
      return io_error("cannot create " + path, errno);
    }
    std::uint64_t offset = 0;
    for (const object_id& id : n.content) {
      if (auto zero = zero_blobs_.find(id); zero != zero_blobs_.end()) {
        offset += zero->second;
        stats_.hole_bytes += zero->second;
        continue;
      }
      auto data = read_blob(repo_, index_, id);
      if (!data) {
        return at(path, data.error());
      }
      const bool all_zero =
          std::all_of(data->begin(), data->end(), [](unsigned char c) { return c == 0; });
      if (all_zero) {
        zero_blobs_.emplace(id, data->size());
        stats_.hole_bytes += data->size();
      } else if (auto r = write_all(fd.get(), data->data(), data->size(),
                                    static_cast<off_t>(offset), path);
                 !r) {
        return r;
      }
      offset += data->size();
    }
    // Sets the size past a trailing hole (and for an empty file, keeps it empty).
    if (::ftruncate(fd.get(), static_cast<off_t>(offset)) != 0) {
      return io_error("cannot set the size of " + path, errno);
    }
    stats_.bytes += offset;
    ++stats_.files;
    if (auto r = metadata(fd.get(), n, path); !r) {
      return r;
    }
    if (key) {
      linked_.emplace(*key, rel);
    }
    return {};
  }

  const repository& repo_;
  const blob_index& index_;
  int root_;
  bool owners_;
  bool allow_devices_;
  restore_stats& stats_;
  std::map<std::pair<std::uint64_t, std::uint64_t>, std::string> linked_;  // -> path in target
  std::unordered_map<object_id, std::size_t, object_id_hash> zero_blobs_;
};

result<restore_stats> verify_with(const repository& repo, const blob_index& index,
                                  const object_id& snapshot_id, const restore_options& options,
                                  located& where) {
  restore_stats stats;
  auto found = locate(repo, index, snapshot_id, options, stats);
  if (!found) {
    return found.error();
  }
  if (found->top) {
    if (auto r = check_node(found->path, *found->top); !r) {
      return r.error();
    }
  }
  verifier v(repo, index, options.allow_devices, stats);
  if (auto r = v.tree(found->tree, found->path); !r) {
    return make_error(r.error().code,
                      "snapshot " + to_hex(snapshot_id).substr(0, 8) + ": " + r.error().message);
  }
  where = std::move(*found);
  return stats;
}

}  // namespace

result<restore_stats> verify_snapshot(const repository& repo, const object_id& snapshot_id,
                                      const restore_options& options) {
  auto index = blob_index::load(repo);
  if (!index) {
    return index.error();
  }
  located where;
  return verify_with(repo, *index, snapshot_id, options, where);
}

result<restore_stats> restore_snapshot(const repository& repo, const object_id& snapshot_id,
                                       const fs::path& target, const restore_options& options) {
  const std::string what = "restore into " + target.string();
  unique_fd root(::open(target.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
  if (root.get() < 0) {
    return io_error(what + ": cannot open the folder", errno);
  }
  {
    DIR* d = ::fdopendir(::dup(root.get()));
    if (d == nullptr) {
      return io_error(what + ": cannot list the folder", errno);
    }
    bool empty = true;
    while (const dirent* e = ::readdir(d)) {
      const std::string_view name = e->d_name;
      if (name != "." && name != "..") {
        empty = false;
        break;
      }
    }
    ::closedir(d);
    if (!empty) {
      return make_error(errc::io, what + ": the folder is not empty");
    }
  }
  auto index = blob_index::load(repo);
  if (!index) {
    return index.error();
  }
  located where;
  restore_stats stats;
  if (options.verified) {
    // Verified already: only the way to the subtree is read. Every blob is
    // still checked against its ID as it is read, so what is written is what
    // was verified, or the restore fails.
    auto found = locate(repo, *index, snapshot_id, options, stats);
    if (!found) {
      return found.error();
    }
    where = std::move(*found);
  } else {
    auto verified = verify_with(repo, *index, snapshot_id, options, where);
    if (!verified) {
      return verified.error();
    }
    stats.blobs_read = verified->blobs_read;
    stats.blob_bytes = verified->blob_bytes;
  }
  restorer r(repo, *index, root.get(), options.owners && ::geteuid() == 0, options.allow_devices,
             stats);
  const std::string prefix = "snapshot " + to_hex(snapshot_id).substr(0, 8) + ": ";
  if (auto done = r.directory(root.get(), where.tree, where.path, ""); !done) {
    return make_error(done.error().code, prefix + done.error().message);
  }
  if (where.top) {
    if (auto done = r.metadata(root.get(), *where.top, where.path); !done) {
      return make_error(done.error().code, prefix + done.error().message);
    }
  }
  return stats;
}

}  // namespace lifeboat::restic
