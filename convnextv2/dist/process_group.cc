#include "convnextv2/dist/process_group.h"

#include <ATen/ATen.h>
#include <glog/logging.h>
#include <torch/csrc/distributed/c10d/ProcessGroupGloo.hpp>
#include <torch/csrc/distributed/c10d/TCPStore.hpp>
#ifdef CONVNEXTV2_WITH_NCCL
#include <torch/csrc/distributed/c10d/ProcessGroupNCCL.hpp>
#endif

#include <netdb.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdlib>
#include <exception>
#include <map>
#include <string>

#include "absl/strings/str_cat.h"
#include "convnextv2/util/status_macros.h"

namespace convnextv2::dist {
namespace {

// c10d reports failures by throwing; the message of a Gloo error names the peer.
std::string Describe(const std::exception_ptr& e) {
  try {
    std::rethrow_exception(e);
  } catch (const c10::Error& err) {
    return err.what_without_backtrace();
  } catch (const std::exception& err) {
    return err.what();
  } catch (...) {
    return "unknown error";
  }
}

absl::Status Failed(int rank, absl::string_view op, const std::exception_ptr& e) {
  return absl::UnavailableError(absl::StrCat(
      "rank ", rank, ": ", op, " failed (another rank exited, hung past the timeout or lost its "
      "connection): ", Describe(e)));
}

class C10dPending : public PendingOp {
 public:
  C10dPending(c10::intrusive_ptr<c10d::Work> work, int rank) : work_(std::move(work)), rank_(rank) {}
  absl::Status Wait() override {
    try {
      work_->wait();
    } catch (...) {
      return Failed(rank_, "all-reduce", std::current_exception());
    }
    return absl::OkStatus();
  }

 private:
  c10::intrusive_ptr<c10d::Work> work_;
  int rank_;
};

template <typename Group>
class C10dCommunicator : public Communicator {
 public:
  C10dCommunicator(c10::intrusive_ptr<c10d::Store> store, c10::intrusive_ptr<Group> group,
                   int rank, int world_size, std::string backend, c10::Device device)
      : store_(std::move(store)),
        group_(std::move(group)),
        rank_(rank),
        world_size_(world_size),
        backend_(std::move(backend)),
        device_(device) {}

  int rank() const override { return rank_; }
  int world_size() const override { return world_size_; }
  std::string backend() const override { return backend_; }

  absl::Status AllReduceSum(std::vector<at::Tensor>& tensors) override {
    for (at::Tensor& t : tensors) {
      at::Tensor staged = Staged(t);
      absl::StatusOr<std::unique_ptr<PendingOp>> op = AllReduceSumAsync(staged);
      CONVNEXTV2_RETURN_IF_ERROR(op);
      CONVNEXTV2_RETURN_IF_ERROR((*op)->Wait());
      Unstage(staged, t);
    }
    return absl::OkStatus();
  }

  absl::StatusOr<std::unique_ptr<PendingOp>> AllReduceSumAsync(at::Tensor tensor) override {
    try {
      std::vector<at::Tensor> one{std::move(tensor)};
      return std::unique_ptr<PendingOp>(new C10dPending(group_->allreduce(one), rank_));
    } catch (...) {
      return Failed(rank_, "all-reduce", std::current_exception());
    }
  }

  absl::Status Broadcast(std::vector<at::Tensor>& tensors, int root) override {
    try {
      for (at::Tensor& t : tensors) {
        std::vector<at::Tensor> one{Staged(t)};
        c10d::BroadcastOptions options;
        options.rootRank = root;
        group_->broadcast(one, options)->wait();
        Unstage(one[0], t);
      }
    } catch (...) {
      return Failed(rank_, "broadcast", std::current_exception());
    }
    return absl::OkStatus();
  }

  absl::Status Barrier() override {
    try {
      group_->barrier()->wait();
    } catch (...) {
      return Failed(rank_, "barrier", std::current_exception());
    }
    return absl::OkStatus();
  }

