#include "controller/restore/unpack.hpp"

#include <archive.h>
#include <archive_entry.h>
#include <fcntl.h>
#include <nettle/sha2.h>
#include <sched.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cctype>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>
#include <thread>

namespace lifeboat::restore {

namespace fs = std::filesystem;

namespace {

constexpr std::size_t read_buffer_size = 1 << 20;
constexpr std::uint64_t progress_every = 8 << 20;

struct archive_deleter {
  void operator()(archive* a) const {
    if (a != nullptr) {
      archive_free(a);  // closes first when still open
    }
  }
};
using archive_handle = std::unique_ptr<archive, archive_deleter>;

std::string to_hex(std::span<const std::uint8_t> bytes) {
  static constexpr char digits[] = "0123456789abcdef";
  std::string out;
  out.reserve(bytes.size() * 2);
  for (const auto b : bytes) {
    out += digits[b >> 4];
    out += digits[b & 0xf];
  }
  return out;
}

std::string library_error(archive* a) {
  const char* s = archive_error_string(a);
  return s != nullptr ? s : "unknown libarchive error";
}

// The archive file fed to libarchive by pread from offset 0 (so pass 1 and
// pass 2 share one descriptor), hashed on the way when asked (the checksum is
// of the file as stored, so of the ciphertext when it is encrypted), and
// decrypted on the way when it is an age file: libarchive then sees the
// plaintext, each 64 KiB chunk only once its tag has been checked.
struct file_feed {
  int fd = -1;
  std::string shown_as;  // the archive, for messages
  std::uint64_t offset = 0;
  std::uint64_t size = 0;
  std::vector<char> buffer = std::vector<char>(read_buffer_size);
  std::optional<sha256_ctx> hash;
  std::unique_ptr<crypto::decryptor> decrypt;
  std::string method;  // "age" or "OpenPGP" once recognised
  std::string plain;   // what the decryptor gave for the current read
  bool decrypted_to_end = false;
  std::optional<crypto::error> decrypt_failure;

  // Starts decrypting when the file is an age file, or else an OpenPGP one;
  // `this` must not move afterwards (the decryptor's sink holds it).
  result<void> recognise(const read_options& keys) {
    std::array<char, 64> head{};
    const ssize_t n = ::pread(fd, head.data(), head.size(), 0);
    if (n < 0) {
      return make_error(errc::io_error, "reading " + shown_as + ": " + std::strerror(errno));
    }
    const std::span<const char> first(head.data(), static_cast<std::size_t>(n));
    auto to_plain = [this](std::span<const char> bytes) {
      plain.append(bytes.data(), bytes.size());
      return crypto::result<void>{};
    };
    if (crypto::looks_like_age(first)) {
      if (keys.identities.empty()) {
        return make_error(errc::invalid_argument,
                          shown_as +
                              " is encrypted with age: give the key that decrypts it (--identity "
                              "FILE or --passphrase-file FILE; spec.decryption.age in a Restore)");
      }
      method = "age";
      decrypt = crypto::decryptor::make(keys.identities, to_plain);
      return {};
    }
    if (!crypto::looks_like_openpgp(first)) {
      return {};
    }
    if (!keys.openpgp) {
      return make_error(
          errc::invalid_argument,
          shown_as +
              " is encrypted with OpenPGP: give what decrypts it (--gpg-secret-key "
              "FILE and/or --passphrase-file FILE; spec.decryption.gpg in a Restore)");
    }
    auto made = crypto::make_openpgp_decryptor(*keys.openpgp, to_plain);
    if (!made) {
      return make_error(
          made.error().is(crypto::errc::internal) ? errc::internal : errc::invalid_argument,
          "decrypting: " + made.error().message);
    }
    method = "OpenPGP";
    decrypt = std::move(*made);
    return {};
  }

