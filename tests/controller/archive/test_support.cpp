#include "tests/controller/archive/test_support.hpp"

#include <archive.h>
#include <archive_entry.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <locale.h>
#include <nettle/sha2.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <functional>
#include <memory>
#include <sstream>
#include <stdexcept>

namespace lifeboat::archive::test {

namespace fs = std::filesystem;

namespace {

void check(bool ok, const std::string& what) {
  if (!ok) {
    throw std::runtime_error(what + ": " + std::strerror(errno));
  }
}

void write_file(const fs::path& path, std::string_view content, unsigned mode) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(content.data(), static_cast<std::streamsize>(content.size()));
  out.close();
  check(static_cast<bool>(out), "writing " + path.string());
  check(::chmod(path.c_str(), mode) == 0, "chmod " + path.string());
}

void set_times(const fs::path& path, std::int64_t seconds) {
  const std::array<timespec, 2> times{timespec{seconds, 0}, timespec{seconds, 0}};
  check(::utimensat(AT_FDCWD, path.c_str(), times.data(), AT_SYMLINK_NOFOLLOW) == 0,
        "utimensat " + path.string());
}

// The digest of a file's content, dense or sparse alike: holes are hashed
// as the zeros they read as, without reading them.
std::string sha256_of_file(const fs::path& path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  check(fd >= 0, "open " + path.string());
  sha256_ctx ctx{};
  sha256_init(&ctx);
  auto update = [&](const char* data, std::size_t n) {
    sha256_update(&ctx, n, reinterpret_cast<const std::uint8_t*>(data));
  };
  static const std::vector<char> zeros(1 << 20);
  std::vector<char> buffer(1 << 20);
  struct stat st {};
  check(::fstat(fd, &st) == 0, "fstat " + path.string());
  off_t position = 0;
  while (position < st.st_size) {
    off_t data = ::lseek(fd, position, SEEK_DATA);
    if (data < 0) {
      data = st.st_size;  // only a hole is left
    }
    for (; position < data;) {
      const auto n = static_cast<std::size_t>(std::min<off_t>(data - position, 1 << 20));
      update(zeros.data(), n);
      position += static_cast<off_t>(n);
    }
    if (position >= st.st_size) {
      break;
    }
    off_t hole = ::lseek(fd, position, SEEK_HOLE);
    if (hole < 0) {
      hole = st.st_size;
    }
    while (position < hole) {
      const auto want = static_cast<std::size_t>(std::min<off_t>(hole - position, 1 << 20));
      const ssize_t n = ::pread(fd, buffer.data(), want, position);
      check(n > 0, "read " + path.string());
      update(buffer.data(), static_cast<std::size_t>(n));
      position += n;
    }
  }
  ::close(fd);
  std::array<std::uint8_t, SHA256_DIGEST_SIZE> digest{};
  sha256_digest(&ctx, digest.size(), digest.data());
  std::string hex;
  for (std::size_t i = 0; i < digest.size(); ++i) {
    static constexpr char digits[] = "0123456789abcdef";
    hex += digits[digest[i] >> 4];
    hex += digits[digest[i] & 0xf];
  }
  return hex;
}

}  // namespace

scratch_dir::scratch_dir() {
  static std::atomic<int> counter{0};
  const auto* info = testing::UnitTest::GetInstance()->current_test_info();
  std::string name = info != nullptr ? std::string(info->test_suite_name()) + "." + info->name()
                                     : std::string("archive");
  std::replace(name.begin(), name.end(), '/', '_');
  path_ = fs::path(testing::TempDir()) / ("lifeboat-archive-" + std::to_string(::getpid()) + "-" +
                                          std::to_string(counter++) + "-" + name);
  fs::remove_all(path_);
  fs::create_directories(path_);
}

scratch_dir::~scratch_dir() {
  // LIFEBOAT_KEEP_SCRATCH=1 keeps the folders of failed tests for a look.
  if (std::getenv("LIFEBOAT_KEEP_SCRATCH") != nullptr && testing::Test::HasFailure()) {
    std::fprintf(stderr, "kept %s\n", path_.c_str());
    return;
  }
  std::error_code ec;
  fs::remove_all(path_, ec);
}

