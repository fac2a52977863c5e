// Damaged checkpoint files: truncations at many offsets and random bit flips of a checkpoint
// written through the public write API and of a PyTorch .pth zip (torch.save by python3-torch).
// Each must be refused with an error naming the file, or load exactly what was saved (a flipped
// bit in a field nothing reads); never a crash, a hang or different tensors.
#include <ATen/ATen.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <random>
#include <string>

#include "absl/strings/str_cat.h"
#include "convnextv2/checkpoint/file.h"
#include "convnextv2/checkpoint/torch_zip.h"
#include "convnextv2/util/files.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace convnextv2::checkpoint {
namespace {

using ::testing::HasSubstr;

std::string TempDir(const std::string& name) {
  const std::string dir = absl::StrCat(std::getenv("TEST_TMPDIR"), "/", name);
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  return dir;
}

void Write(const std::string& path, const std::string& bytes) {
  std::ofstream(path, std::ios::binary | std::ios::trunc) << bytes;
}

// Offsets to cut at: every byte of the first 64 and the last 64, and ~150 spread between.
std::vector<size_t> CutOffsets(size_t size) {
  std::vector<size_t> cuts;
  for (size_t i = 0; i < size; ++i) {
    if (i < 64 || i + 64 >= size || i % std::max<size_t>(1, size / 150) == 0) cuts.push_back(i);
  }
  return cuts;
}

// A flipped copy: 1 to 3 random bits.
std::string Flip(const std::string& bytes, std::mt19937* rng, std::string* where) {
  std::string out = bytes;
  const int n = std::uniform_int_distribution<int>(1, 3)(*rng);
  for (int i = 0; i < n; ++i) {
    const size_t at = std::uniform_int_distribution<size_t>(0, out.size() - 1)(*rng);
    const int bit = std::uniform_int_distribution<int>(0, 7)(*rng);
    out[at] = static_cast<char>(out[at] ^ (1 << bit));
    absl::StrAppend(where, i ? "," : "", at, ":", bit);
  }
  return out;
}

double SecondsSince(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

TEST(CheckpointFuzzTest, DamagedCheckpointsAreRefusedNamingTheFile) {
  const std::string dir = TempDir("native");
  Checkpoint ckpt;
  ckpt.header.set_model("convnextv2_atto");
  ckpt.Add("model.head.weight", at::arange(12, at::kFloat).reshape({3, 4}));
  ckpt.Add("model.head.bias", at::arange(3, at::kLong));
  ckpt.Add("optimizer.state.0.exp_avg", at::linspace(0, 1, 300, at::kDouble));
  const std::string original = dir + "/checkpoint-1.pth";
  ASSERT_TRUE(WriteCheckpoint(original, ckpt).ok());
  const std::string bytes = *util::ReadFile(original);
  const std::string path = dir + "/damaged.pth";
  int tried = 0;
  const auto t0 = std::chrono::steady_clock::now();
  for (size_t cut : CutOffsets(bytes.size())) {
    Write(path, bytes.substr(0, cut));
    absl::StatusOr<Checkpoint> back = ReadCheckpoint(path);
    ASSERT_FALSE(back.ok()) << "truncated to " << cut << " of " << bytes.size() << " bytes";
    EXPECT_THAT(std::string(back.status().message()), HasSubstr(path)) << "cut " << cut;
    ++tried;
  }
  // A checkpoint is a zip: bits the reader never uses (the local headers' times, the alignment
  // padding of their extra fields) may flip harmlessly. Every other flip is refused, caught by
  // the records' CRC-32s; so a flipped file is refused naming it, or loads exactly what was saved.
  const absl::StatusOr<Checkpoint> expected = ReadCheckpoint(original);
  ASSERT_TRUE(expected.ok()) << expected.status();
  std::mt19937 rng(17);
  int refused = 0;
  for (int i = 0; i < 400; ++i) {
    std::string where;
    Write(path, Flip(bytes, &rng, &where));
    absl::StatusOr<Checkpoint> back = ReadCheckpoint(path);
    ++tried;
    if (!back.ok()) {
      EXPECT_THAT(std::string(back.status().message()), HasSubstr(path)) << where;
      ++refused;
      continue;
    }
    EXPECT_EQ(back->header.SerializeAsString(), expected->header.SerializeAsString())
        << "bits flipped at " << where << " changed the header silently";
    ASSERT_EQ(back->tensors.size(), expected->tensors.size()) << where;
    for (const auto& [name, tensor] : expected->tensors) {
      const at::Tensor* t = back->Find(name);
      ASSERT_NE(t, nullptr) << name << " lost silently, bits flipped at " << where;
      EXPECT_TRUE(t->scalar_type() == tensor.scalar_type() && t->sizes().equals(tensor.sizes()) &&
                  t->equal(tensor))
          << name << " changed silently, bits flipped at " << where;
    }
  }
  EXPECT_GT(refused, 200) << "most flips land in checked bytes";
  std::printf("%d damaged checkpoints tried in %.2f s: every truncation and %d of 400 bit flips "
              "refused, the other flips loaded unchanged\n",
              tried, SecondsSince(t0), refused);
}

// torch.save of {'model': OrderedDict, 'epoch': 3} and of a bare state dict, by python3-torch;
// made once for both tests below (starting python3 with torch takes seconds).
std::string MakeTorchFile(const std::string& dir) {
  static const std::string* const made = new std::string([] {
    const std::string path = TempDir("torch_fixture") + "/official.pth";
    const std::string cmd = absl::StrCat(
        "/usr/bin/python3 -c '"
        "import collections, torch\n"
        "m = collections.OrderedDict()\n"
        "m[\"head.weight\"] = torch.arange(12, dtype=torch.float32).reshape(3, 4)\n"
        "m[\"head.bias\"] = torch.arange(3, dtype=torch.int64)\n"
        "m[\"stages.0.0.grn.gamma\"] = torch.linspace(0, 1, 300, dtype=torch.float64)\n"
        "torch.save({\"model\": m, \"epoch\": 3}, \"",
        path, "\")'");
    return std::system(cmd.c_str()) == 0 ? path : std::string();
  }());
  if (made->empty()) return "";
  // A copy in the test's own directory, which it may write next to.
  const std::string path = dir + "/official.pth";
  std::error_code error;
  std::filesystem::copy_file(*made, path, std::filesystem::copy_options::overwrite_existing,
                             error);
  return error ? "" : path;
}

bool SameTensors(const TorchZipDict& a, const TorchZipDict& b) {
  if (a.keys != b.keys || a.dicts.size() != b.dicts.size()) return false;
  for (const auto& [key, dict] : a.dicts) {
    auto it = b.dicts.find(key);
    if (it == b.dicts.end() || it->second.size() != dict.size()) return false;
    for (const auto& [name, t] : dict) {
      auto jt = it->second.find(name);
      if (jt == it->second.end() || t.scalar_type() != jt->second.scalar_type() ||
          !t.sizes().equals(jt->second.sizes()) || !t.equal(jt->second)) {
        return false;
      }
    }
  }
  return true;
}

TEST(CheckpointFuzzTest, TruncatedPytorchFilesAreRefusedNamingTheFile) {
  const std::string dir = TempDir("torch_cut");
  const std::string original = MakeTorchFile(dir);
  ASSERT_FALSE(original.empty()) << "python3-torch could not write the fixture";
  const std::string bytes = *util::ReadFile(original);
  const std::string path = dir + "/damaged.pth";
  int tried = 0;
  for (size_t cut : CutOffsets(bytes.size())) {
    Write(path, bytes.substr(0, cut));
    absl::StatusOr<TorchZipDict> back = ReadTorchZip(path);
    ASSERT_FALSE(back.ok()) << "truncated to " << cut << " of " << bytes.size() << " bytes";
    EXPECT_THAT(std::string(back.status().message()), HasSubstr(path)) << "cut " << cut;
    ++tried;
  }
  std::printf("%d truncated .pth files refused\n", tried);
}

// Needs the zip records' CRC-32s checked on read (issue 17): without that, a bit flipped in
// tensor data loads silently as a different tensor.
TEST(CheckpointFuzzTest, BitFlippedPytorchFilesAreRefusedOrLoadExactly) {
  const std::string dir = TempDir("torch_flip");
  const std::string original = MakeTorchFile(dir);
  ASSERT_FALSE(original.empty()) << "python3-torch could not write the fixture";
  absl::StatusOr<TorchZipDict> want = ReadTorchZip(original);
  ASSERT_TRUE(want.ok()) << want.status();
  const std::string bytes = *util::ReadFile(original);
  const std::string path = dir + "/damaged.pth";
  std::mt19937 rng(23);
  int refused = 0, same = 0;
  for (int i = 0; i < 400; ++i) {
    std::string where;
    Write(path, Flip(bytes, &rng, &where));
    absl::StatusOr<TorchZipDict> back = ReadTorchZip(path);
    if (!back.ok()) {
      EXPECT_THAT(std::string(back.status().message()), HasSubstr(path)) << where;
      ++refused;
      continue;
    }
    ASSERT_TRUE(SameTensors(*want, *back)) << "bits flipped at " << where
                                           << " load as different tensors, silently";
    ++same;
  }
  std::printf("400 bit-flipped .pth files: %d refused, %d loaded unchanged\n", refused, same);
}

}  // namespace
}  // namespace convnextv2::checkpoint
