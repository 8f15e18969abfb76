// libFuzzer target: the restore entry checker (controller/restore/entry_check)
// on a list of mappings and archive entries, written one per line:
//
//   opt devices            allow device nodes
//   opt absolute           allow absolute symlinks
//   m FROM[=TO]            a mapping, as the CLI's --volume takes it
//   f PATH                 a file; likewise d (directory), p (FIFO), c, b
//                          (character and block devices), o (other)
//   l PATH -> TARGET       a symlink
//   h PATH -> TARGET       a hard link
//
// Beyond "no crash, no sanitizer report", it keeps its own model of each
// volume's tree, built from the entries the checker accepts, with every path
// reduced to its components (so "a//b", "./a/./b" and "a/b/" are one path),
// and aborts when an accepted entry breaks the checker's contract:
//  - its path, inside the volume, has a ".." component;
//  - it is written through a symlink that the archive made (including a
//    hard link to such a symlink, which is the same link under another name);
//  - it puts something other than a directory at the volume's root;
//  - it is a hard link to something that is not an earlier file of its volume;
//  - it is a device without allow_devices, or an unsupported type;
//  - after finish() accepted the archive, one of the volume's symlinks with a
//    relative target, resolved as the kernel would in the final tree, leaves
//    the volume or goes through an absolute symlink.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "controller/restore/entry_check.hpp"