 private:
  // NCCL only reduces tensors on its GPU: host values (counts, flags, sums) take a round trip.
  at::Tensor Staged(const at::Tensor& t) const {
    return t.device() == device_ ? t : t.to(device_);
  }
  static void Unstage(const at::Tensor& staged, at::Tensor& t) {
    if (!staged.is_same(t)) t.copy_(staged);
  }

  c10::intrusive_ptr<c10d::Store> store_;
  c10::intrusive_ptr<Group> group_;
  int rank_, world_size_;
  std::string backend_;
  c10::Device device_;
};

// The local address this host uses to reach `host` (connecting a UDP socket sends nothing):
// the interface other hosts reach it on, where its hostname may resolve to loopback (Debian's
// 127.0.1.1) or to nothing (a container). Empty when `host` does not resolve.
std::string LocalAddressTowards(const std::string& host, int port) {
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_DGRAM;
  addrinfo* found = nullptr;
  if (getaddrinfo(host.c_str(), std::to_string(port).c_str(), &hints, &found) != 0) return "";
  std::string address;
  for (addrinfo* a = found; a != nullptr && address.empty(); a = a->ai_next) {
    const int fd = socket(a->ai_family, a->ai_socktype, a->ai_protocol);
    if (fd < 0) continue;
    sockaddr_storage local{};
    socklen_t length = sizeof(local);
    char text[INET6_ADDRSTRLEN] = {};
    if (connect(fd, a->ai_addr, a->ai_addrlen) == 0 &&
        getsockname(fd, reinterpret_cast<sockaddr*>(&local), &length) == 0 &&
        getnameinfo(reinterpret_cast<sockaddr*>(&local), length, text, sizeof(text), nullptr, 0,
                    NI_NUMERICHOST) == 0) {
      address = text;
    }
    close(fd);
  }
  freeaddrinfo(found);
  return address;
}

std::shared_ptr<::gloo::transport::Device> GlooDevice(const DistEnv& env) {
  if (const char* ifname = std::getenv("GLOO_SOCKET_IFNAME")) {
    LOG(INFO) << "gloo: binding interface " << ifname << " (GLOO_SOCKET_IFNAME)";
    return c10d::ProcessGroupGloo::createDeviceForInterface(ifname);
  }
  // A one-machine run binds to loopback: the hostname may not resolve to a usable address in
  // containers. Across machines, the address this host reaches rank 0's host from.
  if (env.master_addr == "127.0.0.1" || env.master_addr == "localhost") {
    return c10d::ProcessGroupGloo::createDeviceForHostname("127.0.0.1");
  }
  const std::string local = LocalAddressTowards(env.master_addr, env.master_port);
  if (!local.empty()) {
    LOG(INFO) << "gloo: binding " << local << ", the address of the route to " << env.master_addr
              << " (set GLOO_SOCKET_IFNAME to choose an interface)";
    return c10d::ProcessGroupGloo::createDeviceForHostname(local);
  }
  return c10d::ProcessGroupGloo::createDefaultDevice();
}

// A rendezvous host that does not resolve fails at once, naming the host and where it came
// from, instead of after dist_timeout.
absl::Status CheckMasterResolves(const DistEnv& env) {
  addrinfo hints{};
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* found = nullptr;
  const int rc = getaddrinfo(env.master_addr.c_str(), nullptr, &hints, &found);
  if (rc == 0) {
    freeaddrinfo(found);
    return absl::OkStatus();
  }
  char host[256] = "?";
  gethostname(host, sizeof(host) - 1);
  return absl::InvalidArgumentError(absl::StrCat(
      "rank ", env.rank, " of ", env.world_size, " on host ", host, ": rank 0's host '",
      env.master_addr, "' (MASTER_ADDR, or else the first node of SLURM_JOB_NODELIST) does not "
      "resolve here: ", gai_strerror(rc), "; set MASTER_ADDR to an address "
      "every host reaches (launcher's batch scripts take it from `scontrol show node`)"));
}

// The store and the group both wait for every rank; either failing means the same to a user.
absl::Status RendezvousFailed(const DistEnv& env, std::chrono::milliseconds timeout,
                              const std::exception_ptr& e) {
  return absl::UnavailableError(absl::StrCat(
      "rank ", env.rank, " of ", env.world_size, ": rendezvous at ", env.master_addr, ":",
      env.master_port, " failed within ", timeout.count() / 1000.0, " s (distributed.dist_timeout;"
      " are all ", env.world_size, " ranks started with the same MASTER_ADDR/MASTER_PORT, and is "
      "the port free on rank 0's host?): ", Describe(e)));
}

}  // namespace

absl::StatusOr<std::shared_ptr<Communicator>> Communicator::Create(
    const DistEnv& env, c10::Device device, std::chrono::milliseconds timeout) {
  CONVNEXTV2_RETURN_IF_ERROR(CheckMasterResolves(env));
  c10::intrusive_ptr<c10d::Store> store;
  try {
    c10d::TCPStoreOptions options;
    options.port = static_cast<uint16_t>(env.master_port);
    options.isServer = env.rank == 0;
    options.numWorkers = env.world_size;
    options.waitWorkers = true;
    options.timeout = timeout;
    store = c10::make_intrusive<c10d::TCPStore>(env.master_addr, options);
  } catch (...) {
    return RendezvousFailed(env, timeout, std::current_exception());
  }
  try {
    if (device.is_cuda()) {
#ifdef CONVNEXTV2_WITH_NCCL
      auto options = c10d::ProcessGroupNCCL::Options::create();
      options->timeout = timeout;
      auto group = c10::make_intrusive<c10d::ProcessGroupNCCL>(store, env.rank, env.world_size,
                                                               options);
      return std::shared_ptr<Communicator>(new C10dCommunicator<c10d::ProcessGroupNCCL>(
          store, group, env.rank, env.world_size, "nccl", device));
#else
      return absl::FailedPreconditionError(
          "training on CUDA with several processes needs NCCL: build with --define=nccl=1 "
          "against a CUDA libtorch (LIBTORCH_HOME)");
#endif
    }
    auto options = c10d::ProcessGroupGloo::Options::create(timeout);
    options->devices.push_back(GlooDevice(env));
    options->threads = 2;
    auto group =
        c10::make_intrusive<c10d::ProcessGroupGloo>(store, env.rank, env.world_size, options);
    return std::shared_ptr<Communicator>(new C10dCommunicator<c10d::ProcessGroupGloo>(
        store, group, env.rank, env.world_size, "gloo", c10::Device(c10::kCPU)));
  } catch (...) {
    return RendezvousFailed(env, timeout, std::current_exception());
  }
}

absl::Status BroadcastTensors(Communicator& comm, const std::vector<at::Tensor>& tensors) {
  if (comm.world_size() == 1) return absl::OkStatus();
  // One flat buffer per (dtype, device): few messages, as DDP's initial sync does.
  std::map<std::pair<int, std::string>, std::vector<at::Tensor>> groups;
  for (const at::Tensor& t : tensors) {
    if (!t.defined() || t.numel() == 0) continue;
    groups[{static_cast<int>(t.scalar_type()), t.device().str()}].push_back(t);
  }
  at::NoGradGuard no_grad;
  for (auto& [key, group] : groups) {
    std::vector<at::Tensor> flat_parts;
    for (const at::Tensor& t : group) flat_parts.push_back(t.detach().reshape({-1}));
    std::vector<at::Tensor> flat{at::cat(flat_parts)};
    CONVNEXTV2_RETURN_IF_ERROR(comm.Broadcast(flat, /*root=*/0));
    int64_t offset = 0;
    for (const at::Tensor& t : group) {
      const int64_t n = t.numel();
      t.detach().copy_(flat[0].narrow(0, offset, n).view(t.sizes()));
      offset += n;
    }
  }
  return absl::OkStatus();
}

absl::StatusOr<bool> AnyRank(Communicator& comm, bool flag) {
  if (comm.world_size() == 1) return flag;
  std::vector<at::Tensor> t{at::full({1}, flag ? 1.0 : 0.0, at::kFloat)};
  CONVNEXTV2_RETURN_IF_ERROR(comm.AllReduceSum(t));
  return t[0].item<float>() > 0;
}

}  // namespace convnextv2::dist
