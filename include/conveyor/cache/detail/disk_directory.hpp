// conveyor/cache/detail/disk_directory.hpp: the disk tier's directory: created
// private (0700), owned by one process through flock, listed for segments.
//
// Why flock and not a pid file: the kernel drops an flock when its holder dies,
// also on kill -9, so a crashed trainer never leaves the directory locked.
#pragma once

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <string>
#include <system_error>
#include <vector>

#include "conveyor/cache/detail/disk_segment_format.hpp"

namespace conveyor::detail::disk_format {

/// Creates `directory` with mode 0700 when missing (parents with default
/// modes), then opens `<directory>/lock` and takes an exclusive, non-blocking
/// flock on it. Returns the lock's descriptor, or -1 with `reason` set.
inline int open_and_lock_directory(const std::filesystem::path& directory, std::string& reason) {
  auto with_errno = [](const std::string& what) { return what + ": " + std::strerror(errno); };
  std::error_code ignored;
  if (directory.has_parent_path())
    std::filesystem::create_directories(directory.parent_path(), ignored);
  if (::mkdir(directory.c_str(), 0700) == 0) {
    ::chmod(directory.c_str(), 0700);  // the umask may have removed bits
  } else if (errno != EEXIST) {
    reason = with_errno("cannot create the cache directory");
    return -1;
  }
  struct stat info {};
  if (::stat(directory.c_str(), &info) != 0 || !S_ISDIR(info.st_mode)) {
    reason = "the cache path exists and is not a directory";
    return -1;
  }
  auto lock_path = directory / "lock";
  int fd = ::open(lock_path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
  if (fd < 0) {
    reason = with_errno("cannot open the lock file " + lock_path.string());
    return -1;
  }
  if (::flock(fd, LOCK_EX | LOCK_NB) != 0) {
    reason = errno == EWOULDBLOCK ? "the cache directory is in use by another process (flock on " +
                                        lock_path.string() + ")"
                                  : with_errno("cannot lock " + lock_path.string());
    ::close(fd);
    return -1;
  }
  return fd;
}

/// The ids of the segment files in `directory`, ascending; false with `reason`
/// set when the directory cannot be listed.
inline bool list_segment_ids(const std::filesystem::path& directory,
                             std::vector<std::uint64_t>& ids, std::string& reason) {
  std::error_code ec;
  std::filesystem::directory_iterator entries(directory, ec);
  if (ec) {
    reason = "cannot list the cache directory: " + ec.message();
    return false;
  }
  for (const auto& entry : entries)
    if (auto id = parse_segment_file_name(entry.path().filename().string())) ids.push_back(*id);
  std::sort(ids.begin(), ids.end());
  return true;
}

}  // namespace conveyor::detail::disk_format
