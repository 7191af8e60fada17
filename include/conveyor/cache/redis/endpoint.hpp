// conveyor/cache/redis/endpoint.hpp: a server address, "host:port".
#pragma once

#include <charconv>
#include <cstdint>
#include <string>
#include <string_view>

namespace conveyor::redis {

/// A Redis server address. IPv6 literals are written in brackets: "[::1]:6379".
struct endpoint {
  std::string host = "127.0.0.1";
  std::uint16_t port = 6379;

  friend bool operator==(const endpoint&, const endpoint&) = default;

  /// "host:port", the form Redis uses in CLUSTER SLOTS and MOVED replies.
  [[nodiscard]] std::string to_string() const {
    bool bracket = host.find(':') != std::string::npos;
    return (bracket ? "[" + host + "]" : host) + ":" + std::to_string(port);
  }

  /// Parses "host:port" (or "host", meaning port 6379). Returns false, leaving
  /// `out` unchanged, when the text is not an address. Never throws except
  /// std::bad_alloc.
  static bool parse(std::string_view text, endpoint& out) {
    std::string_view host = text;
    std::string_view port_text;
    if (!text.empty() && text.front() == '[') {
      auto close = text.find(']');
      if (close == std::string_view::npos) return false;
      host = text.substr(1, close - 1);
      auto rest = text.substr(close + 1);
      if (!rest.empty()) {
        if (rest.front() != ':') return false;
        port_text = rest.substr(1);
      }
    } else if (auto colon = text.rfind(':'); colon != std::string_view::npos) {
      host = text.substr(0, colon);
      port_text = text.substr(colon + 1);
    }
    if (host.empty()) return false;
    unsigned port = 6379;
    if (!port_text.empty()) {
      auto [end, ec] = std::from_chars(port_text.data(), port_text.data() + port_text.size(), port);
      if (ec != std::errc{} || end != port_text.data() + port_text.size() || port == 0 ||
          port > 65535)
        return false;
    } else if (text.find(':') != std::string_view::npos && text.front() != '[') {
      return false;
    }
    out.host.assign(host);
    out.port = static_cast<std::uint16_t>(port);
    return true;
  }
};

}  // namespace conveyor::redis
