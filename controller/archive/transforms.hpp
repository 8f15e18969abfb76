#pragma once

#include "api/objects.hpp"

#include <string>
#include <string_view>
#include <vector>

// The chain between the tar writer and a destination. Each link transforms
// the byte stream and adds its extension to the archive's name, in order:
// compression first (done inside the writer, on every core), then age
// encryption (as the writer hands its output on); a restore reads back through the links in
// reverse. The name of an archive is derived from the chain, never from one link alone, so that
// retention and restores recognise exactly what a run wrote.
namespace lifeboat::archive {

struct transform_link {
  std::string_view name;       ///< "gzip", "zstd", "age"
  std::string_view extension;  ///< ".gz", ".zst", ".age", ".gpg"
};

/// The links `spec` asks for, in the order they apply.
std::vector<transform_link> transform_chain(const api::archive_spec& spec);

/// ".tar" followed by every link's extension: ".tar.gz", ".tar.zst", ".tar",
/// ".tar.zst.age".
std::string archive_extension(const std::vector<transform_link>& chain);

/// The archive's file name: the expanded name template plus the extension.
std::string archive_file_name(std::string_view stem, const api::archive_spec& spec);

}  // namespace lifeboat::archive
