#include "convnextv2/dist/env.h"

#include <cstdlib>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "convnextv2/util/status_macros.h"

namespace convnextv2::dist {
namespace {

absl::StatusOr<int> IntVar(const EnvLookup& env, const char* name) {
  std::optional<std::string> value = env(name);
  int parsed = 0;
  if (!value || !absl::SimpleAtoi(*value, &parsed)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "environment variable ", name, "=", value ? "'" + *value + "'" : "(unset)",
        " is not an integer"));
  }
  return parsed;
}

// An optional integer variable: `fallback` when unset.
absl::StatusOr<int> IntVarOr(const EnvLookup& env, const char* name, int fallback) {
  if (!env(name)) return fallback;
  return IntVar(env, name);
}

// Splits a hostlist at top-level commas (not those inside brackets).
std::vector<std::string> SplitTopLevel(absl::string_view s) {
  std::vector<std::string> parts;
  int depth = 0;
  std::string current;
  for (char c : s) {
    if (c == '[') ++depth;
    if (c == ']') --depth;
    if (c == ',' && depth == 0) {
      parts.push_back(current);
      current.clear();
    } else {
      current.push_back(c);
    }
  }
  parts.push_back(current);
  return parts;
}

absl::Status ApplyDistUrl(const std::string& url, DistEnv* env) {
  if (url.empty() || url == "env://") return absl::OkStatus();
  absl::string_view rest = url;
  if (!absl::ConsumePrefix(&rest, "tcp://")) {
    return absl::InvalidArgumentError(absl::StrCat(
        "distributed.dist_url: '", url, "' is not supported; use env:// or tcp://HOST:PORT"));
  }
  const size_t colon = rest.rfind(':');
  int port = 0;
  if (colon == absl::string_view::npos || colon == 0 ||
      !absl::SimpleAtoi(rest.substr(colon + 1), &port) || port <= 0 || port > 65535) {
    return absl::InvalidArgumentError(absl::StrCat(
        "distributed.dist_url: '", url, "' must be tcp://HOST:PORT with a port in 1..65535"));
  }
  env->master_addr = std::string(rest.substr(0, colon));
  env->master_port = port;
  return absl::OkStatus();
}

absl::Status MasterFromEnv(const EnvLookup& env, DistEnv* out, bool required) {
  if (std::optional<std::string> addr = env("MASTER_ADDR")) {
    out->master_addr = *addr;
  } else if (required) {
    return absl::InvalidArgumentError(
        "MASTER_ADDR is not set (needed with RANK/WORLD_SIZE and dist_url env://): set it to "
        "rank 0's host, or pass --dist_url tcp://HOST:PORT");
  }
  if (env("MASTER_PORT")) {
    absl::StatusOr<int> port = IntVar(env, "MASTER_PORT");
    CONVNEXTV2_RETURN_IF_ERROR(port);
    if (*port <= 0 || *port > 65535) {
      return absl::InvalidArgumentError(
          absl::StrCat("MASTER_PORT=", *port, " is not a port (1..65535)"));
    }
    out->master_port = *port;
  } else if (required) {
    return absl::InvalidArgumentError(
        "MASTER_PORT is not set (needed with RANK/WORLD_SIZE and dist_url env://)");
  }
  return absl::OkStatus();
}

absl::StatusOr<DistEnv> FromTorchrun(const DistributedConfig& config, const EnvLookup& env) {
  DistEnv out;
  out.source = "torchrun environment";
  absl::StatusOr<int> rank = IntVar(env, "RANK");
  CONVNEXTV2_RETURN_IF_ERROR(rank);
  absl::StatusOr<int> world = IntVar(env, "WORLD_SIZE");
  CONVNEXTV2_RETURN_IF_ERROR(world);
  absl::StatusOr<int> local_rank =
      IntVarOr(env, "LOCAL_RANK", config.local_rank() >= 0 ? config.local_rank() : *rank);
  CONVNEXTV2_RETURN_IF_ERROR(local_rank);
  absl::StatusOr<int> local_world = IntVarOr(env, "LOCAL_WORLD_SIZE", *world);
  CONVNEXTV2_RETURN_IF_ERROR(local_world);
  out.rank = *rank;
  out.world_size = *world;
  out.local_rank = *local_rank;
  out.local_world_size = *local_world;
  const bool url_given = !config.dist_url().empty() && config.dist_url() != "env://";
  CONVNEXTV2_RETURN_IF_ERROR(
      MasterFromEnv(env, &out, /*required=*/out.world_size > 1 && !url_given));
  return out;
}

