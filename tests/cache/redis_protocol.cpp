// Tests of the Redis tier's pure parts: CRC16 slots, the RESP parser and
// encoder, endpoints and the CLUSTER SLOTS parser. No server needed.
#include <doctest/doctest.h>

#include <string>
#include <vector>

#include "conveyor/cache/redis/command.hpp"
#include "conveyor/cache/redis/crc16.hpp"
#include "conveyor/cache/redis/endpoint.hpp"
#include "conveyor/cache/redis/resp_parser.hpp"
#include "conveyor/cache/redis/slot_map.hpp"

namespace redis = conveyor::redis;

namespace {
std::vector<redis::resp_value> parse_all(const std::string& bytes, std::size_t chunk,
                                         redis::resp_limits limits = {}) {
  redis::resp_parser parser("test", limits);
  std::vector<redis::resp_value> replies;
  for (std::size_t at = 0; at < bytes.size(); at += chunk) {
    parser.feed(std::string_view(bytes).substr(at, chunk));
    redis::resp_value reply;
    while (parser.next(reply)) replies.push_back(std::move(reply));
  }
  CHECK(parser.buffered_bytes() == 0);
  return replies;
}

std::string error_of(const std::string& bytes, redis::resp_limits limits = {}) {
  redis::resp_parser parser("redis test", limits);
  parser.feed(bytes);
  redis::resp_value reply;
  try {
    while (parser.next(reply)) {
    }
  } catch (const conveyor::data_error& e) {
    return e.what();
  }
  return "no error";
}
}  // namespace

TEST_CASE("crc16 and key slots match the Redis Cluster specification") {
  CHECK(redis::crc16("123456789") == 0x31c3);
  CHECK(redis::key_slot("foo") == 12182);
  CHECK(redis::key_slot("bar") == 5061);
  CHECK(redis::key_slot("{user1000}.following") == redis::key_slot("{user1000}.followers"));
  CHECK(redis::key_slot("{user1000}.following") == redis::key_slot("user1000"));
  CHECK(redis::hash_tag_of("foo{}{bar}") == "foo{}{bar}");  // empty first tag: whole key
  CHECK(redis::hash_tag_of("foo{{bar}}zap") == "{bar");
  CHECK(redis::hash_tag_of("foo{bar}{zap}") == "bar");
  CHECK(redis::hash_tag_of("no-close{tag") == "no-close{tag");
}

TEST_CASE("the command writer produces RESP arrays of bulk strings") {
  std::string out;
  redis::command_writer writer(out);
  writer.command({"SET", "k", ""});
  writer.begin(2);
  writer.arg(std::string_view("PX"));
  writer.arg(std::int64_t{-15});
  CHECK(out == "*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$0\r\n\r\n*2\r\n$2\r\nPX\r\n$3\r\n-15\r\n");
}

TEST_CASE("replies parse identically whatever the chunking") {
  std::string stream =
      "+OK\r\n-ERR bad\r\n:-42\r\n$5\r\nhe\r\nl\r\n$-1\r\n*-1\r\n*0\r\n"
      "*3\r\n:1\r\n*2\r\n$1\r\na\r\n*0\r\n$0\r\n\r\n+after\r\n";
  for (std::size_t chunk :
       {std::size_t{1}, std::size_t{2}, std::size_t{3}, std::size_t{7}, stream.size()}) {
    CAPTURE(chunk);
    auto replies = parse_all(stream, chunk);
    REQUIRE(replies.size() == 9);
    CHECK(replies[0].is_string("OK"));
    CHECK(replies[1].is_error());
    CHECK(replies[1].text == "ERR bad");
    CHECK(replies[2].integer == -42);
    CHECK(replies[3].kind == redis::resp_value::type::bulk_string);
    CHECK(replies[3].text == std::string("he\r\nl"));
    CHECK(replies[4].is_null());
    CHECK(replies[5].is_null());
    CHECK(replies[6].kind == redis::resp_value::type::array);
    CHECK(replies[6].elements.empty());
    REQUIRE(replies[7].elements.size() == 3);
    CHECK(replies[7].elements[0].integer == 1);
    REQUIRE(replies[7].elements[1].elements.size() == 2);
    CHECK(replies[7].elements[1].elements[0].text == "a");
    CHECK(replies[7].elements[1].elements[1].elements.empty());
    CHECK(replies[7].elements[2].text.empty());
    CHECK(replies[8].is_string("after"));
  }
}

