// Pictures of what FCMAE learned: a PNG with one row per image and four columns, the original,
// the masked input (removed patches gray), the reconstruction, and the reconstruction with the
// visible patches pasted back.
//
//   at::Tensor grid = ReconstructionGrid(images, out.pred, out.mask, {.patch_size = 32,
//                                        .norm_pix_loss = true, .mean = m, .std = s});
//   absl::Status st = WritePng(grid, "/run/reconstruction-0003.png");
//
// With norm_pix_loss the model predicts per-patch normalized pixels, so each predicted patch is
// de-normalized with the mean and standard deviation of the original patch (as MAE-style
// visualizations do); images are then un-normalized with the dataset mean/std and clipped.
#ifndef CONVNEXTV2_APPS_RECONSTRUCTION_GRID_H_
#define CONVNEXTV2_APPS_RECONSTRUCTION_GRID_H_

#include <ATen/core/Tensor.h>

#include <array>
#include <string>

#include "absl/status/status.h"

namespace convnextv2::apps {

struct GridOptions {
  int64_t patch_size = 32;
  bool norm_pix_loss = true;
  std::array<float, 3> mean = {0.485f, 0.456f, 0.406f};
  std::array<float, 3> std = {0.229f, 0.224f, 0.225f};
  int64_t gap = 2;  // white pixels between tiles
};

inline constexpr int kGridColumns = 4;

// images (N, 3, S, S) normalized, pred (N, p*p*3, S/p, S/p), mask (N, L) 1 = removed ->
// uint8 (N*S + (N+1)*gap, 4*S + 5*gap, 3), RGB.
at::Tensor ReconstructionGrid(const at::Tensor& images, const at::Tensor& pred,
                              const at::Tensor& mask, const GridOptions& options);

// Writes an (H, W, 3) uint8 RGB tensor as a PNG, atomically.
absl::Status WritePng(const at::Tensor& rgb, const std::string& path);

}  // namespace convnextv2::apps

#endif  // CONVNEXTV2_APPS_RECONSTRUCTION_GRID_H_
