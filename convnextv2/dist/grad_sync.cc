#include "convnextv2/dist/grad_sync.h"
#include "convnextv2/util/status_macros.h"

#include <ATen/ATen.h>
#include <c10/core/GradMode.h>

#include <mutex>

namespace convnextv2::dist {

struct GradientSync::State {
  struct Bucket {
    std::vector<int> members;         // indices into params
    at::Tensor flat;                  // the bucket's gradients, back to back
    int ready = 0;
    std::unique_ptr<PendingOp> pending;
  };
  std::shared_ptr<Communicator> comm;
  std::vector<at::Tensor> params;
  std::vector<int> bucket_of;         // param -> bucket
  std::vector<int64_t> offset;        // param -> offset in its bucket
  std::vector<bool> seen;             // param got its gradient in this armed pass
  std::vector<Bucket> buckets;
  std::mutex mu;
  bool armed = false;
  absl::Status error;

  // The gradient this rank contributes: what earlier micro-batches accumulated plus `grad`.
  void Fill(int i, const at::Tensor* grad) {
    const at::Tensor& p = params[i];
    at::Tensor slice = buckets[bucket_of[i]].flat.narrow(0, offset[i], p.numel()).view(p.sizes());
    if (grad != nullptr) {
      slice.copy_(*grad);
      if (p.grad().defined()) slice.add_(p.grad());
    } else if (p.grad().defined()) {
      slice.copy_(p.grad());
    } else {
      slice.zero_();
    }
  }

  void Launch(Bucket& b) {
    if (b.pending || !error.ok()) return;
    absl::StatusOr<std::unique_ptr<PendingOp>> op = comm->AllReduceSumAsync(b.flat);
    if (op.ok()) {
      b.pending = std::move(*op);
    } else {
      error = op.status();
    }
  }

  void OnGrad(int i, const at::Tensor& grad) {
    std::lock_guard<std::mutex> lock(mu);
    if (!armed || seen[i]) return;
    seen[i] = true;
    c10::NoGradGuard no_grad;
    Fill(i, &grad);
    Bucket& b = buckets[bucket_of[i]];
    if (++b.ready == static_cast<int>(b.members.size())) Launch(b);
  }
};

GradientSync::GradientSync(std::shared_ptr<Communicator> comm, std::vector<at::Tensor> params,
                           int64_t bucket_bytes)
    : state_(std::make_shared<State>()) {
  State& s = *state_;
  s.comm = std::move(comm);
  s.params = std::move(params);
  const int n = static_cast<int>(s.params.size());
  s.bucket_of.assign(n, -1);
  s.offset.assign(n, 0);
  s.seen.assign(n, false);
  // Reverse order: the last layers' gradients are ready first.
  std::vector<std::vector<int>> groups;
  int64_t bytes = 0;
  for (int i = n - 1; i >= 0; --i) {
    const at::Tensor& p = s.params[i];
    const bool fits = !groups.empty() && bytes + p.nbytes() <= static_cast<uint64_t>(bucket_bytes);
    const bool same_kind = !groups.empty() &&
                           s.params[groups.back().front()].scalar_type() == p.scalar_type() &&
                           s.params[groups.back().front()].device() == p.device();
    if (!fits || !same_kind) {
      groups.emplace_back();
      bytes = 0;
    }
    groups.back().push_back(i);
    bytes += p.nbytes();
  }
  for (std::vector<int>& members : groups) {
    State::Bucket b;
    int64_t size = 0;
    for (int i : members) {
      s.bucket_of[i] = static_cast<int>(s.buckets.size());
      s.offset[i] = size;
      size += s.params[i].numel();
    }
    b.flat = at::zeros({size}, s.params[members.front()].options().requires_grad(false));
    b.members = std::move(members);
    s.buckets.push_back(std::move(b));
  }
  std::weak_ptr<State> weak = state_;
  for (int i = 0; i < n; ++i) {
    s.params[i].register_hook([weak, i](const at::Tensor& grad) {
      if (std::shared_ptr<State> st = weak.lock()) st->OnGrad(i, grad);
    });
  }
}

GradientSync::~GradientSync() = default;

int GradientSync::num_buckets() const { return static_cast<int>(state_->buckets.size()); }

void GradientSync::Arm() {
  std::lock_guard<std::mutex> lock(state_->mu);
  state_->armed = true;
  state_->error = absl::OkStatus();
  for (State::Bucket& b : state_->buckets) {
    b.ready = 0;
    b.pending.reset();
  }
  std::fill(state_->seen.begin(), state_->seen.end(), false);
}

absl::Status GradientSync::Finish() {
  State& s = *state_;
  std::lock_guard<std::mutex> lock(s.mu);
  if (!s.armed) return absl::FailedPreconditionError("GradientSync::Finish without Arm");
  s.armed = false;
  c10::NoGradGuard no_grad;
  // Parameters without a gradient in this pass still take part, so every rank sends the same
  // buckets in the same order.
  for (State::Bucket& b : s.buckets) {
    if (b.pending) continue;
    for (int i : b.members) {
      if (!s.seen[i]) s.Fill(i, nullptr);
    }
    s.Launch(b);
  }
  absl::Status status = s.error;
  for (State::Bucket& b : s.buckets) {
    if (!b.pending) continue;
    if (absl::Status w = b.pending->Wait(); !w.ok() && status.ok()) status = w;
    b.pending.reset();
  }
  CONVNEXTV2_RETURN_IF_ERROR(status);
  const double inv = 1.0 / s.comm->world_size();
  for (size_t i = 0; i < s.params.size(); ++i) {
    at::Tensor& p = s.params[i];
    const at::Tensor avg =
        s.buckets[s.bucket_of[i]].flat.narrow(0, s.offset[i], p.numel()).view(p.sizes());
    if (p.mutable_grad().defined()) {
      p.mutable_grad().copy_(avg).mul_(inv);
    } else {
      p.mutable_grad() = avg.mul(inv);
    }
  }
  return absl::OkStatus();
}

}  // namespace convnextv2::dist
