#ifndef CONVNEXTV2_UTIL_MALLOC_TUNING_H_
#define CONVNEXTV2_UTIL_MALLOC_TUNING_H_

#include <string>

namespace convnextv2::util {

// Makes glibc keep freed memory inside the process instead of handing it back to the kernel:
// no mmap for large blocks (M_MMAP_MAX = 0) and no trimming of the heap top (M_TRIM_THRESHOLD at
// its maximum). A training step frees and reallocates the same activation-sized blocks every
// iteration; with glibc's defaults each of those comes back as fresh pages that fault on first
// touch, which on a virtual machine cost more than the arithmetic (atto at 32 px: 279k page
// faults and 2.7x the time per step). Memory then stays at its peak, which a training process
// reaches every step anyway.
//
// Returns a line saying what was done, for the log. Does nothing (and says so) when `enable` is
// false or when GLIBC_TUNABLES already sets glibc.malloc parameters: the user took control.
std::string RetainFreedMemory(bool enable);

}  // namespace convnextv2::util

#endif  // CONVNEXTV2_UTIL_MALLOC_TUNING_H_
