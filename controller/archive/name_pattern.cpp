#include "controller/archive/name_pattern.hpp"

#include <array>

namespace lifeboat::archive {

namespace {

// As api::expand_archive_name writes them, whatever the locale.
constexpr std::array<std::string_view, 7> weekday_names{"Sun", "Mon", "Tue", "Wed",
                                                        "Thu", "Fri", "Sat"};
constexpr std::array<std::string_view, 12> month_names{"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                                       "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};

bool is_digit(char c) { return c >= '0' && c <= '9'; }

bool is_node_char(char c) {
  return is_digit(c) || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '-' || c == '_';
}

}  // namespace

archive_name_pattern::archive_name_pattern(std::string_view name_template,
                                           std::string_view schedule_name,
                                           std::string_view extension)
    : extension_(extension) {
  auto literal = [&](std::string_view text) {
    if (tokens_.empty() || tokens_.back().k != kind::literal) {
      tokens_.push_back(token{kind::literal, {}});
    }
    tokens_.back().text += text;
  };
  auto digits = [&](int n) {
    for (int i = 0; i < n; ++i) {
      tokens_.push_back(token{kind::digits, {}});
    }
  };
  constexpr std::string_view placeholder = "{schedule}";
  for (std::size_t i = 0; i < name_template.size(); ++i) {
    const char c = name_template[i];
    if (name_template.substr(i).starts_with(placeholder)) {
      literal(schedule_name);
      i += placeholder.size() - 1;
      continue;
    }
    if (c != '%' || i + 1 == name_template.size()) {
      literal(std::string_view(&c, 1));
      continue;
    }
    const char conversion = name_template[++i];
    switch (conversion) {
      case 'Y':
        digits(4);
        break;
      case 'y':
      case 'm':
      case 'd':
      case 'H':
      case 'M':
      case 'S':
        digits(2);
        break;
      case 'j':
        digits(3);
        break;
      case 'e':
        tokens_.push_back(token{kind::space_or_digit, {}});
        digits(1);
        break;
      case 'a':
        tokens_.push_back(token{kind::weekday, {}});
        break;
      case 'b':
        tokens_.push_back(token{kind::month, {}});
        break;
      case 'F':
        digits(4);
        literal("-");
        digits(2);
        literal("-");
        digits(2);
        break;
      case '%':
        literal("%");
        break;
      default:  // copied as written by expand_archive_name
        literal(name_template.substr(i - 1, 2));
        break;
    }
  }
}

std::optional<std::string> archive_name_pattern::any_node_of(std::string_view name) const {
  auto one_of = [&](const auto& names) {
    for (std::string_view n : names) {
      if (name.starts_with(n)) {
        name.remove_prefix(n.size());
        return true;
      }
    }
    return false;
  };
  for (const token& t : tokens_) {
    switch (t.k) {
      case kind::literal:
        if (!name.starts_with(t.text)) {
          return std::nullopt;
        }
        name.remove_prefix(t.text.size());
        break;
      case kind::digits:
        if (name.empty() || !is_digit(name.front())) {
          return std::nullopt;
        }
        name.remove_prefix(1);
        break;
      case kind::space_or_digit:
        if (name.empty() || !(name.front() == ' ' || is_digit(name.front()))) {
          return std::nullopt;
        }
        name.remove_prefix(1);
        break;
      case kind::weekday:
        if (!one_of(weekday_names)) {
          return std::nullopt;
        }
        break;
      case kind::month:
        if (!one_of(month_names)) {
          return std::nullopt;
        }
        break;
    }
  }
  // What is left: the extension, or a node's name and the extension.
  if (!name.ends_with(extension_)) {
    return std::nullopt;
  }
  name.remove_suffix(extension_.size());
  if (name.empty()) {
    return std::string();
  }
  if (name.size() < 2 || name.front() != '.') {
    return std::nullopt;
  }
  name.remove_prefix(1);
  for (const char c : name) {
    if (!is_node_char(c)) {
      return std::nullopt;
    }
  }
  return std::string(name);
}

std::optional<std::string> archive_name_pattern::node_of(std::string_view file_name) const {
  auto node = any_node_of(file_name);
  if (node && only_node_ && *node != *only_node_) {
    return std::nullopt;
  }
  return node;
}

archive_name_pattern archive_name_pattern::of_node(std::string_view node) const {
  archive_name_pattern narrowed = *this;
  narrowed.only_node_ = std::string(node);
  return narrowed;
}

std::string node_file_name(std::string_view stem, std::string_view node,
                           std::string_view extension) {
  std::string name(stem);
  name += '.';
  for (const char c : node) {
    name += is_node_char(c) ? c : '_';
  }
  name += extension;
  return name;
}

std::string node_archive_of(std::string_view file_name, std::string_view node,
                            const std::vector<std::string>& nodes) {
  const auto tar = file_name.rfind(".tar");
  if (tar == std::string_view::npos) {
    return std::string(file_name);
  }
  auto stem = file_name.substr(0, tar);
  const auto extension = file_name.substr(tar);
  for (const auto& other : nodes) {
    // node_file_name() of an empty stem: ".<node>", made file-name safe.
    const auto suffix = node_file_name("", other, "");
    if (stem.size() > suffix.size() && stem.ends_with(suffix)) {
      stem.remove_suffix(suffix.size());
      break;
    }
  }
  return node_file_name(stem, node, extension);
}

}  // namespace lifeboat::archive
