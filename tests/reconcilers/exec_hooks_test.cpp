#include "reconcilers/exec_hooks.hpp"

#include <gtest/gtest.h>

namespace lifeboat::reconcilers {
namespace {

using words = std::vector<std::string>;

struct split_case {
  std::string name;
  std::string command;
  words expected;  ///< when `error` is empty
  std::string error;
};

TEST(split_shell_words, splits_as_a_posix_shell_would_without_running_one) {
  const std::vector<split_case> cases{
      {"one word", "pg_dumpall", {"pg_dumpall"}, ""},
      {"blanks separate, runs of them count once",
       "  pg_dump\t-U  postgres\n-f /tmp/x ",
       {"pg_dump", "-U", "postgres", "-f", "/tmp/x"},
       ""},
      {"single quotes are literal",
       R"(/bin/sh -c 'pg_dump -U "$USER" | gzip > /data/x.gz')",
       {"/bin/sh", "-c", R"(pg_dump -U "$USER" | gzip > /data/x.gz)"},
       ""},
      {"a backslash inside single quotes stays", R"(echo 'a\b')", {"echo", R"(a\b)"}, ""},
      {"double quotes group blanks", R"(echo "a  b" c)", {"echo", "a  b", "c"}, ""},
      {"inside double quotes a backslash escapes $ ` \" \\",
       R"(echo "\$HOME \`x\` \"q\" \\ \n")",
       {"echo", R"($HOME `x` "q" \ \n)"},
       ""},
      {"a backslash outside quotes escapes anything",
       R"(echo a\ b \'c\' \\)",
       {"echo", "a b", "'c'", "\\"},
       ""},
      {"a backslash-newline joins lines", "echo a\\\nb", {"echo", "ab"}, ""},
      {"quotes join with what touches them", R"(a'b'"c"d)", {"abcd"}, ""},
      {"empty quotes are an empty word", R"(printf '%s' '' "")", {"printf", "%s", "", ""}, ""},
      {"no pipes or redirections: they are words",
       "echo a | wc > f",
       {"echo", "a", "|", "wc", ">", "f"},
       ""},
      {"unclosed single quote", "sh -c 'echo", {}, "a single quote is not closed"},
      {"unclosed double quote", R"(echo "a\")", {}, "a double quote is not closed"},
      {"trailing backslash", "echo a\\", {}, "ends with a backslash"},
      {"empty", "", {}, "the command is empty"},
      {"only blanks", " \t\n", {}, "the command is empty"},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.name);
    const auto split = split_shell_words(c.command);
    EXPECT_EQ(split.error, c.error);
    if (c.error.empty()) {
      EXPECT_EQ(split.words, c.expected);
    }
  }
}

struct command_case {
  std::string name;
  label_map labels;
  std::string point;
  std::optional<hook_command> expected;
};

TEST(hook_command_at, reads_the_point_label_its_user_and_the_deprecated_aliases) {
  const std::string p = "docker-volume-backup.";
  const std::vector<command_case> cases{
      {"no labels", {}, "archive-pre", std::nullopt},
      {"each phase and side by its own label",
       {{p + "prune-post", "rm -f /tmp/x"}, {p + "copy-pre", "sync"}},
       "prune-post",
       hook_command{p + "prune-post", "rm -f /tmp/x", ""}},
      {"another point's label is not this one's",
       {{p + "copy-pre", "sync"}},
       "copy-post",
       std::nullopt},
      {"the user",
       {{p + "process-pre", "x"}, {p + "process-pre.user", "postgres"}},
       "process-pre",
       hook_command{p + "process-pre", "x", "postgres"}},
      {"another point's user is not used",
       {{p + "process-pre", "x"}, {p + "copy-pre.user", "u"}},
       "process-pre",
       hook_command{p + "process-pre", "x", ""}},
      {"exec-pre is archive-pre",
       {{p + "exec-pre", "pg_dump"}},
       "archive-pre",
       hook_command{p + "exec-pre", "pg_dump", ""}},
      {"exec-post is archive-post",
       {{p + "exec-post", "rm dump"}},
       "archive-post",
       hook_command{p + "exec-post", "rm dump", ""}},
      {"exec-pre is not process-pre", {{p + "exec-pre", "pg_dump"}}, "process-pre", std::nullopt},
      {"exec-post is not archive-pre", {{p + "exec-post", "rm"}}, "archive-pre", std::nullopt},
      {"the new label wins over the deprecated one",
       {{p + "exec-pre", "old"}, {p + "archive-pre", "new"}},
       "archive-pre",
       hook_command{p + "archive-pre", "new", ""}},
      {"a deprecated label's own user",
       {{p + "exec-pre", "x"}, {p + "exec-pre.user", "a"}, {p + "archive-pre.user", "b"}},
       "archive-pre",
       hook_command{p + "exec-pre", "x", "a"}},
      {"a deprecated label takes the new label's user",
       {{p + "exec-post", "x"}, {p + "archive-post.user", "b"}},
       "archive-post",
       hook_command{p + "exec-post", "x", "b"}},
      {"a user alone is no command", {{p + "archive-pre.user", "b"}}, "archive-pre", std::nullopt},
      {"an empty command is still a command (it fails to split)",
       {{p + "archive-pre", ""}},
       "archive-pre",
       hook_command{p + "archive-pre", "", ""}},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.name);
    const auto got = hook_command_at(c.labels, c.point);
    ASSERT_EQ(got.has_value(), c.expected.has_value());
    if (got) {
      EXPECT_EQ(got->label, c.expected->label);
      EXPECT_EQ(got->command, c.expected->command);
      EXPECT_EQ(got->user, c.expected->user);
    }
  }
}

TEST(exec_label_matches, unset_matches_everything_set_needs_the_same_value) {
  const label_map with_db{{"docker-volume-backup.exec-label", "db"}};
  EXPECT_TRUE(exec_label_matches({}, std::nullopt));
  EXPECT_TRUE(exec_label_matches(with_db, std::nullopt));
  EXPECT_TRUE(exec_label_matches(with_db, "db"));
  EXPECT_FALSE(exec_label_matches(with_db, "web"));
  EXPECT_FALSE(exec_label_matches({}, "db"));
  EXPECT_FALSE(exec_label_matches({{"docker-volume-backup.exec-label", "DB"}}, "db"));
}

hook_container container(std::string name, label_map labels, std::string state = "running") {
  return {"id-" + name, name, std::move(labels), std::move(state)};
}

const std::string archive_pre = "docker-volume-backup.archive-pre";
const std::string exec_label = "docker-volume-backup.exec-label";

TEST(plan_hook_point, runs_every_running_labelled_container_sorted_by_name) {
  const auto plan = plan_hook_point(
      "archive-pre", std::nullopt,
      {container("web",
                 {{archive_pre, "sh -c 'echo hi > /data/m'"}, {archive_pre + ".user", "www-data"}}),
       container("db", {{archive_pre, "pg_dumpall -f /data/dump.sql"}}),
       container("stopped", {{archive_pre, "true"}}, "exited"),
       container("paused", {{archive_pre, "true"}}, "paused"),
       container("other-point", {{"docker-volume-backup.copy-pre", "true"}}),
       container("unlabelled", {})},
      {});
  ASSERT_EQ(plan.execs.size(), 2U);
  EXPECT_EQ(plan.execs[0].container_name, "db");
  EXPECT_EQ(plan.execs[0].container_id, "id-db");
  EXPECT_EQ(plan.execs[0].cmd, (words{"pg_dumpall", "-f", "/data/dump.sql"}));
  EXPECT_EQ(plan.execs[0].user, "");
  EXPECT_EQ(plan.execs[0].label, archive_pre);
  EXPECT_EQ(plan.execs[1].container_name, "web");
  EXPECT_EQ(plan.execs[1].cmd, (words{"sh", "-c", "echo hi > /data/m"}));
  EXPECT_EQ(plan.execs[1].user, "www-data");
  EXPECT_TRUE(plan.elsewhere.empty());
  EXPECT_TRUE(plan.errors.empty());
}

TEST(plan_hook_point, exec_label_selects_containers_here_and_elsewhere) {
  const std::vector<hook_container> here{
      container("db", {{archive_pre, "a"}, {exec_label, "db"}}),
      container("web", {{archive_pre, "b"}, {exec_label, "web"}}),
      container("plain", {{archive_pre, "c"}}),
  };
  const std::vector<hook_remote_task> elsewhere{
      {"t1", "db-replica", "id-2", "worker-2", {{archive_pre, "a"}, {exec_label, "db"}}},
      {"t2", "web", "id-3", "worker-3", {{archive_pre, "b"}}},
  };
  const auto scoped = plan_hook_point("archive-pre", "db", here, elsewhere);
  ASSERT_EQ(scoped.execs.size(), 1U);
  EXPECT_EQ(scoped.execs[0].container_name, "db");
  ASSERT_EQ(scoped.elsewhere.size(), 1U);
  EXPECT_EQ(scoped.elsewhere[0].node_id, "id-2");
  EXPECT_EQ(scoped.elsewhere[0].node_name, "worker-2");
  ASSERT_EQ(scoped.elsewhere[0].execs.size(), 1U);
  const auto& remote = scoped.elsewhere[0].execs[0];
  EXPECT_EQ(remote.container_id, "");
  EXPECT_EQ(remote.task_id, "t1");
  EXPECT_EQ(remote.container_name, "db-replica");
  EXPECT_EQ(remote.label, archive_pre);
  EXPECT_EQ(remote.cmd, (words{"a"}));

  const auto all = plan_hook_point("archive-pre", std::nullopt, here, elsewhere);
  ASSERT_EQ(all.execs.size(), 3U);
  EXPECT_EQ(all.execs[0].container_name, "db");
  EXPECT_EQ(all.execs[1].container_name, "plain");
  EXPECT_EQ(all.execs[2].container_name, "web");
  EXPECT_EQ(all.elsewhere.size(), 2U);

  EXPECT_TRUE(plan_hook_point("archive-pre", "none", here, elsewhere).execs.empty());
  EXPECT_TRUE(plan_hook_point("archive-pre", "none", here, elsewhere).elsewhere.empty());
}

TEST(plan_hook_point, one_job_per_node_with_a_command_for_the_point) {
  const auto copy_post = std::string("docker-volume-backup.copy-post");
  const auto plan =
      plan_hook_point("copy-post", std::nullopt, {},
                      {{"t1", "db", "id-2", "worker-2", {{archive_pre, "a"}}},
                       {"t4",
                        "web",
                        "id-3",
                        "worker-3",
                        {{copy_post, "sh -c 'echo web'"}, {copy_post + ".user", "www"}}},
                       {"t3", "db", "id-3", "worker-3", {{copy_post, "b"}}},
                       {"t2", "db", "id-1", "alpha", {{copy_post, "c"}}}});
  EXPECT_TRUE(plan.execs.empty());
  EXPECT_TRUE(plan.errors.empty());
  ASSERT_EQ(plan.elsewhere.size(), 2U) << "worker-2 has nothing at copy-post: no job there";
  EXPECT_EQ(plan.elsewhere[0].node_name, "alpha");
  ASSERT_EQ(plan.elsewhere[0].execs.size(), 1U);
  EXPECT_EQ(plan.elsewhere[0].execs[0].task_id, "t2");
  EXPECT_EQ(plan.elsewhere[1].node_name, "worker-3");
  EXPECT_EQ(plan.elsewhere[1].node_id, "id-3");
  ASSERT_EQ(plan.elsewhere[1].execs.size(), 2U);
  EXPECT_EQ(plan.elsewhere[1].execs[0].task_id, "t3");
  EXPECT_EQ(plan.elsewhere[1].execs[1].task_id, "t4");
  EXPECT_EQ(plan.elsewhere[1].execs[1].cmd, (words{"sh", "-c", "echo web"}));
  EXPECT_EQ(plan.elsewhere[1].execs[1].user, "www");
}

TEST(plan_hook_point, a_command_elsewhere_that_does_not_split_is_an_error_naming_the_node) {
  const auto plan = plan_hook_point("archive-pre", std::nullopt, {},
                                    {{"t1", "db", "id-2", "worker-2", {{archive_pre, "echo \\"}}},
                                     {"t2", "db", "id-3", "worker-3", {{archive_pre, "true"}}}});
  ASSERT_EQ(plan.errors.size(), 1U);
  EXPECT_TRUE(plan.errors[0].starts_with("service db task t1 on node worker-2: label " +
                                         archive_pre + ": "))
      << plan.errors[0];
  ASSERT_EQ(plan.elsewhere.size(), 1U);
  EXPECT_EQ(plan.elsewhere[0].node_name, "worker-3");
}

TEST(plan_hook_point, a_command_that_does_not_split_is_an_error_naming_container_and_label) {
  const auto plan =
      plan_hook_point("archive-pre", std::nullopt,
                      {container("db", {{"docker-volume-backup.exec-pre", "sh -c 'pg_dump"}}),
                       container("web", {{archive_pre, "true"}})},
                      {});
  EXPECT_EQ(plan.errors, (words{"container db: label docker-volume-backup.exec-pre: a single "
                                "quote is not closed"}));
  ASSERT_EQ(plan.execs.size(), 1U);  // planned, but the runner runs nothing when errors exist
  EXPECT_EQ(plan.execs[0].container_name, "web");
}

}  // namespace
}  // namespace lifeboat::reconcilers
