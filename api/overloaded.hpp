#pragma once

namespace lifeboat::api {

/// Combines lambdas into one visitor for std::visit.
template <class... Fs>
struct overloaded : Fs... {
  using Fs::operator()...;
};
// Clang 14 lacks class template argument deduction for aggregates.
template <class... Fs>
overloaded(Fs...) -> overloaded<Fs...>;

}  // namespace lifeboat::api
