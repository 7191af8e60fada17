// redis_tier against real redis-server processes (the cache_tier contract,
// key naming and batching, TTL, AUTH, a 3-node cluster with slot migration)
// and against fake servers on loopback that send garbage or never answer.
// Cases that need redis-server skip when it is not installed.
#include <doctest/doctest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

#include "conveyor/cache/redis_tier.hpp"
#include "redis_process.hpp"
#include "tier_contract.hpp"

namespace cy = conveyor;
using conveyor::test::redis_cluster;
using conveyor::test::redis_process;
using conveyor::test::send_command;
using namespace std::chrono_literals;

namespace {
std::vector<std::byte> bytes_of(const std::string& text) {
  std::vector<std::byte> out(text.size());
  std::memcpy(out.data(), text.data(), text.size());
  return out;
}
std::string text_of(const cy::byte_buffer& bytes) {
  return std::string(reinterpret_cast<const char*>(bytes.data()), bytes.size());
}
cy::cache_key key_number(std::uint64_t record) {
  return cy::cache_key{7, 11, record};
}

cy::redis_tier_options options_for(const std::string& address) {
  cy::redis_tier_options options;
  options.servers = {address};
  options.connect_timeout = 1000ms;
  options.io_timeout = 2000ms;
  options.backoff_initial = 20ms;
  options.backoff_max = 100ms;
  return options;
}

#define SKIP_WITHOUT_REDIS()                                           \
  if (!redis_process::available()) {                                   \
    MESSAGE("redis-server is not installed; skipping this test case"); \
    return;                                                            \
  }

// A TCP listener on a free loopback port. It never accepts: the kernel still
// completes the handshake (backlog), so a client connects and then waits.
struct silent_listener {
  int fd = -1;
  std::uint16_t port = 0;
  silent_listener() {
    fd = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    REQUIRE(::bind(fd, reinterpret_cast<sockaddr*>(&address), sizeof address) == 0);
    REQUIRE(::listen(fd, 16) == 0);
    socklen_t length = sizeof address;
    ::getsockname(fd, reinterpret_cast<sockaddr*>(&address), &length);
    port = ntohs(address.sin_port);
  }
  ~silent_listener() { ::close(fd); }
  [[nodiscard]] std::string address() const { return "127.0.0.1:" + std::to_string(port); }
};

// Accepts connections and answers every read with `reply`, until destroyed.
struct garbage_server : silent_listener {
  std::atomic<bool> stopping{false};
  std::thread worker;
  explicit garbage_server(std::string reply) {
    worker = std::thread([this, reply = std::move(reply)] {
      while (!stopping) {
        int client = ::accept(fd, nullptr, nullptr);
        if (client < 0) return;
        char buffer[4096];
        while (::read(client, buffer, sizeof buffer) > 0) {
          if (::write(client, reply.data(), reply.size()) < 0) break;
        }
        ::close(client);
      }
    });
  }
  ~garbage_server() {
    stopping = true;
    ::shutdown(fd, SHUT_RDWR);
    worker.join();
  }
};

// One fresh server per case; values above 4 MiB are refused without asking it.
struct redis_contract_fixture {
  static constexpr std::uint64_t largest_value = 4 << 20;
  static bool available() { return redis_process::available(); }
  cy::redis_tier& tier() { return tier_; }
  [[nodiscard]] std::size_t refused_value_bytes() const { return largest_value + 1; }
  static cy::redis_tier_options options(const std::string& address) {
    auto options = options_for(address);
    options.max_value_bytes = largest_value;
    return options;
  }
  redis_process server;
  cy::redis_tier tier_{options(server.address())};
};

// A free port: every connection is refused.
struct unreachable_redis_fixture {
  static bool available() { return true; }
  cy::redis_tier& tier() { return tier_; }
  cy::redis_tier tier_{
      options_for("127.0.0.1:" + std::to_string(conveyor::test::pick_free_port()))};
};

}  // namespace

TYPE_TO_STRING_AS("redis_tier", redis_contract_fixture);
TYPE_TO_STRING_AS("redis_tier with nothing listening", unreachable_redis_fixture);
TEST_CASE_TEMPLATE_INVOKE(tier_contract, redis_contract_fixture);
TEST_CASE_TEMPLATE_INVOKE(failing_tier_contract, unreachable_redis_fixture);

