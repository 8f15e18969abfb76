#include "api/decode.hpp"
#include "api/overloaded.hpp"

#include <yaml-cpp/emitter.h>
#include <yaml-cpp/emittermanip.h>
#include <yaml-cpp/eventhandler.h>
#include <yaml-cpp/exceptions.h>
#include <yaml-cpp/mark.h>
#include <yaml-cpp/parser.h>

#include <algorithm>
#include <array>
#include <cctype>
#include <charconv>
#include <climits>
#include <deque>
#include <exception>
#include <initializer_list>
#include <sstream>
#include <unordered_map>
#include <unordered_set>

#include "api/duration.hpp"
#include "api/template.hpp"
#include "api/validate.hpp"

namespace lifeboat::api {

namespace {

// ---------------------------------------------------------------------------
// A YAML document as a tree that keeps every node's position. yaml-cpp's own
// YAML::Node cannot be built incrementally per document with marks through its
// public API, and YAML::LoadAll loses every document when one has a syntax
// error; parser events into this small tree avoid both.

struct node {
  enum class type { null, scalar, sequence, map };
  type kind = type::null;
  YAML::Mark mark;
  bool plain = false;  // a scalar written without quotes and without a tag
  std::string text;    // the scalar's value
  // The items of a sequence; for a map, its keys and values alternating.
  std::vector<const node*> children;
};

// Builds the tree of one document from parser events. Nodes live as long as
// the builder. An alias is the anchored node itself, so the tree may share
// nodes or even contain cycles (`&a [*a]`): walk it only by the schema, whose
// depth is bounded, never generically.
class tree_builder final : public YAML::EventHandler {
 public:
  const node* root() const { return root_; }
  const YAML::Mark& start() const { return start_; }

  void OnDocumentStart(const YAML::Mark& mark) override { start_ = mark; }
  void OnDocumentEnd() override {}

  void OnNull(const YAML::Mark& mark, YAML::anchor_t anchor) override {
    attach(make(node::type::null, mark, anchor));
  }

  void OnAlias(const YAML::Mark& mark, YAML::anchor_t anchor) override {
    const auto it = anchors_.find(anchor);
    if (it == anchors_.end()) {
      // The parser refuses undefined aliases before this; stay total anyway.
      attach(make(node::type::null, mark, YAML::NullAnchor));
      return;
    }
    attach(*it->second);
  }

  void OnScalar(const YAML::Mark& mark, const std::string& tag, YAML::anchor_t anchor,
                const std::string& value) override {
    node& n = make(node::type::scalar, mark, anchor);
    n.plain = tag == "?";  // yaml-cpp's non-specific tag of plain scalars
    n.text = value;
    attach(n);
  }

  void OnSequenceStart(const YAML::Mark& mark, const std::string&, YAML::anchor_t anchor,
                       YAML::EmitterStyle::value) override {
    node& n = make(node::type::sequence, mark, anchor);
    attach(n);
    open_.push_back(&n);
  }
  void OnSequenceEnd() override { close(); }

  void OnMapStart(const YAML::Mark& mark, const std::string&, YAML::anchor_t anchor,
                  YAML::EmitterStyle::value) override {
    node& n = make(node::type::map, mark, anchor);
    attach(n);
    open_.push_back(&n);
  }
  void OnMapEnd() override { close(); }

 private:
  node& make(node::type kind, const YAML::Mark& mark, YAML::anchor_t anchor) {
    node& n = nodes_.emplace_back();
    n.kind = kind;
    n.mark = mark;
    if (anchor != YAML::NullAnchor) {
      anchors_[anchor] = &n;
    }
    return n;
  }

  void attach(const node& n) {
    if (open_.empty()) {
      root_ = &n;
    } else {
      open_.back()->children.push_back(&n);
    }
  }

  void close() {
    if (!open_.empty()) {
      open_.pop_back();
    }
  }

  std::deque<node> nodes_;  // a deque: adding nodes never moves the others
  std::vector<node*> open_;
  std::unordered_map<YAML::anchor_t, const node*> anchors_;
  const node* root_ = nullptr;
  YAML::Mark start_ = YAML::Mark::null_mark();
};

// ---------------------------------------------------------------------------
// Error collection and paths.

// Marks are 0-based and null marks are -1, so +1 gives 1-based positions and
// 0 for "unknown".
class decoder {
 public:
  void fail(const std::string& path, const YAML::Mark& mark, std::string message) {
    errors_.push_back({path, mark.line + 1, mark.column + 1, std::move(message)});
  }

  void check(const std::optional<std::string>& error, const std::string& path,
             const YAML::Mark& mark) {
    if (error) {
      fail(path, mark, *error);
    }
  }

  std::size_t error_count() const { return errors_.size(); }
  std::vector<decode_error>& errors() { return errors_; }

 private:
  std::vector<decode_error> errors_;
};

bool is_identifier(std::string_view key) {
  return !key.empty() && std::all_of(key.begin(), key.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
           c == '-';
  });
}

// `path.key` for keys that read as identifiers, otherwise `path["key"]` so that
// keys with dots or odd characters (label keys) stay unambiguous.
std::string child_path(const std::string& path, std::string_view key) {
  if (!is_identifier(key)) {
    return path + "[" + quote(key) + "]";
  }
  return path.empty() ? std::string{key} : path + "." + std::string{key};
}

std::string item_path(const std::string& path, std::size_t index) {
  return path + "[" + std::to_string(index) + "]";
}

// What a node is, for "expected X, got Y".
std::string describe(const node& n) {
  switch (n.kind) {
    case node::type::null:
      return "null";
    case node::type::scalar:
      return n.plain ? quote(n.text) : "the string " + quote(n.text);
    case node::type::sequence:
      return "a list";
    case node::type::map:
      return "a map";
  }
  return "null";  // unreachable: every type is handled above
}

bool expect(decoder& d, const node& n, node::type kind, const std::string& path) {
  if (n.kind == kind) {
    return true;
  }
  d.fail(path, n.mark,
         std::string{kind == node::type::map ? "expected a map" : "expected a list"} + ", got " +
             describe(n));
  return false;
}

// Strict UTF-8 (RFC 3629): no overlong forms, no surrogates, nothing above
// U+10FFFF. yaml-cpp passes bytes through unchecked.
bool is_valid_utf8(std::string_view s) {
  std::size_t i = 0;
  while (i < s.size()) {
    const auto b = static_cast<unsigned char>(s[i]);
    std::size_t length = 0;
    unsigned min = 0;
    unsigned code = 0;
    if (b < 0x80) {
      ++i;
      continue;
    }
    if ((b & 0xe0) == 0xc0) {
      length = 2;
      min = 0x80;
      code = b & 0x1fU;
    } else if ((b & 0xf0) == 0xe0) {
      length = 3;
      min = 0x800;
      code = b & 0x0fU;
    } else if ((b & 0xf8) == 0xf0) {
      length = 4;
      min = 0x10000;
      code = b & 0x07U;
    } else {
      return false;
    }
    if (s.size() - i < length) {
      return false;
    }
    for (std::size_t k = 1; k < length; ++k) {
      const auto c = static_cast<unsigned char>(s[i + k]);
      if ((c & 0xc0) != 0x80) {
        return false;
      }
      code = (code << 6) | (c & 0x3fU);
    }
    if (code < min || code > 0x10ffff || (code >= 0xd800 && code <= 0xdfff)) {
      return false;
    }
    i += length;
  }
  return true;
}

// ---------------------------------------------------------------------------
// Scalars.

std::optional<std::string> read_string(decoder& d, const node& n, const std::string& path) {
  if (n.kind != node::type::scalar) {
    d.fail(path, n.mark, "expected a string, got " + describe(n));
    return std::nullopt;
  }
  if (!is_valid_utf8(n.text)) {
    d.fail(path, n.mark, "must be valid UTF-8");
    return std::nullopt;
  }
  if (n.text.find('\0') != std::string::npos) {
    d.fail(path, n.mark, "must not contain a NUL character");
    return std::nullopt;
  }
  return n.text;
}

std::optional<bool> read_bool(decoder& d, const node& n, const std::string& path) {
  if (n.kind == node::type::scalar && n.plain) {
    if (n.text == "true") {
      return true;
    }
    if (n.text == "false") {
      return false;
    }
  }
  d.fail(path, n.mark, "expected true or false, got " + describe(n));
  return std::nullopt;
}

// A plain decimal integer in [min, max].
std::optional<int> read_int(decoder& d, const node& n, const std::string& path, int min, int max) {
  const std::string& t = n.text;
  const bool negative = t.starts_with('-');
  const std::string_view digits = std::string_view{t}.substr(negative ? 1 : 0);
  if (n.kind != node::type::scalar || !n.plain || digits.empty() ||
      digits.find_first_not_of("0123456789") != std::string_view::npos) {
    d.fail(path, n.mark, "expected an integer, got " + describe(n));
    return std::nullopt;
  }
  long long value = 0;
  const auto [end, ec] = std::from_chars(t.data(), t.data() + t.size(), value);
  if (ec != std::errc{} || end != t.data() + t.size() || value < min || value > max) {
    if (negative && min == 0) {
      d.fail(path, n.mark, "must not be negative, got " + t);
    } else {
      d.fail(
          path, n.mark,
          "must be between " + std::to_string(min) + " and " + std::to_string(max) + ", got " + t);
    }
    return std::nullopt;
  }
  return static_cast<int>(value);
}

std::optional<std::chrono::seconds> read_duration(decoder& d, const node& n,
                                                  const std::string& path) {
  const auto text = read_string(d, n, path);
  if (!text) {
    return std::nullopt;
  }
  const auto parsed = parse_duration(*text);
  if (!parsed) {
    d.fail(path, n.mark,
           "invalid duration " + quote(*text) +
               ": write digits with units h, m and s in that order, e.g. 90s, 5m, 1h30m");
  }
  return parsed;
}

// ---------------------------------------------------------------------------
// Maps.

struct map_entry {
  std::string_view key;  // the scalar text of key_node
  const node* key_node;
  const node* value;
  bool taken = false;  // used by field_reader
};

// The entries of a map node with scalar keys, in document order. Reports keys
// that are not scalars and keys that repeat (the first occurrence is kept).
std::vector<map_entry> entries_of(decoder& d, const node& map, const std::string& path) {
  std::vector<map_entry> entries;
  std::unordered_set<std::string_view> seen;
  for (std::size_t i = 0; i + 1 < map.children.size(); i += 2) {
    const node& key = *map.children[i];
    if (key.kind != node::type::scalar) {
      d.fail(path, key.mark, "field names must be strings, got " + describe(key));
      continue;
    }
    if (!seen.insert(key.text).second) {
      d.fail(child_path(path, key.text), key.mark, "duplicate field");
      continue;
    }
    entries.push_back({key.text, &key, map.children[i + 1], false});
  }
  return entries;
}

std::size_t edit_distance(std::string_view a, std::string_view b) {
  std::vector<std::size_t> row(b.size() + 1);
  for (std::size_t j = 0; j <= b.size(); ++j) {
    row[j] = j;
  }
  for (std::size_t i = 1; i <= a.size(); ++i) {
    std::size_t diagonal = row[0];
    row[0] = i;
    for (std::size_t j = 1; j <= b.size(); ++j) {
      const std::size_t above = row[j];
      row[j] = std::min({row[j] + 1, row[j - 1] + 1, diagonal + (a[i - 1] == b[j - 1] ? 0 : 1)});
      diagonal = above;
    }
  }
  return row[b.size()];
}

// Reads one map of the schema. The caller asks for every field it knows, by
// name, through optional() and required(), then calls finish(), which reports
// every field that was never asked for as unknown.
class field_reader {
 public:
  field_reader(decoder& d, const node& map, std::string path)
      : d_(d), map_(map), path_(std::move(path)), entries_(entries_of(d, map, path_)) {}

