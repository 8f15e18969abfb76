#include "controller/backup/agent.hpp"

#include "controller/backup/agent_job.hpp"
#include "controller/backup/archive_steps.hpp"
#include "controller/backup/engine_runner.hpp"
#include "controller/crypto/spec_keys.hpp"

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>
#include <boost/json/value.hpp>

#include <sys/resource.h>

namespace lifeboat::backup {

namespace json = boost::json;

namespace {

constexpr std::string_view event_key = "lifeboat-agent";

void emit(std::FILE* out, const agent_event& e) { write_report_line(out, encode_agent_event(e)); }

}  // namespace

std::string encode_agent_event(const agent_event& e) {
  if (e.what == agent_event::kind::volumes_read) {
    return json::serialize(json::object{{event_key, "volumes-read"}});
  }
  json::object o{{event_key, "finished"},  {"ok", e.ok},
                 {"archive", e.archive},   {"bytes", e.bytes},
                 {"peak_rss", e.peak_rss}, {"message", e.message}};
  if (!e.outcome.empty()) {
    o["outcome"] = e.outcome;
  }
  return json::serialize(o);
}

std::optional<agent_event> decode_agent_event(std::string_view line) {
  boost::system::error_code ec;
  const auto v = json::parse(line, ec);
  if (ec || !v.is_object()) {
    return std::nullopt;
  }
  const auto& o = v.get_object();
  const auto* what = o.if_contains(event_key);
  if (what == nullptr || !what->is_string()) {
    return std::nullopt;
  }
  agent_event e;
  if (what->get_string() == "volumes-read") {
    e.what = agent_event::kind::volumes_read;
    return e;
  }
  if (what->get_string() != "finished") {
    return std::nullopt;
  }
  if (const auto* ok = o.if_contains("ok"); ok != nullptr && ok->is_bool()) {
    e.ok = ok->get_bool();
  }
  if (const auto* a = o.if_contains("archive"); a != nullptr && a->is_string()) {
    e.archive = a->get_string();
  }
  if (const auto* b = o.if_contains("bytes"); b != nullptr && b->is_number()) {
    e.bytes = b->to_number<std::uint64_t>(ec);
  }
  if (const auto* r = o.if_contains("peak_rss"); r != nullptr && r->is_number()) {
    e.peak_rss = r->to_number<std::uint64_t>(ec);
  }
  if (const auto* m = o.if_contains("message"); m != nullptr && m->is_string()) {
    e.message = m->get_string();
  }
  if (const auto* c = o.if_contains("outcome"); c != nullptr && c->is_string()) {
    e.outcome = c->get_string();
  }
  return e;
}

int run_agent(const agent_request& request, std::FILE* out, const std::atomic<bool>& cancel) {
  agent_event finished;
  auto finish = [&](bool ok, std::string message) {
    finished.ok = ok;
    finished.message = std::move(message);
    if (rusage usage{}; ::getrusage(RUSAGE_SELF, &usage) == 0) {
      finished.peak_rss = static_cast<std::uint64_t>(usage.ru_maxrss) * 1024;  // KiB on Linux
    }
    emit(out, finished);
    return ok ? 0 : 1;
  };
  const auto& spec = request.schedule.spec;
  if (spec.destinations.empty()) {
    return finish(false, "the schedule has no destination");
  }
  auto destination = destinations::make_destination(spec.destinations.front());
  if (auto ok = destination->check(); !ok) {
    return finish(false, destination->describe() + ": " + ok.error().message);
  }
  archive_request archive;
  for (const auto& v : request.volumes) {
    archive.volumes.push_back({v, request.volumes_root + "/" + v});
  }
  archive.open = [](const std::string& v) -> engine::result<engine::http::body_reader> {
    return engine::make_error(engine::errc::unsupported,
                              "volume " + v + " is not mounted in the agent's container");
  };
  archive.spec = spec.archive;
  if (const auto* gpg = spec.archive.encryption
                            ? std::get_if<api::gpg_encryption>(&*spec.archive.encryption)
                            : nullptr) {
    // Inline armored keys only: the controller read the file into them.
    auto keys = crypto::load_openpgp_recipients(*gpg, "spec.archive.encryption.gpg");
    if (!keys) {
      return finish(false, keys.error().message);
    }
    archive.openpgp = std::move(*keys);
  } else if (spec.archive.encryption) {
    // Inline recipients only: the controller resolved any file into them.
    auto recipients = crypto::load_recipients(
        std::get<api::age_encryption>(*spec.archive.encryption), "spec.archive.encryption.age");
    if (!recipients) {
      return finish(false, recipients.error().message);
    }
    archive.recipients = std::move(*recipients);
  }
  archive.destination = destination.get();
  archive.file_name = request.file_name;
  archive.cancel = &cancel;
  // As on the controller's node: the workloads resume when reading ends,
  // with what compression has not caught up with waiting beside the archive.
  archive.spool_limit = runner_options::default_spool_limit;
  archive.on_sources_read = [&] {
    agent_event read;
    read.what = agent_event::kind::volumes_read;
    emit(out, read);
  };

  const auto steps = standard_archive_steps();
  auto written = steps.write(archive);
  if (!written) {
    return finish(false, "archiving failed: " + written.error().message);
  }
  auto published = steps.publish(*written, *destination);
  if (!published) {
    return finish(false, "publishing the archive in " + destination->describe() +
                             " failed: " + published.error().message);
  }
  finished.archive = published->first.location;
  finished.bytes = written->bytes;
  std::string message = human_bytes(static_cast<double>(written->bytes));
  if (written->warning_count > 0) {
    message += " (" + std::to_string(written->warning_count) +
               " warning(s), first: " + written->warnings.front() + ")";
  }
  // Every other destination gets a copy from here, as the controller gives
  // its own archive: a worker's archive must not depend on the manager being
  // able to read it (a `local` folder here is this node's).
  std::vector<std::string> failures;
  std::vector<std::unique_ptr<destinations::destination>> holding;
  for (std::size_t i = 1; i < spec.destinations.size(); ++i) {
    auto other = destinations::make_destination(spec.destinations[i]);
    auto copied = other->check();
    if (copied) {
      if (auto c = destinations::copy_archive(*destination, *other, request.file_name); !c) {
        copied = c.error();
      }
    }
    if (!copied) {
      failures.push_back(other->describe() + ": " + copied.error().message);
      continue;
    }
    (void)other->point_latest(request.file_name);
    holding.push_back(std::move(other));
  }
  holding.push_back(std::move(destination));
  // The controller prunes what it can reach; folders on this node only the
  // agent can. Leftovers of this node's interrupted runs only: the other
  // nodes of this run may be writing into the same folder (one shared by
  // every node) right now, while no other run of this schedule is (a run
  // removes the agent jobs of the ones before it first).
  const auto pattern = name_pattern_of(request.schedule);
  const auto node = pattern.node_of(request.file_name);
  for (const auto& d : holding) {
    if (d->spool_folder().empty()) {
      continue;
    }
    if (node) {
      if (auto cleared = d->remove_leftovers(pattern.of_node(*node)); !cleared) {
        failures.push_back(d->describe() +
                           ": removing leftovers failed: " + cleared.error().message);
      }
    }
    if (auto pruned = apply_retention(request.schedule, *d); !pruned) {
      failures.push_back(d->describe() + ": pruning failed: " + pruned.error().message);
    }
  }
  if (!failures.empty()) {
    return finish(
        false, fmt::format("{}, in {}; {}", message, finished.archive, fmt::join(failures, "; ")));
  }
  return finish(true, std::move(message));
}

}  // namespace lifeboat::backup