TEST_CASE("redis_tier stores under conveyor:<key> and splits batches into max_batch rounds") {
  SKIP_WITHOUT_REDIS();
  redis_process server;
  auto options = options_for(server.address());
  options.max_batch = 100;  // several pipelined rounds per batch
  cy::redis_tier tier(options);

  CHECK(tier.put(key_number(1), bytes_of("one")));
  CHECK(send_command(server.where(), {"EXISTS", "conveyor:" + key_number(1).to_string()}).integer ==
        1);
  CHECK(tier.redis_key(key_number(1)) == "conveyor:" + key_number(1).to_string());

  std::vector<cy::cache_key> keys;
  std::vector<std::vector<std::byte>> values;
  for (std::uint64_t i = 0; i < 1000; ++i) {
    keys.push_back(key_number(1000 + i));
    values.push_back(bytes_of("value-" + std::to_string(i) + std::string(i % 97, 'x')));
  }
  std::vector<std::span<const std::byte>> spans(values.begin(), values.end());
  CHECK(tier.put_many(keys, spans) == 1000);
  keys.push_back(key_number(99999));  // absent
  std::vector<cy::byte_buffer> got(keys.size());
  std::vector<std::uint8_t> found(keys.size(), 2);
  CHECK(tier.get_many(keys, got, found) == 1000);
  for (std::size_t i = 0; i < 1000; ++i) {
    REQUIRE(found[i] == 1);
    CHECK(got[i] == values[i]);
  }
  CHECK(found[1000] == 0);
  auto stats = tier.stats();  // counted per key across the eleven rounds
  CHECK(stats.hits == 1000);
  CHECK(stats.misses == 1);
  CHECK(stats.puts == 1001);
  CHECK(stats.failures == 0);
}

TEST_CASE("key prefix and TTL are applied") {
  SKIP_WITHOUT_REDIS();
  redis_process server;
  auto options = options_for(server.address());
  options.key_prefix = "run42:";
  options.ttl = 300ms;
  cy::redis_tier tier(options);
  REQUIRE(tier.put(key_number(5), bytes_of("short-lived")));
  auto name = "run42:" + key_number(5).to_string();
  CHECK(tier.redis_key(key_number(5)) == name);
  auto pttl = send_command(server.where(), {"PTTL", name}).integer;
  CHECK(pttl > 0);
  CHECK(pttl <= 300);
  cy::byte_buffer out;
  CHECK(tier.get(key_number(5), out));
  std::this_thread::sleep_for(600ms);
  CHECK_FALSE(tier.get(key_number(5), out));
  CHECK(tier.stats().failures == 0);
}

TEST_CASE("AUTH with a password and with username + password") {
  SKIP_WITHOUT_REDIS();
  redis_process server(
      {"--requirepass", "s3cret", "--user", "alice", "on", ">wonderland", "~*", "+@all"});
  auto options = options_for(server.address());

  SUBCASE("no password: the server refuses, the tier counts failures and misses") {
    cy::redis_tier tier(options);
    CHECK_FALSE(tier.put(key_number(1), bytes_of("x")));
    cy::byte_buffer out;
    CHECK_FALSE(tier.get(key_number(1), out));
    CHECK(tier.stats().failures == 2);
  }
  SUBCASE("password") {
    options.password = "s3cret";
    cy::redis_tier tier(options);
    CHECK(tier.put(key_number(1), bytes_of("x")));
    cy::byte_buffer out;
    CHECK(tier.get(key_number(1), out));
    CHECK(tier.stats().failures == 0);
  }
  SUBCASE("username and password") {
    options.username = "alice";
    options.password = "wonderland";
    cy::redis_tier tier(options);
    CHECK(tier.put(key_number(2), bytes_of("y")));
    cy::byte_buffer out;
    CHECK(tier.get(key_number(2), out));
    CHECK(text_of(out) == "y");
  }
  SUBCASE("wrong password: connect fails, counted, no throw") {
    options.password = "wrong";
    cy::redis_tier tier(options);
    cy::byte_buffer out;
    CHECK_FALSE(tier.get(key_number(1), out));
    CHECK(tier.stats().failures == 1);
    CHECK(tier.counters().connect_failures == 1);
  }
}

