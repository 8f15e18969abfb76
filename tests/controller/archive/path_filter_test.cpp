#include "controller/archive/path_filter.hpp"

#include <gtest/gtest.h>

#include <optional>
#include <string>
#include <thread>
#include <vector>

namespace lifeboat::archive {
namespace {

struct filter_case {
  std::string pattern;
  std::string path;
  bool excluded;
};

TEST(path_filter, searches_the_path_inside_the_archive) {
  const std::vector<filter_case> cases = {
      {R"(\.cache/)", "app_db/.cache/", true},
      {R"(\.cache/)", "app_db/.cache/x", true},
      {R"(\.cache/)", "app_db/.cache", false},  // a file named .cache
      {R"(\.cache/)", "app_db/cache/x", false},
      {R"(\.tmp$)", "app_db/a.tmp", true},
      {R"(\.tmp$)", "app_db/a.tmp/", false},  // a folder
      {R"(^app_db/logs/)", "app_db/logs/x", true},
      {R"(^app_db/logs/)", "other/app_db/logs/x", false},
      // A leading ".*" changes nothing but speed.
      {R"(.*\.log$)", "app_db/x.log", true},
      {R"(.*\.log$)", "app_db/x.logs", false},
      {R"(.*?\.log$)", "app_db/x.log", true},
      {R"(.*.*x)", "app_db/x", true},
      {R"(.*)", "anything", true},
      {R"(.*|nothing)", "anything", true},
      // Back-references need the backtracking matcher, and still work.
      {R"(/(\w+)/\1/)", "app_db/same/same/x", true},
      {R"(/(\w+)/\1/)", "app_db/same/other/x", false},
  };
  for (const auto& c : cases) {
    auto f = path_filter::create(c.pattern);
    ASSERT_TRUE(f) << c.pattern << ": " << f.error().describe();
    auto r = f->excluded(c.path);
    ASSERT_TRUE(r) << c.pattern << " on " << c.path << ": " << r.error().describe();
    EXPECT_EQ(*r, c.excluded) << c.pattern << " on " << c.path;
  }
}

TEST(path_filter, no_pattern_excludes_nothing) {
  auto f = path_filter::create(std::nullopt);
  ASSERT_TRUE(f);
  EXPECT_TRUE(f->empty());
  EXPECT_FALSE(f->excluded("anything").value());
}

TEST(path_filter, bad_pattern_is_an_invalid_argument) {
  for (const char* p : {"(", "[a-", "a{2,1}", "*x"}) {
    auto f = path_filter::create(p);
    ASSERT_FALSE(f) << p;
    EXPECT_TRUE(f.error().is(errc::invalid_argument));
    EXPECT_NE(f.error().message.find(p), std::string::npos) << f.error().message;
  }
}

// Long paths and nested quantifiers: the matcher must neither overflow the
// stack nor take exponential time. Run on a thread of its own, whose stack is
// the default size a worker would have.
TEST(path_filter, long_paths_and_nested_quantifiers_are_safe) {
  std::string path = "v/";
  while (path.size() < path_filter::max_path_length) {
    path += "a";
  }
  std::thread t([&] {
    for (const char* pattern : {R"((a*)*b)", R"((a|aa)*c)", R"(\.cache/)", R"((.*/)*x)"}) {
      auto f = path_filter::create(pattern);
      ASSERT_TRUE(f);
      auto r = f->excluded(path.substr(0, 2000));
      ASSERT_TRUE(r) << pattern;
      EXPECT_FALSE(*r) << pattern;
    }
    // At the limit: still matched.
    auto f = path_filter::create(R"(\.cache/)");
    ASSERT_TRUE(f);
    EXPECT_FALSE(f->excluded(path).value());
    EXPECT_TRUE(f->excluded(path.substr(0, path.size() - 7) + ".cache/").value());
  });
  t.join();

  auto f = path_filter::create("a");
  ASSERT_TRUE(f);
  auto too_long = f->excluded(path + "a");
  ASSERT_FALSE(too_long);
  EXPECT_NE(too_long.error().message.find("longer than"), std::string::npos);

  auto backref = path_filter::create(R"((a)\1)");
  ASSERT_TRUE(backref);
  EXPECT_TRUE(
      backref->excluded(std::string(path_filter::max_backtracking_path_length, 'a')).value());
  EXPECT_FALSE(backref->excluded(std::string(path_filter::max_backtracking_path_length + 1, 'a')));
}

}  // namespace
}  // namespace lifeboat::archive
