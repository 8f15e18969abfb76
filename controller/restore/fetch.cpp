#include "controller/restore/fetch.hpp"

#include "controller/destinations/destination.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <cstdlib>
#include <cstring>

namespace lifeboat::restore {

namespace {

// A file in `folder` that no other process can open by a name.
result<int> nameless_file(const std::filesystem::path& folder) {
  int fd = ::open(folder.c_str(), O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
  if (fd >= 0) {
    return fd;
  }
  if (errno != EOPNOTSUPP && errno != EISDIR && errno != EINVAL) {
    return make_error(errc::invalid_argument, "cannot create a spool file in " + folder.string() +
                                                  ": " + std::strerror(errno));
  }
  std::string name = (folder / ".lifeboat-restore-XXXXXX").string();
  fd = ::mkostemp(name.data(), O_CLOEXEC);
  if (fd < 0) {
    return make_error(errc::invalid_argument, "cannot create a spool file in " + folder.string() +
                                                  ": " + std::strerror(errno));
  }
  ::unlink(name.c_str());
  return fd;
}

// Every byte `d` reads, passed to `sink`.
template <typename Sink>
result<void> drain(destinations::download& d, const std::string& shown_as,
                   const std::atomic<bool>* cancel, Sink&& sink) {
  std::array<char, 1 << 16> block{};
  while (true) {
    if (cancel != nullptr && cancel->load()) {
      return make_error(errc::cancelled, "cancelled while reading " + shown_as);
    }
    auto n = d.read(block);
    if (!n) {
      return make_error(errc::invalid_argument,
                        "reading " + shown_as + ": " + n.error().describe());
    }
    if (*n == 0) {
      return {};
    }
    if (auto r = sink(std::span<const char>(block.data(), *n)); !r) {
      return r;
    }
  }
}

}  // namespace

result<archive_file> fetch_archive(const destinations::destination& from, const std::string& name,
                                   const std::filesystem::path& spool_folder,
                                   const std::atomic<bool>* cancel) {
  const std::string shown_as = from.describe() + " " + name;

  // The checksum first: small, and a missing one fails before the archive's
  // whole size has been copied.
  std::string checksum_text;
  {
    auto d = from.open(name + ".sha256");
    if (!d) {
      return make_error(errc::invalid_argument,
                        "reading " + shown_as + ".sha256: " + d.error().describe());
    }
    auto read = drain(**d, shown_as + ".sha256", cancel, [&](std::span<const char> bytes) {
      if (checksum_text.size() + bytes.size() > std::size_t{64} * 1024) {
        return result<void>(make_error(errc::invalid_argument,
                                       shown_as + ".sha256 is not a checksum file (over 64 KiB)"));
      }
      checksum_text.append(bytes.data(), bytes.size());
      return result<void>();
    });
    if (!read) {
      return read.error();
    }
  }

  auto fd = nameless_file(spool_folder);
  if (!fd) {
    return fd.error();
  }
  // Owned from here: adopt() takes it, every other path closes it.
  struct closer {
    int fd;
    ~closer() {
      if (fd >= 0) {
        ::close(fd);
      }
    }
  } owned{*fd};
  auto d = from.open(name);
  if (!d) {
    return make_error(errc::invalid_argument, "reading " + shown_as + ": " + d.error().describe());
  }
  auto copied = drain(**d, shown_as, cancel, [&](std::span<const char> bytes) -> result<void> {
    while (!bytes.empty()) {
      const auto n = ::write(owned.fd, bytes.data(), bytes.size());
      if (n < 0 && errno == EINTR) {
        continue;
      }
      if (n < 0) {
        const int e = errno;
        return make_error(e == ENOSPC || e == EDQUOT ? errc::no_space : errc::io_error,
                          "copying " + shown_as + " into the spool folder " +
                              spool_folder.string() + ": " + std::strerror(e));
      }
      bytes = bytes.subspan(static_cast<std::size_t>(n));
    }
    return {};
  });
  if (!copied) {
    return copied.error();
  }
  if (::lseek(owned.fd, 0, SEEK_SET) != 0) {
    return make_error(errc::internal,
                      "rewinding the spool file: " + std::string(std::strerror(errno)));
  }
  auto file = archive_file::adopt(std::exchange(owned.fd, -1), shown_as, checksum_text);
  return file;
}

}  // namespace lifeboat::restore