std::string shell_quote(std::string_view s) {
  std::string out = "'";
  for (char c : s) {
    if (c == '\'') {
      out += "'\\''";
    } else {
      out += c;
    }
  }
  return out + "'";
}

command_result run(const std::string& command) {
  command_result out;
  FILE* pipe = ::popen((command + " 2>&1").c_str(), "r");
  if (pipe == nullptr) {
    return out;
  }
  std::array<char, 4096> buffer{};
  std::size_t n = 0;
  while ((n = std::fread(buffer.data(), 1, buffer.size(), pipe)) > 0) {
    out.output.append(buffer.data(), n);
  }
  const int status = ::pclose(pipe);
  out.status = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return out;
}

tree_facts make_tree(const fs::path& root, std::uint64_t sparse_mib, std::size_t small_files) {
  tree_facts facts;
  check(::chmod(root.c_str(), 0755) == 0, "chmod root");
  fs::create_directories(root / "a" / "b");
  check(::chmod((root / "a").c_str(), 0750) == 0, "chmod a");
  check(::chmod((root / "a" / "b").c_str(), 0700) == 0, "chmod a/b");
  std::string hello;
  for (int i = 0; i < 100; ++i) {
    hello += "hello, lifeboat " + std::to_string(i) + "\n";
  }
  write_file(root / "a" / "file1", hello, 0644);
  write_file(root / "a" / "b" / "deep.txt", "deep\n", 0600);
  check(::chown((root / "a" / "b" / "deep.txt").c_str(), 1234, 5678) == 0, "chown deep");
  write_file(root / "a" / "setuid-bin", "#!/bin/sh\n", 04755);
  fs::create_directory(root / "empty");
  check(::chmod((root / "empty").c_str(), 0700) == 0, "chmod empty");
  fs::create_directory(root / "sticky");
  check(::chmod((root / "sticky").c_str(), 01777) == 0, "chmod sticky");

  check(::link((root / "a" / "file1").c_str(), (root / "hard1").c_str()) == 0, "link hard1");
  write_file(root / "triple-1", "three names, one file\n", 0640);
  check(::chown((root / "triple-1").c_str(), 999, 999) == 0, "chown triple");
  check(::link((root / "triple-1").c_str(), (root / "triple-2").c_str()) == 0, "link triple-2");
  check(::link((root / "triple-1").c_str(), (root / "a" / "triple-3").c_str()) == 0,
        "link triple-3");

  fs::create_symlink("a/file1", root / "link-rel");
  fs::create_symlink("/etc/hostname", root / "link-abs");
  fs::create_symlink("does/not/exist", root / "dangling");
  check(::lchown((root / "dangling").c_str(), 1234, 5678) == 0, "lchown dangling");
  check(::mkfifo((root / "pipe").c_str(), 0644) == 0, "mkfifo");
  write_file(root / "caf\xc3\xa9.txt", "non-ASCII name\n", 0644);
  fs::create_directories(root / "long");
  write_file(root / "long" / std::string(150, 'x'), "a long name\n", 0644);

  fs::create_directories(root / ".cache" / "sub");
  write_file(root / ".cache" / "tmp.bin", "cached\n", 0644);
  write_file(root / ".cache" / "sub" / "x", "cached too\n", 0644);
  write_file(root / "app.log", "log line\n", 0644);
  write_file(root / "app.tmp", "temporary\n", 0644);

  // A sparse file: three 4 KiB runs of data in sparse_mib MiB of holes.
  {
    facts.sparse_size = sparse_mib * 1024 * 1024;
    const fs::path path = root / facts.sparse_file;
    const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    check(fd >= 0, "open sparse");
    const std::string run(4096, 'S');
    for (std::uint64_t offset :
         {std::uint64_t{0}, facts.sparse_size / 3, facts.sparse_size - 4096}) {
      check(::pwrite(fd, run.data(), run.size(), static_cast<off_t>(offset)) ==
                static_cast<ssize_t>(run.size()),
            "pwrite sparse");
    }
    ::close(fd);
  }

  // Pseudo-random bytes: not compressible, deterministic.
  {
    std::string bytes(256 * 1024, '\0');
    std::uint64_t x = 88172645463325252ULL;
    for (char& c : bytes) {
      x ^= x << 13;
      x ^= x >> 7;
      x ^= x << 17;
      c = static_cast<char>(x);
    }
    write_file(root / "random.bin", bytes, 0644);
  }

  facts.small_files = small_files;
  for (std::size_t i = 0; i < small_files; ++i) {
    const fs::path dir = root / "many" / ("d" + std::to_string(i % 20));
    if (i < 20) {
      fs::create_directories(dir);
    }
    std::string content;
    for (std::size_t j = 0; j < (i * 7) % 97; ++j) {
      content += "line " + std::to_string(i) + " " + std::to_string(j) + "\n";
    }
    write_file(dir / ("f" + std::to_string(i)), content, 0644);
  }

  // Fixed times, folders last (deepest first) since creating entries
  // changes their folder's mtime.
  std::vector<fs::path> paths;
  for (const auto& e : fs::recursive_directory_iterator(root)) {
    paths.push_back(e.path());
  }
  paths.push_back(root);
  std::stable_sort(paths.begin(), paths.end(), [](const fs::path& a, const fs::path& b) {
    return std::distance(a.begin(), a.end()) > std::distance(b.begin(), b.end());
  });
  std::int64_t t = 1'700'000'000;
  for (const auto& p : paths) {
    set_times(p, t);
    t += 61;
  }
  return facts;
}

