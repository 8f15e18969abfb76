// Issue 12, item 13: text from volumes and users on its way into line-based
// output (logs, labels, tables) cannot end or reorder a line.
#include "api/text.hpp"

#include <gtest/gtest.h>

#include <string>

namespace lifeboat::api {
namespace {

TEST(Issue12Item13Text, EscapeControlsKeepsPrintableTextAsIs) {
  EXPECT_EQ(escape_controls("vol/caf\xc3\xa9 \"x\" \\ \xf0\x9f\x9a\xa3"),
            "vol/caf\xc3\xa9 \"x\" \\ \xf0\x9f\x9a\xa3");
  EXPECT_EQ(escape_controls(""), "");
}

TEST(Issue12Item13Text, EscapeControlsWritesEveryLineBreakingCharacterAsAnEscape) {
  EXPECT_EQ(escape_controls("a\nb\rc\td"), "a\\nb\\rc\\td");
  EXPECT_EQ(escape_controls(std::string("\0\x1b\x7f", 3)), "\\x00\\x1b\\x7f");
  EXPECT_EQ(escape_controls("\xc2\x85"), "\\u0085");      // NEL
  EXPECT_EQ(escape_controls("\xe2\x80\xa8"), "\\u2028");  // LINE SEPARATOR
  EXPECT_EQ(escape_controls("\xe2\x80\xae"), "\\u202e");  // RIGHT-TO-LEFT OVERRIDE
  EXPECT_EQ(escape_controls("\xe2\x81\xa6"), "\\u2066");  // LEFT-TO-RIGHT ISOLATE
}

TEST(Issue12Item13Text, EscapeControlsWritesBytesThatAreNotUtf8AsEscapes) {
  EXPECT_EQ(escape_controls("\xff"), "\\xff");
  EXPECT_EQ(escape_controls("\xc3"), "\\xc3");                             // cut sequence
  EXPECT_EQ(escape_controls("\xc0\xaf"), "\\xc0\\xaf");                    // overlong '/'
  EXPECT_EQ(escape_controls("\xed\xa0\x80"), "\\xed\\xa0\\x80");           // surrogate
  EXPECT_EQ(escape_controls("\xf4\x90\x80\x80"), "\\xf4\\x90\\x80\\x80");  // > U+10FFFF
}

TEST(Issue12Item13Text, EscapeQuotedEscapesQuotesAndBackslashesToo) {
  EXPECT_EQ(escape_quoted("a \"b\" \\n\n"), "a \\\"b\\\" \\\\n\\n");
}

TEST(Issue12Item13Text, ValidUtf8OnlyTouchesInvalidBytes) {
  EXPECT_EQ(valid_utf8("a\nb\x1b\xc2\x85\xff"), "a\nb\x1b\xc2\x85\\xff");
}

TEST(Issue12Item13Text, NoOutputOfAnyByteHasAControlCharacter) {
  for (int a = 0; a < 256; ++a) {
    for (int b = 0; b < 256; ++b) {
      const std::string text{static_cast<char>(a), static_cast<char>(b), '\xa8'};
      for (const auto& out : {escape_controls(text), escape_quoted(text)}) {
        for (const char c : out) {
          const auto u = static_cast<unsigned char>(c);
          ASSERT_FALSE(u < 0x20 || u == 0x7f) << a << " " << b;
        }
        ASSERT_EQ(out.find("\xe2\x80\xa8"), std::string::npos);
        ASSERT_EQ(out.find("\xc2\x85"), std::string::npos);
      }
    }
  }
}

}  // namespace
TEST(percent_decode, decodes_escapes_and_keeps_a_stray_percent) {
  EXPECT_EQ(percent_decode("db%201%25.tar.gz"), "db 1%.tar.gz");
  EXPECT_EQ(percent_decode("%2f%2F"), "//");
  EXPECT_EQ(percent_decode("100%"), "100%");
  EXPECT_EQ(percent_decode("%4"), "%4");
  EXPECT_EQ(percent_decode("%zz%41"), "%zzA");
}

TEST(human_bytes, whole_bytes_then_one_decimal_up_to_tebibytes) {
  EXPECT_EQ(human_bytes(0), "0 B");
  EXPECT_EQ(human_bytes(1023), "1023 B");
  EXPECT_EQ(human_bytes(1024), "1.0 KiB");
  EXPECT_EQ(human_bytes(1536), "1.5 KiB");
  EXPECT_EQ(human_bytes(3.2 * 1024 * 1024 * 1024), "3.2 GiB");
  EXPECT_EQ(human_bytes(2048.0 * 1024 * 1024 * 1024 * 1024), "2048.0 TiB");
}

}  // namespace lifeboat::api
