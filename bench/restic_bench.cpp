// Backs a folder up into a restic repository with lifeboat's library, for
// hack/bench-restic.sh (which times it beside `restic backup`). The password
// comes from RESTIC_PASSWORD, as for restic.
//   restic_bench init REPO
//   restic_bench backup REPO DIR NAME   (parent: the newest snapshot of /NAME)
//   restic_bench restore REPO NAME DIR  (the newest snapshot of /NAME into DIR, an
//                                        empty folder: verified whole, then written)
// backup prints one line of counters: files_read bytes_read data_blobs_added ...
#include "controller/restic/backup.hpp"
#include "controller/restic/repository.hpp"
#include "controller/restic/restore.hpp"
#include "controller/restic/store.hpp"

#include <fmt/format.h>

#include <cstdio>
#include <cstdlib>
#include <string>

namespace {

int fail(const std::string& message) {
  fmt::print(stderr, "restic_bench: {}\n", message);
  return 1;
}

}  // namespace

int main(int argc, char** argv) {
  using namespace lifeboat::restic;
  const char* password = std::getenv("RESTIC_PASSWORD");  // NOLINT(concurrency-mt-unsafe)
  if (password == nullptr) {
    return fail("RESTIC_PASSWORD is not set");
  }
  const std::string mode = argc > 1 ? argv[1] : "";
  if (mode == "init" && argc == 3) {
    auto made = repository::init(argv[2], password);
    return made ? 0 : fail(made.error().describe());
  }
  if ((mode != "backup" && mode != "restore") || argc != 5) {
    return fail("usage: restic_bench init REPO | backup REPO DIR NAME | restore REPO NAME DIR");
  }
  auto repo = repository::open(argv[2], password);
  if (!repo) {
    return fail(repo.error().describe());
  }
  if (mode == "restore") {
    const std::string path = std::string("/") + argv[3];
    auto latest = latest_snapshot(*repo, {path}, "");
    if (!latest || !*latest) {
      return fail(latest ? "no snapshot of " + path : latest.error().describe());
    }
    auto done = restore_snapshot(*repo, **latest, argv[4], {.subtree = path});
    if (!done) {
      return fail(done.error().describe());
    }
    fmt::print("snapshot {} files {} bytes {} blobs_read {}\n", to_hex(**latest).substr(0, 8),
               done->files, done->bytes, done->blobs_read);
    return 0;
  }
  backup_options options;
  options.source = argv[3];
  options.name = argv[4];
  auto parent = latest_snapshot(*repo, {"/" + options.name}, "");
  if (!parent) {
    return fail(parent.error().describe());
  }
  options.parent = *parent;
  auto done = backup_directory(*repo, options);
  if (!done) {
    return fail(done.error().describe());
  }
  const backup_stats& s = done->stats;
  fmt::print(
      "snapshot {} files {} files_read {} bytes_read {} data_blobs_added {} "
      "data_bytes_added {} tree_blobs_added {} packs {} pack_bytes {}\n",
      to_hex(done->snapshot_id).substr(0, 8), s.files, s.files_read, s.bytes_read,
      s.data_blobs_added, s.data_bytes_added, s.tree_blobs_added, s.packs_written,
      s.pack_bytes_written);
  return 0;
}