manifest take_manifest(const fs::path& root) {
  manifest out;
  std::map<std::pair<dev_t, ino_t>, std::vector<std::string>> links;
  std::function<void(const fs::path&, const std::string&)> walk = [&](const fs::path& path,
                                                                      const std::string& rel) {
    struct stat st {};
    check(::lstat(path.c_str(), &st) == 0, "lstat " + path.string());
    manifest_entry e;
    e.mode = st.st_mode & 07777;
    e.uid = st.st_uid;
    e.gid = st.st_gid;
    e.mtime = st.st_mtim.tv_sec;
    if (S_ISDIR(st.st_mode)) {
      e.type = 'd';
    } else if (S_ISREG(st.st_mode)) {
      e.type = 'f';
      e.size = static_cast<std::uint64_t>(st.st_size);
      e.digest = sha256_of_file(path);
      if (st.st_nlink > 1) {
        links[{st.st_dev, st.st_ino}].push_back(rel);
      }
    } else if (S_ISLNK(st.st_mode)) {
      e.type = 'l';
      e.mode = 0;
      e.mtime = 0;  // not every extractor restores a symlink's time
      e.target = fs::read_symlink(path).string();
    } else if (S_ISFIFO(st.st_mode)) {
      e.type = 'p';
    }
    if (rel.empty()) {
      e.mtime = 0;
    }
    out[rel] = e;
    if (S_ISDIR(st.st_mode)) {
      for (const auto& child : fs::directory_iterator(path)) {
        const std::string name = child.path().filename().string();
        walk(child.path(), rel.empty() ? name : rel + "/" + name);
      }
    }
  };
  walk(root, "");
  for (auto& [key, paths] : links) {
    std::sort(paths.begin(), paths.end());
    for (const auto& p : paths) {
      out[p].link_group = paths.front();
    }
  }
  return out;
}

std::vector<std::string> compare(const manifest& expected, const manifest& actual) {
  std::vector<std::string> diffs;
  for (const auto& [path, e] : expected) {
    auto it = actual.find(path);
    if (it == actual.end()) {
      diffs.push_back(path + ": missing");
      continue;
    }
    const manifest_entry& a = it->second;
    auto field = [&](const char* name, const auto& x, const auto& y) {
      if (x != y) {
        std::ostringstream s;
        s << path << ": " << name << " " << x << " != " << y;
        diffs.push_back(s.str());
      }
    };
    field("type", e.type, a.type);
    field("mode", e.mode, a.mode);
    field("uid", e.uid, a.uid);
    field("gid", e.gid, a.gid);
    field("size", e.size, a.size);
    field("mtime", e.mtime, a.mtime);
    field("digest", e.digest, a.digest);
    field("target", e.target, a.target);
    field("link group", e.link_group, a.link_group);
  }
  for (const auto& [path, a] : actual) {
    if (!expected.contains(path)) {
      diffs.push_back(path + ": unexpected");
    }
  }
  return diffs;
}