  field_reader(const field_reader&) = delete;
  field_reader& operator=(const field_reader&) = delete;

  // The value of `key`; nullptr when the field is absent or null.
  const node* optional(std::string_view key) {
    known_.push_back(key);
    for (auto& e : entries_) {
      if (e.key == key && !e.taken) {
        e.taken = true;
        return e.value->kind == node::type::null ? nullptr : e.value;
      }
    }
    return nullptr;
  }

  // As optional(), and reports the field as missing when it is absent or null,
  // at the parent map's position.
  const node* required(std::string_view key) {
    const node* value = optional(key);
    if (value == nullptr) {
      d_.fail(path_of(key), map_.mark, "required field is missing");
    }
    return value;
  }

  std::string path_of(std::string_view key) const { return child_path(path_, key); }

  void finish() {
    for (const auto& e : entries_) {
      if (e.taken) {
        continue;
      }
      std::string message = "unknown field";
      if (const auto suggestion = closest_known(e.key)) {
        message += "; did you mean \"" + std::string{*suggestion} + "\"?";
      }
      d_.fail(path_of(e.key), e.key_node->mark, std::move(message));
    }
  }

 private:
  // The known field closest to `key` for "did you mean": at most two edits
  // away, and at most one edit per three characters so that short names
  // ("to") are not suggested for unrelated ones ("into").
  std::optional<std::string_view> closest_known(std::string_view key) const {
    constexpr std::size_t max_edits = 2;
    if (key.size() > 64) {
      return std::nullopt;
    }
    std::optional<std::string_view> best;
    std::size_t best_distance = max_edits + 1;
    for (const std::string_view k : known_) {
      const std::size_t distance = edit_distance(key, k);
      if (distance < best_distance && distance * 3 <= k.size()) {
        best = k;
        best_distance = distance;
      }
    }
    return best;
  }

