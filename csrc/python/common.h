// common.h: what the binding files of darknet_py._core share. C statuses
// become Python exceptions in one place: raise_status/check, defined in
// module.cpp. Each extra binding file exports one bind_<thing>(module).
#ifndef DN_PYTHON_COMMON_H
#define DN_PYTHON_COMMON_H

#include <pybind11/pybind11.h>

#include <string>

extern "C" {
#include "darknet.h"
}

// Raise the darknet_py.errors class of st with dn_last_error() as message.
[[noreturn]] void raise_status(dn_status st);
void check(dn_status st);
// The bindings' own argument checks: darknet_py.errors.DarknetValueError (a ValueError too).
[[noreturn]] void value_error(const std::string &msg);

void bind_eval(pybind11::module_ &m);  // eval_bind.cpp
void bind_ternary(pybind11::module_ &m);  // ternary_bind.cpp
void bind_cli(pybind11::module_ &m);  // cli_bind.cpp
void bind_export(pybind11::module_ &m);  // export_bind.cpp
// The C network held by a darknet_py._core.Network (module.cpp).
dn_network *core_network(pybind11::handle net);

#endif
