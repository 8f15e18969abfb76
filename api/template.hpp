#pragma once

// The placeholder syntax of notification templates
// (spec.notifications.template and templateFile): text in which `{{name}}`
// (blanks allowed inside the braces) stands for a field of the run. There is
// no escape: `{{` always opens a placeholder. Pure: no I/O, any thread.

#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace lifeboat::api {

/// Every placeholder name a template may use, in the order the README
/// documents them.
const std::vector<std::string_view>& template_placeholders();

/// Why `text` is not a valid template: a `{{` without its `}}`, or a
/// placeholder that is not one of template_placeholders() (named in the
/// message, with the known ones); nullopt when valid.
std::optional<std::string> check_template(std::string_view text);

/// `text` with each known placeholder replaced by its entry in `values` (the
/// empty string when `values` has none). Meant for a text that passed
/// check_template; in any other, an unknown or unclosed placeholder is copied
/// as written.
std::string render_template(std::string_view text,
                            const std::map<std::string, std::string, std::less<>>& values);

}  // namespace lifeboat::api
