"""Repository rules that expose libraries installed on the machine (Debian packages) to Bazel.

`libtorch_repository` reads LIBTORCH_HOME: unset, it uses Debian's libtorch-dev (CPU, headers
under /usr/include, libraries in the multiarch dir); set, it points at a libtorch tree with
include/ and lib/ (a CUDA PyTorch's torch/ folder or an unpacked libtorch zip), so a GPU build
needs no edit to any BUILD file:

    LIBTORCH_HOME=/opt/torch/.venv/lib/python3.12/site-packages/torch bazel build //...

`system_include_repository` makes one header folder that is not on the compiler's default path
(e.g. /usr/include/hdf5/serial) a cc_library with that folder as an include dir.
"""

def _symlink_tree(rctx, src, dst):
    if not rctx.path(src).exists:
        fail("%s: %s does not exist (run tools/setup.sh)" % (rctx.name, src))
    rctx.symlink(src, dst)

# What a build under --config=cuda (--define=cuda=1, which also sets --define=nccl=1) needs, and
# the errors for each combination that cannot build. The generated BUILD files load build_error
# from the main repository.
_CONFIG_SETTINGS = """
load("@//third_party:build_error.bzl", "build_error")

config_setting(
    name = "cuda_config",
    define_values = {"cuda": "1"},
)

config_setting(
    name = "nccl_define",
    define_values = {"nccl": "1"},
)

config_setting(
    name = "cuda_and_nccl",
    define_values = {"cuda": "1", "nccl": "1"},
)
"""

_SETUP_HINT = "tools/cuda/setup.sh fetches one and prints the LIBTORCH_HOME to use"

def _libtorch_impl(rctx):
    home = rctx.os.environ.get("LIBTORCH_HOME", "").strip()
    linkopts = []
    defines = []
    version = ""
    if home == "":
        # Debian: everything but the C++ frontend headers is already on the default include path.
        _symlink_tree(rctx, "/usr/include/torch/csrc/api/include", "api_include")
        hdrs = ["api_include/**"]
        includes = ["api_include"]
        # No "--as-needed" after the libtorch libraries: with gold it would drop every later
        # library that only a test's _solib_k8 libraries need (a test linking metrics_log without
        # calling absl::StrFormat itself failed to start: undefined FormatArgImpl::Dispatch).
        linkopts = ["-Wl,--no-as-needed", "-ltorch", "-ltorch_cpu", "-lc10"]
        flavor = "debian-cpu"
        where = "Debian's libtorch-dev"
    else:
        if not rctx.path(home + "/include").exists or not rctx.path(home + "/lib").exists:
            fail("LIBTORCH_HOME=%s has no include/ and lib/ (a libtorch tree or a PyTorch " % home +
                 "torch/ folder); for a CUDA build, " + _SETUP_HINT)
        _symlink_tree(rctx, home + "/include", "include")
        _symlink_tree(rctx, home + "/lib", "lib")
        hdrs = ["include/**"]
        includes = ["include", "include/torch/csrc/api/include"]
        libs = ["-ltorch"]
        cuda = rctx.path(home + "/lib/libtorch_cuda.so").exists
        if cuda:
            libs += ["-ltorch_cuda", "-lc10_cuda"]
            defines.append("CONVNEXTV2_WITH_CUDA=1")
        libs += ["-ltorch_cpu", "-lc10"]
        linkopts = ["-L" + home + "/lib", "-Wl,-rpath," + home + "/lib", "-Wl,--no-as-needed"] + libs
        if cuda and rctx.path(home + "/link_stubs").exists:
            # Link-time stand-ins for libraries libtorch_cuda.so names that this machine lacks
            # (tools/cuda/setup.sh); their symbols are resolved at run time on the GPU machine.
            linkopts += ["-Wl,-rpath-link," + home + "/link_stubs", "-Wl,--allow-shlib-undefined"]
        flavor = "cuda" if cuda else "cpu"
        where = "LIBTORCH_HOME=" + home
    if flavor == "cuda":
        # A CUDA libtorch builds only under --config=cuda (NCCL, nvcc), which needs the toolkit.
        ok = '["@cuda//:toolkit"]'
        without_config = """build_error(
    name = "needs_cuda_config",
    message = "{where} is a CUDA libtorch: build with --config=cuda (NCCL backend and nvcc kernels), or unset LIBTORCH_HOME for the CPU build",
)""".format(where = where)
        errors = without_config + """

build_error(
    name = "cuda_needs_nccl",
    message = "--config=cuda without --define=nccl=1: the CUDA build compiles the NCCL backend; drop the override",
)

build_error(
    name = "nccl_needs_cuda_config",
    message = "--define=nccl=1 alone: use --config=cuda, which sets it together with the CUDA kernels",
)
"""
        select_expr = """select({{
        ":cuda_and_nccl": {ok},
        ":cuda_config": [":cuda_needs_nccl"],
        ":nccl_define": [":nccl_needs_cuda_config"],
        "//conditions:default": [":needs_cuda_config"],
    }})""".format(ok = ok)
    else:
        errors = """build_error(
    name = "needs_cuda_libtorch",
    message = "--config=cuda needs a CUDA libtorch, but {where} has no lib/libtorch_cuda.so: " +
              "{hint}, then build with LIBTORCH_HOME=<that folder> bazel build --config=cuda ...",
)

build_error(
    name = "nccl_needs_cuda_libtorch",
    message = "--define=nccl=1 (the NCCL backend) needs a CUDA libtorch and --config=cuda, but {where} has no lib/libtorch_cuda.so: {hint}",
)
""".format(where = where, hint = _SETUP_HINT)
        select_expr = """select({
        ":cuda_and_nccl": [":needs_cuda_libtorch"],
        ":cuda_config": [":needs_cuda_libtorch"],
        ":nccl_define": [":nccl_needs_cuda_libtorch"],
        "//conditions:default": [],
    })"""
    rctx.file("BUILD.bazel", _CONFIG_SETTINGS + """
package(default_visibility = ["//visibility:public"])

{errors}

# libtorch ({flavor}) from {where}
cc_library(
    name = "libtorch",
    hdrs = glob({hdrs}, allow_empty = True),
    includes = {includes},
    defines = {defines},
    linkopts = {linkopts} + ["-lpthread", "-lm", "-ldl"],
    deps = {select_expr},
)
""".format(
        errors = errors,
        flavor = flavor,
        where = where,
        hdrs = repr(hdrs),
        includes = repr(includes),
        defines = repr(defines),
        linkopts = repr(linkopts),
        select_expr = select_expr,
    ))

