#include "controller/restore/entry_check.hpp"

#include <gtest/gtest.h>

#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace lifeboat::restore {
namespace {

using t = entry_type;

struct check_case {
  check_case(std::string n, std::vector<mapping> m, std::vector<entry_info> e, std::string err,
             errc c = errc::refused)
      : name(std::move(n)),
        mappings(std::move(m)),
        entries(std::move(e)),
        error(std::move(err)),
        code(c) {}

  std::string name;
  std::vector<mapping> mappings;
  std::vector<entry_info> entries;
  std::string error;  ///< a substring of the refusal; empty: accepted
  errc code = errc::refused;
};

const std::vector<mapping> app_db = {{"app_db", "app_db_new"}};

std::vector<check_case> cases() {
  return {
      {"plain tree",
       app_db,
       {{"app_db/", t::directory, ""},
        {"app_db/a", t::file, ""},
        {"app_db/d/", t::directory, ""},
        {"app_db/d/b", t::hardlink, "app_db/a"},
        {"app_db/l", t::symlink, "d/../a"},
        {"app_db/p", t::fifo, ""}},
       ""},
      {"absolute path", app_db, {{"/etc/passwd", t::file, ""}}, "entry /etc/passwd: absolute"},
      {"dot dot anywhere",
       app_db,
       {{"app_db/", t::directory, ""}, {"other/../../x", t::file, ""}},
       "entry other/../../x: path has a '..'"},
      {"symlink out of the volume",
       app_db,
       {{"app_db/", t::directory, ""}, {"app_db/d/up", t::symlink, "../../etc"}},
       "entry app_db/d/up: symlink to ../../etc escapes"},
      {"absolute symlink",
       app_db,
       {{"app_db/", t::directory, ""}, {"app_db/abs", t::symlink, "/etc/shadow"}},
       "entry app_db/abs: symlink to the absolute path /etc/shadow"},
      // x -> . and b -> x/x look harmless; b/.. then is the volume's parent.
      {"symlink escaping through another symlink",
       app_db,
       {{"app_db/", t::directory, ""},
        {"app_db/x", t::symlink, "."},
        {"app_db/b", t::symlink, "x"},
        {"app_db/a", t::symlink, "b/.."}},
       "entry app_db/a: symlink to b/.. escapes"},
      {"symlink loop",
       app_db,
       {{"app_db/", t::directory, ""}, {"app_db/a", t::symlink, "a/x"}},
       "entry app_db/a: symlink to a/x loops"},
      {"entry through a symlink",
       app_db,
       {{"app_db/", t::directory, ""},
        {"app_db/s", t::symlink, "d"},
        {"app_db/s/passwd", t::file, ""}},
       "entry app_db/s/passwd: goes through the symlink s -> d"},
      {"hard link to another volume",
       {{"a", "a"}, {"b", "b"}},
       {{"a/f", t::file, ""}, {"b/h", t::hardlink, "a/f"}},
       "entry b/h: hard link to a/f escapes"},
      {"hard link with dot dot",
       app_db,
       {{"app_db/h", t::hardlink, "app_db/../etc/passwd"}},
       "entry app_db/h: hard link to app_db/../etc/passwd escapes"},
      {"hard link to an absolute path",
       app_db,
       {{"app_db/h", t::hardlink, "/etc/passwd"}},
       "entry app_db/h: hard link to /etc/passwd escapes"},
      {"hard link to no earlier file",
       app_db,
       {{"app_db/h", t::hardlink, "app_db/later"}, {"app_db/later", t::file, ""}},
       "entry app_db/h: hard link to app_db/later, which is not an earlier file"},
      // Found by entry_check_fuzz: link(2) on a path that a later entry made a
      // symlink gives the new name that symlink, unknown to the checker, so
      // entries went through it, and its relative target, read from another
      // folder, left the volume.
      {"hard link to a file that a later entry replaced by a symlink",
       app_db,
       {{"app_db/", t::directory, ""},
        {"app_db/x/y/a", t::file, ""},
        {"app_db/x/y/a", t::symlink, "../../z"},
        {"app_db/b", t::hardlink, "app_db/x/y/a"},
        {"app_db/b/evil", t::file, ""}},
       "entry app_db/b: hard link to app_db/x/y/a, which is not an earlier file"},
      {"hard link to a file that a later entry replaced by a folder",
       app_db,
       {{"app_db/", t::directory, ""},
        {"app_db/a", t::file, ""},
        {"app_db/a", t::directory, ""},
        {"app_db/b", t::hardlink, "app_db/a"}},
       "entry app_db/b: hard link to app_db/a, which is not an earlier file"},
      // Found by entry_check_fuzz in CI: a file whose folder a later entry
      // replaced (by a file, a symlink, anything but a folder) is gone, and
      // link(2) to its old path would follow whatever now stands there.
      {"hard link to a file whose folder a later entry replaced by a file",
       app_db,
       {{"app_db/", t::directory, ""},
        {"app_db/d/a", t::file, ""},
        {"app_db/d", t::file, ""},
        {"app_db/d", t::directory, ""},
        {"app_db/b", t::hardlink, "app_db/d/a"}},
       "entry app_db/b: hard link to app_db/d/a, which is not an earlier file"},
      {"hard link to a file whose folder a later entry replaced by a symlink",
       app_db,
       {{"app_db/", t::directory, ""},
        {"app_db/d/a", t::file, ""},
        {"app_db/d", t::symlink, "e"},
        {"app_db/b", t::hardlink, "app_db/d/a"}},
       "entry app_db/b: hard link to app_db/d/a, which is not an earlier file"},
      {"hard link to a file written again after its folder was replaced",
       app_db,
       {{"app_db/", t::directory, ""},
        {"app_db/d/a", t::file, ""},
        {"app_db/d", t::file, ""},
        {"app_db/d", t::directory, ""},
        {"app_db/d/a", t::file, ""},
        {"app_db/b", t::hardlink, "app_db/d/a"}},
       ""},
      {"hard link to its own name",
       app_db,
       {{"app_db/", t::directory, ""}, {"app_db/b", t::hardlink, "app_db/b"}},
       "entry app_db/b: hard link to app_db/b, which is not an earlier file"},
      {"hard link to a file that replaced a symlink",
       app_db,
       {{"app_db/", t::directory, ""},
        {"app_db/a", t::symlink, "c"},
        {"app_db/a", t::file, ""},
        {"app_db/b", t::hardlink, "app_db/a"}},
       ""},
      // Found by entry_check_fuzz (and issue 12, item 14): the rules
      // compared paths as written, so "//" and "/./" slipped past them.
      {"entry through a symlink, path with a double slash",
       app_db,
       {{"app_db/", t::directory, ""},
        {"app_db/s", t::symlink, "d"},
        {"app_db//s/passwd", t::file, ""}},
       "entry app_db//s/passwd: goes through the symlink s -> d"},
      {"entry through a symlink, path with a dot folder",
       app_db,
       {{"app_db/", t::directory, ""},
        {"app_db/s", t::symlink, "d"},
        {"app_db/./s/passwd", t::file, ""}},
       "entry app_db/./s/passwd: goes through the symlink s -> d"},
      {"symlink at the volume's root written as a dot",
       app_db,
       {{"app_db/", t::directory, ""}, {"app_db/.", t::symlink, "d"}},
       "entry app_db/.: the volume's root must be a directory"},
      {"hard link to a non-canonical path of an earlier file",
       app_db,
       {{"app_db/", t::directory, ""},
        {"app_db/./a", t::file, ""},
        {"app_db/b", t::hardlink, "app_db/./a"},
        {"app_db/c", t::hardlink, "app_db//a"}},
       ""},
      {"device node",
       app_db,
       {{"app_db/sda", t::block_device, ""}},
       "entry app_db/sda: device node"},
      {"character device",
       app_db,
       {{"app_db/null", t::char_device, ""}},
       "entry app_db/null: device node"},
      {"root is not a folder",
       app_db,
       {{"app_db", t::file, ""}},
       "entry app_db: the volume's root must be a directory"},
      {"unmapped entries are skipped",
       app_db,
       {{"other/x", t::symlink, "/etc"}, {"app_db/a", t::file, ""}},
       ""},
      {"missing volume",
       app_db,
       {{"other/x", t::file, ""}},
       "the archive has no entry app_db",
       errc::missing_volume},
      {"archive root with ./",
       {{".", "vol"}},
       {{"./", t::directory, ""}, {"./a", t::file, ""}, {"./h", t::hardlink, "./a"}},
       ""},
  };
}

TEST(entry_checker, table) {
  for (const auto& c : cases()) {
    SCOPED_TRACE(c.name);
    auto checker = entry_checker::create(c.mappings, false, false);
    ASSERT_TRUE(checker) << checker.error().describe();
    std::optional<error> failure;
    for (const auto& e : c.entries) {
      auto placed = checker->check(e);
      if (!placed) {
        failure = placed.error();
        break;
      }
    }
    if (!failure) {
      if (auto f = checker->finish(); !f) {
        failure = f.error();
      }
    }
    if (c.error.empty()) {
      EXPECT_FALSE(failure) << failure->describe();
    } else {
      if (!failure) {
        ADD_FAILURE() << "accepted";  // and go on, so every failing row shows
        continue;
      }
      EXPECT_EQ(failure->code, c.code) << failure->describe();
      EXPECT_NE(failure->message.find(c.error), std::string::npos) << failure->message;
    }
  }
}

TEST(entry_checker, places_entries_relative_to_the_volume) {
  auto checker = entry_checker::create({{"./data/", "vol"}}, false, false);
  ASSERT_TRUE(checker);
  auto root = checker->check({"./data/", t::directory, ""});
  ASSERT_TRUE(root && *root);
  EXPECT_EQ((*root)->relative, "");
  ASSERT_TRUE(checker->check({"data/f", t::file, ""}));
  auto link = checker->check({"data/sub/h", t::hardlink, "./data/f"});
  ASSERT_TRUE(link && *link);
  EXPECT_EQ((*link)->relative, "sub/h");
  EXPECT_EQ((*link)->link, "f");
  auto dotted = checker->check({"data//sub/./g", t::file, ""});
  ASSERT_TRUE(dotted && *dotted);
  EXPECT_EQ((*dotted)->relative, "sub/g");
  auto outside = checker->check({"database/x", t::file, ""});
  ASSERT_TRUE(outside);
  EXPECT_FALSE(*outside);
}

TEST(entry_checker, options_accept_devices_and_absolute_symlinks) {
  auto checker = entry_checker::create(app_db, true, true);
  ASSERT_TRUE(checker);
  EXPECT_TRUE(checker->check({"app_db/", t::directory, ""}));
  EXPECT_TRUE(checker->check({"app_db/null", t::char_device, ""}));
  EXPECT_TRUE(checker->check({"app_db/tz", t::symlink, "/usr/share/zoneinfo/UTC"}));
  EXPECT_TRUE(checker->finish());
}

TEST(entry_checker, refuses_overlapping_or_duplicate_mappings) {
  EXPECT_FALSE(entry_checker::create({{"a", "x"}, {"a/b", "y"}}, false, false));
  EXPECT_FALSE(entry_checker::create({{".", "x"}, {"b", "y"}}, false, false));
  EXPECT_FALSE(entry_checker::create({{"a", "x"}, {"b", "x"}}, false, false));
  EXPECT_FALSE(entry_checker::create({}, false, false));
}

TEST(normalize_entry_path, reduces_to_components) {
  EXPECT_EQ(normalize_entry_path("./a//b/./c/"), "a/b/c");
  EXPECT_EQ(normalize_entry_path(".//./"), ".");
  EXPECT_EQ(normalize_entry_path(""), ".");
  EXPECT_EQ(normalize_entry_path("a/.."), "a/..");  // ".." is refused, not resolved
  EXPECT_EQ(normalize_entry_path("//etc/./passwd"), "/etc/passwd");
}

TEST(parse_mapping, forms) {
  auto same = parse_mapping("app_db");
  ASSERT_TRUE(same);
  EXPECT_EQ(*same, (mapping{"app_db", "app_db"}));
  auto renamed = parse_mapping("app_db=app_db_restored");
  ASSERT_TRUE(renamed);
  EXPECT_EQ(*renamed, (mapping{"app_db", "app_db_restored"}));
  auto root = parse_mapping(".=vol");
  ASSERT_TRUE(root);
  EXPECT_EQ(*root, (mapping{".", "vol"}));
  EXPECT_FALSE(parse_mapping("."));         // "." is no volume name
  EXPECT_FALSE(parse_mapping("a/b"));       // neither is a path
  EXPECT_FALSE(parse_mapping("../x=vol"));  // no way out
  EXPECT_FALSE(parse_mapping("/x=vol"));
  EXPECT_FALSE(parse_mapping("=vol"));
  EXPECT_FALSE(parse_mapping("a=b/c"));
}

// Issue 12, item 14 (Restore paths): tar stores paths as written, so "vol//l/x",
// "vol/./l/x" and "vol/l/" name the same files as their canonical forms, and
// every rule must see them so.

// Runs `entries` through a checker of `mappings`, finish() included; the
// first refusal, or nullopt when all were accepted.
std::optional<error> first_refusal(const std::vector<mapping>& mappings,
                                   const std::vector<entry_info>& entries,
                                   bool allow_absolute_symlinks = false) {
  auto checker = entry_checker::create(mappings, false, allow_absolute_symlinks);
  EXPECT_TRUE(checker) << checker.error().describe();
  if (!checker) {
    return std::nullopt;
  }
  for (const auto& e : entries) {
    auto placed = checker->check(e);
    if (!placed) {
      return placed.error();
    }
  }
  if (auto f = checker->finish(); !f) {
    return f.error();
  }
  return std::nullopt;
}

TEST(Issue12Item14RestorePaths, NonCanonicalPathsCannotWriteThroughAnArchiveSymlink) {
  const std::vector<std::string> symlink_paths = {"app_db/l",    "app_db//l",  "app_db/./l",
                                                  "app_db/l/",   "./app_db/l", "app_db/l//",
                                                  "app_db/./l/."};
  const std::vector<std::string> entry_paths = {
      "app_db/l/x",  "app_db//l/x",   "app_db/./l/x",  "app_db/l/./x",     "app_db/l//x",
      "app_db/l/x/", "./app_db//l/x", ".//app_db/l/x", "app_db/./l/./y/z/"};
  for (const bool absolute : {false, true}) {
    for (const auto& link : symlink_paths) {
      for (const auto& entry : entry_paths) {
        for (const auto type : {t::file, t::directory, t::symlink}) {
          SCOPED_TRACE(link + " then " + entry + (absolute ? " (absolute target)" : ""));
          const auto refused = first_refusal(app_db,
                                             {{"app_db/", t::directory, ""},
                                              {"app_db/d/", t::directory, ""},
                                              {link, t::symlink, absolute ? "/etc" : "d"},
                                              {entry, type, type == t::symlink ? "." : ""}},
                                             /*allow_absolute_symlinks=*/absolute);
          ASSERT_TRUE(refused) << "accepted";
          EXPECT_EQ(refused->code, errc::refused);
          EXPECT_NE(refused->message.find("goes through the symlink l -> "), std::string::npos)
              << refused->message;
        }
      }
    }
  }
}

TEST(Issue12Item14RestorePaths, NonCanonicalPathsArePlacedCanonically) {
  auto checker = entry_checker::create({{"app_db", "v"}}, false, false);
  ASSERT_TRUE(checker);
  for (const auto& [path, relative] :
       std::vector<std::pair<std::string, std::string>>{{"app_db/.", ""},
                                                        {"./app_db//", ""},
                                                        {"app_db//d", "d"},
                                                        {"app_db/./d/./e//", "d/e"},
                                                        {"./app_db/d//e/./f", "d/e/f"}}) {
    SCOPED_TRACE(path);
    auto placed = checker->check({path, t::directory, ""});
    ASSERT_TRUE(placed) << placed.error().describe();
    ASSERT_TRUE(*placed);
    EXPECT_EQ((*placed)->relative, relative);
  }
  const auto root_file = checker->check({"app_db/./", t::file, ""});
  ASSERT_FALSE(root_file);
  EXPECT_NE(root_file.error().message.find("the volume's root must be a directory"),
            std::string::npos);
}

TEST(Issue12Item14RestorePaths, HardLinksToNonCanonicalPathsResolve) {
  for (const auto& [target, linked] :
       std::vector<std::pair<std::string, std::string>>{{"app_db/./a", "a"},
                                                        {"app_db//a", "a"},
                                                        {"./app_db/a", "a"},
                                                        {"app_db/d/../a", ""},
                                                        {"app_db/./d//b/.", "d/b"}}) {
    SCOPED_TRACE(target);
    auto checker = entry_checker::create(app_db, false, false);
    ASSERT_TRUE(checker);
    ASSERT_TRUE(checker->check({"app_db/", t::directory, ""}));
    ASSERT_TRUE(checker->check({"app_db/./a", t::file, ""}));
    ASSERT_TRUE(checker->check({"app_db/d//b", t::file, ""}));
    auto link = checker->check({"app_db/h", t::hardlink, target});
    if (target.find("..") != std::string::npos) {
      ASSERT_FALSE(link) << "a '..' in a hard link's target is refused";
      continue;
    }
    ASSERT_TRUE(link) << link.error().describe();
    ASSERT_TRUE(*link);
    EXPECT_EQ((*link)->link, linked);
    EXPECT_TRUE(checker->finish());
  }
}

TEST(Issue12Item14RestorePaths, HardLinkThroughAnArchiveSymlinkIsRefused) {
  const auto refused = first_refusal(app_db, {{"app_db/", t::directory, ""},
                                              {"app_db/d/", t::directory, ""},
                                              {"app_db/d/f", t::file, ""},
                                              {"app_db/l", t::symlink, "d"},
                                              {"app_db/h", t::hardlink, "app_db/l/f"}});
  ASSERT_TRUE(refused) << "accepted";
  EXPECT_NE(refused->message.find("entry app_db/h: hard link to app_db/l/f"), std::string::npos)
      << refused->message;
}

TEST(Issue12Item14RestorePaths, HardLinkToAPathAFileNoLongerHoldsIsRefused) {
  // The file at app_db/a was replaced by a symlink: linking to "a" would link
  // to whatever that symlink is, not to a file of the archive.
  const auto refused = first_refusal(app_db,
                                     {{"app_db/", t::directory, ""},
                                      {"app_db/a", t::file, ""},
                                      {"app_db/a", t::symlink, "/etc/shadow"},
                                      {"app_db/h", t::hardlink, "app_db/a"}},
                                     /*allow_absolute_symlinks=*/true);
  ASSERT_TRUE(refused) << "accepted";
  EXPECT_NE(refused->message.find("which is not an earlier file"), std::string::npos)
      << refused->message;
}

TEST(Issue12Item14RestorePaths, NonCanonicalSymlinksAreResolvedByFinish) {
  // x -> . and b -> x/x look harmless; b/.. then is the volume's parent, with
  // each link stored under a non-canonical name.
  const auto refused = first_refusal(app_db, {{"app_db/", t::directory, ""},
                                              {"app_db/./x", t::symlink, "."},
                                              {"app_db//b/", t::symlink, "x//x"},
                                              {"./app_db/a", t::symlink, "./b/.."}});
  ASSERT_TRUE(refused) << "accepted";
  EXPECT_NE(refused->message.find("entry app_db/a: symlink to ./b/.. escapes"), std::string::npos)
      << refused->message;
}

TEST(Issue12Item14RestorePaths, MappingsAreCanonicalAndRelative) {
  auto checker = entry_checker::create({{"./data//sub/", "vol"}}, false, false);
  ASSERT_TRUE(checker);
  auto placed = checker->check({"data/sub/./f", t::file, ""});
  ASSERT_TRUE(placed && *placed);
  EXPECT_EQ((*placed)->relative, "f");
  EXPECT_FALSE(entry_checker::create({{"/data", "vol"}}, false, false));
  EXPECT_FALSE(entry_checker::create({{"data/../..", "vol"}}, false, false));
  EXPECT_FALSE(entry_checker::create({{"a/./b", "x"}, {"a//b/c", "y"}}, false, false));
  EXPECT_FALSE(parse_mapping("//x=vol"));
  auto mapped = parse_mapping("./a//b/=vol");
  ASSERT_TRUE(mapped);
  EXPECT_EQ(mapped->from, "a/b");
}

}  // namespace
}  // namespace lifeboat::restore
