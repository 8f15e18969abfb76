#include "api/template.hpp"

#include <algorithm>

namespace lifeboat::api {

namespace {

constexpr std::string_view open_mark = "{{";
constexpr std::string_view close_mark = "}}";

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) {
    s.remove_prefix(1);
  }
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) {
    s.remove_suffix(1);
  }
  return s;
}

bool known(std::string_view name) {
  const auto& names = template_placeholders();
  return std::find(names.begin(), names.end(), name) != names.end();
}

// One placeholder of a template: where it starts and ends (past its "}}"),
// and the name inside; `closed` false when no "}}" follows.
struct placeholder {
  std::size_t begin = 0;
  std::size_t end = 0;
  std::string_view name;
  bool closed = false;
};

// The next placeholder at or after `from`, if any.
std::optional<placeholder> next_placeholder(std::string_view text, std::size_t from) {
  const auto begin = text.find(open_mark, from);
  if (begin == std::string_view::npos) {
    return std::nullopt;
  }
  placeholder p;
  p.begin = begin;
  const auto close = text.find(close_mark, begin + open_mark.size());
  if (close == std::string_view::npos) {
    p.end = text.size();
    return p;
  }
  p.closed = true;
  p.end = close + close_mark.size();
  p.name = trim(text.substr(begin + open_mark.size(), close - begin - open_mark.size()));
  return p;
}

std::string known_list() {
  std::string out;
  for (const auto name : template_placeholders()) {
    out += out.empty() ? "" : ", ";
    out += name;
  }
  return out;
}

}  // namespace

const std::vector<std::string_view>& template_placeholders() {
  static const std::vector<std::string_view> names = {
      "kind",     "name",    "result",  "phase",        "reached", "schedule",
      "backup",   "restore", "source",  "targets",      "archive", "duration",
      "heldTime", "bytes",   "outcome", "destinations", "error"};
  return names;
}

std::optional<std::string> check_template(std::string_view text) {
  std::size_t from = 0;
  while (auto p = next_placeholder(text, from)) {
    if (!p->closed) {
      return "a {{ at offset " + std::to_string(p->begin) + " has no closing }}";
    }
    if (!known(p->name)) {
      // The name is cut: a template is a user's text, a message is one line.
      const std::string shown(p->name.substr(0, 40));
      return "unknown placeholder {{" + shown + "}}; known: " + known_list();
    }
    from = p->end;
  }
  return std::nullopt;
}

std::string render_template(std::string_view text,
                            const std::map<std::string, std::string, std::less<>>& values) {
  std::string out;
  std::size_t from = 0;
  while (auto p = next_placeholder(text, from)) {
    out.append(text.substr(from, p->begin - from));
    if (p->closed && known(p->name)) {
      if (const auto it = values.find(p->name); it != values.end()) {
        out += it->second;
      }
    } else {
      out.append(text.substr(p->begin, p->end - p->begin));
    }
    from = p->end;
  }
  out.append(text.substr(from));
  return out;
}

}  // namespace lifeboat::api
