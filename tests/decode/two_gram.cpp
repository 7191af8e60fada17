// Tests for conveyor/decode/two_gram.hpp and gram_alphabet.hpp: the README's
// worked examples, 400+ random Unicode cases whose expected output came from the
// Python steps (make_two_gram_cases.py), the ASCII fast path against the
// general walk, the real DEA file, invalid UTF-8 and the reverse functions.
#include "conveyor/decode/two_gram.hpp"

#include <doctest/doctest.h>

#include <array>
#include <cmath>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <limits>
#include <string>
#include <vector>

#include "conveyor/decode/bits.hpp"

#if __has_include(<openssl/sha.h>) && defined(CONVEYOR_TEST_HAVE_OPENSSL)
#include <openssl/sha.h>
#define CONVEYOR_TEST_SHA256 1
#endif

namespace cy = conveyor;

namespace {

struct two_gram_case {
  std::vector<std::string_view> fields;
  std::vector<int> dea_ones;
  std::vector<int> user_ones;
};

const std::vector<two_gram_case> generated_cases = {
#include "two_gram_cases.inc"
};

// Must match USER in make_two_gram_cases.py.
const cy::gram_alphabet& user_alphabet() {
  static const cy::gram_alphabet alphabet{
      "ab", "k1", "\u00e51", "\u00ff\u00df", "i\u00e9", "\t1", "a\u00a0", "e ", "Ab", "\u00d7x",
      "\u00e0\u00e0", "zz", "\u00b5m", "ss", "0a", "9\u00e5", "\u00fe\u00fe", "x\u0085"};
  return alphabet;
}

template <class T>
std::vector<int> ones_of(const std::vector<T>& row) {
  std::vector<int> ones;
  for (std::size_t i = 0; i < row.size(); ++i) {
    if constexpr (std::is_same_v<T, float>) {
      if (row[i] == 1.0f) ones.push_back(static_cast<int>(i));
      else REQUIRE(row[i] == 0.0f);
    } else {
      if (row[i] == 1) ones.push_back(static_cast<int>(i));
      else REQUIRE(row[i] == 0);
    }
  }
  return ones;
}

template <class T>
std::vector<int> encode(std::span<const std::string_view> fields, const cy::gram_alphabet& alphabet) {
  std::vector<T> row(alphabet.size(), T{7});  // garbage: the encoder must zero it
  const auto status = cy::try_encode_two_grams(fields, std::span<T>(row), alphabet);
  REQUIRE(status.ok());
  return ones_of(row);
}

}  // namespace

TEST_CASE("the DEA alphabet is the README's") {
  const auto& alphabet = cy::dea_alphabet();
  REQUIRE(alphabet.size() == 1036);
  CHECK(alphabet.gram(0) == "aa");
  CHECK(alphabet.gram(27) == "bb");
  CHECK(alphabet.gram(675) == "zz");
  CHECK(alphabet.gram(676) == "a0");
  CHECK(alphabet.gram(935) == "z9");
  CHECK(alphabet.gram(936) == "00");
  CHECK(alphabet.gram(1035) == "99");
  CHECK(alphabet.index_of("m3") == 676 + 10 * 12 + 3);
  CHECK_FALSE(alphabet.index_of("3m").has_value());
  CHECK_FALSE(alphabet.index_of("Aa").has_value());
  for (std::size_t i = 0; i < alphabet.size(); ++i) CHECK(alphabet.index_of(alphabet.gram(i)) == i);
}

TEST_CASE("README worked examples, bit for bit") {
  const std::array<std::string_view, 3> maria{"Maria", "Taylor", "6/16/1937"};
  CHECK(encode<float>(maria, cy::dea_alphabet()) ==
        std::vector<int>{17, 19, 24, 208, 300, 312, 381, 450, 494, 635, 852, 952, 955, 973, 997, 1029});
  const std::array<std::string_view, 3> rene{"Rene", "Miles", "2/14/1970"};
  CHECK(encode<std::uint8_t>(rene, cy::dea_alphabet()) ==
        std::vector<int>{116, 117, 122, 219, 290, 320, 342, 446, 858, 950, 955, 957, 977, 1006, 1033});
  // The single-text form on the concatenation gives the same label.
  std::vector<float> row(1036);
  REQUIRE(cy::try_encode_two_grams("mariataylor6161937", std::span<float>(row)).ok());
  CHECK(ones_of(row) ==
        std::vector<int>{17, 19, 24, 208, 300, 312, 381, 450, 494, 635, 852, 952, 955, 973, 997, 1029});
}

