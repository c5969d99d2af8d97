// libFuzzer target: configuration text from outside: a `.env` file's contents, and its values
// (DATABASE_URL among them) through the configuration loader and libpq's connection-string
// parser, as the PostgreSQL backend hands it over.
#include <libpq-fe.h>

#include <cstddef>
#include <cstdint>
#include <string>

#include "util/config.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string in(reinterpret_cast<const char*>(data), size);
  auto env = fav::util::parse_dotenv(in);
  env.emplace("DATABASE_URL", in);  // a whole input as the URL too (only when .env did not set it)
  try {
    const fav::util::config cfg = fav::util::load_config(env);
    if (cfg.database_is_postgres) {
      char* err = nullptr;
      if (PQconninfoOption* opts = PQconninfoParse(cfg.database_url.c_str(), &err)) PQconninfoFree(opts);
      PQfreemem(err);
    }
  } catch (const fav::util::config_error&) {
    // A bad value is a one-line refusal: expected.
  }
  return 0;
}
