#include "controller/runtime/work_queue.hpp"

#include <gtest/gtest.h>

#include <array>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <latch>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "controller/runtime/clock.hpp"

namespace lifeboat::runtime {
namespace {

using namespace std::chrono_literals;
using std::chrono::milliseconds;

// Takes every key that is ready now, marking each done at once.
std::vector<std::string> drain(work_queue& q) {
  std::vector<std::string> out;
  while (auto k = q.try_get()) {
    out.push_back(*k);
    q.done(*k);
  }
  return out;
}

TEST(work_queue, add_deduplicates_keys_waiting_to_be_processed) {
  fake_clock time;
  work_queue q(time);
  q.add("a");
  q.add("b");
  q.add("a");
  q.add("a");
  EXPECT_EQ(q.len(), 2U);
  EXPECT_EQ(drain(q), (std::vector<std::string>{"a", "b"}));
  EXPECT_EQ(q.len(), 0U);
  EXPECT_EQ(q.try_get(), std::nullopt);
}

TEST(work_queue, a_processed_key_is_not_queued_again_without_an_add) {
  fake_clock time;
  work_queue q(time);
  q.add("a");
  auto k = q.try_get();
  ASSERT_EQ(k, "a");
  q.done(*k);
  EXPECT_EQ(q.try_get(), std::nullopt);
  q.add("a");
  EXPECT_EQ(q.try_get(), "a");
}

TEST(work_queue, a_key_added_while_processing_is_requeued_by_done_once) {
  fake_clock time;
  work_queue q(time);
  q.add("a");
  ASSERT_EQ(q.try_get(), "a");
  q.add("a");
  q.add("a");
  // Not handed out while its worker still has it.
  EXPECT_EQ(q.len(), 0U);
  EXPECT_EQ(q.try_get(), std::nullopt);
  q.done("a");
  EXPECT_EQ(q.len(), 1U);
  EXPECT_EQ(drain(q), (std::vector<std::string>{"a"}));
}

TEST(work_queue, a_second_worker_gets_other_keys_while_one_is_processed) {
  fake_clock time;
  work_queue q(time);
  q.add("a");

  std::latch first_has_a(1);
  std::latch second_has_b(1);
  std::atomic<bool> first_finished{false};

  std::thread first([&] {
    auto k = q.get();
    EXPECT_EQ(k, "a");
    first_has_a.count_down();
    second_has_b.wait();
    first_finished = true;
    q.done(*k);
  });
  first_has_a.wait();
  q.add("a");  // while the first worker has it
  q.add("b");

  std::vector<std::string> second_got;
  bool a_came_after_done = false;
  std::thread second([&] {
    auto k = q.get();  // "a" is queued too, but only behind the first worker's done()
    second_got.push_back(k.value_or("<none>"));
    second_has_b.count_down();
    q.done(*k);
    k = q.get();  // blocks until the first worker is done with "a"
    a_came_after_done = first_finished.load();
    second_got.push_back(k.value_or("<none>"));
    q.done(*k);
  });
  first.join();
  second.join();
  EXPECT_EQ(second_got, (std::vector<std::string>{"b", "a"}));
  EXPECT_TRUE(a_came_after_done);
}

TEST(work_queue, no_key_is_ever_processed_by_two_workers_at_once) {
  real_clock time;
  work_queue q(time);
  constexpr int keys = 8;
  constexpr int workers = 4;
  constexpr int producers = 3;
  constexpr int adds_per_producer = 2000;

  std::array<std::atomic<int>, keys> in_flight{};
  std::atomic<int> overlaps{0};
  std::mutex seen_mutex;
  std::condition_variable seen_changed;
  std::set<std::string> seen;

  std::vector<std::thread> pool;
  for (int w = 0; w < workers; ++w) {
    pool.emplace_back([&] {
      while (auto k = q.get()) {
        const int i = std::stoi(*k);
        if (in_flight[i].fetch_add(1) != 0) {
          ++overlaps;
        }
        std::this_thread::yield();  // widen the window in which an overlap would show
        in_flight[i].fetch_sub(1);
        {
          std::lock_guard lock(seen_mutex);
          seen.insert(*k);
        }
        seen_changed.notify_all();
        q.done(*k);
      }
    });
  }
  std::vector<std::thread> adders;
  for (int p = 0; p < producers; ++p) {
    adders.emplace_back([&, p] {
      for (int n = 0; n < adds_per_producer; ++n) {
        q.add(std::to_string((n + p) % keys));
      }
    });
  }
  for (auto& t : adders) {
    t.join();
  }
  {
    std::unique_lock lock(seen_mutex);
    seen_changed.wait(lock, [&] { return seen.size() == static_cast<std::size_t>(keys); });
  }
  q.shutdown();
  for (auto& t : pool) {
    t.join();
  }
  EXPECT_EQ(overlaps.load(), 0);
}

TEST(work_queue, add_after_hands_the_key_out_once_the_delay_has_passed) {
  fake_clock time;
  work_queue q(time);
  const auto start = time.now();
  q.add_after("a", 1s);
  EXPECT_EQ(q.try_get(), std::nullopt);
  EXPECT_EQ(q.len(), 0U);
  EXPECT_EQ(q.next_ready_time(), start + 1s);

  time.advance(999ms);
  EXPECT_EQ(q.try_get(), std::nullopt);
  time.advance(1ms);
  EXPECT_EQ(q.len(), 1U);
  EXPECT_EQ(drain(q), (std::vector<std::string>{"a"}));
  EXPECT_EQ(q.next_ready_time(), std::nullopt);
}

TEST(work_queue, add_after_keeps_the_earlier_time_of_a_waiting_key) {
  fake_clock time;
  work_queue q(time);
  const auto start = time.now();
  q.add_after("a", 10s);
  q.add_after("a", 1s);
  EXPECT_EQ(q.next_ready_time(), start + 1s);
  q.add_after("a", 5s);
  EXPECT_EQ(q.next_ready_time(), start + 1s);
  time.advance(1s);
  EXPECT_EQ(drain(q), (std::vector<std::string>{"a"}));
  // One entry per key: nothing left for the later times.
  EXPECT_EQ(q.next_ready_time(), std::nullopt);
  time.advance(10s);
  EXPECT_EQ(q.try_get(), std::nullopt);
}

TEST(work_queue, add_after_without_a_positive_delay_adds_at_once) {
  fake_clock time;
  work_queue q(time);
  q.add_after("a", 0s);
  q.add_after("b", -1s);
  EXPECT_EQ(drain(q), (std::vector<std::string>{"a", "b"}));
}

TEST(work_queue, delayed_keys_become_ready_in_time_order) {
  fake_clock time;
  work_queue q(time);
  q.add_after("late", 3s);
  q.add_after("early", 1s);
  q.add_after("middle", 2s);
  time.advance(5s);
  EXPECT_EQ(drain(q), (std::vector<std::string>{"early", "middle", "late"}));
}

TEST(work_queue, a_delayed_key_that_comes_due_while_processing_waits_for_done) {
  fake_clock time;
  work_queue q(time);
  q.add("a");
  ASSERT_EQ(q.try_get(), "a");
  q.add_after("a", 1s);
  time.advance(1s);
  EXPECT_EQ(q.len(), 0U);
  EXPECT_EQ(q.try_get(), std::nullopt);
  q.done("a");
  EXPECT_EQ(drain(q), (std::vector<std::string>{"a"}));
}

TEST(work_queue, a_blocked_get_wakes_when_the_fake_clock_reaches_the_delay) {
  fake_clock time;
  work_queue q(time);
  std::optional<std::string> got;
  q.add_after("a", 1s);
  std::thread worker([&] { got = q.get(); });
  // Whether the worker is already waiting or not yet in get(), it can only
  // return after this.
  time.advance(1s);
  worker.join();
  EXPECT_EQ(got, "a");
}

TEST(work_queue, a_blocked_get_sees_a_key_delayed_less_than_the_one_it_waits_for) {
  fake_clock time;
  work_queue q(time);
  std::optional<std::string> got;
  q.add_after("later", 1h);
  std::thread worker([&] { got = q.get(); });
  q.add_after("sooner", 1s);
  time.advance(1s);
  worker.join();
  EXPECT_EQ(got, "sooner");
}

TEST(work_queue, a_blocked_get_waits_out_a_delay_on_the_real_clock) {
  real_clock time;
  work_queue q(time);
  const auto start = time.now();
  q.add_after("a", 2ms);
  EXPECT_EQ(q.get(), "a");
  EXPECT_GE(time.now() - start, 2ms);
}

TEST(work_queue, backoff_doubles_from_5ms_per_failure_up_to_the_maximum) {
  fake_clock time;
  work_queue q(time, backoff_options{5ms, 1s});
  const std::vector<milliseconds> expected = {5ms,   10ms,  20ms,  40ms, 80ms,
                                              160ms, 320ms, 640ms, 1s,   1s};
  for (std::size_t i = 0; i < expected.size(); ++i) {
    SCOPED_TRACE("failure " + std::to_string(i + 1));
    q.add_rate_limited("a");
    EXPECT_EQ(q.num_requeues("a"), i + 1);
    ASSERT_TRUE(q.next_ready_time());
    EXPECT_EQ(*q.next_ready_time() - time.now(), expected[i]);
    time.advance(expected[i] - 1ns);
    EXPECT_EQ(q.try_get(), std::nullopt);
    time.advance(1ns);
    EXPECT_EQ(drain(q), (std::vector<std::string>{"a"}));
  }
}

TEST(work_queue, backoff_is_per_key) {
  fake_clock time;
  work_queue q(time);
  q.add_rate_limited("a");
  time.advance(5ms);
  drain(q);
  q.add_rate_limited("a");
  q.add_rate_limited("b");
  EXPECT_EQ(q.num_requeues("a"), 2U);
  EXPECT_EQ(q.num_requeues("b"), 1U);
  // "b" waits its first 5 ms, "a" its second 10 ms.
  EXPECT_EQ(*q.next_ready_time() - time.now(), 5ms);
  time.advance(5ms);
  EXPECT_EQ(drain(q), (std::vector<std::string>{"b"}));
  time.advance(5ms);
  EXPECT_EQ(drain(q), (std::vector<std::string>{"a"}));
}

TEST(work_queue, forget_resets_the_backoff) {
  fake_clock time;
  work_queue q(time);
  for (int i = 0; i < 3; ++i) {
    q.add_rate_limited("a");
    time.advance(1s);
    drain(q);
  }
  EXPECT_EQ(q.num_requeues("a"), 3U);
  q.forget("a");
  EXPECT_EQ(q.num_requeues("a"), 0U);
  q.add_rate_limited("a");
  EXPECT_EQ(*q.next_ready_time() - time.now(), 5ms);
}

TEST(work_queue, default_backoff_caps_at_five_minutes) {
  const backoff_options defaults;
  EXPECT_EQ(exponential_backoff(0, defaults), 5ms);
  EXPECT_EQ(exponential_backoff(15, defaults), 5ms * 32768);  // 163.84 s
  EXPECT_EQ(exponential_backoff(16, defaults), std::chrono::minutes{5});
  // Doublings past the width of the tick count do not overflow.
  EXPECT_EQ(exponential_backoff(62, defaults), std::chrono::minutes{5});
  EXPECT_EQ(exponential_backoff(63, defaults), std::chrono::minutes{5});
  EXPECT_EQ(exponential_backoff(100000, defaults), std::chrono::minutes{5});
}

TEST(work_queue, shutdown_unblocks_get) {
  fake_clock time;
  work_queue q(time);
  std::optional<std::string> got = "unset";
  std::thread worker([&] { got = q.get(); });
  q.shutdown();
  worker.join();
  EXPECT_EQ(got, std::nullopt);
}

TEST(work_queue, after_shutdown_nothing_is_handed_out_or_added) {
  fake_clock time;
  work_queue q(time);
  q.add("queued");
  q.shutdown();
  EXPECT_TRUE(q.shutting_down());
  EXPECT_EQ(q.get(), std::nullopt);
  EXPECT_EQ(q.try_get(), std::nullopt);
  EXPECT_EQ(q.len(), 0U);
  q.add("later");
  q.add_after("delayed", 1s);
  q.add_rate_limited("limited");
  EXPECT_EQ(q.len(), 0U);
  EXPECT_EQ(q.next_ready_time(), std::nullopt);
}

TEST(work_queue, done_after_shutdown_requeues_nothing) {
  fake_clock time;
  work_queue q(time);
  q.add("a");
  ASSERT_EQ(q.try_get(), "a");
  q.add("a");
  q.shutdown();
  q.done("a");
  EXPECT_EQ(q.try_get(), std::nullopt);
}

}  // namespace
}  // namespace lifeboat::runtime
