#pragma once

// Field checks shared by the decoder (api/decode.hpp), which runs all of them
// while decoding, and by code that builds objects or names itself (the CLI,
// the controller). Each returns nullopt when the value is valid, otherwise a
// message that does not repeat the field's path, e.g.
// `unknown time zone "Europe/Berln"`. None throws; all may be called from any
// thread.

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "api/objects.hpp"

namespace lifeboat::api {

/// Docker volume names are at most this long (a directory name).
inline constexpr std::size_t max_volume_name_length = 255;

/// An exclude pattern is at most this long: libstdc++ compiles regular
/// expressions recursively, so this bounds the stack and the time it takes.
inline constexpr std::size_t max_exclude_pattern_length = 512;

/// metadata.name: [a-z0-9]([-a-z0-9]*[a-z0-9])?, 1 to `max_length` characters.
std::optional<std::string> check_object_name(std::string_view name,
                                             std::size_t max_length = max_name_length);

/// Swarm refuses config (and secret) names longer than this.
inline constexpr std::size_t max_config_name_length = 64;

/// Swarm's rule for config names, [a-zA-Z0-9]([a-zA-Z0-9_.-]*[a-zA-Z0-9])?, at
/// most max_config_name_length characters: for names lifeboat gives configs
/// from outside an object (`--lease-name`).
std::optional<std::string> check_config_name(std::string_view name);

/// Docker's rule for local volume names, [a-zA-Z0-9][a-zA-Z0-9_.-]+ (so at
/// least two characters; the engine refuses one-character names), at most
/// max_volume_name_length characters.
std::optional<std::string> check_volume_name(std::string_view name);

/// A schedule expression that cron_schedule::parse accepts.
std::optional<std::string> check_schedule(std::string_view expr);

/// An IANA zone name that date::locate_zone finds in the system's database.
std::optional<std::string> check_time_zone(std::string_view zone);

/// A non-empty ECMAScript regular expression that std::regex compiles, at most
/// max_exclude_pattern_length characters.
std::optional<std::string> check_exclude_pattern(std::string_view pattern);

/// An archive name template: literal text, `{schedule}`, `%%` and the
/// conversions %Y %m %d %H %M %S %y %j %a %b %e %F. Refused: any other `%x`
/// (notably %T, which writes ':'), any other `{...}`, a stray `}`, ':' (tar
/// reads `host:file` as a remote archive and Windows cannot store it) and
/// control characters. Expanded for `schedule_name`, the result must be a
/// file name: not empty, not "." or "..", no '/', at most
/// max_archive_name_length bytes.
std::optional<std::string> check_archive_name_template(std::string_view name_template,
                                                       std::string_view schedule_name);

/// A non-empty path that starts with '/' and has no NUL character.
std::optional<std::string> check_absolute_path(std::string_view path);

/// An archive's file name on a destination (a Restore's source.name): not
/// empty, no '/', no NUL, not "." or "..".
std::optional<std::string> check_archive_file_name(std::string_view name);

/// The shape of an age recipient, as far as it can be told without crypto:
/// "age1" and 58 bech32 characters (lower case), or "ssh-ed25519 " /
/// "ssh-rsa " and base64. The key itself is checked when a run starts.
std::optional<std::string> check_age_recipient(std::string_view recipient);

/// The URL schemes a notification URL may have, as shoutrrr spells them.
const std::vector<std::string_view>& notification_schemes();

/// A notification URL whose scheme (the text before "://") is one of
/// notification_schemes() and that has something after it. The message never
/// repeats the URL beyond its scheme: the rest may hold a password or token.
std::optional<std::string> check_notification_url(std::string_view url);

/// gzip takes 1-9, zstd 1-19, none takes no level at all.
std::optional<std::string> check_compression_level(compression_kind compression, int level);

/// `text` in double quotes for a message: '"', '\' and control bytes are
/// escaped, and text longer than 64 bytes is cut (at a UTF-8 character
/// boundary) and ends in "...".
std::string quote(std::string_view text);

}  // namespace lifeboat::api
