// The archive pipeline on a generated data set. hack/bench-archive.sh runs it
// beside GNU tar, pigz and zstd on the same data and prints the table.
//
//   archive_bench generate DIR SIZE_MIB
//       A reproducible data set of about SIZE_MIB: large semi-compressible
//       files (log text, database-like pages, random runs), incompressible
//       media files, and small files (one per 20 KiB of the size) in folders.
//   archive_bench write DIR OUT gzip|zstd|none [LEVEL] [THREADS] [BLOCK_KIB] [JOB_KIB]
//       Reads DIR directly and writes OUT as lifeboat does (.partial, SHA-256,
//       fsync, rename); prints a summary line.
//   archive_bench run DIR OUT gzip|zstd|none
//       The same through a backup run's archive steps into a local folder
//       destination, age-encrypted to $BENCH_AGE_RECIPIENT when it is set, or
//       OpenPGP-encrypted (gpg) to the public keys in $BENCH_GPG_PUBLIC_KEY_FILE.
#include "controller/archive/local_destination.hpp"
#include "controller/archive/writer.hpp"
#include "controller/backup/archive_steps.hpp"
#include "controller/crypto/age.hpp"
#include "controller/crypto/openpgp.hpp"
#include "controller/destinations/destination.hpp"

#include <fcntl.h>
#include <fmt/core.h>
#include <unistd.h>

#include <array>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <string_view>
#include <vector>

namespace {

namespace fs = std::filesystem;
namespace archive = lifeboat::archive;

struct rng {
  std::uint64_t state;
  std::uint64_t next() {
    state ^= state << 13;
    state ^= state >> 7;
    state ^= state << 17;
    return state;
  }
  std::uint64_t below(std::uint64_t n) { return next() % n; }
};

constexpr std::array<std::string_view, 32> words{
    "alpha",  "bravo",   "charlie", "delta",    "echo",    "foxtrot",  "golf",    "hotel",
    "india",  "juliett", "kilo",    "lima",     "mike",    "november", "oscar",   "papa",
    "quebec", "romeo",   "sierra",  "tango",    "uniform", "victor",   "whiskey", "xray",
    "yankee", "zulu",    "request", "response", "cache",   "session",  "timeout", "backup"};

// Log lines: timestamps, levels, words, ids. gzip -6 takes it to about 28%.
void fill_text(rng& r, char* p, std::size_t n) {
  static constexpr std::array<std::string_view, 4> levels{"INFO ", "WARN ", "DEBUG ", "ERROR "};
  std::string line;
  std::size_t off = 0;
  while (off < n) {
    line = fmt::format("{}.{:03} ", 1'700'000'000 + r.below(100'000), r.below(1000));
    line += levels[r.below(levels.size())];
    for (std::uint64_t i = 0, k = 3 + r.below(8); i < k; ++i) {
      line += words[r.below(words.size())];
      line += ' ';
    }
    line += fmt::format("id={:08x} status={} ms={}\n", r.next() & 0xffffffffU,
                        200 + r.below(4) * 100, r.below(5000));
    const std::size_t k = std::min(line.size(), n - off);
    std::memcpy(p + off, line.data(), k);
    off += k;
  }
}

void fill_random(rng& r, char* p, std::size_t n) {
  std::size_t i = 0;
  for (; i + 8 <= n; i += 8) {
    const std::uint64_t v = r.next();
    std::memcpy(p + i, &v, 8);
  }
  for (; i < n; ++i) {
    p[i] = static_cast<char>(r.next());
  }
}

