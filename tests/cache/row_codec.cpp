// Tests of conveyor/cache/detail/row_codec.hpp: the checksum flag (a value
// written without its CRC32C, for a tier whose values stay in this process,
// parses when trusted and is refused where it is verified), and bitmap
// columns (cached_batch.hpp): every dtype and width round trips bit for bit,
// any value that is not exactly 0 or 1 keeps its column raw, the layout is
// the documented one, old values still parse, and damaged ones never do.
#include "conveyor/cache/detail/row_codec.hpp"

#include <doctest/doctest.h>

#include <array>
#include <cstring>
#include <initializer_list>
#include <random>
#include <string>
#include <type_traits>
#include <vector>

#include "conveyor/cache/detail/cached_batch.hpp"
#include "conveyor/cache/detail/crc32c.hpp"
#include "conveyor/core/batch.hpp"
#include "conveyor/core/column.hpp"
#include "conveyor/core/half.hpp"

namespace d = conveyor::detail;

namespace {

constexpr std::uint64_t tag = 0x1234'5678'9abc'def0ull;
constexpr std::array<std::uint32_t, 2> units{4, 1};

std::vector<std::byte> row(d::row_checksum checksum) {
  std::array<float, 3> dense{1.5f, -2.0f, 8.25f};
  const char text[] = "seven";
  std::array<std::span<const std::byte>, 2> columns{std::as_bytes(std::span<const float>(dense)),
                                                    std::as_bytes(std::span<const char>(text, 5))};
  std::array<std::uint64_t, 2> extents{3, 5};
  std::vector<std::byte> out(d::row_value_bytes<2>(columns));
  d::write_row<2>(out, tag, columns, extents, checksum);
  return out;
}

}  // namespace

TEST_CASE("row_codec: a value written without its checksum is ok trusted and refused verified") {
  auto unchecked = row(d::row_checksum::trust);
  auto checked = row(d::row_checksum::verify);
  REQUIRE(unchecked.size() == checked.size());
  d::row_fields<2> fields;
  CHECK(d::parse_row<2>(checked, tag, units, fields, d::row_checksum::verify) == d::row_check::ok);
  CHECK(d::parse_row<2>(checked, tag, units, fields, d::row_checksum::trust) == d::row_check::ok);
  CHECK(d::parse_row<2>(unchecked, tag, units, fields, d::row_checksum::trust) == d::row_check::ok);
  CHECK(fields.extents[0] == 3);
  CHECK(std::memcmp(fields.data[1].data(), "seven", 5) == 0);
  CHECK(d::parse_row<2>(unchecked, tag, units, fields, d::row_checksum::verify) ==
        d::row_check::bad_checksum);
  // Same payload, same header but for the CRC and the flag.
  CHECK(std::memcmp(unchecked.data() + 24, checked.data() + 24, checked.size() - 24) == 0);
  // Flag bits other than "no checksum" are not ours.
  auto odd = checked;
  odd[20] |= std::byte{0x02};
  CHECK(d::parse_row<2>(odd, tag, units, fields, d::row_checksum::trust) ==
        d::row_check::bad_magic);
  // A checked value whose flag is set afterwards is still refused when verified.
  auto flagged = checked;
  flagged[20] |= std::byte{0x01};
  CHECK(d::parse_row<2>(flagged, tag, units, fields, d::row_checksum::verify) ==
        d::row_check::bad_checksum);
}

// ---- bitmap columns (cached_batch.hpp / row_codec.hpp) -----------------------

namespace cy = conveyor;