TEST_CASE("matches the Python steps on random Unicode text (DEA and user alphabets, float and uint8)") {
  REQUIRE(generated_cases.size() > 400);
  for (std::size_t i = 0; i < generated_cases.size(); ++i) {
    const auto& c = generated_cases[i];
    CAPTURE(i);
    CHECK(encode<float>(c.fields, cy::dea_alphabet()) == c.dea_ones);
    CHECK(encode<std::uint8_t>(c.fields, cy::dea_alphabet()) == c.dea_ones);
    CHECK(encode<float>(c.fields, user_alphabet()) == c.user_ones);
  }
}

TEST_CASE("the ASCII fast path writes what the code-point walk writes") {
  // encode_two_grams_ascii serves ASCII text (every DEA record); the general
  // walk is the reference the Python cases above check. Random ASCII of every
  // byte value, biased towards what the rules single out (letters of both
  // cases, digits, ' ', other Python whitespace, '"', '.', '/'), split into
  // 1 to 4 fields.
  std::uint64_t state = 0x9e3779b97f4a7c15ULL;
  const auto next = [&state] {
    state ^= state << 13;
    state ^= state >> 7;
    state ^= state << 17;
    return state;
  };
  const std::string_view special = "aAzZ09 \t\n\x0b\x0c\r\x1c\x1f\\\"./kK1e";
  for (int trial = 0; trial < 3000; ++trial) {
    std::string text;
    const std::size_t length = next() % 40;
    for (std::size_t i = 0; i < length; ++i)
      text += next() % 2 ? special[next() % special.size()] : static_cast<char>(next() % 128);
    std::vector<std::string_view> fields;
    std::size_t start = 0;
    const std::size_t parts = 1 + next() % 4;
    for (std::size_t part = 1; part < parts; ++part) {
      const std::size_t cut = start + next() % (text.size() - start + 1);
      fields.push_back(std::string_view(text).substr(start, cut - start));
      start = cut;
    }
    fields.push_back(std::string_view(text).substr(start));
    CAPTURE(text);
    for (const cy::gram_alphabet* alphabet : {&cy::dea_alphabet(), &user_alphabet()}) {
      std::vector<float> fast(alphabet->size(), 7.0f), general(alphabet->size(), 7.0f);
      REQUIRE(cy::detail::encode_two_grams_ascii(std::span<const std::string_view>(fields), fast.data(), *alphabet));
      REQUIRE(cy::detail::encode_two_grams_general(std::span<const std::string_view>(fields), general.data(),
                                                   *alphabet)
                  .ok());
      CHECK(fast == general);
    }
  }
  // Not ASCII, or more than 256 kept bytes: the fast path declines and writes nothing.
  std::vector<float> row(cy::dea_alphabet().size(), 7.0f);
  const std::string_view latin = "caf\u00e9";
  CHECK_FALSE(cy::detail::encode_two_grams_ascii(std::span<const std::string_view>(&latin, 1), row.data(),
                                                  cy::dea_alphabet()));
  const std::string longer(300, 'a');
  const std::string_view long_view = longer;
  CHECK_FALSE(cy::detail::encode_two_grams_ascii(std::span<const std::string_view>(&long_view, 1), row.data(),
                                                  cy::dea_alphabet()));
  CHECK(row == std::vector<float>(row.size(), 7.0f));
  CHECK(encode<float>(std::span<const std::string_view>(&long_view, 1), cy::dea_alphabet()) ==
        std::vector<int>{0});  // the general walk still labels it: "aa"
}

