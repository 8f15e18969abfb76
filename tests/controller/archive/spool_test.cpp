#include "controller/archive/spool.hpp"

#include <gtest/gtest.h>

#include <condition_variable>
#include <filesystem>
#include <latch>
#include <mutex>
#include <random>
#include <string>

namespace lifeboat::archive {
namespace {

// The compressor behind the spool: records what it is given, in order, and
// can be held (every write waits until released) or made to fail.
struct recording_compressor final : compressor {
  std::string* received;
  std::latch* release = nullptr;  // when set, writes wait for it
  std::optional<error> fail_with;
  bool* finished;

  recording_compressor(std::string* r, bool* f) : received(r), finished(f) {}

  result<void> write(std::span<const char> data) override {
    if (release != nullptr) {
      release->wait();
    }
    if (fail_with) {
      return *fail_with;
    }
    received->append(data.data(), data.size());
    return {};
  }
  result<void> finish() override {
    *finished = true;
    return {};
  }
};

class spool_test : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() /
           ("lifeboat-spool-" + std::to_string(::getpid()) + "-" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    std::filesystem::create_directories(dir_);
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  std::filesystem::path dir_;
};

TEST_F(spool_test, hands_everything_on_in_order_and_leaves_no_file) {
  std::string received;
  bool finished = false;
  auto spool = make_spooling_compressor(
      std::make_unique<recording_compressor>(&received, &finished), {dir_, 3 << 20});
  ASSERT_TRUE(spool) << spool.error().describe();

  std::mt19937 random(7);
  std::string sent;
  for (int i = 0; i < 300; ++i) {
    std::string piece(random() % 100'000, '\0');
    for (auto& c : piece) {
      c = static_cast<char>(random());
    }
    ASSERT_TRUE((*spool)->write(piece));
    sent += piece;
  }
  ASSERT_TRUE((*spool)->finish());
  EXPECT_TRUE(finished);
  EXPECT_EQ(received.size(), sent.size());
  EXPECT_TRUE(received == sent) << "the bytes arrived changed or out of order";
  // The spool file has no name: nothing is left in the folder, even before
  // the spool is destroyed.
  EXPECT_TRUE(std::filesystem::is_empty(dir_));
}

TEST_F(spool_test, the_writer_does_not_wait_for_a_busy_compressor_up_to_the_limit) {
  std::string received;
  bool finished = false;
  std::latch release(1);
  auto inner = std::make_unique<recording_compressor>(&received, &finished);
  inner->release = &release;
  constexpr std::size_t limit = 8 << 20;
  auto spool = make_spooling_compressor(std::move(inner), {dir_, limit});
  ASSERT_TRUE(spool);

  // The compressor takes nothing until released, yet the limit's worth of
  // writes all return: the reader is never held back by compression.
  const std::string mib(1 << 20, 'x');
  for (std::size_t i = 0; i < limit / mib.size(); ++i) {
    ASSERT_TRUE((*spool)->write(mib));
  }
  EXPECT_TRUE(received.empty());
  release.count_down();
  ASSERT_TRUE((*spool)->finish());
  EXPECT_EQ(received.size(), limit);
}

TEST_F(spool_test, a_compressor_error_reaches_the_writer) {
  std::string received;
  bool finished = false;
  auto inner = std::make_unique<recording_compressor>(&received, &finished);
  inner->fail_with = make_error(errc::io_error, "disk full");
  auto spool = make_spooling_compressor(std::move(inner), {dir_, 1 << 20});
  ASSERT_TRUE(spool);
  // The failure shows at the latest in finish(); writes after it fail too.
  result<void> last = (*spool)->write(std::string(4096, 'a'));
  for (int i = 0; i < 10'000 && last; ++i) {
    last = (*spool)->write(std::string(4096, 'a'));
  }
  auto end = last ? (*spool)->finish() : last;
  ASSERT_FALSE(end);
  EXPECT_EQ(end.error().message, "disk full");
  EXPECT_FALSE(finished);
}

TEST_F(spool_test, a_folder_that_cannot_hold_a_spool_is_an_error) {
  std::string received;
  bool finished = false;
  auto spool = make_spooling_compressor(
      std::make_unique<recording_compressor>(&received, &finished), {dir_ / "missing", 1 << 20});
  ASSERT_FALSE(spool);
  EXPECT_TRUE(spool.error().is(errc::io_error));
  EXPECT_NE(spool.error().message.find("missing"), std::string::npos);
}

TEST_F(spool_test, abandoning_a_spool_midway_stops_its_thread) {
  std::string received;
  bool finished = false;
  auto spool = make_spooling_compressor(
      std::make_unique<recording_compressor>(&received, &finished), {dir_, 1 << 20});
  ASSERT_TRUE(spool);
  ASSERT_TRUE((*spool)->write(std::string(3 << 20, 'q')));
  spool->reset();  // no finish(): a cancelled archive
  EXPECT_FALSE(finished);
}

}  // namespace
}  // namespace lifeboat::archive
