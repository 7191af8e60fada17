// A temporary directory for tests: created empty under the system temp
// directory with a unique name, removed with everything in it on destruction.
//
//   conveyor::test::temp_dir dir("disk");          // /tmp/conveyor-disk-Ab12Cd
//   disk_tier tier(dir.path() / "cache");
//   auto tsv = dir.file("rows.tsv", "id\ttext\n");  // written, its path returned
#pragma once

#include <stdlib.h>  // mkdtemp (POSIX)

#include <filesystem>
#include <fstream>
#include <stdexcept>
#include <string>
#include <string_view>
#include <system_error>
#include <utility>

namespace conveyor::test {

class temp_dir {
 public:
  /// Creates `<temp_directory_path()>/conveyor-<tag>-XXXXXX` (mode 0700, a
  /// fresh name even across processes and concurrent test runs). Throws
  /// std::runtime_error when the directory cannot be created.
  explicit temp_dir(std::string_view tag = "test") {
    std::string pattern =
        (std::filesystem::temp_directory_path() / ("conveyor-" + std::string(tag) + "-XXXXXX"))
            .string();
    if (::mkdtemp(pattern.data()) == nullptr)
      throw std::runtime_error("temp_dir: mkdtemp failed for " + pattern);
    path_ = std::move(pattern);
  }

  temp_dir(const temp_dir&) = delete;
  temp_dir& operator=(const temp_dir&) = delete;
  temp_dir(temp_dir&& other) noexcept : path_(std::exchange(other.path_, {})) {}
  temp_dir& operator=(temp_dir&& other) noexcept {
    if (this != &other) {
      remove();
      path_ = std::exchange(other.path_, {});
    }
    return *this;
  }

  /// Removes the directory and its contents. A test may have taken the owner's
  /// permissions away (to provoke an error); they are restored first. Errors
  /// are ignored: a leftover directory must not fail a test.
  ~temp_dir() { remove(); }

  [[nodiscard]] const std::filesystem::path& path() const noexcept { return path_; }

  /// The path of `name` inside the directory (nothing is created).
  [[nodiscard]] std::filesystem::path file(std::string_view name) const { return path_ / name; }

  /// Writes `contents` (bytes, as is) to `name` inside the directory, replacing
  /// any file of that name, and returns its path.
  std::filesystem::path file(std::string_view name, std::string_view contents) const {
    auto where = file(name);
    std::ofstream out(where, std::ios::binary | std::ios::trunc);
    out.write(contents.data(), static_cast<std::streamsize>(contents.size()));
    if (!out) throw std::runtime_error("temp_dir: cannot write " + where.string());
    return where;
  }

 private:
  void remove() noexcept {
    if (path_.empty()) return;
    std::error_code ignored;
    std::filesystem::permissions(path_, std::filesystem::perms::owner_all,
                                 std::filesystem::perm_options::add, ignored);
    std::filesystem::remove_all(path_, ignored);
    path_.clear();
  }

  std::filesystem::path path_;
};

}  // namespace conveyor::test
