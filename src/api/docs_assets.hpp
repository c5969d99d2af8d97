// The files behind GET /openapi.json, /docs and /docs/{file}, embedded in the binary at build
// time; openapi/docs.cmake generates the definitions (from openapi/ and swagger-ui-dist).
#pragma once
#include <span>
#include <string_view>

namespace fav::api {

struct asset {
  std::string_view path;          // name under /docs/, e.g. "swagger-ui.css"
  std::string_view content_type;  // with charset for text
  std::string_view bytes;
  std::string_view gzip = {};  // the same file gzip-compressed, or empty
  bool versioned = false;      // from the pinned swagger-ui-dist release: cacheable for a day
};

// Every /docs file, index.html included.
std::span<const asset> docs_assets();
// openapi/openapi.json as built.
std::string_view openapi_document();
// The pinned swagger-ui-dist version, e.g. "5.35.0".
std::string_view swagger_ui_version();

}  // namespace fav::api
