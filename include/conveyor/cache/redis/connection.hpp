// conveyor/cache/redis/connection.hpp: one TCP connection to one Redis server,
// with a deadline on every operation.
//
// The connection runs on an io_context that its owner drives synchronously:
// each operation starts asynchronous work and then runs the context with
// `run_one_for` until the work completes or the deadline passes, at which point
// the socket is closed and the operation fails with `io_error`. There is no
// background thread. Requests and replies overlap (the write and the read run
// at the same time), so a pipeline of any length cannot deadlock on full
// socket buffers.
#pragma once

#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/write.hpp>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <exception>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "conveyor/cache/redis/command.hpp"
#include "conveyor/cache/redis/endpoint.hpp"
#include "conveyor/cache/redis/resp_parser.hpp"
#include "conveyor/core/error.hpp"

namespace conveyor::redis {

/// Settings shared by every connection of a tier.
struct connection_options {
  std::chrono::milliseconds connect_timeout{1000};  ///< resolve + TCP connect
  std::chrono::milliseconds io_timeout{1000};       ///< one request/reply exchange
  std::string username;  ///< ACL user for AUTH; empty: AUTH with the password only
  std::string password;  ///< empty: no AUTH
  resp_limits limits;
};

/// A connection to one server.
///
/// Allocation: a read buffer, the parser's buffer and the replies. Thread-safety:
/// none; the owner serializes calls and owns the io_context. Errors: `connect`
/// and `exchange` throw `io_error` (refused, reset, timed out, AUTH refused) or
/// `data_error` (the server broke the protocol); after either the connection is
/// closed and `connect` may be called again. Redis error replies ("-ERR ...")
/// are returned as values, not thrown.
class connection {
 public:
  using clock = std::chrono::steady_clock;

  connection(boost::asio::io_context& io, endpoint where, connection_options options)
      : io_(&io),
        where_(std::move(where)),
        options_(std::move(options)),
        socket_(io),
        parser_("redis " + where_.to_string(), options_.limits),
        read_buffer_(64 * 1024) {}
  connection(const connection&) = delete;
  connection& operator=(const connection&) = delete;
  ~connection() { abort_and_drain(); }

  [[nodiscard]] const endpoint& where() const noexcept { return where_; }
  [[nodiscard]] bool is_open() const noexcept { return socket_.is_open(); }

  /// Connects (resolving the host if it is not an IP literal) and authenticates.
  void connect() {
    close();
    auto deadline = clock::now() + options_.connect_timeout;
    boost::system::error_code address_error;
    auto address = boost::asio::ip::make_address(where_.host, address_error);
    std::vector<boost::asio::ip::tcp::endpoint> targets;
    if (!address_error) {
      targets.emplace_back(address, where_.port);
    } else {
      resolve(targets, deadline);
    }
    bool done = false;
    boost::system::error_code result;
    ++in_flight_;
    boost::asio::async_connect(socket_, targets, [this, &done, &result](auto ec, const auto&) {
      --in_flight_;
      result = ec;
      done = true;
    });
    run_until([&] { return done; }, deadline, "connect");
    if (result) fail_io("connect failed: " + result.message());
    socket_.set_option(boost::asio::ip::tcp::no_delay(true), result);
    if (!options_.password.empty()) authenticate();
  }

  /// Starts writing `request` (already encoded) and reading `reply_count`
  /// replies; finish it with `drive` + `take_replies`, or use `exchange`.
  void start_exchange(std::string request, std::size_t reply_count) {
    request_ = std::move(request);
    replies_.clear();
    replies_.reserve(reply_count);
    expected_ = reply_count;
    failure_ = nullptr;
    writing_ = !request_.empty();
    reading_ = reply_count > 0;
    if (!socket_.is_open()) {
      record_failure(
          std::make_exception_ptr(io_error("not connected", "redis " + where_.to_string())));
      return;
    }
    if (writing_) {
      ++in_flight_;
      boost::asio::async_write(socket_, boost::asio::buffer(request_),
                               [this](auto ec, std::size_t) {
                                 --in_flight_;
                                 writing_ = false;
                                 if (ec)
                                   record_failure(io_failure("write failed: " + ec.message()));
                               });
    }
    if (reading_) read_more();
  }

  /// True while a started exchange is neither complete nor failed.
  [[nodiscard]] bool busy() const noexcept { return failure_ == nullptr && (writing_ || reading_); }

  /// The replies of a finished exchange; rethrows its failure.
  std::vector<resp_value> take_replies() {
    if (failure_) std::rethrow_exception(failure_);
    return std::move(replies_);
  }

