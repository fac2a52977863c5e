#include "convnextv2/util/fault_points.h"

#include <signal.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/string_view.h"

namespace convnextv2::util {
namespace fault_internal {
std::atomic<int> state{0};
}  // namespace fault_internal

namespace {

struct ErrnoRule {
  int64_t from = 0;
  bool onwards = false;
  int error = ENOSPC;
};

struct Config {
  std::map<std::string, std::vector<int64_t>> kill_at;  // name -> occurrences
  std::map<std::string, std::vector<int64_t>> stop_at;
  std::map<std::string, std::vector<ErrnoRule>> errno_at;
  bool delay = false;
  uint64_t delay_seed = 0;
  int64_t delay_max_us = 20000;
  bool trace = false;
  std::map<std::string, int64_t> counts;
  int64_t total = 0;
};

std::mutex& Mu() {
  static auto* mu = new std::mutex;
  return *mu;
}

Config& Cfg() {
  static auto* config = new Config;
  return *config;
}

[[noreturn]] void BadSpec(const char* variable, absl::string_view value, absl::string_view why) {
  const std::string text = absl::StrCat(variable, "=", value, ": ", why, "\n");
  (void)!write(STDERR_FILENO, text.data(), text.size());
  _exit(2);
}

int ErrnoByName(absl::string_view name) {
  if (name == "ENOSPC") return ENOSPC;
  if (name == "EIO") return EIO;
  if (name == "EDQUOT") return EDQUOT;
  if (name == "EROFS") return EROFS;
  return 0;
}

// NAME:N[+][:ERR] items, comma separated: errno rules into config, or occurrences into *at.
void Parse(const char* variable, bool errno_rules, Config* config,
           std::map<std::string, std::vector<int64_t>>* at) {
  const char* raw = std::getenv(variable);
  if (raw == nullptr || *raw == '\0') return;
  const absl::string_view value(raw);
  for (absl::string_view item : absl::StrSplit(value, ',', absl::SkipEmpty())) {
    std::vector<absl::string_view> parts = absl::StrSplit(item, ':');
    if (parts.size() < 2 || parts.size() > (errno_rules ? 3u : 2u) || parts[0].empty()) {
      BadSpec(variable, value,
              absl::StrCat("item '", item, "' is not ", errno_rules ? "NAME:N[+][:ERRNO]" : "NAME:N"));
    }
    absl::string_view n = parts[1];
    bool onwards = false;
    if (errno_rules && absl::ConsumeSuffix(&n, "+")) onwards = true;
    int64_t occurrence = 0;
    if (!absl::SimpleAtoi(n, &occurrence) || occurrence < 1) {
      BadSpec(variable, value,
              absl::StrCat("occurrence '", parts[1], "' of ", parts[0], " is not a count >= 1"));
    }
    const std::string name(parts[0]);
    if (!errno_rules) {
      (*at)[name].push_back(occurrence);
      continue;
    }
    ErrnoRule rule{occurrence, onwards, ENOSPC};
    if (parts.size() == 3) {
      rule.error = ErrnoByName(parts[2]);
      if (rule.error == 0) {
        BadSpec(variable, value,
                absl::StrCat("errno '", parts[2], "' is not one of ENOSPC, EIO, EDQUOT, EROFS"));
      }
    }
    config->errno_at[name].push_back(rule);
  }
}

void Load() {
  Config& c = Cfg();
  c = Config();
  Parse("CONVNEXTV2_FAULT", false, &c, &c.kill_at);
  Parse("CONVNEXTV2_FAULT_STOP", false, &c, &c.stop_at);
  Parse("CONVNEXTV2_FAULT_ERRNO", true, &c, nullptr);
  if (const char* seed = std::getenv("CONVNEXTV2_FAULT_DELAY_SEED"); seed && *seed) {
    if (!absl::SimpleAtoi(seed, &c.delay_seed)) {
      BadSpec("CONVNEXTV2_FAULT_DELAY_SEED", seed, "not a non-negative integer");
    }
    c.delay = true;
  }
  if (const char* max = std::getenv("CONVNEXTV2_FAULT_DELAY_MAX_US"); max && *max) {
    if (!absl::SimpleAtoi(max, &c.delay_max_us) || c.delay_max_us < 0) {
      BadSpec("CONVNEXTV2_FAULT_DELAY_MAX_US", max, "not a non-negative integer");
    }
  }
  if (const char* trace = std::getenv("CONVNEXTV2_FAULT_TRACE"); trace && *trace) {
    c.trace = absl::string_view(trace) != "0";
  }
  const bool any =
      !c.kill_at.empty() || !c.stop_at.empty() || !c.errno_at.empty() || c.delay || c.trace;
  fault_internal::state.store(any ? 2 : 1, std::memory_order_release);
}

// SplitMix64: a well-mixed 64-bit hash of (seed, name, occurrence).
uint64_t Mix(uint64_t x) {
  x += 0x9e3779b97f4a7c15ULL;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
  return x ^ (x >> 31);
}

uint64_t DelayUs(const Config& c, absl::string_view name, int64_t occurrence) {
  uint64_t h = Mix(c.delay_seed);
  for (char ch : name) h = Mix(h ^ static_cast<unsigned char>(ch));
  h = Mix(h ^ static_cast<uint64_t>(occurrence));
  return c.delay_max_us == 0 ? 0 : h % static_cast<uint64_t>(c.delay_max_us + 1);
}

[[noreturn]] void KillSelf(const char* name, int64_t occurrence) {
  const std::string text =
      absl::StrCat("fault point ", name, " #", occurrence, ": SIGKILL (CONVNEXTV2_FAULT)\n");
  (void)!write(STDERR_FILENO, text.data(), text.size());
  kill(getpid(), SIGKILL);
  _exit(137);  // not reached
}

// Freezes the whole process (every thread) until SIGCONT; a SIGKILL ends it there.
void StopSelf(const char* name, int64_t occurrence) {
  const std::string text = absl::StrCat("fault point ", name, " #", occurrence,
                                        ": SIGSTOP (CONVNEXTV2_FAULT_STOP)\n");
  (void)!write(STDERR_FILENO, text.data(), text.size());
  kill(getpid(), SIGSTOP);
}

bool Hit(const std::map<std::string, std::vector<int64_t>>& m, const std::string& key,
         int64_t n) {
  auto it = m.find(key);
  if (it == m.end()) return false;
  for (int64_t want : it->second) {
    if (want == n) return true;
  }
  return false;
}

}  // namespace

namespace fault_internal {

void Reach(const char* name, int* errno_out) {
  uint64_t sleep_us = 0;
  bool kill_now = false;
  bool stop_now = false;
  int64_t occurrence = 0;
  {
    std::lock_guard<std::mutex> lock(Mu());
    if (state.load(std::memory_order_acquire) == 0) Load();
    if (state.load(std::memory_order_relaxed) == 1) return;
    Config& c = Cfg();
    occurrence = ++c.counts[name];
    const int64_t total = ++c.total;
    if (c.trace) {
      const std::string text = absl::StrCat("fault point ", name, " #", occurrence, "\n");
      (void)!write(STDERR_FILENO, text.data(), text.size());
    }
    if (c.delay) sleep_us = DelayUs(c, name, occurrence);
    kill_now = Hit(c.kill_at, name, occurrence) || Hit(c.kill_at, "*", total);
    stop_now = Hit(c.stop_at, name, occurrence) || Hit(c.stop_at, "*", total);
    if (errno_out != nullptr) {
      if (auto it = c.errno_at.find(name); it != c.errno_at.end()) {
        for (const ErrnoRule& r : it->second) {
          if (occurrence == r.from || (r.onwards && occurrence > r.from)) *errno_out = r.error;
        }
      }
    }
  }
  if (sleep_us > 0) std::this_thread::sleep_for(std::chrono::microseconds(sleep_us));
  if (kill_now) KillSelf(name, occurrence);
  if (stop_now) StopSelf(name, occurrence);
}

}  // namespace fault_internal

void ReloadFaultConfig() {
  std::lock_guard<std::mutex> lock(Mu());
  Load();
}

int64_t FaultDelayMicros(const char* name, int64_t occurrence) {
  std::lock_guard<std::mutex> lock(Mu());
  if (fault_internal::state.load(std::memory_order_acquire) == 0) Load();
  return Cfg().delay ? static_cast<int64_t>(DelayUs(Cfg(), name, occurrence)) : 0;
}

int64_t FaultPointCount(const char* name) {
  std::lock_guard<std::mutex> lock(Mu());
  auto it = Cfg().counts.find(name);
  return it == Cfg().counts.end() ? 0 : it->second;
}

}  // namespace convnextv2::util
