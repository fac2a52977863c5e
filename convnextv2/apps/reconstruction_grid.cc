#include "convnextv2/apps/reconstruction_grid.h"

#include <ATen/ATen.h>
#include <c10/core/GradMode.h>


#include <vector>

#include "absl/strings/str_cat.h"
#include "convnextv2/data/non_jpeg_codecs.h"
#include "convnextv2/models/fcmae.h"
#include "convnextv2/util/files.h"

namespace convnextv2::apps {

at::Tensor ReconstructionGrid(const at::Tensor& images_in, const at::Tensor& pred_in,
                              const at::Tensor& mask_in, const GridOptions& o) {
  c10::NoGradGuard no_grad;
  const at::Tensor images = images_in.detach().to(c10::kCPU, at::kFloat).contiguous();
  const at::Tensor mask = mask_in.detach().to(c10::kCPU, at::kFloat);
  const int64_t n = images.size(0), c = images.size(1), s = images.size(2), p = o.patch_size;
  TORCH_CHECK(c == 3, "ReconstructionGrid: expected 3 channels, got ", c);
  const at::Tensor pred_map = pred_in.detach().to(c10::kCPU, at::kFloat);
  at::Tensor pred = pred_map.reshape({n, pred_map.size(1), -1}).permute({0, 2, 1});  // (N, L, D)
  const at::Tensor target = models::Patchify(images, p);
  if (o.norm_pix_loss) {
    const at::Tensor mean = target.mean(-1, /*keepdim=*/true);
    const at::Tensor var = target.var(-1, /*unbiased=*/true, /*keepdim=*/true);
    pred = pred * (var + 1e-6).sqrt() + mean;
  }
  const at::Tensor removed = mask.unsqueeze(-1);  // (N, L, 1)
  const at::Tensor recon = models::Unpatchify(pred, p, c);
  const at::Tensor pasted = models::Unpatchify(target * (1 - removed) + pred * removed, p, c);
  const at::Tensor mean = at::tensor(std::vector<float>(o.mean.begin(), o.mean.end()))
                              .reshape({1, 3, 1, 1});
  const at::Tensor std = at::tensor(std::vector<float>(o.std.begin(), o.std.end()))
                             .reshape({1, 3, 1, 1});
  auto to_unit = [&](const at::Tensor& x) { return (x * std + mean).clamp(0.0, 1.0); };
  const at::Tensor original = to_unit(images);
  const at::Tensor keep_pixels = 1 - models::UpsampleMask(mask, p).unsqueeze(1);  // (N,1,S,S)
  const at::Tensor masked = original * keep_pixels + 0.5 * (1 - keep_pixels);
  const std::array<at::Tensor, kGridColumns> columns = {original, masked, to_unit(recon),
                                                        to_unit(pasted)};
  const int64_t g = o.gap;
  at::Tensor grid = at::ones({3, n * s + (n + 1) * g, kGridColumns * s + (kGridColumns + 1) * g});
  for (int64_t i = 0; i < n; ++i) {
    for (int col = 0; col < kGridColumns; ++col) {
      grid.narrow(1, g + i * (s + g), s).narrow(2, g + col * (s + g), s).copy_(columns[col][i]);
    }
  }
  return (grid * 255.0).round().to(at::kByte).permute({1, 2, 0}).contiguous();
}

absl::Status WritePng(const at::Tensor& rgb_in, const std::string& path) {
  const at::Tensor rgb = rgb_in.to(c10::kCPU, at::kByte).contiguous();
  if (rgb.dim() != 3 || rgb.size(2) != 3) {
    return absl::InvalidArgumentError(absl::StrCat("WritePng: expected (H, W, 3) for ", path));
  }
  data::Image image;
  image.height = static_cast<int>(rgb.size(0));
  image.width = static_cast<int>(rgb.size(1));
  image.channels = 3;
  image.pixels.assign(rgb.data_ptr<uint8_t>(), rgb.data_ptr<uint8_t>() + rgb.numel());
  absl::StatusOr<std::string> bytes = data::EncodePng(image);
  if (!bytes.ok()) {
    return absl::InternalError(absl::StrCat("cannot encode PNG for ", path, ": ",
                                            bytes.status().message()));
  }
  return util::WriteFileAtomically(path, *bytes);
}

}  // namespace convnextv2::apps