  decoder& d_;
  const node& map_;
  std::string path_;
  std::vector<map_entry> entries_;
  std::vector<std::string_view> known_;
};

// A free-form map of strings (labels): keys non-empty, values strings.
void read_string_map(decoder& d, const node& n, const std::string& path,
                     std::map<std::string, std::string>& out) {
  if (!expect(d, n, node::type::map, path)) {
    return;
  }
  for (const auto& e : entries_of(d, n, path)) {
    const std::string entry_path = child_path(path, e.key);
    const auto key = read_string(d, *e.key_node, entry_path);
    const auto value = read_string(d, *e.value, entry_path);
    if (key && key->empty()) {
      d.fail(entry_path, e.key_node->mark, "keys must not be empty");
      continue;
    }
    if (key && value) {
      out.emplace(*key, *value);
    }
  }
}

// ---------------------------------------------------------------------------
// Object parts.

// `hooks` only where there are hooks (schedules); elsewhere it is unknown.
void read_timeouts(decoder& d, const node& n, const std::string& path, bool with_hooks,
                   timeouts_spec& out) {
  if (!expect(d, n, node::type::map, path)) {
    return;
  }
  field_reader f{d, n, path};
  if (with_hooks) {
    if (const node* v = f.optional("hooks")) {
      out.hooks = read_duration(d, *v, f.path_of("hooks")).value_or(out.hooks);
    }
  }
  if (const node* v = f.optional("scaleDown")) {
    out.scale_down = read_duration(d, *v, f.path_of("scaleDown")).value_or(out.scale_down);
  }
  if (const node* v = f.optional("scaleUp")) {
    out.scale_up = read_duration(d, *v, f.path_of("scaleUp")).value_or(out.scale_up);
  }
  f.finish();
}

void read_group(decoder& d, const node& n, const std::string& path, std::string& out) {
  if (auto group = read_string(d, n, path)) {
    if (group->empty()) {
      d.fail(path, n.mark, "must not be empty");
      return;
    }
    out = std::move(*group);
  }
}

// One of `choices`, by its YAML spelling (to_string), or an error naming all:
// `must be one of gzip, zstd, none; got "x"`. Unset when not one of them.
template <class E, std::size_t N>
std::optional<E> read_one_of(decoder& d, const node& n, const std::string& path,
                             const std::array<E, N>& choices) {
  const auto text = read_string(d, n, path);
  if (!text) {
    return std::nullopt;
  }
  std::string names;
  for (const E choice : choices) {
    if (*text == to_string(choice)) {
      return choice;
    }
    names += (names.empty() ? "" : ", ") + std::string(to_string(choice));
  }
  d.fail(path, n.mark, "must be one of " + names + "; got " + quote(*text));
  return std::nullopt;
}

// spec.labelMatch, and the check it implies on spec.stopDuringBackup: under
// one-of a workload's value is split at commas, so a group containing one
// could never match.
void read_label_match(decoder& d, field_reader& f, const node* group_node, const std::string& group,
                      label_match& out) {
  if (const node* v = f.optional("labelMatch")) {
    out = read_one_of(d, *v, f.path_of("labelMatch"),
                      std::array{label_match::exact, label_match::one_of})
              .value_or(out);
  }
  if (out == label_match::one_of && group.find(',') != std::string::npos) {
    d.fail(f.path_of("stopDuringBackup"), group_node != nullptr ? group_node->mark : YAML::Mark{},
           "must not contain ',' with labelMatch one-of (a label value is split at commas into "
           "groups); got " +
               quote(group));
  }
}

void read_encryption(decoder& d, const node& n, const std::string& path,
                     std::optional<encryption_spec>& out);

void read_archive(decoder& d, const node& n, const std::string& path,
                  std::string_view schedule_name, archive_spec& out) {
  if (!expect(d, n, node::type::map, path)) {
    return;
  }
  field_reader f{d, n, path};
  if (const node* v = f.optional("name")) {
    if (auto name = read_string(d, *v, f.path_of("name"))) {
      d.check(check_archive_name_template(*name, schedule_name), f.path_of("name"), v->mark);
      out.name = std::move(*name);
    }
  }
  bool compression_known = true;
  if (const node* v = f.optional("compression")) {
    const auto c = read_one_of(
        d, *v, f.path_of("compression"),
        std::array{compression_kind::gzip, compression_kind::zstd, compression_kind::none});
    compression_known = c.has_value();
    out.compression = c.value_or(out.compression);
  }
  if (const node* v = f.optional("level")) {
    out.level = read_int(d, *v, f.path_of("level"), INT_MIN, INT_MAX);
    if (out.level && compression_known) {
      d.check(check_compression_level(out.compression, *out.level), f.path_of("level"), v->mark);
    }
  }
  if (const node* v = f.optional("exclude")) {
    out.exclude = read_string(d, *v, f.path_of("exclude"));
    if (out.exclude) {
      d.check(check_exclude_pattern(*out.exclude), f.path_of("exclude"), v->mark);
    }
  }
  if (const node* v = f.optional("encryption")) {
    read_encryption(d, *v, f.path_of("encryption"), out.encryption);
  }
  f.finish();
}

std::optional<destination> read_local_destination(decoder& d, const node& n,
                                                  const std::string& path) {
  if (!expect(d, n, node::type::map, path)) {
    return std::nullopt;
  }
  field_reader f{d, n, path};
  std::optional<destination> out;
  if (const node* v = f.required("path")) {
    if (auto p = read_string(d, *v, f.path_of("path"))) {
      d.check(check_absolute_path(*p), f.path_of("path"), v->mark);
      out = local_destination{std::move(*p)};
    }
  }
  f.finish();
  return out;
}

// An absolute path read from `key` into `out`, when present.
void read_path_field(decoder& d, field_reader& f, std::string_view key,
                     std::optional<std::string>& out) {
  if (const node* v = f.optional(key)) {
    if (auto p = read_string(d, *v, f.path_of(key))) {
      d.check(check_absolute_path(*p), f.path_of(key), v->mark);
      out = std::move(*p);
    }
  }
}

// Fields that would hold a secret in the object itself: objects live in
// Swarm configs and labels, readable by anyone who can list them, so a
// secret is only ever named by the file (a Swarm secret) that holds it.
struct inline_secret {
  std::string_view field;
  std::string_view file_field;
};

void refuse_inline_secrets(decoder& d, field_reader& f,
                           std::initializer_list<inline_secret> secrets) {
  for (const auto& s : secrets) {
    if (const node* v = f.optional(s.field)) {
      d.fail(f.path_of(s.field), v->mark,
             "secrets are never written into an object: put it in a file (a Swarm secret under "
             "/run/secrets) and name that file in " +
                 std::string{s.file_field});
    }
  }
}

// The one method key of an `encryption` or `decryption` map: "age" or
// "gpg". Null when absent or wrong, with the error recorded.
const node* read_method(decoder& d, const node& n, const std::string& path, std::string& key) {
  if (!expect(d, n, node::type::map, path)) {
    return nullptr;
  }
  const auto entries = entries_of(d, n, path);
  if (entries.size() != 1) {
    d.fail(path, n.mark,
           "expected exactly one method (age or gpg), got " + std::to_string(entries.size()));
    return nullptr;
  }
  const auto& e = entries.front();
  if (e.key != "age" && e.key != "gpg") {
    d.fail(child_path(path, e.key), e.key_node->mark,
           "unknown method " + quote(e.key) + "; expected age or gpg");
    return nullptr;
  }
  key = e.key;
  return e.value;
}

void read_age_encryption(decoder& d, const node& method, const std::string& apath,
                         std::optional<encryption_spec>& out) {
  age_encryption age;
  field_reader f{d, method, apath};
  const node* recipients = f.optional("recipients");
  if (const node* v = recipients) {
    const std::string rpath = f.path_of("recipients");
    if (expect(d, *v, node::type::sequence, rpath)) {
      for (std::size_t i = 0; i < v->children.size(); ++i) {
        const node& item = *v->children[i];
        if (auto r = read_string(d, item, item_path(rpath, i))) {
          d.check(check_age_recipient(*r), item_path(rpath, i), item.mark);
          age.recipients.push_back(std::move(*r));
        }
      }
      if (v->children.empty()) {
        d.fail(rpath, v->mark, "must not be empty (or leave it out)");
      }
    }
  }
  read_path_field(d, f, "recipientsFile", age.recipients_file);
  read_path_field(d, f, "passphraseFile", age.passphrase_file);
  refuse_inline_secrets(d, f, {{"passphrase", "passphraseFile"}});
  const bool to_keys = !age.recipients.empty() || age.recipients_file;
  if (age.passphrase_file && to_keys) {
    d.fail(apath, method.mark,
           "passphraseFile excludes recipients and recipientsFile: age encrypts to a "
           "passphrase alone");
  } else if (!age.passphrase_file && !to_keys && recipients == nullptr) {
    d.fail(apath, method.mark, "set recipients, recipientsFile or passphraseFile");
  }
  f.finish();
  out = std::move(age);
}

void read_gpg_encryption(decoder& d, const node& method, const std::string& gpath,
                         std::optional<encryption_spec>& out) {
  gpg_encryption gpg;
  field_reader f{d, method, gpath};
  read_path_field(d, f, "publicKeyFile", gpg.public_key_file);
  const node* inline_keys = f.optional("publicKeys");
  if (inline_keys != nullptr) {
    if (auto keys = read_string(d, *inline_keys, f.path_of("publicKeys"))) {
      if (keys->find("-----BEGIN PGP PUBLIC KEY BLOCK-----") == std::string::npos) {
        d.fail(f.path_of("publicKeys"), inline_keys->mark,
               "expected armored public keys (\"-----BEGIN PGP PUBLIC KEY BLOCK-----\", as "
               "gpg --armor --export writes them)");
      }
      gpg.public_keys = std::move(*keys);
    }
  }
  read_path_field(d, f, "passphraseFile", gpg.passphrase_file);
  refuse_inline_secrets(d, f, {{"passphrase", "passphraseFile"}});
  const bool to_keys = gpg.public_key_file || inline_keys != nullptr;
  if (gpg.public_key_file && inline_keys != nullptr) {
    d.fail(gpath, method.mark, "set publicKeyFile or publicKeys, not both");
  } else if (gpg.passphrase_file && to_keys) {
    d.fail(gpath, method.mark,
           "passphraseFile excludes publicKeyFile: an archive is encrypted to public keys or "
           "to a passphrase, not both");
  } else if (!gpg.passphrase_file && !to_keys) {
    d.fail(gpath, method.mark, "set publicKeyFile or passphraseFile");
  }
  f.finish();
  out = std::move(gpg);
}

void read_encryption(decoder& d, const node& n, const std::string& path,
                     std::optional<encryption_spec>& out) {
  std::string key;
  const node* method = read_method(d, n, path, key);
  const std::string mpath = child_path(path, key);
  if (method == nullptr || !expect(d, *method, node::type::map, mpath)) {
    return;
  }
  if (key == "age") {
    read_age_encryption(d, *method, mpath, out);
  } else {
    read_gpg_encryption(d, *method, mpath, out);
  }
}

void read_decryption(decoder& d, const node& n, const std::string& path,
                     std::optional<decryption_spec>& out) {
  std::string key;
  const node* method = read_method(d, n, path, key);
  const std::string mpath = child_path(path, key);
  if (method == nullptr || !expect(d, *method, node::type::map, mpath)) {
    return;
  }
  field_reader f{d, *method, mpath};
  if (key == "age") {
    age_decryption age;
    read_path_field(d, f, "identityFile", age.identity_file);
    read_path_field(d, f, "passphraseFile", age.passphrase_file);
    refuse_inline_secrets(d, f, {{"identity", "identityFile"}, {"passphrase", "passphraseFile"}});
    if (age.identity_file && age.passphrase_file) {
      d.fail(mpath, method->mark, "set identityFile or passphraseFile, not both");
    } else if (!age.identity_file && !age.passphrase_file) {
      d.fail(mpath, method->mark, "set identityFile or passphraseFile");
    }
    out = std::move(age);
  } else {
    // A secret key may be protected by a passphrase, so both may be set.
    gpg_decryption gpg;
    read_path_field(d, f, "secretKeyFile", gpg.secret_key_file);
    read_path_field(d, f, "passphraseFile", gpg.passphrase_file);
    refuse_inline_secrets(d, f, {{"secretKey", "secretKeyFile"}, {"passphrase", "passphraseFile"}});
    if (!gpg.secret_key_file && !gpg.passphrase_file) {
      d.fail(mpath, method->mark, "set secretKeyFile, passphraseFile or both");
    }
    out = std::move(gpg);
  }
  f.finish();
}

std::optional<std::string> check_bucket_name(std::string_view bucket) {
  const bool ok =
      bucket.size() >= 3 && bucket.size() <= 63 &&
      std::all_of(bucket.begin(), bucket.end(),
                  [](char c) {
                    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '.';
                  }) &&
      bucket.front() != '-' && bucket.front() != '.' && bucket.back() != '-' &&
      bucket.back() != '.';
  if (ok) {
    return std::nullopt;
  }
  return "invalid bucket name " + quote(bucket) +
         ": 3 to 63 lower-case letters, digits, '-' and '.', starting and ending with a letter or "
         "digit";
}

// "http://host[:port]" or "https://host[:port]", no path: keys are placed
// under it by the destination, in path or virtual-hosted style.
std::optional<std::string> check_endpoint(std::string_view endpoint) {
  std::string_view rest = endpoint;
  if (rest.starts_with("https://")) {
    rest.remove_prefix(8);
  } else if (rest.starts_with("http://")) {
    rest.remove_prefix(7);
  } else {
    return "must start with https:// or http://, got " + quote(endpoint);
  }
  if (rest.ends_with('/')) {
    rest.remove_suffix(1);
  }
  if (rest.empty() || rest.find_first_of("/?#@ ") != std::string_view::npos) {
    return "must be a scheme and a host (and port) only, like https://s3.example.com; got " +
           quote(endpoint);
  }
  return std::nullopt;
}

// A token made of the characters `allowed` accepts, not empty.
template <class Allowed>
std::optional<std::string> check_token(std::string_view text, std::string_view what,
                                       Allowed allowed) {
  if (!text.empty() && std::all_of(text.begin(), text.end(), allowed)) {
    return std::nullopt;
  }
  return "invalid " + std::string{what} + " " + quote(text);
}

// caFile and insecureSkipVerify, of the destinations that speak TLS.
void read_tls_fields(decoder& d, field_reader& f, std::optional<std::string>& ca_file,
                     bool& insecure_skip_verify) {
  read_path_field(d, f, "caFile", ca_file);
  if (const node* v = f.optional("insecureSkipVerify")) {
    insecure_skip_verify = read_bool(d, *v, f.path_of("insecureSkipVerify")).value_or(false);
    if (insecure_skip_verify && ca_file) {
      d.fail(f.path_of("insecureSkipVerify"), v->mark,
             "set caFile or insecureSkipVerify, not both");
    }
  }
}

std::optional<destination> read_s3_destination(decoder& d, const node& n, const std::string& path) {
  if (!expect(d, n, node::type::map, path)) {
    return std::nullopt;
  }
  field_reader f{d, n, path};
  s3_destination out;
  bool ok = true;
  auto required_string = [&](std::string_view key, std::string& into) {
    const node* v = f.required(key);
    auto text = v != nullptr ? read_string(d, *v, f.path_of(key)) : std::nullopt;
    if (!text) {
      ok = false;
      return static_cast<const node*>(nullptr);
    }
    into = std::move(*text);
    return v;
  };
  if (const node* v = required_string("bucket", out.bucket)) {
    d.check(check_bucket_name(out.bucket), f.path_of("bucket"), v->mark);
  }
  if (const node* v = f.optional("prefix")) {
    if (auto p = read_string(d, *v, f.path_of("prefix"))) {
      if (p->starts_with('/')) {
        d.fail(f.path_of("prefix"), v->mark,
               "must not start with '/': keys are written as prefix + archive name");
      }
      out.prefix = std::move(*p);
    }
  }
  if (const node* v = f.optional("endpoint")) {
    if (auto e = read_string(d, *v, f.path_of("endpoint"))) {
      d.check(check_endpoint(*e), f.path_of("endpoint"), v->mark);
      if (e->ends_with('/')) {
        e->pop_back();
      }
      out.endpoint = std::move(*e);
    }
  }
  if (const node* v = f.optional("region")) {
    if (auto r = read_string(d, *v, f.path_of("region"))) {
      d.check(check_token(*r, "region",
                          [](char c) {
                            return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-';
                          }),
              f.path_of("region"), v->mark);
      out.region = std::move(*r);
    }
  }
  if (const node* v = f.optional("pathStyle")) {
    out.path_style = read_bool(d, *v, f.path_of("pathStyle")).value_or(false);
  }
  if (const node* v = f.optional("storageClass")) {
    if (auto c = read_string(d, *v, f.path_of("storageClass"))) {
      d.check(check_token(*c, "storage class",
                          [](char ch) { return (ch >= 'A' && ch <= 'Z') || ch == '_'; }),
              f.path_of("storageClass"), v->mark);
      out.storage_class = std::move(*c);
    }
  }
  for (auto [key, into] :
       {std::pair<std::string_view, std::string*>{"accessKeyIdFile", &out.access_key_id_file},
        {"secretAccessKeyFile", &out.secret_access_key_file}}) {
    if (const node* v = required_string(key, *into)) {
      d.check(check_absolute_path(*into), f.path_of(key), v->mark);
    }
  }
  read_tls_fields(d, f, out.ca_file, out.insecure_skip_verify);
  refuse_inline_secrets(
      d, f, {{"secretAccessKey", "secretAccessKeyFile"}, {"accessKeyId", "accessKeyIdFile"}});
  f.finish();
  if (!ok) {
    return std::nullopt;
  }
  return out;
}

std::optional<destination> read_webdav_destination(decoder& d, const node& n,
                                                   const std::string& path) {
  if (!expect(d, n, node::type::map, path)) {
    return std::nullopt;
  }
  field_reader f{d, n, path};
  webdav_destination out;
  bool ok = false;
  if (const node* v = f.required("url")) {
    if (auto url = read_string(d, *v, f.path_of("url"))) {
      const bool http = url->starts_with("https://") || url->starts_with("http://");
      const auto host_start = url->find("://") + 3;
      if (!http || url->size() <= host_start || (*url)[host_start] == '/' ||
          url->find_first_of("?# ") != std::string::npos) {
        d.fail(f.path_of("url"), v->mark,
               "must be an http:// or https:// URL of a folder, like "
               "https://dav.example.com/backups/; got " +
                   quote(*url));
      } else {
        ok = true;
      }
      if (!url->ends_with('/')) {
        url->push_back('/');
      }
      out.url = std::move(*url);
    }
  }
  if (const node* v = f.optional("username")) {
    out.username = read_string(d, *v, f.path_of("username"));
  }
  read_path_field(d, f, "passwordFile", out.password_file);
  if (out.username.has_value() != out.password_file.has_value()) {
    d.fail(path, n.mark, "set username and passwordFile together");
  }
  read_tls_fields(d, f, out.ca_file, out.insecure_skip_verify);
  refuse_inline_secrets(d, f, {{"password", "passwordFile"}});
  f.finish();
  if (!ok) {
    return std::nullopt;
  }
  return out;
}

// A folder on an SSH server. The host key is always verified, so
// knownHostsFile is required; the client signs in with a key or a password,
// each read from a file.
std::optional<destination> read_sftp_destination(decoder& d, const node& n,
                                                 const std::string& path) {
  if (!expect(d, n, node::type::map, path)) {
    return std::nullopt;
  }
  field_reader f{d, n, path};
  sftp_destination out;
  bool ok = true;
  auto required_string = [&](std::string_view key, std::string& into) {
    const node* v = f.required(key);
    auto text = v != nullptr ? read_string(d, *v, f.path_of(key)) : std::nullopt;
    if (!text) {
      ok = false;
      return static_cast<const node*>(nullptr);
    }
    into = std::move(*text);
    return v;
  };
  if (const node* v = required_string("host", out.host)) {
    // A name, an IPv4 address or an IPv6 one (bare or in brackets).
    d.check(check_token(out.host, "host",
                        [](char c) {
                          return std::isalnum(static_cast<unsigned char>(c)) != 0 || c == '.' ||
                                 c == '-' || c == '_' || c == ':' || c == '[' || c == ']';
                        }),
            f.path_of("host"), v->mark);
  }
  if (const node* v = f.optional("port")) {
    out.port = read_int(d, *v, f.path_of("port"), 1, 65535).value_or(out.port);
  }
  if (const node* v = required_string("user", out.user)) {
    d.check(check_token(out.user, "user",
                        [](char c) {
                          return std::isalnum(static_cast<unsigned char>(c)) != 0 || c == '.' ||
                                 c == '-' || c == '_';
                        }),
            f.path_of("user"), v->mark);
  }
  if (const node* v = required_string("path", out.path)) {
    d.check(check_absolute_path(out.path), f.path_of("path"), v->mark);
    while (out.path.size() > 1 && out.path.ends_with('/')) {
      out.path.pop_back();
    }
  }
  read_path_field(d, f, "identityFile", out.identity_file);
  read_path_field(d, f, "passwordFile", out.password_file);
  if (out.identity_file && out.password_file) {
    d.fail(path, n.mark, "set identityFile or passwordFile, not both");
  } else if (!out.identity_file && !out.password_file) {
    d.fail(path, n.mark, "set identityFile (a private key) or passwordFile");
    ok = false;
  }
  if (const node* v = f.optional("knownHostsFile")) {
    if (auto p = read_string(d, *v, f.path_of("knownHostsFile"))) {
      d.check(check_absolute_path(*p), f.path_of("knownHostsFile"), v->mark);
      out.known_hosts_file = std::move(*p);
    } else {
      ok = false;
    }
  } else {
    d.fail(f.path_of("knownHostsFile"), n.mark,
           "required field is missing: the server's host key is always verified (put its "
           "known_hosts line, from ssh-keyscan -p PORT HOST, in a file and name it here)");
    ok = false;
  }
  refuse_inline_secrets(d, f, {{"password", "passwordFile"}});
  f.finish();
  if (!ok) {
    return std::nullopt;
  }
  return out;
}

// One entry per destination kind: a struct in objects.hpp, an alternative of
// `destination`, and a line here.
struct destination_reader {
  std::string_view kind;
  std::optional<destination> (*read)(decoder&, const node&, const std::string&);
};
constexpr destination_reader destination_readers[] = {
    {"local", read_local_destination},
    {"s3", read_s3_destination},
    {"webdav", read_webdav_destination},
    {"sftp", read_sftp_destination},
};

std::string known_destination_kinds() {
  std::string out;
  for (const auto& r : destination_readers) {
    out += out.empty() ? "" : ", ";
    out += r.kind;
  }
  return out;
}

// One map with exactly one destination kind as its key, at `path`.
std::optional<destination> read_destination(decoder& d, const node& item, const std::string& path) {
  if (!expect(d, item, node::type::map, path)) {
    return std::nullopt;
  }
  const auto entries = entries_of(d, item, path);
  if (entries.size() != 1) {
    d.fail(path, item.mark,
           "expected exactly one destination kind (" + known_destination_kinds() + "), got " +
               std::to_string(entries.size()));
  }
  std::optional<destination> out;
  for (const auto& e : entries) {
    const auto reader = std::find_if(std::begin(destination_readers), std::end(destination_readers),
                                     [&](const auto& r) { return r.kind == e.key; });
    const std::string kpath = child_path(path, e.key);
    if (reader == std::end(destination_readers)) {
      d.fail(
          kpath, e.key_node->mark,
          "unknown destination kind " + quote(e.key) + "; expected " + known_destination_kinds());
      continue;
    }
    if (auto dest = reader->read(d, *e.value, kpath); dest && entries.size() == 1) {
      out = std::move(dest);
    }
  }
  return out;
}

void read_destinations(decoder& d, const node& n, const std::string& path,
                       std::vector<destination>& out) {
  if (!expect(d, n, node::type::sequence, path)) {
    return;
  }
  if (n.children.empty()) {
    d.fail(path, n.mark, "must not be empty");
    return;
  }
  for (std::size_t i = 0; i < n.children.size(); ++i) {
    if (auto dest = read_destination(d, *n.children[i], item_path(path, i))) {
      out.push_back(std::move(*dest));
    }
  }
}

// The fields of `retention`, in YAML order; the calendar rules are restic's.
struct retention_field {
  std::string_view key;
  std::optional<int> retention_spec::*member;
};
constexpr retention_field retention_fields[] = {
    {"days", &retention_spec::days},
    {"keepLast", &retention_spec::keep_last},
    {"keepHourly", &retention_spec::keep_hourly},
    {"keepDaily", &retention_spec::keep_daily},
    {"keepWeekly", &retention_spec::keep_weekly},
    {"keepMonthly", &retention_spec::keep_monthly},
    {"keepYearly", &retention_spec::keep_yearly},
};

// `format` decides which rules apply: `days` ranks archives by age and has
// no restic meaning; the calendar rules (restic's forget rules) serve both.
void read_retention(decoder& d, const node& n, const std::string& path, backup_format format,
                    std::optional<retention_spec>& out) {
  if (!expect(d, n, node::type::map, path)) {
    return;
  }
  field_reader f{d, n, path};
  retention_spec r;
  bool any = false;
  for (const auto& field : retention_fields) {
    const node* v = f.optional(field.key);
    if (v == nullptr) {
      continue;
    }
    any = true;
    if (field.key == "days" && format == backup_format::restic) {
      d.fail(f.path_of(field.key), v->mark,
             "not with format: restic: use keepLast, keepHourly, keepDaily, keepWeekly, "
             "keepMonthly or keepYearly");
      continue;
    }
    r.*field.member = read_int(d, *v, f.path_of(field.key), 0, INT_MAX);
  }
  if (!any) {
    d.fail(path, n.mark,
           format == backup_format::restic
               ? "set at least one of keepLast, keepHourly, keepDaily, keepWeekly, keepMonthly "
                 "or keepYearly"
               : "set at least one of days, keepLast, keepHourly, keepDaily, keepWeekly, "
                 "keepMonthly or keepYearly");
  }
  f.finish();
  out = r;
}

void read_restic(decoder& d, const node& n, const std::string& path,
                 std::optional<restic_spec>& out) {
  if (!expect(d, n, node::type::map, path)) {
    return;
  }
  field_reader f{d, n, path};
  restic_spec r;
  if (const node* v = f.required("passwordFile")) {
    if (auto p = read_string(d, *v, f.path_of("passwordFile"))) {
      d.check(check_absolute_path(*p), f.path_of("passwordFile"), v->mark);
      r.password_file = std::move(*p);
    }
  }
  refuse_inline_secrets(d, f, {{"password", "passwordFile"}});
  if (const node* v = f.optional("compression")) {
    r.compression = read_one_of(d, *v, f.path_of("compression"),
                                std::array{restic_compression::off, restic_compression::automatic,
                                           restic_compression::max})
                        .value_or(r.compression);
  }
  f.finish();
  out = r;
}

void read_format(decoder& d, const node& n, const std::string& path, backup_format& out) {
  out = read_one_of(d, n, path, std::array{backup_format::archive, backup_format::restic})
            .value_or(out);
}

void read_history_limits(decoder& d, const node& n, const std::string& path,
                         history_limits_spec& out) {
  if (!expect(d, n, node::type::map, path)) {
    return;
  }
  field_reader f{d, n, path};
  if (const node* v = f.optional("succeeded")) {
    out.succeeded = read_int(d, *v, f.path_of("succeeded"), 0, INT_MAX).value_or(out.succeeded);
  }
  if (const node* v = f.optional("failed")) {
    out.failed = read_int(d, *v, f.path_of("failed"), 0, INT_MAX).value_or(out.failed);
  }
  f.finish();
}

// `template: {title, body}`: each part's placeholders are checked here, so a
// typo fails the object, not a run.
void read_notification_template(decoder& d, const node& n, const std::string& path,
                                std::optional<notification_template>& out) {
  if (!expect(d, n, node::type::map, path)) {
    return;
  }
  field_reader f{d, n, path};
  notification_template t;
  for (auto [key, part] : {std::pair{"title", &t.title}, std::pair{"body", &t.body}}) {
    if (const node* v = f.optional(key)) {
      if (auto text = read_string(d, *v, f.path_of(key))) {
        d.check(check_template(*text), f.path_of(key), v->mark);
        *part = std::move(*text);
      }
    }
  }
  if (!t.title && !t.body) {
    d.fail(path, n.mark, "set title, body or both");
  }
  f.finish();
  out = std::move(t);
}

void read_notifications(decoder& d, const node& n, const std::string& path,
                        std::optional<notifications_spec>& out) {
  if (!expect(d, n, node::type::map, path)) {
    return;
  }
  field_reader f{d, n, path};
  notifications_spec spec;
  if (const node* v = f.optional("level")) {
    if (auto text = read_string(d, *v, f.path_of("level"))) {
      if (*text == "error") {
        spec.level = notification_level::error;
      } else if (*text == "info") {
        spec.level = notification_level::info;
      } else {
        d.fail(f.path_of("level"), v->mark,
               "unknown level " + quote(*text) + "; expected error or info");
      }
    }
  }
  const node* urls = f.optional("urls");
  if (urls != nullptr) {
    const std::string upath = f.path_of("urls");
    if (expect(d, *urls, node::type::sequence, upath)) {
      for (std::size_t i = 0; i < urls->children.size(); ++i) {
        const node& item = *urls->children[i];
        if (auto url = read_string(d, item, item_path(upath, i))) {
          // The error names the URL by its position only: the URL may hold a
          // password or a token.
          d.check(check_notification_url(*url), item_path(upath, i), item.mark);
          spec.urls.push_back(std::move(*url));
        }
      }
      if (urls->children.empty()) {
        d.fail(upath, urls->mark, "must not be empty (or leave it out)");
      }
    }
  }
  read_path_field(d, f, "urlsFile", spec.urls_file);
  if (urls == nullptr && !spec.urls_file) {
    d.fail(path, n.mark, "set urls or urlsFile");
  }
  const node* inline_template = f.optional("template");
  if (inline_template != nullptr) {
    read_notification_template(d, *inline_template, f.path_of("template"), spec.message_template);
  }
  read_path_field(d, f, "templateFile", spec.template_file);
  if (inline_template != nullptr && spec.template_file) {
    d.fail(f.path_of("templateFile"), n.mark, "template and templateFile are mutually exclusive");
  }
  f.finish();
  out = std::move(spec);
}

void read_volume_names(decoder& d, const node& n, const std::string& path,
                       std::vector<std::string>& out) {
  if (!expect(d, n, node::type::sequence, path)) {
    return;
  }
  if (n.children.empty()) {
    d.fail(path, n.mark, "must not be empty");
    return;
  }
  std::unordered_set<std::string> seen;
  for (std::size_t i = 0; i < n.children.size(); ++i) {
    const node& item = *n.children[i];
    const std::string ipath = item_path(path, i);
    auto name = read_string(d, item, ipath);
    if (!name) {
      continue;
    }
    if (const auto error = check_volume_name(*name)) {
      d.fail(ipath, item.mark, *error);
    } else if (!seen.insert(*name).second) {
      d.fail(ipath, item.mark, "duplicate volume " + quote(*name));
    } else {
      out.push_back(std::move(*name));
    }
  }
}

void read_selector(decoder& d, const node& n, const std::string& path,
                   std::optional<label_selector>& out) {
  if (!expect(d, n, node::type::map, path)) {
    return;
  }
  field_reader f{d, n, path};
  label_selector selector;
  if (const node* v = f.required("matchLabels")) {
    const std::string mpath = f.path_of("matchLabels");
    read_string_map(d, *v, mpath, selector.match_labels);
    if (v->kind == node::type::map && v->children.empty()) {
      d.fail(mpath, v->mark, "must not be empty");
    }
  }
  f.finish();
  out = std::move(selector);
}

// A restic schedule writes one repository, and reads and writes it as a
// folder of this node: other destination kinds hold archives only (for now).
void check_restic_destinations(decoder& d, const node& n, const std::string& path,
                               const std::vector<destination>& destinations) {
  if (n.kind != node::type::sequence) {
    return;
  }
  if (n.children.size() > 1) {
    d.fail(item_path(path, 1), n.children[1]->mark,
           "format: restic writes one repository: give exactly one destination");
    return;
  }
  if (destinations.size() == 1 && !std::holds_alternative<local_destination>(destinations[0])) {
    d.fail(item_path(path, 0), n.children[0]->mark,
           "format: restic needs a local destination (the repository's folder); " +
               std::string(destination_kind(destinations[0])) + " holds archives only");
  }
}

void read_schedule_spec(decoder& d, const node& n, const std::string& path,
                        std::string_view schedule_name, backup_schedule_spec& out) {
  if (!expect(d, n, node::type::map, path)) {
    return;
  }
  field_reader f{d, n, path};
  if (const node* v = f.required("schedule")) {
    if (auto text = read_string(d, *v, f.path_of("schedule"))) {
      d.check(check_schedule(*text), f.path_of("schedule"), v->mark);
      out.schedule = std::move(*text);
    }
  }
  if (const node* v = f.optional("timezone")) {
    if (auto zone = read_string(d, *v, f.path_of("timezone"))) {
      d.check(check_time_zone(*zone), f.path_of("timezone"), v->mark);
      out.timezone = std::move(*zone);
    }
  }
  if (const node* v = f.optional("suspend")) {
    out.suspend = read_bool(d, *v, f.path_of("suspend")).value_or(out.suspend);
  }
  const node* volumes = f.optional("volumes");
  const node* selector = f.optional("volumeSelector");
  if (volumes != nullptr) {
    read_volume_names(d, *volumes, f.path_of("volumes"), out.volumes);
  }
  if (selector != nullptr) {
    read_selector(d, *selector, f.path_of("volumeSelector"), out.volume_selector);
  }
  if (volumes != nullptr && selector != nullptr) {
    d.fail(f.path_of("volumeSelector"), selector->mark,
           "volumes and volumeSelector are mutually exclusive");
  } else if (volumes == nullptr && selector == nullptr) {
    d.fail(path, n.mark, "one of volumes or volumeSelector is required");
  }
  const node* group = f.optional("stopDuringBackup");
  if (group != nullptr) {
    read_group(d, *group, f.path_of("stopDuringBackup"), out.stop_during_backup);
  }
  read_label_match(d, f, group, out.stop_during_backup, out.label_match);
  if (const node* v = f.optional("execLabel")) {
    std::string label;
    read_group(d, *v, f.path_of("execLabel"), label);
    if (!label.empty()) {
      out.exec_label = std::move(label);
    }
  }
  if (const node* v = f.optional("timeouts")) {
    read_timeouts(d, *v, f.path_of("timeouts"), /*with_hooks=*/true, out.timeouts);
  }
  if (const node* v = f.optional("format")) {
    read_format(d, *v, f.path_of("format"), out.format);
  }
  const bool restic = out.format == backup_format::restic;
  const node* restic_node = f.optional("restic");
  if (restic_node != nullptr && !restic) {
    d.fail(f.path_of("restic"), restic_node->mark, "only with format: restic");
  } else if (restic_node != nullptr) {
    read_restic(d, *restic_node, f.path_of("restic"), out.restic);
  } else if (restic) {
    d.fail(f.path_of("restic"), n.mark,
           "required with format: restic (at least passwordFile: the repository's password)");
  }
  if (const node* v = f.optional("archive"); v != nullptr && restic) {
    // Compression and encryption are the repository's own with restic; a
    // name template has nothing to name.
    d.fail(f.path_of("archive"), v->mark,
           "not with format: restic (the repository compresses and encrypts; see spec.restic)");
  } else if (v != nullptr) {
    read_archive(d, *v, f.path_of("archive"), schedule_name, out.archive);
  } else {
    // The default template is valid for every valid name; check it anyway so
    // that a change of the default cannot slip through untested.
    d.check(check_archive_name_template(out.archive.name, schedule_name), f.path_of("archive"),
            n.mark);
  }
  if (const node* v = f.required("destinations")) {
    read_destinations(d, *v, f.path_of("destinations"), out.destinations);
    if (restic) {
      check_restic_destinations(d, *v, f.path_of("destinations"), out.destinations);
    }
  }
  if (const node* v = f.optional("retention")) {
    read_retention(d, *v, f.path_of("retention"), out.format, out.retention);
  }
  if (const node* v = f.optional("historyLimits")) {
    read_history_limits(d, *v, f.path_of("historyLimits"), out.history_limits);
  }
  if (const node* v = f.optional("notifications")) {
    read_notifications(d, *v, f.path_of("notifications"), out.notifications);
  }
  f.finish();
}

void read_backup_spec(decoder& d, const node& n, const std::string& path, backup_spec& out) {
  if (!expect(d, n, node::type::map, path)) {
    return;
  }
  field_reader f{d, n, path};
  if (const node* v = f.required("scheduleRef")) {
    if (auto ref = read_string(d, *v, f.path_of("scheduleRef"))) {
      d.check(check_object_name(*ref, max_schedule_name_length), f.path_of("scheduleRef"), v->mark);
      out.schedule_ref = std::move(*ref);
    }
  }
  f.finish();
}

// A mapping's `from`: a volume name, or (from a restic snapshot) an absolute
// path inside the snapshot, which then needs a `to`.
std::optional<std::string> check_mapping_source(std::string_view from, bool snapshot_paths,
                                                bool has_target) {
  if (!snapshot_paths || !from.starts_with('/')) {
    return check_volume_name(from);
  }
  if (auto bad = check_absolute_path(from)) {
    return bad;
  }
  if (!has_target) {
    return "a path inside the snapshot needs the target volume: " + std::string(from) +
           "=VOLUME, or {from: " + std::string(from) + ", to: VOLUME}";
  }
  return std::nullopt;
}

// "NAME" or "NAME=TARGET".
std::optional<volume_mapping> read_short_mapping(decoder& d, const node& n, const std::string& path,
                                                 bool snapshot_paths) {
  const auto text = read_string(d, n, path);
  if (!text) {
    return std::nullopt;
  }
  const std::size_t equals = text->find('=');
  volume_mapping m;
  m.from = text->substr(0, equals);
  m.to = equals == std::string::npos ? m.from : text->substr(equals + 1);
  const std::size_t errors = d.error_count();
  d.check(check_mapping_source(m.from, snapshot_paths, equals != std::string::npos), path, n.mark);
  if (m.to != m.from) {
    d.check(check_volume_name(m.to), path, n.mark);
  }
  return d.error_count() == errors ? std::optional{m} : std::nullopt;
}

std::optional<volume_mapping> read_long_mapping(decoder& d, const node& n, const std::string& path,
                                                bool snapshot_paths) {
  field_reader f{d, n, path};
  volume_mapping m;
  const std::size_t errors = d.error_count();
  const node* to = f.optional("to");
  if (const node* v = f.required("from")) {
    if (auto from = read_string(d, *v, f.path_of("from"))) {
      d.check(check_mapping_source(*from, snapshot_paths, to != nullptr), f.path_of("from"),
              v->mark);
      m.from = std::move(*from);
    }
  }
  if (to != nullptr) {
    if (auto target = read_string(d, *to, f.path_of("to"))) {
      d.check(check_volume_name(*target), f.path_of("to"), to->mark);
      m.to = std::move(*target);
    }
  } else {
    m.to = m.from;
  }
  f.finish();
  return d.error_count() == errors ? std::optional{m} : std::nullopt;
}

void read_volume_mappings(decoder& d, const node& n, const std::string& path,
                          std::vector<volume_mapping>& out, bool snapshot_paths) {
  if (!expect(d, n, node::type::sequence, path)) {
    return;
  }
  if (n.children.empty()) {
    d.fail(path, n.mark, "must not be empty");
    return;
  }
  std::unordered_set<std::string> targets;
  for (std::size_t i = 0; i < n.children.size(); ++i) {
    const node& item = *n.children[i];
    const std::string ipath = item_path(path, i);
    std::optional<volume_mapping> m;
    if (item.kind == node::type::scalar) {
      m = read_short_mapping(d, item, ipath, snapshot_paths);
    } else if (item.kind == node::type::map) {
      m = read_long_mapping(d, item, ipath, snapshot_paths);
    } else {
      d.fail(ipath, item.mark, "expected a string or a map, got " + describe(item));
    }
    if (!m) {
      continue;
    }
    if (!targets.insert(m->to).second) {
      d.fail(ipath, item.mark, "volume " + quote(m->to) + " is the target of another mapping");
      continue;
    }
    out.push_back(std::move(*m));
  }
}

std::optional<restore_source> read_restore_source(decoder& d, const node& n,
                                                  const std::string& path) {
  if (!expect(d, n, node::type::map, path)) {
    return std::nullopt;
  }
  field_reader f{d, n, path};
  std::optional<destination> dest;
  std::optional<std::string> name;
  if (const node* v = f.required("destination")) {
    dest = read_destination(d, *v, f.path_of("destination"));
  }
  if (const node* v = f.required("name")) {
    name = read_string(d, *v, f.path_of("name"));
    if (name) {
      d.check(check_archive_file_name(*name), f.path_of("name"), v->mark);
    }
  }
  f.finish();
  if (!dest || !name) {
    return std::nullopt;
  }
  return restore_source{std::move(*dest), std::move(*name)};
}

// "latest", or 1-64 lower-case hex digits.
std::optional<std::string> check_snapshot_id(std::string_view id) {
  const bool hex = !id.empty() && id.size() <= 64 &&
                   id.find_first_not_of("0123456789abcdef") == std::string_view::npos;
  if (id == "latest" || hex) {
    return std::nullopt;
  }
  return "expected latest or a snapshot ID (lower-case hex, as restic snapshots prints it), got " +
         quote(id);
}

std::optional<restic_source> read_restic_source(decoder& d, const node& n,
                                                const std::string& path) {
  if (!expect(d, n, node::type::map, path)) {
    return std::nullopt;
  }
  field_reader f{d, n, path};
  restic_source r;
  const std::size_t errors = d.error_count();
  for (const auto& [key, member] : {std::pair{"repository", &restic_source::repository},
                                    std::pair{"passwordFile", &restic_source::password_file}}) {
    if (const node* v = f.required(key)) {
      if (auto p = read_string(d, *v, f.path_of(key))) {
        d.check(check_absolute_path(*p), f.path_of(key), v->mark);
        r.*member = std::move(*p);
      }
    }
  }
  refuse_inline_secrets(d, f, {{"password", "passwordFile"}});
  if (const node* v = f.optional("snapshot")) {
    if (auto id = read_string(d, *v, f.path_of("snapshot"))) {
      d.check(check_snapshot_id(*id), f.path_of("snapshot"), v->mark);
      r.snapshot = std::move(*id);
    }
  }
  if (const node* v = f.optional("tags")) {
    const std::string tpath = f.path_of("tags");
    if (expect(d, *v, node::type::sequence, tpath)) {
      for (std::size_t i = 0; i < v->children.size(); ++i) {
        const node& item = *v->children[i];
        if (auto tag = read_string(d, item, item_path(tpath, i))) {
          if (tag->empty() || tag->find(',') != std::string::npos) {
            d.fail(item_path(tpath, i), item.mark,
                   "a tag is not empty and has no ',' (restic splits tags at commas)");
          }
          r.tags.push_back(std::move(*tag));
        }
      }
    }
  }
  f.finish();
  return d.error_count() == errors ? std::optional{r} : std::nullopt;
}

void read_restore_spec(decoder& d, const node& n, const std::string& path, restore_spec& out) {
  if (!expect(d, n, node::type::map, path)) {
    return;
  }
  field_reader f{d, n, path};
  const node* backup_ref = f.optional("backupRef");
  const node* archive = f.optional("archive");
  if (backup_ref != nullptr) {
    out.backup_ref = read_string(d, *backup_ref, f.path_of("backupRef"));
    if (out.backup_ref) {
      d.check(check_object_name(*out.backup_ref), f.path_of("backupRef"), backup_ref->mark);
    }
  }
  if (archive != nullptr) {
    out.archive = read_string(d, *archive, f.path_of("archive"));
    if (out.archive) {
      d.check(check_absolute_path(*out.archive), f.path_of("archive"), archive->mark);
    }
  }
  const node* source = f.optional("source");
  if (source != nullptr) {
    out.source = read_restore_source(d, *source, f.path_of("source"));
  }
  const node* restic = f.optional("restic");
  if (restic != nullptr) {
    out.restic = read_restic_source(d, *restic, f.path_of("restic"));
  }
  const int given =
      (backup_ref != nullptr) + (archive != nullptr) + (source != nullptr) + (restic != nullptr);
  if (given > 1) {
    const auto* second = restic != nullptr ? "restic" : source != nullptr ? "source" : "archive";
    const node* at = restic != nullptr ? restic : source != nullptr ? source : archive;
    d.fail(f.path_of(second), at->mark,
           "backupRef, archive, source and restic are mutually exclusive: give one");
  } else if (given == 0) {
    d.fail(path, n.mark, "one of backupRef, archive, source or restic is required");
  }
  if (const node* v = f.required("volumes")) {
    read_volume_mappings(d, *v, f.path_of("volumes"), out.volumes,
                         /*snapshot_paths=*/restic != nullptr);
  }
  if (const node* v = f.optional("wipe")) {
    out.wipe = read_bool(d, *v, f.path_of("wipe")).value_or(out.wipe);
  }
  if (const node* v = f.optional("createVolume")) {
    out.create_volume = read_bool(d, *v, f.path_of("createVolume")).value_or(out.create_volume);
  }
  const node* group = f.optional("stopDuringBackup");
  if (group != nullptr) {
    read_group(d, *group, f.path_of("stopDuringBackup"), out.stop_during_backup);
  }
  read_label_match(d, f, group, out.stop_during_backup, out.label_match);
  if (const node* v = f.optional("timeouts")) {
    read_timeouts(d, *v, f.path_of("timeouts"), /*with_hooks=*/false, out.timeouts);
  }
  if (const node* v = f.optional("decryption")) {
    if (restic != nullptr) {
      d.fail(f.path_of("decryption"), v->mark,
             "not with restic: the repository's password (restic.passwordFile) decrypts it");
    } else {
      read_decryption(d, *v, f.path_of("decryption"), out.decryption);
    }
  }
  if (const node* v = f.optional("notifications")) {
    read_notifications(d, *v, f.path_of("notifications"), out.notifications);
  }
  f.finish();
}

void read_metadata(decoder& d, const node& n, std::size_t max_name, object_meta& out,
                   std::string& raw_name) {
  const std::string path = "metadata";
  if (!expect(d, n, node::type::map, path)) {
    return;
  }
  field_reader f{d, n, path};
  if (const node* v = f.required("name")) {
    if (v->kind == node::type::scalar) {
      raw_name = v->text;
    }
    if (auto name = read_string(d, *v, f.path_of("name"))) {
      d.check(check_object_name(*name, max_name), f.path_of("name"), v->mark);
      out.name = std::move(*name);
    }
  }
  if (const node* v = f.optional("labels")) {
    read_string_map(d, *v, f.path_of("labels"), out.labels);
  }
  f.finish();
}

enum class object_kind { backup_schedule, backup, restore };

struct kind_name {
  std::string_view name;
  object_kind kind;
};
constexpr kind_name kind_names[] = {{backup_schedule::kind, object_kind::backup_schedule},
                                    {backup::kind, object_kind::backup},
                                    {restore::kind, object_kind::restore}};

decoded_document decode_document(const node& root, int index, const YAML::Mark& start) {
  decoded_document doc;
  doc.index = index;
  doc.line = start.line + 1;
  decoder d;
  if (!expect(d, root, node::type::map, "")) {
    doc.errors = std::move(d.errors());
    return doc;
  }
  field_reader top{d, root, ""};
  if (const node* v = top.required("apiVersion")) {
    const auto version = read_string(d, *v, "apiVersion");
    if (version && *version != api_version) {
      d.fail("apiVersion", v->mark,
             "unsupported apiVersion " + quote(*version) + "; expected \"" +
                 std::string{api_version} + "\"");
    }
  }
  std::optional<object_kind> kind;
  if (const node* v = top.required("kind")) {
    if (v->kind == node::type::scalar) {
      doc.kind = v->text;
    }
    if (const auto text = read_string(d, *v, "kind")) {
      const auto it = std::find_if(std::begin(kind_names), std::end(kind_names),
                                   [&](const kind_name& k) { return k.name == *text; });
      if (it != std::end(kind_names)) {
        kind = it->kind;
      } else {
        d.fail("kind", v->mark,
               "unknown kind " + quote(*text) + "; expected BackupSchedule, Backup or Restore");
      }
    }
  }
  const node* metadata = top.required("metadata");
  const node* spec = top.required("spec");
  top.finish();

  object_meta meta;
  if (metadata != nullptr) {
    const std::size_t max_name =
        kind == object_kind::backup_schedule ? max_schedule_name_length : max_name_length;
    read_metadata(d, *metadata, max_name, meta, doc.name);
  }
  std::optional<object> value;
  if (kind == object_kind::backup_schedule) {
    backup_schedule s;
    s.metadata = meta;
    // A name that failed its check must not also fail the archive template.
    const bool name_valid = !check_object_name(meta.name, max_schedule_name_length);
    const std::string_view schedule_name =
        name_valid ? std::string_view{meta.name} : std::string_view{"schedule"};
    if (spec != nullptr) {
      read_schedule_spec(d, *spec, "spec", schedule_name, s.spec);
    }
    value = std::move(s);
  } else if (kind == object_kind::backup) {
    backup b;
    b.metadata = meta;
    if (spec != nullptr) {
      read_backup_spec(d, *spec, "spec", b.spec);
    }
    value = std::move(b);
  } else if (kind == object_kind::restore) {
    restore r;
    r.metadata = meta;
    if (spec != nullptr) {
      read_restore_spec(d, *spec, "spec", r.spec);
    }
    value = std::move(r);
  }

  doc.errors = std::move(d.errors());
  std::stable_sort(doc.errors.begin(), doc.errors.end(),
                   [](const decode_error& a, const decode_error& b) {
                     return std::pair{a.line, a.column} < std::pair{b.line, b.column};
                   });
  if (doc.errors.empty()) {
    doc.value = std::move(value);
  }
  return doc;
}

// ---------------------------------------------------------------------------
// Encoding.

// True for strings that YAML 1.1 or 1.2 parsers other than ours would read as
// a boolean, null or number when written plain (ours reads any plain scalar
// as a string where a string is expected). yaml-cpp writes them plain.
bool looks_like_non_string(std::string_view s) {
  static constexpr std::string_view keywords[] = {"true", "false", "yes",   "no",   "on",
                                                  "off",  "y",     "n",     "null", "~",
                                                  ".inf", "-.inf", "+.inf", ".nan"};
  std::string lower{s};
  std::transform(lower.begin(), lower.end(), lower.begin(), [](char c) {
    return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c;
  });
  if (std::find(std::begin(keywords), std::end(keywords), lower) != std::end(keywords)) {
    return true;
  }
  constexpr std::string_view number_start = "0123456789+-.";
  constexpr std::string_view number_chars = "0123456789abcdefABCDEFxXoO.+-_:";
  return !s.empty() && number_start.find(s.front()) != std::string_view::npos &&
         s.find_first_not_of(number_chars) == std::string_view::npos;
}

void emit_string(YAML::Emitter& out, std::string_view value) {
  if (looks_like_non_string(value)) {
    out << YAML::DoubleQuoted;
  }
  out << std::string{value};
}

void emit(YAML::Emitter& out, std::string_view key, std::string_view value) {
  out << YAML::Key << std::string{key} << YAML::Value;
  emit_string(out, value);
}

void emit_string_map(YAML::Emitter& out, std::string_view key,
                     const std::map<std::string, std::string>& values) {
  out << YAML::Key << std::string{key} << YAML::Value << YAML::BeginMap;
  for (const auto& [k, v] : values) {
    out << YAML::Key;
    emit_string(out, k);
    out << YAML::Value;
    emit_string(out, v);
  }
  out << YAML::EndMap;
}

void emit_timeouts(YAML::Emitter& out, const timeouts_spec& t, bool with_hooks) {
  out << YAML::Key << "timeouts" << YAML::Value << YAML::BeginMap;
  emit(out, "scaleDown", format_duration(t.scale_down));
  emit(out, "scaleUp", format_duration(t.scale_up));
  if (with_hooks) {
    emit(out, "hooks", format_duration(t.hooks));
  }
  out << YAML::EndMap;
}

// `encryption: {age|gpg: {...}}`, as read_encryption reads it.
void emit_encryption(YAML::Emitter& out, const encryption_spec& spec) {
  out << YAML::Key << "encryption" << YAML::Value << YAML::BeginMap;
  std::visit(overloaded{[&](const age_encryption& age) {
                          out << YAML::Key << "age" << YAML::Value << YAML::BeginMap;
                          if (!age.recipients.empty()) {
                            out << YAML::Key << "recipients" << YAML::Value << YAML::BeginSeq;
                            for (const auto& r : age.recipients) {
                              emit_string(out, r);
                            }
                            out << YAML::EndSeq;
                          }
                          if (age.recipients_file) {
                            emit(out, "recipientsFile", *age.recipients_file);
                          }
                          if (age.passphrase_file) {
                            emit(out, "passphraseFile", *age.passphrase_file);
                          }
                        },
                        [&](const gpg_encryption& gpg) {
                          out << YAML::Key << "gpg" << YAML::Value << YAML::BeginMap;
                          if (gpg.public_key_file) {
                            emit(out, "publicKeyFile", *gpg.public_key_file);
                          }
                          if (!gpg.public_keys.empty()) {
                            emit(out, "publicKeys", gpg.public_keys);
                          }
                          if (gpg.passphrase_file) {
                            emit(out, "passphraseFile", *gpg.passphrase_file);
                          }
                        }},
             spec);
  out << YAML::EndMap << YAML::EndMap;
}

// `decryption: {age|gpg: {...}}`, as read_decryption reads it.
void emit_decryption(YAML::Emitter& out, const decryption_spec& spec) {
  out << YAML::Key << "decryption" << YAML::Value << YAML::BeginMap;
  std::visit(overloaded{[&](const age_decryption& age) {
                          out << YAML::Key << "age" << YAML::Value << YAML::BeginMap;
                          if (age.identity_file) {
                            emit(out, "identityFile", *age.identity_file);
                          }
                          if (age.passphrase_file) {
                            emit(out, "passphraseFile", *age.passphrase_file);
                          }
                        },
                        [&](const gpg_decryption& gpg) {
                          out << YAML::Key << "gpg" << YAML::Value << YAML::BeginMap;
                          if (gpg.secret_key_file) {
                            emit(out, "secretKeyFile", *gpg.secret_key_file);
                          }
                          if (gpg.passphrase_file) {
                            emit(out, "passphraseFile", *gpg.passphrase_file);
                          }
                        }},
             spec);
  out << YAML::EndMap << YAML::EndMap;
}

// `{kind: {...}}`, as read_destination reads it.
void emit_destination(YAML::Emitter& out, const destination& dest) {
  out << YAML::BeginMap << YAML::Key << std::string{destination_kind(dest)} << YAML::Value;
  std::visit(overloaded{[&](const local_destination& l) {
                          out << YAML::BeginMap;
                          emit(out, "path", l.path);
                          out << YAML::EndMap;
                        },
                        [&](const s3_destination& s3) {
                          out << YAML::BeginMap;
                          emit(out, "bucket", s3.bucket);
                          if (!s3.prefix.empty()) {
                            emit(out, "prefix", s3.prefix);
                          }
                          if (s3.endpoint) {
                            emit(out, "endpoint", *s3.endpoint);
                          }
                          emit(out, "region", s3.region);
                          out << YAML::Key << "pathStyle" << YAML::Value << s3.path_style;
                          if (s3.storage_class) {
                            emit(out, "storageClass", *s3.storage_class);
                          }
                          emit(out, "accessKeyIdFile", s3.access_key_id_file);
                          emit(out, "secretAccessKeyFile", s3.secret_access_key_file);
                          if (s3.ca_file) {
                            emit(out, "caFile", *s3.ca_file);
                          }
                          if (s3.insecure_skip_verify) {
                            out << YAML::Key << "insecureSkipVerify" << YAML::Value << true;
                          }
                          out << YAML::EndMap;
                        },
                        [&](const webdav_destination& dav) {
                          out << YAML::BeginMap;
                          emit(out, "url", dav.url);
                          if (dav.username) {
                            emit(out, "username", *dav.username);
                          }
                          if (dav.password_file) {
                            emit(out, "passwordFile", *dav.password_file);
                          }
                          if (dav.ca_file) {
                            emit(out, "caFile", *dav.ca_file);
                          }
                          if (dav.insecure_skip_verify) {
                            out << YAML::Key << "insecureSkipVerify" << YAML::Value << true;
                          }
                          out << YAML::EndMap;
                        },
                        [&](const sftp_destination& sftp) {
                          out << YAML::BeginMap;
                          emit(out, "host", sftp.host);
                          out << YAML::Key << "port" << YAML::Value << sftp.port;
                          emit(out, "user", sftp.user);
                          emit(out, "path", sftp.path);
                          if (sftp.identity_file) {
                            emit(out, "identityFile", *sftp.identity_file);
                          }
                          if (sftp.password_file) {
                            emit(out, "passwordFile", *sftp.password_file);
                          }
                          emit(out, "knownHostsFile", sftp.known_hosts_file);
                          out << YAML::EndMap;
                        }},
             dest);
  out << YAML::EndMap;
}

void emit_notifications(YAML::Emitter& out, const std::optional<notifications_spec>& n) {
  if (!n) {
    return;
  }
  out << YAML::Key << "notifications" << YAML::Value << YAML::BeginMap;
  emit(out, "level", to_string(n->level));
  if (!n->urls.empty()) {
    out << YAML::Key << "urls" << YAML::Value << YAML::BeginSeq;
    for (const auto& url : n->urls) {
      emit_string(out, url);
    }
    out << YAML::EndSeq;
  }
  if (n->urls_file) {
    emit(out, "urlsFile", *n->urls_file);
  }
  if (n->message_template) {
    out << YAML::Key << "template" << YAML::Value << YAML::BeginMap;
    if (n->message_template->title) {
      emit(out, "title", *n->message_template->title);
    }
    if (n->message_template->body) {
      emit(out, "body", *n->message_template->body);
    }
    out << YAML::EndMap;
  }
  if (n->template_file) {
    emit(out, "templateFile", *n->template_file);
  }
  out << YAML::EndMap;
}

void emit_archive(YAML::Emitter& out, const archive_spec& archive);
void emit_destinations_and_retention(YAML::Emitter& out, const backup_schedule_spec& s);

void emit_spec(YAML::Emitter& out, const backup_schedule_spec& s) {
  emit(out, "schedule", s.schedule);
  emit(out, "timezone", s.timezone);
  out << YAML::Key << "suspend" << YAML::Value << s.suspend;
  if (s.volume_selector) {
    out << YAML::Key << "volumeSelector" << YAML::Value << YAML::BeginMap;
    emit_string_map(out, "matchLabels", s.volume_selector->match_labels);
    out << YAML::EndMap;
  } else {
    out << YAML::Key << "volumes" << YAML::Value << YAML::BeginSeq;
    for (const auto& v : s.volumes) {
      emit_string(out, v);
    }
    out << YAML::EndSeq;
  }
  emit(out, "stopDuringBackup", s.stop_during_backup);
  if (s.label_match != label_match::exact) {
    emit(out, "labelMatch", to_string(s.label_match));
  }
  if (s.exec_label) {
    emit(out, "execLabel", *s.exec_label);
  }
  emit_timeouts(out, s.timeouts, /*with_hooks=*/true);
  if (s.format == backup_format::restic) {
    emit(out, "format", to_string(s.format));
    out << YAML::Key << "restic" << YAML::Value << YAML::BeginMap;
    if (s.restic) {
      emit(out, "passwordFile", s.restic->password_file);
      emit(out, "compression", to_string(s.restic->compression));
    }
    out << YAML::EndMap;
  } else {
    emit_archive(out, s.archive);
  }
  emit_destinations_and_retention(out, s);
  out << YAML::Key << "historyLimits" << YAML::Value << YAML::BeginMap;
  out << YAML::Key << "succeeded" << YAML::Value << s.history_limits.succeeded;
  out << YAML::Key << "failed" << YAML::Value << s.history_limits.failed;
  out << YAML::EndMap;
  emit_notifications(out, s.notifications);
}

void emit_archive(YAML::Emitter& out, const archive_spec& archive) {
  out << YAML::Key << "archive" << YAML::Value << YAML::BeginMap;
  emit(out, "name", archive.name);
  emit(out, "compression", to_string(archive.compression));
  if (archive.level) {
    out << YAML::Key << "level" << YAML::Value << *archive.level;
  }
  if (archive.exclude) {
    emit(out, "exclude", *archive.exclude);
  }
  if (archive.encryption) {
    emit_encryption(out, *archive.encryption);
  }
  out << YAML::EndMap;
}

void emit_destinations_and_retention(YAML::Emitter& out, const backup_schedule_spec& s) {
  out << YAML::Key << "destinations" << YAML::Value << YAML::BeginSeq;
  for (const auto& dest : s.destinations) {
    emit_destination(out, dest);
  }
  out << YAML::EndSeq;
  if (s.retention) {
    out << YAML::Key << "retention" << YAML::Value << YAML::BeginMap;
    for (const auto& field : retention_fields) {
      if (const auto& value = (*s.retention).*field.member) {
        out << YAML::Key << std::string(field.key) << YAML::Value << *value;
      }
    }
    out << YAML::EndMap;
  }
}

void emit_spec(YAML::Emitter& out, const backup_spec& s) {
  emit(out, "scheduleRef", s.schedule_ref);
}

void emit_spec(YAML::Emitter& out, const restore_spec& s) {
  if (s.backup_ref) {
    emit(out, "backupRef", *s.backup_ref);
  }
  if (s.archive) {
    emit(out, "archive", *s.archive);
  }
  if (s.source) {
    out << YAML::Key << "source" << YAML::Value << YAML::BeginMap;
    out << YAML::Key << "destination" << YAML::Value;
    emit_destination(out, s.source->destination);
    emit(out, "name", s.source->name);
    out << YAML::EndMap;
  }
  if (s.restic) {
    out << YAML::Key << "restic" << YAML::Value << YAML::BeginMap;
    emit(out, "repository", s.restic->repository);
    emit(out, "passwordFile", s.restic->password_file);
    emit(out, "snapshot", s.restic->snapshot);
    if (!s.restic->tags.empty()) {
      out << YAML::Key << "tags" << YAML::Value << YAML::BeginSeq;
      for (const auto& t : s.restic->tags) {
        emit_string(out, t);
      }
      out << YAML::EndSeq;
    }
    out << YAML::EndMap;
  }
  out << YAML::Key << "volumes" << YAML::Value << YAML::BeginSeq;
  for (const auto& m : s.volumes) {
    out << YAML::Flow << YAML::BeginMap;
    emit(out, "from", m.from);
    emit(out, "to", m.to);
    out << YAML::EndMap;
  }
  out << YAML::EndSeq;
  out << YAML::Key << "wipe" << YAML::Value << s.wipe;
  if (s.create_volume) {
    out << YAML::Key << "createVolume" << YAML::Value << true;
  }
  if (!s.stop_during_backup.empty()) {
    emit(out, "stopDuringBackup", s.stop_during_backup);
  }
  if (s.label_match != label_match::exact) {
    emit(out, "labelMatch", to_string(s.label_match));
  }
  emit_timeouts(out, s.timeouts, /*with_hooks=*/false);
  if (s.decryption) {
    emit_decryption(out, *s.decryption);
  }
  emit_notifications(out, s.notifications);
}

// The message for a parser stuck at `mark`, naming the character there when
// the mark is a byte offset into `text` (it is for UTF-8 input).
std::string unexpected_at(std::string_view text, const YAML::Mark& mark) {
  if (mark.pos >= 0 && static_cast<std::size_t>(mark.pos) < text.size()) {
    return "unexpected " + quote(text.substr(static_cast<std::size_t>(mark.pos), 1));
  }
  return "unexpected content";
}

}  // namespace