  static la_ssize_t on_read(archive* a, void* self, const void** out) {
    auto& f = *static_cast<file_feed*>(self);
    if (f.decrypt) {
      return f.read_decrypted(a, out);
    }
    const ssize_t n = ::pread(f.fd, f.buffer.data(), f.buffer.size(), static_cast<off_t>(f.offset));
    if (n < 0) {
      archive_set_error(a, errno, "reading the archive: %s", std::strerror(errno));
      return -1;
    }
    f.consume(static_cast<std::size_t>(n));
    *out = f.buffer.data();
    return n;
  }

  la_ssize_t read_decrypted(archive* a, const void** out) {
    plain.clear();
    while (plain.empty() && !decrypted_to_end) {
      if (auto fed = feed_decryptor(); !fed) {
        archive_set_error(a, EIO, "%s", fed.error().message.c_str());
        return -1;
      }
    }
    *out = plain.data();
    return static_cast<la_ssize_t>(plain.size());
  }

  // One pread through the decryptor, or its end: errors say what is wrong
  // with the file (the chunk, the key), kept for the caller's message.
  result<void> feed_decryptor() {
    const ssize_t n = ::pread(fd, buffer.data(), buffer.size(), static_cast<off_t>(offset));
    if (n < 0) {
      return make_error(errc::io_error,
                        std::string("reading the archive: ") + std::strerror(errno));
    }
    auto done = [&]() -> crypto::result<void> {
      if (n == 0) {
        decrypted_to_end = true;
        return decrypt->finish();
      }
      consume(static_cast<std::size_t>(n));
      return decrypt->write(std::span<const char>(buffer.data(), static_cast<std::size_t>(n)));
    }();
    if (!done) {
      decrypt_failure = done.error();
      return make_error(done.error().is(crypto::errc::no_matching_identity) ||
                                done.error().is(crypto::errc::invalid_key)
                            ? errc::invalid_argument
                            : errc::corrupt,
                        "decrypting: " + done.error().message);
    }
    return {};
  }

  // The error to report when libarchive gave up: a decryption failure is the
  // cause, named as such, not the tar damage it looks like downstream.
  std::optional<error> decryption_error() const {
    if (!decrypt_failure) {
      return std::nullopt;
    }
    const bool wrong_key = decrypt_failure->is(crypto::errc::no_matching_identity) ||
                           decrypt_failure->is(crypto::errc::invalid_key);
    return make_error(wrong_key ? errc::invalid_argument : errc::corrupt,
                      "decrypting: " + decrypt_failure->message);
  }

  void consume(std::size_t n) {
    if (hash) {
      sha256_update(&*hash, n, reinterpret_cast<const std::uint8_t*>(buffer.data()));
    }
    offset += n;
  }

  // Hashes what libarchive did not need (padding after the end-of-archive
  // blocks): the checksum covers the whole file. An encrypted file is
  // decrypted to its end, so that a missing or damaged final chunk after the
  // tar's end is found too (decryption_error() tells); after a decryption
  // failure the rest is only hashed. Fails only when the file cannot be read.
  result<void> drain() {
    for (;;) {
      if (decrypt && !decrypt_failure && !decrypted_to_end) {
        plain.clear();
        if (auto fed = feed_decryptor(); !fed && !decrypt_failure) {
          return fed.error();
        }
        continue;
      }
      const ssize_t n = ::pread(fd, buffer.data(), buffer.size(), static_cast<off_t>(offset));
      if (n < 0) {
        return make_error(errc::io_error,
                          std::string("reading the archive: ") + std::strerror(errno));
      }
      if (n == 0) {
        return {};
      }
      consume(static_cast<std::size_t>(n));
    }
  }
};

result<archive_handle> open_reader(file_feed& feed) {
  archive_handle a(archive_read_new());
  if (!a) {
    return make_error(errc::internal, "archive_read_new failed");
  }
  archive_read_support_filter_gzip(a.get());
  archive_read_support_filter_zstd(a.get());
  archive_read_support_filter_none(a.get());
  archive_read_support_format_tar(a.get());
  if (archive_read_open2(a.get(), &feed, nullptr, &file_feed::on_read, nullptr, nullptr) !=
      ARCHIVE_OK) {
    return make_error(errc::corrupt,
                      "not a tar archive (plain, gzip or zstd): " + library_error(a.get()));
  }
  return a;
}

entry_info info_of(archive_entry* e) {
  entry_info info;
  const char* path = archive_entry_pathname(e);
  info.path = path != nullptr ? path : "";
  if (const char* link = archive_entry_hardlink(e); link != nullptr) {
    info.type = entry_type::hardlink;
    info.target = link;
    return info;
  }
  switch (archive_entry_filetype(e)) {
    case AE_IFREG:
      info.type = entry_type::file;
      break;
    case AE_IFDIR:
      info.type = entry_type::directory;
      break;
    case AE_IFLNK: {
      info.type = entry_type::symlink;
      const char* target = archive_entry_symlink(e);
      info.target = target != nullptr ? target : "";
      break;
    }
    case AE_IFIFO:
      info.type = entry_type::fifo;
      break;
    case AE_IFCHR:
      info.type = entry_type::char_device;
      break;
    case AE_IFBLK:
      info.type = entry_type::block_device;
      break;
    default:
      info.type = entry_type::other;
  }
  return info;
}

// The state both passes share: the reader, the checker, progress and cancel.
struct reading {
  read_options options;
  file_feed feed;
  archive_handle reader;
  std::optional<entry_checker> checker;
  progress at;
  std::uint64_t next_report = progress_every;
  std::string current;  // the entry being read, for messages