TEST_CASE("Python's strip/lower corner cases") {
  const auto ones = [](std::string_view text) {
    return encode<float>(std::span<const std::string_view>(&text, 1), cy::dea_alphabet());
  };
  const int ke = 26 * 10 + 4, ki = 26 * 10 + 8, ab = 1;
  CHECK(ones("\u212a\u212a") == std::vector<int>{26 * 10 + 10});  // KELVIN SIGN lowercases to 'k'
  CHECK(ones("\u212ae") == std::vector<int>{ke});
  CHECK(ones("k\u0130") == std::vector<int>{ki});    // U+0130 -> "i" U+0307: 'k','i' form "ki"...
  CHECK(ones("\u0130x").empty());                   // ...but "ix" is broken by U+0307
  CHECK(ones("\u00a0ab\u3000").size() == 1);         // Unicode spaces are stripped
  CHECK(ones("a\u00a0b").empty());                   // an inner NBSP is kept, and is no letter
  CHECK(ones("a b").empty());                        // the space rule
  CHECK(ones("a.b") == std::vector<int>{ab});        // deletion happens before pairing
  CHECK(ones(" \".ab/ ") == std::vector<int>{ab});
  CHECK(ones("\x1c" "ab" "\x1f") == std::vector<int>{ab});  // ASCII separators are Python whitespace
  CHECK(ones("a\u200bb").empty());                   // ZERO WIDTH SPACE is not whitespace, breaks the pair
  const std::array<std::string_view, 2> across{"xa", "b"};
  CHECK(encode<float>(across, cy::dea_alphabet()) == std::vector<int>{ab, 26 * 23});  // pairs cross fields
}

TEST_CASE("invalid UTF-8 is reported with field and byte, as Python's decoder would") {
  struct utf8_case {
    std::string_view bytes;
    int python_error_start;  // UnicodeDecodeError.start, or -1 when it decodes
  };
  const utf8_case cases[] = {
#include "utf8_cases.inc"
  };
  for (const auto& c : cases) {
    CAPTURE(c.bytes);
    const std::array<std::string_view, 2> fields{"ok", c.bytes};
    std::vector<float> row(1036, 3.0f);
    const auto status = cy::try_encode_two_grams(fields, std::span<float>(row));
    if (c.python_error_start < 0) {
      CHECK(status.ok());
    } else {
      CHECK(status.code == cy::decode_errc::invalid_utf8);
      CHECK(status.field == 1);
      CHECK(status.position == static_cast<std::size_t>(c.python_error_start));
      CHECK(ones_of(row).empty());
    }
  }
}

TEST_CASE("throwing form names file, record and byte offset") {
  const std::array<std::string_view, 3> fields{"Ann", "B\xc3", "1/1/1990"};
  std::vector<float> row(1036);
  const std::array<std::uint64_t, 3> offsets{100, 104, 107};
  CHECK_THROWS_WITH_AS(cy::encode_two_grams(fields, std::span<float>(row), cy::error_location{"p.tsv", 4, 100},
                                            cy::dea_alphabet(), offsets),
                       "p.tsv, record 4, byte offset 105: two-gram label: invalid UTF-8 in field 1 at byte 1 "
                       "(0xc3)",
                       cy::data_error);
  CHECK_THROWS_WITH_AS(cy::encode_two_grams(fields, std::span<float>(row), cy::error_location{"p.tsv", 4, 100}),
                       "p.tsv, record 4, byte offset 100: two-gram label: invalid UTF-8 in field 1 at byte 1 "
                       "(0xc3)",
                       cy::data_error);
  CHECK_THROWS_WITH_AS(cy::encode_two_grams("ab\xff", std::span<float>(row), cy::error_location{"q", 0, 50}),
                       "q, record 0, byte offset 52: two-gram label: invalid UTF-8 in field 0 at byte 2 (0xff)",
                       cy::data_error);
  CHECK_NOTHROW(cy::encode_two_grams("ab", std::span<float>(row), cy::error_location{"q", 0, 50}));
  std::vector<float> narrow(10);
  CHECK_THROWS_AS(cy::try_encode_two_grams("ab", std::span<float>(narrow)), std::invalid_argument);
}

