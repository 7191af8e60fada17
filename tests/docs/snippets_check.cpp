// docs_snippets: every C++ code block in README.md and docs/ is an excerpt of a
// file the build compiles, so no snippet can rot.
//
//   docs_snippets_check <source dir> <compiled-files list>
//
// A block fenced with ```cpp (or c++, cu, cuda) passes when its lines appear,
// in order and contiguous, in one of the files the list names: sources of the
// build's targets (examples, tests, benchmarks) and the compile-fail cases
// (which their tests compile, expecting the error they show). Blank lines and
// trailing spaces must match too; the block may be indented less than the file
// (uniformly). A line that is only `// ...` stands for lines left out: the
// parts between such lines must appear in that order. The list's lines are
// `compiled <path>`, or `skipped <path> <reason>` for an example this
// configuration does not build (a component not found): a block found only
// there passes with a note. A block found nowhere
// fails, with its page and line, unless tests/docs/snippets_pending.txt lists
// it (`page<TAB>first line of the block`): blocks written before this check,
// on pages still being converted, reported on every run until they are
// excerpts. The convention is documented in docs/README.md.
#include <algorithm>
#include <cstddef>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <set>
#include <sstream>
#include <string>
#include <vector>

namespace fs = std::filesystem;

namespace {

struct code_block {
  fs::path page;
  std::size_t line = 0;  // 1-based line of the opening fence
  std::vector<std::string> lines;
};

std::string trim_right(std::string s) {
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\r')) s.pop_back();
  return s;
}

std::size_t indentation(const std::string& s) {
  return s.find_first_not_of(' ');
}

std::vector<std::string> read_lines(const fs::path& path) {
  std::ifstream in(path);
  std::vector<std::string> lines;
  for (std::string line; std::getline(in, line);) lines.push_back(trim_right(line));
  return lines;
}

bool is_cpp_fence(const std::string& info) {
  std::string lang = info.substr(0, info.find_first_of(" \t{"));
  return lang == "cpp" || lang == "c++" || lang == "cxx" || lang == "cu" || lang == "cuda";
}

// Fenced blocks of a Markdown page whose language is C++ (or CUDA C++), with
// blank lines at either end dropped and the common indentation removed.
std::vector<code_block> cpp_blocks(const fs::path& page) {
  std::vector<code_block> blocks;
  auto lines = read_lines(page);
  for (std::size_t i = 0; i < lines.size(); ++i) {
    std::size_t indent = lines[i].find_first_not_of(' ');
    if (indent == std::string::npos || lines[i].compare(indent, 3, "```") != 0) continue;
    std::string fence = lines[i].substr(indent, lines[i].find_first_not_of('`', indent) - indent);
    bool cpp = is_cpp_fence(lines[i].substr(indent + fence.size()));
    code_block block{page, i + 1, {}};
    for (++i; i < lines.size(); ++i) {
      std::size_t at = lines[i].find_first_not_of(' ');
      if (at != std::string::npos && lines[i].compare(at, fence.size(), fence) == 0 &&
          lines[i].find_first_not_of('`', at) == std::string::npos)
        break;
      block.lines.push_back(lines[i]);
    }
    if (!cpp) continue;
    while (!block.lines.empty() && block.lines.back().empty()) block.lines.pop_back();
    while (!block.lines.empty() && block.lines.front().empty())
      block.lines.erase(block.lines.begin());
    std::size_t common = std::string::npos;
    for (const auto& l : block.lines)
      if (!l.empty()) common = std::min(common, indentation(l));
    if (common != std::string::npos && common > 0)
      for (auto& l : block.lines)
        if (!l.empty()) l.erase(0, common);
    if (!block.lines.empty()) blocks.push_back(std::move(block));
  }
  return blocks;
}

// The line of `file` at or after `from` where `segment` starts, every line
// indented by the same extra amount; npos if none.
std::size_t find_segment(const std::vector<std::string>& file,
                         const std::vector<std::string>& segment, std::size_t from) {
  if (segment.empty()) return from;
  std::size_t first_indent = indentation(segment[0]);
  for (std::size_t start = from; start + segment.size() <= file.size(); ++start) {
    std::size_t at = indentation(file[start]);
    if (at == std::string::npos || at < first_indent) continue;
    std::string pad(at - first_indent, ' ');
    bool match = true;
    for (std::size_t j = 0; j < segment.size() && match; ++j) {
      const std::string& want = segment[j];
      const std::string& have = file[start + j];
      match = want.empty() ? have.empty() : have == pad + want;
    }
    if (match) return start;
  }
  return std::string::npos;
}

// Whether `block` appears in `file`: its segments (the parts between lines that
// are only `// ...`, which stand for lines left out) in order, each contiguous.
bool contains(const std::vector<std::string>& file, const std::vector<std::string>& block) {
  std::vector<std::vector<std::string>> segments(1);
  for (const auto& line : block) {
    std::size_t at = indentation(line);
    if (at != std::string::npos && line.compare(at, std::string::npos, "// ...") == 0)
      segments.emplace_back();
    else
      segments.back().push_back(line);
  }
  std::size_t from = 0;
  for (auto& segment : segments) {
    while (!segment.empty() && segment.back().empty()) segment.pop_back();
    while (!segment.empty() && segment.front().empty()) segment.erase(segment.begin());
    std::size_t at = find_segment(file, segment, from);
    if (at == std::string::npos) return false;
    from = at + segment.size();
  }
  return true;
}

struct candidate {
  fs::path path;
  bool compiled = false;
  std::string reason;  // why it is not compiled in this configuration
  std::vector<std::string> lines;
};

}  // namespace

