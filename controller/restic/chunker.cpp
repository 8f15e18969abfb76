#include "controller/restic/chunker.hpp"

#include "controller/restic/primitives.hpp"

#include <bit>
#include <cstring>
#include <stdexcept>

namespace lifeboat::restic {

namespace {

polynomial mod(polynomial x, polynomial d) noexcept {
  const int dd = degree(d);
  for (int diff = degree(x) - dd; diff >= 0; diff = degree(x) - dd) {
    x ^= d << static_cast<unsigned>(diff);
  }
  return x;
}

polynomial gcd(polynomial a, polynomial b) noexcept {
  while (b != 0) {
    a = mod(a, b);
    std::swap(a, b);
  }
  return a;
}

/// a * b mod g, for a, b of lower degree than g (< 63).
polynomial mul_mod(polynomial a, polynomial b, polynomial g) noexcept {
  polynomial res = 0;
  a = mod(a, g);
  for (; b != 0; b >>= 1U) {
    if ((b & 1U) != 0) {
      res ^= a;
    }
    a = mod(a << 1U, g);
  }
  return res;
}

/// x^(2^p) - x mod g (subtraction is addition over GF(2)).
polynomial qp(unsigned p, polynomial g) noexcept {
  polynomial res = 2;  // x
  for (unsigned i = 0; i < p; ++i) {
    res = mul_mod(res, res, g);
  }
  return mod(res ^ 2U, g);
}

}  // namespace

int degree(polynomial p) noexcept { return 63 - std::countl_zero(p); }

bool is_irreducible(polynomial p) noexcept {
  if (degree(p) < 1) {
    return false;
  }
  for (int i = 1; i <= degree(p) / 2; ++i) {
    if (gcd(p, qp(static_cast<unsigned>(i), p)) != 1) {
      return false;
    }
  }
  return true;
}

result<polynomial> random_polynomial() {
  // The density of irreducible polynomials of degree 53 is about 1/53: a million
  // tries failing means the random source is broken.
  for (int attempt = 0; attempt < 1000000; ++attempt) {
    std::array<unsigned char, 8> bytes{};
    if (auto r = detail::random_bytes(bytes); !r) {
      return r.error();
    }
    polynomial f = 0;
    for (std::size_t i = 0; i < bytes.size(); ++i) {
      f |= polynomial{bytes[i]} << (8 * i);
    }
    f &= (polynomial{1} << 54U) - 1;
    f |= (polynomial{1} << 53U) | 1U;
    if (is_irreducible(f)) {
      return f;
    }
  }
  return make_error(errc::internal, "no irreducible polynomial found in 1000000 random tries");
}

chunker::chunker(polynomial pol, byte_source source) : shift_(0), source_(std::move(source)) {
  const int deg = degree(pol);
  if (deg < 9 || deg > 53) {
    throw std::invalid_argument("restic chunker: polynomial degree must be 9..53");
  }
  shift_ = static_cast<unsigned>(deg - 8);
  // out_[b]: the fingerprint's share of byte b once it is 63 bytes old, to cancel
  // it when it leaves the window.
  for (unsigned b = 0; b < 256; ++b) {
    polynomial h = mod(b, pol);
    for (std::size_t i = 0; i + 1 < window_size; ++i) {
      h = mod(h << 8U, pol);
    }
    out_[b] = h;
  }
  // mod_[b]: reduces the 8 bits shifted above the degree, and clears them.
  for (unsigned b = 0; b < 256; ++b) {
    const polynomial high = polynomial{b} << static_cast<unsigned>(deg);
    mod_[b] = mod(high, pol) | high;
  }
  buffer_.resize(max_size + read_size);
}

void chunker::reset_state() {
  window_.fill(0);
  wpos_ = 0;
  digest_ = 0;
  // restic slides a single 1 into the empty window at every chunk start.
  window_[0] = 1;
  wpos_ = 1;
  const std::uint64_t index = digest_ >> shift_;
  digest_ = ((digest_ << 8U) | 1U) ^ mod_[index];
}

result<void> chunker::fill() {
  while (!eof_ && filled_ < buffer_.size()) {
    auto n = source_(std::span(buffer_).subspan(filled_));
    if (!n) {
      return n.error();
    }
    if (*n == 0) {
      eof_ = true;
    }
    filled_ += *n;
    if (*n != 0 && filled_ >= read_size) {
      // Enough to scan; a slow source should not delay chunks it has already delivered.
      break;
    }
  }
  return {};
}

result<std::optional<chunk>> chunker::next() {
  if (failed_) {
    return *failed_;
  }
  if (consumed_ > 0) {
    std::memmove(buffer_.data(), buffer_.data() + consumed_, filled_ - consumed_);
    filled_ -= consumed_;
    offset_ += consumed_;
    consumed_ = 0;
  }
  reset_state();
  // The first min_size - window_size bytes are never hashed: no cut can fall there,
  // and the window only has to be full by min_size.
  const std::size_t skip = min_size - window_size;
  std::size_t pos = 0;
  std::uint64_t digest = digest_;
  std::size_t wpos = wpos_;
  for (;;) {
    if (pos == filled_) {
      if (eof_) {
        if (pos == 0) {
          return std::optional<chunk>();
        }
        consumed_ = pos;
        return std::optional<chunk>(chunk{offset_, std::span(buffer_).first(pos)});
      }
      if (auto r = fill(); !r) {
        failed_ = r.error();
        return r.error();
      }
      continue;
    }
    if (pos < skip) {
      pos = std::min(skip, filled_);
      continue;
    }
    const unsigned char* data = buffer_.data();
    const std::size_t end = std::min(filled_, max_size);
    for (; pos < end; ++pos) {
      const unsigned char b = data[pos];
      digest ^= out_[window_[wpos]];
      window_[wpos] = b;
      wpos = (wpos + 1) & (window_size - 1);
      const std::uint64_t index = digest >> shift_;
      digest = ((digest << 8U) | b) ^ mod_[index];
      const std::size_t length = pos + 1;
      if (((digest & split_mask) == 0 || length >= max_size) && length >= min_size) {
        consumed_ = length;
        return std::optional<chunk>(chunk{offset_, std::span(buffer_).first(length)});
      }
    }
  }
}

}  // namespace lifeboat::restic
