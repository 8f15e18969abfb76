#include "controller/cli/restore_command.hpp"

#include "api/decode.hpp"
#include "api/text.hpp"
#include "api/validate.hpp"
#include "controller/cli/commands.hpp"
#include "controller/cli/output.hpp"
#include "controller/crypto/spec_keys.hpp"
#include "controller/destinations/destination.hpp"
#include "controller/restic/restore.hpp"
#include "controller/restore/agent.hpp"
#include "controller/restore/engine_runner.hpp"
#include "controller/restore/fetch.hpp"
#include "controller/restore/restic_source.hpp"
#include "controller/restore/unpack.hpp"
#include "reconcilers/schedule.hpp"

#include <fmt/core.h>
#include <unistd.h>

#include <array>
#include <atomic>
#include <csignal>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <random>
#include <span>
#include <sstream>
#include <variant>

namespace lifeboat::cli {

namespace {

namespace fs = std::filesystem;
using clock = std::chrono::steady_clock;

// A one-line display on a terminal, at most 4 times a second; nothing when
// stderr is a file or a pipe (logs stay clean).
class progress_line {
 public:
  progress_line() : enabled_(::isatty(STDERR_FILENO) == 1) {}

  void show(std::string_view phase, const restore::progress& p) {
    if (!enabled_) {
      return;
    }
    const auto now = clock::now();
    if (phase != phase_) {
      phase_ = std::string(phase);
      phase_start_ = now;
    } else if (now - last_ < std::chrono::milliseconds{250}) {
      return;
    }
    last_ = now;
    const std::chrono::duration<double> t = now - phase_start_;
    const double mib = static_cast<double>(p.content_bytes) / (1 << 20);
    const double pct = p.archive_size == 0 ? 100.0
                                           : 100.0 * static_cast<double>(p.archive_bytes) /
                                                 static_cast<double>(p.archive_size);
    say(stderr, "\r\033[K  {} {:5.1f}%  {} entries  {:.0f} MiB  {:.0f} MiB/s", phase_, pct,
        p.entries, mib, t.count() > 0 ? mib / t.count() : 0.0);
    shown_ = true;
  }

  void clear() {
    if (shown_) {
      say(stderr, "\r\033[K");
      shown_ = false;
    }
  }

