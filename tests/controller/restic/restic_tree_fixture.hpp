#pragma once

// Helpers shared by the restore tests: a folder tree with every kind of entry a
// restore must reproduce, and a description of a tree that is equal for two trees
// exactly when their entries, modes, owners, times, contents, link targets and
// hard-link groups are.
#include "controller/restic/primitives.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <array>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

namespace lifeboat::restic::testing {

namespace fs = std::filesystem;

class temp_dir {
 public:
  temp_dir() {
    std::string pattern = (fs::temp_directory_path() / "lifeboat-restore-XXXXXX").string();
    if (mkdtemp(pattern.data()) != nullptr) {
      path_ = pattern;
    }
  }
  ~temp_dir() {
    std::error_code ec;
    // Restored folders may be read-only (0555): make every folder writable first.
    for (auto it = fs::recursive_directory_iterator(path_, ec);
         !ec && it != fs::recursive_directory_iterator(); it.increment(ec)) {
      if (it->is_directory(ec) && !it->is_symlink(ec)) {
        fs::permissions(it->path(), fs::perms::owner_all, fs::perm_options::add, ec);
      }
    }
    fs::remove_all(path_, ec);
  }
  temp_dir(const temp_dir&) = delete;
  temp_dir& operator=(const temp_dir&) = delete;
  const fs::path& path() const { return path_; }

 private:
  fs::path path_;
};

inline std::string random_bytes(std::size_t size, std::uint64_t seed) {
  std::string data(size, '\0');
  std::mt19937_64 gen(seed);
  for (std::size_t i = 0; i + 8 <= data.size(); i += 8) {
    const std::uint64_t v = gen();
    std::memcpy(&data[i], &v, 8);
  }
  return data;
}

inline void write_bytes(const fs::path& p, const std::string& data) {
  std::ofstream(p, std::ios::binary | std::ios::trunc) << data;
}

inline std::string read_bytes(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

inline void set_mtime(const fs::path& p, std::int64_t sec, long nsec) {
  const std::array<timespec, 2> t{timespec{static_cast<time_t>(sec - 100), 0},
                                  timespec{static_cast<time_t>(sec), nsec}};
  ASSERT_EQ(::utimensat(AT_FDCWD, p.c_str(), t.data(), AT_SYMLINK_NOFOLLOW), 0) << p;
}

inline constexpr std::uint64_t sparse_size = std::uint64_t{20} * 1024 * 1024;

/// Files of several sizes (one of several chunks), empty files and folders, a
/// read-only folder with a file in it, setuid/setgid/sticky bits, symlinks (one
/// dangling, one absolute), three hard links to one file, a fifo, a sparse file
/// with leading and trailing holes, other owners (as root) and set times.
inline void make_tree(const fs::path& root) {
  fs::create_directories(root / "empty-dir");
  fs::create_directories(root / "nested" / "deeper");
  fs::create_directories(root / "shared");
  fs::create_directories(root / "read-only");
  write_bytes(root / "small.txt", "hello, restic\n");
  write_bytes(root / "medium.bin", random_bytes(std::size_t{700} * 1024, 1));
  write_bytes(root / "big.bin", random_bytes(std::size_t{10} * 1024 * 1024, 2));
  write_bytes(root / "empty", "");
  write_bytes(root / "nested" / "deeper" / "leaf.txt", "leaf");
  write_bytes(root / "read-only" / "inside", "in a 0555 folder");
  write_bytes(root / "private.key", "secret");
  write_bytes(root / "run.sh", "#!/bin/sh\n");
  write_bytes(root / "setuid", "suid");
  fs::create_symlink("small.txt", root / "link");
  fs::create_symlink("../nowhere", root / "nested" / "dangling");
  fs::create_symlink("/etc/passwd", root / "absolute");
  write_bytes(root / "hard-a", "same inode");
  fs::create_hard_link(root / "hard-a", root / "nested" / "hard-b");
  fs::create_hard_link(root / "hard-a", root / "nested" / "deeper" / "hard-c");
  ASSERT_EQ(::mkfifo((root / "fifo").c_str(), 0640), 0);
  {
    std::ofstream sparse(root / "sparse", std::ios::binary);
    sparse.seekp(std::streamoff{5} * 1024 * 1024);
    sparse << "in the middle";
  }
  ASSERT_EQ(::truncate((root / "sparse").c_str(), static_cast<off_t>(sparse_size)), 0);
  if (::geteuid() == 0) {
    ASSERT_EQ(::chown((root / "private.key").c_str(), 1234, 5678), 0);
    ASSERT_EQ(::lchown((root / "link").c_str(), 4321, 8765), 0);
    ASSERT_EQ(::chown((root / "nested").c_str(), 1000, 1000), 0);
  }
  ::chmod((root / "private.key").c_str(), 0600);
  ::chmod((root / "run.sh").c_str(), 0755);
  ::chmod((root / "setuid").c_str(), 04755);
  ::chmod((root / "shared").c_str(), 03775);  // setgid and sticky
  ::chmod((root / "nested").c_str(), 0700);
  set_mtime(root / "small.txt", 1600000000, 123456789);
  set_mtime(root / "link", 1500000000, 1);
  set_mtime(root / "nested" / "deeper", 1400000000, 500000000);
  set_mtime(root / "nested", 1400000001, 0);
  set_mtime(root / "empty-dir", 1300000000, 42);
  set_mtime(root / "read-only", 1200000000, 7);
  ::chmod((root / "read-only").c_str(), 0555);
}

/// Every entry under `root` (and `root` itself as ".") as "path mode uid gid nlink
/// mtime [size content-hash | target]", plus which paths share an inode.
inline std::vector<std::string> describe_tree(const fs::path& root) {
  std::vector<std::string> out;
  std::map<std::pair<dev_t, ino_t>, std::string> first_path;
  std::vector<fs::path> paths{root};
  for (auto it = fs::recursive_directory_iterator(root); it != fs::recursive_directory_iterator();
       ++it) {
    paths.push_back(it->path());
  }
  std::sort(paths.begin(), paths.end());  // the first of a hard-link group is the same in both
  for (const fs::path& p : paths) {
    const std::string rel = p == root ? "." : p.lexically_relative(root).string();
    struct stat st {};
    EXPECT_EQ(::lstat(p.c_str(), &st), 0) << p;
    std::ostringstream line;
    line << rel << " mode=" << std::oct << st.st_mode << std::dec << " uid=" << st.st_uid
         << " gid=" << st.st_gid << " mtime=" << st.st_mtim.tv_sec << "." << st.st_mtim.tv_nsec;
    if (S_ISREG(st.st_mode)) {
      const std::string data = read_bytes(p);
      line << " nlink=" << st.st_nlink << " size=" << data.size()
           << " sha256=" << detail::hex(detail::sha256(detail::as_bytes(data)));
      if (st.st_nlink > 1) {
        auto [at, fresh] = first_path.try_emplace({st.st_dev, st.st_ino}, rel);
        line << " same-inode-as=" << at->second;
      }
    } else if (S_ISLNK(st.st_mode)) {
      line << " target=" << fs::read_symlink(p).string();
    }
    out.push_back(line.str());
  }
  std::sort(out.begin(), out.end());
  return out;
}

/// Bytes allocated to a file (st_blocks is in 512-byte units).
inline std::uint64_t allocated(const fs::path& p) {
  struct stat st {};
  EXPECT_EQ(::lstat(p.c_str(), &st), 0) << p;
  return static_cast<std::uint64_t>(st.st_blocks) * 512;
}

}  // namespace lifeboat::restic::testing
