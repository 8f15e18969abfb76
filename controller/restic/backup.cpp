#include "controller/restic/backup.hpp"

#include "controller/restic/chunker.hpp"
#include "controller/restic/primitives.hpp"
#include "controller/restic/tree.hpp"

#include <boost/json.hpp>

#include <algorithm>
#include <array>
#include <cerrno>
#include <csignal>
#include <cstring>
#include <map>
#include <memory>
#include <system_error>
#include <utility>

#include <dirent.h>
#include <fcntl.h>
#include <grp.h>
#include <pwd.h>
#include <sys/stat.h>
#include <unistd.h>
#include <ctime>

namespace lifeboat::restic {

namespace {

namespace json = boost::json;
namespace fs = std::filesystem;

constexpr std::int64_t stale_lock_seconds = std::int64_t{30} * 60;  // restic's staleTimeout

error io_error(const std::string& what, int err) {
  return make_error(errc::io, what + ": " + std::strerror(err));
}

std::string now_rfc3339() {
  timespec ts{};
  clock_gettime(CLOCK_REALTIME, &ts);
  return rfc3339_nano(ts.tv_sec, ts.tv_nsec);
}

std::string host_name() {
  std::array<char, 256> host{};
  if (gethostname(host.data(), host.size() - 1) != 0) {
    return "localhost";
  }
  return host.data();
}

std::string user_name(uid_t uid) {
  std::array<char, 4096> buf{};
  passwd pw{};
  passwd* found = nullptr;
  if (getpwuid_r(uid, &pw, buf.data(), buf.size(), &found) == 0 && found != nullptr) {
    return found->pw_name;
  }
  return "";
}

std::string group_name(gid_t gid) {
  std::array<char, 4096> buf{};
  group gr{};
  group* found = nullptr;
  if (getgrgid_r(gid, &gr, buf.data(), buf.size(), &found) == 0 && found != nullptr) {
    return found->gr_name;
  }
  return "";
}

json::array strings_to_json(const std::vector<std::string>& list) {
  json::array a;
  for (const std::string& s : list) {
    a.emplace_back(s);
  }
  return a;
}

}  // namespace

// ---- snapshots ----

std::string serialize_snapshot(const snapshot& s) {
  json::object o;
  o["time"] = s.time;
  if (s.parent) {
    o["parent"] = to_hex(*s.parent);
  }
  o["tree"] = to_hex(s.tree);
  o["paths"] = strings_to_json(s.paths);
  o["hostname"] = s.hostname;
  o["username"] = s.username;
  o["uid"] = s.uid;
  o["gid"] = s.gid;
  if (!s.tags.empty()) {
    o["tags"] = strings_to_json(s.tags);
  }
  return json::serialize(o);
}

result<snapshot> parse_snapshot(std::string_view text, std::string_view where) {
  boost::system::error_code ec;
  json::value v = json::parse(text, ec);
  if (ec || !v.is_object()) {
    return make_error(errc::invalid_format, std::string(where) + ": not a JSON object");
  }
  const json::object& o = v.as_object();
  auto bad = [&](std::string_view field, std::string_view problem) {
    return make_error(errc::invalid_format, std::string(where) + ": field \"" + std::string(field) +
                                                "\" " + std::string(problem));
  };
  snapshot s;
  for (auto [field, into] : {std::pair<std::string_view, std::string*>{"time", &s.time},
                             {"hostname", &s.hostname},
                             {"username", &s.username}}) {
    if (const json::value* f = o.if_contains(field); f != nullptr && f->is_string()) {
      *into = std::string(f->as_string());
    }
  }
  const json::value* tree = o.if_contains("tree");
  if (tree == nullptr || !tree->is_string()) {
    return bad("tree", "is missing or not a string");
  }
  auto tree_id = parse_object_id(tree->as_string(), std::string(where) + ": field \"tree\"");
  if (!tree_id) {
    return tree_id.error();
  }
  s.tree = *tree_id;
  if (const json::value* p = o.if_contains("parent"); p != nullptr && p->is_string()) {
    auto parent = parse_object_id(p->as_string(), std::string(where) + ": field \"parent\"");
    if (!parent) {
      return parent.error();
    }
    s.parent = *parent;
  }
  for (auto [field, into] :
       {std::pair<std::string_view, std::vector<std::string>*>{"paths", &s.paths},
        {"tags", &s.tags}}) {
    const json::value* f = o.if_contains(field);
    if (f == nullptr || f->is_null()) {
      continue;
    }
    if (!f->is_array()) {
      return bad(field, "is not an array");
    }
    for (const json::value& item : f->as_array()) {
      if (!item.is_string()) {
        return bad(field, "holds a non-string");
      }
      into->emplace_back(item.as_string());
    }
  }
  return s;
}

result<std::vector<std::pair<object_id, snapshot>>> list_snapshots(const repository& repo) {
  auto ids = list_unpacked(repo, "snapshots");
  if (!ids) {
    return ids.error();
  }
  std::vector<std::pair<object_id, snapshot>> out;
  for (const object_id& id : *ids) {
    auto text = read_unpacked(repo, "snapshots", id);
    if (!text) {
      return text.error();
    }
    auto s = parse_snapshot(*text, "snapshots/" + to_hex(id));
    if (!s) {
      return s.error();
    }
    out.emplace_back(id, std::move(*s));
  }
  return out;
}

result<std::optional<object_id>> latest_snapshot(const repository& repo,
                                                 const std::vector<std::string>& paths,
                                                 const std::string& hostname) {
  auto all = list_snapshots(repo);
  if (!all) {
    return all.error();
  }
  return newest_snapshot(*all, paths, hostname);
}

std::optional<object_id> newest_snapshot(std::span<const std::pair<object_id, snapshot>> listed,
                                         const std::vector<std::string>& paths,
                                         const std::string& hostname) {
  std::optional<object_id> best;
  std::string best_time;
  for (const auto& [id, s] : listed) {
    // RFC 3339 times in UTC compare as strings; restic's local offsets would not, so
    // this picks among lifeboat's own snapshots reliably.
    if (s.paths == paths && (hostname.empty() || s.hostname == hostname) &&
        (!best || s.time > best_time)) {
      best = id;
      best_time = s.time;
    }
  }
  return best;
}

// ---- locks ----

namespace {

struct lock_holder {
  std::string hostname;
  std::int64_t pid = 0;
};

/// A fresh lock other than `own`, described for the error, or empty.
result<std::string> fresh_lock(const repository& repo, const std::optional<object_id>& own) {
  auto ids = list_unpacked(repo, "locks");
  if (!ids) {
    return ids.error();
  }
  const std::string me = host_name();
  timespec now{};
  clock_gettime(CLOCK_REALTIME, &now);
  for (const object_id& id : *ids) {
    if (own && id == *own) {
      continue;
    }
    const fs::path file = repo.path() / "locks" / to_hex(id);
    struct stat st {};
    if (::stat(file.c_str(), &st) != 0) {
      continue;  // removed meanwhile
    }
    if (now.tv_sec - st.st_mtim.tv_sec > stale_lock_seconds) {
      continue;
    }
    lock_holder holder;
    auto text = read_unpacked(repo, "locks", id);
    if (text) {
      boost::system::error_code ec;
      json::value v = json::parse(*text, ec);
      if (!ec && v.is_object()) {
        if (const json::value* h = v.as_object().if_contains("hostname");
            h != nullptr && h->is_string()) {
          holder.hostname = std::string(h->as_string());
        }
        if (const json::value* p = v.as_object().if_contains("pid"); p != nullptr) {
          holder.pid = p->is_int64() ? p->as_int64() : 0;
        }
      }
    }
    if (holder.hostname == me && holder.pid > 0 && ::kill(static_cast<pid_t>(holder.pid), 0) != 0 &&
        errno == ESRCH) {
      continue;  // its process is gone: stale
    }
    return "locks/" + to_hex(id) + " (host " + holder.hostname + ", pid " +
           std::to_string(holder.pid) + ")";
  }
  return std::string();
}

result<object_id> write_lock(const repository& repo) {
  json::object o;
  o["time"] = now_rfc3339();
  o["exclusive"] = true;
  o["hostname"] = host_name();
  o["username"] = user_name(::getuid());
  o["pid"] = static_cast<std::int64_t>(::getpid());
  o["uid"] = ::getuid();
  o["gid"] = ::getgid();
  return write_unpacked(repo, "locks", json::serialize(o), false);
}

}  // namespace

result<repository_lock> repository_lock::acquire(const repository& repo) {
  const std::string where = "repository " + repo.path().string();
  auto other = fresh_lock(repo, std::nullopt);
  if (!other) {
    return other.error();
  }
  if (!other->empty()) {
    return make_error(errc::io, where + " is locked by " + *other);
  }
  auto id = write_lock(repo);
  if (!id) {
    return id.error();
  }
  repository_lock lock(repo, repo.path() / "locks" / to_hex(*id));
  // Someone may have locked between our look and our write: look again, as restic does.
  other = fresh_lock(repo, *id);
  if (!other) {
    return other.error();
  }
  if (!other->empty()) {
    return make_error(errc::io, where + " is locked by " + *other);
  }
  return lock;
}

result<void> repository_lock::refresh() {
  if (file_.empty()) {
    return make_error(errc::internal, "refresh of a released lock");
  }
  auto id = write_lock(*repo_);
  if (!id) {
    return id.error();
  }
  const fs::path old = std::exchange(file_, repo_->path() / "locks" / to_hex(*id));
  if (::unlink(old.c_str()) != 0 && errno != ENOENT) {
    return io_error("cannot remove the lock " + old.string(), errno);
  }
  return {};
}

repository_lock::repository_lock(repository_lock&& other) noexcept
    : repo_(other.repo_), file_(std::move(other.file_)) {
  other.file_.clear();
}

repository_lock::~repository_lock() { (void)release(); }

result<void> repository_lock::release() {
  if (file_.empty()) {
    return {};
  }
  const fs::path file = std::move(file_);
  file_.clear();
  if (::unlink(file.c_str()) != 0 && errno != ENOENT) {
    return io_error("cannot remove the lock " + file.string(), errno);
  }
  return {};
}

// ---- backup ----

namespace {

/// Opens without updating the access time (as restic does), so that reading a file
/// or listing a folder does not change the node the next backup records; O_NOATIME
/// needs ownership (or CAP_FOWNER), so it falls back to a plain open.
int open_noatime(const fs::path& path, int flags) {
  const int fd = ::open(path.c_str(), flags | O_NOATIME);
  if (fd >= 0 || errno != EPERM) {
    return fd;
  }
  return ::open(path.c_str(), flags);
}

struct dir_closer {
  void operator()(DIR* d) const noexcept { ::closedir(d); }
};

class walker {
 public:
  walker(const repository& repo, blob_index& index, const backup_options& options,
         repository_lock& lock)
      : repo_(repo),
        index_(index),
        options_(options),
        lock_(lock),
        pol_(repo.config().chunker_polynomial),
        refreshed_(std::chrono::steady_clock::now()) {}

