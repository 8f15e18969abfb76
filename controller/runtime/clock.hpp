#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <map>
#include <mutex>
#include <utility>

// Time, injected: the work queue and the lease read it only through this
// interface, so tests drive it by hand and never sleep.
namespace lifeboat::runtime {

class clock {
 public:
  using steady_time = std::chrono::steady_clock::time_point;
  using system_time = std::chrono::system_clock::time_point;
  using duration = std::chrono::steady_clock::duration;

  /// Keeps a callback registered with on_advance() for as long as it lives.
  /// Destroying it waits for a running call of the callback to return, so the
  /// callback's owner may destroy what it refers to right after.
  class subscription {
   public:
    subscription() = default;
    explicit subscription(std::function<void()> cancel) : cancel_(std::move(cancel)) {}
    subscription(subscription&& other) noexcept : cancel_(std::exchange(other.cancel_, {})) {}
    subscription& operator=(subscription&& other) noexcept {
      if (this != &other) {
        reset();
        cancel_ = std::exchange(other.cancel_, {});
      }
      return *this;
    }
    subscription(const subscription&) = delete;
    subscription& operator=(const subscription&) = delete;
    ~subscription() { reset(); }

    void reset() {
      if (cancel_) {
        std::exchange(cancel_, {})();
      }
    }

   private:
    std::function<void()> cancel_;
  };

  virtual ~clock() = default;

  /// Monotonic time, for deadlines and for judging how long ago something was seen.
  virtual steady_time now() const = 0;
  /// Wall-clock time, only for what is written for people or other processes to read.
  virtual system_time system_now() const = 0;

  /// Blocks on `cv` (whose mutex `lock` holds) until it is notified, or until
  /// now() reaches `deadline`. May return early or spuriously: the caller
  /// re-checks its condition in a loop, as with any condition variable.
  virtual void wait_until(std::condition_variable& cv, std::unique_lock<std::mutex>& lock,
                          steady_time deadline) const = 0;

  /// Registers `callback` to run after each jump of a clock whose time moves
  /// only by hand (fake_clock::advance), on the thread that moved it; a real
  /// clock never calls it. A waiter uses it to re-check its deadline: the
  /// callback must lock the waiter's mutex before notifying, or a wake-up
  /// could fall between the waiter's check and its wait.
  [[nodiscard]] virtual subscription on_advance(std::function<void()> callback) const = 0;
};

/// The machine's clocks.
class real_clock final : public clock {
 public:
  steady_time now() const override { return std::chrono::steady_clock::now(); }
  system_time system_now() const override { return std::chrono::system_clock::now(); }
  void wait_until(std::condition_variable& cv, std::unique_lock<std::mutex>& lock,
                  steady_time deadline) const override {
    cv.wait_until(lock, deadline);
  }
  subscription on_advance(std::function<void()> /*callback*/) const override { return {}; }
};

/// A clock that stands still until advance() is called. Any thread may read
/// or move it. Steady and system time move together; set_system_time() moves
/// only the wall clock, to stand for a node whose clock is off.
class fake_clock final : public clock {
 public:
  explicit fake_clock(steady_time steady_start = steady_time{std::chrono::hours{1}},
                      system_time system_start = system_time{std::chrono::seconds{1'700'000'000}})
      : steady_(steady_start), system_(system_start) {}

  steady_time now() const override {
    std::lock_guard lock(time_mutex_);
    return steady_;
  }

  system_time system_now() const override {
    std::lock_guard lock(time_mutex_);
    return system_;
  }

  /// Moves both clocks forward by `d`, then runs every on_advance() callback.
  void advance(duration d) {
    {
      std::lock_guard lock(time_mutex_);
      steady_ += d;
      system_ += std::chrono::duration_cast<system_time::duration>(d);
    }
    // Callbacks lock their owner's mutex, and owners call now() under it, so
    // the time mutex must not be held here.
    std::lock_guard lock(callbacks_mutex_);
    for (auto& [id, callback] : callbacks_) {
      callback();
    }
  }

  /// Sets the wall clock alone; steady time and waiters are not affected.
  void set_system_time(system_time t) {
    std::lock_guard lock(time_mutex_);
    system_ = t;
  }

  /// Waits for a notification only: time cannot pass by itself, and
  /// advance() notifies through on_advance().
  void wait_until(std::condition_variable& cv, std::unique_lock<std::mutex>& lock,
                  steady_time deadline) const override {
    if (now() < deadline) {
      cv.wait(lock);
    }
  }

  subscription on_advance(std::function<void()> callback) const override {
    std::lock_guard lock(callbacks_mutex_);
    const std::uint64_t id = next_id_++;
    callbacks_.emplace(id, std::move(callback));
    return subscription([this, id] {
      std::lock_guard cancel_lock(callbacks_mutex_);
      callbacks_.erase(id);
    });
  }

 private:
  mutable std::mutex time_mutex_;
  steady_time steady_;
  system_time system_;

  // Held while callbacks run, so that cancelling a subscription waits for them.
  mutable std::mutex callbacks_mutex_;
  mutable std::map<std::uint64_t, std::function<void()>> callbacks_;
  mutable std::uint64_t next_id_ = 0;
};

}  // namespace lifeboat::runtime
