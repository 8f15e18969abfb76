#include "controller/backup/retention.hpp"

#include <algorithm>

namespace lifeboat::backup {

namespace {

std::string escape(std::string_view text) {
  std::string out;
  for (const char c : text) {
    if (std::string_view(R"(\^$.|?*+()[]{}-)").find(c) != std::string_view::npos) {
      out += '\\';
    }
    out += c;
  }
  return out;
}

}  // namespace

std::regex archive_name_pattern(std::string_view name_template, std::string_view schedule_name,
                                std::string_view extension) {
  constexpr std::string_view schedule_field = "{schedule}";
  std::string re;
  for (std::size_t i = 0; i < name_template.size(); ++i) {
    if (name_template.substr(i).starts_with(schedule_field)) {
      re += escape(schedule_name);
      i += schedule_field.size() - 1;
      continue;
    }
    if (name_template[i] != '%' || i + 1 == name_template.size()) {
      re += escape(name_template.substr(i, 1));
      continue;
    }
    switch (name_template[++i]) {
      case 'Y':
        re += "\\d{4}";
        break;
      case 'm':
      case 'd':
      case 'H':
      case 'M':
      case 'S':
      case 'y':
        re += "\\d{2}";
        break;
      case 'j':
        re += "\\d{3}";
        break;
      case 'e':
        re += "[ \\d]\\d";
        break;
      case 'a':
      case 'b':
        re += "[A-Z][a-z]{2}";
        break;
      case 'F':
        re += "\\d{4}-\\d{2}-\\d{2}";
        break;
      case '%':
        re += "%";
        break;
      default:
        // Validation refuses other conversions; match the text literally.
        re += escape(name_template.substr(i - 1, 2));
        break;
    }
  }
  re += escape(extension);
  return std::regex(re, std::regex::ECMAScript);
}

std::vector<std::string> plan_retention(const std::vector<archive_file>& files,
                                        const std::regex& pattern,
                                        const std::optional<api::retention_spec>& retention,
                                        std::chrono::sys_seconds now) {
  if (!retention || (!retention->days && !retention->keep_last)) {
    return {};
  }
  std::vector<const archive_file*> ours;
  for (const auto& f : files) {
    if (std::regex_match(f.name, pattern)) {
      ours.push_back(&f);
    }
  }
  std::sort(ours.begin(), ours.end(), [](const archive_file* a, const archive_file* b) {
    return a->modified != b->modified ? a->modified > b->modified : a->name > b->name;
  });
  std::vector<std::string> doomed;
  for (std::size_t i = 1; i < ours.size(); ++i) {  // i = 0, the newest, always stays
    const bool kept_by_count =
        retention->keep_last && i < static_cast<std::size_t>(*retention->keep_last);
    const bool kept_by_age =
        retention->days && now - ours[i]->modified < std::chrono::days{*retention->days};
    if (!kept_by_count && !kept_by_age) {
      doomed.push_back(ours[i]->name);
    }
  }
  return doomed;
}

}  // namespace lifeboat::backup
