// Writes `count` DEA-like records (two names, a birthday, a 1024-bit filter
// string, a uid) to dir/train.tsv with a fixed seed, for the docs examples
// that need a small TSV of the attack's layout. Not part of the library.
#pragma once

#include <filesystem>
#include <fstream>
#include <random>
#include <string>

namespace docs_example {

inline std::filesystem::path write_records(const std::filesystem::path& dir, int count) {
  std::filesystem::create_directories(dir);
  auto path = dir / "train.tsv";
  std::ofstream out(path);
  std::mt19937 random(7);
  auto word = [&](int length) {
    std::string s;
    for (int i = 0; i < length; ++i) s += static_cast<char>('a' + random() % 26);
    return s;
  };
  out << "GivenName\tSurname\tBirthday\tbloomfilter\tuid\n";
  for (int r = 0; r < count; ++r) {
    std::string bits(1024, '0');
    for (auto& bit : bits) bit = random() % 4 == 0 ? '1' : '0';
    out << word(3 + static_cast<int>(random() % 6)) << '\t'
        << word(4 + static_cast<int>(random() % 6)) << '\t' << 1 + random() % 12 << '/'
        << 1 + random() % 28 << '/' << 1930 + random() % 70 << '\t' << bits << '\t' << r << '\n';
  }
  return path;
}

}  // namespace docs_example