absl::StatusOr<DistEnv> FromSlurm(const DistributedConfig& config, const EnvLookup& env) {
  DistEnv out;
  out.source = "Slurm";
  absl::StatusOr<int> rank = IntVar(env, "SLURM_PROCID");
  CONVNEXTV2_RETURN_IF_ERROR(rank);
  // Inside an srun step the step's task count is what was started; SLURM_NTASKS is the
  // allocation's. Outside a step (the batch script itself) only one process runs.
  const bool in_step = env("SLURM_STEP_NUM_TASKS").has_value();
  absl::StatusOr<int> world =
      in_step ? IntVar(env, "SLURM_STEP_NUM_TASKS") : IntVarOr(env, "SLURM_NTASKS", 1);
  CONVNEXTV2_RETURN_IF_ERROR(world);
  if (!in_step && *world > 1) {
    return absl::FailedPreconditionError(absl::StrCat(
        "the job has SLURM_NTASKS=", *world, " tasks but this process was not started by srun "
        "(no SLURM_STEP_NUM_TASKS), so the other ranks will never come: start the binary with "
        "`srun` inside the batch script"));
  }
  absl::StatusOr<int> local_rank = IntVarOr(env, "SLURM_LOCALID", 0);
  CONVNEXTV2_RETURN_IF_ERROR(local_rank);
  out.rank = *rank;
  out.world_size = *world;
  out.local_rank = *local_rank;
  out.local_world_size = 1;
  const char* tpn_name =
      env("SLURM_STEP_TASKS_PER_NODE") ? "SLURM_STEP_TASKS_PER_NODE" : "SLURM_TASKS_PER_NODE";
  if (std::optional<std::string> tpn = env(tpn_name)) {
    absl::StatusOr<std::vector<int>> counts = ExpandTasksPerNode(*tpn);
    if (!counts.ok()) {
      return absl::InvalidArgumentError(
          absl::StrCat(tpn_name, "='", *tpn, "': ", counts.status().message()));
    }
    absl::StatusOr<int> node = IntVarOr(env, "SLURM_NODEID", 0);
    CONVNEXTV2_RETURN_IF_ERROR(node);
    if (*node < 0 || *node >= static_cast<int>(counts->size())) {
      return absl::InvalidArgumentError(absl::StrCat("SLURM_NODEID=", *node, " but ", tpn_name,
                                                     "='", *tpn, "' lists ", counts->size(),
                                                     " nodes"));
    }
    out.local_world_size = (*counts)[*node];
  }
  if (out.local_rank < 0 || out.local_rank >= out.local_world_size) {
    return absl::InvalidArgumentError(absl::StrCat("SLURM_LOCALID=", out.local_rank,
                                                   " is outside the ", out.local_world_size,
                                                   " tasks Slurm started on this node"));
  }
  const char* list_name =
      env("SLURM_STEP_NODELIST") ? "SLURM_STEP_NODELIST" : "SLURM_JOB_NODELIST";
  if (std::optional<std::string> list = env(list_name)) {
    absl::StatusOr<std::vector<std::string>> hosts = ExpandHostlist(*list);
    if (!hosts.ok() || hosts->empty()) {
      return absl::InvalidArgumentError(absl::StrCat(
          list_name, "='", *list, "' is not a Slurm hostlist",
          hosts.ok() ? "" : absl::StrCat(": ", hosts.status().message())));
    }
    out.master_addr = hosts->front();
  } else if (out.world_size > 1 && !env("MASTER_ADDR")) {
    return absl::InvalidArgumentError(
        "SLURM_JOB_NODELIST is not set, so rank 0's host is unknown: set MASTER_ADDR");
  }
  if (std::optional<std::string> job = env("SLURM_JOB_ID")) {
    int64_t id = 0;
    if (absl::SimpleAtoi(*job, &id)) out.master_port = PortForJob(id);
  }
  CONVNEXTV2_RETURN_IF_ERROR(MasterFromEnv(env, &out, /*required=*/false));
  return out;
}

}  // namespace

std::string DistEnv::Describe() const {
  if (!distributed()) return absl::StrCat("single process (", source, ")");
  return absl::StrCat("rank ", rank, " of ", world_size, " (local rank ", local_rank, " of ",
                      local_world_size, ", from the ", source, "), rendezvous at ", master_addr,
                      ":", master_port);
}

EnvLookup ProcessEnvironment() {
  return [](const char* name) -> std::optional<std::string> {
    const char* v = std::getenv(name);
    if (v == nullptr) return std::nullopt;
    return std::string(v);
  };
}