  backup_stats stats;
  std::vector<written_pack> packs;

  /// The tree of `dir`'s entries; `parent` is the parent snapshot's tree of it.
  result<object_id> directory(const fs::path& dir, const std::optional<object_id>& parent);
  /// A node for `path` (lstat `st`), named `name`, its content or subtree stored.
  result<std::optional<node>> entry(const fs::path& path, const std::string& name,
                                    const struct stat& st, const node* previous);
  result<void> flush(std::unique_ptr<pack_writer>& writer);
  result<void> flush_all();
  result<object_id> store_tree(const std::vector<node>& nodes);

 private:
  result<void> store_blob(blob_type type, const object_id& id,
                          std::span<const unsigned char> plaintext);
  result<void> file_content(const fs::path& path, node& n);
  const std::string& user(uid_t uid);
  const std::string& group_of(gid_t gid);

  const repository& repo_;
  blob_index& index_;
  /// Refreshes the lock when options_.lock_refresh has passed since the last time.
  result<void> keep_lock();

  const backup_options& options_;
  repository_lock& lock_;
  polynomial pol_;
  std::chrono::steady_clock::time_point refreshed_;
  std::unique_ptr<pack_writer> data_;
  std::unique_ptr<pack_writer> trees_;
  std::map<uid_t, std::string> users_;
  std::map<gid_t, std::string> groups_;
};

const std::string& walker::user(uid_t uid) {
  auto it = users_.find(uid);
  if (it == users_.end()) {
    it = users_.emplace(uid, user_name(uid)).first;
  }
  return it->second;
}

const std::string& walker::group_of(gid_t gid) {
  auto it = groups_.find(gid);
  if (it == groups_.end()) {
    it = groups_.emplace(gid, group_name(gid)).first;
  }
  return it->second;
}

result<void> walker::flush(std::unique_ptr<pack_writer>& writer) {
  if (!writer) {
    return {};
  }
  if (writer->empty()) {
    writer.reset();
    return {};
  }
  auto pack = writer->finish();
  writer.reset();
  if (!pack) {
    return pack.error();
  }
  ++stats.packs_written;
  stats.pack_bytes_written += pack->size;
  index_.add(*pack);
  // Only the index entries are kept until the index file is written.
  packs.push_back(std::move(*pack));
  return {};
}

result<void> walker::flush_all() {
  if (auto r = flush(data_); !r) {
    return r;
  }
  return flush(trees_);
}

result<void> walker::keep_lock() {
  const auto now = std::chrono::steady_clock::now();
  if (now - refreshed_ < options_.lock_refresh) {
    return {};
  }
  refreshed_ = now;
  ++stats.lock_refreshes;
  return lock_.refresh();
}

result<void> walker::store_blob(blob_type type, const object_id& id,
                                std::span<const unsigned char> plaintext) {
  if (auto r = keep_lock(); !r) {
    return r;
  }
  std::unique_ptr<pack_writer>& writer = type == blob_type::tree ? trees_ : data_;
  if (index_.find(id) != nullptr || (writer && writer->contains(id))) {
    return {};
  }
  if (!writer) {
    auto made = pack_writer::create(repo_, options_.mode);
    if (!made) {
      return made.error();
    }
    writer = std::move(*made);
  }
  if (auto r = writer->add(type, id, plaintext); !r) {
    return r;
  }
  if (type == blob_type::tree) {
    ++stats.tree_blobs_added;
  } else {
    ++stats.data_blobs_added;
    stats.data_bytes_added += plaintext.size();
  }
  if (writer->size() >= options_.pack_size) {
    return flush(writer);
  }
  return {};
}

result<object_id> walker::store_tree(const std::vector<node>& nodes) {
  const std::string text = serialize_tree(nodes);
  const auto bytes = detail::as_bytes(text);
  const object_id id = detail::sha256(bytes);
  if (auto r = store_blob(blob_type::tree, id, bytes); !r) {
    return r.error();
  }
  return id;
}

result<void> walker::file_content(const fs::path& path, node& n) {
  const int fd = open_noatime(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY);
  if (fd < 0) {
    return io_error("cannot open " + path.string(), errno);
  }
  std::uint64_t total = 0;
  chunker c(pol_, [fd, &total, &path](std::span<unsigned char> out) -> result<std::size_t> {
    for (;;) {
      const ssize_t got = ::read(fd, out.data(), out.size());
      if (got < 0 && errno == EINTR) {
        continue;
      }
      if (got < 0) {
        return io_error("cannot read " + path.string(), errno);
      }
      total += static_cast<std::uint64_t>(got);
      return static_cast<std::size_t>(got);
    }
  });
  n.content.clear();
  for (;;) {
    auto next = c.next();
    if (!next) {
      ::close(fd);
      return next.error();
    }
    if (!*next) {
      break;
    }
    const object_id id = detail::sha256((*next)->data);
    n.content.push_back(id);
    if (auto r = store_blob(blob_type::data, id, (*next)->data); !r) {
      ::close(fd);
      return r;
    }
  }
  ::close(fd);
  ++stats.files_read;
  stats.bytes_read += total;
  n.size = total;  // what was read, should the file have changed meanwhile
  return {};
}

result<std::optional<node>> walker::entry(const fs::path& path, const std::string& name,
                                          const struct stat& st, const node* previous) {
  node n;
  n.name = name;
  n.mode = go_file_mode(st.st_mode);
  n.mtime = rfc3339_nano(st.st_mtim.tv_sec, st.st_mtim.tv_nsec);
  n.atime = rfc3339_nano(st.st_atim.tv_sec, st.st_atim.tv_nsec);
  n.ctime = rfc3339_nano(st.st_ctim.tv_sec, st.st_ctim.tv_nsec);
  n.uid = st.st_uid;
  n.gid = st.st_gid;
  n.user = user(st.st_uid);
  n.group = group_of(st.st_gid);
  n.inode = st.st_ino;
  n.device_id = st.st_dev;
  n.links = st.st_nlink;
  switch (st.st_mode & S_IFMT) {
    case S_IFREG: {
      n.type = "file";
      ++stats.files;
      const bool unchanged =
          previous != nullptr && previous->type == "file" &&
          previous->size == static_cast<std::uint64_t>(st.st_size) && previous->mtime == n.mtime &&
          previous->ctime == n.ctime && previous->inode == n.inode &&
          std::all_of(previous->content.begin(), previous->content.end(),
                      [this](const object_id& id) { return index_.find(id) != nullptr; });
      if (unchanged) {
        n.content = previous->content;
        n.size = previous->size;
        ++stats.files_unchanged;
      } else if (auto r = file_content(path, n); !r) {
        return r.error();
      }
      break;
    }
    case S_IFDIR: {
      n.type = "dir";
      n.links = 0;  // restic records no link count for directories
      std::optional<object_id> old;
      if (previous != nullptr && previous->type == "dir") {
        old = previous->subtree;
      }
      auto sub = directory(path, old);
      if (!sub) {
        return sub.error();
      }
      n.subtree = *sub;
      break;
    }
    case S_IFLNK: {
      n.type = "symlink";
      // readlink() updates a link's atime and O_NOATIME cannot prevent it: an unchanged
      // link keeps the parent's target and atime, so unchanged folders keep their trees.
      if (previous != nullptr && previous->type == "symlink" && previous->mtime == n.mtime &&
          previous->ctime == n.ctime && previous->inode == n.inode &&
          previous->linktarget.size() == static_cast<std::size_t>(st.st_size)) {
        n.linktarget = previous->linktarget;
        n.atime = previous->atime;
        break;
      }
      std::string target(static_cast<std::size_t>(st.st_size) + 1, '\0');
      for (;;) {
        const ssize_t len = ::readlink(path.c_str(), target.data(), target.size());
        if (len < 0) {
          return io_error("cannot read the link " + path.string(), errno);
        }
        if (static_cast<std::size_t>(len) < target.size()) {
          target.resize(static_cast<std::size_t>(len));
          break;
        }
        target.resize(target.size() * 2);
      }
      n.linktarget = std::move(target);
      break;
    }
    case S_IFBLK:
      n.type = "dev";
      n.device = st.st_rdev;
      break;
    case S_IFCHR:
      n.type = "chardev";
      n.device = st.st_rdev;
      break;
    case S_IFIFO:
      n.type = "fifo";
      break;
    case S_IFSOCK:
      n.type = "socket";
      break;
    default:
      return std::optional<node>();
  }
  return std::optional<node>(std::move(n));
}

result<object_id> walker::directory(const fs::path& dir, const std::optional<object_id>& parent) {
  ++stats.dirs;
  std::vector<node> previous;
  if (parent) {
    auto blob = read_blob(repo_, index_, *parent);
    if (blob) {
      auto parsed = parse_tree({reinterpret_cast<const char*>(blob->data()), blob->size()},
                               "tree " + to_hex(*parent));
      if (parsed) {
        previous = std::move(*parsed);
      }
    }
    // A parent tree that cannot be read only costs reading the files again.
  }
  const int fd = open_noatime(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) {
    return io_error("cannot list " + dir.string(), errno);
  }
  std::unique_ptr<DIR, dir_closer> d(::fdopendir(fd));
  if (!d) {
    const int err = errno;
    ::close(fd);
    return io_error("cannot list " + dir.string(), err);
  }
  std::vector<std::string> names;
  errno = 0;
  while (const dirent* e = ::readdir(d.get())) {
    const std::string_view name = e->d_name;
    if (name != "." && name != "..") {
      names.emplace_back(name);
    }
  }
  if (errno != 0) {
    return io_error("cannot list " + dir.string(), errno);
  }
  d.reset();
  std::sort(names.begin(), names.end());  // bytewise, as Go sorts strings
  std::vector<node> nodes;
  nodes.reserve(names.size());
  for (const std::string& name : names) {
    const fs::path path = dir / name;
    struct stat st {};
    if (::lstat(path.c_str(), &st) != 0) {
      if (errno == ENOENT) {
        continue;  // vanished during the walk
      }
      return io_error("cannot stat " + path.string(), errno);
    }
    auto old = std::lower_bound(previous.begin(), previous.end(), name,
                                [](const node& n, const std::string& key) { return n.name < key; });
    const node* before = old != previous.end() && old->name == name ? &*old : nullptr;
    auto n = entry(path, name, st, before);
    if (!n) {
      return n.error();
    }
    if (*n) {
      nodes.push_back(std::move(**n));
    }
  }
  return store_tree(nodes);
}

}  // namespace

result<backup_result> backup_directory(const repository& repo, const backup_options& options) {
  const std::string where = "backup of " + options.source.string();
  struct stat st {};
  if (::stat(options.source.c_str(), &st) != 0) {
    return io_error(where + ": cannot stat", errno);
  }
  if (!S_ISDIR(st.st_mode)) {
    return make_error(errc::io, where + ": not a directory");
  }
  if (options.name.empty() || options.name.find('/') != std::string::npos || options.name == "." ||
      options.name == "..") {
    return make_error(errc::invalid_format,
                      where + ": name \"" + options.name + "\" is not one path element");
  }
  auto lock = repository_lock::acquire(repo);
  if (!lock) {
    return lock.error();
  }
  auto index = blob_index::load(repo);
  if (!index) {
    return index.error();
  }
  std::optional<object_id> parent_tree;
  if (options.parent) {
    auto text = read_unpacked(repo, "snapshots", *options.parent);
    if (!text) {
      return text.error();
    }
    auto parent = parse_snapshot(*text, "snapshots/" + to_hex(*options.parent));
    if (!parent) {
      return parent.error();
    }
    auto root = read_blob(repo, *index, parent->tree);
    if (!root) {
      return root.error();
    }
    auto nodes = parse_tree({reinterpret_cast<const char*>(root->data()), root->size()},
                            "tree " + to_hex(parent->tree));
    if (!nodes) {
      return nodes.error();
    }
    for (const node& n : *nodes) {
      if (n.name == options.name && n.type == "dir") {
        parent_tree = n.subtree;
      }
    }
  }

  walker w(repo, *index, options, *lock);
  node previous;  // the parent snapshot's node of the top folder, if any
  previous.type = "dir";
  previous.subtree = parent_tree;
  auto top = w.entry(options.source, options.name, st, parent_tree ? &previous : nullptr);
  if (!top) {
    return top.error();
  }
  std::vector<node> root;
  root.push_back(std::move(**top));
  auto root_id = w.store_tree(root);
  if (!root_id) {
    return root_id.error();
  }
  if (auto r = w.flush_all(); !r) {
    return r.error();
  }
  if (!w.packs.empty()) {
    if (auto r = write_unpacked(repo, "index", serialize_index(w.packs),
                                options.mode != compression::off);
        !r) {
      return r.error();
    }
  }
  snapshot s;
  s.time = options.time.empty() ? now_rfc3339() : options.time;
  s.parent = options.parent;
  s.tree = *root_id;
  s.paths = {"/" + options.name};
  s.hostname = options.hostname.empty() ? host_name() : options.hostname;
  s.username = user_name(::getuid());
  s.uid = ::getuid();
  s.gid = ::getgid();
  s.tags = options.tags;
  auto id =
      write_unpacked(repo, "snapshots", serialize_snapshot(s), options.mode != compression::off);
  if (!id) {
    return id.error();
  }
  if (auto r = lock->release(); !r) {
    return r.error();
  }
  return backup_result{*id, w.stats};
}

}  // namespace lifeboat::restic