std::string format_error(const decode_error& e) {
  std::string out;
  if (e.line > 0) {
    out += std::to_string(e.line) + ":" + std::to_string(e.column) + ": ";
  }
  if (!e.path.empty()) {
    out += e.path + ": ";
  }
  out += e.message;
  return out;
}

bool decode_result::ok() const {
  return std::all_of(documents.begin(), documents.end(),
                     [](const decoded_document& d) { return d.errors.empty(); });
}

std::vector<object> decode_result::objects() const {
  std::vector<object> out;
  for (const auto& d : documents) {
    if (d.value) {
      out.push_back(*d.value);
    }
  }
  return out;
}

std::vector<decode_error> decode_result::errors() const {
  std::vector<decode_error> out;
  for (const auto& d : documents) {
    out.insert(out.end(), d.errors.begin(), d.errors.end());
  }
  return out;
}

decoded_destination decode_destination(std::string_view text) {
  decoded_destination out;
  try {
    std::istringstream in{std::string{text}};
    YAML::Parser parser{in};
    tree_builder builder;
    if (!parser.HandleNextDocument(builder) || builder.root() == nullptr ||
        builder.root()->kind == node::type::null) {
      out.errors.push_back({"", 1, 1, "no destination: expected one like s3: {bucket: …}"});
      return out;
    }
    decoder d;
    auto dest = read_destination(d, *builder.root(), "");
    if (tree_builder next; d.error_count() == 0 && parser.HandleNextDocument(next)) {
      d.fail("", next.start(), "expected one document holding one destination");
    }
    out.errors = std::move(d.errors());
    if (out.errors.empty()) {
      out.value = std::move(dest);
    }
  } catch (const YAML::Exception& e) {
    out.errors.push_back({"", e.mark.line + 1, e.mark.column + 1, e.msg});
  } catch (const std::exception& e) {
    out.errors.push_back({"", 0, 0, std::string{"cannot parse YAML: "} + e.what()});
  }
  return out;
}

