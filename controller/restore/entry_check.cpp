#include "controller/restore/entry_check.hpp"

#include <cctype>
#include <deque>
#include <functional>

namespace lifeboat::restore {

namespace {

// Docker's rule for volume names: [a-zA-Z0-9][a-zA-Z0-9_.-]*.
bool is_volume_name(std::string_view s) {
  if (s.empty() || !std::isalnum(static_cast<unsigned char>(s.front()))) {
    return false;
  }
  for (const char c : s) {
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '_' && c != '.' && c != '-') {
      return false;
    }
  }
  return true;
}

std::vector<std::string_view> components(std::string_view path) {
  std::vector<std::string_view> out;
  while (!path.empty()) {
    const auto slash = path.find('/');
    const auto part = path.substr(0, slash);
    if (!part.empty()) {
      out.push_back(part);
    }
    if (slash == std::string_view::npos) {
      break;
    }
    path.remove_prefix(slash + 1);
  }
  return out;
}

bool has_dot_dot(std::string_view path) {
  for (const auto c : components(path)) {
    if (c == "..") {
      return true;
    }
  }
  return false;
}

std::string_view parent_of(std::string_view relative) {
  const auto slash = relative.rfind('/');
  return slash == std::string_view::npos ? std::string_view{} : relative.substr(0, slash);
}

// True when `rel` is a file now: written by an entry after the last entry that
// put a non-folder at any of its folders.
template <typename Paths>
bool written_since_replaced(const Paths& paths, const std::string& rel) {
  const auto it = paths.find(std::hash<std::string>{}(rel));
  if (it == paths.end() || it->second.file_since == 0) {
    return false;
  }
  for (std::string_view dir = parent_of(rel); !dir.empty(); dir = parent_of(dir)) {
    const auto d = paths.find(std::hash<std::string_view>{}(dir));
    if (d != paths.end() && d->second.replaced_at > it->second.file_since) {
      return false;
    }
  }
  return true;
}

error refuse(std::string_view entry, std::string_view why) {
  return make_error(errc::refused, "entry " + std::string(entry) + ": " + std::string(why));
}

}  // namespace

std::string normalize_entry_path(std::string_view path) {
  // Every rule compares paths, so each path has one spelling: "a//b", "a/./b"
  // and "./a/b/" are all "a/b" (and slipped past the symlink rule otherwise).
  std::string out = path.starts_with('/') ? "/" : "";
  for (const auto c : components(path)) {
    if (c == ".") {
      continue;
    }
    if (!out.empty() && out != "/") {
      out += '/';
    }
    out += c;
  }
  return out.empty() ? "." : out;
}

result<mapping> parse_mapping(std::string_view text) {
  const auto eq = text.find('=');
  const auto raw_from = text.substr(0, eq);
  mapping m;
  m.from = normalize_entry_path(raw_from);
  m.to = eq == std::string_view::npos ? m.from : std::string(text.substr(eq + 1));
  if (raw_from.empty()) {
    return make_error(errc::invalid_argument, "mapping '" + std::string(text) + "' has no FROM");
  }
  if (raw_from.starts_with('/') || has_dot_dot(raw_from)) {
    return make_error(errc::invalid_argument, "mapping '" + std::string(text) +
                                                  "': FROM must be a relative path without ..");
  }
  if (!is_volume_name(m.to)) {
    return make_error(errc::invalid_argument,
                      "mapping '" + std::string(text) + "': '" + m.to +
                          "' is not a volume name (use FROM=TO when FROM is a path)");
  }
  return m;
}

entry_checker::entry_checker(std::vector<mapping> mappings, bool allow_devices,
                             bool allow_absolute_symlinks)
    : mappings_(std::move(mappings)),
      allow_devices_(allow_devices),
      allow_absolute_symlinks_(allow_absolute_symlinks),
      entries_(mappings_.size()),
      symlinks_(mappings_.size()),
      paths_(mappings_.size()) {}

