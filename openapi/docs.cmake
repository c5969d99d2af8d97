# Embeds openapi/openapi.json and the pinned Swagger UI (swagger-ui-dist) into favorites_core, so
# GET /openapi.json and /docs work with no internet access. Include from the top-level
# CMakeLists.txt after favorites_core is defined. Needs bash; the first configure of a build
# directory also needs npm, node, tar and gzip (openapi/fetch-swagger-ui.sh), later ones work offline.
#
# The files are pulled in with the assembler's .incbin from a small generated C++ source
# (<build>/generated/docs_assets.cpp, defining src/api/docs_assets.hpp): no multi-megabyte byte
# arrays to compile, and editing openapi.json rebuilds one tiny object.

if(NOT TARGET favorites_core)
  message(FATAL_ERROR "openapi/docs.cmake: include it after favorites_core is defined")
endif()

get_filename_component(_fav_docs_root "${CMAKE_CURRENT_LIST_DIR}/.." ABSOLUTE)
set(_fav_docs_fetch "${CMAKE_CURRENT_LIST_DIR}/fetch-swagger-ui.sh")
find_program(FAV_BASH bash REQUIRED)

# The pinned version lives in the fetch script only.
file(STRINGS "${_fav_docs_fetch}" _fav_docs_version_line REGEX "^version=")
string(REGEX REPLACE "^version=" "" FAV_SWAGGER_UI_VERSION "${_fav_docs_version_line}")
if(NOT FAV_SWAGGER_UI_VERSION MATCHES "^[0-9]+\\.[0-9]+\\.[0-9]+$")
  message(FATAL_ERROR "openapi/docs.cmake: no version= line in ${_fav_docs_fetch}")
endif()
set(_fav_ui "${CMAKE_BINARY_DIR}/swagger-ui-dist-${FAV_SWAGGER_UI_VERSION}")

# Fetch now, so a missing npm or network fails the configure with one clear message...
execute_process(COMMAND "${FAV_BASH}" "${_fav_docs_fetch}" "${CMAKE_BINARY_DIR}"
                RESULT_VARIABLE _fav_docs_rc)
if(NOT _fav_docs_rc EQUAL 0)
  message(FATAL_ERROR "openapi/docs.cmake: fetching swagger-ui-dist ${FAV_SWAGGER_UI_VERSION} failed")
endif()
# ...and a new pin re-runs the configure.
set_property(DIRECTORY APPEND PROPERTY CMAKE_CONFIGURE_DEPENDS "${_fav_docs_fetch}")

# Our own page: loads everything from /docs/... (same origin), no inline script.
set(_fav_docs_gen "${CMAKE_BINARY_DIR}/generated")
configure_file("${CMAKE_CURRENT_LIST_DIR}/docs/index.html" "${_fav_docs_gen}/docs/index.html" @ONLY)

# name under /docs/ | content type | file | gzip file or "-" | versioned (cacheable for a day)
set(_fav_docs_text "text/plain@@ charset=utf-8")
set(_fav_docs_table
  "index.html|text/html@@ charset=utf-8|${_fav_docs_gen}/docs/index.html|-|0"
  "swagger-initializer.js|text/javascript@@ charset=utf-8|${CMAKE_CURRENT_LIST_DIR}/docs/swagger-initializer.js|-|0"
  "docs.css|text/css@@ charset=utf-8|${CMAKE_CURRENT_LIST_DIR}/docs/docs.css|-|0"
  "swagger-ui.css|text/css@@ charset=utf-8|${_fav_ui}/swagger-ui.css|${_fav_ui}/swagger-ui.css.gz|1"
  "swagger-ui-bundle.js|text/javascript@@ charset=utf-8|${_fav_ui}/swagger-ui-bundle.js|${_fav_ui}/swagger-ui-bundle.js.gz|1"
  "swagger-ui-standalone-preset.js|text/javascript@@ charset=utf-8|${_fav_ui}/swagger-ui-standalone-preset.js|${_fav_ui}/swagger-ui-standalone-preset.js.gz|1"
  "favicon-32x32.png|image/png|${_fav_ui}/favicon-32x32.png|-|1"
  "favicon-16x16.png|image/png|${_fav_ui}/favicon-16x16.png|-|1"
  "LICENSE|${_fav_docs_text}|${_fav_ui}/LICENSE|-|1"
  "NOTICE|${_fav_docs_text}|${_fav_ui}/NOTICE|-|1"
  "swagger-ui-bundle.js.LICENSE.txt|${_fav_docs_text}|${_fav_ui}/swagger-ui-bundle.js.LICENSE.txt|-|1"
  "swagger-ui-standalone-preset.js.LICENSE.txt|${_fav_docs_text}|${_fav_ui}/swagger-ui-standalone-preset.js.LICENSE.txt|-|1"
)