TEST_CASE("a killed server gives counted misses, fails fast while backing off, then recovers") {
  SKIP_WITHOUT_REDIS();
  redis_process server;
  auto options = options_for(server.address());
  options.backoff_initial = 200ms;
  options.backoff_max = 400ms;
  cy::redis_tier tier(options);
  REQUIRE(tier.put(key_number(1), bytes_of("before")));

  server.stop();
  cy::byte_buffer out;
  CHECK_FALSE(tier.get(key_number(1), out));                 // the open connection breaks
  CHECK_FALSE(tier.put(key_number(2), bytes_of("during")));  // in backoff: refused at once
  auto counters = tier.counters();
  CHECK(counters.request_failures == 1);
  CHECK(counters.fast_failures >= 1);
  CHECK(tier.stats().failures == 2);

  server.start();                      // same port, empty (no persistence)
  std::this_thread::sleep_for(500ms);  // past the backoff
  bool stored = false;
  for (int attempt = 0; attempt < 20 && !stored; ++attempt) {
    stored = tier.put(key_number(3), bytes_of("after"));
    if (!stored) std::this_thread::sleep_for(100ms);
  }
  REQUIRE(stored);
  REQUIRE(tier.get(key_number(3), out));
  CHECK(text_of(out) == "after");
  CHECK_FALSE(tier.get(key_number(1), out));  // lost with the old process
  CHECK(tier.counters().connects == 2);
}

TEST_CASE("nothing listening: every call counts a failure, none connects") {
  auto port = conveyor::test::pick_free_port();
  cy::redis_tier tier(options_for("127.0.0.1:" + std::to_string(port)));
  cy::byte_buffer out;
  (void)tier.get(key_number(1), out);
  (void)tier.put(key_number(1), bytes_of("x"));
  (void)tier.contains(key_number(1));
  (void)tier.erase(key_number(1));
  CHECK(tier.stats().failures == 4);
  CHECK(tier.counters().connects == 0);
}

TEST_CASE("a server that accepts but never answers: the call returns at its deadline") {
  silent_listener silent;
  auto options = options_for(silent.address());
  options.io_timeout = 300ms;
  cy::redis_tier tier(options);
  cy::byte_buffer out;
  auto started = std::chrono::steady_clock::now();
  CHECK_FALSE(tier.get(key_number(1), out));
  auto elapsed = std::chrono::steady_clock::now() - started;
  CHECK(elapsed >= 300ms);  // it did wait for the answer...
  CHECK(elapsed < 3s);      // ...and gave up at the deadline, not never
  CHECK(tier.counters().request_failures == 1);
  CHECK(tier.stats().failures == 1);
}

TEST_CASE("garbage from a fake server is a counted protocol error, the connection is dropped") {
  SUBCASE("unknown type byte") {
    garbage_server fake("!this is not RESP\r\n");
    cy::redis_tier tier(options_for(fake.address()));
    cy::byte_buffer out;
    CHECK_FALSE(tier.get(key_number(1), out));
    CHECK(tier.counters().protocol_errors == 1);
    CHECK(tier.stats().failures == 1);
  }
  SUBCASE("an absurd bulk length is refused, not allocated") {
    garbage_server fake("$999999999999999\r\nabc");
    cy::redis_tier tier(options_for(fake.address()));
    cy::byte_buffer out;
    CHECK_FALSE(tier.get(key_number(1), out));
    CHECK(tier.counters().protocol_errors == 1);
  }
  SUBCASE("more replies than requests") {
    garbage_server fake("$1\r\na\r\n$1\r\nb\r\n");
    cy::redis_tier tier(options_for(fake.address()));
    cy::byte_buffer out;
    CHECK_FALSE(tier.get(key_number(1), out));
    CHECK(tier.counters().protocol_errors == 1);
  }
}

