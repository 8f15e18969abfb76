#pragma once

#include <string>
#include <string_view>

// Text from outside lifeboat (file names read from volumes, object names,
// engine error messages) on its way into line-oriented output: logs, status
// labels, tables. Pure functions, no allocation beyond the result.
namespace lifeboat::api {

/// `text` with everything that could end, rewrite or reorder a line written as
/// a visible escape: `\n`, `\r`, `\t`; other C0 controls, DEL and bytes that
/// are not part of valid UTF-8 as `\xHH`; C1 controls, U+2028/U+2029 and the
/// bidirectional overrides as `\uHHHH`. Everything else, backslashes included,
/// is kept, so the result of text that needs no escape is the text itself.
std::string escape_controls(std::string_view text);

/// `text` with each byte that is not part of valid UTF-8 written as `\xHH`:
/// what a JSON string may hold (its serializer escapes the controls).
std::string valid_utf8(std::string_view text);

/// As escape_controls, and `\` and `"` escaped as `\\` and `\"`: the body of a
/// quoted string that a reader can turn back into `text` (escapes `\xHH`
/// above 7F stand for bytes that were not UTF-8).
std::string escape_quoted(std::string_view text);

/// `text` with each %XX (two hex digits) turned into its byte; a '%' not
/// followed by two hex digits is kept as written. The inverse of the
/// destinations' URL encoding: WebDAV hrefs and archive locations.
std::string percent_decode(std::string_view text);

/// A size for people: "512 B", "1.5 KiB", ... up to TiB, one decimal.
std::string human_bytes(double bytes);

}  // namespace lifeboat::api
