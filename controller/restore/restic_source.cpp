#include "controller/restore/restic_source.hpp"

#include "controller/backup/restic_steps.hpp"
#include "controller/restic/store.hpp"
#include "controller/restic/tree.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <filesystem>
#include <optional>
#include <system_error>

namespace lifeboat::restore {

namespace {

constexpr std::string_view field = "spec.restic";

// Whether a snapshot path holds `subtree`: the same path, or a folder above it.
bool holds(const std::string& path, const std::string& subtree) {
  if (path == "/" || path == subtree) {
    return true;
  }
  return subtree.size() > path.size() && subtree.starts_with(path) && subtree[path.size()] == '/';
}

bool has_tags(const restic::snapshot& s, const std::vector<std::string>& tags) {
  return std::all_of(tags.begin(), tags.end(), [&](const std::string& t) {
    return std::find(s.tags.begin(), s.tags.end(), t) != s.tags.end();
  });
}

restic::result<std::pair<std::int64_t, std::int64_t>> time_of(const restic::snapshot& s,
                                                              const restic::object_id& id) {
  auto t = restic::parse_rfc3339(s.time, "snapshot " + restic::to_hex(id).substr(0, 8) + " time");
  if (!t) {
    return t.error();
  }
  return std::pair{t->seconds, t->nanoseconds};
}

}  // namespace

std::string snapshot_subtree(const std::string& from) {
  return from.starts_with('/') ? from : "/" + from;
}

restic::result<std::vector<restic_pick>> pick_snapshots(
    std::span<const std::pair<restic::object_id, restic::snapshot>> snapshots,
    const api::restic_source& source, const std::vector<mapping>& mappings) {
  std::vector<restic_pick> out;
  if (source.snapshot != "latest") {
    std::optional<restic::object_id> found;
    for (const auto& [id, s] : snapshots) {
      if (!restic::to_hex(id).starts_with(source.snapshot)) {
        continue;
      }
      if (found) {
        return restic::make_error(
            restic::errc::invalid_format,
            fmt::format("{}.snapshot: {} names more than one snapshot of {} ({} and {}): give "
                        "more of the ID",
                        field, source.snapshot, source.repository,
                        restic::to_hex(*found).substr(0, 8), restic::to_hex(id).substr(0, 8)));
      }
      found = id;
    }
    if (!found) {
      return restic::make_error(restic::errc::invalid_format,
                                fmt::format("{}.snapshot: no snapshot {} in {}", field,
                                            source.snapshot, source.repository));
    }
    for (const auto& m : mappings) {
      out.push_back({*found, restic::to_hex(*found).substr(0, 8), snapshot_subtree(m.from)});
    }
    return out;
  }
  for (const auto& m : mappings) {
    const auto subtree = snapshot_subtree(m.from);
    const restic::object_id* best = nullptr;
    std::pair<std::int64_t, std::int64_t> best_time{};
    for (const auto& [id, s] : snapshots) {
      const bool matches =
          has_tags(s, source.tags) && std::any_of(s.paths.begin(), s.paths.end(),
                                                  [&](const auto& p) { return holds(p, subtree); });
      if (!matches) {
        continue;
      }
      auto t = time_of(s, id);
      if (!t) {
        return t.error();
      }
      if (best == nullptr || *t > best_time) {
        best = &id;
        best_time = *t;
      }
    }
    if (best == nullptr) {
      return restic::make_error(
          restic::errc::invalid_format,
          fmt::format("{}: no snapshot in {} holds {}{}", field, source.repository, subtree,
                      source.tags.empty()
                          ? std::string()
                          : fmt::format(" with the tags {}", fmt::join(source.tags, ", "))));
    }
    out.push_back({*best, restic::to_hex(*best).substr(0, 8), subtree});
  }
  return out;
}

restic::result<restic::repository> open_restic_source(const api::restic_source& source) {
  auto password = backup::read_password_file(source.password_file, "spec.restic.passwordFile");
  if (!password) {
    return password.error();
  }
  std::error_code ec;
  if (!std::filesystem::exists(std::filesystem::path(source.repository) / "config", ec)) {
    return restic::make_error(
        restic::errc::invalid_format,
        fmt::format("spec.restic.repository: {} is not a restic repository (no config file)",
                    source.repository));
  }
  auto repo = restic::repository::open(source.repository, *password);
  if (!repo && repo.error().is(restic::errc::wrong_password)) {
    return restic::make_error(
        restic::errc::wrong_password,
        fmt::format("restic repository {}: no key opens with the password in {} "
                    "(spec.restic.passwordFile)",
                    source.repository, source.password_file));
  }
  return repo;
}

error restore_error(const restic::error& e, errc malformed) {
  switch (e.code) {
    case restic::errc::wrong_password:
      return make_error(errc::invalid_argument, e.message);
    case restic::errc::corrupt:
      return make_error(errc::corrupt, e.message);
    case restic::errc::invalid_format:
      return make_error(malformed, e.message);
    case restic::errc::io:
      return make_error(errc::io_error, e.message);
    case restic::errc::refused:
      return make_error(errc::refused, e.message);
    case restic::errc::internal:
      return make_error(errc::internal, e.message);
  }
  return make_error(errc::internal, e.message);
}

}  // namespace lifeboat::restore
