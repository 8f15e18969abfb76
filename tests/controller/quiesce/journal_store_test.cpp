#include "controller/quiesce/journal_store.hpp"

#include <gtest/gtest.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <thread>
#include <vector>

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
  std::vector<std::string> skipped;
  const journal j{"nightly-1", {{"c1", "s1", 4}, {"c2", "", 0}}};
  const auto decoded = decode_entries("nightly-1", encode_entries(j));
  ASSERT_TRUE(decoded) << decoded.error().describe();
  EXPECT_EQ(*decoded, j);
}

// A no-restart entry keeps its mark; the others are written as before, so a
// journal of an older lifeboat reads as entries to bring back.
TEST(journal_codec, round_trips_no_restart_and_writes_it_only_when_set) {
  const journal j{"nightly-1", {{"c1", "s1", 4, true}, {"c2", "", 0, false}}};
  const auto text = encode_entries(j);
  EXPECT_EQ(text,
            "[{\"container\":\"c1\",\"service\":\"s1\",\"forceUpdate\":4,\"noRestart\":true},"
            "{\"container\":\"c2\",\"service\":\"\",\"forceUpdate\":0}]");
  const auto decoded = decode_entries("nightly-1", text);
  ASSERT_TRUE(decoded) << decoded.error().describe();
  EXPECT_EQ(*decoded, j);
  const auto old = decode_entries("nightly-1", "[{\"container\":\"c1\"}]");
  ASSERT_TRUE(old) << old.error().describe();
  EXPECT_FALSE(old->entries.at(0).no_restart);
}

TEST(journal_codec, a_no_restart_that_is_not_a_boolean_is_an_error) {
  const auto decoded = decode_entries("run-x", "[{\"container\":\"c1\",\"noRestart\":\"yes\"}]");
  ASSERT_FALSE(decoded);
  EXPECT_NE(decoded.error().message.find("noRestart"), std::string::npos);
  EXPECT_NE(decoded.error().message.find("run-x"), std::string::npos);
}

TEST(journal_codec, malformed_text_is_an_error_naming_the_run) {
  std::vector<std::string> skipped;
  for (const char* text : {"", "{}", "[1]", "[{\"service\":\"s\"}]", "[{\"container\":5}]"}) {
    const auto decoded = decode_entries("run-x", text);
    ASSERT_FALSE(decoded) << text;
    EXPECT_NE(decoded.error().message.find("run-x"), std::string::npos) << text;
  }
}

TEST(file_journal_store, saves_loads_and_clears) {
  std::vector<std::string> skipped;
  const auto path = temp_file("state.json");
  auto store = make_file_journal_store(path);

  auto empty = store->load("a");
  ASSERT_TRUE(empty);
  EXPECT_TRUE(empty->entries.empty()) << "no file yet means no journals";

  ASSERT_TRUE(store->save({"a", {{"c1", "", 0}}}));
  ASSERT_TRUE(store->save({"b", {{"c2", "s2", 1}, {"c3", "s2", 1}}}));
  // A new store on the same file sees what the first one wrote: it is durable.
  auto reopened = make_file_journal_store(path);
  auto all = reopened->load_all(skipped);
  ASSERT_TRUE(all);
  ASSERT_EQ(all->size(), 2U);
  EXPECT_EQ((*all)[0].run, "a");
  EXPECT_EQ((*all)[1].entries.size(), 2U);

  ASSERT_TRUE(reopened->save({"a", {}}));
  auto after = store->load_all(skipped);
  ASSERT_TRUE(after);
  ASSERT_EQ(after->size(), 1U);
  EXPECT_EQ(after->front().run, "b");
  EXPECT_FALSE(std::filesystem::exists(path + ".tmp")) << "the temporary file is renamed";
}

TEST(file_journal_store, a_corrupt_file_is_reported_not_overwritten) {
  std::vector<std::string> skipped;
  const auto path = temp_file("corrupt.json");
  std::ofstream(path) << "{not json";
  auto store = make_file_journal_store(path);
  const auto loaded = store->load_all(skipped);
  ASSERT_FALSE(loaded);
  EXPECT_NE(loaded.error().message.find(path), std::string::npos);
  // Saving must not replace what may be the only record of stopped containers.
  EXPECT_FALSE(store->save({"a", {{"c1", "", 0}}}));
  std::ifstream in(path);
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  EXPECT_EQ(text, "{not json");
}

using std::chrono::milliseconds;
using std::chrono::system_clock;