 private:
  bool enabled_;
  bool shown_ = false;
  std::string phase_;
  clock::time_point phase_start_{};
  clock::time_point last_{};
};

int into_directory(const restore::archive_file& archive,
                   const std::vector<restore::mapping>& mappings, const restore::read_options& read,
                   const cli::restore_options& options) {
  const auto started = clock::now();
  auto verified = restore::verify(archive, mappings, read);
  if (!verified) {
    say(stderr, "restore failed: {}\n", api::escape_controls(verified.error().describe()));
    return 1;
  }
  std::vector<fs::path> roots;
  for (const auto& m : mappings) {
    roots.push_back(fs::path(options.into_directory) / m.to);
    std::error_code ec;
    fs::create_directories(roots.back(), ec);
    if (ec) {
      say(stderr, "error: creating {}: {}\n", roots.back().string(), ec.message());
      return 1;
    }
    if (options.wipe) {
      if (auto w = restore::wipe_directory(roots.back()); !w) {
        say(stderr, "restore failed: {}\n", api::escape_controls(w.error().describe()));
        return 1;
      }
    }
  }
  const auto verified_at = clock::now();
  if (options.dry_run) {
    say(stdout, "verified {} ({}{}{})\n", archive.path().string(), verified->compression,
        verified->encrypted ? ", " + verified->encryption + "-encrypted" : "",
        verified->checksum_verified ? ", checksum verified" : "");
    return 0;
  }
  auto unpacked = restore::extract_to_directories(archive, mappings, roots, read);
  if (!unpacked) {
    say(stderr, "restore failed: {}\n", api::escape_controls(unpacked.error().describe()));
    return 1;
  }
  const std::chrono::duration<double> verify_s = verified_at - started;
  const std::chrono::duration<double> unpack_s = clock::now() - verified_at;
  say(stdout, "restored {} entries, {:.1f} MiB into {} (verify {:.2f}s, unpack {:.2f}s{})\n",
      unpacked->entries, static_cast<double>(unpacked->content_bytes) / (1 << 20),
      options.into_directory, verify_s.count(), unpack_s.count(),
      verified->checksum_verified ? ", checksum verified" : "");
  return 0;
}

// --volume FROM[=TO] of a restore from a restic snapshot: FROM is a volume
// name (the snapshot path /FROM) or an absolute path inside the snapshot.
std::optional<restore::mapping> restic_mapping(const std::string& text) {
  const auto equals = text.find('=');
  restore::mapping m{text.substr(0, equals),
                     equals == std::string::npos ? text : text.substr(equals + 1)};
  std::optional<std::string> bad;
  if (m.from.starts_with('/')) {
    bad = equals == std::string::npos
              ? "a path inside the snapshot needs the target volume: " + m.from + "=VOLUME"
              : api::check_absolute_path(m.from);
  } else {
    bad = api::check_volume_name(m.from);
  }
  if (!bad) {
    bad = api::check_volume_name(m.to);
  }
  if (bad) {
    say(stderr, "error: --volume {}: {}\n", text, *bad);
    return std::nullopt;
  }
  return m;
}

// --repository with --into-directory: each snapshot into DIR/TO, without an
// engine (for benchmarks and for looking into a repository).
int restic_into_directory(const api::restic_source& source,
                          const std::vector<restore::mapping>& mappings,
                          const cli::restore_options& options) {
  const auto started = clock::now();
  const auto failed = [](const std::string& why) {
    say(stderr, "restore failed: {}\n", api::escape_controls(why));
    return 1;
  };
  auto repo = restore::open_restic_source(source);
  if (!repo) {
    return failed(repo.error().message);
  }
  auto all = restic::list_snapshots(*repo);
  if (!all) {
    return failed(all.error().message);
  }
  auto picks = restore::pick_snapshots(*all, source, mappings);
  if (!picks) {
    return failed(picks.error().message);
  }
  for (const auto& pick : *picks) {
    if (auto verified = restic::verify_snapshot(
            *repo, pick.snapshot,
            {.subtree = pick.subtree, .allow_devices = options.allow_devices});
        !verified) {
      return failed("snapshot " + pick.short_id + " " + pick.subtree + ": " +
                    verified.error().message);
    }
  }
  const auto verified_at = clock::now();
  if (options.dry_run) {
    say(stdout, "verified {} snapshot(s) of {}\n", picks->size(), source.repository);
    return 0;
  }
  restic::restore_options restore_options;
  restore_options.owners = ::geteuid() == 0;
  restore_options.verified = true;
  restore_options.allow_devices = options.allow_devices;
  std::uint64_t entries = 0;
  std::uint64_t bytes = 0;
  for (std::size_t i = 0; i < picks->size(); ++i) {
    const fs::path root = fs::path(options.into_directory) / mappings[i].to;
    std::error_code ec;
    fs::create_directories(root, ec);
    if (ec) {
      return failed("creating " + root.string() + ": " + ec.message());
    }
    if (options.wipe) {
      if (auto w = restore::wipe_directory(root); !w) {
        return failed(w.error().describe());
      }
    }
    restore_options.subtree = (*picks)[i].subtree;
    auto stats = restic::restore_snapshot(*repo, (*picks)[i].snapshot, root, restore_options);
    if (!stats) {
      return failed(root.string() + ": " + stats.error().message);
    }
    entries += stats->files + stats->hard_links + stats->dirs + stats->symlinks + stats->special;
    bytes += stats->bytes;
  }
  const std::chrono::duration<double> verify_s = verified_at - started;
  const std::chrono::duration<double> write_s = clock::now() - verified_at;
  say(stdout, "restored {} entries, {:.1f} MiB into {} (verify {:.2f}s, restore {:.2f}s)\n",
      entries, static_cast<double>(bytes) / (1 << 20), options.into_directory, verify_s.count(),
      write_s.count());
  return 0;
}

// Whether --passphrase-file is for gpg rather than age: by the archive's
// first bytes when it is a file here, by its name (".gpg", as lifeboat names
// what it encrypts with gpg) when it is on a destination.
bool archive_is_openpgp(const api::restore_spec& spec) {
  if (spec.source) {
    return spec.source->name.ends_with(".gpg");
  }
  if (!spec.archive) {
    return false;
  }
  std::ifstream in(*spec.archive, std::ios::binary);
  std::array<char, 64> head{};
  in.read(head.data(), head.size());
  return crypto::looks_like_openpgp(
      std::span<const char>(head.data(), static_cast<std::size_t>(in.gcount())));
}

}  // namespace

int restore(const engine::client_options& engine_options, const restore_options& options) {
  if (options.archive.empty() == options.repository.empty() || options.volumes.empty()) {
    say(stderr,
        "error: restore needs --archive PATH or --repository FOLDER, and at least one --volume "
        "FROM[=TO]\n");
    return 2;
  }
  std::vector<restore::mapping> mappings;
  api::restore object;
  if (!options.repository.empty()) {
    if (options.password_file.empty()) {
      say(stderr, "error: --repository needs --password-file (the repository's password)\n");
      return 2;
    }
    if (!options.destination_file.empty() || !options.identity_file.empty() ||
        !options.gpg_secret_key_file.empty() || !options.passphrase_file.empty()) {
      say(stderr,
          "error: --repository reads a local restic repository, which its password "
          "decrypts: --destination, --identity, --gpg-secret-key and --passphrase-file do not "
          "apply\n");
      return 2;
    }
    object.spec.restic = api::restic_source{fs::absolute(options.repository).string(),
                                            fs::absolute(options.password_file).string(),
                                            options.snapshot, options.tags};
    for (const auto& text : options.volumes) {
      auto m = restic_mapping(text);
      if (!m) {
        return 2;
      }
      mappings.push_back(*m);
      object.spec.volumes.push_back(api::volume_mapping{m->from, m->to});
    }
    if (!options.into_directory.empty()) {
      return restic_into_directory(*object.spec.restic, mappings, options);
    }
  } else if (!options.destination_file.empty()) {
    std::ifstream in(options.destination_file);
    std::stringstream text;
    text << in.rdbuf();
    if (!in) {
      say(stderr, "error: {}: cannot read the file\n", options.destination_file);
      return 2;
    }
    auto decoded = api::decode_destination(text.str());
    if (!decoded.value) {
      for (const auto& e : decoded.errors) {
        say(stderr, "{}:{}\n", options.destination_file, api::format_error(e));
      }
      return 2;
    }
    if (const auto bad = api::check_archive_file_name(options.archive)) {
      say(stderr, "error: --archive with --destination: {}\n", *bad);
      return 2;
    }
    object.spec.source = api::restore_source{std::move(*decoded.value), options.archive};
  } else {
    object.spec.archive = fs::absolute(options.archive).string();
  }
  if (!options.gpg_secret_key_file.empty() ||
      (!options.passphrase_file.empty() && archive_is_openpgp(object.spec))) {
    api::gpg_decryption keys;
    if (!options.gpg_secret_key_file.empty()) {
      keys.secret_key_file = fs::absolute(options.gpg_secret_key_file).string();
    }
    if (!options.passphrase_file.empty()) {
      keys.passphrase_file = fs::absolute(options.passphrase_file).string();
    }
    object.spec.decryption = keys;
  } else if (!options.identity_file.empty() || !options.passphrase_file.empty()) {
    api::age_decryption keys;
    if (!options.identity_file.empty()) {
      keys.identity_file = fs::absolute(options.identity_file).string();
    } else {
      keys.passphrase_file = fs::absolute(options.passphrase_file).string();
    }
    object.spec.decryption = keys;
  }
  object.spec.wipe = options.wipe;
  object.spec.create_volume = options.create_volume;
  object.spec.stop_during_backup = options.stop_group;
  if (options.label_match == api::to_string(api::label_match::one_of)) {
    // As the decoder says of spec.stopDuringBackup: a value is split at commas.
    if (options.stop_group.find(',') != std::string::npos) {
      say(stderr, "error: --stop-group must not contain ',' with --label-match one-of; got {}\n",
          options.stop_group);
      return 2;
    }
    object.spec.label_match = api::label_match::one_of;
  }
  for (const auto& text : object.spec.restic ? std::vector<std::string>{} : options.volumes) {
    auto m = restore::parse_mapping(text);
    if (!m) {
      say(stderr, "error: --volume {}\n", m.error().message);
      return 2;
    }
    mappings.push_back(*m);
    object.spec.volumes.push_back(api::volume_mapping{m->from, m->to});
  }
  const auto& cancel_requested = stop_on_signals();
  progress_line line;
  restore::read_options read;
  read.allow_devices = options.allow_devices;
  read.allow_absolute_symlinks = options.allow_absolute_symlinks;
  read.cancel = &cancel_requested;
  if (const auto* gpg = object.spec.decryption
                            ? std::get_if<api::gpg_decryption>(&*object.spec.decryption)
                            : nullptr) {
    auto identities = crypto::load_openpgp_identities(*gpg, "");
    if (!identities) {
      say(stderr, "error: {}\n", identities.error().message);
      return 2;
    }
    read.openpgp = std::move(*identities);
  } else if (object.spec.decryption) {
    auto identities =
        crypto::load_identities(std::get<api::age_decryption>(*object.spec.decryption), "");
    if (!identities) {
      say(stderr, "error: {}\n", identities.error().message);
      return 2;
    }
    read.identities = std::move(*identities);
  }

  const fs::path spool_folder =
      options.spool_folder.empty() ? fs::temp_directory_path() : fs::path(options.spool_folder);
  if (!options.into_directory.empty()) {
    auto archive = [&] {
      if (!object.spec.source) {
        return restore::archive_file::open(options.archive);
      }
      const auto from = destinations::make_destination(object.spec.source->destination);
      return restore::fetch_archive(*from, object.spec.source->name, spool_folder,
                                    &cancel_requested);
    }();
    if (!archive) {
      say(stderr, "error: {}\n", archive.error().message);
      return 1;
    }
    read.on_progress = [&](const restore::progress& p) { line.show("unpacking", p); };
    const int rc = into_directory(*archive, mappings, read, options);
    line.clear();
    return rc;
  }

  auto client = connect_or_report(engine_options);
  if (!client) {
    return 1;
  }
  auto journals = open_journals(*client, options.state_file);
  if (!journals) {
    say(stderr, "error: {}\n", journals.error().describe());
    return 1;
  }
  restore::runner_options runner_options;
  runner_options.helper_image = options.helper_image;
  runner_options.agent_image = options.agent_image;
  runner_options.path = options.path == "engine"   ? restore::data_path::engine
                        : options.path == "direct" ? restore::data_path::direct
                                                   : restore::data_path::automatic;
  runner_options.allow_devices = options.allow_devices;
  runner_options.allow_absolute_symlinks = options.allow_absolute_symlinks;
  runner_options.verify_only = options.dry_run;
  runner_options.spool_folder = spool_folder;
  runner_options.on_progress = [&](std::string_view phase, const restore::progress& p) {
    line.show(phase, p);
  };
  restore::engine_runner runner(*client, **journals, runner_options);
  // The run's name owns what it holds: two restores started by hand in the
  // same second (two volumes restored from two shells, or scripts) must not
  // share one, or the second is refused as another process's run.
  const auto name =
      reconcilers::backup_name(
          "restore", std::chrono::floor<std::chrono::seconds>(std::chrono::system_clock::now())) +
      fmt::format("-{:04x}", std::random_device{}() & 0xffffU);
  object.metadata.name = name;
  const auto started = clock::now();
  const auto result = runner.run(
      object, name,
      [&](std::string_view phase, const std::string& message) {
        line.clear();
        const std::chrono::duration<double> t = clock::now() - started;
        say(stdout, "{:7.1f}s  {:<10} {}\n", t.count(), phase, api::escape_controls(message));
      },
      [](int) {}, cancel_requested);
  line.clear();
  if (!result.ok) {
    say(stderr, "restore {} failed: {}\n", name, api::escape_controls(result.message));
  } else {
    say(stdout, "restore {} {}: {}\n", name, result.outcome, api::escape_controls(result.message));
  }
  // Stopped by a signal (SIGTERM, SIGINT, a hang-up): the workloads are back
  // by now; the exit says what ended the run.
  if (const int signal = stop_signal(); signal != 0) {
    return 128 + signal;
  }
  return result.ok ? 0 : 1;
}

int restore_agent(const restore_agent_options& options) {
  const char* text = std::getenv("LIFEBOAT_RESTORE");
  if (text == nullptr || *text == '\0') {
    say(stderr,
        "error: restore-agent needs the Restore in LIFEBOAT_RESTORE (the controller starts "
        "restore agents; see lifeboat restore for a restore by hand)\n");
    return 2;
  }
  const auto decoded = api::decode(text);
  if (!decoded.ok()) {
    for (const auto& e : decoded.errors()) {
      say(stderr, "LIFEBOAT_RESTORE:{}\n", api::format_error(e));
    }
    return 1;
  }
  if (decoded.objects().size() != 1 ||
      !std::holds_alternative<api::restore>(decoded.objects().front())) {
    say(stderr, "LIFEBOAT_RESTORE: holds no single Restore\n");
    return 1;
  }
  restore::restore_agent_request request;
  request.restore = std::get<api::restore>(decoded.objects().front());
  request.write = options.write;
  request.allow_devices = options.allow_devices;
  request.allow_absolute_symlinks = options.allow_absolute_symlinks;
  (void)options.run_name;  // shown in the job's arguments, for whoever lists them
  return restore::run_restore_agent(request, stdout, stop_on_signals());
}

}  // namespace lifeboat::cli
