#include "convnextv2/checkpoint/policy.h"

#include <algorithm>
#include <filesystem>
#include <regex>
#include <tuple>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "convnextv2/checkpoint/header_fields.h"

namespace convnextv2::checkpoint {
namespace {

namespace fs = std::filesystem;

struct Candidate {
  std::string path;
  int epoch = 0;      // from the name
  int64_t step = -1;  // from the name; -1 for an end-of-epoch file
};

// checkpoint-<epoch>.pth and checkpoint-<epoch>-step<s>.pth; temporary files of an interrupted
// save (<name>.tmp.<pid>) and checkpoint-best* never match.
std::vector<Candidate> ListCandidates(const std::string& dir) {
  static const std::regex kName(R"(checkpoint-(\d+)(-step(\d+))?\.pth)");
  std::vector<Candidate> out;
  std::error_code ec;
  for (fs::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec)) {
    const std::string name = it->path().filename().string();
    std::smatch m;
    if (!std::regex_match(name, m, kName)) continue;
    Candidate c;
    c.path = it->path().string();
    c.epoch = std::stoi(m[1].str());
    if (m[3].matched) c.step = std::stoll(m[3].str());
    out.push_back(c);
  }
  return out;
}

}  // namespace

std::string EpochPath(const std::string& dir, int epoch) {
  return absl::StrCat(dir, "/checkpoint-", epoch, ".pth");
}

std::string StepPath(const std::string& dir, int epoch, int64_t step) {
  return absl::StrCat(dir, "/checkpoint-", epoch, "-step", step, ".pth");
}

std::string BestPath(const std::string& dir, bool ema) {
  return absl::StrCat(dir, ema ? "/checkpoint-best-ema.pth" : "/checkpoint-best.pth");
}

absl::StatusOr<std::optional<Found>> FindNewestValid(const std::string& dir) {
  struct Ranked {
    std::tuple<int, int64_t, int64_t> key;  // (next_epoch, next_step, global_step)
    std::string path;
  };
  std::vector<Ranked> ranked;
  std::vector<std::string> skipped;
  for (const Candidate& c : ListCandidates(dir)) {
    absl::StatusOr<CheckpointHeader> h = ReadHeader(c.path);
    if (!h.ok()) {
      skipped.push_back(std::string(h.status().message()));
      continue;
    }
    absl::StatusOr<Kind> kind = KindOf(*h, c.path);
    if (!kind.ok()) {
      skipped.push_back(std::string(kind.status().message()));
      continue;
    }
    if (*kind != Kind::kTraining) {
      skipped.push_back(absl::StrCat(c.path, ": holds ", h->kind(), ", not a training state"));
      continue;
    }
    ranked.push_back({{h->next_epoch(), h->next_step(), h->global_step()}, c.path});
  }
  std::sort(ranked.begin(), ranked.end(),
            [](const Ranked& a, const Ranked& b) { return a.key > b.key; });
  for (const Ranked& r : ranked) {
    absl::StatusOr<Checkpoint> ckpt = ReadCheckpoint(r.path);
    if (ckpt.ok()) return Found{r.path, *std::move(ckpt), skipped};
    skipped.push_back(std::string(ckpt.status().message()));
  }
  if (skipped.empty()) return std::nullopt;
  return absl::DataLossError(absl::StrCat(
      "auto_resume: no valid checkpoint in ", dir, " (", skipped.size(),
      " candidates, all invalid): ", absl::StrJoin(skipped, "; "),
      ". Move them away to start from scratch, or set checkpoint.resume"));
}

std::vector<std::string> PruneEpochCheckpoints(const std::string& dir, int keep) {
  std::vector<Candidate> epochs;
  for (const Candidate& c : ListCandidates(dir)) {
    if (c.step < 0) epochs.push_back(c);
  }
  std::sort(epochs.begin(), epochs.end(),
            [](const Candidate& a, const Candidate& b) { return a.epoch > b.epoch; });
  std::vector<std::string> removed;
  for (size_t i = std::max(keep, 0); i < epochs.size(); ++i) {
    std::error_code ec;
    if (fs::remove(epochs[i].path, ec)) removed.push_back(epochs[i].path);
  }
  return removed;
}

std::vector<std::string> RemoveStepCheckpoints(const std::string& dir,
                                               const std::string& except) {
  std::vector<std::string> removed;
  for (const Candidate& c : ListCandidates(dir)) {
    if (c.step < 0 || c.path == except) continue;
    std::error_code ec;
    if (fs::remove(c.path, ec)) removed.push_back(c.path);
  }
  return removed;
}

}  // namespace convnextv2::checkpoint
