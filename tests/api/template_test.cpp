#include "api/template.hpp"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <string>

namespace lifeboat::api {
namespace {

using ::testing::HasSubstr;

const std::map<std::string, std::string, std::less<>> values = {
    {"name", "nightly-1"}, {"result", "failed"}, {"error", "no space"}};

TEST(check_template, accepts_known_placeholders_blanks_and_plain_text) {
  EXPECT_EQ(check_template(""), std::nullopt);
  EXPECT_EQ(check_template("no placeholder, a lone { and } and }}"), std::nullopt);
  EXPECT_EQ(check_template("{{name}} {{ result }} {{\theldTime\t}}"), std::nullopt);
  for (const auto name : template_placeholders()) {
    EXPECT_EQ(check_template("{{" + std::string(name) + "}}"), std::nullopt) << name;
  }
}

TEST(check_template, names_an_unknown_or_unclosed_placeholder) {
  const auto unknown = check_template("ok {{name}}, then {{Name}}");
  ASSERT_TRUE(unknown);
  EXPECT_THAT(*unknown, HasSubstr("unknown placeholder {{Name}}; known: kind, name, result"));
  const auto empty = check_template("{{}}");
  ASSERT_TRUE(empty);
  EXPECT_THAT(*empty, HasSubstr("unknown placeholder {{}}"));
  EXPECT_EQ(check_template("abc {{name"), "a {{ at offset 4 has no closing }}");
  // A long name is cut in the message.
  const auto long_name = check_template("{{" + std::string(100, 'x') + "}}");
  ASSERT_TRUE(long_name);
  EXPECT_THAT(*long_name, HasSubstr("{{" + std::string(40, 'x') + "}}"));
  EXPECT_THAT(*long_name, ::testing::Not(HasSubstr(std::string(41, 'x'))));
}

TEST(render_template, replaces_each_placeholder_once) {
  EXPECT_EQ(render_template("{{name}} {{ result }}: {{error}}", values),
            "nightly-1 failed: no space");
  // Values are not rendered again: a value with braces stays as it is.
  EXPECT_EQ(render_template("[{{error}}]", {{"error", "{{name}}"}}), "[{{name}}]");
  // A known placeholder without a value is empty; text around is kept.
  EXPECT_EQ(render_template("a{{schedule}}b{{name}}", values), "abnightly-1");
  EXPECT_EQ(render_template("", values), "");
  EXPECT_EQ(render_template("plain", values), "plain");
}

TEST(render_template, copies_unknown_and_unclosed_placeholders_as_written) {
  EXPECT_EQ(render_template("{{nope}} {{name}}", values), "{{nope}} nightly-1");
  EXPECT_EQ(render_template("{{name}} {{name", values), "nightly-1 {{name");
}

}  // namespace
}  // namespace lifeboat::api
