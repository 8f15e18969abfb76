#include "controller/restic/prune.hpp"

#include "controller/restic/backup.hpp"
#include "controller/restic/store.hpp"
#include "controller/restic/tree.hpp"

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <set>
#include <span>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <utility>
#include <vector>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

namespace lifeboat::restic {

namespace {

namespace fs = std::filesystem;

using id_set = std::unordered_set<object_id, object_id_hash>;

error io_error(const std::string& what, int err) {
  return make_error(errc::io, what + ": " + std::strerror(err));
}

result<void> fsync_dir(const fs::path& dir) {
  const int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) {
    return io_error("cannot open " + dir.string(), errno);
  }
  const int rc = ::fsync(fd);
  const int err = errno;
  ::close(fd);
  if (rc != 0) {
    return io_error("cannot fsync " + dir.string(), err);
  }
  return {};
}

/// Removes `file`; one that is already gone counts as removed.
result<void> remove_file(const fs::path& file) {
  if (::unlink(file.c_str()) != 0 && errno != ENOENT) {
    return io_error("cannot remove " + file.string(), errno);
  }
  return {};
}

class referenced_walker {
 public:
  referenced_walker(const repository& repo, const blob_index& index, repository_lock& lock,
                    const prune_options& options)
      : repo_(repo),
        index_(index),
        lock_(lock),
        options_(options),
        refreshed_(std::chrono::steady_clock::now()) {}

  /// Adds the tree `root` and everything below it (trees seen before are not read again).
  result<void> walk(const object_id& root, const std::string& where) {
    std::vector<std::pair<object_id, std::string>> pending{{root, where}};
    while (!pending.empty()) {
      auto [tree, path] = std::move(pending.back());
      pending.pop_back();
      if (!referenced_.insert(tree).second) {
        continue;
      }
      if (auto r = refresh(); !r) {
        return r.error();
      }
      auto bytes = read_blob(repo_, index_, tree);
      if (!bytes) {
        return make_error(bytes.error().code, path + ": " + bytes.error().message);
      }
      auto nodes = parse_tree(
          std::string_view(reinterpret_cast<const char*>(bytes->data()), bytes->size()), path);
      if (!nodes) {
        return nodes.error();
      }
      for (node& n : *nodes) {
        referenced_.insert(n.content.begin(), n.content.end());
        if (n.subtree) {
          pending.emplace_back(*n.subtree, path + "/" + n.name);
        }
      }
    }
    return {};
  }

  const id_set& referenced() const { return referenced_; }

 private:
  result<void> refresh() {
    const auto now = std::chrono::steady_clock::now();
    if (now - refreshed_ < options_.lock_refresh) {
      return {};
    }
    refreshed_ = now;
    return lock_.refresh();
  }

  const repository& repo_;
  const blob_index& index_;
  repository_lock& lock_;
  const prune_options& options_;
  std::chrono::steady_clock::time_point refreshed_;
  id_set referenced_;
};

}  // namespace

result<prune_result> prune_unreferenced(const repository& repo, const prune_options& options) {
  auto lock = repository_lock::acquire(repo);
  if (!lock) {
    return lock.error();
  }
  prune_result out;

  // 1. Every blob that a snapshot reaches. Any snapshot or tree that cannot be read
  // stops here, before anything is changed: its blobs would otherwise count as unused.
  auto index = blob_index::load(repo);
  if (!index) {
    return index.error();
  }
  auto snapshots = list_snapshots(repo);
  if (!snapshots) {
    return snapshots.error();
  }
  referenced_walker walker(repo, *index, *lock, options);
  for (const auto& [id, snap] : *snapshots) {
    if (auto r = walker.walk(snap.tree, "snapshot " + to_hex(id).substr(0, 8)); !r) {
      return r.error();
    }
  }
  out.snapshots = snapshots->size();
  out.referenced_blobs = walker.referenced().size();
  const id_set& referenced = walker.referenced();

  // 2. Every index file's packs; a pack is used when any of its blobs is referenced.
  auto index_files = list_unpacked(repo, "index");
  if (!index_files) {
    return index_files.error();
  }
  // Each pack once, with the blobs of every index file listing it (restic writes a pack
  // into one index file, but a pack split over two must not look unused by one of them).
  std::vector<written_pack> packs;
  std::unordered_map<object_id, std::size_t, object_id_hash> pack_at;
  for (const object_id& file : *index_files) {
    auto listed = read_index_file(repo, file);
    if (!listed) {
      return listed.error();
    }
    for (written_pack& p : *listed) {
      const auto [at, added] = pack_at.try_emplace(p.id, packs.size());
      if (added) {
        packs.push_back(std::move(p));
        continue;
      }
      std::vector<pack_entry>& blobs = packs[at->second].blobs;
      for (const pack_entry& e : p.blobs) {
        if (std::ranges::find(blobs, e.id, &pack_entry::id) == blobs.end()) {
          blobs.push_back(e);
        }
      }
    }
  }
  std::vector<written_pack> kept;
  std::vector<object_id> unused;
  for (written_pack& p : packs) {
    const auto is_referenced = [&](const pack_entry& e) { return referenced.contains(e.id); };
    const auto used = static_cast<std::size_t>(std::ranges::count_if(p.blobs, is_referenced));
    if (used == 0) {
      unused.push_back(p.id);
      continue;
    }
    if (used < p.blobs.size()) {
      ++out.packs_partly_referenced;
    }
    kept.push_back(std::move(p));
  }
  out.packs_kept = kept.size();
  if (unused.empty()) {
    if (auto r = lock->release(); !r) {
      return r.error();
    }
    return out;
  }

  // 3. The order keeps the repository one that `restic check` accepts whenever this
  // stops (crash, kill, full disk): first new index files naming every kept pack (the
  // old ones still name the unused packs, which still exist: duplicate entries are
  // fine); then the old index files go (the unused packs are then in no index, which
  // check reports as a hint only); only then the packs themselves.
  std::size_t begin = 0;
  while (begin < kept.size()) {
    std::size_t end = begin;
    std::size_t blobs = 0;
    do {
      blobs += kept[end].blobs.size();
      ++end;
    } while (end < kept.size() && blobs + kept[end].blobs.size() <= options.index_max_blobs);
    const auto chunk = std::span(kept).subspan(begin, end - begin);
    if (auto r = write_unpacked(repo, "index", serialize_index(chunk), true); !r) {
      return r.error();
    }
    ++out.index_files_written;
    begin = end;
  }
  for (const object_id& file : *index_files) {
    if (auto r = remove_file(repo.path() / "index" / to_hex(file)); !r) {
      return r.error();
    }
    ++out.index_files_removed;
  }
  if (auto r = fsync_dir(repo.path() / "index"); !r) {
    return r.error();
  }
  std::set<fs::path> folders;
  for (const object_id& pack : unused) {
    const fs::path file = pack_file(repo, pack);
    std::error_code ec;
    const auto size = fs::file_size(file, ec);
    if (auto r = remove_file(file); !r) {
      return r.error();
    }
    out.pack_bytes_removed += ec ? 0 : size;
    ++out.packs_removed;
    folders.insert(file.parent_path());
  }
  for (const fs::path& folder : folders) {
    if (auto r = fsync_dir(folder); !r) {
      return r.error();
    }
  }
  auto released = lock->release();
  if (!released) {
    return released.error();
  }
  return out;
}

}  // namespace lifeboat::restic
