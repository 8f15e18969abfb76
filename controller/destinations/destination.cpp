#include "controller/destinations/destination.hpp"

#include "api/overloaded.hpp"
#include "controller/destinations/local_folder.hpp"
#include "controller/destinations/s3_bucket.hpp"
#include "controller/destinations/sftp_folder.hpp"
#include "controller/destinations/webdav_folder.hpp"

#include <array>
#include <variant>

namespace lifeboat::destinations {

std::unique_ptr<destination> make_destination(const api::destination& spec) {
  return std::visit(api::overloaded{
                        [](const api::local_destination& d) -> std::unique_ptr<destination> {
                          return std::make_unique<local_folder>(d.path, own_container_root());
                        },
                        [](const api::s3_destination& d) -> std::unique_ptr<destination> {
                          return std::make_unique<s3_bucket>(d);
                        },
                        [](const api::webdav_destination& d) -> std::unique_ptr<destination> {
                          return std::make_unique<webdav_folder>(d);
                        },
                        [](const api::sftp_destination& d) -> std::unique_ptr<destination> {
                          return std::make_unique<sftp_folder>(d);
                        },
                    },
                    spec);
}

namespace {

// Reads a whole small object (a checksum file).
archive::result<std::string> read_all(const destination& from, const std::string& name) {
  auto in = from.open(name);
  if (!in) {
    return in.error();
  }
  std::string out;
  std::array<char, 4096> buf{};
  for (;;) {
    auto n = (*in)->read(buf);
    if (!n) {
      return n.error();
    }
    if (*n == 0) {
      return out;
    }
    out.append(buf.data(), *n);
    if (out.size() > std::size_t{64} * 1024) {
      return archive::make_error(archive::errc::bad_source, name + " is not a checksum file");
    }
  }
}

}  // namespace

archive::result<published_archive> copy_archive(const destination& from, destination& to,
                                                const std::string& file_name) {
  auto in = from.open(file_name);
  if (!in) {
    return in.error();
  }
  auto out = to.begin(file_name);
  if (!out) {
    return out.error();
  }
  std::vector<char> buf(std::size_t{1} << 20);
  for (;;) {
    auto n = (*in)->read(buf);
    if (!n) {
      (*out)->abandon();
      return n.error();
    }
    if (*n == 0) {
      break;
    }
    if (auto w = (*out)->write(std::span<const char>(buf.data(), *n)); !w) {
      (*out)->abandon();
      return w.error();
    }
  }
  // The copy is hashed as it is written: it must be the archive that was
  // checksummed, byte for byte, before it becomes visible.
  auto expected = read_all(from, file_name + ".sha256");
  if (!expected) {
    (*out)->abandon();
    return expected.error();
  }
  auto published = (*out)->commit();
  if (!published) {
    return published.error();
  }
  if (!expected->starts_with(published->sha256)) {
    (void)to.remove(file_name);
    return archive::make_error(archive::errc::io_error,
                               "the copy of " + file_name + " in " + to.describe() +
                                   " does not match its checksum; removed");
  }
  return published;
}

}  // namespace lifeboat::destinations
