#include "controller/quiesce/journal_store.hpp"

#include "api/labels.hpp"
#include "api/validate.hpp"

#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <charconv>
#include <cstdio>
#include <fstream>
#include <sstream>

namespace lifeboat::quiesce {

namespace json = boost::json;

namespace {

constexpr std::string_view run_label = api::label::journal_run;
constexpr std::string_view entries_label = api::label::journal;
constexpr std::string_view config_prefix = "lifeboat-journal.";

constexpr std::string_view owner_prefix = "lifeboat-run.";
constexpr std::string_view owner_run_label = api::label::owner_run;
constexpr std::string_view owner_label = api::label::owner;
constexpr std::string_view heartbeat_label = api::label::owner_heartbeat;
constexpr std::string_view expiry_label = api::label::owner_expiry;

using std::chrono::milliseconds;
using std::chrono::system_clock;

std::int64_t unix_ms(system_clock::time_point t) {
  return std::chrono::duration_cast<milliseconds>(t.time_since_epoch()).count();
}

// A decimal count of milliseconds; 0 when unreadable, which makes a record
// count as expired rather than alive forever.
std::int64_t parse_ms(std::string_view text) {
  std::int64_t value = 0;
  const char* const end = text.data() + text.size();
  const auto [ptr, ec] = std::from_chars(text.data(), end, value);
  return ec == std::errc{} && ptr == end ? value : 0;
}

run_owner owner_from(std::string run, std::string owner, std::int64_t heartbeat_ms,
                     std::int64_t expiry_ms) {
  return {std::move(run), std::move(owner), system_clock::time_point{milliseconds{heartbeat_ms}},
          milliseconds{expiry_ms}};
}

engine::error owned_by_another(const run_owner& o, std::string_view other) {
  return engine::make_error(engine::errc::conflict, "run " + o.run + " is owned by " +
                                                        std::string(other) + ", not by " + o.owner);
}

engine::error record_gone(std::string_view run) {
  return engine::make_error(
      engine::errc::not_found,
      "the ownership record of run " + std::string(run) + " is gone: recovery released the run");
}

json::array entries_to_json(const journal& j) {
  json::array out;
  for (const auto& e : j.entries) {
    json::object o{
        {"container", e.container_id}, {"service", e.service_id}, {"forceUpdate", e.force_update}};
    if (e.no_restart) {
      // Written only when set: a journal without it reads as before.
      o["noRestart"] = true;
    }
    out.push_back(std::move(o));
  }
  return out;
}

class config_store final : public journal_store {
 public:
  explicit config_store(const engine::client& client) : client_(client) {}

  engine::result<journal> load(std::string_view run) override {
    auto config = client_.inspect_config(journal_config_name(run));
    if (!config) {
      if (config.error().is(engine::errc::not_found)) {
        return journal{std::string(run), {}};
      }
      return config.error();
    }
    return from_config(*config);
  }

  engine::result<std::vector<journal>> load_all(std::vector<std::string>& skipped) override {
    auto configs = client_.list_configs({{"label", {std::string(run_label)}}});
    if (!configs) {
      return configs.error();
    }
    std::vector<journal> out;
    for (const auto& c : *configs) {
      auto j = from_config(c);
      if (!j) {
        skipped.push_back("journal config " + c.name + " skipped: " + j.error().describe());
        continue;
      }
      if (c.name != journal_config_name(j->run)) {
        skipped.push_back("journal config " + c.name + " skipped: it names run " + j->run +
                          ", whose journal is " + journal_config_name(j->run));
        continue;
      }
      if (!j->entries.empty()) {
        out.push_back(std::move(*j));
      }
    }
    return out;
  }

  engine::result<void> save(const journal& j) override {
    const std::string name = journal_config_name(j.run);
    if (j.entries.empty()) {
      auto removed = client_.remove_config(name);
      if (!removed && !removed.error().is(engine::errc::not_found)) {
        return removed.error();
      }
      return {};
    }
    const engine::labels labels{{std::string(run_label), j.run},
                                {std::string(entries_label), encode_entries(j)}};
    auto current = client_.inspect_config(name);
    if (!current) {
      if (!current.error().is(engine::errc::not_found)) {
        return current.error();
      }
      auto created = client_.create_config(name, "lifeboat journal of run " + j.run + "\n", labels);
      if (!created) {
        return created.error();
      }
      return {};
    }
    return client_.update_config_labels(*current, labels);
  }

