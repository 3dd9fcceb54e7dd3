// cli_bind.cpp: _core.cli_main, the command line of ./darknet (csrc/cli, built
// into the extension with DN_NO_MAIN) run in this process: the `darknet`
// command that pip installs (darknet_py/cli.py). Bindings only.
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <csignal>
#include <cstdio>
#include <string>
#include <vector>

extern "C" {
#include "../cli/args.h"
}
#include "common.h"

namespace py = pybind11;

// argv (argv[0] the program name) as C strings owned here; the GIL is
// released while the command runs. C's stdout and stderr are flushed after,
// so that its output comes before whatever Python prints next, and the
// SIGINT/SIGTERM handlers that `detector train` installs are put back to
// Python's.
static int cli_main(const std::vector<std::string> &args)
{
    if (args.empty()) value_error("cli_main: argv must hold at least the program name");
    std::vector<std::string> strings(args);
    std::vector<char *> argv;
    for (std::string &s : strings) argv.push_back(&s[0]);
    argv.push_back(nullptr);
    struct sigaction old_int, old_term;
    sigaction(SIGINT, nullptr, &old_int);
    sigaction(SIGTERM, nullptr, &old_term);
    int rc;
    {
        py::gil_scoped_release nogil;
        rc = dn_cli_main((int)strings.size(), argv.data());
        std::fflush(stdout);
        std::fflush(stderr);
    }
    sigaction(SIGINT, &old_int, nullptr);
    sigaction(SIGTERM, &old_term, nullptr);
    return rc;
}

void bind_cli(py::module_ &m)
{
    m.def("cli_main", &cli_main, py::arg("argv"),
          "Run ./darknet's command line on argv (argv[0] the program name) in this process; "
          "returns its exit status. Output goes to C's stdout and stderr (file descriptors 1 and 2).");
}
