#include "api/decode.hpp"
#include "api/text.hpp"
#include "controller/cli/commands.hpp"
#include "controller/objects/catalog.hpp"
#include "controller/objects/status.hpp"
#include "controller/objects/swarm_objects.hpp"

#include <fmt/core.h>
#include <boost/json/serialize.hpp>
#include <boost/json/value.hpp>

#include <algorithm>
#include <cstdio>
#include <fstream>
#include <sstream>

namespace lifeboat::cli {

namespace {

using objects::catalog_entry;

std::chrono::sys_seconds now_seconds() {
  return std::chrono::floor<std::chrono::seconds>(std::chrono::system_clock::now());
}

bool read_file(const std::string& path, std::string& out) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    return false;
  }
  std::stringstream s;
  s << in.rdbuf();
  out = s.str();
  return true;
}

void print_errors(const std::string& file, const std::vector<api::decode_error>& errors) {
  for (const auto& e : errors) {
    fmt::print(stderr, "{}:{}\n", file, api::format_error(e));
  }
}

std::string_view kind_for(const std::string& what) {
  if (what == "schedules" || what == "schedule" || what == "backupschedules") {
    return "BackupSchedule";
  }
  if (what == "backups" || what == "backup") {
    return "Backup";
  }
  if (what == "restores" || what == "restore") {
    return "Restore";
  }
  return {};
}

std::string kind_of_entry(const catalog_entry& e) {
  return e.object() != nullptr ? std::string(api::kind_of(*e.object())) : e.document.kind;
}

std::string name_of_entry(const catalog_entry& e) {
  if (e.object() != nullptr) {
    return api::metadata_of(*e.object()).name;
  }
  return e.document.name.empty() ? "(" + e.source.name + ")" : e.document.name;
}

std::string label_or(const catalog_entry& e, std::string_view key, const std::string& fallback) {
  const auto it = e.source.labels.find(std::string(key));
  return it != e.source.labels.end() ? it->second : fallback;
}

// One row of `get`: the status discovery decides, else what the run wrote.
struct row {
  std::string name;
  std::string phase;
  std::string message;
  std::string next_run;
  const catalog_entry* entry;
};

row make_row(const catalog_entry& e, std::chrono::sys_seconds now) {
  row r{name_of_entry(e), "", "", "", &e};
  if (const auto status = objects::desired_status(e, now)) {
    r.phase = status->phase;
    r.message = status->message;
    if (status->next_run) {
      r.next_run = objects::format_utc(*status->next_run);
    }
  } else {
    r.phase = label_or(e, objects::label::phase, "Pending");
    r.message = label_or(e, objects::label::message, "");
  }
  return r;
}

// Cells hold names and messages from outside (file names from volumes among
// them): a control character in one must not break or rewrite the table.
void print_table(std::vector<std::vector<std::string>> rows) {
  for (auto& r : rows) {
    for (auto& cell : r) {
      cell = api::escape_controls(cell);
    }
  }
  std::vector<std::size_t> width;
  for (const auto& r : rows) {
    width.resize(std::max(width.size(), r.size()));
    for (std::size_t i = 0; i < r.size(); ++i) {
      width[i] = std::max(width[i], r[i].size());
    }
  }
  for (const auto& r : rows) {
    std::string line;
    for (std::size_t i = 0; i < r.size(); ++i) {
      line += r[i];
      if (i + 1 < r.size()) {
        line += std::string(width[i] - r[i].size() + 3, ' ');
      }
    }
    fmt::print("{}\n", line);
  }
}

}  // namespace

int validate(const std::vector<std::string>& files) {
  int failed = 0;
  for (const auto& file : files) {
    std::string text;
    if (!read_file(file, text)) {
      fmt::print(stderr, "{}: cannot read the file\n", file);
      ++failed;
      continue;
    }
    const auto result = api::decode(text);
    if (!result.ok()) {
      print_errors(file, result.errors());
      ++failed;
      continue;
    }
    std::string names;
    for (const auto& o : result.objects()) {
      names += fmt::format("{}{}/{}", names.empty() ? "" : ", ", api::kind_of(o),
                           api::metadata_of(o).name);
    }
    fmt::print("{}: valid ({})\n", file, names.empty() ? "no objects" : names);
  }
  return failed == 0 ? 0 : 1;
}