  engine::result<void> claim_run(const run_owner& o) override {
    const std::string name = run_record_config_name(o.run);
    auto current = client_.inspect_config(name);
    if (!current) {
      if (!current.error().is(engine::errc::not_found)) {
        return current.error();
      }
      auto created = client_.create_config(name, "lifeboat ownership record of run " + o.run + "\n",
                                           labels(o));
      if (created) {
        return {};
      }
      if (!created.error().is(engine::errc::conflict)) {
        return created.error();
      }
      current = client_.inspect_config(name);  // created in between: whose is it?
      if (!current) {
        return current.error();
      }
    }
    return update_owned(*current, o);
  }

  engine::result<void> renew_run(const run_owner& o) override {
    auto current = client_.inspect_config(run_record_config_name(o.run));
    if (!current) {
      return current.error().is(engine::errc::not_found) ? record_gone(o.run) : current.error();
    }
    return update_owned(*current, o);
  }

  engine::result<void> drop_run(std::string_view run) override {
    auto removed = client_.remove_config(run_record_config_name(run));
    if (!removed && !removed.error().is(engine::errc::not_found)) {
      return removed.error();
    }
    return {};
  }

  engine::result<std::vector<run_owner>> load_owners(std::vector<std::string>& skipped) override {
    auto configs = client_.list_configs({{"label", {std::string(owner_run_label)}}});
    if (!configs) {
      return configs.error();
    }
    std::vector<run_owner> out;
    for (const auto& c : *configs) {
      const auto run = label(c, owner_run_label);
      if (c.name != run_record_config_name(run)) {
        skipped.push_back("ownership record " + c.name + " skipped: it names run " + run +
                          ", whose record is " + run_record_config_name(run));
        continue;
      }
      out.push_back(owner_from(label(c, owner_run_label), label(c, owner_label),
                               parse_ms(label(c, heartbeat_label)),
                               parse_ms(label(c, expiry_label))));
    }
    return out;
  }

 private:
  static std::string label(const engine::config& c, std::string_view key) {
    const auto it = c.config_labels.find(std::string(key));
    return it == c.config_labels.end() ? std::string() : it->second;
  }

  static engine::labels labels(const run_owner& o) {
    return {{std::string(owner_run_label), o.run},
            {std::string(owner_label), o.owner},
            {std::string(heartbeat_label), std::to_string(unix_ms(o.heartbeat))},
            {std::string(expiry_label), std::to_string(o.expiry.count())}};
  }

  // The record's labels become `o`'s, if the record is o.owner's. A version
  // conflict is returned as is: only the owner writes a record's labels, so
  // it is a retry of the owner's own write.
  engine::result<void> update_owned(const engine::config& current, const run_owner& o) {
    const auto owner = label(current, owner_label);
    if (owner != o.owner) {
      return owned_by_another(o, owner);
    }
    return client_.update_config_labels(current, labels(o));
  }

  static engine::result<journal> from_config(const engine::config& c) {
    const auto run = c.config_labels.find(std::string(run_label));
    const auto entries = c.config_labels.find(std::string(entries_label));
    if (run == c.config_labels.end()) {
      return engine::make_error(engine::errc::protocol_error,
                                "journal config " + c.name + " has no " + std::string(run_label));
    }
    if (entries == c.config_labels.end()) {
      return journal{run->second, {}};
    }
    return decode_entries(run->second, entries->second);
  }

  const engine::client& client_;
};

// An exclusive flock on a file, held for the object's lifetime.
class file_lock {
 public:
  explicit file_lock(const std::string& path)
      : fd_(::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600)) {
    if (fd_ >= 0 && ::flock(fd_, LOCK_EX) != 0) {
      ::close(fd_);
      fd_ = -1;
    }
  }
  ~file_lock() {
    if (fd_ >= 0) {
      ::close(fd_);  // releases the lock
    }
  }
  file_lock(const file_lock&) = delete;
  file_lock& operator=(const file_lock&) = delete;

  bool locked() const { return fd_ >= 0; }

 private:
  int fd_;
};

class file_store final : public journal_store {
 public:
  explicit file_store(std::string path)
      : path_(std::move(path)), owners_path_(path_ + ".owners"), lock_path_(path_ + ".lock") {}

