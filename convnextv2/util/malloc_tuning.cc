#include "convnextv2/util/malloc_tuning.h"

#include <malloc.h>

#include <climits>
#include <cstdlib>
#include <cstring>

namespace convnextv2::util {

std::string RetainFreedMemory(bool enable) {
  if (!enable) return "malloc: glibc defaults kept (not asked to retain freed memory)";
  const char* tunables = std::getenv("GLIBC_TUNABLES");
  if (tunables != nullptr && std::strstr(tunables, "glibc.malloc.") != nullptr) {
    return std::string("malloc: left to GLIBC_TUNABLES=") + tunables;
  }
  // Both are needed: setting only the trim threshold also freezes glibc's dynamic mmap
  // threshold at 128 KiB, which maps (and faults) every activation afresh.
  const bool mmap_off = mallopt(M_MMAP_MAX, 0) == 1;
  const bool trim_off = mallopt(M_TRIM_THRESHOLD, INT_MAX) == 1;
  if (!mmap_off || !trim_off) {
    return std::string("malloc: mallopt refused ") +
           (mmap_off ? "M_TRIM_THRESHOLD=max" : trim_off ? "M_MMAP_MAX=0" : "both settings") +
           "; freed memory may go back to the kernel";
  }
  return "malloc: freed memory retained for reuse (M_MMAP_MAX=0, M_TRIM_THRESHOLD=max)";
}

}  // namespace convnextv2::util
