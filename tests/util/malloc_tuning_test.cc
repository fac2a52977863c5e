// RetainFreedMemory: a block freed and allocated again must not fault in fresh pages. Each case
// runs in a forked child, since mallopt settings last for the whole process.
#include "convnextv2/util/malloc_tuning.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <functional>

namespace convnextv2::util {
namespace {

using ::testing::HasSubstr;

// 48 MiB: above glibc's largest dynamic mmap threshold (32 MiB), so by default every allocation
// is a fresh mapping, as large activations are.
constexpr size_t kBlock = size_t{48} << 20;
constexpr long kPages = static_cast<long>(kBlock / 4096);

long MinorFaults() {
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  return usage.ru_minflt;
}

// Page faults of allocating, touching and freeing the block, after one warm-up round.
long FaultsOfReuse() {
  for (int round = 0; round < 2; ++round) {
    const long before = MinorFaults();
    char* p = static_cast<char*>(std::malloc(kBlock));
    if (p == nullptr) std::abort();
    std::memset(p, round + 1, kBlock);
    asm volatile("" : : "r"(p) : "memory");  // the compiler may not drop the block as unused
    const long faults = MinorFaults() - before;
    std::free(p);
    if (round == 1) return faults;
  }
  return -1;
}

// Runs `child` in a forked process; its return value is the exit status. Transparent huge pages
// are off there, so that a fresh mapping faults once per 4 KiB page, as small tensors do.
int InChild(const std::function<int()>& child) {
  const pid_t pid = fork();
  if (pid == 0) {
    if (prctl(PR_SET_THP_DISABLE, 1, 0, 0, 0) != 0) _exit(3);
    _exit(child());
  }
  int status = 0;
  waitpid(pid, &status, 0);
  return WIFEXITED(status) ? WEXITSTATUS(status) : 100;
}

TEST(RetainFreedMemory, ReallocatedBlockReusesItsPages) {
  EXPECT_EQ(InChild([] {
              const std::string what = RetainFreedMemory(true);
              if (what.find("retained") == std::string::npos) return 2;
              return FaultsOfReuse() < kPages / 10 ? 0 : 1;
            }),
            0);
}

// The control: without it the same pattern faults in every page again, so the test above
// measures what it claims to.
TEST(RetainFreedMemory, GlibcDefaultsFaultEveryPageAgain) {
  EXPECT_EQ(InChild([] {
              RetainFreedMemory(false);
              return FaultsOfReuse() > kPages / 2 ? 0 : 1;
            }),
            0);
}

TEST(RetainFreedMemory, LeavesUserTunablesAlone) {
  EXPECT_EQ(InChild([] {
              setenv("GLIBC_TUNABLES", "glibc.malloc.arena_max=2", 1);
              const std::string what = RetainFreedMemory(true);
              if (what.find("GLIBC_TUNABLES=glibc.malloc.arena_max=2") == std::string::npos) {
                return 2;
              }
              return FaultsOfReuse() > kPages / 2 ? 0 : 1;
            }),
            0);
}

TEST(RetainFreedMemory, DisabledSaysSo) {
  EXPECT_THAT(RetainFreedMemory(false), HasSubstr("glibc defaults"));
}

}  // namespace
}  // namespace convnextv2::util
