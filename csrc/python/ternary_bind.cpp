// ternary_bind.cpp: bindings of ternary inference (the per-network kernel
// setting, the packed ternary weights format) and, for the tests, direct
// access to the ternary kernels (kernels/ref/ternary_gemm_ref.c,
// kernels/cpu/ternary_gemm.c). Bindings only: arrays are made contiguous
// at the boundary, outputs allocated before the C calls, the GIL released
// around compute.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <cstdlib>
#include <memory>
#include <string>
#include <vector>

extern "C" {
#include "../kernels/cpu/ternary_gemm.h"
#include "../kernels/cpu/isa.h"
#include "../kernels/ref/ternary_gemm_ref.h"
}
#include "common.h"

namespace py = pybind11;

namespace {

using i8array = py::array_t<int8_t, py::array::c_style | py::array::forcecast>;
using farray = py::array_t<float, py::array::c_style | py::array::forcecast>;

struct NetPtr {
    dn_network *net = nullptr;
    explicit NetPtr(const std::string &cfg)
    {
        dn_status st;
        {
            py::gil_scoped_release nogil;
            st = dn_network_load(&net, cfg.c_str(), 1, 0);
        }
        check(st);
    }
    ~NetPtr() { dn_network_free(net); }
};

void pack(const std::string &cfg, const std::string &weights, const std::string &out, bool fold)
{
    NetPtr n(cfg);
    dn_status st;
    {
        py::gil_scoped_release nogil;
        st = dn_network_load_weights(n.net, weights.c_str(), -1);
        if (st == DN_OK) st = dn_network_save_packed(n.net, out.c_str(), fold);
    }
    check(st);
}

void unpack(const std::string &cfg, const std::string &packed, const std::string &out)
{
    NetPtr n(cfg);
    dn_status st;
    {
        py::gil_scoped_release nogil;
        st = dn_network_load_weights(n.net, packed.c_str(), -1);
        if (st == DN_OK) st = dn_network_save_weights(n.net, out.c_str(), -1);
    }
    check(st);
}

// (list of per-layer dicts, packed?)
py::tuple stats(const std::string &cfg, const std::string &path)
{
    NetPtr n(cfg);
    std::vector<dn_ternary_layer_stats> s((size_t)dn_network_num_layers(n.net));
    int packed = 0;
    dn_status st;
    {
        py::gil_scoped_release nogil;
        st = dn_ternary_stats(n.net, path.c_str(), s.data(), &packed);
    }
    check(st);
    py::list out;
    for (size_t i = 0; i < s.size(); ++i) {
        py::dict d;
        d["layer"] = (int)i;
        d["type"] = s[i].type;
        d["ternary"] = (bool)s[i].ternary;
        d["params"] = s[i].params;
        d["weights"] = s[i].weights;
        d["zeros"] = s[i].zeros;
        d["alphas"] = s[i].alphas;
        d["alpha_min"] = s[i].alpha_min;
        d["alpha_mean"] = s[i].alpha_mean;
        d["alpha_max"] = s[i].alpha_max;
        d["bytes"] = s[i].bytes;
        out.append(d);
    }
    return py::make_tuple(out, (bool)packed);
}

void set_kernel(py::handle net, const std::string &name)
{
    dn_ternary_kernel k;
    check(dn_ternary_kernel_parse(name.c_str(), &k));
    check(dn_network_set_ternary_kernel(core_network(net), k));
}

std::string get_kernel(py::handle net) { return dn_ternary_kernel_name(dn_network_ternary_kernel(core_network(net))); }

// Codes [F][C/g][s][s] in {-1, 0, 1} -> packed int8 weights.
dn_tweights make_weights(const i8array &codes, int c, int groups, int *size)
{
    if (codes.ndim() != 4 || codes.shape(2) != codes.shape(3))
        value_error("codes must be filters x c/groups x size x size int8");
    if (groups <= 0 || c % groups || codes.shape(0) % groups || codes.shape(1) != c / groups)
        value_error("codes: filters and channels must be divisible by groups, dim 1 = c/groups");
    const int8_t *p = codes.data();
    for (py::ssize_t i = 0; i < codes.size(); ++i)
        if (p[i] < -1 || p[i] > 1) value_error("codes must be in {-1, 0, 1}");
    *size = (int)codes.shape(2);
    dn_tweights w;
    int k = (int)(codes.shape(1) * codes.shape(2) * codes.shape(3));
    if (!dn_tweights_init(&w, p, (int)codes.shape(0), groups, k)) throw std::bad_alloc();
    // used where dn_twino_wanted / dn_timplicit_wanted
    if ((*size == 3 && !dn_tweights_winograd(&w, p, c)) || !dn_tweights_implicit(&w, p, c, *size)) {
        dn_tweights_free(&w);
        throw std::bad_alloc();
    }
    return w;
}

dn_conv_shape make_shape(py::ssize_t b, py::ssize_t c, py::ssize_t h, py::ssize_t w, int filters, int size,
                         int stride, int pad, int groups)
{
    if (stride <= 0 || pad < 0 || h + 2 * pad < size || w + 2 * pad < size)
        value_error("bad stride/pad for the input size");
    dn_conv_shape s{(int)b, (int)c, (int)h, (int)w, filters, size, stride, pad, groups,
                    (int)((h + 2 * pad - size) / stride + 1), (int)((w + 2 * pad - size) / stride + 1)};
    return s;
}

struct Scratch {
    void *p;
    explicit Scratch(size_t bytes) : p(std::aligned_alloc(64, (bytes + 63) / 64 * 64 + 64))
    {
        if (!p) throw std::bad_alloc();
    }
    ~Scratch() { std::free(p); }
};

// simd: -1 what the layers use now (dn_ternary_simd), else a level (0 portable C,
// 1 AVX2, 2 AVX-512 VNNI); the kernels lower it to what this CPU has.
int simd_flag(int simd) { return simd < 0 ? dn_ternary_simd() : simd; }

// Integer convolution: x int8 NCHW, codes int8 -> int32 NCHW. ref: the
// specification (dn_tconv_ref); else the kernel (simd: see simd_flag).
py::array_t<int32_t> tconv_s32(i8array x, i8array codes, int stride, int pad, int groups, int simd,
                               int threads, bool ref)
{
    if (x.ndim() != 4) value_error("x must be N x C x H x W int8");
    int size;
    dn_tweights w = make_weights(codes, (int)x.shape(1), groups, &size);
    std::unique_ptr<dn_tweights, void (*)(dn_tweights *)> guard(&w, dn_tweights_free);
    dn_conv_shape s = make_shape(x.shape(0), x.shape(1), x.shape(2), x.shape(3), (int)codes.shape(0), size,
                                 stride, pad, groups);
    py::array_t<int32_t> out({s.batch, s.filters, s.out_h, s.out_w});
    int32_t *o = out.mutable_data();
    if (ref) {
        int ok;
        {
            py::gil_scoped_release nogil;
            ok = dn_tconv_ref(s.batch, s.c, s.h, s.w, s.filters, s.size, s.stride, s.pad, s.groups, x.data(),
                              codes.data(), o);
        }
        if (!ok) throw std::bad_alloc();
        return out;
    }
    int nth = threads > 0 ? threads : 1;
    Scratch sc(dn_tconv_int8_scratch(&s, nth));
    int fl = simd_flag(simd);
    {
        py::gil_scoped_release nogil;
        dn_tconv_s32(&s, x.data(), &w, o, sc.p, nth, fl);
    }
    return out;
}

py::array_t<int32_t> tgemm_ref(i8array a, i8array b)
{
    if (a.ndim() != 2 || b.ndim() != 2 || a.shape(1) != b.shape(0))
        value_error("tgemm_ref: A M x K and B K x N int8");
    py::array_t<int32_t> c({a.shape(0), b.shape(1)});
    dn_tgemm_ref((int)a.shape(0), (int)b.shape(1), (int)a.shape(1), a.data(), b.data(), c.mutable_data());
    return c;
}

py::tuple quantize_ref(farray x)
{
    py::array_t<int8_t> q(x.request().shape);
    float s = dn_quantize_s8_ref(x.data(), (size_t)x.size(), q.mutable_data());
    return py::make_tuple(q, s);
}

dn_activation act_from(const std::string &name)
{
    if (name == "linear") return DN_ACT_LINEAR;
    if (name == "leaky") return DN_ACT_LEAKY;
    if (name == "relu") return DN_ACT_RELU;
    value_error("act: linear, leaky or relu");
}

// The int8 kernel on float input: (output N x F x OH x OW, act_scale[N]); pool=2: the
// output 2x2 stride-2 max pooled (N x F x OH/2 x OW/2).
py::tuple tconv_int8(farray x, i8array codes, farray scale, py::object shift, const std::string &act,
                     int stride, int pad, int groups, int simd, int threads, int pool)
{
    if (x.ndim() != 4) value_error("x must be N x C x H x W float32");
    if (pool != 0 && pool != 2) value_error("pool: 0 or 2");
    int size;
    dn_tweights w = make_weights(codes, (int)x.shape(1), groups, &size);
    std::unique_ptr<dn_tweights, void (*)(dn_tweights *)> guard(&w, dn_tweights_free);
    dn_conv_shape s = make_shape(x.shape(0), x.shape(1), x.shape(2), x.shape(3), (int)codes.shape(0), size,
                                 stride, pad, groups);
    if (scale.size() != s.filters) value_error("scale: one per filter");
    farray sh;
    if (!shift.is_none()) {
        sh = shift.cast<farray>();
        if (sh.size() != s.filters) value_error("shift: one per filter");
    }
    if (pool && (s.out_h % 2 || s.out_w % 2)) value_error("pool: the output height and width must be even");
    dn_epilogue ep{scale.data(), shift.is_none() ? nullptr : sh.data(), act_from(act), 0, pool};
    py::array_t<float> out({s.batch, s.filters, pool ? s.out_h / 2 : s.out_h, pool ? s.out_w / 2 : s.out_w}),
        sx(s.batch);
    float *o = out.mutable_data(), *so = sx.mutable_data();
    int nth = threads > 0 ? threads : 1;
    Scratch sc(dn_tconv_int8_scratch(&s, nth));
    int fl = simd_flag(simd);
    {
        py::gil_scoped_release nogil;
        dn_tconv_int8(&s, x.data(), &w, &ep, o, so, sc.p, nth, fl);
    }
    return py::make_tuple(out, sx);
}

}  // namespace

