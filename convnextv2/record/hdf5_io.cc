#include "convnextv2/record/hdf5_io.h"

#include <filesystem>
#include <string>

#include "absl/strings/str_cat.h"

namespace convnextv2::record::hdf5 {
namespace {

struct AttrReadState {
  Attributes* out;
  bool failed = false;
};

herr_t ReadOneAttribute(hid_t location, const char* name, const H5A_info_t*, void* data) {
  auto* state = static_cast<AttrReadState*>(data);
  Handle attr(H5Aopen(location, name, H5P_DEFAULT), H5Aclose);
  Handle type(H5Aget_type(attr.get()), H5Tclose);
  if (!attr.ok() || !type.ok()) {
    state->failed = true;
    return -1;
  }
  switch (H5Tget_class(type.get())) {
    case H5T_STRING: {
      Handle mem(H5Tcopy(H5T_C_S1), H5Tclose);
      H5Tset_cset(mem.get(), H5Tget_cset(type.get()));  // HDF5 does not convert ASCII<->UTF-8
      if (H5Tis_variable_str(type.get()) > 0) {
        H5Tset_size(mem.get(), H5T_VARIABLE);
        char* text = nullptr;
        if (H5Aread(attr.get(), mem.get(), &text) < 0) break;
        (*state->out)[name] = std::string(text ? text : "");
        H5free_memory(text);
      } else {  // fixed length, as other writers (h5py's np.bytes_) make them
        const size_t n = H5Tget_size(type.get());
        H5Tset_size(mem.get(), n + 1);
        std::string text(n + 1, '\0');
        if (H5Aread(attr.get(), mem.get(), text.data()) < 0) break;
        text.resize(std::char_traits<char>::length(text.c_str()));
        (*state->out)[name] = text;
      }
      return 0;
    }
    case H5T_INTEGER: {
      int64_t v = 0;
      if (H5Aread(attr.get(), H5T_NATIVE_INT64, &v) < 0) break;
      (*state->out)[name] = v;
      return 0;
    }
    case H5T_FLOAT: {
      double v = 0;
      if (H5Aread(attr.get(), H5T_NATIVE_DOUBLE, &v) < 0) break;
      (*state->out)[name] = v;
      return 0;
    }
    default:
      return 0;  // not ours: ignored
  }
  state->failed = true;
  return -1;
}

}  // namespace

// HDF5 prints an error stack to stderr on every failed call; errors here become absl::Status.
void QuietHdf5() {
  static const bool once = [] {
    H5Eset_auto2(H5E_DEFAULT, nullptr, nullptr);
    return true;
  }();
  (void)once;
}

absl::Status Error(const std::string& path, absl::string_view what) {
  return absl::InternalError(absl::StrCat(path, ": ", what));
}

absl::StatusOr<Handle> OpenFile(const std::string& path, unsigned flags) {
  QuietHdf5();
  if (!std::filesystem::exists(path)) {
    return absl::NotFoundError(absl::StrCat(path, ": no such metrics file"));
  }
  Handle f(H5Fopen(path.c_str(), flags, H5P_DEFAULT), H5Fclose);
  if (!f.ok()) {
    return absl::DataLossError(
        absl::StrCat(path, ": cannot be opened as an HDF5 file (corrupt or not HDF5)"));
  }
  return f;
}

absl::Status WriteAttributes(hid_t file, const Attributes& attributes, const std::string& path) {
  for (const auto& [name, value] : attributes) {
    if (H5Aexists(file, name.c_str()) > 0 && H5Adelete(file, name.c_str()) < 0) {
      return Error(path, absl::StrCat("cannot replace attribute ", name));
    }
    Handle space(H5Screate(H5S_SCALAR), H5Sclose);
    herr_t written = -1;
    if (const auto* s = std::get_if<std::string>(&value)) {
      Handle type(H5Tcopy(H5T_C_S1), H5Tclose);
      H5Tset_size(type.get(), H5T_VARIABLE);
      H5Tset_cset(type.get(), H5T_CSET_UTF8);
      Handle attr(H5Acreate2(file, name.c_str(), type.get(), space.get(), H5P_DEFAULT, H5P_DEFAULT),
                  H5Aclose);
      const char* data = s->c_str();
      if (attr.ok()) written = H5Awrite(attr.get(), type.get(), &data);
    } else if (const auto* i = std::get_if<int64_t>(&value)) {
      Handle attr(H5Acreate2(file, name.c_str(), H5T_STD_I64LE, space.get(), H5P_DEFAULT,
                             H5P_DEFAULT),
                  H5Aclose);
      if (attr.ok()) written = H5Awrite(attr.get(), H5T_NATIVE_INT64, i);
    } else {
      const double d = std::get<double>(value);
      Handle attr(H5Acreate2(file, name.c_str(), H5T_IEEE_F64LE, space.get(), H5P_DEFAULT,
                             H5P_DEFAULT),
                  H5Aclose);
      if (attr.ok()) written = H5Awrite(attr.get(), H5T_NATIVE_DOUBLE, &d);
    }
    if (written < 0) return Error(path, absl::StrCat("cannot write attribute ", name));
  }
  return absl::OkStatus();
}

absl::Status ReadAttributes(hid_t location, const std::string& path, Attributes* out) {
  AttrReadState state{out};
  hsize_t index = 0;
  if (H5Aiterate2(location, H5_INDEX_NAME, H5_ITER_INC, &index, ReadOneAttribute, &state) < 0 ||
      state.failed) {
    return Error(path, "cannot read the attributes");
  }
  return absl::OkStatus();
}

}  // namespace convnextv2::record::hdf5