TEST_CASE("user alphabets: lookup, duplicates and bad grams") {
  const cy::gram_alphabet alphabet{"zz", "\u00e9t", "a1"};
  CHECK(alphabet.size() == 3);
  CHECK(alphabet.index_of("\u00e9t") == 1);
  CHECK(encode<float>(std::array<std::string_view, 1>{"\u00c9T\u00c9"}, alphabet) == std::vector<int>{1});
  CHECK_THROWS_WITH_AS(cy::gram_alphabet({"ab", "cd", "ab"}),
                       "gram_alphabet: gram 2 (\"ab\") repeats gram 0", std::invalid_argument);
  CHECK_THROWS_AS(cy::gram_alphabet({"abc"}), std::invalid_argument);
  CHECK_THROWS_AS(cy::gram_alphabet({"a"}), std::invalid_argument);
  CHECK_THROWS_AS(cy::gram_alphabet({"a\u0100"}), std::invalid_argument);  // beyond Latin-1
  CHECK_THROWS_AS(cy::gram_alphabet({"a\xc3"}), std::invalid_argument);     // not UTF-8
  const cy::gram_alphabet copy = alphabet;  // copies share the table
  CHECK(copy.index_of("a1") == 2);
}

TEST_CASE("scores back to grams") {
  std::vector<float> scores(1036, 0.1f);
  scores[0] = 0.9f;    // aa
  scores[676] = 0.7f;  // a0
  scores[1035] = 0.9f; // 99
  scores[5] = std::numeric_limits<float>::quiet_NaN();
  const auto above = cy::grams_above(scores, 0.5f);
  REQUIRE(above.size() == 3);
  CHECK(above[0].gram == "aa");
  CHECK(above[1].gram == "a0");
  CHECK(above[2].gram == "99");
  CHECK(above[2].score == 0.9f);
  const auto top = cy::top_k_grams(scores, 3);
  REQUIRE(top.size() == 3);
  CHECK(top[0].index == 0);  // ties keep alphabet order
  CHECK(top[1].index == 1035);
  CHECK(top[2].index == 676);
  CHECK(cy::top_k_grams(scores, 5000).size() == 1035);  // NaN left out
  CHECK(cy::top_k_grams(scores, 0).empty());
  CHECK_THROWS_AS(cy::grams_above(std::vector<float>(3), 0.5f), std::invalid_argument);
}

TEST_CASE("the whole DEA reference file: labels and features match the original's output") {
  const std::filesystem::path path = std::filesystem::path(CONVEYOR_SHARED_DATA_DIR) / "fakename_1k_bf_encoded.tsv";
  if (!std::filesystem::exists(path)) {
    MESSAGE("shared data not found, skipping: " << path);
    return;
  }
  std::ifstream in(path, std::ios::binary);
  std::string line;
  std::getline(in, line);  // header
  std::vector<float> labels, features;
  std::size_t rows = 0;
  while (std::getline(in, line)) {
    REQUIRE(line.find('"') == std::string::npos);  // the file has no quoting; this split relies on it
    std::vector<std::string_view> fields;
    std::string_view rest = line;
    for (std::size_t tab; (tab = rest.find('\t')) != std::string_view::npos; rest.remove_prefix(tab + 1))
      fields.push_back(rest.substr(0, tab));
    fields.push_back(rest);
    REQUIRE(fields.size() == 5);
    labels.resize(labels.size() + 1036);
    features.resize(features.size() + 1024);
    cy::encode_two_grams(std::span<const std::string_view>(fields.data(), 3),
                         std::span<float>(labels).last(1036), cy::error_location{path.string(), rows});
    cy::decode_bit_string(fields[3], std::span<float>(features).last(1024),
                          cy::error_location{path.string(), rows});
    ++rows;
  }
  CHECK(rows == 1000);
  std::size_t ones = 0;
  for (float value : labels) ones += value == 1.0f;
  CHECK(ones == 17554);
#ifdef CONVEYOR_TEST_SHA256
  const auto hex_sha256 = [](const std::vector<float>& values) {  // little-endian float32, row-major
    unsigned char digest[SHA256_DIGEST_LENGTH];
    SHA256(reinterpret_cast<const unsigned char*>(values.data()), values.size() * sizeof(float), digest);
    std::string hex;
    for (unsigned char byte : digest) hex += "0123456789abcdef"[byte >> 4], hex += "0123456789abcdef"[byte & 15];
    return hex;
  };
  CHECK(hex_sha256(features) == "967b2ca73d9e8b0d1b2705d133b299ef4c7a02b329716079565fa0c8ec7b3ed5");
  CHECK(hex_sha256(labels) == "99f84054ec097ba6d19e9a8ce3de90b294faf888e3da659f374f8f69b14e4689");
#else
  MESSAGE("OpenSSL not found: SHA-256 comparison skipped");
#endif
}