  /// Runs `io` until none of `connections` is busy or `deadline` passes; the
  /// busy ones then fail with a timeout and are closed. Never throws.
  static void drive(boost::asio::io_context& io, std::span<connection* const> connections,
                    clock::time_point deadline) {
    auto any_busy = [&] {
      for (auto* c : connections)
        if (c->busy()) return true;
      return false;
    };
    io.restart();
    while (any_busy()) {
      auto now = clock::now();
      if (now >= deadline) break;
      io.run_one_for(deadline - now);
    }
    for (auto* c : connections)
      if (c->busy()) c->record_failure(c->io_failure("timed out waiting for the server"));
    for (auto* c : connections) c->drain();
  }

  /// Sends `request` and returns its `reply_count` replies within io_timeout.
  std::vector<resp_value> exchange(std::string request, std::size_t reply_count) {
    start_exchange(std::move(request), reply_count);
    connection* self = this;
    drive(*io_, std::span<connection* const>(&self, 1), clock::now() + options_.io_timeout);
    return take_replies();
  }

  /// Closes the socket; pending operations complete as aborted.
  void close() noexcept {
    boost::system::error_code ignored;
    socket_.close(ignored);
    parser_.reset();
  }

 private:
  io_error io_failure(const std::string& message) const {
    return io_error(message, "redis " + where_.to_string());
  }
  [[noreturn]] void fail_io(const std::string& message) {
    close();
    drain();
    throw io_failure(message);
  }

  void record_failure(std::exception_ptr failure) {
    if (!failure_) failure_ = std::move(failure);
    writing_ = reading_ = false;
    close();
  }
  template <class Error>
  void record_failure(const Error& failure) {
    record_failure(std::make_exception_ptr(failure));
  }

  void read_more() {
    ++in_flight_;
    socket_.async_read_some(boost::asio::buffer(read_buffer_), [this](auto ec, std::size_t bytes) {
      --in_flight_;
      if (!reading_) return;
      if (ec)
        return record_failure(io_failure(ec == boost::asio::error::eof
                                             ? "server closed the connection"
                                             : "read failed: " + ec.message()));
      try {
        parser_.feed(std::string_view(read_buffer_.data(), bytes));
        resp_value reply;
        while (replies_.size() < expected_ && parser_.next(reply))
          replies_.push_back(std::move(reply));
        if (replies_.size() == expected_) {
          if (parser_.buffered_bytes() != 0)
            throw data_error("RESP protocol error: unsolicited bytes after the last reply",
                             "redis " + where_.to_string());
          reading_ = false;
          return;
        }
      } catch (...) {
        return record_failure(std::current_exception());
      }
      read_more();
    });
  }

  void resolve(std::vector<boost::asio::ip::tcp::endpoint>& targets, clock::time_point deadline) {
    boost::asio::ip::tcp::resolver resolver(*io_);
    bool done = false;
    boost::system::error_code result;
    ++in_flight_;
    resolver.async_resolve(where_.host, std::to_string(where_.port), [&](auto ec, auto results) {
      --in_flight_;
      result = ec;
      for (const auto& entry : results) targets.push_back(entry.endpoint());
      done = true;
    });
    run_until([&] { return done; }, deadline, "resolve", [&] { resolver.cancel(); });
    if (result || targets.empty()) fail_io("cannot resolve host: " + result.message());
  }

  void authenticate() {
    std::string request;
    command_writer writer(request);
    if (options_.username.empty()) {
      writer.command({"AUTH", options_.password});
    } else {
      writer.command({"AUTH", options_.username, options_.password});
    }
    auto replies = exchange(std::move(request), 1);
    if (!replies.at(0).is_string("OK")) fail_io("AUTH refused: " + replies[0].text);
  }

  template <class Done>
  void run_until(Done done, clock::time_point deadline, const char* what) {
    run_until(done, deadline, what, [this] { close(); });
  }
  template <class Done, class Cancel>
  void run_until(Done done, clock::time_point deadline, const char* what, Cancel cancel) {
    io_->restart();
    while (!done()) {
      auto now = clock::now();
      if (now >= deadline) {
        cancel();
        close();
        drain();
        throw io_failure(std::string(what) + " timed out");
      }
      io_->run_one_for(deadline - now);
    }
  }

  // Runs the handlers of operations aborted by close(), so none outlives us.
  void drain() noexcept {
    if (in_flight_ == 0) return;
    close();
    io_->restart();
    while (in_flight_ > 0 && io_->run_one() > 0) {
    }
  }
  void abort_and_drain() noexcept {
    reading_ = writing_ = false;
    close();
    drain();
  }

  boost::asio::io_context* io_;
  endpoint where_;
  connection_options options_;
  boost::asio::ip::tcp::socket socket_;
  resp_parser parser_;
  std::vector<char> read_buffer_;
  std::string request_;
  std::vector<resp_value> replies_;
  std::size_t expected_ = 0;
  bool writing_ = false;
  bool reading_ = false;
  std::exception_ptr failure_;
  int in_flight_ = 0;
};

}  // namespace conveyor::redis