libtorch_repository = repository_rule(
    implementation = _libtorch_impl,
    environ = ["LIBTORCH_HOME"],
    local = True,
)

def _system_include_impl(rctx):
    _symlink_tree(rctx, rctx.attr.path, "include")
    rctx.file("BUILD.bazel", """
package(default_visibility = ["//visibility:public"])

cc_library(
    name = "{name}",
    hdrs = glob(["include/**"]),
    includes = ["include"],
    linkopts = {linkopts},
)
""".format(name = rctx.attr.target, linkopts = repr(rctx.attr.linkopts)))

system_include_repository = repository_rule(
    implementation = _system_include_impl,
    attrs = {
        "path": attr.string(mandatory = True),
        "target": attr.string(mandatory = True),
        "linkopts": attr.string_list(),
    },
    local = True,
)

def _cuda_toolkit_impl(rctx):
    home = rctx.os.environ.get("CUDA_HOME", "").strip() or "/usr/local/cuda"
    required = [
        ("bin/nvcc", "nvcc (the CUDA compiler)"),
        ("include/cuda_runtime.h", "the CUDA runtime headers"),
        ("include/nccl.h", "NCCL's header nccl.h (the NCCL backend)"),
        ("lib64/libcudart.so", "the CUDA runtime library"),
        ("lib64/libnccl.so.2", "NCCL's library libnccl.so.2"),
    ]
    missing = [what + " at " + home + "/" + path for path, what in required if not rctx.path(home + "/" + path).exists]
    nvcc = home + "/bin/nvcc"
    if missing:
        body = """build_error(
    name = "toolkit",
    message = "--config=cuda needs the CUDA 13 toolkit with NCCL (CUDA_HOME, default /usr/local/cuda); missing: {missing}",
)
""".format(missing = "; ".join(missing))
        nvcc = ""
    else:
        _symlink_tree(rctx, home + "/include", "include")
        body = """cc_library(
    name = "toolkit",
    hdrs = glob(["include/**"]),
    includes = ["include"],
    linkopts = [
        "-L{home}/lib64",
        "-Wl,-rpath-link,{home}/lib64",
        "-lcudart",
    ],
)
""".format(home = home)
    rctx.file("BUILD.bazel", """load("@//third_party:build_error.bzl", "build_error")

package(default_visibility = ["//visibility:public"])

# The CUDA toolkit at {home}: headers and the runtime for --config=cuda.
{body}""".format(home = home, body = body))
    rctx.file("defs.bzl", """# Generated by cuda_toolkit_repository (third_party/repositories.bzl).
NVCC = "{nvcc}"
CUDA_HOME = "{home}"
MISSING = {missing}
""".format(nvcc = nvcc, home = home, missing = repr("; ".join(missing))))

# The CUDA toolkit (CUDA_HOME, default /usr/local/cuda) for --config=cuda. On machines without
# it the repository still loads; only a cuda build that uses it fails, naming what is missing.
cuda_toolkit_repository = repository_rule(
    implementation = _cuda_toolkit_impl,
    environ = ["CUDA_HOME"],
    local = True,
)
