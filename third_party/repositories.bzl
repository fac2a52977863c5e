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

def _libtorch_impl(rctx):
    home = rctx.os.environ.get("LIBTORCH_HOME", "").strip()
    linkopts = []
    defines = []
    if home == "":
        # Debian: everything but the C++ frontend headers is already on the default include path.
        _symlink_tree(rctx, "/usr/include/torch/csrc/api/include", "api_include")
        hdrs = ["api_include/**"]
        includes = ["api_include"]
        linkopts = ["-Wl,--no-as-needed", "-ltorch", "-ltorch_cpu", "-lc10", "-Wl,--as-needed"]
        flavor = "debian-cpu"
    else:
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
        linkopts = ["-L" + home + "/lib", "-Wl,-rpath," + home + "/lib", "-Wl,--no-as-needed"] + libs + ["-Wl,--as-needed"]
        flavor = "cuda" if cuda else "cpu"
    rctx.file("BUILD.bazel", """
package(default_visibility = ["//visibility:public"])

# libtorch ({flavor}) from {home}
cc_library(
    name = "libtorch",
    hdrs = glob({hdrs}, allow_empty = True),
    includes = {includes},
    defines = {defines},
    linkopts = {linkopts} + ["-lpthread", "-lm", "-ldl"],
)
""".format(
        flavor = flavor,
        home = home if home else "Debian's libtorch-dev",
        hdrs = repr(hdrs),
        includes = repr(includes),
        defines = repr(defines),
        linkopts = repr(linkopts),
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