int main(int argc, char** argv) {
  if (argc != 3) {
    std::cerr << "usage: docs_snippets_check <source dir> <compiled-files list>\n";
    return 2;
  }
  const fs::path root = argv[1];
  std::map<fs::path, candidate> files;
  {
    std::ifstream list(argv[2]);
    if (!list) {
      std::cerr << "docs_snippets: cannot read " << argv[2] << '\n';
      return 2;
    }
    for (std::string line; std::getline(list, line);) {
      std::istringstream fields(line);
      std::string kind, path;
      fields >> kind >> path;
      if (path.empty()) continue;
      fs::path file = fs::weakly_canonical(path);
      auto& c = files[file];
      c.path = file;
      if (kind == "compiled") {
        c.compiled = true;
      } else if (!c.compiled) {
        std::getline(fields >> std::ws, c.reason);
      }
    }
  }
  for (auto& [path, c] : files) c.lines = read_lines(path);

  // Every page: README.md and docs/**/*.md.
  std::vector<fs::path> pages{root / "README.md"};
  for (const auto& entry : fs::recursive_directory_iterator(root / "docs"))
    if (entry.is_regular_file() && entry.path().extension() == ".md") pages.push_back(entry.path());
  std::sort(pages.begin() + 1, pages.end());

  // An example in examples/docs/ that the build neither compiles nor lists as
  // skipped would let the snippets quoting it rot unnoticed.
  int failures = 0;
  for (const auto& entry : fs::directory_iterator(root / "examples" / "docs")) {
    auto ext = entry.path().extension();
    if (ext != ".cpp" && ext != ".cu") continue;
    if (!files.contains(fs::weakly_canonical(entry.path()))) {
      std::cout
          << "FAIL " << fs::relative(entry.path(), root).string()
          << ": not built by examples/docs/*.cmake (register it with conveyor_docs_example, or as "
             "skipped with the reason)\n";
      ++failures;
    }
  }

  // Blocks not converted yet: (page, first line).
  std::set<std::pair<std::string, std::string>> pending;
  {
    std::ifstream list(root / "tests" / "docs" / "snippets_pending.txt");
    for (std::string line; std::getline(list, line);) {
      line = trim_right(line);
      auto tab = line.find('\t');
      if (line.empty() || line[0] == '#' || tab == std::string::npos) continue;
      pending.emplace(line.substr(0, tab), line.substr(tab + 1));
    }
  }
  auto pending_left = pending;

  int blocks = 0, skipped = 0, not_converted = 0;
  for (const auto& page : pages) {
    for (const auto& block : cpp_blocks(page)) {
      ++blocks;
      const candidate* found = nullptr;
      for (const auto& [path, c] : files) {
        if (!contains(c.lines, block.lines)) continue;
        if (!found || (c.compiled && !found->compiled)) found = &c;
        if (found->compiled) break;
      }
      std::string page_name = fs::relative(page, root).string();
      std::string where = page_name + ":" + std::to_string(block.line);
      bool is_pending = pending.contains({page_name, block.lines.front()});
      pending_left.erase({page_name, block.lines.front()});
      if (!found && is_pending) {
        ++not_converted;
        std::cout
            << "pending " << where << ": `" << block.lines.front()
            << "` is not an excerpt of a compiled file yet (tests/docs/snippets_pending.txt)\n";
      } else if (!found) {
        ++failures;
        std::cout << "FAIL " << where << ": the ```cpp block starting `" << block.lines.front()
                  << "` is in no compiled file. Put it, verbatim, in a file under examples/ that "
                     "the build compiles (examples/docs/*.cpp), or fence it as text.\n";
      } else if (is_pending) {
        std::cout << "note " << where << ": is an excerpt now; remove its line from "
                  << "tests/docs/snippets_pending.txt\n";
      } else if (!found->compiled) {
        ++skipped;
        std::cout << "note " << where << ": in " << fs::relative(found->path, root).string()
                  << ", not compiled in this configuration (" << found->reason << ")\n";
      }
    }
  }
  for (const auto& [page, first] : pending_left)
    std::cout << "note tests/docs/snippets_pending.txt: no block of " << page << " starts `"
              << first << "` any more; remove the line\n";
  std::cout << "docs_snippets: " << blocks << " C++ blocks in " << pages.size() << " pages, "
            << failures << " failed, " << not_converted << " pending, " << skipped
            << " in files this configuration does not compile\n";
  return failures == 0 ? 0 : 1;
}