namespace {

using lifeboat::restore::entry_checker;
using lifeboat::restore::entry_info;
using lifeboat::restore::entry_type;
using lifeboat::restore::mapping;
using lifeboat::restore::placed_entry;

std::string input_text;  // the whole input, printed with a failure

[[noreturn]] void fail(const std::string& what) {
  std::fprintf(stderr, "entry_check_fuzz: %s\ninput:\n%s\n", what.c_str(), input_text.c_str());
  std::abort();
}

// The components of `path` without empty ones and ".".
std::vector<std::string> components(std::string_view path) {
  std::vector<std::string> out;
  while (!path.empty()) {
    const auto slash = path.find('/');
    const auto part = path.substr(0, slash);
    if (!part.empty() && part != ".") {
      out.emplace_back(part);
    }
    if (slash == std::string_view::npos) {
      break;
    }
    path.remove_prefix(slash + 1);
  }
  return out;
}

std::string join(const std::vector<std::string>& parts, std::size_t count) {
  std::string out;
  for (std::size_t i = 0; i < count; ++i) {
    out += (i == 0 ? "" : "/") + parts[i];
  }
  return out;
}

std::string join(const std::vector<std::string>& parts) { return join(parts, parts.size()); }

struct node {
  entry_type type = entry_type::file;
  std::string link_target;  // for symlinks (also when reached through a hard link)
};

// One volume's tree as the accepted entries build it, by canonical path.
using tree = std::map<std::string, node>;

bool is_symlink(const tree& t, const std::string& path) {
  const auto it = t.find(path);
  return it != t.end() && it->second.type == entry_type::symlink;
}

// Resolves the symlink at `link` in `t` as the kernel would, from its folder.
// Returns a reason when the resolution leaves the volume.
std::optional<std::string> escapes(const tree& t, const std::vector<std::string>& link,
                                   const std::string& target) {
  std::vector<std::string> stack(link.begin(), link.empty() ? link.end() : link.end() - 1);
  // Consumed from the back, so kept reversed.
  const std::vector<std::string> first = components(target);
  std::vector<std::string> pending(first.rbegin(), first.rend());
  int expansions = 0;
  while (!pending.empty()) {
    const std::string c = pending.back();
    pending.pop_back();
    if (c == "..") {
      if (stack.empty()) {
        return "leaves the volume";
      }
      stack.pop_back();
      continue;
    }
    stack.push_back(c);
    const auto it = t.find(join(stack));
    if (it == t.end() || it->second.type != entry_type::symlink) {
      continue;
    }
    if (++expansions > 40) {
      return std::nullopt;  // ELOOP: nothing is written anywhere
    }
    const std::string& next = it->second.link_target;
    if (next.starts_with('/')) {
      return "goes through the absolute symlink " + it->first + " -> " + next;
    }
    stack.pop_back();
    const std::vector<std::string> more = components(next);
    pending.insert(pending.end(), more.rbegin(), more.rend());
  }
  return std::nullopt;
}

std::optional<entry_type> type_of(char c) {
  switch (c) {
    case 'f':
      return entry_type::file;
    case 'd':
      return entry_type::directory;
    case 'l':
      return entry_type::symlink;
    case 'h':
      return entry_type::hardlink;
    case 'p':
      return entry_type::fifo;
    case 'c':
      return entry_type::char_device;
    case 'b':
      return entry_type::block_device;
    case 'o':
      return entry_type::other;
    default:
      return std::nullopt;
  }
}

std::vector<std::string_view> lines_of(std::string_view text) {
  std::vector<std::string_view> out;
  while (!text.empty()) {
    const auto nl = text.find('\n');
    out.push_back(text.substr(0, nl));
    if (nl == std::string_view::npos) {
      break;
    }
    text.remove_prefix(nl + 1);
  }
  return out;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view text{reinterpret_cast<const char*>(data), size};
  input_text.assign(text);
  bool allow_devices = false;
  bool allow_absolute = false;
  std::vector<mapping> mappings;
  std::vector<entry_info> entries;
  for (const std::string_view line : lines_of(text)) {
    if (line.find('\0') != std::string_view::npos) {
      continue;  // neither archive paths nor command-line arguments hold NUL
    }
    if (line == "opt devices") {
      allow_devices = true;
    } else if (line == "opt absolute") {
      allow_absolute = true;
    } else if (line.size() >= 2 && line[1] == ' ' && line[0] == 'm') {
      if (auto m = lifeboat::restore::parse_mapping(line.substr(2))) {
        mappings.push_back(*m);
      }
    } else if (line.size() >= 2 && line[1] == ' ' && type_of(line[0])) {
      entry_info e;
      e.type = *type_of(line[0]);
      const std::string_view rest = line.substr(2);
      const auto arrow = rest.find(" -> ");
      e.path = std::string(rest.substr(0, arrow));
      if (arrow != std::string_view::npos) {
        e.target = std::string(rest.substr(arrow + 4));
      }
      entries.push_back(std::move(e));
    }
  }

  auto checker = entry_checker::create(mappings, allow_devices, allow_absolute);
  if (!checker) {
    return 0;
  }
  // The checker normalises each `from`; the model only needs its components.
  std::vector<std::vector<std::string>> froms;
  for (const mapping& m : checker->mappings()) {
    froms.push_back(components(m.from));
  }
  std::vector<tree> trees(froms.size());

  for (const entry_info& e : entries) {
    auto checked = checker->check(e);
    if (!checked) {
      return 0;  // refusing is always safe; the run stops at the first refusal
    }
    if (!*checked) {
      const std::vector<std::string> whole = components(e.path);
      for (const auto& from : froms) {
        if (whole.size() >= from.size() && std::equal(from.begin(), from.end(), whole.begin())) {
          fail("entry '" + e.path + "' skipped, though it lies in the mapping of '" + join(from) +
               "'");
        }
      }
      continue;
    }
    const placed_entry& placed = **checked;
    const std::string where = "entry '" + e.path + "' (relative '" + placed.relative + "')";
    if (placed.mapping >= trees.size()) {
      fail(where + ": mapping index out of range");
    }
    const std::vector<std::string> rel = components(placed.relative);
    // The placement must agree with the entry's path.
    const std::vector<std::string> whole = components(e.path);
    std::vector<std::string> expected(froms[placed.mapping]);
    expected.insert(expected.end(), rel.begin(), rel.end());
    if (expected != whole) {
      fail(where + ": placed at '" + join(expected) + "', which is not the entry's path");
    }
    for (const std::string& c : rel) {
      if (c == "..") {
        fail(where + ": accepted with a '..' component");
      }
    }
    tree& t = trees[placed.mapping];
    for (std::size_t n = 1; n < rel.size(); ++n) {
      if (is_symlink(t, join(rel, n))) {
        fail(where + ": written through the archive's symlink " + join(rel, n) + " -> " +
             t.at(join(rel, n)).link_target);
      }
    }
    if (rel.empty() && e.type != entry_type::directory) {
      fail(where + ": a non-directory accepted at the volume's root");
    }
    node n{e.type, {}};
    switch (e.type) {
      case entry_type::symlink:
        n.link_target = e.target;
        if (e.target.starts_with('/') && !allow_absolute) {
          fail(where + ": absolute symlink accepted");
        }
        break;
      case entry_type::hardlink: {
        const auto target = t.find(join(components(placed.link)));
        if (target == t.end() || (target->second.type != entry_type::file &&
                                  target->second.type != entry_type::hardlink &&
                                  target->second.type != entry_type::symlink)) {
          fail(where + ": hard link to '" + placed.link + "', which is not an earlier file");
        }
        // link(2) does not follow a symlink: the new name is the same symlink.
        n = target->second;
        break;
      }
      case entry_type::char_device:
      case entry_type::block_device:
        if (!allow_devices) {
          fail(where + ": device accepted");
        }
        break;
      case entry_type::other:
        fail(where + ": unsupported type accepted");
      default:
        break;
    }
    const std::string key = join(rel);
    if (n.type != entry_type::directory) {
      // Replacing a folder drops what was below it.
      const std::string below = key + "/";
      for (auto it = t.lower_bound(below); it != t.end() && it->first.starts_with(below);) {
        it = t.erase(it);
      }
    }
    t[key] = n;
  }

  if (!checker->finish()) {
    return 0;
  }
  for (const tree& t : trees) {
    for (const auto& [path, n] : t) {
      if (n.type != entry_type::symlink || n.link_target.starts_with('/')) {
        continue;
      }
      if (auto why = escapes(t, components(path), n.link_target)) {
        fail("symlink " + path + " -> " + n.link_target + " accepted by finish(), but it " + *why);
      }
    }
  }
  return 0;
}