  engine::result<journal> load(std::string_view run) override {
    auto all = read(path_);
    if (!all) {
      return all.error();
    }
    if (const auto* entries = all->if_contains(run)) {
      return decode_entries(run, json::serialize(*entries));
    }
    return journal{std::string(run), {}};
  }

  engine::result<std::vector<journal>> load_all(std::vector<std::string>& skipped) override {
    auto all = read(path_);
    if (!all) {
      return all.error();
    }
    std::vector<journal> out;
    for (const auto& [run, entries] : *all) {
      auto j = decode_entries(run, json::serialize(entries));
      if (!j) {
        skipped.push_back("journal of run " + std::string(run) + " in " + path_ +
                          " skipped: " + j.error().describe());
        continue;
      }
      if (!j->entries.empty()) {
        out.push_back(std::move(*j));
      }
    }
    return out;
  }

  engine::result<void> save(const journal& j) override {
    return modify(path_, [&](json::object& all) -> engine::result<void> {
      if (j.entries.empty()) {
        all.erase(j.run);
      } else {
        all[j.run] = entries_to_json(j);
      }
      return {};
    });
  }

  engine::result<void> claim_run(const run_owner& o) override {
    return modify(owners_path_, [&](json::object& all) -> engine::result<void> {
      if (const auto* current = all.if_contains(o.run)) {
        if (const auto owner = owner_of(*current); owner != o.owner) {
          return owned_by_another(o, owner);
        }
      }
      all[o.run] = to_json(o);
      return {};
    });
  }

  engine::result<void> renew_run(const run_owner& o) override {
    return modify(owners_path_, [&](json::object& all) -> engine::result<void> {
      const auto* current = all.if_contains(o.run);
      if (current == nullptr) {
        return record_gone(o.run);
      }
      if (const auto owner = owner_of(*current); owner != o.owner) {
        return owned_by_another(o, owner);
      }
      all[o.run] = to_json(o);
      return {};
    });
  }

  engine::result<void> drop_run(std::string_view run) override {
    return modify(owners_path_, [&](json::object& all) -> engine::result<void> {
      all.erase(run);
      return {};
    });
  }

  engine::result<std::vector<run_owner>> load_owners(
      std::vector<std::string>& /*skipped: keyed by run, a record cannot name another*/) override {
    auto all = read(owners_path_);
    if (!all) {
      return all.error();
    }
    std::vector<run_owner> out;
    for (const auto& [run, record] : *all) {
      const auto* o = record.if_object();
      const auto ms = [&](std::string_view key) -> std::int64_t {
        const auto* v = o != nullptr ? o->if_contains(key) : nullptr;
        return v != nullptr && v->is_int64() ? v->as_int64() : 0;
      };
      out.push_back(owner_from(std::string(run), owner_of(record), ms("heartbeat"), ms("expiry")));
    }
    return out;
  }

 private:
  static json::object to_json(const run_owner& o) {
    return {{"owner", o.owner}, {"heartbeat", unix_ms(o.heartbeat)}, {"expiry", o.expiry.count()}};
  }

  static std::string owner_of(const json::value& record) {
    const auto* o = record.if_object();
    const auto* owner = o != nullptr ? o->if_contains("owner") : nullptr;
    return owner != nullptr && owner->is_string() ? std::string(owner->as_string()) : "";
  }

  // Reads `path`, lets `change` edit it, writes it back, all under the lock,
  // so that a concurrent writer (another process, or this process's
  // heartbeat) is never lost. Nothing is written when `change` fails.
  template <class Change>
  engine::result<void> modify(const std::string& path, Change change) const {
    const file_lock lock(lock_path_);
    if (!lock.locked()) {
      return engine::make_error(engine::errc::server_error, "cannot lock " + lock_path_);
    }
    auto all = read(path);
    if (!all) {
      return all.error();
    }
    if (auto changed = change(*all); !changed) {
      return changed;
    }
    return write(path, *all);
  }

  static engine::result<json::object> read(const std::string& path) {
    std::ifstream in(path);
    if (!in) {
      return json::object{};  // no file yet: no journals
    }
    std::stringstream text;
    text << in.rdbuf();
    boost::system::error_code ec;
    auto v = json::parse(text.str(), ec);
    if (ec || !v.is_object()) {
      return engine::make_error(engine::errc::protocol_error,
                                path + ": not a lifeboat journal file");
    }
    return std::move(v.as_object());
  }