result<entry_checker> entry_checker::create(std::vector<mapping> mappings, bool allow_devices,
                                            bool allow_absolute_symlinks) {
  if (mappings.empty()) {
    return make_error(errc::invalid_argument, "no volume to restore");
  }
  for (auto& m : mappings) {
    // Checked before normalizing: "/data" and "a/../.." must not pass as
    // "data" and "..".
    if (m.from.starts_with('/') || has_dot_dot(m.from)) {
      return make_error(errc::invalid_argument,
                        "mapping of " + m.from + ": FROM must be a relative path without ..");
    }
    m.from = normalize_entry_path(m.from);
  }
  for (std::size_t i = 0; i < mappings.size(); ++i) {
    for (std::size_t j = i + 1; j < mappings.size(); ++j) {
      const auto& a = mappings[i];
      const auto& b = mappings[j];
      if (a.to == b.to) {
        return make_error(errc::invalid_argument, "two mappings restore into volume " + a.to);
      }
      const auto nested = [](const std::string& outer, const std::string& inner) {
        return outer == "." || outer == inner || inner.starts_with(outer + "/");
      };
      if (nested(a.from, b.from) || nested(b.from, a.from)) {
        return make_error(errc::invalid_argument,
                          "mappings of " + a.from + " and " + b.from + " overlap");
      }
    }
  }
  return entry_checker(std::move(mappings), allow_devices, allow_absolute_symlinks);
}

result<std::optional<placed_entry>> entry_checker::check(const entry_info& entry) {
  const std::string& raw = entry.path;
  if (raw.starts_with('/')) {
    return refuse(raw, "absolute path");
  }
  if (has_dot_dot(raw)) {
    return refuse(raw, "path has a '..' component");
  }
  const std::string path = normalize_entry_path(raw);

  std::optional<placed_entry> placed;
  for (std::size_t i = 0; i < mappings_.size() && !placed; ++i) {
    const auto& from = mappings_[i].from;
    if (from == ".") {
      placed = placed_entry{i, path == "." ? "" : path, {}};
    } else if (path == from) {
      placed = placed_entry{i, "", {}};
    } else if (path.size() > from.size() && path.starts_with(from) && path[from.size()] == '/') {
      placed = placed_entry{i, path.substr(from.size() + 1), {}};
    }
  }
  if (!placed) {
    return std::optional<placed_entry>{};
  }
  const std::size_t m = placed->mapping;
  const std::string& rel = placed->relative;
  auto& links = symlinks_[m];

  // Writing through a symlink the archive made would put the entry wherever
  // the link points; tar never stores a path below a symlink it archived.
  if (!links.empty()) {
    for (std::string_view dir = parent_of(rel); !dir.empty(); dir = parent_of(dir)) {
      if (auto it = links.find(std::string(dir)); it != links.end()) {
        return refuse(raw, "goes through the symlink " + it->first + " -> " + it->second);
      }
    }
  }
  if (rel.empty() && entry.type != entry_type::directory) {
    return refuse(raw, "the volume's root must be a directory");
  }
  // A later entry replaces an earlier one at the same path, and a non-folder
  // replacing a folder takes everything below it away. A hard link to a path
  // that is no longer that file would give the new name whatever is there now
  // (link(2) follows a symlink in the folders above the name): so each file
  // records when it was written, each non-folder when it replaced a path, and
  // a hard link needs a file written after every replacement of its folders.
  links.erase(rel);
  auto& paths = paths_[m];

  switch (entry.type) {
    case entry_type::file:
    case entry_type::directory:
      break;
    case entry_type::symlink:
      if (entry.target.empty()) {
        return refuse(raw, "symlink with an empty target");
      }
      if (entry.target.starts_with('/') && !allow_absolute_symlinks_) {
        return refuse(raw, "symlink to the absolute path " + entry.target +
                               " escapes the volume (--allow-absolute-symlinks accepts it)");
      }
      if (!entry.target.starts_with('/')) {
        // Lexically first, so that unpacking alone refuses the plain cases;
        // finish() also follows the archive's other symlinks.
        long depth = static_cast<long>(components(parent_of(rel)).size());
        for (const auto c : components(entry.target)) {
          depth += c == ".." ? -1 : (c == "." ? 0 : 1);
          if (depth < 0) {
            return refuse(raw, "symlink to " + entry.target + " escapes the volume");
          }
        }
      }
      links[rel] = entry.target;
      break;
    case entry_type::hardlink: {
      if (entry.target.starts_with('/') || has_dot_dot(entry.target)) {
        return refuse(raw, "hard link to " + entry.target + " escapes the volume");
      }
      const std::string target = normalize_entry_path(entry.target);
      const auto& from = mappings_[m].from;
      std::string target_rel;
      if (from == ".") {
        target_rel = target;
      } else if (target.size() > from.size() && target.starts_with(from) &&
                 target[from.size()] == '/') {
        target_rel = target.substr(from.size() + 1);
      } else {
        return refuse(raw, "hard link to " + entry.target + " escapes the volume");
      }
      if (!written_since_replaced(paths, target_rel)) {
        return refuse(raw, "hard link to " + entry.target + ", which is not an earlier file");
      }
      placed->link = std::move(target_rel);
      break;
    }
    case entry_type::fifo:
      break;
    case entry_type::char_device:
    case entry_type::block_device:
      if (!allow_devices_) {
        return refuse(raw, "device node (--allow-devices accepts it)");
      }
      break;
    case entry_type::other:
      return refuse(raw, "unsupported entry type");
  }
  // Recorded once accepted, so that a hard link to its own name finds nothing.
  const std::uint64_t now = ++sequence_;
  const std::uint64_t key = std::hash<std::string>{}(rel);
  if (entry.type == entry_type::directory) {
    if (auto it = paths.find(key); it != paths.end()) {
      it->second.file_since = 0;
    }
  } else {
    const bool is_file = entry.type == entry_type::file || entry.type == entry_type::hardlink;
    paths[key] = path_state{is_file ? now : 0, now};
  }
  ++entries_[m];
  return placed;
}

