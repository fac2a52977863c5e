"""Shared build settings and macros (one place, as Abseil's copts.bzl)."""

load("@cuda//:defs.bzl", "MISSING", "NVCC")

# Warnings for the project's own code; third-party headers come in with -isystem.
COPTS = [
    "-Wall",
    "-Wextra",
    "-Wno-unused-parameter",
    "-Wno-sign-compare",
    "-Wno-missing-field-initializers",
]

TEST_COPTS = COPTS

def cc_proto(name, src, deps = [], proto_deps = [], visibility = None, descriptor_set = None):
    """C++ code for one .proto, generated with the system protoc (no @com_google_protobuf here).

    Args:
      name: the cc_library to create; the generated header is <src without .proto>.pb.h.
      src: the .proto file in this package.
      deps: cc_proto targets the generated code depends on.
      proto_deps: the .proto files of those targets (needed by protoc for imports).
      visibility: of the cc_library.
      descriptor_set: if set, also write a FileDescriptorSet with comments (source info) to
        this file name, so programs can print each field's documentation.
    """
    base = src[:-len(".proto")]
    outs = [base + ".pb.h", base + ".pb.cc"]
    pkg = native.package_name()
    cmd = "protoc --proto_path=. --cpp_out=$(GENDIR) $(location %s)" % src
    if descriptor_set:
        outs.append(descriptor_set)
        cmd += " && protoc --proto_path=. --include_source_info --include_imports --descriptor_set_out=$(location %s) $(location %s)" % (descriptor_set, src)
    native.genrule(
        name = name + "_gen",
        srcs = [src] + proto_deps,
        outs = outs,
        cmd = cmd,
    )
    native.cc_library(
        name = name,
        srcs = [base + ".pb.cc"],
        hdrs = [base + ".pb.h"],
        deps = deps + ["//third_party:protobuf"],
        visibility = visibility,
    )

def embedded_files(name, srcs, namespace, symbol, visibility = None):
    """A cc_library `name` with header `name`.h declaring `absl::string_view symbol(name)`."""
    native.genrule(
        name = name + "_gen",
        srcs = srcs,
        outs = [name + ".h", name + ".cc"],
        cmd = "$(location //tools/build_defs:embed_files) $(location %s.h) $(location %s.cc) %s %s $(SRCS)" % (name, name, namespace, symbol),
        tools = ["//tools/build_defs:embed_files"],
    )
    native.cc_library(
        name = name,
        srcs = [name + ".cc"],
        hdrs = [name + ".h"],
        deps = ["//third_party:absl"],
        visibility = visibility,
    )

# Hopper: sm_90 machine code plus compute_90 PTX, which the driver compiles for newer GPUs.
CUDA_ARCH_FLAGS = [
    "-gencode=arch=compute_90,code=sm_90",
    "-gencode=arch=compute_90,code=compute_90",
]

NVCC_FLAGS = [
    "-std=c++17",
    "-O3",
    "--expt-relaxed-constexpr",
    "-Xcompiler=-fPIC,-Wall,-Wextra,-Wno-unused-parameter",
    "-Werror=all-warnings",
]

def cuda_library(name, srcs, hdrs = [], deps = [], nvcc_flags = [], visibility = None):
    """A cc_library of CUDA C++ (.cu) compiled by nvcc under --config=cuda; empty otherwise.

    Each .cu becomes one object (-fPIC, CUDA_ARCH_FLAGS) linked with the CUDA runtime. Keep
    libtorch out of the .cu files (they take raw pointers, sizes and a cudaStream_t): nvcc then
    compiles them in seconds, and a C++ file compiled by g++ does the tensor plumbing. Without
    --config=cuda the objects are not built (each genrule writes a placeholder) and the library
    has only its headers, so callers guard their use with the CONVNEXTV2_WITH_CUDA_KERNELS
    define this library sets under --config=cuda.

    Args:
      name: the cc_library.
      srcs: .cu files in this package.
      hdrs: headers the .cu files and callers include (host-side declarations).
      deps: cc_library targets whose headers the .cu files need (header-only use).
      nvcc_flags: extra nvcc flags.
      visibility: of the cc_library.
    """
    objs = []
    for src in srcs:
        if not src.endswith(".cu"):
            fail("cuda_library %s: %s is not a .cu file" % (name, src))
        obj = "_objs_cuda/%s/%s.pic.o" % (name, src[:-len(".cu")])
        if NVCC:
            compile_cmd = " ".join([NVCC] + NVCC_FLAGS + CUDA_ARCH_FLAGS + nvcc_flags + [
                "-I.",
                "-I$(GENDIR)",
                "-DCONVNEXTV2_WITH_CUDA_KERNELS=1",
                "-c $(location %s)" % src,
                "-o $@",
            ])
        else:
            compile_cmd = "echo 'cuda_library %s: --config=cuda needs the CUDA toolkit; missing: %s' >&2; exit 1" % (name, MISSING)
        native.genrule(
            name = obj.replace("/", "_").replace(".", "_"),
            srcs = [src] + hdrs,
            outs = [obj],
            cmd = select({
                "//tools/build_defs:cuda": compile_cmd,
                "//conditions:default": "echo 'not built: CUDA code is compiled under --config=cuda only' > $@",
            }),
            message = "nvcc %s" % src,
        )
        objs.append(obj)
    native.cc_library(
        name = name,
        srcs = select({
            "//tools/build_defs:cuda": objs,
            "//conditions:default": [],
        }),
        hdrs = hdrs,
        defines = select({
            "//tools/build_defs:cuda": ["CONVNEXTV2_WITH_CUDA_KERNELS=1"],
            "//conditions:default": [],
        }),
        deps = deps + select({
            "//tools/build_defs:cuda": ["@cuda//:toolkit"],
            "//conditions:default": [],
        }),
        # The objects carry device code and static kernel registrations: keep them whole.
        alwayslink = True,
        visibility = visibility,
    )
