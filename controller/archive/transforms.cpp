#include "controller/archive/transforms.hpp"

namespace lifeboat::archive {

std::vector<transform_link> transform_chain(const api::archive_spec& spec) {
  std::vector<transform_link> chain;
  switch (spec.compression) {
    case api::compression_kind::gzip:
      chain.push_back({"gzip", ".gz"});
      break;
    case api::compression_kind::zstd:
      chain.push_back({"zstd", ".zst"});
      break;
    case api::compression_kind::none:
      break;
  }
  // After compression: ciphertext does not compress.
  if (spec.encryption) {
    if (std::holds_alternative<api::gpg_encryption>(*spec.encryption)) {
      chain.push_back({"gpg", ".gpg"});
    } else {
      chain.push_back({"age", ".age"});
    }
  }
  return chain;
}

std::string archive_extension(const std::vector<transform_link>& chain) {
  std::string out = ".tar";
  for (const auto& link : chain) {
    out += link.extension;
  }
  return out;
}

std::string archive_file_name(std::string_view stem, const api::archive_spec& spec) {
  return std::string(stem) + archive_extension(transform_chain(spec));
}

}  // namespace lifeboat::archive
