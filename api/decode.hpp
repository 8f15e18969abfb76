#pragma once

// Strict YAML decoding of lifeboat objects, and encoding back to YAML.
//
// Decoding reads every document of a text and reports, per document, either
// the object or every error found in it: YAML syntax, unknown or duplicate
// fields, wrong types, missing required fields, bad enum values, unsupported
// apiVersion or kind, and every validation of api/validate.hpp. Rules beyond
// the field types:
//  - An explicit null (`field:`, `~`, `null`) counts as an absent field.
//  - Booleans are the plain scalars `true` and `false` only; integers are
//    plain decimal scalars. A quoted or explicitly tagged scalar ("5", !!int 5)
//    is a string, and a string is not a boolean or an integer.
//  - A string field accepts any non-null scalar as written (so
//    `stopDuringBackup: true` is the string "true", `1.50` is "1.50");
//    strings must be valid UTF-8 without NUL characters.
//  - Documents that are empty (e.g. after a trailing `---`) are skipped.
//  - A YAML syntax error ends the text: the documents before it are kept, the
//    rest is not read.
//  - Merge keys (`<<: *base`) are not supported: yaml-cpp 0.7 does not expand
//    them, so they are unknown fields.

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "api/objects.hpp"

namespace lifeboat::api {

struct decode_error {
  std::string path;  // e.g. "spec.destinations[0].local.path"; empty for the document itself
  int line = 0;      // 1-based; 0 when no position is known
  int column = 0;    // 1-based; 0 when no position is known
  std::string message;

  bool operator==(const decode_error&) const = default;
};

/// "line:col: path: message", leaving out "line:col: " when the position is
/// unknown and "path: " when the path is empty. The CLI prefixes the file name.
std::string format_error(const decode_error& e);

struct decoded_document {
  int index = 0;     // 0-based position among all documents of the text, empty ones included
  int line = 0;      // 1-based line where the document starts
  std::string kind;  // best effort, for reporting: as written, possibly empty
  std::string name;  // best effort, for reporting: metadata.name as written, possibly empty
  std::optional<object> value;       // set if and only if `errors` is empty
  std::vector<decode_error> errors;  // sorted by line and column
};

struct decode_result {
  std::vector<decoded_document> documents;

  /// True when no document has errors.
  bool ok() const;
  /// The objects of the documents without errors, in text order.
  std::vector<object> objects() const;
  /// The errors of all documents, in text order.
  std::vector<decode_error> errors() const;
};

/// Decodes every YAML document in `text`. Never throws, whatever the input
/// (short of std::bad_alloc); never reads files other than the time zone
/// database. Any thread may call it.
decode_result decode(std::string_view text);

struct decoded_destination {
  std::optional<destination> value;  // set if and only if `errors` is empty
  std::vector<decode_error> errors;
};

/// One destination written as an item of a schedule's `destinations`
/// (`s3: {bucket: …}`), the whole of `text` (one document): what the CLI's
/// `restore --destination FILE` reads. Never throws, as decode().
decoded_destination decode_destination(std::string_view text);

/// One YAML document (without `---`) that decode reads back as `o`, with every
/// default written out. Strings must be valid UTF-8 (as decoded ones are).
std::string encode_yaml(const object& o);

}  // namespace lifeboat::api
