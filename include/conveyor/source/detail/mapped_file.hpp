// conveyor/source/detail/mapped_file.hpp: a whole file mapped read-only with
// Boost.Interprocess, shared by the fixed-width record and .npy sources.
#pragma once

#include <boost/interprocess/exceptions.hpp>
#include <boost/interprocess/file_mapping.hpp>
#include <boost/interprocess/mapped_region.hpp>
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <span>
#include <string>
#include <system_error>

#include "conveyor/core/error.hpp"

namespace conveyor::detail {

// Owns the mapping; an empty file is valid and maps nothing (Boost refuses to
// map zero bytes, and an empty file is a legitimate zero-record source).
class mapped_file {
 public:
  explicit mapped_file(const std::filesystem::path& path) : name_(path.string()) {
    std::error_code code;
    auto status = std::filesystem::status(path, code);
    if (code || !std::filesystem::exists(status))
      throw io_error("cannot open: " + (code ? code.message() : std::string("no such file")), name_);
    if (!std::filesystem::is_regular_file(status)) throw io_error("not a regular file", name_);
    const auto size = std::filesystem::file_size(path, code);
    if (code) throw io_error("cannot stat: " + code.message(), name_);
    if (size == 0) return;
    try {
      mapping_ = boost::interprocess::file_mapping(name_.c_str(), boost::interprocess::read_only);
      region_ = boost::interprocess::mapped_region(mapping_, boost::interprocess::read_only, 0,
                                                   static_cast<std::size_t>(size));
    } catch (const boost::interprocess::interprocess_exception& failure) {
      throw io_error(std::string("cannot map: ") + failure.what(), name_);
    }
    bytes_ = std::span<const std::byte>(static_cast<const std::byte*>(region_.get_address()),
                                        region_.get_size());
  }

  mapped_file(mapped_file&&) noexcept = default;
  mapped_file& operator=(mapped_file&&) noexcept = default;

  [[nodiscard]] std::span<const std::byte> bytes() const noexcept { return bytes_; }
  [[nodiscard]] const std::string& name() const noexcept { return name_; }

 private:
  std::string name_;
  boost::interprocess::file_mapping mapping_;
  boost::interprocess::mapped_region region_;
  std::span<const std::byte> bytes_;
};

}  // namespace conveyor::detail