namespace {

// Column "a" of dtype T (binary or not per test), a bytes column, and a float column "c".
template <class T>
using mixed_batch = cy::record_batch<cy::dense<"a", T>, cy::bytes<"b">, cy::dense<"c", float>>;

template <class T>
using word_of = typename d::binary_dtype<T>::word;

// A batch of rows.size() rows: row r's "a" holds the words a_rows[r] (bit
// patterns of T), "b" the text b_rows[r], "c" the floats c_rows[r].
template <class T>
mixed_batch<T> make_batch(const std::vector<std::vector<word_of<T>>>& a_rows,
                          const std::vector<std::string>& b_rows,
                          const std::vector<std::vector<float>>& c_rows) {
  auto pool = cy::default_pool();
  const std::size_t rows = a_rows.size();
  std::vector<std::uint64_t> indices(rows);
  for (std::size_t r = 0; r < rows; ++r) indices[r] = 100 + r;
  mixed_batch<T> batch(pool, cy::batch_info{}, indices);
  const std::size_t a_width = rows ? a_rows[0].size() : 0;
  const std::size_t c_width = rows ? c_rows[0].size() : 0;
  auto& a = batch.template get<"a">();
  a = cy::dense_column<T>(pool, rows, a_width);
  auto& b = batch.template get<"b">();
  b = cy::bytes_column(pool, rows);
  auto& c = batch.template get<"c">();
  c = cy::dense_column<float>(pool, rows, c_width);
  for (std::size_t r = 0; r < rows; ++r) {
    if (a_width) std::memcpy(a.row(r).data(), a_rows[r].data(), a_width * sizeof(T));
    b.append(b_rows[r]);
    if (c_width) std::memcpy(c.row(r).data(), c_rows[r].data(), c_width * sizeof(float));
  }
  return batch;
}

// memcmp that allows empty (possibly null) ranges.
bool same_bytes(const void* a, const void* b, std::size_t n) {
  return n == 0 || std::memcmp(a, b, n) == 0;
}

// Encodes every row of `batch` (bitmaps allowed when `pack`), checks each
// value parses (verified and trusted), that the expected columns are bitmaps
// (`a_bitmap[r]`, `c_bitmap[r]`), that the size is what the encodings say,
// and that every column comes back bit for bit.
template <class T>
void check_round_trip(const mixed_batch<T>& batch, bool pack, const std::vector<bool>& a_bitmap,
                      const std::vector<bool>& c_bitmap) {
  using codec = d::cached_batch<mixed_batch<T>>;
  const std::size_t rows = batch.rows();
  const auto& a = batch.template get<"a">();
  const auto& b = batch.template get<"b">();
  const auto& c = batch.template get<"c">();
  auto pool = cy::default_pool();
  mixed_batch<T> out(pool, cy::batch_info{}, batch.indices());
  out.template get<"a">() = cy::dense_column<T>(pool, rows, a.width());
  out.template get<"c">() = cy::dense_column<float>(pool, rows, c.width());
  // Poison the output so that an expansion that skips values is caught.
  for (std::size_t r = 0; r < rows; ++r) {
    if (a.width()) std::memset(out.template get<"a">().row(r).data(), 0xA5, a.width() * sizeof(T));
    if (c.width()) std::memset(out.template get<"c">().row(r).data(), 0xA5, c.width() * 4);
  }
  typename codec::hit_bytes bytes;
  bytes.reset(rows);
  for (std::size_t r = 0; r < rows; ++r) {
    CAPTURE(r);
    std::vector<std::byte> value;
    codec::append_value(batch, r, value, pack);
    const bool a_bits = pack && a_bitmap[r], c_bits = pack && c_bitmap[r];
    const std::size_t expected_size =
        d::row_header_bytes(3) + (a_bits ? d::bitmap_bytes(a.width()) : a.width() * sizeof(T)) +
        b.row(r).size() + (c_bits ? d::bitmap_bytes(c.width()) : c.width() * 4);
    CHECK(value.size() == expected_size);
    const std::uint64_t flags = d::load_le(value.data() + 20, 4);
    CHECK(flags == ((a_bits || c_bits) ? d::row_flag_bitmaps : 0));
    typename codec::fields trusted;
    CHECK(codec::parse(value, trusted, d::row_checksum::trust) == d::row_check::ok);
    typename codec::fields fields;
    REQUIRE(codec::parse(value, fields, d::row_checksum::verify) == d::row_check::ok);
    CHECK(fields.bitmap[0] == a_bits);
    CHECK_FALSE(fields.bitmap[1]);
    CHECK(fields.bitmap[2] == c_bits);
    CHECK(fields.extents[0] == a.width());
    CHECK(fields.extents[2] == c.width());
    codec::copy_hit(fields, out, r, bytes);
    CHECK(
        same_bytes(out.template get<"a">().row(r).data(), a.row(r).data(), a.width() * sizeof(T)));
    CHECK(same_bytes(out.template get<"c">().row(r).data(), c.row(r).data(), c.width() * 4));
    CHECK(bytes.length[1][r] == b.row(r).size());
    CHECK(same_bytes(bytes.blob[1].data() + bytes.offset[1][r], b.row(r).data(), b.row(r).size()));
  }
}

template <class T>
void check_binary_dtype() {
  using word = word_of<T>;
  constexpr word one = d::binary_dtype<T>::one;
  std::mt19937_64 random(sizeof(T) * 31 + std::is_signed_v<T>);
  for (std::size_t width :
       std::initializer_list<std::size_t>{1, 3, 7, 8, 9, 31, 32, 33, 63, 64, 65, 100, 1024, 1027}) {
    CAPTURE(width);
    // Row 0: random 0/1; row 1: all 0; row 2: all 1; row 3: 1 only in the
    // last value; row 4: 1 only in the first.
    std::vector<std::vector<word>> a(5, std::vector<word>(width, 0));
    for (auto& w : a[0]) w = (random() & 1) ? one : word{0};
    for (auto& w : a[2]) w = one;
    a[3].back() = one;
    a[4].front() = one;
    std::vector<std::string> b{"", std::string("\0\1\0\1", 4), "text", std::string(9, '\1'), "x"};
    // "c": raw (1.5) in rows 0 and 3, binary in the others.
    std::vector<std::vector<float>> c{
        {0, 1, 1.5f, 0, 1}, {0, 1, 0, 1, 1}, {1, 1, 1, 1, 1}, {1.5f, 0, 0, 0, 0}, {0, 0, 0, 0, 0}};
    auto batch = make_batch<T>(a, b, c);
    check_round_trip<T>(batch, true, {true, true, true, true, true},
                        {false, true, true, false, true});
    check_round_trip<T>(batch, false, {false, false, false, false, false},
                        {false, false, false, false, false});
  }
}

template <class T>
std::vector<word_of<T>> odd_words() {
  if constexpr (std::is_same_v<T, float>) {
    return {0x8000'0000u /* -0.0 */,
            0x7FC0'0000u /* NaN */,
            0x7F80'0001u /* signalling NaN */,
            0x4000'0000u /* 2.0 */,
            0x0000'0001u /* denormal */,
            0x3F80'0001u /* 1 + ulp */,
            0xBF80'0000u /* -1.0 */};
  } else if constexpr (std::is_same_v<T, double>) {
    return {0x8000'0000'0000'0000ull, 0x7FF8'0000'0000'0000ull, 0x0000'0000'0000'0001ull,
            0x3FF0'0000'0000'0001ull, 0x3F80'0000ull /* float's 1 in a double's low half */};
  } else if constexpr (std::is_same_v<T, cy::float16>) {
    return {0x8000u, 0x7E00u, 0x0001u, 0x3C01u, 0x4000u, 0x3F80u /* bfloat16's 1 */};
  } else if constexpr (std::is_same_v<T, cy::bfloat16>) {
    return {0x8000u, 0x7FC0u, 0x0001u, 0x3F81u, 0x3C00u /* float16's 1 */};
  } else {
    std::vector<word_of<T>> words{2, static_cast<word_of<T>>(~word_of<T>{0}),
                                  static_cast<word_of<T>>(word_of<T>{1} << (8 * sizeof(T) - 1))};
    if constexpr (sizeof(T) > 1) words.push_back(static_cast<word_of<T>>(0x0100));
    return words;
  }
}

// Any value that is not exactly T's 0 or 1 keeps "a" raw, wherever it sits.
template <class T>
void check_odd_values_stay_raw() {
  using word = word_of<T>;
  constexpr word one = d::binary_dtype<T>::one;
  for (std::size_t width : std::initializer_list<std::size_t>{1, 9, 40, 70}) {
    for (word odd : odd_words<T>()) {
      for (std::size_t at : {std::size_t{0}, std::size_t{7}, std::size_t{8}, std::size_t{31},
                             std::size_t{32}, std::size_t{33}, width - 1}) {
        if (at >= width) continue;
        CAPTURE(width);
        CAPTURE(at);
        CAPTURE(static_cast<std::uint64_t>(odd));
        std::vector<std::vector<word>> a(2, std::vector<word>(width, 0));
        for (std::size_t k = 0; k < width; k += 3) a[0][k] = a[1][k] = one;
        a[0][at] = odd;
        auto batch = make_batch<T>(a, {"p", "q"}, {{0, 1}, {2, 0}});
        check_round_trip<T>(batch, true, {false, true}, {true, false});
      }
    }
  }
}

}  // namespace

TEST_CASE_TEMPLATE("row_codec: binary dense columns are stored as bitmaps and come back bit-exact",
                   T, float, double, cy::float16, cy::bfloat16, std::uint8_t, std::int8_t, char,
                   bool, std::int16_t, std::uint16_t, std::int32_t, std::uint32_t, std::int64_t,
                   std::uint64_t) {
  if constexpr (std::is_same_v<T, bool>) {
    // bool: only 0 and 1 are values; every row packs.
    using word = word_of<T>;
    std::vector<std::vector<word>> a{{1, 0, 1, 1, 0, 0, 0, 1, 1}, {0, 0, 0, 0, 0, 0, 0, 0, 0}};
    auto batch = make_batch<T>(a, {"", "y"}, {{1}, {-0.0f}});
    check_round_trip<T>(batch, true, {true, true}, {true, false});
  } else {
    check_binary_dtype<T>();
  }
}

TEST_CASE_TEMPLATE(
    "row_codec: -0.0, NaN, 2, denormals and other patterns keep a column raw, "
    "bit-exact",
    T, float, double, cy::float16, cy::bfloat16, std::uint8_t, std::int8_t, std::int16_t,
    std::int32_t, std::uint32_t, std::int64_t) {
  check_odd_values_stay_raw<T>();
}

namespace {

// pack_binary (AVX2 where the CPU has it) against the portable scan from the
// first value: the same answer and, when binary, the same bitmap bytes, which
// expand_binary turns back into the same words, for every width up to 200,
// binary rows and rows with one other value anywhere (including inside each
// 32-value step and in the portable tail).
template <class T>
void check_pack_paths_agree() {
  using word = word_of<T>;
  constexpr word one = d::binary_dtype<T>::one;
  const auto odd = odd_words<T>();
  std::mt19937_64 random(sizeof(T) * 7 + std::is_signed_v<T>);
  for (std::size_t width = 1; width <= 200; ++width) {
    for (int trial = 0; trial < 6; ++trial) {
      std::vector<word> values(width);
      for (auto& w : values) w = (random() & 3) == 0 ? one : word{0};
      if (trial >= 2) values[random() % width] = odd[random() % odd.size()];
      CAPTURE(width);
      CAPTURE(trial);
      std::vector<std::uint8_t> dispatched(d::bitmap_bytes(width) + 4, 0xAB),
          portable(d::bitmap_bytes(width) + 4, 0xAB);
      const auto* bytes = reinterpret_cast<const std::byte*>(values.data());
      const bool packed = d::pack_binary<T>(bytes, width, dispatched.data());
      const bool packed_portable =
          d::pack_binary_portable<word>(bytes, 0, width, one, portable.data());
      REQUIRE(packed == packed_portable);
      REQUIRE(packed == (trial < 2));
      if (packed) {
        CHECK(std::equal(dispatched.begin(), dispatched.end(), portable.begin()));
        for (std::size_t i = 0; i < width; ++i)
          REQUIRE(((dispatched[i / 8] >> (i % 8)) & 1u) == (values[i] == one ? 1u : 0u));
        // And back: expand_binary (AVX2 where the CPU has it) gives the words again.
        std::vector<T> expanded(width + 1);
        std::memset(static_cast<void*>(expanded.data()), 0x5A, sizeof(T) * expanded.size());
        d::expand_binary<T>(dispatched.data(), width, expanded.data());
        REQUIRE(std::memcmp(expanded.data(), values.data(), width * sizeof(T)) == 0);
        std::vector<std::byte> guard(sizeof(T), std::byte{0x5A});  // nothing past the last value
        CHECK(std::memcmp(expanded.data() + width, guard.data(), sizeof(T)) == 0);
      }
    }
  }
}

}  // namespace

TEST_CASE_TEMPLATE(
    "row_codec: the AVX2 and portable 0/1 scans agree on every word size, and expand back", T,
    float, double, cy::float16, cy::bfloat16, std::uint8_t, std::int8_t, std::int16_t,
    std::uint16_t, std::int32_t, std::uint32_t, std::int64_t, std::uint64_t) {
  if (!d::cpu_supports_avx2()) MESSAGE("no AVX2 on this CPU: both sides are the portable scan");
  check_pack_paths_agree<T>();
}

TEST_CASE("row_codec: empty dense columns stay raw, bytes columns are never bitmaps") {
  // Width 0 in "a" and "c": nothing to pack.
  auto empty = make_batch<float>({{}, {}}, {std::string("\0\1", 2), ""}, {{}, {}});
  check_round_trip<float>(empty, true, {false, false}, {false, false});
  static_assert(!d::cached_batch<mixed_batch<float>>::packable[1]);
  struct pair_dtype {
    float x, y;
  };
  static_assert(!d::binary_dtype<pair_dtype>::packable);
  static_assert(!d::binary_dtype<long double>::packable);
}

namespace {

using packed_codec = d::cached_batch<mixed_batch<float>>;

// A value with "a" (width 9) and "c" (width 5) as bitmaps and "b" = "bytes".
std::vector<std::byte> packed_value(d::row_checksum checksum = d::row_checksum::verify) {
  constexpr std::uint32_t one = 0x3F80'0000u;  // 1.0f
  auto batch =
      make_batch<float>({{one, 0, 0, one, 0, one, one, 0, one}}, {"bytes"}, {{0, 1, 0, 0, 1}});
  std::vector<std::byte> value;
  packed_codec::append_value(batch, 0, value, true, checksum);
  return value;
}

d::row_check parse_packed(const std::vector<std::byte>& value, d::row_checksum checksum) {
  packed_codec::fields fields;
  return packed_codec::parse(value, fields, checksum);
}

void set_payload_length(std::vector<std::byte>& value) {
  if (value.size() < d::row_header_bytes(3)) return;
  d::store_le(value.data() + 24, value.size() - d::row_header_bytes(3), 8);
}
// The CRC32C as the layout defines it: with flags bit 1, over the extents then the payload.
void set_crc(std::vector<std::byte>& value) {
  const std::size_t header = d::row_header_bytes(3);
  std::uint32_t crc = 0;
  if ((d::load_le(value.data() + 20, 4) & d::row_flag_bitmaps) != 0)
    crc = d::crc32c_update(0, value.data() + d::row_fixed_header_bytes, 8 * 3);
  d::store_le(value.data() + 16,
              d::crc32c_update(crc, value.data() + header, value.size() - header), 4);
}
std::uint64_t extent_word(const std::vector<std::byte>& value, std::size_t column) {
  return d::load_le(value.data() + d::row_fixed_header_bytes + 8 * column, 8);
}
void set_extent_word(std::vector<std::byte>& value, std::size_t column, std::uint64_t word) {
  d::store_le(value.data() + d::row_fixed_header_bytes + 8 * column, word, 8);
}

}  // namespace

TEST_CASE("row_codec: a value with bitmaps is laid out as documented") {
  auto value = packed_value();
  constexpr std::size_t header = d::row_header_bytes(3);
  REQUIRE(value.size() == header + 2 + 5 + 1);
  CHECK(d::load_le(value.data(), 4) == d::row_magic);
  CHECK(d::load_le(value.data() + 20, 4) == d::row_flag_bitmaps);  // a build before bitmaps
                                                                   // refuses this flag
  CHECK(extent_word(value, 0) == (9 | d::row_extent_bitmap));
  CHECK(extent_word(value, 1) == 5);
  CHECK(extent_word(value, 2) == (5 | d::row_extent_bitmap));
  // 1,0,0,1,0,1,1,0 | 1: value i is bit i % 8 of byte i / 8.
  CHECK(static_cast<unsigned>(value[header]) == 0b0110'1001u);
  CHECK(static_cast<unsigned>(value[header + 1]) == 0b1u);
  CHECK(std::memcmp(value.data() + header + 2, "bytes", 5) == 0);
  CHECK(static_cast<unsigned>(value[header + 7]) == 0b1'0010u);
}

TEST_CASE("row_codec: a value in the layout from before bitmaps is still read") {
  // Built by hand from the old layout: magic, count, tag, CRC, flags 0,
  // payload length, three extents, the raw columns.
  const std::array<float, 2> a{0.0f, 1.0f};  // binary, but stored raw as the old encoder did
  const std::array<float, 1> c{2.5f};
  std::vector<std::byte> payload(8 + 3 + 4);
  std::memcpy(payload.data(), a.data(), 8);
  std::memcpy(payload.data() + 8, "abc", 3);
  std::memcpy(payload.data() + 11, c.data(), 4);
  std::vector<std::byte> value(d::row_header_bytes(3));
  d::store_le(value.data(), 0x31525943u, 4);
  d::store_le(value.data() + 4, 3, 4);
  d::store_le(value.data() + 8, packed_codec::type_tag, 8);
  d::store_le(value.data() + 16, d::crc32c_update(0, payload.data(), payload.size()), 4);
  d::store_le(value.data() + 20, 0, 4);
  d::store_le(value.data() + 24, payload.size(), 8);
  d::store_le(value.data() + 32, 2, 8);
  d::store_le(value.data() + 40, 3, 8);
  d::store_le(value.data() + 48, 1, 8);
  value.insert(value.end(), payload.begin(), payload.end());
  packed_codec::fields fields;
  REQUIRE(packed_codec::parse(value, fields) == d::row_check::ok);
  CHECK_FALSE(fields.bitmap[0]);
  CHECK(std::memcmp(fields.data[0].data(), a.data(), 8) == 0);
  // And the new encoder with packing off writes exactly these bytes.
  auto batch = make_batch<float>({{0, 0x3F80'0000u}}, {"abc"}, {{2.5f}});
  std::vector<std::byte> unpacked;
  packed_codec::append_value(batch, 0, unpacked, false);
  CHECK(unpacked == value);
}

TEST_CASE("row_codec: truncated or garbled values with bitmaps are refused, trusted or not") {
  using d::row_check;
  const auto verify = d::row_checksum::verify, trust = d::row_checksum::trust;
  const auto good = packed_value();
  REQUIRE(parse_packed(good, verify) == row_check::ok);
  REQUIRE(parse_packed(packed_value(trust), trust) == row_check::ok);
  constexpr std::size_t header = d::row_header_bytes(3);

  for (std::size_t cut = 1; cut < good.size(); ++cut) {  // every truncation
    auto shorter = good;
    shorter.resize(good.size() - cut);
    CHECK(parse_packed(shorter, trust) != row_check::ok);
    set_payload_length(shorter);  // lengths made to agree: the column extents still do not
    if (shorter.size() >= header) set_crc(shorter);
    CHECK(parse_packed(shorter, trust) != row_check::ok);
    CHECK(parse_packed(shorter, verify) != row_check::ok);
  }
  auto with = [&](auto change) {
    auto value = good;
    change(value);
    set_crc(value);  // so that only the header's checks can refuse it
    return value;
  };
  // The bitmap mark cleared: "a" would be 9 raw floats, longer than the payload.
  auto unmarked = with([](auto& v) { set_extent_word(v, 0, 9); });
  CHECK(parse_packed(unmarked, trust) == row_check::bad_lengths);
  CHECK(parse_packed(unmarked, verify) == row_check::bad_lengths);
  // The mark on the bytes column (never a bitmap).
  auto bytes_marked = with([](auto& v) { set_extent_word(v, 1, 5 | d::row_extent_bitmap); });
  CHECK(parse_packed(bytes_marked, trust) == row_check::bad_lengths);
  // Columns marked, flag cleared (what a mix-up of layouts would give).
  auto no_flag = with([](auto& v) { d::store_le(v.data() + 20, 0, 4); });
  CHECK(parse_packed(no_flag, trust) == row_check::bad_magic);
  CHECK(parse_packed(no_flag, verify) == row_check::bad_magic);
  // Flag set on a value without bitmaps.
  auto raw_batch = make_batch<float>({{0x3F00'0000u /* 0.5f */}}, {"x"}, {{2.0f}});
  std::vector<std::byte> raw;
  packed_codec::append_value(raw_batch, 0, raw);
  REQUIRE(parse_packed(raw, verify) == row_check::ok);
  d::store_le(raw.data() + 20, d::row_flag_bitmaps, 4);
  CHECK(parse_packed(raw, trust) == row_check::bad_magic);
  // Unused bits of a bitmap's last byte set (a width 9 has 7 of them).
  for (unsigned bit = 1; bit < 8; ++bit) {
    auto padded = with([&](auto& v) { v[header + 1] |= static_cast<std::byte>(1u << bit); });
    CHECK(parse_packed(padded, trust) == row_check::bad_lengths);
    CHECK(parse_packed(padded, verify) == row_check::bad_lengths);
  }
  // A bitmap of no values; a bitmap longer than the payload; widths that do not match.
  CHECK(parse_packed(with([](auto& v) { set_extent_word(v, 0, d::row_extent_bitmap); }), trust) ==
        row_check::bad_lengths);
  CHECK(parse_packed(with([](auto& v) { set_extent_word(v, 0, ~std::uint64_t{0}); }), trust) ==
        row_check::bad_lengths);
  CHECK(parse_packed(with([](auto& v) { set_extent_word(v, 0, 17 | d::row_extent_bitmap); }),
                     trust) == row_check::bad_lengths);
  CHECK(parse_packed(with([](auto& v) { set_extent_word(v, 2, 13 | d::row_extent_bitmap); }),
                     trust) == row_check::bad_lengths);
  // The CRC32C is the documented one (set_crc recomputes the same bytes).
  CHECK(with([](auto&) {}) == good);
  // A width that still fits the bitmap's bytes (9 -> 15 values: 2 bytes, and
  // the unused bits are zero) is caught by the CRC32C over the extents.
  auto wider = good;
  set_extent_word(wider, 0, 15 | d::row_extent_bitmap);
  CHECK(parse_packed(wider, verify) == row_check::bad_checksum);
  // A flipped bit inside a bitmap: the CRC32C catches it where it is verified.
  auto flipped = good;
  flipped[header] ^= std::byte{0x04};
  CHECK(parse_packed(flipped, verify) == row_check::bad_checksum);
  // Every single bit flipped anywhere is refused when verified.
  for (std::size_t at = 0; at < good.size(); ++at) {
    for (unsigned bit = 0; bit < 8; ++bit) {
      auto value = good;
      value[at] ^= static_cast<std::byte>(1u << bit);
      CAPTURE(at);
      CAPTURE(bit);
      CHECK(parse_packed(value, verify) != row_check::ok);
    }
  }
}
