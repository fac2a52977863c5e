// Test helper: prints "name dtype shape crc32" for every tensor of a checkpoint whose name
// starts with one of the given prefixes, so scripts can compare two runs' states exactly.
//   tensor_digest FILE [PREFIX...]
#include <zlib.h>

#include <cstdio>
#include <string>

#include "absl/strings/str_join.h"
#include "convnextv2/checkpoint/file.h"

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr, "usage: %s FILE [PREFIX...]\n", argv[0]);
    return 2;
  }
  absl::StatusOr<convnextv2::checkpoint::Checkpoint> c =
      convnextv2::checkpoint::ReadCheckpoint(argv[1]);
  if (!c.ok()) {
    std::fprintf(stderr, "%s\n", std::string(c.status().message()).c_str());
    return 1;
  }
  for (const auto& [name, t] : c->tensors) {
    bool wanted = argc == 2;
    for (int i = 2; i < argc; ++i) wanted |= name.rfind(argv[i], 0) == 0;
    if (!wanted) continue;
    const at::Tensor x = t.contiguous();
    const uLong crc = crc32(0L, static_cast<const Bytef*>(x.data_ptr()),
                            static_cast<uInt>(x.numel() * x.element_size()));
    std::printf("%s %s [%s] %08lx\n", name.c_str(), std::string(c10::toString(x.scalar_type())).c_str(),
                absl::StrJoin(x.sizes(), ",").c_str(), crc);
  }
  std::printf("global_step %lld next_epoch %d next_step %lld\n",
              static_cast<long long>(c->header.global_step()), c->header.next_epoch(),
              static_cast<long long>(c->header.next_step()));
  return 0;
}
