#include "controller/archive/compressor.hpp"

#include "tests/controller/archive/test_support.hpp"

#include <gtest/gtest.h>

#include <fstream>
#include <string>
#include <vector>

// Each compressor alone: its output must be what gzip and zstd read back,
// byte for byte, for the threaded and the single-threaded paths, whatever
// the sizes of the writes.
namespace lifeboat::archive {
namespace {

namespace fs = std::filesystem;
using api::compression_kind;
using test::run;
using test::scratch_dir;
using test::shell_quote;

// Compressible text, incompressible bytes and runs of zeros, 3 MiB and a bit.
std::string mixed_data() {
  std::string out;
  std::uint64_t x = 0x9E3779B97F4A7C15ULL;
  auto next = [&] {
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    return x;
  };
  while (out.size() < 1024 * 1024) {
    out += "row " + std::to_string(next() % 1000) + " of the table, status ok\n";
  }
  for (int i = 0; i < 1024 * 1024; ++i) {
    out += static_cast<char>(next());
  }
  out += std::string(1024 * 1024, '\0');
  out += "tail";
  return out;
}

// Writes `data` through a compressor in pieces of the given sizes, cycling.
std::string compress(const compression_options& options, const std::string& data,
                     const std::vector<std::size_t>& pieces) {
  std::string out;
  auto c = make_compressor(options, [&](std::span<const char> bytes) -> result<void> {
    out.append(bytes.data(), bytes.size());
    return {};
  });
  EXPECT_TRUE(c) << c.error().describe();
  if (!c) {
    return {};
  }
  std::size_t offset = 0;
  for (std::size_t i = 0; offset < data.size(); ++i) {
    const std::size_t n = std::min(pieces[i % pieces.size()], data.size() - offset);
    auto r = (*c)->write(std::span(data.data() + offset, n));
    EXPECT_TRUE(r) << r.error().describe();
    offset += n;
  }
  auto f = (*c)->finish();
  EXPECT_TRUE(f) << f.error().describe();
  return out;
}

// Decompresses `compressed` with the command-line tool and compares.
void expect_round_trip(compression_kind kind, const std::string& compressed,
                       const std::string& original) {
  scratch_dir dir;
  const fs::path file = dir / (kind == compression_kind::gzip ? "x.gz" : "x.zst");
  std::ofstream(file, std::ios::binary) << compressed;
  const std::string tool = kind == compression_kind::gzip ? "gzip" : "zstd -q";
  auto t = run(tool + " -t " + shell_quote(file.string()));
  EXPECT_EQ(t.status, 0) << t.output;
  auto d = run(tool + " -dc " + shell_quote(file.string()) + " > " +
               shell_quote((dir / "out").string()));
  ASSERT_EQ(d.status, 0) << d.output;
  EXPECT_TRUE(test::read_file(dir / "out") == original) << "decompressed data differs";
}

struct compressor_case {
  std::string name;
  compression_options options;
};

class compressor_round_trip : public testing::TestWithParam<compressor_case> {};

TEST_P(compressor_round_trip, tools_read_back_the_same_bytes) {
  const auto& c = GetParam();
  const std::string data = mixed_data();
  // Odd piece sizes cross block boundaries everywhere; one large write
  // spans several blocks at once.
  for (const auto& pieces :
       std::vector<std::vector<std::size_t>>{{1, 511, 512, 4096, 65537}, {3 * 1024 * 1024 + 7}}) {
    const std::string out = compress(c.options, data, pieces);
    if (c.options.kind == compression_kind::none) {
      EXPECT_TRUE(out == data);
    } else {
      EXPECT_LT(out.size(), data.size());
      expect_round_trip(c.options.kind, out, data);
    }
  }
}

INSTANTIATE_TEST_SUITE_P(
    archive, compressor_round_trip,
    testing::Values(compressor_case{"gzip_threads", {compression_kind::gzip, {}, 3, 64 * 1024, 0}},
                    compressor_case{"gzip_single", {compression_kind::gzip, {}, 1, 64 * 1024, 0}},
                    compressor_case{"gzip_default_blocks", {compression_kind::gzip, {}, 0, 0, 0}},
                    compressor_case{"gzip_level1", {compression_kind::gzip, 1, 2, 128 * 1024, 0}},
                    compressor_case{"gzip_level2", {compression_kind::gzip, 2, 1, 128 * 1024, 0}},
                    compressor_case{"gzip_level3", {compression_kind::gzip, 3, 2, 128 * 1024, 0}},
                    compressor_case{"gzip_level4", {compression_kind::gzip, 4, 2, 128 * 1024, 0}},
                    compressor_case{"gzip_level9", {compression_kind::gzip, 9, 2, 256 * 1024, 0}},
                    compressor_case{"zstd_threads", {compression_kind::zstd, {}, 2, 0, 0}},
                    compressor_case{"zstd_single", {compression_kind::zstd, {}, 1, 0, 0}},
                    compressor_case{"zstd_level10_jobs",
                                    {compression_kind::zstd, 10, 3, 0, 512 * 1024}},
                    compressor_case{"none", {compression_kind::none, {}, 0, 0, 0}}),
    [](const testing::TestParamInfo<compressor_case>& p) { return p.param.name; });

TEST(compressor, empty_stream_is_still_valid) {
  for (auto kind : {compression_kind::gzip, compression_kind::zstd}) {
    for (unsigned threads : {1U, 2U}) {
      const std::string out = compress({kind, {}, threads, 0, 0}, "", {1});
      EXPECT_FALSE(out.empty());
      expect_round_trip(kind, out, "");
    }
  }
}

TEST(compressor, levels_out_of_range_are_refused) {
  auto sink = [](std::span<const char>) -> result<void> { return {}; };
  for (const auto& o : std::vector<compression_options>{{compression_kind::gzip, 0, 0, 0, 0},
                                                        {compression_kind::gzip, 10, 0, 0, 0},
                                                        {compression_kind::zstd, 0, 0, 0, 0},
                                                        {compression_kind::zstd, 23, 0, 0, 0},
                                                        {compression_kind::none, 1, 0, 0, 0},
                                                        {compression_kind::gzip, {}, 0, 1000, 0}}) {
    auto c = make_compressor(o, sink);
    ASSERT_FALSE(c) << describe(o);
    EXPECT_TRUE(c.error().is(errc::invalid_argument));
  }
}

TEST(compressor, sink_failure_stops_the_stream_without_hanging) {
  const std::string data = mixed_data();
  for (auto kind : {compression_kind::gzip, compression_kind::zstd, compression_kind::none}) {
    for (unsigned threads : {1U, 4U}) {
      int calls = 0;
      auto c = make_compressor({kind, {}, threads, 64 * 1024, 0},
                               [&](std::span<const char>) -> result<void> {
                                 if (++calls == 2) {
                                   return make_error(errc::io_error, "disk full");
                                 }
                                 return {};
                               });
      ASSERT_TRUE(c);
      result<void> r;
      for (std::size_t offset = 0; r && offset < data.size(); offset += 100000) {
        r = (*c)->write(
            std::span(data.data() + offset, std::min<std::size_t>(100000, data.size() - offset)));
      }
      if (r) {
        r = (*c)->finish();
      }
      ASSERT_FALSE(r) << describe({kind, {}, threads, 0, 0});
      EXPECT_EQ(r.error().describe(), "io error: disk full");
    }
  }
}

TEST(compressor, describe_names_the_codec) {
  EXPECT_EQ(describe({compression_kind::gzip, 6, 2, 0, 0}),
            "gzip (libdeflate level 6, 2 threads, 256 KiB blocks)");
  EXPECT_EQ(describe({compression_kind::zstd, {}, 1, 0, 0}), "zstd (level 3, 1 thread)");
  EXPECT_EQ(describe({compression_kind::zstd, 5, 2, 0, 0}),
            "zstd (level 5, 2 threads, 512 KiB jobs)");
  EXPECT_EQ(describe({compression_kind::none, {}, 0, 0, 0}), "none");
  EXPECT_GE(usable_cpus(), 1U);
}

}  // namespace
}  // namespace lifeboat::archive
