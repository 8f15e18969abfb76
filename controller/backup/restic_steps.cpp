#include "controller/backup/restic_steps.hpp"

#include "api/text.hpp"
#include "controller/restic/prune.hpp"
#include "controller/restic/store.hpp"

#include <fmt/core.h>

#include <chrono>
#include <fstream>
#include <iterator>
#include <system_error>

namespace lifeboat::backup {

namespace {

constexpr std::string_view password_field = "spec.restic.passwordFile";

restic::compression compression_of(api::restic_compression c) {
  switch (c) {
    case api::restic_compression::off:
      return restic::compression::off;
    case api::restic_compression::automatic:
      return restic::compression::automatic;
    case api::restic_compression::max:
      return restic::compression::max;
  }
  return restic::compression::automatic;  // unreachable: every enumerator is handled above
}

std::string snapshot_path(const std::string& volume) { return "/" + volume; }

// Packs and index files are written as ".lifeboat-tmp-*" in the repository's
// top folder and renamed into place; a run killed midway leaves its file
// there (restic ignores it). One untouched for an hour belongs to no live
// writer: a writer fills its file within seconds, and restic's own rule takes
// a lock untouched for 30 minutes for stale.
void remove_stale_temporaries(const std::filesystem::path& folder) {
  std::error_code ec;
  const auto cutoff = std::filesystem::file_time_type::clock::now() - std::chrono::hours{1};
  for (const auto& entry : std::filesystem::directory_iterator(folder, ec)) {
    if (!entry.path().filename().string().starts_with(".lifeboat-tmp-")) {
      continue;
    }
    std::error_code stat_ec;
    if (const auto written = entry.last_write_time(stat_ec); !stat_ec && written < cutoff) {
      std::filesystem::remove(entry.path(), stat_ec);
    }
  }
}

}  // namespace

restic::result<std::string> read_restic_password(const api::restic_spec& spec) {
  return read_password_file(spec.password_file, password_field);
}

restic::result<std::string> read_password_file(const std::string& file, std::string_view field) {
  std::ifstream in(file, std::ios::binary);
  if (!in) {
    std::error_code ec(errno, std::generic_category());
    return restic::make_error(restic::errc::invalid_format,
                              fmt::format("{}: cannot read {}: {}", field, file, ec.message()));
  }
  std::string password{std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
  if (password.ends_with('\n')) {
    password.pop_back();
    if (password.ends_with('\r')) {
      password.pop_back();
    }
  }
  if (password.empty()) {
    return restic::make_error(
        restic::errc::invalid_format,
        fmt::format("{}: {} is empty: a repository needs a password", field, file));
  }
  return password;
}

restic::result<restic::repository> open_restic_repository(const api::backup_schedule& schedule) {
  const auto& spec = schedule.spec;
  if (!spec.restic || spec.destinations.size() != 1 ||
      !std::holds_alternative<api::local_destination>(spec.destinations.front())) {
    // The decoder refuses such a schedule; one built in code must not get here.
    return restic::make_error(restic::errc::invalid_format,
                              "format restic needs spec.restic and exactly one local destination");
  }
  auto password = read_restic_password(*spec.restic);
  if (!password) {
    return password.error();
  }
  const std::filesystem::path folder =
      std::get<api::local_destination>(spec.destinations.front()).path;
  std::error_code ec;
  const bool has_config = std::filesystem::exists(folder / "config", ec);
  if (!has_config) {
    const bool empty =
        !std::filesystem::exists(folder, ec) || std::filesystem::is_empty(folder, ec);
    if (ec) {
      return restic::make_error(
          restic::errc::io, fmt::format("restic repository {}: {}", folder.string(), ec.message()));
    }
    if (!empty) {
      return restic::make_error(
          restic::errc::invalid_format,
          fmt::format("{} is not a restic repository (no config file) and not empty: give the "
                      "repository a folder of its own",
                      folder.string()));
    }
    return restic::repository::init(folder, *password);
  }
  auto repo = restic::repository::open(folder, *password);
  if (repo) {
    remove_stale_temporaries(folder);
  }
  if (!repo && repo.error().is(restic::errc::wrong_password)) {
    return restic::make_error(
        restic::errc::wrong_password,
        fmt::format("restic repository {}: no key opens with the password in {} ({})",
                    folder.string(), spec.restic->password_file, password_field));
  }
  return repo;
}

restic::result<volume_snapshot> snapshot_volume(
    const restic::repository& repo, const api::backup_schedule& schedule,
    const std::string& run_name, const std::string& hostname, const std::string& volume,
    const std::filesystem::path& directory,
    std::span<const std::pair<restic::object_id, restic::snapshot>> listed) {
  const auto parent = restic::newest_snapshot(listed, {snapshot_path(volume)}, hostname);
  restic::backup_options options;
  options.source = directory;
  options.name = volume;
  options.tags = restic_schedule_tags(schedule);
  options.tags.push_back("backup=" + run_name);
  options.hostname = hostname;
  options.parent = parent;
  options.mode = compression_of(schedule.spec.restic ? schedule.spec.restic->compression
                                                     : api::restic_compression::automatic);
  auto made = restic::backup_directory(repo, options);
  if (!made) {
    return made.error();
  }
  return volume_snapshot{volume, made->snapshot_id, parent.has_value(), made->stats};
}

restic::result<void> remove_snapshots(const restic::repository& repo,
                                      const std::vector<volume_snapshot>& made) {
  if (made.empty()) {
    return {};
  }
  auto lock = restic::repository_lock::acquire(repo);
  if (!lock) {
    return lock.error();
  }
  for (const auto& snapshot : made) {
    const auto file = repo.path() / "snapshots" / restic::to_hex(snapshot.id);
    std::error_code ec;
    if (!std::filesystem::remove(file, ec) && ec) {
      return restic::make_error(restic::errc::io,
                                fmt::format("cannot remove {}: {}", file.string(), ec.message()));
    }
  }
  return lock->release();
}

std::vector<std::string> restic_schedule_tags(const api::backup_schedule& schedule) {
  return {"lifeboat", "schedule=" + schedule.metadata.name};
}

restic::keep_policy restic_keep_policy(const api::backup_schedule& schedule) {
  restic::keep_policy policy;
  if (const auto& r = schedule.spec.retention) {
    policy.last = r->keep_last;
    policy.hourly = r->keep_hourly;
    policy.daily = r->keep_daily;
    policy.weekly = r->keep_weekly;
    policy.monthly = r->keep_monthly;
    policy.yearly = r->keep_yearly;
  }
  return policy;
}

restic::result<std::string> apply_restic_retention(const restic::repository& repo,
                                                   const api::backup_schedule& schedule,
                                                   const std::vector<std::string>& volumes) {
  if (!schedule.spec.retention) {
    return std::string("no retention: every snapshot kept");
  }
  const auto policy = restic_keep_policy(schedule);
  const auto tags = restic_schedule_tags(schedule);
  std::size_t forgotten = 0;
  for (const auto& volume : volumes) {
    auto forgot = restic::forget_snapshots(repo, tags, {snapshot_path(volume)}, policy);
    if (!forgot) {
      return forgot.error();
    }
    forgotten += forgot->removed.size();
  }
  if (forgotten == 0) {
    return std::string("forgot no snapshot");
  }
  auto pruned = restic::prune_unreferenced(repo);
  if (!pruned) {
    return restic::make_error(pruned.error().code,
                              fmt::format("forgot {} snapshot(s), then pruning failed: {}",
                                          forgotten, pruned.error().message));
  }
  return fmt::format("forgot {} snapshot(s), removed {} pack(s) ({}){}", forgotten,
                     pruned->packs_removed,
                     api::human_bytes(static_cast<double>(pruned->pack_bytes_removed)),
                     pruned->packs_partly_referenced == 0
                         ? ""
                         : fmt::format(", {} partly used pack(s) kept (restic prune repacks them)",
                                       pruned->packs_partly_referenced));
}

}  // namespace lifeboat::backup
