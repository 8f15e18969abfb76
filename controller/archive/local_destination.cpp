#include "controller/archive/local_destination.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <nettle/sha2.h>
#include <sys/stat.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <cstring>
#include <utility>

namespace lifeboat::archive {

namespace {

constexpr std::string_view partial_suffix = ".partial";
constexpr std::string_view checksum_suffix = ".sha256";

error io_failure(std::string_view doing, const std::filesystem::path& path, int err) {
  // The kinds a run's status and metrics must tell apart.
  const errc kind = err == ENOSPC || err == EDQUOT                  ? errc::no_space
                    : err == EACCES || err == EPERM || err == EROFS ? errc::refused
                                                                    : errc::io_error;
  return make_error(kind, std::string(doing) + " " + path.string() + ": " + std::strerror(err));
}

bool valid_file_name(std::string_view name) {
  return !name.empty() && name != "." && name != ".." && name.find('/') == std::string_view::npos &&
         name.find('\0') == std::string_view::npos;
}

result<void> write_all(int fd, const char* data, std::size_t size,
                       const std::filesystem::path& path) {
  while (size > 0) {
    const ssize_t n = ::write(fd, data, size);
    if (n < 0) {
      if (errno == EINTR) {
        continue;
      }
      return io_failure("writing", path, errno);
    }
    data += n;
    size -= static_cast<std::size_t>(n);
  }
  return {};
}

result<void> sync_directory(const std::filesystem::path& directory) {
  const int fd = ::open(directory.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) {
    return io_failure("opening", directory, errno);
  }
  const int r = ::fsync(fd);
  const int err = errno;
  ::close(fd);
  if (r != 0) {
    return io_failure("syncing", directory, err);
  }
  return {};
}

// Writes a small file completely and durably under a temporary name, then
// renames it to `path`.
result<void> write_file_atomically(const std::filesystem::path& path, std::string_view content) {
  std::filesystem::path temporary = path;
  temporary += partial_suffix;
  if (::unlink(temporary.c_str()) != 0 && errno != ENOENT) {
    return io_failure("removing the leftover", temporary, errno);
  }
  const int fd =
      ::open(temporary.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644);
  if (fd < 0) {
    return io_failure("creating", temporary, errno);
  }
  auto r = write_all(fd, content.data(), content.size(), temporary);
  if (r && ::fsync(fd) != 0) {
    r = io_failure("syncing", temporary, errno);
  }
  if (::close(fd) != 0 && r) {
    r = io_failure("closing", temporary, errno);
  }
  if (r && ::rename(temporary.c_str(), path.c_str()) != 0) {
    r = io_failure("renaming", temporary, errno);
  }
  if (!r) {
    ::unlink(temporary.c_str());
  }
  return r;
}

std::string to_hex(std::span<const std::uint8_t> bytes) {
  static constexpr char digits[] = "0123456789abcdef";
  std::string out;
  out.reserve(bytes.size() * 2);
  for (std::uint8_t b : bytes) {
    out += digits[b >> 4];
    out += digits[b & 0xf];
  }
  return out;
}

bool unlink_if_present(const std::filesystem::path& path, int& err) {
  if (::unlink(path.c_str()) == 0) {
    return true;
  }
  err = errno == ENOENT ? 0 : errno;
  return false;
}

}  // namespace

struct local_archive_file::impl {
  std::filesystem::path directory;
  std::string file_name;
  std::filesystem::path partial_path;
  std::filesystem::path final_path;
  int fd = -1;
  sha256_ctx hash{};
  std::uint64_t size = 0;
  bool committed = false;

  impl() = default;
  impl(const impl&) = delete;
  impl& operator=(const impl&) = delete;

  ~impl() {
    if (!committed) {
      remove_partial();
    }
  }

