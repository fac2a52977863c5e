#include "convnextv2/util/files.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "convnextv2/util/fault_points.h"

namespace convnextv2::util {
namespace {

absl::Status ErrnoError(absl::string_view what, const std::string& path) {
  return absl::InternalError(absl::StrCat(what, " ", path, ": ", std::strerror(errno)));
}

// A failed write of `path` through its temporary file `tmp`: says that `path` was left as it was.
absl::Status WriteError(absl::string_view what, const std::string& path, const std::string& tmp) {
  const int e = errno;
  unlink(tmp.c_str());
  return absl::InternalError(absl::StrCat(what, " ", path, ": ", std::strerror(e), " (writing ",
                                          tmp, "; ", path, " is unchanged)"));
}

// Removes `path`.tmp.PID files whose writer is gone (a process killed between creating its
// temporary file and the rename): they are never read, so only the directory's tidiness is at
// stake, but a run killed many times would otherwise collect one per kill.
void RemoveDeadWritersTemporaries(const std::filesystem::path& target) {
  const std::string prefix = target.filename().string() + ".tmp.";
  const std::filesystem::path dir = target.has_parent_path() ? target.parent_path() : ".";
  std::error_code ec;
  for (const auto& entry : std::filesystem::directory_iterator(dir, ec)) {
    const std::string name = entry.path().filename().string();
    if (name.size() <= prefix.size() || name.compare(0, prefix.size(), prefix) != 0) continue;
    int pid = 0;
    if (!absl::SimpleAtoi(absl::string_view(name).substr(prefix.size()), &pid) || pid <= 0 ||
        pid == getpid()) {
      continue;
    }
    if (kill(pid, 0) != 0 && errno == ESRCH) std::filesystem::remove(entry.path(), ec);
  }
}

}  // namespace

absl::Status MakeDirs(const std::string& dir) {
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec) {
    return absl::PermissionDeniedError(
        absl::StrCat("cannot create directory ", dir, ": ", ec.message()));
  }
  return absl::OkStatus();
}

absl::Status WriteFileAtomically(const std::string& path, absl::string_view contents) {
  const std::filesystem::path target(path);
  const std::string tmp = absl::StrCat(path, ".tmp.", getpid());
  const int fd = open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) return ErrnoError("cannot create", tmp);
  size_t done = 0;
  const int injected = FaultWriteErrno("atomic_write");
  while (done < contents.size() || injected != 0) {
    ssize_t w = -1;
    if (injected != 0) {
      errno = injected;
    } else {
      w = write(fd, contents.data() + done, contents.size() - done);
    }
    if (w < 0) {
      if (errno == EINTR) continue;
      const int e = errno;
      close(fd);
      errno = e;
      return WriteError("cannot write", path, tmp);
    }
    done += static_cast<size_t>(w);
  }
  if (fsync(fd) != 0) {
    const int e = errno;
    close(fd);
    errno = e;
    return WriteError("cannot flush", path, tmp);
  }
  if (close(fd) != 0) return WriteError("cannot flush", path, tmp);
  FaultPoint("atomic_rename");
  if (rename(tmp.c_str(), path.c_str()) != 0) return WriteError("cannot rename onto", path, tmp);
  const std::string dir = target.has_parent_path() ? target.parent_path().string() : ".";
  const int dfd = open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd >= 0) {
    fsync(dfd);
    close(dfd);
  }
  RemoveDeadWritersTemporaries(target);
  return absl::OkStatus();
}

// One write(2) of the whole line (O_APPEND: never interleaved, never half a line short of a
// crash that kills only the process), then fsync, so that a checkpoint written after it never
// outlives the row on a power failure.
absl::Status AppendLine(const std::string& path, absl::string_view line) {
  const int fd = ::open(path.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
  if (fd < 0) return ErrnoError("cannot open for appending", path);
  const std::string data = absl::StrCat(line, "\n");
  size_t done = 0;
  while (done < data.size()) {
    const ssize_t n = ::write(fd, data.data() + done, data.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      absl::Status error = ErrnoError("cannot append to", path);
      ::close(fd);
      return error;
    }
    done += static_cast<size_t>(n);
  }
  if (::fsync(fd) != 0) {
    absl::Status error = ErrnoError("cannot sync", path);
    ::close(fd);
    return error;
  }
  if (::close(fd) != 0) return ErrnoError("cannot close", path);
  return absl::OkStatus();
}

absl::StatusOr<std::string> ReadFile(const std::string& path) {
  // One open, one fstat and reads straight into a string of the file's size (no stream buffers:
  // the loader reads every image through here).
  const int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    if (errno == ENOENT || errno == ENOTDIR) {
      return absl::NotFoundError(absl::StrCat("cannot read ", path, ": no such file"));
    }
    if (errno == EACCES) {
      return absl::NotFoundError(absl::StrCat("cannot read ", path, ": permission denied"));
    }
    return ErrnoError("cannot read", path);
  }
  struct stat st;
  if (fstat(fd, &st) != 0) {
    const absl::Status status = ErrnoError("cannot stat", path);
    close(fd);
    return status;
  }
  if (S_ISDIR(st.st_mode)) {
    close(fd);
    return absl::FailedPreconditionError(absl::StrCat("cannot read ", path, ": a directory"));
  }
  // The size fstat gave, then whatever is still there (a file that grew, or not a regular file).
  std::string data(S_ISREG(st.st_mode) ? static_cast<size_t>(st.st_size) : 0, '\0');
  size_t used = 0;
  char more[4096];
  while (true) {
    const bool into_data = used < data.size();
    const ssize_t got = into_data ? read(fd, data.data() + used, data.size() - used)
                                  : read(fd, more, sizeof more);
    if (got < 0 && errno == EINTR) continue;
    if (got < 0) {
      const absl::Status status = ErrnoError("cannot read", path);
      close(fd);
      return status;
    }
    if (got == 0) break;
    if (into_data) {
      used += static_cast<size_t>(got);
    } else {
      data.append(more, static_cast<size_t>(got));  // used == data.size() here
      used = data.size();
    }
  }
  close(fd);
  data.resize(used);
  return data;
}

}  // namespace convnextv2::util