void bind_ternary(py::module_ &m)
{
    m.def("ternary_pack", &pack, py::arg("cfg"), py::arg("weights"), py::arg("out"), py::arg("fold") = false);
    m.def("ternary_unpack", &unpack, py::arg("cfg"), py::arg("packed"), py::arg("out"));
    m.def("ternary_stats", &stats, py::arg("cfg"), py::arg("path"));
    m.def("weights_is_packed", [](const std::string &p) { return (bool)dn_weights_is_packed(p.c_str()); },
          py::arg("path"));
    m.def("set_ternary_kernel", &set_kernel, py::arg("net"), py::arg("kernel"));
    m.def("ternary_kernel", &get_kernel, py::arg("net"));
    m.def("ternary_simd", &dn_ternary_simd);
    m.def("isa_level", &dn_isa_level);  // the float kernels: 2, 3 or 4 (x86-64-v2, v3, v4)
    m.def("ternary_simd_available", &dn_ternary_simd_available);
#ifdef DN_TEST_HOOKS
    // kernel entry points for the tests and benchmarks, only in builds with
    // DARKNET_TEST_HOOKS=1 (scripts/setup.sh), not in a pip install
    py::module_ t = m.def_submodule("testing", "kernel entry points for tests (DARKNET_TEST_HOOKS=1 builds)");
    t.def("fail_allocation", &dn_test_fail_allocation, py::arg("n"),
          "the n-th allocation from now of the core's checked allocator fails, once (n < 0: off)");
    t.def(
        "ternary_algo",
        [](int b, int c, int h, int w, int filters, int size, int stride, int pad, int groups) {
            dn_conv_shape s = make_shape(b, c, h, w, filters, size, stride, pad, groups);
            return std::string(dn_twino_wanted(&s) ? "winograd" : dn_timplicit_wanted(&s) ? "implicit" : "direct");
        },
        "the int8 kernel's algorithm for this conv shape now: winograd, implicit (the direct GEMM without\n"
        "im2col) or direct (DN_TERNARY_ALGO, else its rule)", py::arg("batch"),
        py::arg("c"), py::arg("h"), py::arg("w"), py::arg("filters"), py::arg("size"), py::arg("stride"),
        py::arg("pad"), py::arg("groups"));
    t.def("tconv_s32", &tconv_s32, py::arg("x"), py::arg("codes"), py::arg("stride") = 1, py::arg("pad") = 0,
          py::arg("groups") = 1, py::arg("simd") = -1, py::arg("threads") = 1, py::arg("ref") = false);
    t.def("tgemm_ref", &tgemm_ref, py::arg("a"), py::arg("b"));
    t.def("quantize_s8_ref", &quantize_ref, py::arg("x"));
    t.def("tconv_int8", &tconv_int8, py::arg("x"), py::arg("codes"), py::arg("scale"),
          py::arg("shift") = py::none(), py::arg("act") = "linear", py::arg("stride") = 1, py::arg("pad") = 0,
          py::arg("groups") = 1, py::arg("simd") = -1, py::arg("threads") = 1, py::arg("pool") = 0);
#endif
}
