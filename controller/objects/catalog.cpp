#include "controller/objects/catalog.hpp"

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <tuple>

namespace lifeboat::objects {

namespace {

// "2026-11-25T15:05:36.5Z" -> "2026-11-25T15:05:36.500000000Z": the engine
// trims trailing zeros of the fraction, so raw strings do not sort by time.
std::string normalise_timestamp(std::string_view t) {
  const auto dot = t.find('.');
  const auto end = t.find_first_of("Z+-", t.find('T') == std::string_view::npos ? 0 : t.find('T'));
  std::string seconds(t.substr(0, dot != std::string_view::npos ? dot : end));
  std::string fraction;
  if (dot != std::string_view::npos) {
    fraction =
        std::string(t.substr(dot + 1, end == std::string_view::npos ? t.npos : end - dot - 1));
  }
  fraction.resize(9, '0');
  return seconds + "." + fraction;
}

std::string kind_of_document(const catalog_entry& e) {
  if (const auto* o = e.object()) {
    return std::string(api::kind_of(*o));
  }
  return e.document.kind;
}

std::string name_of_document(const catalog_entry& e) {
  if (const auto* o = e.object()) {
    return api::metadata_of(*o).name;
  }
  return e.document.name;
}

}  // namespace

std::string_view to_string(standing s) {
  switch (s) {
    case standing::active:
      return "Active";
    case standing::superseded:
      return "Superseded";
    case standing::invalid:
      return "Invalid";
  }
  return "Invalid";
}

int compare_timestamps(std::string_view a, std::string_view b) {
  return normalise_timestamp(a).compare(normalise_timestamp(b));
}

std::string format_utc(std::chrono::sys_seconds t) {
  const auto days = std::chrono::floor<std::chrono::days>(t);
  const std::chrono::year_month_day ymd(days);
  const std::chrono::hh_mm_ss hms(t - days);
  char buf[32];
  std::snprintf(buf, sizeof buf, "%04d-%02u-%02uT%02d:%02d:%02dZ", static_cast<int>(ymd.year()),
                static_cast<unsigned>(ymd.month()), static_cast<unsigned>(ymd.day()),
                static_cast<int>(hms.hours().count()), static_cast<int>(hms.minutes().count()),
                static_cast<int>(hms.seconds().count()));
  return buf;
}

std::string catalog_entry::error_summary() const {
  std::string out;
  for (const auto& e : document.errors) {
    if (!out.empty()) {
      out += "; ";
    }
    out += api::format_error(e);
  }
  return out;
}

std::vector<catalog_entry> build_catalog(std::vector<object_source> sources) {
  std::vector<catalog_entry> entries;
  entries.reserve(sources.size());
  for (auto& source : sources) {
    catalog_entry entry;
    auto decoded = api::decode(source.data);
    entry.source = std::move(source);
    if (decoded.documents.size() == 1) {
      entry.document = std::move(decoded.documents.front());
    } else if (decoded.documents.empty()) {
      entry.document.errors.push_back({"", 0, 0, "holds no object"});
    } else {
      // One object per config: its status labels describe that one object.
      entry.document = std::move(decoded.documents.front());
      entry.document.value.reset();
      entry.document.errors.push_back(
          {"", decoded.documents[1].line, 1,
           "holds " + std::to_string(decoded.documents.size()) +
               " documents; a config or file entry holds exactly one object"});
    }
    entry.state = entry.document.value ? standing::active : standing::invalid;
    entries.push_back(std::move(entry));
  }

  // Kind, name, newest first; ties (same creation time) broken by ID.
  std::sort(entries.begin(), entries.end(), [](const catalog_entry& a, const catalog_entry& b) {
    const auto ka = std::make_tuple(kind_of_document(a), name_of_document(a));
    const auto kb = std::make_tuple(kind_of_document(b), name_of_document(b));
    if (ka != kb) {
      return ka < kb;
    }
    const int c = compare_timestamps(a.source.created_at, b.source.created_at);
    return c != 0 ? c > 0 : a.source.id > b.source.id;
  });

  // Within each (kind, name) group, the first valid entry is in force.
  for (std::size_t begin = 0; begin < entries.size();) {
    std::size_t end = begin + 1;
    while (end < entries.size() &&
           kind_of_document(entries[end]) == kind_of_document(entries[begin]) &&
           name_of_document(entries[end]) == name_of_document(entries[begin])) {
      ++end;
    }
    const catalog_entry* winner = nullptr;
    std::string newer_invalid;
    for (std::size_t i = begin; i < end; ++i) {
      auto& e = entries[i];
      if (e.state == standing::invalid) {
        if (winner == nullptr && newer_invalid.empty()) {
          newer_invalid = e.source.name;
        }
        continue;
      }
      if (winner == nullptr) {
        winner = &e;
        if (!newer_invalid.empty()) {
          e.note = "a newer version (" + newer_invalid + ") is invalid; this one stays in force";
        }
      } else {
        e.state = standing::superseded;
        e.superseded_by = winner->source.name;
      }
    }
    begin = end;
  }
  return entries;
}

std::optional<std::string> load_directory(const std::string& dir, std::vector<object_source>& out) {
  namespace fs = std::filesystem;
  std::error_code ec;
  fs::directory_iterator it(dir, ec);
  if (ec) {
    return "cannot read " + dir + ": " + ec.message();
  }
  std::vector<fs::path> files;
  for (const auto& entry : it) {
    const auto ext = entry.path().extension();
    if (entry.is_regular_file(ec) && (ext == ".yaml" || ext == ".yml")) {
      files.push_back(entry.path());
    }
  }
  std::sort(files.begin(), files.end());
  for (const auto& path : files) {
    std::ifstream in(path, std::ios::binary);
    std::stringstream text;
    text << in.rdbuf();
    if (!in && !in.eof()) {
      return "cannot read " + path.string();
    }
    const auto mtime = fs::last_write_time(path, ec);
    const auto sys = std::chrono::file_clock::to_sys(mtime);
    const std::string created = format_utc(std::chrono::floor<std::chrono::seconds>(sys));
    // Split into one source per document so each object is found on its own;
    // the decoder reports positions relative to the document's text, so keep
    // the preceding lines blank to preserve line numbers.
    const std::string all = text.str();
    const auto documents = api::decode(all).documents;
    if (documents.size() <= 1) {
      out.push_back({path.string(), 0, path.string(), created, {}, all});
      continue;
    }
    std::vector<std::size_t> starts;
    for (const auto& d : documents) {
      starts.push_back(static_cast<std::size_t>(std::max(d.line, 1)));
    }
    std::vector<std::string> lines;
    std::istringstream split(all);
    for (std::string line; std::getline(split, line);) {
      lines.push_back(line);
    }
    for (std::size_t i = 0; i < starts.size(); ++i) {
      const std::size_t first = starts[i];
      const std::size_t last = i + 1 < starts.size() ? starts[i + 1] - 1 : lines.size();
      std::string doc(first - 1, '\n');
      for (std::size_t l = first; l <= last && l <= lines.size(); ++l) {
        const auto& line = lines[l - 1];
        // The separator of the next document belongs to it, not to this one.
        if (l != first && (line == "---" || line.starts_with("--- "))) {
          break;
        }
        doc += line;
        doc += '\n';
      }
      out.push_back(
          {path.string() + "#" + std::to_string(i), 0, path.string(), created, {}, std::move(doc)});
    }
  }
  return std::nullopt;
}

}  // namespace lifeboat::objects
