#include "controller/objects/swarm_objects.hpp"

#include <fmt/core.h>

#include <cctype>

namespace lifeboat::objects {

engine::result<std::vector<object_source>> list_object_configs(const engine::client& client) {
  auto configs = client.list_configs({{"label", {std::string(label::object)}}});
  if (!configs) {
    return configs.error();
  }
  std::vector<object_source> out;
  out.reserve(configs->size());
  for (auto& c : *configs) {
    out.push_back({c.id, c.version, c.name, c.created_at, c.config_labels, std::move(c.data)});
  }
  return out;
}

sync_report sync_status(const engine::client& client, const std::vector<catalog_entry>& catalog,
                        std::chrono::sys_seconds now) {
  constexpr int attempts = 5;
  sync_report report;
  for (const auto& entry : catalog) {
    if (entry.source.version == 0) {
      continue;  // a file: its status is not kept in labels
    }
    const auto status = desired_status(entry, now);
    if (!status) {
      continue;
    }
    label_map current = entry.source.labels;
    bool done = false;
    std::string last_error;
    for (int attempt = 0; attempt < attempts && !done; ++attempt) {
      const auto wanted = status_labels(current, *status, now);
      if (!wanted) {
        ++report.unchanged;
        done = true;
        break;
      }
      // Inspect right before writing: the update must carry the current
      // version and the config's spec exactly as the engine has it.
      auto config = client.inspect_config(entry.source.id);
      if (!config) {
        last_error = config.error().describe();
        if (config.error().is(engine::errc::not_found)) {
          done = true;  // removed meanwhile: nothing to report on
        }
        continue;
      }
      if (config->config_labels != current) {
        current = config->config_labels;
        continue;  // someone changed the labels: plan again from what is there
      }
      auto written = client.update_config_labels(*config, *wanted);
      if (written) {
        ++report.written;
        done = true;
      } else {
        last_error = written.error().describe();
        if (!written.error().is(engine::errc::conflict)) {
          break;
        }
      }
    }
    if (!done) {
      report.failures.push_back(entry.source.name + ": " + last_error);
    }
  }
  return report;
}

engine::result<void> update_labels(const engine::client& client, const std::string& id,
                                   const std::function<void(label_map&)>& change) {
  constexpr int attempts = 5;
  engine::error last = engine::make_error(engine::errc::conflict, "no attempt made");
  for (int attempt = 0; attempt < attempts; ++attempt) {
    auto config = client.inspect_config(id);
    if (!config) {
      return config.error();
    }
    label_map labels = config->config_labels;
    change(labels);
    if (labels == config->config_labels) {
      return {};
    }
    auto written = client.update_config_labels(*config, labels);
    if (written || !written.error().is(engine::errc::conflict)) {
      return written;
    }
    last = written.error();
  }
  return last;
}

std::string config_name_for(const api::object& object, std::string_view text) {
  // FNV-1a: stable across builds and platforms, which std::hash is not.
  std::uint64_t hash = 14695981039346656037ULL;
  for (const char c : text) {
    hash ^= static_cast<unsigned char>(c);
    hash *= 1099511628211ULL;
  }
  std::string kind(api::kind_of(object));
  for (auto& c : kind) {
    c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  }
  const std::string suffix = fmt::format(".{}.{:08x}", kind, hash & 0xFFFFFFFFULL);
  std::string name = api::metadata_of(object).name;
  constexpr std::size_t max_config_name = 64;
  if (name.size() + suffix.size() > max_config_name) {
    name.resize(max_config_name - suffix.size());
  }
  return name + suffix;
}

}  // namespace lifeboat::objects