  void remove_partial() {
    if (fd >= 0) {
      ::close(fd);
      fd = -1;
      ::unlink(partial_path.c_str());
    }
  }
};

local_archive_file::local_archive_file(std::unique_ptr<impl> p) : impl_(std::move(p)) {}
local_archive_file::local_archive_file(local_archive_file&&) noexcept = default;
local_archive_file& local_archive_file::operator=(local_archive_file&&) noexcept = default;
local_archive_file::~local_archive_file() = default;

result<local_archive_file> local_archive_file::create(const std::filesystem::path& directory,
                                                      std::string file_name) {
  if (!valid_file_name(file_name)) {
    return make_error(errc::invalid_argument, "\"" + file_name + "\" is not a file name");
  }
  struct stat st {};
  if (::stat(directory.c_str(), &st) != 0) {
    return io_failure("destination", directory, errno);
  }
  if (!S_ISDIR(st.st_mode)) {
    return make_error(errc::io_error, "destination " + directory.string() + ": not a directory");
  }
  auto p = std::make_unique<impl>();
  p->directory = directory;
  p->final_path = directory / file_name;
  p->partial_path = p->final_path;
  p->partial_path += partial_suffix;
  p->file_name = std::move(file_name);
  sha256_init(&p->hash);
  // A leftover of an interrupted run goes first, then the file is created
  // afresh: O_EXCL|O_NOFOLLOW, so a symlink planted under the partial name
  // (unlink removes the link, not its target) can never redirect this write.
  if (::unlink(p->partial_path.c_str()) != 0 && errno != ENOENT) {
    return io_failure("removing the leftover", p->partial_path, errno);
  }
  p->fd =
      ::open(p->partial_path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
  if (p->fd < 0) {
    return io_failure("creating", p->partial_path, errno);
  }
  return local_archive_file(std::move(p));
}

result<void> local_archive_file::write(std::span<const char> bytes) {
  if (!impl_ || impl_->fd < 0) {
    return make_error(errc::internal, "writing an archive file that is closed");
  }
  if (auto r = write_all(impl_->fd, bytes.data(), bytes.size(), impl_->partial_path); !r) {
    return r;
  }
  // Hashed as written: the checksum needs no second read of the archive.
  sha256_update(&impl_->hash, bytes.size(), reinterpret_cast<const std::uint8_t*>(bytes.data()));
  impl_->size += bytes.size();
  return {};
}

byte_sink local_archive_file::sink() {
  return [this](std::span<const char> bytes) { return write(bytes); };
}

std::uint64_t local_archive_file::bytes_written() const { return impl_ ? impl_->size : 0; }

void local_archive_file::discard() { impl_.reset(); }

result<committed_archive> local_archive_file::commit() {
  if (!impl_ || impl_->fd < 0) {
    return make_error(errc::internal, "committing an archive file that is closed");
  }
  impl& p = *impl_;
  std::array<std::uint8_t, SHA256_DIGEST_SIZE> digest{};
  sha256_digest(&p.hash, digest.size(), digest.data());
  committed_archive out;
  out.path = p.final_path;
  out.checksum_path = p.final_path;
  out.checksum_path += checksum_suffix;
  out.sha256 = to_hex(digest);
  out.size = p.size;

  // Data first: nothing may be renamed into place before it is on disk.
  if (::fsync(p.fd) != 0) {
    return io_failure("syncing", p.partial_path, errno);
  }
  const int fd = std::exchange(p.fd, -1);
  if (::close(fd) != 0) {
    const int err = errno;
    ::unlink(p.partial_path.c_str());
    return io_failure("closing", p.partial_path, err);
  }
  auto fail = [&](error e) -> result<committed_archive> {
    ::unlink(p.partial_path.c_str());
    return e;
  };
  // The checksum goes first so that an archive under its final name always
  // has one beside it.
  if (auto r = write_file_atomically(out.checksum_path, out.sha256 + "  " + p.file_name + "\n");
      !r) {
    return fail(r.error());
  }
  if (auto r = sync_directory(p.directory); !r) {
    ::unlink(out.checksum_path.c_str());
    return fail(r.error());
  }
  if (::rename(p.partial_path.c_str(), p.final_path.c_str()) != 0) {
    const int err = errno;
    ::unlink(out.checksum_path.c_str());
    return fail(io_failure("renaming", p.partial_path, err));
  }
  p.committed = true;
  // The archive is in place; a failure to sync the folder now only means a
  // crash could still lose the rename, which the caller should hear about.
  if (auto r = sync_directory(p.directory); !r) {
    return r.error();
  }
  impl_.reset();
  return out;
}

result<void> update_latest_link(const std::filesystem::path& directory, std::string_view link_name,
                                std::string_view target_file) {
  if (!valid_file_name(link_name) || !valid_file_name(target_file)) {
    return make_error(errc::invalid_argument, "the latest link and its target must be file names");
  }
  const std::filesystem::path link = directory / link_name;
  struct stat st {};
  if (::lstat(link.c_str(), &st) == 0 && !S_ISLNK(st.st_mode)) {
    return make_error(errc::io_error,
                      "refusing to replace " + link.string() + ": it is not a symlink");
  }
  std::filesystem::path temporary = link;
  temporary += partial_suffix;
  ::unlink(temporary.c_str());  // a leftover of an interrupted update
  const std::string target(target_file);
  if (::symlink(target.c_str(), temporary.c_str()) != 0) {
    return io_failure("creating the symlink", temporary, errno);
  }
  if (::rename(temporary.c_str(), link.c_str()) != 0) {
    const int err = errno;
    ::unlink(temporary.c_str());
    return io_failure("renaming", temporary, err);
  }
  return sync_directory(directory);
}

result<std::vector<archive_file>> list_archive_files(const std::filesystem::path& directory) {
  DIR* dir = ::opendir(directory.c_str());
  if (dir == nullptr) {
    return io_failure("listing", directory, errno);
  }
  std::vector<archive_file> files;
  errno = 0;
  while (const dirent* e = ::readdir(dir)) {
    const std::string_view name = e->d_name;
    if (name == "." || name == "..") {
      continue;
    }
    struct stat st {};
    if (::fstatat(::dirfd(dir), e->d_name, &st, AT_SYMLINK_NOFOLLOW) != 0) {
      continue;  // removed since readdir
    }
    if (!S_ISREG(st.st_mode)) {
      continue;
    }
    const auto mtime = std::chrono::system_clock::time_point{
        std::chrono::duration_cast<std::chrono::system_clock::duration>(
            std::chrono::seconds{st.st_mtim.tv_sec} +
            std::chrono::nanoseconds{st.st_mtim.tv_nsec})};
    files.push_back(archive_file{std::string(name), mtime, static_cast<std::uint64_t>(st.st_size)});
    errno = 0;
  }
  const int err = errno;
  ::closedir(dir);
  if (err != 0) {
    return io_failure("listing", directory, err);
  }
  return files;
}

result<std::vector<std::string>> remove_archives(const std::filesystem::path& directory,
                                                 std::span<const std::string> names) {
  std::vector<std::string> removed;
  for (const auto& name : names) {
    if (!valid_file_name(name)) {
      return make_error(errc::invalid_argument, "\"" + name + "\" is not a file name");
    }
    for (const std::string& file : {name, name + std::string(checksum_suffix)}) {
      const auto path = directory / file;
      int err = 0;
      if (unlink_if_present(path, err)) {
        removed.push_back(path.string());
      } else if (err != 0) {
        return io_failure("removing", path, err);
      }
    }
  }
  return removed;
}

result<std::vector<std::string>> remove_leftovers(const std::filesystem::path& directory,
                                                  const archive_name_pattern& pattern) {
  auto files = list_archive_files(directory);
  if (!files) {
    return files.error();
  }
  std::vector<std::string> removed;
  auto strip = [](std::string_view name, std::string_view suffix, std::string_view& rest) {
    if (!name.ends_with(suffix)) {
      return false;
    }
    rest = name.substr(0, name.size() - suffix.size());
    return true;
  };
  std::vector<std::string_view> doomed;
  for (const auto& f : *files) {
    std::string_view archive;
    std::string_view rest;
    bool leftover = false;
    if (strip(f.name, partial_suffix, rest)) {
      // "<archive>.partial" or "<archive>.sha256.partial".
      std::string_view inner;
      leftover =
          pattern.matches(rest) || (strip(rest, checksum_suffix, inner) && pattern.matches(inner));
    } else if (strip(f.name, checksum_suffix, archive) && pattern.matches(archive)) {
      struct stat st {};
      const auto archive_path = directory / std::string(archive);
      leftover = ::lstat(archive_path.c_str(), &st) != 0 && errno == ENOENT;
    }
    if (leftover) {
      doomed.push_back(f.name);
    }
  }
  for (std::string_view name : doomed) {
    const auto path = directory / std::string(name);
    int err = 0;
    if (unlink_if_present(path, err)) {
      removed.emplace_back(name);
    } else if (err != 0) {
      return io_failure("removing", path, err);
    }
  }
  return removed;
}

result<local_write_result> write_local_archive(std::span<const volume_source> sources,
                                               const write_options& options,
                                               const local_target& target) {
  auto file = local_archive_file::create(target.directory, target.file_name);
  if (!file) {
    return file.error();
  }
  auto report = write_archive(sources, options, file->sink());
  if (!report) {
    file->discard();
    return report.error();
  }
  auto committed = file->commit();
  if (!committed) {
    return committed.error();
  }
  local_write_result out{std::move(*report), std::move(*committed)};
  if (target.latest_link) {
    if (auto r = update_latest_link(target.directory, *target.latest_link, target.file_name); !r) {
      ++out.report.warning_count;
      out.report.warnings.push_back("latest link: " + r.error().describe());
    }
  }
  return out;
}

}  // namespace lifeboat::archive