int get(const engine::client_options& engine_options, const get_options& options) {
  const auto kind = kind_for(options.what);
  if (kind.empty()) {
    fmt::print(stderr, "error: unknown object type \"{}\" (schedules, backups, restores)\n",
               options.what);
    return 2;
  }
  std::vector<objects::object_source> sources;
  if (!options.objects_dir.empty()) {
    if (auto error = objects::load_directory(options.objects_dir, sources)) {
      fmt::print(stderr, "error: {}\n", *error);
      return 1;
    }
  } else {
    auto client = connect_or_report(engine_options);
    if (!client) {
      return 1;
    }
    auto listed = objects::list_object_configs(*client);
    if (!listed) {
      fmt::print(stderr, "error: listing object configs: {}\n", listed.error().describe());
      return 1;
    }
    sources = std::move(*listed);
  }
  const auto catalog = objects::build_catalog(std::move(sources));
  const auto now = now_seconds();
  std::vector<row> rows;
  for (const auto& e : catalog) {
    if (kind_of_entry(e) == kind) {
      rows.push_back(make_row(e, now));
    }
  }

  if (options.output == "yaml") {
    for (const auto& r : rows) {
      if (r.entry->object() != nullptr && r.entry->state == objects::standing::active) {
        fmt::print("---\n{}", api::encode_yaml(*r.entry->object()));
      }
    }
    return 0;
  }
  if (options.output == "json") {
    boost::json::array out;
    for (const auto& r : rows) {
      boost::json::object o{{"kind", kind},
                            {"name", r.name},
                            {"source", r.entry->source.name},
                            {"standing", objects::to_string(r.entry->state)},
                            {"phase", r.phase},
                            {"message", r.message}};
      if (!r.next_run.empty()) {
        o["nextRun"] = r.next_run;
      }
      if (const auto* s = std::get_if<api::backup_schedule>(r.entry->object())) {
        o["schedule"] = s->spec.schedule;
        o["timezone"] = s->spec.timezone;
      }
      if (const auto* b = std::get_if<api::backup>(r.entry->object())) {
        o["scheduleRef"] = b->spec.schedule_ref;
      }
      boost::json::array errors;
      for (const auto& err : r.entry->document.errors) {
        errors.push_back(boost::json::object{{"path", err.path},
                                             {"line", err.line},
                                             {"column", err.column},
                                             {"message", err.message}});
      }
      o["errors"] = std::move(errors);
      out.push_back(std::move(o));
    }
    fmt::print("{}\n", boost::json::serialize(out));
    return 0;
  }
  if (options.output != "table") {
    fmt::print(stderr, "error: unknown output format \"{}\" (table, json, yaml)\n", options.output);
    return 2;
  }

  std::vector<std::vector<std::string>> table;
  if (kind == "BackupSchedule") {
    table.push_back({"NAME", "SCHEDULE", "TIMEZONE", "STATUS", "NEXT RUN", "SOURCE", "MESSAGE"});
    for (const auto& r : rows) {
      const auto* s = std::get_if<api::backup_schedule>(r.entry->object());
      table.push_back({r.name, s != nullptr ? s->spec.schedule : "",
                       s != nullptr ? s->spec.timezone : "", r.phase,
                       r.next_run.empty() ? "-" : r.next_run, r.entry->source.name, r.message});
    }
  } else if (kind == "Backup") {
    table.push_back({"NAME", "SCHEDULE", "PHASE", "SOURCE", "MESSAGE"});
    for (const auto& r : rows) {
      const auto* b = std::get_if<api::backup>(r.entry->object());
      table.push_back({r.name, b != nullptr ? b->spec.schedule_ref : "", r.phase,
                       r.entry->source.name, r.message});
    }
  } else {
    table.push_back({"NAME", "FROM", "PHASE", "SOURCE", "MESSAGE"});
    for (const auto& r : rows) {
      const auto* x = std::get_if<api::restore>(r.entry->object());
      std::string from;
      if (x != nullptr) {
        if (x->spec.source) {
          from = std::string(api::destination_kind(x->spec.source->destination)) + " " +
                 x->spec.source->name;
        } else {
          from = x->spec.backup_ref ? *x->spec.backup_ref : x->spec.archive.value_or("");
        }
      }
      table.push_back({r.name, from, r.phase, r.entry->source.name, r.message});
    }
  }
  if (rows.empty()) {
    fmt::print(stderr, "no {} found\n", options.what);
    return 0;
  }
  print_table(std::move(table));
  return 0;
}

int apply(const engine::client_options& engine_options, const std::string& file) {
  std::string text;
  if (!read_file(file, text)) {
    fmt::print(stderr, "{}: cannot read the file\n", file);
    return 1;
  }
  const auto decoded = api::decode(text);
  if (!decoded.ok()) {
    print_errors(file, decoded.errors());
    fmt::print(stderr, "nothing applied: {} has errors\n", file);
    return 1;
  }
  const auto objects_in_file = decoded.objects();
  if (objects_in_file.empty()) {
    fmt::print(stderr, "{}: no objects\n", file);
    return 1;
  }
  auto client = connect_or_report(engine_options);
  if (!client) {
    return 1;
  }
  int failed = 0;
  for (const auto& object : objects_in_file) {
    // A single object keeps its text as written (comments, line numbers for
    // errors); several are stored one per config, re-encoded.
    const std::string data = objects_in_file.size() == 1 ? text : api::encode_yaml(object);
    const std::string name = objects::config_name_for(object, data);
    const std::string kind(api::kind_of(object));
    const auto& meta = api::metadata_of(object);
    auto created = client->create_config(name, data,
                                         {{std::string(objects::label::object), "true"},
                                          {std::string(objects::label::kind), kind},
                                          {std::string(objects::label::name), meta.name}});
    if (created) {
      fmt::print("{}/{} created (config {})\n", kind, meta.name, name);
    } else if (created.error().is(engine::errc::conflict)) {
      fmt::print("{}/{} unchanged (config {})\n", kind, meta.name, name);
    } else {
      fmt::print(stderr, "error: {}/{}: {}\n", kind, meta.name, created.error().describe());
      ++failed;
    }
  }
  return failed == 0 ? 0 : 1;
}

int sync_status(const engine::client_options& engine_options) {
  auto client = connect_or_report(engine_options);
  if (!client) {
    return 1;
  }
  auto listed = objects::list_object_configs(*client);
  if (!listed) {
    fmt::print(stderr, "error: listing object configs: {}\n", listed.error().describe());
    return 1;
  }
  const auto catalog = objects::build_catalog(std::move(*listed));
  const auto report = objects::sync_status(*client, catalog, now_seconds());
  fmt::print("{} object(s): {} status(es) written, {} unchanged\n", catalog.size(), report.written,
             report.unchanged);
  for (const auto& f : report.failures) {
    fmt::print(stderr, "error: {}\n", f);
  }
  return report.failures.empty() ? 0 : 1;
}

}  // namespace lifeboat::cli