absl::StatusOr<std::vector<std::string>> ExpandHostlist(absl::string_view hostlist) {
  std::vector<std::string> hosts;
  for (const std::string& part : SplitTopLevel(hostlist)) {
    if (part.empty()) continue;
    const size_t open = part.find('[');
    if (open == std::string::npos) {
      if (part.find(']') != std::string::npos) {
        return absl::InvalidArgumentError(absl::StrCat("unbalanced ']' in '", part, "'"));
      }
      hosts.push_back(part);
      continue;
    }
    const size_t close = part.find(']', open);
    if (close == std::string::npos) {
      return absl::InvalidArgumentError(absl::StrCat("unbalanced '[' in '", part, "'"));
    }
    const std::string prefix = part.substr(0, open);
    const std::string suffix = part.substr(close + 1);
    for (absl::string_view range :
         absl::StrSplit(absl::string_view(part).substr(open + 1, close - open - 1), ',')) {
      std::vector<absl::string_view> ends = absl::StrSplit(range, '-');
      int64_t lo = 0, hi = 0;
      if (ends.size() > 2 || !absl::SimpleAtoi(ends[0], &lo) ||
          !absl::SimpleAtoi(ends.back(), &hi) || hi < lo) {
        return absl::InvalidArgumentError(absl::StrCat("bad range '", range, "' in '", part, "'"));
      }
      const size_t width = ends[0].size();  // zero padding, as in n[01-10]
      for (int64_t i = lo; i <= hi; ++i) {
        std::string number = absl::StrCat(i);
        if (number.size() < width) number.insert(0, width - number.size(), '0');
        hosts.push_back(absl::StrCat(prefix, number, suffix));
      }
    }
  }
  return hosts;
}

absl::StatusOr<std::vector<int>> ExpandTasksPerNode(absl::string_view tasks_per_node) {
  std::vector<int> counts;
  for (absl::string_view item : absl::StrSplit(tasks_per_node, ',')) {
    int count = 0, repeat = 1;
    const size_t paren = item.find("(x");
    if (paren != absl::string_view::npos) {
      absl::string_view rep = item.substr(paren + 2);
      if (!absl::ConsumeSuffix(&rep, ")") || !absl::SimpleAtoi(rep, &repeat) || repeat < 1) {
        return absl::InvalidArgumentError(absl::StrCat("bad repeat in '", item, "'"));
      }
      item = item.substr(0, paren);
    }
    if (!absl::SimpleAtoi(item, &count) || count < 1) {
      return absl::InvalidArgumentError(absl::StrCat("bad task count '", item, "'"));
    }
    counts.insert(counts.end(), repeat, count);
  }
  return counts;
}

int PortForJob(int64_t job_id) { return 15000 + static_cast<int>(job_id % 20000); }

absl::StatusOr<DistEnv> ResolveDistEnv(const DistributedConfig& config, const EnvLookup& env) {
  absl::StatusOr<DistEnv> out;
  if (env("RANK") || env("WORLD_SIZE")) {
    out = FromTorchrun(config, env);
  } else if (env("SLURM_PROCID")) {
    out = FromSlurm(config, env);
  } else {
    out = DistEnv{};
    if (config.local_rank() >= 0) out->local_rank = config.local_rank();
  }
  CONVNEXTV2_RETURN_IF_ERROR(out);
  if (out->world_size < 1 || out->rank < 0 || out->rank >= out->world_size) {
    return absl::InvalidArgumentError(absl::StrCat("rank ", out->rank, " of world size ",
                                                   out->world_size, " (from the ", out->source,
                                                   ") is not a valid rank"));
  }
  // distributed.world_size is recorded from the environment; a different explicit value is a
  // mismatch the user should hear about rather than a silently ignored flag.
  if (config.has_world_size() && config.world_size() != 1 &&
      config.world_size() != out->world_size) {
    return absl::InvalidArgumentError(absl::StrCat(
        "distributed.world_size is ", config.world_size(), " but the ", out->source, " says ",
        out->world_size, " processes; world_size is taken from the launcher (torchrun or srun), "
        "leave it unset"));
  }
  CONVNEXTV2_RETURN_IF_ERROR(ApplyDistUrl(config.dist_url(), &*out));
  return out;
}

absl::StatusOr<DistEnv> ResolveDistEnv(const DistributedConfig& config) {
  return ResolveDistEnv(config, ProcessEnvironment());
}

}  // namespace convnextv2::dist
