// libFuzzer target: decode arbitrary bytes. Beyond "no crash, no sanitizer
// report", it checks two properties of every input:
//  - each error carries a position inside the text or none at all, and
//  - every object that decodes survives encode_yaml and decode unchanged.
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>

#include "api/decode.hpp"

namespace {

[[noreturn]] void fail(const char* what, const std::string& detail) {
  std::fprintf(stderr, "decode_fuzz: %s\n%s\n", what, detail.c_str());
  std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace lifeboat::api;
  const std::string_view text{reinterpret_cast<const char*>(data), size};
  const decode_result result = decode(text);
  for (const decoded_document& doc : result.documents) {
    if (doc.value.has_value() != doc.errors.empty()) {
      fail("a document has both or neither of a value and errors", doc.kind);
    }
    for (const decode_error& e : doc.errors) {
      if (e.line < 0 || e.column < 0 || e.message.empty()) {
        fail("malformed error", format_error(e));
      }
    }
    if (!doc.value) {
      continue;
    }
    const std::string yaml = encode_yaml(*doc.value);
    const decode_result again = decode(yaml);
    if (again.documents.size() != 1 || !again.documents[0].value) {
      std::string errors;
      for (const decode_error& e : again.errors()) {
        errors += format_error(e) + "\n";
      }
      fail("the encoding of a decoded object does not decode", yaml + "\n" + errors);
    }
    if (*again.documents[0].value != *doc.value) {
      fail("the encoding of a decoded object decodes to another object", yaml);
    }
  }
  return 0;
}