decode_result decode(std::string_view text) {
  decode_result result;
  int index = 0;
  try {
    std::istringstream in{std::string{text}};
    YAML::Parser parser{in};
    int previous_start = -1;
    for (;; ++index) {
      tree_builder builder;
      if (!parser.HandleNextDocument(builder)) {
        break;
      }
      // yaml-cpp 0.7 can hand out an empty document without consuming the
      // token it stopped at (e.g. a ',' at the start of a document), forever
      // (yaml-cpp issues #1040, #1319). Every real document consumes input,
      // so a document starting where the previous one started is that bug.
      if (builder.start().pos == previous_start) {
        --index;  // the same document as the previous one
        throw YAML::ParserException(builder.start(), unexpected_at(text, builder.start()));
      }
      previous_start = builder.start().pos;
      if (builder.root() == nullptr || builder.root()->kind == node::type::null) {
        continue;  // an empty document, e.g. after a trailing `---`
      }
      result.documents.push_back(decode_document(*builder.root(), index, builder.start()));
    }
  } catch (const YAML::Exception& e) {
    // A syntax error: the parser cannot resynchronise, so the text ends here.
    decoded_document doc;
    doc.index = index;
    doc.line = e.mark.line + 1;
    doc.errors.push_back({"", e.mark.line + 1, e.mark.column + 1, e.msg});
    result.documents.push_back(std::move(doc));
  } catch (const std::exception& e) {
    // Not expected from yaml-cpp's parser, short of memory exhaustion; the
    // contract is that decoding never throws.
    decoded_document doc;
    doc.index = index;
    doc.errors.push_back({"", 0, 0, std::string{"cannot parse YAML: "} + e.what()});
    result.documents.push_back(std::move(doc));
  }
  return result;
}

std::string encode_yaml(const object& o) {
  YAML::Emitter out;
  out << YAML::BeginMap;
  emit(out, "apiVersion", api_version);
  emit(out, "kind", kind_of(o));
  const object_meta& meta = metadata_of(o);
  out << YAML::Key << "metadata" << YAML::Value << YAML::BeginMap;
  emit(out, "name", meta.name);
  if (!meta.labels.empty()) {
    emit_string_map(out, "labels", meta.labels);
  }
  out << YAML::EndMap;
  out << YAML::Key << "spec" << YAML::Value << YAML::BeginMap;
  std::visit([&](const auto& typed) { emit_spec(out, typed.spec); }, o);
  out << YAML::EndMap;
  out << YAML::EndMap;
  return std::string{out.c_str(), out.size()} + "\n";
}

}  // namespace lifeboat::api
