#include "convnextv2/record/manifest.h"

#include <google/protobuf/text_format.h>

#include "absl/strings/str_cat.h"
#include "convnextv2/config/config.h"
#include "convnextv2/util/files.h"
#include "convnextv2/util/text_proto.h"
#include "convnextv2/util/status_macros.h"

namespace convnextv2::record {
RunManifest StartManifest(const ExperimentConfig& config, absl::string_view program,
                          absl::string_view command_line, const RunInfo& info,
                          const RunManifest* previous) {
  RunManifest m;
  *m.mutable_config() = config;
  m.set_config_sha256(Sha256Hex(config::ToText(config)));
  m.set_command_line(std::string(command_line));
  m.set_program(std::string(program));
  m.set_git_commit(info.git_commit);
  m.set_git_dirty(info.git_dirty);
  m.set_git_source(info.git_source);
  m.set_build_mode(info.build_mode);
  for (const auto& [name, version] : info.library_versions) {
    LibraryVersion* v = m.add_library_versions();
    v->set_name(name);
    v->set_version(version);
  }
  m.set_host(info.host);
  SlurmInfo* s = m.mutable_slurm();
  s->set_job_id(info.slurm.job_id);
  s->set_array_job_id(info.slurm.array_job_id);
  s->set_array_task_id(info.slurm.array_task_id);
  s->set_restart_count(info.slurm.restart_count);
  s->set_node_list(info.slurm.node_list);
  s->set_procid(info.slurm.procid);
  s->set_ntasks(info.slurm.ntasks);
  m.set_start_time(info.start_time);
  m.set_first_start_time(previous != nullptr && previous->has_first_start_time()
                             ? previous->first_start_time()
                             : info.start_time);
  m.set_attempts(previous != nullptr ? previous->attempts() + 1 : 1);
  if (previous != nullptr) *m.mutable_attempt_node_lists() = previous->attempt_node_lists();
  m.add_attempt_node_lists(info.slurm.node_list);
  m.set_state(RunManifest::RUNNING);
  return m;
}

void FinishManifest(int exit_status, absl::string_view message, RunManifest* manifest) {
  manifest->set_end_time(NowUtc());
  manifest->set_exit_status(exit_status);
  manifest->set_status_message(std::string(message));
  manifest->set_state(exit_status == 0 ? RunManifest::FINISHED : RunManifest::FAILED);
}

absl::Status WriteManifest(const std::string& path, const RunManifest& manifest) {
  std::string text;
  google::protobuf::TextFormat::PrintToString(manifest, &text);
  return util::WriteFileAtomically(path, text);
}

absl::StatusOr<RunManifest> ReadManifest(const std::string& path) {
  absl::StatusOr<std::string> text = util::ReadFile(path);
  CONVNEXTV2_RETURN_IF_ERROR(text);
  RunManifest manifest;
  if (absl::Status s = util::ParseTextProto(*text, path, &manifest); !s.ok()) return s;
  return manifest;
}

Attributes ManifestAttributes(const RunManifest& m) {
  Attributes a;
  a["config"] = config::ToText(m.config());
  a["config_sha256"] = m.config_sha256();
  a["command_line"] = m.command_line();
  a["program"] = m.program();
  a["git_commit"] = m.git_commit();
  a["git_dirty"] = int64_t{m.git_dirty() ? 1 : 0};
  a["git_source"] = m.git_source();
  a["build_mode"] = m.build_mode();
  a["seed"] = static_cast<int64_t>(m.config().train().seed());
  a["host"] = m.host();
  a["slurm_job_id"] = m.slurm().job_id();
  a["slurm_array_job_id"] = m.slurm().array_job_id();
  a["slurm_array_task_id"] = m.slurm().array_task_id();
  a["start_time"] = m.start_time();
  a["first_start_time"] = m.first_start_time();
  a["attempts"] = int64_t{m.attempts()};
  for (const LibraryVersion& v : m.library_versions()) a["version_" + v.name()] = v.version();
  return a;
}

}  // namespace convnextv2::record
