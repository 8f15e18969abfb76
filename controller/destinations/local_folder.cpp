#include "controller/destinations/local_folder.hpp"

#include "controller/archive/local_destination.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <string_view>

namespace lifeboat::destinations {

namespace {

namespace fs = std::filesystem;

archive::error failure(archive::errc code, std::string message) {
  return archive::make_error(code, std::move(message));
}

class local_upload final : public upload {
 public:
  local_upload(archive::local_archive_file file, fs::path directory)
      : file_(std::move(file)), directory_(std::move(directory)) {}

  archive::result<void> write(std::span<const char> bytes) override { return file_.write(bytes); }

  archive::result<published_archive> commit() override {
    auto committed = file_.commit();
    if (!committed) {
      return committed.error();
    }
    return published_archive{committed->path.string(), committed->sha256, committed->size};
  }

  void abandon() override { file_.discard(); }
  std::uint64_t bytes_written() const override { return file_.bytes_written(); }

 private:
  archive::local_archive_file file_;
  fs::path directory_;
};

class local_download final : public download {
 public:
  explicit local_download(int fd, fs::path path) : fd_(fd), path_(std::move(path)) {}
  local_download(const local_download&) = delete;
  local_download& operator=(const local_download&) = delete;
  ~local_download() override { ::close(fd_); }

  archive::result<std::size_t> read(std::span<char> into) override {
    for (;;) {
      const ssize_t n = ::read(fd_, into.data(), into.size());
      if (n >= 0) {
        return static_cast<std::size_t>(n);
      }
      if (errno != EINTR) {
        return failure(archive::errc::io_error,
                       "reading " + path_.string() + ": " + std::strerror(errno));
      }
    }
  }

 private:
  int fd_;
  fs::path path_;
};

}  // namespace

local_folder::local_folder(fs::path path, std::optional<fs::path> container_root)
    : path_(std::move(path)), container_root_(std::move(container_root)) {}

std::string local_folder::describe() const { return "local " + path_.string(); }

archive::result<void> local_folder::check() const {
  struct stat st {};
  if (::stat(path_.c_str(), &st) != 0) {
    const int err = errno;
    // The folder itself may be made, one level below a folder that exists
    // and is a mount: never a chain of folders into whatever is there.
    if (err != ENOENT || !path_.has_parent_path()) {
      return failure(archive::errc::refused,
                     "destination " + path_.string() + ": " + std::strerror(err));
    }
    struct stat parent {};
    if (::stat(path_.parent_path().c_str(), &parent) != 0 || !S_ISDIR(parent.st_mode)) {
      return failure(archive::errc::refused,
                     "destination " + path_.string() +
                         " does not exist, nor does its parent folder: mount a volume or a host "
                         "folder there");
    }
    local_folder up(path_.parent_path(), container_root_);
    if (auto parent_ok = up.check(); !parent_ok) {
      return failure(
          archive::errc::refused,
          "destination " + path_.string() + " does not exist, and " + parent_ok.error().message);
    }
    if (::mkdir(path_.c_str(), 0700) != 0 && errno != EEXIST) {
      return failure(archive::errc::refused,
                     "creating destination " + path_.string() + ": " + std::strerror(errno));
    }
    return {};
  }
  if (!S_ISDIR(st.st_mode)) {
    return failure(archive::errc::refused, "destination " + path_.string() + " is not a directory");
  }
  if (container_root_) {
    struct stat root {};
    if (::stat(container_root_->c_str(), &root) == 0 && root.st_dev == st.st_dev) {
      return failure(archive::errc::refused,
                     "destination " + path_.string() +
                         " is on the controller container's own file system, not a mounted "
                         "volume or host folder: archives there vanish with the container");
    }
  }
  if (::access(path_.c_str(), W_OK | X_OK) != 0) {
    return failure(archive::errc::refused,
                   "destination " + path_.string() + ": " + std::strerror(errno));
  }
  return {};
}

archive::result<std::unique_ptr<upload>> local_folder::begin(const std::string& file_name) {
  auto file = archive::local_archive_file::create(path_, file_name);
  if (!file) {
    return file.error();
  }
  return std::unique_ptr<upload>(std::make_unique<local_upload>(std::move(*file), path_));
}

archive::result<std::vector<archive::archive_file>> local_folder::list() const {
  return archive::list_archive_files(path_);
}

archive::result<void> local_folder::remove(const std::string& file_name) {
  const std::string names[] = {file_name};
  auto removed = archive::remove_archives(path_, names);
  if (!removed) {
    return removed.error();
  }
  return {};
}

archive::result<std::unique_ptr<download>> local_folder::open(const std::string& file_name) const {
  if (file_name.empty() || file_name.find('/') != std::string::npos) {
    return failure(archive::errc::invalid_argument, "\"" + file_name + "\" is not a file name");
  }
  const fs::path path = path_ / file_name;
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
  if (fd < 0) {
    return failure(archive::errc::io_error,
                   "opening " + path.string() + ": " + std::strerror(errno));
  }
  return std::unique_ptr<download>(std::make_unique<local_download>(fd, path));
}

archive::result<std::vector<std::string>> local_folder::remove_leftovers(
    const archive::archive_name_pattern& pattern) {
  return archive::remove_leftovers(path_, pattern);
}

std::string local_folder::point_latest(const std::string& file_name) {
  auto linked = archive::update_latest_link(path_, "latest", file_name);
  return linked ? std::string() : "latest link not updated: " + linked.error().message;
}

std::optional<fs::path> own_container_root() {
  // Only lifeboat's own images set this: a CLI run on a host (or in some
  // other container, as on CI machines) writes wherever it is told.
  const char* in_image = std::getenv("LIFEBOAT_IN_IMAGE");
  if (in_image != nullptr && std::string_view(in_image) == "1") {
    return fs::path("/");
  }
  return std::nullopt;
}

}  // namespace lifeboat::destinations