  static engine::result<void> write(const std::string& path, const json::object& all) {
    const std::string temp = path + ".tmp";
    const std::string text = json::serialize(all);
    const int fd = ::open(temp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0) {
      return engine::make_error(engine::errc::server_error, "cannot write " + temp);
    }
    const bool ok = ::write(fd, text.data(), text.size()) == static_cast<ssize_t>(text.size()) &&
                    ::fsync(fd) == 0;
    ::close(fd);
    if (!ok || std::rename(temp.c_str(), path.c_str()) != 0) {
      return engine::make_error(engine::errc::server_error, "cannot write " + path);
    }
    return {};
  }

  std::string path_;
  std::string owners_path_;
  std::string lock_path_;
};

}  // namespace

namespace {

// `prefix` + `run` when Swarm takes that as a config name (at most 64
// characters); else cut to fit with "-" and 8 hex digits of a hash of the
// whole run name, so that runs whose names share a long start keep configs
// of their own. The run's full name is in the config's labels either way.
std::string config_name(std::string_view prefix, std::string_view run) {
  if (prefix.size() + run.size() <= api::max_config_name_length) {
    return std::string(prefix) + std::string(run);
  }
  // FNV-1a: the same in every build, as names must be across upgrades.
  std::uint64_t hash = 14695981039346656037ULL;
  for (const char c : run) {
    hash ^= static_cast<unsigned char>(c);
    hash *= 1099511628211ULL;
  }
  char suffix_text[16];
  std::snprintf(suffix_text, sizeof suffix_text, "-%08llx",
                static_cast<unsigned long long>(hash & 0xFFFFFFFFULL));
  const std::string suffix = suffix_text;
  const std::size_t kept = api::max_config_name_length - prefix.size() - suffix.size();
  return std::string(prefix) + std::string(run.substr(0, kept)) + suffix;
}

}  // namespace

std::string journal_config_name(std::string_view run) { return config_name(config_prefix, run); }

std::string run_record_config_name(std::string_view run) { return config_name(owner_prefix, run); }

std::string encode_entries(const journal& j) { return json::serialize(entries_to_json(j)); }

engine::result<journal> decode_entries(std::string_view run, std::string_view text) {
  boost::system::error_code ec;
  const auto v = json::parse(text, ec);
  if (ec || !v.is_array()) {
    return engine::make_error(engine::errc::protocol_error,
                              "journal of run " + std::string(run) + " is not a JSON array");
  }
  journal j{std::string(run), {}};
  for (const auto& item : v.as_array()) {
    const auto* o = item.if_object();
    if (o == nullptr || !o->contains("container") || !(*o).at("container").is_string()) {
      return engine::make_error(engine::errc::protocol_error,
                                "journal of run " + std::string(run) + " has a malformed entry");
    }
    reconcilers::journal_entry e;
    e.container_id = std::string(o->at("container").as_string());
    if (const auto* s = o->if_contains("service"); s != nullptr && s->is_string()) {
      e.service_id = std::string(s->as_string());
    }
    if (const auto* f = o->if_contains("forceUpdate"); f != nullptr) {
      if (f->is_uint64()) {
        e.force_update = f->as_uint64();
      } else if (f->is_int64() && f->as_int64() >= 0) {
        e.force_update = static_cast<std::uint64_t>(f->as_int64());
      }
    }
    if (const auto* n = o->if_contains("noRestart"); n != nullptr) {
      // Guessing would either restart what must stay stopped or the reverse.
      if (!n->is_bool()) {
        return engine::make_error(engine::errc::protocol_error,
                                  "journal of run " + std::string(run) +
                                      " has an entry whose noRestart is not a boolean");
      }
      e.no_restart = n->as_bool();
    }
    j.entries.push_back(std::move(e));
  }
  return j;
}

std::unique_ptr<journal_store> make_config_journal_store(const engine::client& client) {
  return std::make_unique<config_store>(client);
}

std::unique_ptr<journal_store> make_file_journal_store(std::string path) {
  return std::make_unique<file_store>(std::move(path));
}

}  // namespace lifeboat::quiesce
