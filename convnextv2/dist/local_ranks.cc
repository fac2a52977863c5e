#include "convnextv2/dist/local_ranks.h"

#include <netinet/in.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <csignal>
#include <cstring>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "convnextv2/util/status_macros.h"

extern char** environ;

namespace convnextv2::dist {

absl::StatusOr<int> FreeLoopbackPort() {
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) return absl::InternalError(absl::StrCat("socket: ", std::strerror(errno)));
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = 0;
  socklen_t len = sizeof(addr);
  const bool ok = bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0 &&
                  getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) == 0;
  const int error = errno;
  close(fd);
  if (!ok) {
    return absl::InternalError(
        absl::StrCat("no free port on 127.0.0.1: ", std::strerror(error)));
  }
  return ntohs(addr.sin_port);
}

std::vector<std::string> CurrentEnvironment() {
  std::vector<std::string> env;
  for (char** e = environ; *e != nullptr; ++e) env.emplace_back(*e);
  return env;
}

absl::StatusOr<std::vector<pid_t>> SpawnLocalRanks(const std::vector<int>& ranks, int world,
                                                   const std::vector<std::string>& args,
                                                   const std::vector<std::string>& env) {
  absl::StatusOr<int> port = FreeLoopbackPort();
  CONVNEXTV2_RETURN_IF_ERROR(port);
  std::vector<pid_t> pids;
  for (int rank : ranks) {
    std::vector<std::string> rank_env = env;
    rank_env.push_back(absl::StrCat("RANK=", rank));
    rank_env.push_back(absl::StrCat("WORLD_SIZE=", world));
    rank_env.push_back("MASTER_ADDR=127.0.0.1");
    rank_env.push_back(absl::StrCat("MASTER_PORT=", *port));
    std::vector<char*> envp;
    for (std::string& e : rank_env) envp.push_back(e.data());
    envp.push_back(nullptr);
    std::vector<std::string> argv_strings = {"/proc/self/exe"};
    argv_strings.insert(argv_strings.end(), args.begin(), args.end());
    std::vector<char*> argv;
    for (std::string& a : argv_strings) argv.push_back(a.data());
    argv.push_back(nullptr);
    pid_t pid = 0;
    const int error =
        posix_spawn(&pid, "/proc/self/exe", nullptr, nullptr, argv.data(), envp.data());
    if (error != 0) {
      for (pid_t started : pids) {
        kill(started, SIGKILL);
        WaitExitStatus(started);
      }
      return absl::InternalError(absl::StrCat("cannot start rank ", rank, " of ", world,
                                              " (/proc/self/exe): ", std::strerror(error)));
    }
    pids.push_back(pid);
  }
  return pids;
}

int WaitExitStatus(pid_t pid) {
  int status = 0;
  if (waitpid(pid, &status, 0) != pid) return -1;
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

}  // namespace convnextv2::dist
