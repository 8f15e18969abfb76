#include "controller/restore/space.hpp"

#include <fmt/format.h>
#include <sys/stat.h>
#include <sys/statvfs.h>

#include <cerrno>
#include <charconv>
#include <cstring>
#include <optional>
#include <set>
#include <utility>

namespace lifeboat::restore {

namespace {

namespace fs = std::filesystem;

std::string bytes_and_human(std::uint64_t bytes) {
  return fmt::format("{} bytes ({})", bytes, human_bytes(static_cast<double>(bytes)));
}

// The next unsigned decimal number of `line` at `pos`, skipping blanks.
std::optional<std::uint64_t> next_number(std::string_view line, std::size_t& pos) {
  while (pos < line.size() && (line[pos] == ' ' || line[pos] == '\t')) {
    ++pos;
  }
  std::uint64_t value = 0;
  const auto [end, ec] = std::from_chars(line.data() + pos, line.data() + line.size(), value);
  if (ec != std::errc{} || end == line.data() + pos) {
    return std::nullopt;
  }
  pos = static_cast<std::size_t>(end - line.data());
  return value;
}

}  // namespace

result<volume_space> measure_directory(const std::string& volume, const fs::path& root,
                                       bool with_content) {
  volume_space space{volume};
  struct stat st {};
  struct statvfs vfs {};
  if (::stat(root.c_str(), &st) != 0 || ::statvfs(root.c_str(), &vfs) != 0) {
    return make_error(errc::io_error,
                      "measuring the free space of " + root.string() + ": " + std::strerror(errno));
  }
  space.device = st.st_dev;
  space.available = static_cast<std::uint64_t>(vfs.f_bavail) * vfs.f_frsize;
  if (!with_content) {
    return space;
  }
  // As du -x: blocks actually allocated, a file with several links once.
  std::set<std::pair<dev_t, ino_t>> linked;
  std::error_code ec;
  fs::recursive_directory_iterator it(root, ec);
  for (; !ec && it != fs::recursive_directory_iterator(); it.increment(ec)) {
    struct stat entry {};
    if (::lstat(it->path().c_str(), &entry) != 0) {
      return make_error(errc::io_error,
                        "measuring " + it->path().string() + ": " + std::strerror(errno));
    }
    if (entry.st_dev != st.st_dev) {
      it.disable_recursion_pending();
      continue;
    }
    if (entry.st_nlink > 1 && !S_ISDIR(entry.st_mode) &&
        !linked.emplace(entry.st_dev, entry.st_ino).second) {
      continue;
    }
    space.content += static_cast<std::uint64_t>(entry.st_blocks) * 512;
  }
  if (ec) {
    return make_error(errc::io_error, "measuring " + root.string() + ": " + ec.message());
  }
  return space;
}

std::string_view measure_script() {
  // busybox: stat -f %a is f_bavail, %S the block size it counts in.
  return R"(mode=$1; shift
for p in "$@"; do
  d=$(stat -c %d "$p") || exit 1
  f=$(stat -f -c '%a %S' "$p") || exit 1
  u=0
  if [ "$mode" = du ]; then u=$(du -skx "$p") || exit 1; u=${u%%[!0-9]*}; fi
  echo "$d $f $u"
done)";
}

result<std::vector<volume_space>> parse_measurements(std::string_view output,
                                                     const std::vector<std::string>& volumes) {
  const auto malformed = [&] {
    return make_error(errc::internal, "measuring the free space of the volumes printed \"" +
                                          std::string(output.substr(0, 300)) +
                                          "\" (does the helper image have busybox's stat and du?)");
  };
  std::vector<volume_space> out;
  std::size_t start = 0;
  for (const auto& volume : volumes) {
    const auto end = output.find('\n', start);
    if (end == std::string_view::npos) {
      return malformed();
    }
    const auto line = output.substr(start, end - start);
    start = end + 1;
    std::size_t pos = 0;
    const auto device = next_number(line, pos);
    const auto blocks = next_number(line, pos);
    const auto block_size = next_number(line, pos);
    const auto kib = next_number(line, pos);
    if (!device || !blocks || !block_size || !kib || pos != line.size()) {
      return malformed();
    }
    out.push_back(volume_space{volume, *device, *blocks * *block_size, *kib * 1024});
  }
  if (start != output.size()) {
    return malformed();
  }
  return out;
}

result<void> check_space(const std::vector<volume_space>& spaces,
                         const std::vector<std::uint64_t>& needs, bool wipe) {
  // Per file system, in the order its first target comes.
  std::vector<bool> done(spaces.size(), false);
  for (std::size_t i = 0; i < spaces.size(); ++i) {
    if (done[i]) {
      continue;
    }
    std::vector<std::string> names;
    std::uint64_t needed = 0;
    std::uint64_t content = 0;
    for (std::size_t j = i; j < spaces.size(); ++j) {
      if (!done[j] && spaces[j].device == spaces[i].device) {
        done[j] = true;
        names.push_back(spaces[j].volume);
        needed += j < needs.size() ? needs[j] : 0;
        content += spaces[j].content;
      }
    }
    const std::uint64_t credit = wipe ? content : 0;
    if (needed <= spaces[i].available + credit) {
      continue;
    }
    std::string who = "volume " + names.front() + " needs";
    if (names.size() > 1) {
      who = "volumes " + fmt::format("{}", fmt::join(names, ", ")) + " (one file system) need";
    }
    std::string message = fmt::format(
        "{} {} for the archive's files, and {} {} free", who, bytes_and_human(needed),
        names.size() > 1 ? "it has" : "its file system has", bytes_and_human(spaces[i].available));
    if (wipe) {
      message += fmt::format(", plus {} that its content takes, which wipe removes first",
                             bytes_and_human(credit));
    }
    message +=
        "; nothing was held or written (free space, or restore into a larger volume" +
        std::string(wipe ? ")" : "; with wipe the volume's current content is counted as free)");
    return make_error(errc::no_space, std::move(message));
  }
  return {};
}

}  // namespace lifeboat::restore
