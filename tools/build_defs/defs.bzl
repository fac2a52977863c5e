"""Shared build settings and macros (one place, as Abseil's copts.bzl)."""

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