  static result<reading> start(const archive_file& file, const std::vector<mapping>& mappings,
                               const read_options& options, bool hash) {
    reading r;
    r.options = options;
    r.feed.fd = file.fd();
    r.feed.shown_as = file.path().string();
    r.feed.size = file.size();
    if (hash) {
      r.feed.hash.emplace();
      sha256_init(&*r.feed.hash);
    }
    r.at.archive_size = file.size();
    auto checker =
        entry_checker::create(mappings, options.allow_devices, options.allow_absolute_symlinks);
    if (!checker) {
      return checker.error();
    }
    r.checker.emplace(std::move(*checker));
    return r;
  }

  // Opened only once `this` has its final address: libarchive keeps &feed,
  // and the decryptor's sink too.
  result<void> open() {
    if (auto known = feed.recognise(options); !known) {
      return known.error();
    }
    auto a = open_reader(feed);
    if (!a) {
      if (auto cause = feed.decryption_error()) {
        return *cause;
      }
      return a.error();
    }
    reader = std::move(*a);
    return {};
  }

  bool cancelled() const { return options.cancel != nullptr && options.cancel->load(); }

  void tick(std::uint64_t content) {
    at.content_bytes += content;
    at.archive_bytes = feed.offset;
    if (options.on_progress && (content == 0 || at.archive_bytes >= next_report)) {
      next_report = at.archive_bytes + progress_every;
      options.on_progress(at);
    }
  }

  error broken(const std::string& why) const {
    // A wrong key is not damage: say so (the tar reader only saw no data).
    if (auto cause = feed.decryption_error(); cause && cause->is(errc::invalid_argument)) {
      return *cause;
    }
    return make_error(
        errc::corrupt,
        (current.empty() ? std::string("at the first entry") : "at entry " + current) + ": " + why);
  }

