// output_dir/manifest.pbtxt: the RunManifest of a run (convnextv2/proto/run_manifest.proto).
//
//   RunManifest m = StartManifest(config, "finetune", argv_line, CollectRunInfo(), previous);
//   absl::Status s = WriteManifest(out_dir + "/manifest.pbtxt", m);   // atomically
//   ... run ...
//   FinishManifest(/*exit_status=*/0, "", &m);
//   s = WriteManifest(out_dir + "/manifest.pbtxt", m);
//
// ManifestAttributes gives the same facts as metrics.h5 root attributes, so both files say the
// same thing. No libtorch: the launcher reads manifests with this library.
#ifndef CONVNEXTV2_RECORD_MANIFEST_H_
#define CONVNEXTV2_RECORD_MANIFEST_H_

#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "convnextv2/record/metrics_log.h"
#include "convnextv2/record/run_info.h"
#include "convnextv2/proto/run_manifest.pb.h"

namespace convnextv2::record {

// The manifest of a run starting now with state RUNNING. `previous` is the manifest an earlier
// attempt left in the same output dir (nullptr if none): its first start time is kept and
// attempts counts up.
RunManifest StartManifest(const ExperimentConfig& config, absl::string_view program,
                          absl::string_view command_line, const RunInfo& info,
                          const RunManifest* previous);

// Sets the end time, exit status, message and state (FINISHED when exit_status is 0).
void FinishManifest(int exit_status, absl::string_view message, RunManifest* manifest);

// Writes the text format to a temporary file and renames it onto `path`.
absl::Status WriteManifest(const std::string& path, const RunManifest& manifest);

// Reads a manifest; errors name the file and the line.
absl::StatusOr<RunManifest> ReadManifest(const std::string& path);

// The manifest's facts as metrics.h5 root attributes (config, config_sha256, git_commit,
// git_dirty, seed, host, slurm_*, start_time, version_*, ...).
Attributes ManifestAttributes(const RunManifest& manifest);

}  // namespace convnextv2::record

#endif  // CONVNEXTV2_RECORD_MANIFEST_H_