result<void> entry_checker::finish() const {
  for (std::size_t m = 0; m < mappings_.size(); ++m) {
    const auto& links = symlinks_[m];
    const std::string& from = mappings_[m].from;
    const auto entry_name = [&](const std::string& rel) {
      return from == "." ? rel : from + "/" + rel;
    };
    for (const auto& [rel, target] : links) {
      if (target.starts_with('/')) {
        continue;  // allowed by create(), else refused by check()
      }
      // Resolve as the kernel would, from the link's folder, following the
      // archive's symlinks; leaving the root at any step escapes.
      std::vector<std::string> stack;
      for (const auto c : components(parent_of(rel))) {
        stack.emplace_back(c);
      }
      std::deque<std::string> todo;
      for (const auto c : components(target)) {
        todo.emplace_back(c);
      }
      int expansions = 0;
      while (!todo.empty()) {
        const std::string c = std::move(todo.front());
        todo.pop_front();
        if (c == ".") {
          continue;
        }
        if (c == "..") {
          if (stack.empty()) {
            return refuse(entry_name(rel), "symlink to " + target + " escapes the volume");
          }
          stack.pop_back();
          continue;
        }
        stack.push_back(c);
        std::string joined;
        for (const auto& s : stack) {
          joined += (joined.empty() ? "" : "/") + s;
        }
        const auto it = links.find(joined);
        if (it == links.end()) {
          continue;
        }
        if (++expansions > 40) {
          return refuse(entry_name(rel), "symlink to " + target + " loops");
        }
        if (it->second.starts_with('/')) {
          return refuse(entry_name(rel),
                        "symlink to " + target + " escapes the volume through " + it->first);
        }
        stack.pop_back();
        const auto more = components(it->second);
        todo.insert(todo.begin(), more.begin(), more.end());
      }
    }
    if (entries_[m] == 0) {
      return make_error(errc::missing_volume, from == "." ? "the archive has no entries"
                                                          : "the archive has no entry " + from);
    }
  }
  return {};
}

}  // namespace lifeboat::restore
