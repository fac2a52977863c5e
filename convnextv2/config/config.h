// ExperimentConfig handling: text files, `path=value` overrides, path resolution, validation.
//
//   absl::StatusOr<ExperimentConfig> c = LoadTextFile("configs/ft.pbtxt");
//   absl::Status s = SetField("optim.lr", "1e-3", &*c);    // or SetField("lr", ...)
//   ResolvePaths("/home/me/work", &*c);
//   s = Validate(*c, Mode::kFinetune);                      // names field, value, what's allowed
//
// No libtorch here: the launcher validates sweeps with exactly this code.
#ifndef CONVNEXTV2_CONFIG_CONFIG_H_
#define CONVNEXTV2_CONFIG_CONFIG_H_

#include <string>
#include "absl/strings/string_view.h"
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "convnextv2/proto/experiment.pb.h"

namespace convnextv2::config {

// Which binary a config is for: the official fine-tuning and pre-training scripts have different
// defaults (epochs, warmup, blr, min_lr, betas) and different requirements.
enum class Mode { kFinetune, kPretrain };

absl::string_view ModeName(Mode mode);

// The official defaults of `mode` as explicitly set fields over the proto defaults (which are
// main_finetune.py's): empty for kFinetune; main_pretrain.py's values for kPretrain.
ExperimentConfig ModeDefaults(Mode mode);

// Parses text format; errors carry `source_name:line:column`.
absl::StatusOr<ExperimentConfig> ParseText(absl::string_view text, absl::string_view source_name);

// Reads and parses a .pbtxt file; a missing or unreadable file is NotFound naming it.
absl::StatusOr<ExperimentConfig> LoadTextFile(const std::string& path);

// The config in text format (what manifests and `--print_config` show).
std::string ToText(const ExperimentConfig& config);

// Sets one field through reflection. `path` is a dotted path ("optim.lr") or a bare official
// flag name ("lr", unique across the message). Scalars parse as their type; bools accept
// true/false/yes/no/1/0/t/f/y/n (as the official str2bool); repeated fields take a comma- or
// space-separated list, optionally in [brackets]. Errors name the path, the value and the type.
absl::Status SetField(absl::string_view path, absl::string_view value, ExperimentConfig* config);

// Like SetField for repeated fields, with the values given one by one (argparse nargs='+').
absl::Status SetRepeatedField(absl::string_view path, const std::vector<std::string>& values,
                              ExperimentConfig* config);

// Applies "path=value".
absl::Status ApplyOverride(absl::string_view assignment, ExperimentConfig* config);

// The dotted path of a leaf field given by its official flag name or its dotted path;
// NotFound with a did-you-mean suggestion otherwise.
absl::StatusOr<std::string> CanonicalPath(absl::string_view name_or_path);

// Dotted paths of every leaf field, in declaration order.
const std::vector<std::string>& LeafPaths();

// Makes every relative path field (marked `(path) = true` in the proto) absolute against
// `base_dir`. Empty values stay empty.
void ResolvePaths(absl::string_view base_dir, ExperimentConfig* config);

// Settings the official scripts derive from the data, applied to `config` before the model is
// built (so --print_config and the recorded config show them). Fine-tuning with data_set CIFAR:
// model.nb_classes becomes the class count of the files in data_path (100 for CIFAR-100, 10
// for CIFAR-10), whatever nb_classes said, as the official build_dataset sets nb_classes = 100
// for CIFAR. Returns a line for the log saying what was set ("" when nothing applies). A
// data_path holding neither layout is left alone: opening the dataset reports it.
std::string ResolveDataClasses(ExperimentConfig* config, Mode mode);

// Checks values and their combinations without touching the filesystem. Reports every problem
// at once, one per line, each naming the field, the value and what is allowed.
absl::Status Validate(const ExperimentConfig& config, Mode mode);

// Filesystem checks of a validated config: the data path exists for the chosen data_set.
absl::Status CheckPaths(const ExperimentConfig& config, Mode mode);

// The learning rate a run uses: `lr` when set, else blr * effective batch / 256 with
// effective batch = batch_size * update_freq * world_size.
double EffectiveLr(const ExperimentConfig& config, int world_size);

}  // namespace convnextv2::config

#endif  // CONVNEXTV2_CONFIG_CONFIG_H_