// Millisecond precision, as stored.
run_owner record(const std::string& run, const std::string& owner, std::int64_t heartbeat_ms) {
  return {run, owner, system_clock::time_point{milliseconds{heartbeat_ms}}, milliseconds{60'000}};
}

TEST(file_journal_store, ownership_records_are_claimed_renewed_and_dropped) {
  std::vector<std::string> skipped;
  const auto path = temp_file("owners.json");
  auto a = make_file_journal_store(path);
  // Another process on the same state file.
  auto b = make_file_journal_store(path);

  ASSERT_TRUE(a->claim_run(record("r1", "proc-a", 1000)));
  ASSERT_TRUE(a->claim_run(record("r1", "proc-a", 1500))) << "a retried claim is the owner's";
  ASSERT_TRUE(b->claim_run(record("r2", "proc-b", 2000)));

  auto owners = b->load_owners(skipped);
  ASSERT_TRUE(owners) << owners.error().describe();
  EXPECT_EQ(*owners,
            (std::vector<run_owner>{record("r1", "proc-a", 1500), record("r2", "proc-b", 2000)}));

  const auto taken = b->claim_run(record("r1", "proc-b", 3000));
  ASSERT_FALSE(taken);
  EXPECT_TRUE(taken.error().is(engine::errc::conflict));
  EXPECT_NE(taken.error().message.find("proc-a"), std::string::npos) << taken.error().message;
  const auto foreign = b->renew_run(record("r1", "proc-b", 3000));
  ASSERT_FALSE(foreign);
  EXPECT_TRUE(foreign.error().is(engine::errc::conflict));

  ASSERT_TRUE(a->renew_run(record("r1", "proc-a", 4000)));
  // Recovery in process b releases r1: a's next renewal learns it.
  ASSERT_TRUE(b->drop_run("r1"));
  ASSERT_TRUE(b->drop_run("r1")) << "dropping what is gone is no error";
  const auto gone = a->renew_run(record("r1", "proc-a", 5000));
  ASSERT_FALSE(gone);
  EXPECT_TRUE(gone.error().is(engine::errc::not_found));

  owners = a->load_owners(skipped);
  ASSERT_TRUE(owners);
  EXPECT_EQ(*owners, (std::vector<run_owner>{record("r2", "proc-b", 2000)}));
  // Journals live in their own file and are untouched by all this.
  auto journals = a->load_all(skipped);
  ASSERT_TRUE(journals);
  EXPECT_TRUE(journals->empty());
}

TEST(file_journal_store, an_unreadable_ownership_record_counts_as_expired) {
  std::vector<std::string> skipped;
  const auto path = temp_file("bad-owner.json");
  std::ofstream(path + ".owners") << R"({"r1": {"owner": "proc-a", "heartbeat": "soon"}})";
  auto store = make_file_journal_store(path);
  auto owners = store->load_owners(skipped);
  ASSERT_TRUE(owners);
  ASSERT_EQ(owners->size(), 1U);
  EXPECT_EQ(owners->front().heartbeat, system_clock::time_point{});
  EXPECT_EQ(owners->front().expiry, milliseconds{0});
}

// Every read-modify-write holds the file lock: writers in several threads (or
// processes), each with a store of its own, lose none of each other's writes.
TEST(file_journal_store, concurrent_writers_lose_nothing) {
  std::vector<std::string> skipped;
  const auto path = temp_file("concurrent.json");
  constexpr int writers = 4;
  constexpr int runs_each = 25;
  std::vector<std::thread> threads;
  for (int w = 0; w < writers; ++w) {
    threads.emplace_back([&, w] {
      auto store = make_file_journal_store(path);
      for (int i = 0; i < runs_each; ++i) {
        const auto run = "w" + std::to_string(w) + "-" + std::to_string(i);
        EXPECT_TRUE(store->save({run, {{"c", "", 0}}}));
        EXPECT_TRUE(store->claim_run(record(run, "proc", i)));
      }
    });
  }
  for (auto& t : threads) {
    t.join();
  }
  auto store = make_file_journal_store(path);
  auto all = store->load_all(skipped);
  ASSERT_TRUE(all);
  EXPECT_EQ(all->size(), static_cast<std::size_t>(writers * runs_each));
  auto owners = store->load_owners(skipped);
  ASSERT_TRUE(owners);
  EXPECT_EQ(owners->size(), static_cast<std::size_t>(writers * runs_each));
}

// Issue 12 item 12: one unreadable journal does not hide the others.
TEST(file_journal_store, an_unreadable_journal_is_skipped_and_named) {
  std::vector<std::string> skipped;
  const auto path = temp_file("one-bad.json");
  std::ofstream(path) << R"({"bad": "not entries", "good": [{"container": "c1"}]})";
  auto store = make_file_journal_store(path);
  const auto loaded = store->load_all(skipped);
  ASSERT_TRUE(loaded) << loaded.error().describe();
  ASSERT_EQ(loaded->size(), 1U);
  EXPECT_EQ(loaded->front().run, "good");
  ASSERT_EQ(skipped.size(), 1U);
  EXPECT_NE(skipped.front().find("run bad"), std::string::npos) << skipped.front();
}

}  // namespace
}  // namespace lifeboat::quiesce