  // The next entry the checker accepts and maps, skipping the others; nullopt
  // at the end of the archive.
  result<std::optional<std::pair<archive_entry*, placed_entry>>> next() {
    for (;;) {
      if (cancelled()) {
        return make_error(errc::cancelled, "cancelled");
      }
      archive_entry* e = nullptr;
      const int rc = archive_read_next_header(reader.get(), &e);
      if (rc == ARCHIVE_EOF) {
        return std::optional<std::pair<archive_entry*, placed_entry>>{};
      }
      if (rc < ARCHIVE_WARN) {
        return broken(library_error(reader.get()));
      }
      auto info = info_of(e);
      if (info.path.empty()) {
        return make_error(errc::refused, "an entry after " + current + " has no readable name");
      }
      current = info.path;
      auto placed = checker->check(info);
      if (!placed) {
        return placed.error();
      }
      if (*placed) {
        ++at.entries;
        tick(0);
        return std::optional{std::pair{e, std::move(**placed)}};
      }
    }
  }
};

bool carries_data(archive_entry* e) {
  return archive_entry_filetype(e) == AE_IFREG && archive_entry_hardlink(e) == nullptr &&
         archive_entry_size(e) > 0;
}

}  // namespace

// archive_file --------------------------------------------------------------

namespace {

// The SHA-256 a checksum file (sha256sum's format: "<hex>  <name>") starts with.
result<std::string> checksum_of(std::string_view text, const std::string& shown_as) {
  // The first word, as `>>` reads it: any isspace() byte separates.
  const auto space = [](char c) { return std::isspace(static_cast<unsigned char>(c)) != 0; };
  const auto* begin = std::find_if_not(text.begin(), text.end(), space);
  std::string hex(begin, std::find_if(begin, text.end(), space));
  std::transform(hex.begin(), hex.end(), hex.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  if (hex.size() != 64 || hex.find_first_not_of("0123456789abcdef") != std::string::npos) {
    return make_error(errc::invalid_argument, shown_as + " does not start with a SHA-256 in hex");
  }
  return hex;
}

}  // namespace

result<archive_file> archive_file::open(const fs::path& path) {
  archive_file f;
  f.path_ = path;
  f.fd_ = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (f.fd_ < 0) {
    return make_error(errc::invalid_argument,
                      "cannot open " + path.string() + ": " + std::strerror(errno));
  }
  struct stat st {};
  if (::fstat(f.fd_, &st) != 0 || !S_ISREG(st.st_mode)) {
    return make_error(errc::invalid_argument, path.string() + " is not a regular file");
  }
  f.size_ = static_cast<std::uint64_t>(st.st_size);
  const fs::path checksum = path.string() + ".sha256";
  std::ifstream in(checksum);
  if (in) {
    std::stringstream text;
    text << in.rdbuf();
    auto hex = checksum_of(text.str(), checksum.string());
    if (!hex) {
      return hex.error();
    }
    f.expected_sha256_ = std::move(*hex);
  }
  return f;
}

result<archive_file> archive_file::adopt(int fd, std::string shown_as,
                                         const std::optional<std::string>& checksum_text) {
  archive_file f;
  f.path_ = std::move(shown_as);
  f.fd_ = fd;
  struct stat st {};
  if (::fstat(f.fd_, &st) != 0 || !S_ISREG(st.st_mode)) {
    return make_error(errc::invalid_argument, f.path_.string() + " is not a regular file");
  }
  f.size_ = static_cast<std::uint64_t>(st.st_size);
  if (checksum_text) {
    auto hex = checksum_of(*checksum_text, f.path_.string() + ".sha256");
    if (!hex) {
      return hex.error();
    }
    f.expected_sha256_ = std::move(*hex);
  }
  return f;
}

archive_file::archive_file(archive_file&& o) noexcept
    : path_(std::move(o.path_)),
      fd_(std::exchange(o.fd_, -1)),
      size_(o.size_),
      expected_sha256_(std::move(o.expected_sha256_)) {}

archive_file& archive_file::operator=(archive_file&& o) noexcept {
  if (this != &o) {
    if (fd_ >= 0) {
      ::close(fd_);
    }
    path_ = std::move(o.path_);
    fd_ = std::exchange(o.fd_, -1);
    size_ = o.size_;
    expected_sha256_ = std::move(o.expected_sha256_);
  }
  return *this;
}

archive_file::~archive_file() {
  if (fd_ >= 0) {
    ::close(fd_);
  }
}

// Pass 1 ---------------------------------------------------------------------

result<verify_report> verify(const archive_file& archive, const std::vector<mapping>& mappings,
                             const read_options& options) {
  auto started = reading::start(archive, mappings, options, /*hash=*/true);
  if (!started) {
    return started.error();
  }
  reading& r = *started;
  if (auto opened = r.open(); !opened) {
    return opened.error();
  }
  verify_report report;
  report.space.resize(mappings.size());
  const auto rounded = [](std::uint64_t bytes) {
    constexpr auto unit = space_need::allocation_unit;
    return (bytes + unit - 1) / unit * unit;
  };
  std::optional<error> damage;
  for (;;) {
    auto next = r.next();
    if (!next) {
      if (!next.error().is(errc::corrupt)) {
        return next.error();
      }
      damage = next.error();
      break;
    }
    if (!*next) {
      break;
    }
    auto& [entry, placed] = **next;
    const bool with_data = carries_data(entry);
    const auto logical = with_data ? static_cast<std::uint64_t>(archive_entry_size(entry)) : 0;
    // Every block is decompressed, so a damaged or cut stream shows here,
    // at the entry it belongs to.
    const void* block = nullptr;
    std::size_t size = 0;
    la_int64_t offset = 0;
    std::uint64_t stored = 0;
    int rc = ARCHIVE_OK;
    while ((rc = archive_read_data_block(r.reader.get(), &block, &size, &offset)) == ARCHIVE_OK) {
      if (r.cancelled()) {
        return make_error(errc::cancelled, "cancelled");
      }
      stored += size;
      r.tick(size);
    }
    if (rc != ARCHIVE_EOF) {
      damage = r.broken(library_error(r.reader.get()));
      break;
    }
    if (with_data) {
      auto& need = report.space[placed.mapping];
      need.dense += rounded(logical);
      need.sparse += rounded(std::min(stored, logical));
    }
  }
  report.compression = archive_filter_name(r.reader.get(), 0);
  report.encrypted = r.feed.decrypt != nullptr;
  report.encryption = r.feed.method;
  if (const char* f = archive_format_name(r.reader.get()); f != nullptr) {
    report.format = f;
  }
  if (auto drained = r.feed.drain(); !drained) {
    return make_error(errc::io_error, archive.path().string() + ": " + drained.error().message);
  }
  std::array<std::uint8_t, SHA256_DIGEST_SIZE> digest{};
  sha256_digest(&*r.feed.hash, digest.size(), digest.data());
  report.sha256 = to_hex(digest);
  if (archive.expected_sha256()) {
    if (*archive.expected_sha256() != report.sha256) {
      return make_error(errc::checksum_mismatch,
                        archive.path().string() + " has SHA-256 " + report.sha256 + ", " +
                            archive.path().filename().string() + ".sha256 says " +
                            *archive.expected_sha256() +
                            (damage ? " (reading broke " + damage->message + ")" : ""));
    }
    report.checksum_verified = true;
  }
  if (damage) {
    return *damage;
  }
  // Found only past the tar's end: a missing final chunk (truncation at a
  // chunk boundary) or a damaged last chunk.
  if (auto cause = r.feed.decryption_error()) {
    return *cause;
  }
  if (auto finished = r.checker->finish(); !finished) {
    return finished.error();
  }
  report.entries = r.checker->entries();
  report.content_bytes = r.at.content_bytes;
  return report;
}

// Pass 2, direct -------------------------------------------------------------

namespace {

// The folder that holds every base (canonical paths), "/" at the least.
std::string anchor_of(const std::vector<std::string>& bases) {
  fs::path common = bases.front();
  for (const auto& b : bases) {
    const fs::path other = b;
    fs::path shared;
    auto i = common.begin();
    auto j = other.begin();
    for (; i != common.end() && j != other.end() && *i == *j; ++i, ++j) {
      shared /= *i;
    }
    common = shared;
  }
  return common.parent_path().string();
}

// `bases` as paths relative to `anchor` (which holds them all, see
// anchor_of()), each at least one component long.
std::vector<std::string> relative_to(const std::string& anchor,
                                     const std::vector<std::string>& bases) {
  const std::size_t skip = anchor == "/" ? 1 : anchor.size() + 1;
  std::vector<std::string> out;
  out.reserve(bases.size());
  for (const auto& b : bases) {
    out.push_back(b.substr(skip));
  }
  return out;
}

result<unpack_report> extract_below(const archive_file& archive,
                                    const std::vector<mapping>& mappings,
                                    const std::vector<std::string>& bases,
                                    const read_options& options);

}  // namespace

result<unpack_report> extract_to_directories(const archive_file& archive,
                                             const std::vector<mapping>& mappings,
                                             const std::vector<fs::path>& roots,
                                             const read_options& options) {
  if (roots.size() != mappings.size()) {
    return make_error(errc::invalid_argument, "one folder per mapping is needed");
  }
  if (roots.empty()) {
    return make_error(errc::invalid_argument, "no folder to unpack into");
  }
  // Symlinks in the folders' own paths would trip the secure-symlink check.
  std::vector<std::string> bases;
  for (const auto& root : roots) {
    std::error_code ec;
    const auto canonical = fs::canonical(root, ec);
    if (ec || !fs::is_directory(canonical)) {
      return make_error(errc::io_error, root.string() + " is not a folder");
    }
    bases.push_back(canonical.string());
  }
  // libarchive's secure-symlink check opens and inspects every folder of an
  // entry's path, from "/" for an absolute one: on 100 000 small files under
  // /var/lib/docker/volumes/<name>/_data that was most of the unpacking
  // (6-7 openat per file). So the unpacking runs on a thread with a working
  // folder of its own (unshare(CLONE_FS): the process's stays as it is), set
  // to the folder above the roots, and gives libarchive paths relative to
  // it: only the folders inside the volume are checked, which is what the
  // check is for (the roots themselves are canonical). Where unshare is
  // refused (a seccomp profile), the paths stay absolute.
  const std::string anchor = anchor_of(bases);
  result<unpack_report> out = make_error(errc::internal, "unpacking did not run");
  std::thread worker([&] {
    if (::unshare(CLONE_FS) == 0 && ::chdir(anchor.c_str()) == 0) {
      out = extract_below(archive, mappings, relative_to(anchor, bases), options);
    } else {
      out = extract_below(archive, mappings, bases, options);
    }
  });
  worker.join();
  return out;
}

namespace {

// extract_to_directories() with the roots as `bases`, absolute or relative to
// this thread's working folder.
result<unpack_report> extract_below(const archive_file& archive,
                                    const std::vector<mapping>& mappings,
                                    const std::vector<std::string>& bases,
                                    const read_options& options) {
  auto started = reading::start(archive, mappings, options, /*hash=*/false);
  if (!started) {
    return started.error();
  }
  reading& r = *started;
  if (auto opened = r.open(); !opened) {
    return opened.error();
  }
  archive_handle disk(archive_write_disk_new());
  int flags = ARCHIVE_EXTRACT_TIME | ARCHIVE_EXTRACT_PERM | ARCHIVE_EXTRACT_ACL |
              ARCHIVE_EXTRACT_FFLAGS | ARCHIVE_EXTRACT_XATTR | ARCHIVE_EXTRACT_SPARSE |
              ARCHIVE_EXTRACT_SECURE_SYMLINKS | ARCHIVE_EXTRACT_SECURE_NODOTDOT;
  if (::geteuid() == 0) {
    flags |= ARCHIVE_EXTRACT_OWNER;
  }
  archive_write_disk_set_options(disk.get(), flags);
  // Numeric ids, not names: the volume is used by containers with their own
  // user databases.
  unpack_report report;
  const auto on_disk = [&](std::size_t m, const std::string& rel) {
    return rel.empty() ? bases[m] : bases[m] + "/" + rel;
  };
  for (;;) {
    auto next = r.next();
    if (!next) {
      return next.error();
    }
    if (!*next) {
      break;
    }
    auto& [e, placed] = **next;
    archive_entry_copy_pathname(e, on_disk(placed.mapping, placed.relative).c_str());
    if (archive_entry_hardlink(e) != nullptr) {
      archive_entry_copy_hardlink(e, on_disk(placed.mapping, placed.link).c_str());
      archive_entry_set_size(e, 0);
    }
    if (archive_write_header(disk.get(), e) < ARCHIVE_WARN) {
      return make_error(errc::io_error, "entry " + r.current + ": " + library_error(disk.get()));
    }
    if (carries_data(e)) {
      const void* block = nullptr;
      std::size_t size = 0;
      la_int64_t offset = 0;
      int rc = ARCHIVE_OK;
      while ((rc = archive_read_data_block(r.reader.get(), &block, &size, &offset)) == ARCHIVE_OK) {
        if (r.cancelled()) {
          return make_error(errc::cancelled, "cancelled");
        }
        if (archive_write_data_block(disk.get(), block, size, offset) < ARCHIVE_OK) {
          return make_error(errc::io_error,
                            "entry " + r.current + ": " + library_error(disk.get()));
        }
        r.tick(size);
      }
      if (rc != ARCHIVE_EOF) {
        return r.broken(library_error(r.reader.get()));
      }
    }
    if (archive_write_finish_entry(disk.get()) < ARCHIVE_WARN) {
      return make_error(errc::io_error, "entry " + r.current + ": " + library_error(disk.get()));
    }
    ++report.entries;
  }
  // The rules that need the whole archive hold here too, not only in pass 1:
  // the file may have been rewritten in place since it was verified.
  if (auto finished = r.checker->finish(); !finished) {
    return finished.error();
  }
  // Folders' modes and times are set last, once nothing more is written in them.
  if (archive_write_close(disk.get()) < ARCHIVE_WARN) {
    return make_error(errc::io_error, library_error(disk.get()));
  }
  report.content_bytes = r.at.content_bytes;
  return report;
}

}  // namespace

// Pass 2, through the engine -----------------------------------------------------

struct tar_restream::impl {
  explicit impl(reading started) : r(std::move(started)) {}
  impl(const impl&) = delete;
  impl& operator=(const impl&) = delete;
  // Freeing an unfinished writer closes it, and closing writes the tar's end
  // through on_write into `out`: the writer goes first, while `out` still
  // exists (members die in reverse order, and `out` is declared after it).
  // Found by AddressSanitizer (hack/sanitize.sh) as a leak on every refused
  // restore through the engine.
  ~impl() { writer.reset(); }