# Emits one blob: fav_docs_<n>_data (its bytes) and fav_docs_<n>_size (a uint64).
set(_fav_docs_asm "")
set(_fav_docs_decl "")
set(_fav_docs_deps "")
set(_fav_docs_ui_files "")
set(_fav_docs_n 0)
macro(_fav_docs_blob file out_expr)
  if("${file}" MATCHES "[\"\\\\\n]")
    message(FATAL_ERROR "openapi/docs.cmake: cannot embed a path with quotes or backslashes: ${file}")
  endif()
  set(_s "fav_docs_${_fav_docs_n}")
  string(APPEND _fav_docs_asm
    "    \".balign 16\\n\"\n"
    "    \".globl ${_s}_data\\n .hidden ${_s}_data\\n .type ${_s}_data, %object\\n\"\n"
    "    \"${_s}_data:\\n\"\n"
    "    \".incbin \\\"${file}\\\"\\n\"\n"
    "    \".L${_s}_end:\\n\"\n"
    "    \".size ${_s}_data, .L${_s}_end - ${_s}_data\\n\"\n"
    "    \".balign 8\\n\"\n"
    "    \".globl ${_s}_size\\n .hidden ${_s}_size\\n .type ${_s}_size, %object\\n\"\n"
    "    \"${_s}_size:\\n\"\n"
    "    \".quad .L${_s}_end - ${_s}_data\\n\"\n"
    "    \".size ${_s}_size, 8\\n\"\n")
  string(APPEND _fav_docs_decl
    "extern const char ${_s}_data[];\nextern const std::uint64_t ${_s}_size;\n")
  list(APPEND _fav_docs_deps "${file}")
  string(FIND "${file}" "${_fav_ui}/" _at)
  if(_at EQUAL 0)
    list(APPEND _fav_docs_ui_files "${file}")
  endif()
  set(${out_expr} "blob(${_s}_data, ${_s}_size)")
  math(EXPR _fav_docs_n "${_fav_docs_n} + 1")
endmacro()

set(_fav_docs_rows "")
foreach(_row IN LISTS _fav_docs_table)
  string(REPLACE "|" ";" _cols "${_row}")
  list(GET _cols 0 _name)
  list(GET _cols 1 _type)
  list(GET _cols 2 _file)
  list(GET _cols 3 _gz)
  list(GET _cols 4 _versioned)
  string(REPLACE "@@" ";" _type "${_type}")
  _fav_docs_blob("${_file}" _bytes)
  set(_gzip "{}")
  if(NOT _gz STREQUAL "-")
    _fav_docs_blob("${_gz}" _gzip)
  endif()
  if(_versioned)
    set(_versioned true)
  else()
    set(_versioned false)
  endif()
  string(APPEND _fav_docs_rows
    "      {\"${_name}\", \"${_type}\", ${_bytes}, ${_gzip}, ${_versioned}},\n")
endforeach()
_fav_docs_blob("${_fav_docs_root}/openapi/openapi.json" _fav_docs_openapi)

set(_fav_docs_cpp "${_fav_docs_gen}/docs_assets.cpp")
# file(CONFIGURE) rewrites only on change, so a re-configure does not rebuild anything.
file(CONFIGURE OUTPUT "${_fav_docs_cpp}" @ONLY CONTENT [==[
// Generated by openapi/docs.cmake; do not edit. Defines src/api/docs_assets.hpp: the /docs files
// and openapi.json, pulled into .rodata by the assembler (.incbin) at build time.
#include "api/docs_assets.hpp"

#include <cstddef>
#include <cstdint>

// push/popsection leave the compiler's own section state untouched.
asm(".pushsection .rodata.fav_docs,\"a\",%progbits\n"
@_fav_docs_asm@    ".popsection\n");

extern "C" {
@_fav_docs_decl@}

namespace fav::api {
namespace {
std::string_view blob(const char* data, std::uint64_t size) {
  return {data, static_cast<std::size_t>(size)};
}
}  // namespace

std::span<const asset> docs_assets() {
  static const asset table[] = {
@_fav_docs_rows@  };
  return table;
}

std::string_view openapi_document() {
  static const std::string_view doc = @_fav_docs_openapi@;
  return doc;
}

std::string_view swagger_ui_version() { return "@FAV_SWAGGER_UI_VERSION@"; }

}  // namespace fav::api
]==])

# Re-fetch at build time should the files vanish from the build directory.
add_custom_command(
  OUTPUT ${_fav_docs_ui_files} "${_fav_ui}/.complete"
  COMMAND "${FAV_BASH}" "${_fav_docs_fetch}" "${CMAKE_BINARY_DIR}"
  COMMENT "Fetching swagger-ui-dist ${FAV_SWAGGER_UI_VERSION}"
  VERBATIM)
add_custom_target(fav_swagger_ui DEPENDS ${_fav_docs_ui_files} "${_fav_ui}/.complete")
add_dependencies(favorites_core fav_swagger_ui)

target_sources(favorites_core PRIVATE "${_fav_docs_cpp}")
set_source_files_properties("${_fav_docs_cpp}" PROPERTIES
  OBJECT_DEPENDS "${_fav_docs_deps}"
  INCLUDE_DIRECTORIES "${_fav_docs_root}/src"
  SKIP_PRECOMPILE_HEADERS ON)
