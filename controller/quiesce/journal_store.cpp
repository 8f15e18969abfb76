#include "controller/quiesce/journal_store.hpp"

#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>

#include <fcntl.h>
#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <sstream>

namespace lifeboat::quiesce {

namespace json = boost::json;

namespace {

constexpr std::string_view run_label = "lifeboat.journal.run";
constexpr std::string_view entries_label = "lifeboat.journal";
constexpr std::string_view config_prefix = "lifeboat-journal.";

json::array entries_to_json(const journal& j) {
  json::array out;
  for (const auto& e : j.entries) {
    out.push_back(json::object{
        {"container", e.container_id}, {"service", e.service_id}, {"forceUpdate", e.force_update}});
  }
  return out;
}

class config_store final : public journal_store {
 public:
  explicit config_store(const engine::client& client) : client_(client) {}

  engine::result<journal> load(std::string_view run) override {
    auto config = client_.inspect_config(std::string(config_prefix) + std::string(run));
    if (!config) {
      if (config.error().is(engine::errc::not_found)) {
        return journal{std::string(run), {}};
      }
      return config.error();
    }
    return from_config(*config);
  }

  engine::result<std::vector<journal>> load_all() override {
    auto configs = client_.list_configs({{"label", {std::string(run_label)}}});
    if (!configs) {
      return configs.error();
    }
    std::vector<journal> out;
    for (const auto& c : *configs) {
      auto j = from_config(c);
      if (!j) {
        return j.error();
      }
      if (!j->entries.empty()) {
        out.push_back(std::move(*j));
      }
    }
    return out;
  }

  engine::result<void> save(const journal& j) override {
    const std::string name = std::string(config_prefix) + j.run;
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

 private:
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

class file_store final : public journal_store {
 public:
  explicit file_store(std::string path) : path_(std::move(path)) {}

  engine::result<journal> load(std::string_view run) override {
    auto all = read();
    if (!all) {
      return all.error();
    }
    if (const auto* entries = all->if_contains(run)) {
      return decode_entries(run, json::serialize(*entries));
    }
    return journal{std::string(run), {}};
  }

  engine::result<std::vector<journal>> load_all() override {
    auto all = read();
    if (!all) {
      return all.error();
    }
    std::vector<journal> out;
    for (const auto& [run, entries] : *all) {
      auto j = decode_entries(run, json::serialize(entries));
      if (!j) {
        return j.error();
      }
      if (!j->entries.empty()) {
        out.push_back(std::move(*j));
      }
    }
    return out;
  }

  engine::result<void> save(const journal& j) override {
    auto all = read();
    if (!all) {
      return all.error();
    }
    if (j.entries.empty()) {
      all->erase(j.run);
    } else {
      (*all)[j.run] = entries_to_json(j);
    }
    return write(*all);
  }

 private:
  engine::result<json::object> read() const {
    std::ifstream in(path_);
    if (!in) {
      return json::object{};  // no file yet: no journals
    }
    std::stringstream text;
    text << in.rdbuf();
    boost::system::error_code ec;
    auto v = json::parse(text.str(), ec);
    if (ec || !v.is_object()) {
      return engine::make_error(engine::errc::protocol_error,
                                path_ + ": not a lifeboat journal file");
    }
    return std::move(v.as_object());
  }

  engine::result<void> write(const json::object& all) const {
    const std::string temp = path_ + ".tmp";
    const std::string text = json::serialize(all);
    const int fd = ::open(temp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0) {
      return engine::make_error(engine::errc::server_error, "cannot write " + temp);
    }
    const bool ok = ::write(fd, text.data(), text.size()) == static_cast<ssize_t>(text.size()) &&
                    ::fsync(fd) == 0;
    ::close(fd);
    if (!ok || std::rename(temp.c_str(), path_.c_str()) != 0) {
      return engine::make_error(engine::errc::server_error, "cannot write " + path_);
    }
    return {};
  }

  std::string path_;
};

}  // namespace

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
