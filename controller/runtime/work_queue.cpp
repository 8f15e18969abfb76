#include "controller/runtime/work_queue.hpp"

#include <cassert>
#include <limits>

namespace lifeboat::runtime {

clock::duration exponential_backoff(std::size_t failures, const backoff_options& options) {
  const auto base = std::chrono::duration_cast<clock::duration>(options.base);
  const auto max = std::chrono::duration_cast<clock::duration>(options.max);
  if (base <= clock::duration::zero()) {
    return clock::duration::zero();
  }
  // base * 2^failures > max  <=>  base > max / 2^failures; checking it this
  // way round never overflows, however many failures there were.
  constexpr std::size_t bits = std::numeric_limits<clock::duration::rep>::digits;
  if (failures >= bits || base.count() > (max.count() >> failures)) {
    return max;
  }
  return base * (clock::duration::rep{1} << failures);
}

work_queue::work_queue(const clock& time, backoff_options backoff)
    : clock_(time), backoff_(backoff) {
  // A fake clock does not flow: a get() waiting for a delayed key has to be
  // woken to look at the time again when the clock is moved.
  advanced_ = clock_.on_advance([this] {
    std::lock_guard lock(mutex_);
    ready_.notify_all();
  });
}

work_queue::~work_queue() { advanced_.reset(); }

void work_queue::add(const key& k) {
  std::lock_guard lock(mutex_);
  add_locked(k);
}

void work_queue::add_locked(const key& k) {
  if (shutting_down_ || !dirty_.insert(k).second) {
    return;
  }
  // A key being processed waits in dirty_ until done(): no second worker may
  // receive it meanwhile.
  if (processing_.contains(k)) {
    return;
  }
  queue_.push_back(k);
  ready_.notify_one();
}

void work_queue::add_after(const key& k, clock::duration delay) {
  std::lock_guard lock(mutex_);
  if (shutting_down_) {
    return;
  }
  if (delay <= clock::duration::zero()) {
    add_locked(k);
    return;
  }
  const auto at = clock_.now() + delay;
  if (auto it = ready_at_.find(k); it != ready_at_.end()) {
    if (it->second <= at) {
      return;
    }
    waiting_.erase({it->second, k});
    it->second = at;
  } else {
    ready_at_.emplace(k, at);
  }
  waiting_.emplace(at, k);
  // A blocked get() may be waiting for a later time than this one.
  ready_.notify_all();
}

void work_queue::add_rate_limited(const key& k) {
  clock::duration delay{};
  {
    std::lock_guard lock(mutex_);
    delay = exponential_backoff(failures_[k]++, backoff_);
  }
  add_after(k, delay);
}

void work_queue::forget(const key& k) {
  std::lock_guard lock(mutex_);
  failures_.erase(k);
}

std::size_t work_queue::num_requeues(const key& k) const {
  std::lock_guard lock(mutex_);
  const auto it = failures_.find(k);
  return it == failures_.end() ? 0 : it->second;
}

void work_queue::promote_due_locked(clock::steady_time now) {
  while (!waiting_.empty() && waiting_.begin()->first <= now) {
    auto node = waiting_.extract(waiting_.begin());
    ready_at_.erase(node.value().second);
    add_locked(node.value().second);
  }
}

std::optional<work_queue::key> work_queue::pop_locked() {
  if (queue_.empty()) {
    return std::nullopt;
  }
  key k = std::move(queue_.front());
  queue_.pop_front();
  dirty_.erase(k);
  processing_.insert(k);
  return k;
}

std::optional<work_queue::key> work_queue::get() {
  std::unique_lock lock(mutex_);
  while (!shutting_down_) {
    promote_due_locked(clock_.now());
    if (auto k = pop_locked()) {
      return k;
    }
    if (waiting_.empty()) {
      ready_.wait(lock);
    } else {
      clock_.wait_until(ready_, lock, waiting_.begin()->first);
    }
  }
  return std::nullopt;
}

std::optional<work_queue::key> work_queue::try_get() {
  std::lock_guard lock(mutex_);
  if (shutting_down_) {
    return std::nullopt;
  }
  promote_due_locked(clock_.now());
  return pop_locked();
}

void work_queue::done(const key& k) {
  std::lock_guard lock(mutex_);
  const auto erased = processing_.erase(k);
  assert(erased == 1 && "done() for a key that was not handed out");
  (void)erased;
  if (dirty_.contains(k) && !shutting_down_) {
    queue_.push_back(k);
    ready_.notify_one();
  }
}

std::optional<clock::steady_time> work_queue::next_ready_time() const {
  std::lock_guard lock(mutex_);
  if (waiting_.empty()) {
    return std::nullopt;
  }
  return waiting_.begin()->first;
}

std::size_t work_queue::len() const {
  std::lock_guard lock(mutex_);
  std::size_t n = queue_.size();
  // Due delayed keys are moved to the queue lazily, by get(); count those that
  // moving would queue, so the depth does not depend on when a worker looks.
  const auto now = clock_.now();
  for (auto it = waiting_.begin(); it != waiting_.end() && it->first <= now; ++it) {
    n += dirty_.contains(it->second) || processing_.contains(it->second) ? 0 : 1;
  }
  return n;
}

void work_queue::shutdown() {
  std::lock_guard lock(mutex_);
  shutting_down_ = true;
  // Dropped, not handed out: see the header. Keys being processed stay marked
  // so that their done() still finds them.
  queue_.clear();
  dirty_.clear();
  waiting_.clear();
  ready_at_.clear();
  ready_.notify_all();
}

bool work_queue::shutting_down() const {
  std::lock_guard lock(mutex_);
  return shutting_down_;
}

}  // namespace lifeboat::runtime
