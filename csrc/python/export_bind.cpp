// export_bind.cpp: _core.export_onnx, the ONNX export of a loaded network
// (dn_network_export_onnx, csrc/export/onnx.c). Bindings only: the GIL is
// released while the file is built and written.
#include <pybind11/pybind11.h>

#include <string>

#include "common.h"

namespace py = pybind11;

static void export_onnx(py::handle net, const std::string &path, int opset, bool decode, float nms, float thresh,
                        int max_per_class)
{
    dn_network *n = core_network(net);
    dn_onnx_opts o;
    dn_onnx_opts_default(&o);
    o.opset = opset;
    o.decode = decode;
    o.nms = nms;
    o.thresh = thresh;
    o.max_per_class = max_per_class;
    dn_status st;
    {
        py::gil_scoped_release nogil;
        st = dn_network_export_onnx(n, path.c_str(), &o);
    }
    check(st);
}

void bind_export(py::module_ &m)
{
    m.def("export_onnx", &export_onnx, py::arg("net"), py::arg("path"), py::arg("opset") = 13, py::arg("decode") = false,
          py::arg("nms") = 0.f, py::arg("thresh") = .25f, py::arg("max_per_class") = 100,
          "Write the network as an ONNX model (dn_network_export_onnx).");
}
