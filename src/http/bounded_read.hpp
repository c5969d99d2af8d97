// Contract §8 "Request bytes": reading an HTTP/1.1 message so that every byte counts against a
// limit, for the server's requests and the catalog client's responses alike. The read buffer has
// a maximum, so no gap in the parser (a chunk-size line or a trailer that never ends) can grow
// memory; the framing (start line, header fields, chunk-size lines with their extensions,
// trailers) counts against the header limit cumulatively per message; the body against the
// parser's body limit.
#pragma once
#include <algorithm>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http/error.hpp>
#include <boost/beast/http/read.hpp>
#include <cstddef>

namespace fav::http {

// The read buffer's maximum for `header_limit`: a whole header block plus room for one more read.
constexpr std::size_t read_buffer_limit(std::size_t header_limit) {
  return std::max<std::size_t>(header_limit, 8192) + 8192;
}

// Reads the rest of the message into `parser` (a string_body parser). `framing` holds the framing
// bytes counted so far (those of a header already read, or 0) and grows with what is read: the
// bytes the parser consumed that did not become body. Returns http::error::header_limit once it
// passes `framing_limit`, http::error::buffer_overflow when one line or trailer would outgrow the
// buffer's maximum, else what the read returned.
template <class Stream, class Parser>
boost::asio::awaitable<boost::system::error_code> read_bounded(Stream& stream, boost::beast::flat_buffer& buffer,
                                                               Parser& parser, std::size_t framing_limit,
                                                               std::size_t& framing) {
  namespace bhttp = boost::beast::http;
  boost::system::error_code ec;
  std::size_t consumed = framing;  // every byte the parser took, body included
  while (!parser.is_done()) {
    consumed += co_await bhttp::async_read_some(stream, buffer, parser,
                                                boost::asio::redirect_error(boost::asio::use_awaitable, ec));
    framing = consumed - std::min(consumed, parser.get().body().size());
    if (framing > framing_limit) co_return bhttp::error::header_limit;
    if (ec) co_return ec;
  }
  co_return ec;
}

}  // namespace fav::http