pull_source pull_command(const std::string& command) {
  std::shared_ptr<FILE> pipe(::popen(command.c_str(), "r"), [](FILE* f) {
    if (f != nullptr) {
      ::pclose(f);
    }
  });
  auto done = std::make_shared<bool>(false);
  return [pipe, done, command](std::span<char> into) -> result<std::size_t> {
    if (!pipe) {
      return make_error(errc::source_failed, "cannot start " + command);
    }
    if (*done) {
      return std::size_t{0};
    }
    const std::size_t n = std::fread(into.data(), 1, into.size(), pipe.get());
    if (n == 0) {
      *done = true;
    }
    return n;
  };
}

pull_source pull_bytes(std::string data, std::size_t piece) {
  auto state = std::make_shared<std::pair<std::string, std::size_t>>(std::move(data), 0);
  return [state, piece](std::span<char> into) -> result<std::size_t> {
    auto& [bytes, offset] = *state;
    const std::size_t n = std::min({into.size(), piece, bytes.size() - offset});
    std::copy_n(bytes.data() + offset, n, into.data());
    offset += n;
    return n;
  };
}

std::string read_file(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

std::vector<listed_entry> list_archive(const fs::path& path) {
  // Names as UTF-8 whatever the test's locale ("C" has no form for "café").
  locale_t utf8 = ::newlocale(LC_CTYPE_MASK, "C.UTF-8", static_cast<locale_t>(nullptr));
  const locale_t previous = ::uselocale(utf8);
  struct restore {
    locale_t previous;
    locale_t utf8;
    ~restore() {
      ::uselocale(previous);
      ::freelocale(utf8);
    }
  } restore_locale{previous, utf8};
  std::vector<listed_entry> out;
  std::unique_ptr<struct archive, decltype(&archive_read_free)> a(archive_read_new(),
                                                                  archive_read_free);
  archive_read_support_filter_all(a.get());
  archive_read_support_format_all(a.get());
  if (archive_read_open_filename(a.get(), path.c_str(), 1 << 16) != ARCHIVE_OK) {
    throw std::runtime_error(archive_error_string(a.get()));
  }
  archive_entry* e = nullptr;
  int r = 0;
  while ((r = archive_read_next_header(a.get(), &e)) == ARCHIVE_OK || r == ARCHIVE_WARN) {
    listed_entry l;
    const char* name = archive_entry_pathname(e);
    l.path = name != nullptr ? name : "<unreadable name>";
    switch (archive_entry_filetype(e)) {
      case AE_IFDIR:
        l.type = 'd';
        break;
      case AE_IFREG:
        l.type = 'f';
        break;
      case AE_IFLNK:
        l.type = 'l';
        break;
      case AE_IFIFO:
        l.type = 'p';
        break;
      default:
        break;
    }
    const char* h = archive_entry_hardlink(e);
    if (h == nullptr) {
      h = archive_entry_hardlink_utf8(e);
    }
    if (h != nullptr) {
      l.hardlink = h;
      l.type = 'h';
    }
    if (const char* u = archive_entry_uname(e); u != nullptr) {
      l.uname = u;
    }
    l.uid = static_cast<unsigned>(archive_entry_uid(e));
    l.size = archive_entry_size(e);
    l.sparse_runs = archive_entry_sparse_count(e);
    out.push_back(l);
  }
  if (r != ARCHIVE_EOF) {
    throw std::runtime_error(std::string("reading back: ") + archive_error_string(a.get()));
  }
  return out;
}

}  // namespace lifeboat::archive::test