  reading r;
  archive_handle writer;
  std::vector<std::string> prefixes;  // "<to>" per mapping
  std::string out;                    // produced and not yet pulled
  std::size_t out_pos = 0;
  bool in_data = false;
  bool finished = false;
  std::int64_t written = 0;  // of the current entry's data
  std::int64_t size = 0;
  unpack_report report;
  std::optional<error> failed;

  static la_ssize_t on_write(archive*, void* self, const void* data, std::size_t n) {
    static_cast<impl*>(self)->out.append(static_cast<const char*>(data), n);
    return static_cast<la_ssize_t>(n);
  }

  result<void> write_zeros(std::int64_t count) {
    static const std::array<char, std::size_t{64} * 1024> zeros{};
    while (count > 0) {
      const auto n = static_cast<std::size_t>(std::min<std::int64_t>(count, zeros.size()));
      if (archive_write_data(writer.get(), zeros.data(), n) < 0) {
        return make_error(errc::internal, library_error(writer.get()));
      }
      count -= static_cast<std::int64_t>(n);
    }
    return {};
  }

  // One header or one block of data: keeps `out` to about one block.
  result<void> step() {
    if (!in_data) {
      auto next = r.next();
      if (!next) {
        return next.error();
      }
      if (!*next) {
        // As in pass 1, before the tar's end is written: a failure here
        // leaves the engine a broken upload rather than a complete one.
        if (auto whole = r.checker->finish(); !whole) {
          return whole.error();
        }
        if (archive_write_close(writer.get()) != ARCHIVE_OK) {
          return make_error(errc::internal, library_error(writer.get()));
        }
        finished = true;
        return {};
      }
      auto& [e, placed] = **next;
      const std::string& to = prefixes[placed.mapping];
      archive_entry_copy_pathname(
          e, (placed.relative.empty() ? to : to + "/" + placed.relative).c_str());
      if (archive_entry_hardlink(e) != nullptr) {
        archive_entry_copy_hardlink(e, (to + "/" + placed.link).c_str());
        archive_entry_set_size(e, 0);
      }
      archive_entry_sparse_clear(e);
      if (archive_write_header(writer.get(), e) < ARCHIVE_WARN) {
        return make_error(errc::internal,
                          "entry " + r.current + ": " + library_error(writer.get()));
      }
      ++report.entries;
      in_data = carries_data(e);
      written = 0;
      size = archive_entry_size(e);
      return {};
    }
    const void* block = nullptr;
    std::size_t n = 0;
    la_int64_t offset = 0;
    const int rc = archive_read_data_block(r.reader.get(), &block, &n, &offset);
    if (rc == ARCHIVE_EOF) {
      in_data = false;
      return write_zeros(size - written);  // a hole at the end
    }
    if (rc != ARCHIVE_OK) {
      return r.broken(library_error(r.reader.get()));
    }
    if (offset > written) {
      if (auto z = write_zeros(offset - written); !z) {
        return z;
      }
    }
    if (n > 0 && archive_write_data(writer.get(), block, n) < 0) {
      return make_error(errc::internal, library_error(writer.get()));
    }
    written = offset + static_cast<std::int64_t>(n);
    r.tick(n);
    return {};
  }
};

tar_restream::tar_restream(std::unique_ptr<impl> p) : impl_(std::move(p)) {}
tar_restream::tar_restream(tar_restream&&) noexcept = default;
tar_restream& tar_restream::operator=(tar_restream&&) noexcept = default;
tar_restream::~tar_restream() = default;

result<tar_restream> tar_restream::open(const archive_file& file,
                                        const std::vector<mapping>& mappings,
                                        const read_options& options) {
  auto started = reading::start(file, mappings, options, /*hash=*/false);
  if (!started) {
    return started.error();
  }
  auto p = std::make_unique<impl>(std::move(*started));
  if (auto opened = p->r.open(); !opened) {
    return opened.error();
  }
  for (const auto& m : mappings) {
    p->prefixes.push_back(m.to);
  }
  p->writer.reset(archive_write_new());
  archive* w = p->writer.get();
  // pax only where ustar cannot say it (long names, big files, xattrs).
  if (archive_write_set_format_pax_restricted(w) != ARCHIVE_OK ||
      archive_write_add_filter_none(w) != ARCHIVE_OK ||
      archive_write_set_bytes_per_block(w, 64 * 1024) != ARCHIVE_OK ||
      archive_write_set_bytes_in_last_block(w, 1) != ARCHIVE_OK ||
      archive_write_open2(w, p.get(), nullptr, &impl::on_write, nullptr, nullptr) != ARCHIVE_OK) {
    return make_error(errc::internal, library_error(w));
  }
  return tar_restream(std::move(p));
}

result<std::size_t> tar_restream::pull(std::span<char> into) {
  impl& p = *impl_;
  if (p.failed) {
    return *p.failed;
  }
  while (p.out_pos == p.out.size() && !p.finished) {
    p.out.clear();
    p.out_pos = 0;
    if (auto s = p.step(); !s) {
      p.failed = s.error();
      return s.error();
    }
  }
  const std::size_t n = std::min(into.size(), p.out.size() - p.out_pos);
  std::memcpy(into.data(), p.out.data() + p.out_pos, n);
  p.out_pos += n;
  return n;
}

unpack_report tar_restream::report() const {
  auto r = impl_->report;
  r.content_bytes = impl_->r.at.content_bytes;
  return r;
}

// Wipe --------------------------------------------------------------------------

result<void> wipe_directory(const fs::path& root) {
  std::error_code ec;
  fs::directory_iterator it(root, ec);
  if (ec) {
    return make_error(errc::io_error, "listing " + root.string() + ": " + ec.message());
  }
  for (const auto& child : it) {
    // remove_all removes a symlink itself, never what it points to.
    fs::remove_all(child.path(), ec);
    if (ec) {
      return make_error(errc::io_error, "removing " + child.path().string() + ": " + ec.message());
    }
  }
  return {};
}

}  // namespace lifeboat::restore