TEST_CASE("protocol errors name the source, the reply and the byte offset") {
  CHECK(error_of("+OK\r\n?what\r\n") ==
        "redis test, record 1, byte offset 5: RESP protocol error: unknown type byte 0x3f");
  CHECK(error_of(":12x\r\n").find("malformed number") != std::string::npos);
  CHECK(error_of("$3\r\nabcd\r\n").find("byte offset 7") != std::string::npos);
  CHECK(error_of("+OK\n").find("not terminated by CRLF") != std::string::npos);
  CHECK(error_of("$-2\r\n").find("negative bulk length") != std::string::npos);
  CHECK(error_of("*-5\r\n").find("negative array length") != std::string::npos);
}

TEST_CASE("limits stop huge lengths and deep nesting before any allocation") {
  redis::resp_limits limits;
  limits.max_bulk_bytes = 16;
  limits.max_array_elements = 4;
  limits.max_depth = 2;
  limits.max_line_bytes = 8;
  CHECK(error_of("$17\r\n", limits).find("bulk length 17 exceeds limit") != std::string::npos);
  CHECK(error_of("$9223372036854775807\r\n").find("exceeds limit") != std::string::npos);
  CHECK(error_of("$99999999999999999999999\r\n").find("malformed number") != std::string::npos);
  CHECK(error_of("*5\r\n", limits).find("array length 5 exceeds limit") != std::string::npos);
  CHECK(error_of("*1\r\n*1\r\n*1\r\n:1\r\n", limits).find("nested too deeply") !=
        std::string::npos);
  CHECK(error_of("+0123456789\r\n", limits).find("header line too long") != std::string::npos);
  CHECK(
      parse_all("$16\r\n0123456789abcdef\r\n*1\r\n*4\r\n:1\r\n:2\r\n:3\r\n+1234567\r\n", 3, limits)
          .size() == 2);
  // A long header without a newline is refused as soon as it exceeds the limit.
  redis::resp_parser parser("t", limits);
  parser.feed("+0123456789");
  redis::resp_value reply;
  CHECK_THROWS_AS(parser.next(reply), conveyor::data_error);
}

TEST_CASE("endpoints parse host:port, bracketed IPv6 and reject junk") {
  redis::endpoint e;
  REQUIRE(redis::endpoint::parse("10.1.2.3:7000", e));
  CHECK(e.host == "10.1.2.3");
  CHECK(e.port == 7000);
  REQUIRE(redis::endpoint::parse("[::1]:6380", e));
  CHECK(e.host == "::1");
  CHECK(e.to_string() == "[::1]:6380");
  REQUIRE(redis::endpoint::parse("cache.local", e));
  CHECK(e.port == 6379);
  for (const char* bad : {"", ":80", "h:", "h:0", "h:65536", "h:12a", "[::1", "[::1]x"}) {
    CAPTURE(bad);
    CHECK_FALSE(redis::endpoint::parse(bad, e));
  }
}

TEST_CASE("CLUSTER SLOTS replies become a slot map; malformed ones are data errors") {
  std::string reply =
      "*2\r\n"
      "*3\r\n:0\r\n:8191\r\n*3\r\n$9\r\n127.0.0.1\r\n:7000\r\n$2\r\nid\r\n"
      "*4\r\n:8192\r\n:16383\r\n*2\r\n$0\r\n\r\n:7001\r\n*2\r\n$9\r\n127.0.0.9\r\n:7002\r\n";
  auto parsed = parse_all(reply, 5);
  REQUIRE(parsed.size() == 1);
  auto map =
      redis::slot_map::from_cluster_slots(parsed[0], redis::endpoint{"10.0.0.1", 7001}, "seed");
  CHECK(map.assigned_slots() == 16384);
  REQUIRE(map.nodes().size() == 2);
  CHECK(map.nodes()[map.node_for_slot(0)].port == 7000);
  CHECK(map.nodes()[map.node_for_slot(8192)].host == "10.0.0.1");  // empty host: the node asked
  CHECK(map.nodes()[map.node_for_slot(16383)].port == 7001);
  auto bad = parse_all("*1\r\n*3\r\n:5\r\n:3\r\n*2\r\n$1\r\nh\r\n:1\r\n", 4);
  CHECK_THROWS_AS(redis::slot_map::from_cluster_slots(bad[0], {}, "seed"), conveyor::data_error);
  auto partial = parse_all("*1\r\n*3\r\n:0\r\n:99\r\n*2\r\n$1\r\nh\r\n:1\r\n", 4);
  auto small = redis::slot_map::from_cluster_slots(partial[0], {}, "seed");
  CHECK(small.assigned_slots() == 100);
  CHECK(small.node_for_slot(100) == redis::slot_map::no_node);
}
