// The dataset extension attack's label preprocessing written the way the
// original does it (string building, a linear search of the alphabet per
// gram): the baseline that two-gram and DEA benchmarks measure against.
#pragma once

#include <algorithm>
#include <cctype>
#include <string>
#include <vector>

namespace conveyor::bench {

/// The 1036 grams as strings, in label order (aa..zz, a0..z9, 00..99).
inline std::vector<std::string> naive_dea_alphabet() {
  std::vector<std::string> grams;
  for (char a = 'a'; a <= 'z'; ++a)
    for (char b = 'a'; b <= 'z'; ++b) grams.push_back({a, b});
  for (char a = 'a'; a <= 'z'; ++a)
    for (char d = '0'; d <= '9'; ++d) grams.push_back({a, d});
  for (char a = '0'; a <= '9'; ++a)
    for (char b = '0'; b <= '9'; ++b) grams.push_back({a, b});
  return grams;
}

/// The multi-hot label of already-concatenated label text, as the original
/// builds it: delete `"` `.` `/`, strip, lowercase, pairs without a space,
/// each looked up with a linear search. ASCII only, like the benchmark data.
inline std::vector<float> naive_dea_label(std::string text, const std::vector<std::string>& alphabet) {
  text.erase(std::remove_if(text.begin(), text.end(), [](char c) { return c == '"' || c == '.' || c == '/'; }),
             text.end());
  const auto not_space = [](unsigned char c) { return !std::isspace(c); };
  text.erase(text.begin(), std::find_if(text.begin(), text.end(), not_space));
  text.erase(std::find_if(text.rbegin(), text.rend(), not_space).base(), text.end());
  for (auto& c : text) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  std::vector<float> label(alphabet.size(), 0.0f);
  for (std::size_t i = 0; i + 1 < text.size(); ++i) {
    const std::string pair = text.substr(i, 2);
    if (pair.find(' ') != std::string::npos) continue;
    const auto found = std::find(alphabet.begin(), alphabet.end(), pair);
    if (found != alphabet.end()) label[static_cast<std::size_t>(found - alphabet.begin())] = 1.0f;
  }
  return label;
}

}  // namespace conveyor::bench