// 8 KiB pages, partly filled with rows (id, random key, word, value).
void fill_pages(rng& r, char* p, std::size_t n) {
  std::memset(p, 0, n);
  std::uint64_t id = r.below(1'000'000);
  for (std::size_t page = 0; page < n; page += 8192) {
    const std::size_t end = std::min(n, page + 8192);
    const std::size_t fill = std::min(end, page + 4096 + r.below(4096));
    for (std::size_t off = page + 24; off + 48 <= fill; off += 48) {
      ++id;
      const std::uint64_t key = r.next();
      const auto w = words[r.below(words.size())];
      const auto v = static_cast<std::uint32_t>(r.below(100'000));
      std::memcpy(p + off, &id, 8);
      std::memcpy(p + off + 8, &key, 8);
      std::memcpy(p + off + 16, w.data(), w.size());
      std::memcpy(p + off + 40, &v, 4);
    }
  }
}

void write_all(const fs::path& path, const std::vector<char>& data, std::size_t n) {
  std::FILE* f = std::fopen(path.c_str(), "wb");
  if (f == nullptr || std::fwrite(data.data(), 1, n, f) != n || std::fclose(f) != 0) {
    throw std::runtime_error("writing " + path.string());
  }
}

int generate(const fs::path& dir, std::uint64_t size_mib) {
  const std::uint64_t total = size_mib * 1024 * 1024;
  const std::uint64_t mib = 1024 * 1024;
  rng r{0x5eed};
  fs::create_directories(dir / "big");
  fs::create_directories(dir / "media");
  std::vector<char> chunk(mib);
  // 60%: four large semi-compressible files, chunk by chunk half text, a
  // third pages, the rest random.
  const std::uint64_t big_each = total * 60 / 100 / 4 / mib * mib;
  for (int f = 0; f < 4; ++f) {
    std::FILE* out = std::fopen((dir / "big" / fmt::format("table-{}.db", f)).c_str(), "wb");
    for (std::uint64_t off = 0; off < big_each; off += mib) {
      const std::uint64_t kind = r.below(6);
      if (kind < 3) {
        fill_text(r, chunk.data(), mib);
      } else if (kind < 5) {
        fill_pages(r, chunk.data(), mib);
      } else {
        fill_random(r, chunk.data(), mib);
      }
      std::fwrite(chunk.data(), 1, mib, out);
    }
    std::fclose(out);
  }
  // 15%: two incompressible media files.
  const std::uint64_t media_each = total * 15 / 100 / 2 / mib * mib;
  for (int f = 0; f < 2; ++f) {
    std::FILE* out = std::fopen((dir / "media" / fmt::format("video-{}.mp4", f)).c_str(), "wb");
    for (std::uint64_t off = 0; off < media_each; off += mib) {
      fill_random(r, chunk.data(), mib);
      std::fwrite(chunk.data(), 1, mib, out);
    }
    std::fclose(out);
  }
  // 25%: small files, 0-10 KiB, one in five random, 100 per folder.
  const std::uint64_t small_total = total * 25 / 100;
  const std::uint64_t count = std::max<std::uint64_t>(1, small_total / (5 * 1024));
  std::vector<char> small(10 * 1024);
  for (std::uint64_t i = 0; i < count; ++i) {
    const fs::path folder = dir / "small" / fmt::format("{:04}", i / 100);
    if (i % 100 == 0) {
      fs::create_directories(folder);
    }
    const std::size_t n = r.below(small.size() + 1);
    if (r.below(5) == 0) {
      fill_random(r, small.data(), n);
    } else {
      fill_text(r, small.data(), n);
    }
    write_all(folder / fmt::format("file-{}.txt", i), small, n);
  }
  fmt::print("generated {} MiB in {}: {} small files\n", size_mib, dir.string(), count);
  return 0;
}

int write(int argc, char** argv) {
  const fs::path dir = argv[2];
  const fs::path out = argv[3];
  const std::string_view kind = argv[4];
  archive::write_options options;
  if (kind == "gzip") {
    options.compression.kind = lifeboat::api::compression_kind::gzip;
  } else if (kind == "zstd") {
    options.compression.kind = lifeboat::api::compression_kind::zstd;
  } else if (kind == "none") {
    options.compression.kind = lifeboat::api::compression_kind::none;
  } else {
    fmt::print(stderr, "unknown compression {}\n", kind);
    return 2;
  }
  if (argc > 5 && std::string_view(argv[5]) != "-") {
    options.compression.level = std::stoi(argv[5]);
  }
  if (argc > 6) {
    options.compression.threads = static_cast<unsigned>(std::stoul(argv[6]));
  }
  if (argc > 7) {
    options.compression.gzip_block_size = std::stoul(argv[7]) * 1024;
  }
  if (argc > 8) {
    options.compression.zstd_job_size = std::stoul(argv[8]) * 1024;
  }
  // BENCH_SPOOL=<bytes>: spool the tar stream as a backup run does.
  if (const char* spool = std::getenv("BENCH_SPOOL"); spool != nullptr && *spool != '\0') {
    options.spool = archive::spool_options{out.parent_path(), std::stoull(spool)};
  }
  std::vector<archive::volume_source> sources;
  sources.emplace_back(archive::directory_source{"data", dir});
  const auto start = std::chrono::steady_clock::now();
  // How long a run would hold the workloads: until every source is read.
  std::chrono::duration<double> held{0};
  options.on_sources_read = [&] { held = std::chrono::steady_clock::now() - start; };
  auto written = archive::write_local_archive(
      sources, options, archive::local_target{out.parent_path(), out.filename().string(), {}});
  const std::chrono::duration<double> elapsed = std::chrono::steady_clock::now() - start;
  if (!written) {
    fmt::print(stderr, "error: {}\n", written.error().describe());
    return 1;
  }
  const auto& r = written->report;
  // BENCH_HELD_FILE: where hack/bench-archive.sh collects the held time.
  if (const char* file = std::getenv("BENCH_HELD_FILE"); file != nullptr) {
    std::ofstream(file) << fmt::format("{:.2f}\n", held.count());
  }
  fmt::print(stderr, "{}: {} entries, {} MiB of tar, {} MiB out, {} warnings, {:.2f} s\n",
             archive::describe(options.compression), r.entries, r.tar_bytes >> 20,
             r.output_bytes >> 20, r.warning_count, elapsed.count());
  for (const auto& w : r.warnings) {
    fmt::print(stderr, "  warning: {}\n", w);
  }
  return 0;
}

// As a backup run writes its first destination: backup::standard_archive_steps
// into a local folder (hash, fsync, rename, latest), encrypted with age to
// $BENCH_AGE_RECIPIENT when it is set, or with gpg to the keys in
// $BENCH_GPG_PUBLIC_KEY_FILE.
int run(char** argv) {
  const fs::path dir = argv[2];
  const fs::path out = argv[3];
  const std::string_view kind = argv[4];
  lifeboat::backup::archive_request request;
  if (kind == "gzip") {
    request.spec.compression = lifeboat::api::compression_kind::gzip;
  } else if (kind == "zstd") {
    request.spec.compression = lifeboat::api::compression_kind::zstd;
  } else if (kind == "none") {
    request.spec.compression = lifeboat::api::compression_kind::none;
  } else {
    fmt::print(stderr, "unknown compression {}\n", kind);
    return 2;
  }
  if (const char* r = std::getenv("BENCH_AGE_RECIPIENT"); r != nullptr && *r != '\0') {
    auto recipient = lifeboat::crypto::parse_recipient(r);
    if (!recipient) {
      fmt::print(stderr, "BENCH_AGE_RECIPIENT: {}\n", recipient.error().message);
      return 2;
    }
    request.recipients.push_back(*recipient);
  }
  if (const char* f = std::getenv("BENCH_GPG_PUBLIC_KEY_FILE"); f != nullptr && *f != '\0') {
    std::ifstream in(f, std::ios::binary);
    std::string keys{std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
    if (keys.empty()) {
      fmt::print(stderr, "BENCH_GPG_PUBLIC_KEY_FILE: cannot read {}\n", f);
      return 2;
    }
    request.openpgp = lifeboat::crypto::openpgp_recipients{std::move(keys), ""};
  }
  auto destination = lifeboat::destinations::make_destination(
      lifeboat::api::local_destination{out.parent_path().string()});
  request.volumes.push_back({"data", dir.string()});
  request.open =
      [](const std::string& v) -> lifeboat::engine::result<lifeboat::engine::http::body_reader> {
    return lifeboat::engine::make_error(lifeboat::engine::errc::unsupported, v);
  };
  request.destination = destination.get();
  request.file_name = out.filename().string();
  const auto start = std::chrono::steady_clock::now();
  std::chrono::duration<double> held{0};
  request.on_sources_read = [&] { held = std::chrono::steady_clock::now() - start; };
  const auto steps = lifeboat::backup::standard_archive_steps();
  auto written = steps.write(request);
  if (!written) {
    fmt::print(stderr, "error: {}\n", written.error().describe());
    return 1;
  }
  auto published = steps.publish(*written, *destination);
  if (!published) {
    fmt::print(stderr, "error: {}\n", published.error().describe());
    return 1;
  }
  const std::chrono::duration<double> elapsed = std::chrono::steady_clock::now() - start;
  if (const char* file = std::getenv("BENCH_HELD_FILE"); file != nullptr) {
    std::ofstream(file) << fmt::format("{:.2f}\n", held.count());
  }
  fmt::print(stderr, "{}{}: {} MiB out, {:.2f} s\n", kind,
             request.openpgp ? " + gpg" : (request.recipients.empty() ? "" : " + age"),
             written->bytes >> 20, elapsed.count());
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  const std::string_view command = argc > 1 ? argv[1] : "";
  try {
    if (command == "generate" && argc == 4) {
      return generate(argv[2], std::stoull(argv[3]));
    }
    if (command == "write" && argc >= 5) {
      return write(argc, argv);
    }
    if (command == "run" && argc == 5) {
      return run(argv);
    }
  } catch (const std::exception& e) {
    fmt::print(stderr, "error: {}\n", e.what());
    return 1;
  }
  fmt::print(stderr,
             "usage: {0} generate DIR SIZE_MIB\n"
             "       {0} write DIR OUT gzip|zstd|none [LEVEL|-] [THREADS] [BLOCK_KIB] [JOB_KIB]\n"
             "       {0} run DIR OUT gzip|zstd|none   (BENCH_AGE_RECIPIENT: encrypt)\n",
             argv[0]);
  return 2;
}
