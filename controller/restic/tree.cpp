#include "controller/restic/tree.hpp"

#include <boost/json.hpp>

#include <array>
#include <ctime>

#include <sys/stat.h>

namespace lifeboat::restic {

namespace {

namespace json = boost::json;

error node_error(std::string_view where, std::size_t i, std::string_view field,
                 std::string_view problem) {
  return make_error(errc::invalid_format, std::string(where) + ": nodes[" + std::to_string(i) +
                                              "]: field \"" + std::string(field) + "\" " +
                                              std::string(problem));
}

json::value ids_to_json(const std::vector<object_id>& ids) {
  json::array a;
  a.reserve(ids.size());
  for (const object_id& id : ids) {
    a.emplace_back(to_hex(id));
  }
  return a;
}

}  // namespace

std::uint32_t go_file_mode(std::uint32_t st_mode) noexcept {
  std::uint32_t mode = st_mode & 0777U;
  switch (st_mode & S_IFMT) {
    case S_IFDIR:
      mode |= go_mode::dir;
      break;
    case S_IFLNK:
      mode |= go_mode::symlink;
      break;
    case S_IFBLK:
      mode |= go_mode::device;
      break;
    case S_IFCHR:
      mode |= go_mode::device | go_mode::char_device;
      break;
    case S_IFIFO:
      mode |= go_mode::named_pipe;
      break;
    case S_IFSOCK:
      mode |= go_mode::socket;
      break;
    default:
      break;
  }
  if ((st_mode & S_ISUID) != 0U) {
    mode |= go_mode::setuid;
  }
  if ((st_mode & S_ISGID) != 0U) {
    mode |= go_mode::setgid;
  }
  if ((st_mode & S_ISVTX) != 0U) {
    mode |= go_mode::sticky;
  }
  return mode;
}

std::string rfc3339_nano(std::int64_t seconds, std::int64_t nanoseconds) {
  const auto t = static_cast<std::time_t>(seconds);
  std::tm tm{};
  gmtime_r(&t, &tm);
  std::array<char, 40> text{};
  std::size_t n = std::strftime(text.data(), text.size(), "%Y-%m-%dT%H:%M:%S", &tm);
  std::string out(text.data(), n);
  if (nanoseconds != 0) {
    std::string frac = std::to_string(1000000000 + nanoseconds).substr(1);
    while (!frac.empty() && frac.back() == '0') {
      frac.pop_back();
    }
    out += "." + frac;
  }
  out += "Z";
  return out;
}

namespace {

/// Days from 1970-01-01 to the proleptic Gregorian date (era arithmetic: 400-year
/// cycles of 146097 days, years starting in March so that leap days come last).
std::int64_t days_from_civil(std::int64_t y, unsigned m, unsigned d) {
  y -= m <= 2 ? 1 : 0;
  const std::int64_t era = (y >= 0 ? y : y - 399) / 400;
  const auto yoe = static_cast<unsigned>(y - era * 400);
  const unsigned doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
  const unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return era * 146097 + static_cast<std::int64_t>(doe) - 719468;
}

}  // namespace

result<unix_time> parse_rfc3339(std::string_view text, std::string_view where) {
  auto bad = [&]() {
    return make_error(errc::invalid_format, std::string(where) + ": \"" + std::string(text) +
                                                "\" is not an RFC 3339 time");
  };
  std::size_t pos = 0;
  auto digits = [&](std::size_t count, unsigned& into) -> bool {
    into = 0;
    for (std::size_t i = 0; i < count; ++i, ++pos) {
      if (pos >= text.size() || text[pos] < '0' || text[pos] > '9') {
        return false;
      }
      into = into * 10 + static_cast<unsigned>(text[pos] - '0');
    }
    return true;
  };
  auto literal = [&](char c) -> bool {
    if (pos < text.size() && text[pos] == c) {
      ++pos;
      return true;
    }
    return false;
  };
  unsigned year = 0;
  unsigned month = 0;
  unsigned day = 0;
  unsigned hour = 0;
  unsigned minute = 0;
  unsigned second = 0;
  if (!digits(4, year) || !literal('-') || !digits(2, month) || !literal('-') || !digits(2, day) ||
      !(literal('T') || literal('t')) || !digits(2, hour) || !literal(':') || !digits(2, minute) ||
      !literal(':') || !digits(2, second)) {
    return bad();
  }
  if (month < 1 || month > 12 || day < 1 || day > 31 || hour > 23 || minute > 59 || second > 60) {
    return bad();
  }
  std::int64_t nanos = 0;
  if (literal('.')) {
    std::size_t count = 0;
    while (pos < text.size() && text[pos] >= '0' && text[pos] <= '9') {
      if (count < 9) {
        nanos = nanos * 10 + (text[pos] - '0');
      }
      ++count;
      ++pos;
    }
    if (count == 0) {
      return bad();
    }
    for (; count < 9; ++count) {
      nanos *= 10;
    }
  }
  std::int64_t offset = 0;
  if (!(literal('Z') || literal('z'))) {
    const bool minus = pos < text.size() && text[pos] == '-';
    if (!literal('+') && !literal('-')) {
      return bad();
    }
    unsigned oh = 0;
    unsigned om = 0;
    if (!digits(2, oh) || !literal(':') || !digits(2, om) || oh > 23 || om > 59) {
      return bad();
    }
    offset = (std::int64_t{oh} * 60 + om) * 60 * (minus ? -1 : 1);
  }
  if (pos != text.size()) {
    return bad();
  }
  const std::int64_t days = days_from_civil(year, month, day);
  return unix_time{
      days * 86400 + std::int64_t{hour} * 3600 + std::int64_t{minute} * 60 + second - offset,
      nanos};
}

std::string serialize_tree(const std::vector<node>& nodes) {
  json::array list;
  list.reserve(nodes.size());
  for (const node& n : nodes) {
    json::object o;
    o["name"] = n.name;
    o["type"] = n.type;
    o["mode"] = n.mode;
    o["mtime"] = n.mtime;
    o["atime"] = n.atime;
    o["ctime"] = n.ctime;
    o["uid"] = n.uid;
    o["gid"] = n.gid;
    o["user"] = n.user;
    o["group"] = n.group;
    o["inode"] = n.inode;
    o["device_id"] = n.device_id;
    if (n.size != 0) {
      o["size"] = n.size;
    }
    if (n.links != 0) {
      o["links"] = n.links;
    }
    if (!n.linktarget.empty()) {
      o["linktarget"] = n.linktarget;
    }
    if (n.device != 0) {
      o["device"] = n.device;
    }
    if (n.type == "file") {
      o["content"] = ids_to_json(n.content);
    } else {
      o["content"] = nullptr;
    }
    if (n.subtree) {
      o["subtree"] = to_hex(*n.subtree);
    }
    list.push_back(std::move(o));
  }
  json::object tree;
  tree["nodes"] = std::move(list);
  return json::serialize(tree) + "\n";
}

result<std::vector<node>> parse_tree(std::string_view text, std::string_view where) {
  boost::system::error_code ec;
  json::value v = json::parse(text, ec);
  if (ec || !v.is_object()) {
    return make_error(errc::invalid_format, std::string(where) + ": not a JSON object");
  }
  const json::value* nodes = v.as_object().if_contains("nodes");
  if (nodes == nullptr || !nodes->is_array()) {
    return make_error(errc::invalid_format,
                      std::string(where) + ": field \"nodes\" is missing or not an array");
  }
  std::vector<node> out;
  out.reserve(nodes->as_array().size());
  std::size_t i = 0;
  for (const json::value& item : nodes->as_array()) {
    if (!item.is_object()) {
      return node_error(where, i, "", "node is not an object");
    }
    const json::object& o = item.as_object();
    node n;
    auto str = [&](std::string_view field, std::string& into, bool required) -> result<void> {
      const json::value* f = o.if_contains(field);
      if (f == nullptr || f->is_null()) {
        if (required) {
          return node_error(where, i, field, "is missing");
        }
        return {};
      }
      if (!f->is_string()) {
        return node_error(where, i, field, "is not a string");
      }
      into = std::string(f->as_string());
      return {};
    };
    auto num = [&](std::string_view field, auto& into) -> result<void> {
      const json::value* f = o.if_contains(field);
      if (f == nullptr || f->is_null()) {
        return {};
      }
      using T = std::remove_reference_t<decltype(into)>;
      if (f->is_uint64()) {
        into = static_cast<T>(f->as_uint64());
      } else if (f->is_int64() && f->as_int64() >= 0) {
        into = static_cast<T>(f->as_int64());
      } else {
        return node_error(where, i, field, "is not a non-negative integer");
      }
      return {};
    };
    for (const auto& r :
         {str("name", n.name, true), str("type", n.type, true), str("mtime", n.mtime, false),
          str("atime", n.atime, false), str("ctime", n.ctime, false), str("user", n.user, false),
          str("group", n.group, false), str("linktarget", n.linktarget, false), num("mode", n.mode),
          num("uid", n.uid), num("gid", n.gid), num("inode", n.inode),
          num("device_id", n.device_id), num("size", n.size), num("links", n.links),
          num("device", n.device)}) {
      if (!r) {
        return r.error();
      }
    }
    const std::string field_where = std::string(where) + ": nodes[" + std::to_string(i) + "]";
    if (const json::value* c = o.if_contains("content"); c != nullptr && !c->is_null()) {
      if (!c->is_array()) {
        return node_error(where, i, "content", "is not an array");
      }
      for (const json::value& id : c->as_array()) {
        if (!id.is_string()) {
          return node_error(where, i, "content", "holds a non-string");
        }
        auto parsed = parse_object_id(id.as_string(), field_where + ".content");
        if (!parsed) {
          return parsed.error();
        }
        n.content.push_back(*parsed);
      }
    }
    if (const json::value* s = o.if_contains("subtree"); s != nullptr && !s->is_null()) {
      if (!s->is_string()) {
        return node_error(where, i, "subtree", "is not a string");
      }
      auto parsed = parse_object_id(s->as_string(), field_where + ".subtree");
      if (!parsed) {
        return parsed.error();
      }
      n.subtree = *parsed;
    }
    out.push_back(std::move(n));
    ++i;
  }
  return out;
}

}  // namespace lifeboat::restic
