#include "controller/archive/name_pattern.hpp"

#include "api/objects.hpp"

#include <gtest/gtest.h>

#include <chrono>
#include <string>
#include <vector>

namespace lifeboat::archive {
namespace {

using namespace std::chrono;

struct pattern_case {
  std::string name_template;
  std::string schedule;
  std::string extension;
  std::string file;
  bool matches;
};

TEST(archive_name_pattern, matches_exactly_what_the_template_writes) {
  const std::string def = "{schedule}-%Y-%m-%dT%H-%M-%S";
  const std::vector<pattern_case> cases = {
      {def, "nightly-db", ".tar.gz", "nightly-db-2024-05-01T03-00-00.tar.gz", true},
      // Another schedule sharing the prefix.
      {def, "nightly-db", ".tar.gz", "nightly-db-extra-2024-05-01T03-00-00.tar.gz", false},
      {def, "nightly-db-extra", ".tar.gz", "nightly-db-2024-05-01T03-00-00.tar.gz", false},
      // Other extensions, partials, checksums.
      {def, "nightly-db", ".tar.gz", "nightly-db-2024-05-01T03-00-00.tar.zst", false},
      {def, "nightly-db", ".tar.gz", "nightly-db-2024-05-01T03-00-00.tar.gz.partial", false},
      {def, "nightly-db", ".tar.gz", "nightly-db-2024-05-01T03-00-00.tar.gz.sha256", false},
      {def, "nightly-db", ".tar", "nightly-db-2024-05-01T03-00-00.tar.gz", false},
      // Encrypted archives are the schedule's own only with their extension.
      {def, "nightly-db", ".tar.zst.gpg", "nightly-db-2024-05-01T03-00-00.tar.zst.gpg", true},
      {def, "nightly-db", ".tar.zst.gpg", "nightly-db-2024-05-01T03-00-00.tar.zst.age", false},
      {def, "nightly-db", ".tar.zst.gpg", "nightly-db-2024-05-01T03-00-00.tar.zst", false},
      {def, "nightly-db", ".tar.zst.gpg", "nightly-db-2024-05-01T03-00-00.tar.zst.gpg.partial",
       false},
      // Digits where digits go, of the right count.
      {def, "nightly-db", ".tar.gz", "nightly-db-2024-5-01T03-00-00.tar.gz", false},
      {def, "nightly-db", ".tar.gz", "nightly-db-2024-05-01T03-00-0x.tar.gz", false},
      {def, "nightly-db", ".tar.gz", "nightly-db-20245-05-01T03-00-00.tar.gz", false},
      {def, "nightly-db", ".tar.gz", "", false},
      {def, "nightly-db", ".tar.gz", "latest", false},
      // Every conversion.
      {"%F_%a_%b_%e_%j_%y_%%", "s", ".tar", "2024-05-01_Wed_May_ 1_122_24_%.tar", true},
      {"%F_%a_%b_%e_%j_%y_%%", "s", ".tar", "2024-05-01_Wed_May_11_122_24_%.tar", true},
      {"%F_%a_%b_%e_%j_%y_%%", "s", ".tar", "2024-05-01_Wen_May_11_122_24_%.tar", false},
      {"%F_%a_%b_%e_%j_%y_%%", "s", ".tar", "2024-05-01_Wed_Mai_11_122_24_%.tar", false},
      // Literal text, including regex metacharacters and an unknown
      // conversion copied as written.
      {"backup.(x)+[%Q]", "s", ".tar", "backup.(x)+[%Q].tar", true},
      {"backup.(x)+[%Q]", "s", ".tar", "backupX(x)+[%Q].tar", false},
      // No {schedule}: only the shape counts.
      {"%Y%m%d", "ignored", ".tar.zst", "20240501.tar.zst", true},
      {"%Y%m%d", "ignored", ".tar.zst", "ignored-20240501.tar.zst", false},
  };
  for (const auto& c : cases) {
    const archive_name_pattern p(c.name_template, c.schedule, c.extension);
    EXPECT_EQ(p.matches(c.file), c.matches) << c.name_template << " / " << c.file;
  }
}

TEST(archive_name_pattern, tells_which_node_wrote_an_archive) {
  const archive_name_pattern p("{schedule}-%Y-%m-%dT%H-%M-%S", "nightly-db", ".tar.gz");
  const std::string stem = "nightly-db-2024-05-01T03-00-00";
  EXPECT_EQ(p.node_of(stem + ".tar.gz"), "");
  EXPECT_EQ(p.node_of(stem + ".worker-2.tar.gz"), "worker-2");
  EXPECT_EQ(p.node_of(node_file_name(stem, "db_host-1", ".tar.gz")), "db_host-1");
  // What node_file_name cannot write is nobody's: no empty name, no dots, no
  // name without its dot, no node after the extension.
  EXPECT_EQ(p.node_of(stem + "..tar.gz"), std::nullopt);
  EXPECT_EQ(p.node_of(stem + ".a.b.tar.gz"), std::nullopt);
  EXPECT_EQ(p.node_of(stem + "n2.tar.gz"), std::nullopt);
  EXPECT_EQ(p.node_of(stem + ".tar.gz.n2"), std::nullopt);
  EXPECT_EQ(p.node_of(stem + ".n2.tar.gz.sha256"), std::nullopt);
  EXPECT_EQ(p.node_of(stem + ".n2.tar.zst"), std::nullopt);
  EXPECT_EQ(p.node_of("nightly-db-extra-2024-05-01T03-00-00.n2.tar.gz"), std::nullopt);
  EXPECT_TRUE(p.matches(stem + ".n2.tar.gz"));
}

TEST(archive_name_pattern, narrowed_to_one_node_matches_only_its_archives) {
  const archive_name_pattern p("{schedule}-%Y-%m-%dT%H-%M-%S", "nightly-db", ".tar.gz");
  const std::string stem = "nightly-db-2024-05-01T03-00-00";
  const auto n2 = p.of_node("n2");
  EXPECT_TRUE(n2.matches(stem + ".n2.tar.gz"));
  EXPECT_FALSE(n2.matches(stem + ".n3.tar.gz"));
  EXPECT_FALSE(n2.matches(stem + ".tar.gz"));
  EXPECT_FALSE(n2.matches("nightly-db-extra-2024-05-01T03-00-00.n2.tar.gz"));
  const auto manager = p.of_node("");
  EXPECT_TRUE(manager.matches(stem + ".tar.gz"));
  EXPECT_FALSE(manager.matches(stem + ".n2.tar.gz"));
  // The original is left as it was.
  EXPECT_TRUE(p.matches(stem + ".n3.tar.gz"));
}

TEST(node_file_name, makes_any_host_name_file_name_safe) {
  EXPECT_EQ(node_file_name("s-1", "n2", ".tar.gz"), "s-1.n2.tar.gz");
  EXPECT_EQ(node_file_name("s-1", "db.example.com", ".tar"), "s-1.db_example_com.tar");
  EXPECT_EQ(node_file_name("s-1", "a/b c", ".tar"), "s-1.a_b_c.tar");
}

TEST(archive_name_pattern, matches_every_expansion) {
  const std::vector<std::string> templates = {"{schedule}-%Y-%m-%dT%H-%M-%S", "%F-{schedule}",
                                              "x%a%b%e%j%y%%{schedule}"};
  for (const auto& t : templates) {
    const archive_name_pattern p(t, "nightly", ".tar.gz");
    for (int day = 0; day < 400; day += 7) {
      const local_seconds when =
          local_days{year{2024} / January / 1} + days{day} + hours{day % 24} + minutes{day % 60};
      const std::string name = api::expand_archive_name(t, "nightly", when) + ".tar.gz";
      EXPECT_TRUE(p.matches(name)) << t << " -> " << name;
    }
  }
}

TEST(node_archive_of, names_a_nodes_archive_of_the_run_of_the_controllers_or_another_nodes) {
  const std::vector<std::string> nodes{"n1", "n2", "worker 3"};
  EXPECT_EQ(node_archive_of("db-2026-12-05T03-00-00.tar.gz", "n2", nodes),
            "db-2026-12-05T03-00-00.n2.tar.gz");
  EXPECT_EQ(node_archive_of("db-2026-12-05T03-00-00.n1.tar.gz", "n2", nodes),
            "db-2026-12-05T03-00-00.n2.tar.gz");
  EXPECT_EQ(node_archive_of("db.n2.tar.zst.age", "n2", nodes), "db.n2.tar.zst.age");
  EXPECT_EQ(node_archive_of("db.n2.tar.zst.gpg", "n2", nodes), "db.n2.tar.zst.gpg");
  EXPECT_EQ(node_archive_of("db.worker_3.tar", "worker 3", nodes), "db.worker_3.tar");
  EXPECT_EQ(node_archive_of("db.worker_3.tar", "n1", nodes), "db.n1.tar");
  // A stem that is only a node's suffix keeps it; a name without ".tar" is kept.
  EXPECT_EQ(node_archive_of(".n1.tar", "n2", nodes), ".n1.n2.tar");
  EXPECT_EQ(node_archive_of("dump.sql", "n2", nodes), "dump.sql");
}

}  // namespace
}  // namespace lifeboat::archive
