#include "controller/backup/archive_steps.hpp"

#include "controller/backup/retention.hpp"

#include <archive.h>
#include <archive_entry.h>
#include <fcntl.h>
#include <openssl/evp.h>
#include <unistd.h>

#include <array>
#include <filesystem>
#include <memory>
#include <regex>
#include <thread>

namespace lifeboat::backup {

namespace fs = std::filesystem;

namespace {

engine::error failure(std::string message) {
  return engine::make_error(engine::errc::server_error, std::move(message));
}

// The output file: plain writes to a descriptor, with the SHA-256 of every
// byte computed on the way so the checksum needs no second read.
struct output_file {
  int fd = -1;
  std::uint64_t bytes = 0;
  std::unique_ptr<EVP_MD_CTX, decltype(&EVP_MD_CTX_free)> sha{EVP_MD_CTX_new(), EVP_MD_CTX_free};
  std::string error;

  ~output_file() {
    if (fd >= 0) {
      ::close(fd);
    }
  }

  std::string hex_digest() {
    std::array<unsigned char, EVP_MAX_MD_SIZE> digest{};
    unsigned int n = 0;
    EVP_DigestFinal_ex(sha.get(), digest.data(), &n);
    std::string out;
    for (unsigned int i = 0; i < n; ++i) {
      constexpr std::string_view hex = "0123456789abcdef";
      out += hex[digest[i] >> 4U];
      out += hex[digest[i] & 15U];
    }
    return out;
  }
};

la_ssize_t write_callback(archive* /*a*/, void* client, const void* data, std::size_t n) {
  auto* out = static_cast<output_file*>(client);
  const auto* p = static_cast<const char*>(data);
  std::size_t left = n;
  while (left > 0) {
    const ssize_t w = ::write(out->fd, p, left);
    if (w < 0) {
      if (errno == EINTR) {
        continue;
      }
      out->error = std::string("writing the archive: ") + std::strerror(errno);
      return -1;
    }
    p += w;
    left -= static_cast<std::size_t>(w);
  }
  EVP_DigestUpdate(out->sha.get(), data, n);
  out->bytes += n;
  return static_cast<la_ssize_t>(n);
}

// Feeds libarchive's tar reader from the engine's archive stream.
struct engine_source {
  engine::http::body_reader* reader;
  const std::atomic<bool>* cancel;
  std::array<char, 256 * 1024> buffer{};
  std::string error;
};

la_ssize_t read_callback(archive* /*a*/, void* client, const void** data) {
  auto* src = static_cast<engine_source*>(client);
  if (src->cancel != nullptr && src->cancel->load()) {
    src->error = "cancelled";
    return -1;
  }
  auto n = src->reader->read(src->buffer);
  if (!n) {
    src->error = "reading from the engine: " + n.error().describe();
    return -1;
  }
  *data = src->buffer.data();
  return static_cast<la_ssize_t>(*n);
}

int add_compression(archive* a, const api::archive_spec& spec) {
  switch (spec.compression) {
    case api::compression_kind::gzip: {
      const int r = archive_write_add_filter_gzip(a);
      if (r == ARCHIVE_OK && spec.level) {
        archive_write_set_filter_option(a, "gzip", "compression-level",
                                        std::to_string(*spec.level).c_str());
      }
      return r;
    }
    case api::compression_kind::zstd: {
      const int r = archive_write_add_filter_zstd(a);
      if (r == ARCHIVE_OK) {
        if (spec.level) {
          archive_write_set_filter_option(a, "zstd", "compression-level",
                                          std::to_string(*spec.level).c_str());
        }
        // Every core: compression must not be what keeps workloads held.
        const auto threads = std::max(1U, std::thread::hardware_concurrency());
        archive_write_set_filter_option(a, "zstd", "threads", std::to_string(threads).c_str());
      }
      return r;
    }
    case api::compression_kind::none:
      return archive_write_add_filter_none(a);
  }
  return ARCHIVE_FATAL;
}

bool fsync_directory(const fs::path& dir) {
  const int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) {
    return false;
  }
  const bool ok = ::fsync(fd) == 0;
  ::close(fd);
  return ok;
}

// Copies one volume's tar stream into the archive; entries keep their names
// ("<volume>/..."), owners, modes, times and links.
engine::result<void> copy_volume(archive* out, engine::http::body_reader& body,
                                 const std::optional<std::regex>& exclude,
                                 const std::atomic<bool>* cancel, output_file& file) {
  engine_source source{&body, cancel, {}, {}};
  std::unique_ptr<archive, decltype(&archive_read_free)> in(archive_read_new(), archive_read_free);
  archive_read_support_format_tar(in.get());
  if (archive_read_open(in.get(), &source, nullptr, read_callback, nullptr) != ARCHIVE_OK) {
    return failure(source.error.empty() ? archive_error_string(in.get()) : source.error);
  }
  std::array<char, 256 * 1024> block{};
  archive_entry* entry = nullptr;
  for (;;) {
    const int r = archive_read_next_header(in.get(), &entry);
    if (r == ARCHIVE_EOF) {
      return {};
    }
    if (r < ARCHIVE_WARN) {
      return failure(source.error.empty() ? archive_error_string(in.get()) : source.error);
    }
    const char* path = archive_entry_pathname(entry);
    if (exclude && path != nullptr && std::regex_search(path, *exclude)) {
      continue;  // the reader skips the unread data itself
    }
    if (archive_write_header(out, entry) < ARCHIVE_WARN) {
      return failure(file.error.empty() ? archive_error_string(out) : file.error);
    }
    for (;;) {
      const la_ssize_t n = archive_read_data(in.get(), block.data(), block.size());
      if (n == 0) {
        break;
      }
      if (n < 0) {
        return failure(source.error.empty() ? archive_error_string(in.get()) : source.error);
      }
      if (archive_write_data(out, block.data(), static_cast<std::size_t>(n)) < 0) {
        return failure(file.error.empty() ? archive_error_string(out) : file.error);
      }
    }
  }
}

engine::result<archive_written> write_archive(const archive_request& req) {
  std::error_code ec;
  fs::create_directories(req.directory, ec);
  if (ec) {
    return failure("creating " + req.directory + ": " + ec.message());
  }
  const std::string final_path =
      (fs::path(req.directory) /
       (req.file_stem + std::string(api::archive_extension(req.spec.compression))))
          .string();
  const std::string partial = final_path + ".partial";
  std::optional<std::regex> exclude;
  if (req.spec.exclude) {
    exclude.emplace(*req.spec.exclude, std::regex::ECMAScript | std::regex::optimize);
  }

  output_file file;
  EVP_DigestInit_ex(file.sha.get(), EVP_sha256(), nullptr);
  file.fd = ::open(partial.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (file.fd < 0) {
    return failure("creating " + partial + ": " + std::strerror(errno));
  }
  auto remove_partial = [&] { fs::remove(partial, ec); };

  std::unique_ptr<archive, decltype(&archive_write_free)> out(archive_write_new(),
                                                              archive_write_free);
  archive_write_set_format_pax_restricted(out.get());
  archive_write_set_bytes_in_last_block(out.get(), 1);
  if (add_compression(out.get(), req.spec) != ARCHIVE_OK ||
      archive_write_open(out.get(), &file, nullptr, write_callback, nullptr) != ARCHIVE_OK) {
    const std::string why = archive_error_string(out.get());
    remove_partial();
    return failure("starting the archive: " + why);
  }
  for (const auto& volume : req.volumes) {
    auto body = req.open(volume);
    if (!body) {
      remove_partial();
      return failure("reading volume " + volume + ": " + body.error().describe());
    }
    if (auto copied = copy_volume(out.get(), *body, exclude, req.cancel, file); !copied) {
      remove_partial();
      return failure("volume " + volume + ": " + copied.error().message);
    }
  }
  if (archive_write_close(out.get()) != ARCHIVE_OK || ::fsync(file.fd) != 0) {
    const std::string why = file.error.empty() ? archive_error_string(out.get()) : file.error;
    remove_partial();
    return failure("finishing the archive: " + why);
  }
  archive_written w;
  w.partial_path = partial;
  w.final_path = final_path;
  w.bytes = file.bytes;
  w.sha256 = file.hex_digest();
  return w;
}

engine::result<void> publish_archive(const archive_written& w) {
  std::error_code ec;
  const fs::path final_path(w.final_path);
  const fs::path dir = final_path.parent_path();
  // The checksum first, so a visible archive always has its checksum.
  const fs::path sum = final_path.string() + ".sha256";
  const fs::path sum_tmp = sum.string() + ".partial";
  {
    const int fd = ::open(sum_tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) {
      return failure("writing " + sum.string() + ": " + std::strerror(errno));
    }
    const std::string line = w.sha256 + "  " + final_path.filename().string() + "\n";
    const bool ok = ::write(fd, line.data(), line.size()) == static_cast<ssize_t>(line.size()) &&
                    ::fsync(fd) == 0;
    ::close(fd);
    if (!ok) {
      return failure("writing " + sum.string());
    }
  }
  fs::rename(sum_tmp, sum, ec);
  if (!ec) {
    fs::rename(w.partial_path, final_path, ec);
  }
  if (ec) {
    return failure("publishing " + final_path.string() + ": " + ec.message());
  }
  // `latest` points at the newest archive, replaced atomically.
  const fs::path latest = dir / "latest";
  const fs::path latest_tmp = dir / ".latest.partial";
  fs::remove(latest_tmp, ec);
  fs::create_symlink(final_path.filename(), latest_tmp, ec);
  if (!ec) {
    fs::rename(latest_tmp, latest, ec);
  }
  fsync_directory(dir);
  return {};
}

engine::result<std::string> prune_directory(const api::backup_schedule& schedule,
                                            const std::string& directory) {
  const auto& spec = schedule.spec;
  const auto extension = api::archive_extension(spec.archive.compression);
  const auto pattern = archive_name_pattern(spec.archive.name, schedule.metadata.name, extension);
  const auto partial_pattern = archive_name_pattern(spec.archive.name, schedule.metadata.name,
                                                    std::string(extension) + ".partial");

  std::vector<archive_file> files;
  int leftovers = 0;
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator(directory, ec)) {
    const auto name = entry.path().filename().string();
    if (!entry.is_regular_file(ec)) {
      continue;
    }
    // A partial of this schedule's is a leftover: the run that wrote it is
    // over (runs of one schedule never overlap, and ours was renamed).
    if (std::regex_match(name, partial_pattern)) {
      fs::remove(entry.path(), ec);
      ++leftovers;
      continue;
    }
    const auto modified = fs::last_write_time(entry.path(), ec);
    files.push_back({name, std::chrono::floor<std::chrono::seconds>(
                               std::chrono::file_clock::to_sys(modified))});
  }
  if (ec) {
    return failure("listing " + directory + ": " + ec.message());
  }
  const auto now = std::chrono::floor<std::chrono::seconds>(std::chrono::system_clock::now());
  const auto doomed = plan_retention(files, pattern, spec.retention, now);
  for (const auto& name : doomed) {
    const auto path = fs::path(directory) / name;
    fs::remove(path.string() + ".sha256", ec);
    if (!fs::remove(path, ec) && ec) {
      return failure("removing " + path.string() + ": " + ec.message());
    }
  }
  fsync_directory(directory);
  return "pruned " + std::to_string(doomed.size()) + " archive(s)" +
         (leftovers > 0 ? ", removed " + std::to_string(leftovers) + " partial file(s)" : "");
}

}  // namespace

archive_steps local_archive_steps() { return {write_archive, publish_archive, prune_directory}; }

}  // namespace lifeboat::backup