TEST_CASE("Redis Cluster: batches across nodes, MOVED and ASK after a slot migration") {
  if (!redis_cluster::available()) {
    MESSAGE("redis-server or redis-cli is not installed; skipping the cluster test");
    return;
  }
  redis_cluster cluster;
  auto options = options_for(cluster.node(0).address());  // one seed: the rest is discovered
  options.cluster = true;
  options.max_batch = 500;
  cy::redis_tier tier(options);

  std::vector<cy::cache_key> keys;
  std::vector<std::vector<std::byte>> values;
  for (std::uint64_t i = 0; i < 3000; ++i) {
    keys.push_back(key_number(i));
    values.push_back(bytes_of("cluster-value-" + std::to_string(i)));
  }
  std::vector<std::span<const std::byte>> spans(values.begin(), values.end());
  CHECK(tier.put_many(keys, spans) == keys.size());
  for (std::size_t n = 0; n < cluster.size(); ++n) {
    auto count = send_command(cluster.node(n).where(), {"DBSIZE"}).integer;
    CHECK(count > 500);  // spread over every node
  }
  std::vector<cy::byte_buffer> got(keys.size());
  std::vector<std::uint8_t> found(keys.size());
  CHECK(tier.get_many(keys, got, found) == keys.size());
  CHECK(got[1234] == values[1234]);
  CHECK(tier.counters().moved_redirects == 0);

  // Move the slot of key 0 to another node, in two steps, behind the tier's back.
  auto name = tier.redis_key(keys[0]);
  auto slot = std::to_string(conveyor::redis::key_slot(name));
  std::size_t source = 0;
  for (; source < cluster.size(); ++source)
    if (send_command(cluster.node(source).where(), {"EXISTS", name}).integer == 1) break;
  REQUIRE(source < cluster.size());
  auto target = (source + 1) % cluster.size();
  auto& from = cluster.node(source);
  auto& to = cluster.node(target);
  auto from_id = send_command(from.where(), {"CLUSTER", "MYID"}).text;
  auto to_id = send_command(to.where(), {"CLUSTER", "MYID"}).text;
  REQUIRE(
      send_command(to.where(), {"CLUSTER", "SETSLOT", slot, "IMPORTING", from_id}).is_string("OK"));
  REQUIRE(
      send_command(from.where(), {"CLUSTER", "SETSLOT", slot, "MIGRATING", to_id}).is_string("OK"));
  REQUIRE(send_command(from.where(),
                       {"MIGRATE", "127.0.0.1", std::to_string(to.port()), name, "0", "5000"})
              .is_string("OK"));

  // Mid-migration the old owner answers ASK for the moved key.
  cy::byte_buffer out;
  REQUIRE(tier.get(keys[0], out));
  CHECK(out == values[0]);
  CHECK(tier.counters().ask_redirects == 1);

  auto in_slot = send_command(from.where(), {"CLUSTER", "GETKEYSINSLOT", slot, "1000"});
  for (const auto& key : in_slot.elements)
    REQUIRE(send_command(from.where(),
                         {"MIGRATE", "127.0.0.1", std::to_string(to.port()), key.text, "0", "5000"})
                .is_string("OK"));
  for (std::size_t n = 0; n < cluster.size(); ++n)
    REQUIRE(send_command(cluster.node(n).where(), {"CLUSTER", "SETSLOT", slot, "NODE", to_id})
                .is_string("OK"));

  // Now the tier's map is stale: MOVED, map refresh, and the right answer.
  REQUIRE(tier.get(keys[0], out));
  CHECK(out == values[0]);
  CHECK(tier.counters().moved_redirects == 1);
  CHECK(tier.get_many(keys, got, found) == keys.size());
  CHECK(tier.counters().moved_redirects == 1);  // the refreshed map routes every key right
  CHECK(tier.stats().failures == 0);
}

TEST_CASE("misuse is reported: bad addresses and short output spans") {
  cy::redis_tier_options options;
  options.servers = {"localhost:notaport"};
  CHECK_THROWS_AS(cy::redis_tier{options}, std::invalid_argument);
  options.servers = {};
  CHECK_THROWS_AS(cy::redis_tier{options}, std::invalid_argument);
  cy::redis_tier tier(options_for("127.0.0.1:1"));
  std::vector<cy::cache_key> keys(3);
  std::vector<cy::byte_buffer> values(2);
  std::vector<std::uint8_t> found(3);
  CHECK_THROWS_AS(tier.get_many(keys, values, found), std::invalid_argument);
}
