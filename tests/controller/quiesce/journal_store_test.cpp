#include "controller/quiesce/journal_store.hpp"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

namespace lifeboat::quiesce {
namespace {

std::string temp_file(const std::string& name) {
  const auto dir = std::filesystem::path(testing::TempDir()) /
                   ("lifeboat-journal-" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  const auto path = dir / name;
  std::filesystem::remove(path);
  return path.string();
}

TEST(journal_codec, round_trips_entries) {
  const journal j{"nightly-1", {{"c1", "s1", 4}, {"c2", "", 0}}};
  const auto decoded = decode_entries("nightly-1", encode_entries(j));
  ASSERT_TRUE(decoded) << decoded.error().describe();
  EXPECT_EQ(*decoded, j);
}

TEST(journal_codec, malformed_text_is_an_error_naming_the_run) {
  for (const char* text : {"", "{}", "[1]", "[{\"service\":\"s\"}]", "[{\"container\":5}]"}) {
    const auto decoded = decode_entries("run-x", text);
    ASSERT_FALSE(decoded) << text;
    EXPECT_NE(decoded.error().message.find("run-x"), std::string::npos) << text;
  }
}

TEST(file_journal_store, saves_loads_and_clears) {
  const auto path = temp_file("state.json");
  auto store = make_file_journal_store(path);

  auto empty = store->load("a");
  ASSERT_TRUE(empty);
  EXPECT_TRUE(empty->entries.empty()) << "no file yet means no journals";

  ASSERT_TRUE(store->save({"a", {{"c1", "", 0}}}));
  ASSERT_TRUE(store->save({"b", {{"c2", "s2", 1}, {"c3", "s2", 1}}}));
  // A new store on the same file sees what the first one wrote: it is durable.
  auto reopened = make_file_journal_store(path);
  auto all = reopened->load_all();
  ASSERT_TRUE(all);
  ASSERT_EQ(all->size(), 2U);
  EXPECT_EQ((*all)[0].run, "a");
  EXPECT_EQ((*all)[1].entries.size(), 2U);

  ASSERT_TRUE(reopened->save({"a", {}}));
  auto after = store->load_all();
  ASSERT_TRUE(after);
  ASSERT_EQ(after->size(), 1U);
  EXPECT_EQ(after->front().run, "b");
  EXPECT_FALSE(std::filesystem::exists(path + ".tmp")) << "the temporary file is renamed";
}

TEST(file_journal_store, a_corrupt_file_is_reported_not_overwritten) {
  const auto path = temp_file("corrupt.json");
  std::ofstream(path) << "{not json";
  auto store = make_file_journal_store(path);
  const auto loaded = store->load_all();
  ASSERT_FALSE(loaded);
  EXPECT_NE(loaded.error().message.find(path), std::string::npos);
  // Saving must not replace what may be the only record of stopped containers.
  EXPECT_FALSE(store->save({"a", {{"c1", "", 0}}}));
  std::ifstream in(path);
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  EXPECT_EQ(text, "{not json");
}

}  // namespace
}  // namespace lifeboat::quiesce
