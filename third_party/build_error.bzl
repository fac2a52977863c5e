"""A target that fails the build, at analysis, with a message saying what is missing.

The libtorch and CUDA repositories (repositories.bzl) put one behind a select() where a
combination cannot build (e.g. --config=cuda with a CPU libtorch), so the user reads one line
naming the fix instead of a compiler error about a missing header three packages away.
"""

def _build_error_impl(ctx):
    fail("\n\n" + ctx.attr.message + "\n")

build_error = rule(
    implementation = _build_error_impl,
    attrs = {"message": attr.string(mandatory = True)},
    provides = [CcInfo],
)
