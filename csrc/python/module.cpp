// module.cpp: darknet_py._core, pybind11 bindings over the C core. Bindings
// only: arrays become contiguous float32 here, outputs are allocated before
// calling C, the GIL is released around compute, and C status codes become
// Python exceptions in exactly one place (raise_status).
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <cstring>
#include <memory>
#include <string>
#include <vector>

extern "C" {
#include "darknet.h"
#include "../kernels/ref/ternary.h"
}
#include "common.h"

namespace py = pybind11;
using farray = py::array_t<float, py::array::c_style | py::array::forcecast>;

[[noreturn]] static void raise_as(const char *name, const std::string &msg)
{
    py::object errors = py::module_::import("darknet_py.errors");
    PyErr_SetString(errors.attr(name).ptr(), msg.c_str());
    throw py::error_already_set();
}

[[noreturn]] void raise_status(dn_status st)
{
    static const char *names[] = {"DarknetError", "DarknetIOError", "CfgParseError", "FormatError",
                                  "DarknetValueError", "DarknetMemoryError", "DarknetStateError",
                                  "DarknetUnsupportedError"};
    raise_as((unsigned)st < sizeof(names) / sizeof(names[0]) ? names[st] : names[0], dn_last_error());
}

[[noreturn]] void value_error(const std::string &msg)
{
    raise_as("DarknetValueError", msg);
}

void check(dn_status st)
{
    if (st != DN_OK) raise_status(st);
}

struct Network {
    dn_network *net = nullptr;

    Network(const std::string &cfg, int batch, uint64_t seed)
    {
        dn_status st;
        {
            py::gil_scoped_release nogil;
            st = dn_network_load(&net, cfg.c_str(), batch, seed);
        }
        check(st);
    }
    ~Network() { dn_network_free(net); }

    void load_weights(const std::string &path, int upto)
    {
        dn_status st;
        {
            py::gil_scoped_release nogil;
            st = dn_network_load_weights(net, path.c_str(), upto);
        }
        check(st);
    }
    void save_weights(const std::string &path, int upto) const
    {
        dn_status st;
        {
            py::gil_scoped_release nogil;
            st = dn_network_save_weights(net, path.c_str(), upto);
        }
        check(st);
    }
    std::vector<int> input_shape() const
    {
        int b, c, h, w;
        dn_network_input_shape(net, &b, &c, &h, &w);
        return {b, c, h, w};
    }
    void resize(int batch, int w, int h) { check(dn_network_resize(net, batch, w, h)); }

    py::array_t<float> layer_output(int i) const
    {
        dn_layer_info info;
        check(dn_network_layer_info(net, i, &info));
        int b;
        dn_network_input_shape(net, &b, nullptr, nullptr, nullptr);
        py::array_t<float> out({b, info.out_c, info.out_h, info.out_w});
        const float *y = dn_network_layer_output(net, i);
        if (!y) check(DN_ERR_NOMEM);  /* a fused-away output recomputed now: its forward failed */
        std::memcpy(out.mutable_data(), y, sizeof(float) * out.size());
        return out;
    }

    // x: N x C x H x W float32. Runs the whole network; returns the last layer's output.
    py::array_t<float> forward(farray x)
    {
        int b, c, h, w;
        dn_network_input_shape(net, &b, &c, &h, &w);
        if (x.ndim() != 4 || x.shape(1) != c)
            value_error("forward: expected a float32 array N x " + std::to_string(c) +
                                  " x H x W, got ndim=" + std::to_string(x.ndim()));
        int n = (int)x.shape(0), xh = (int)x.shape(2), xw = (int)x.shape(3);
        if (n <= 0) value_error("forward: empty batch");
        if (n != b || xh != h || xw != w) check(dn_network_resize(net, n, xw, xh));
        dn_status st;
        {
            py::gil_scoped_release nogil;
            st = dn_network_forward(net, x.data());
        }
        check(st);
        return layer_output(dn_network_num_layers(net) - 1);
    }

    // Decoded boxes of image b after forward: (boxes N x 4 [x, y, w, h],
    // objectness N, probs N x classes), before NMS.
    py::tuple detections(int b, int img_w, int img_h, float thresh, bool letterbox, bool relative,
                         float nms)
    {
        dn_detections d;
        check(dn_network_detections(net, b, img_w, img_h, thresh, letterbox, relative, &d));
        dn_status st = nms > 0 ? dn_network_nms(net, &d, nms) : DN_OK;
        if (st != DN_OK) {
            dn_detections_free(&d);
            check(st);
        }
        py::array_t<float> boxes({d.n, 4}), obj(d.n), probs({d.n, d.classes});
        for (int i = 0; i < d.n; ++i) {
            float *bx = boxes.mutable_data(i, 0);
            bx[0] = d.dets[i].bbox.x; bx[1] = d.dets[i].bbox.y;
            bx[2] = d.dets[i].bbox.w; bx[3] = d.dets[i].bbox.h;
            obj.mutable_data()[i] = d.dets[i].objectness;
            if (d.classes) std::memcpy(probs.mutable_data(i, 0), d.dets[i].prob, sizeof(float) * d.classes);
        }
        dn_detections_free(&d);
        return py::make_tuple(boxes, obj, probs);
    }

    // Saved tensors of layer i as writable 1-D views (kept alive by self).
    static py::dict params(py::object self, int i)
    {
        Network &n = self.cast<Network &>();
        py::dict out;
        const char *name;
        float *data;
        size_t cnt;
        dn_layer_info info;
        check(dn_network_layer_info(n.net, i, &info));
        for (int k = 0; dn_network_layer_param(n.net, i, k, &name, &data, &cnt) == DN_OK; ++k)
            out[name] = py::array_t<float>({(py::ssize_t)cnt}, {sizeof(float)}, data, self);
        return out;
    }

    // Gradients of layer i's trainable tensors, as views (training mode only).
    static py::dict grads(py::object self, int i)
    {
        Network &n = self.cast<Network &>();
        py::dict out;
        const char *name;
        float *data;
        size_t cnt;
        dn_layer_info info;
        check(dn_network_layer_info(n.net, i, &info));
        for (int k = 0; dn_network_layer_param(n.net, i, k, &name, &data, &cnt) == DN_OK; ++k) {
            float *g = dn_network_layer_grad(n.net, i, k);
            if (g) out[name] = py::array_t<float>({(py::ssize_t)cnt}, {sizeof(float)}, g, self);
        }
        return out;
    }

    void set_train(bool on) { check(dn_network_set_train(net, on)); }

    // truth: batch x max_boxes x 5 (x, y, w, h, class) for the next training forward.
    void set_truth(farray truth)
    {
        int b;
        dn_network_input_shape(net, &b, nullptr, nullptr, nullptr);
        if (truth.ndim() != 3 || truth.shape(0) != b || truth.shape(2) != 5)
            value_error("set_truth: expected a float32 array " + std::to_string(b) +
                                  " x max_boxes x 5 (the network batch is " + std::to_string(b) + ")");
        check(dn_network_set_truth(net, truth.data(), (int)truth.shape(1)));
    }

    // After forward in training mode: backward from out_grad (same shape as
    // the last output; None keeps the detector deltas); returns dL/dinput.
    py::array_t<float> backward(py::object out_grad)
    {
        int b, c, h, w;
        dn_network_input_shape(net, &b, &c, &h, &w);
        farray g;
        const float *gp = nullptr;
        if (!out_grad.is_none()) {
            g = out_grad.cast<farray>();
            dn_layer_info last;
            check(dn_network_layer_info(net, dn_network_num_layers(net) - 1, &last));
            if (g.size() != (py::ssize_t)b * last.out_c * last.out_h * last.out_w)
                value_error("backward: out_grad must have the shape of the last output");
            gp = g.data();
        }
        py::array_t<float> in_grad({b, c, h, w});
        float *ip = in_grad.mutable_data();
        dn_status st;
        {
            py::gil_scoped_release nogil;
            st = dn_network_backward(net, gp, ip);
        }
        check(st);
        return in_grad;
    }

    // One optimiser step over a full cfg batch (see dn_network_train_step).
    float train_step(farray images, farray truth)
    {
        int b, c, h, w;
        dn_network_input_shape(net, &b, &c, &h, &w);
        if (images.ndim() != 4 || images.shape(1) != c || images.shape(2) != h || images.shape(3) != w)
            value_error("train_step: images must be N x " + std::to_string(c) + " x " +
                                  std::to_string(h) + " x " + std::to_string(w));
        if (truth.ndim() != 3 || truth.shape(0) != images.shape(0) || truth.shape(2) != 5)
            value_error("train_step: truth must be N x max_boxes x 5 (x, y, w, h, class)");
        if (images.shape(0) % b)
            value_error("train_step: the number of images must be a multiple of the batch (" +
                                  std::to_string(b) + ")");
        float loss = 0;
        dn_status st;
        {
            py::gil_scoped_release nogil;
            st = dn_network_train_step(net, images.data(), truth.data(), (int)images.shape(0),
                                       (int)truth.shape(1), &loss);
        }
        check(st);
        return loss;
    }

    py::list layers() const
    {
        py::list out;
        for (int i = 0; i < dn_network_num_layers(net); ++i) {
            dn_layer_info f;
            check(dn_network_layer_info(net, i, &f));
            py::dict d;
            d["index"] = i;
            d["type"] = f.type;
            d["input_shape"] = py::make_tuple(f.in_c, f.in_h, f.in_w);
            d["output_shape"] = py::make_tuple(f.out_c, f.out_h, f.out_w);
            d["bflops"] = f.bflops;
            d["ternary"] = (bool)f.ternary;
            d["filters"] = f.filters;
            d["size"] = f.size;
            d["stride"] = f.stride;
            d["pad"] = f.pad;
            d["groups"] = f.groups;
            d["batch_normalize"] = (bool)f.batch_normalize;
            d["activation"] = f.activation;
            d["nparams"] = f.nparams;
            d["classes"] = f.classes;
            d["num"] = f.num;
            d["forward_ms"] = f.forward_ms;
            if (f.cudnn_forward) {
                py::dict c;
                c["forward"] = f.cudnn_forward;
                c["backward_filter"] = f.cudnn_backward_filter;
                c["backward_data"] = f.cudnn_backward_data;
                c["workspace"] = f.cudnn_workspace;
                d["cudnn"] = c;
            } else {
                d["cudnn"] = py::none();
            }
            out.append(d);
        }
        return out;
    }
};

dn_network *core_network(py::handle obj) { return obj.cast<Network &>().net; }

// Image helpers: H x W x 3 uint8 arrays <-> the core's CHW float images.
using u8array = py::array_t<uint8_t, py::array::c_style | py::array::forcecast>;

static dn_image from_u8(const u8array &img)
{
    if (img.ndim() != 3 || img.shape(2) != 3) value_error("expected an H x W x 3 uint8 image");
    dn_image im;
    check(dn_image_from_u8(&im, img.data(), (int)img.shape(1), (int)img.shape(0), 3));
    return im;
}

// HxWx3 uint8 -> letterboxed (or stretched) 1 x 3 x h x w float32 in [0,1].
static py::array_t<float> letterbox_u8(const u8array &img, int w, int h, bool letterbox)
{
    dn_image im = from_u8(img), lb;
    dn_status st = dn_image_fit(&im, w, h, letterbox, &lb);
    dn_image_free(&im);
    check(st);
    py::array_t<float> out({1, 3, h, w});
    std::memcpy(out.mutable_data(), lb.data, sizeof(float) * out.size());
    dn_image_free(&lb);
    return out;
}

// A CHW float image in [0,1] as H x W x 3 uint8 (rounded, clipped).
static py::array_t<uint8_t> to_u8(const dn_image &im)
{
    py::array_t<uint8_t> out({im.h, im.w, 3});
    uint8_t *o = out.mutable_data();
    for (int y = 0; y < im.h; ++y)
        for (int x = 0; x < im.w; ++x)
            for (int c = 0; c < 3; ++c) {
                float v = im.data[((size_t)c * im.h + y) * im.w + x] * 255.f + .5f;
                o[((size_t)y * im.w + x) * 3 + c] = (uint8_t)(v < 0 ? 0 : v > 255 ? 255 : v);
            }
    return out;
}

static py::array_t<uint8_t> load_image(const std::string &path)
{
    dn_image im;
    check(dn_image_load(&im, path.c_str(), 3));
    py::array_t<uint8_t> out = to_u8(im);
    dn_image_free(&im);
    return out;
}

// A copy of img with boxes[i] = (left, top, right, bottom) in pixels drawn in
// the colour of class ids[i] of classes, labelled labels[i] (as detector test).
static py::array_t<uint8_t> draw_boxes(const u8array &img,
                                       py::array_t<double, py::array::c_style | py::array::forcecast> boxes,
                                       std::vector<int> ids, int classes, std::vector<std::string> labels)
{
    size_t n = ids.size();
    if (labels.size() != n || (size_t)boxes.size() != 4 * n)
        value_error("draw_boxes: expected n boxes of 4 corners, n class ids and n labels");
    dn_image im = from_u8(img);
    const double *b = boxes.data();
    for (size_t i = 0; i < n; ++i)
        dn_image_draw_box(&im, b[4 * i], b[4 * i + 1], b[4 * i + 2], b[4 * i + 3], ids[i], classes,
                          labels[i].c_str());
    py::array_t<uint8_t> out = to_u8(im);
    dn_image_free(&im);
    return out;
}

// Write an H x W x 3 uint8 image as PNG (atomically).
static void save_png(const u8array &img, const std::string &path)
{
    dn_image im = from_u8(img);
    dn_status st = dn_image_save_png(&im, path.c_str());
    dn_image_free(&im);
    check(st);
}

// Anchors of an image list: (n x 2 array of w, h in pixels, avg IoU, boxes).
static py::tuple calc_anchors(const std::string &list, int classes, int n, int width, int height)
{
    py::array_t<float> a({n > 0 ? n : 0, 2});
    float avg_iou = 0;
    int boxes = 0;
    dn_status st;
    {
        py::gil_scoped_release nogil;
        st = dn_anchors_compute(list.c_str(), classes, n, width, height, a.mutable_data(), &avg_iou, &boxes);
    }
    check(st);
    return py::make_tuple(a, avg_iou, boxes);
}

// TWN quantiser: (ternary weights, alphas) with one alpha per group.
static py::tuple ternarize(farray w, int groups)
{
    if (groups <= 0 || w.size() % groups) value_error("ternarize: groups must divide the size");
    py::array_t<float> t(w.size()), a(groups);
    dn_ternarize_groups(w.data(), groups, (size_t)(w.size() / groups), t.mutable_data(), a.mutable_data());
    return py::make_tuple(t, a);
}

// Training data: label files and the background loader.
static std::string label_path(const std::string &image)
{
    char out[4096];
    check(dn_label_path(image.c_str(), out, sizeof out));
    return out;
}

static py::array_t<float> load_labels(const std::string &path, int classes)
{
    dn_label *l;
    int n;
    check(dn_labels_load(path.c_str(), classes, &l, &n));
    py::array_t<float> out({n, 5});
    for (int i = 0; i < n; ++i) {
        float *r = out.mutable_data(i, 0);
        r[0] = (float)l[i].id; r[1] = l[i].x; r[2] = l[i].y; r[3] = l[i].w; r[4] = l[i].h;
    }
    free(l);
    return out;
}

struct Loader {
    dn_loader *ld = nullptr;
    dn_loader_opts o{};
    std::string list;

    Loader(const std::string &list_path, int batch, int classes, int max_boxes, bool augment,
           float jitter, float hue, float saturation, float exposure, uint64_t seed, int max_skips,
           int placement, float resize, bool letterbox, bool flip)
        : list(list_path)
    {
        o.placement = placement; o.resize = resize; o.letterbox = letterbox; o.no_flip = !flip;
        o.list_path = list.c_str();
        o.batch = batch; o.classes = classes; o.max_boxes = max_boxes; o.augment = augment;
        o.jitter = jitter; o.hue = hue; o.saturation = saturation; o.exposure = exposure;
        o.seed = seed; o.max_skips = max_skips;
        check(dn_loader_open(&ld, &o));
    }
    ~Loader() { dn_loader_close(ld); }

    // (images batch x 3 x h x w, truth batch x max_boxes x 5 [x, y, w, h, class])
    py::tuple next(int w, int h)
    {
        if (w <= 0 || h <= 0) value_error("Loader.next: size must be positive");
        py::array_t<float> images({o.batch, 3, h, w}), truth({o.batch, o.max_boxes, 5});
        float *im = images.mutable_data(), *tr = truth.mutable_data();
        dn_status st;
        {
            py::gil_scoped_release nogil;
            st = dn_loader_next(ld, w, h, im, tr);
        }
        check(st);
        return py::make_tuple(images, truth);
    }
};

// Training: the C loop runs without the GIL; the per-iteration callback takes
// it to call Python and to notice Ctrl-C (which stops after a checkpoint).
struct TrainCtx {
    py::object callback;
    bool interrupted = false;
    std::unique_ptr<py::error_already_set> error; // raised by the callback
};

static int train_callback(const dn_train_stats *s, void *user)
{
    TrainCtx *ctx = static_cast<TrainCtx *>(user);
    py::gil_scoped_acquire gil;
    if (PyErr_CheckSignals() != 0) {
        PyErr_Clear();
        ctx->interrupted = true;
        return 1;
    }
    if (ctx->callback.is_none()) return 0;
    py::dict d;
    d["iteration"] = s->iteration;
    d["loss"] = s->loss;
    d["avg_loss"] = s->avg_loss;
    d["learning_rate"] = s->learning_rate;
    d["seconds"] = s->seconds;
    d["seen"] = s->seen;
    d["width"] = s->width;
    d["height"] = s->height;
    d["skipped"] = s->skipped;
    d["map"] = s->map >= 0 ? py::object(py::float_(s->map)) : py::object(py::none());
    try { // never unwind through the C loop: stop it, re-raise afterwards
        py::object r = ctx->callback(d);
        return (!r.is_none() && r.cast<bool>()) ? 1 : 0;
    } catch (py::error_already_set &e) {
        ctx->error = std::make_unique<py::error_already_set>(std::move(e));
        return 1;
    }
}

static py::dict train(const std::string &data, const std::string &cfg, py::object weights,
                      py::object backup, int max_batches, bool clear, uint64_t seed, int nthreads,
                      bool quiet, int max_skips, int map_every, py::object callback,
                      std::vector<int> gpus, int letterbox, int bn_recalibrate, int average_last,
                      py::object teacher, py::object teacher_cfg, float distill)
{
    std::string w = weights.is_none() ? "" : weights.cast<std::string>();
    std::string tw = teacher.is_none() ? "" : teacher.cast<std::string>();
    std::string tc = teacher_cfg.is_none() ? "" : teacher_cfg.cast<std::string>();
    std::string b = backup.is_none() ? "" : backup.cast<std::string>();
    TrainCtx ctx{callback};
    dn_train_opts o{};
    o.data = data.c_str();
    o.cfg = cfg.c_str();
    o.weights = w.empty() ? nullptr : w.c_str();
    o.backup = b.empty() ? nullptr : b.c_str();
    o.max_batches = max_batches;
    o.clear = clear;
    o.seed = seed;
    o.nthreads = nthreads;
    o.quiet = quiet;
    o.max_skips = max_skips;
    o.map_every = map_every;
    o.callback = train_callback;
    o.user = &ctx;
    o.gpus = gpus.empty() ? nullptr : gpus.data();
    o.ngpus = (int)gpus.size();
    o.letterbox = letterbox;
    o.bn_recalibrate = bn_recalibrate;
    o.average_last = average_last;
    o.teacher = tw.empty() ? nullptr : tw.c_str();
    o.teacher_cfg = tc.empty() ? nullptr : tc.c_str();
    o.distill = distill;
    dn_train_result r;
    dn_status st;
    {
        py::gil_scoped_release nogil;
        st = dn_train(&o, &r);
    }
    if (ctx.error) throw *ctx.error;
    check(st);
    py::dict out;
    out["final"] = std::string(r.final_path);
    out["minloss"] = std::string(r.minloss_path);
    out["minloss_backup"] = *r.minloss_backup_path ? py::object(py::str(r.minloss_backup_path)) : py::object(py::none());
    out["backup"] = std::string(r.backup_path);
    out["min_loss"] = r.min_loss;
    out["iterations"] = r.iterations;
    out["interrupted"] = r.interrupted || ctx.interrupted;
    out["best"] = r.best_map >= 0 ? py::object(py::str(r.best_path)) : py::object(py::none());
    out["best_map"] = r.best_map >= 0 ? py::object(py::float_(r.best_map)) : py::object(py::none());
    return out;
}

PYBIND11_MODULE(_core, m)
{
    m.doc() = "Bindings over the ternary-weight Darknet C core (use darknet_py instead).";
    py::class_<Network>(m, "Network")
        .def(py::init<const std::string &, int, uint64_t>(), py::arg("cfg"), py::arg("batch") = 1,
             py::arg("seed") = 0)
        .def("load_weights", &Network::load_weights, py::arg("path"), py::arg("upto") = -1)
        .def("save_weights", &Network::save_weights, py::arg("path"), py::arg("upto") = -1)
        .def("forward", &Network::forward)
        .def("layer_output", &Network::layer_output)
        .def("params", &Network::params, py::arg("i"))
        .def("grads", &Network::grads, py::arg("i"))
        .def("set_train", &Network::set_train, py::arg("on") = true)
        .def("set_truth", &Network::set_truth, py::arg("truth"))
        .def("backward", &Network::backward, py::arg("out_grad") = py::none())
        .def("train_step", &Network::train_step, py::arg("images"), py::arg("truth"))
        .def("bn_recalibrate", [](Network &n, farray images) {
            if (images.ndim() != 4) value_error("bn_recalibrate: images must be N x C x H x W");
            dn_status st;
            {
                py::gil_scoped_release nogil;
                st = dn_network_bn_recalibrate(n.net, images.data(), (int)images.shape(0));
            }
            check(st);
        }, py::arg("images"))
        .def("zero_grads", [](Network &n) { dn_network_zero_grads(n.net); })
        .def("set_teacher", [](Network &n, Network *t, float weight) {
            check(dn_network_set_teacher(n.net, t ? t->net : nullptr, weight));
        }, py::arg("teacher"), py::arg("weight") = 1.0f, py::keep_alive<1, 2>())
        .def_property_readonly("cost", [](const Network &n) { return dn_network_cost(n.net); })
        .def("resize", &Network::resize, py::arg("batch"), py::arg("w"), py::arg("h"))
        .def("detections", &Network::detections, py::arg("b"), py::arg("img_w"), py::arg("img_h"),
             py::arg("thresh"), py::arg("letterbox") = true, py::arg("relative") = false,
             py::arg("nms") = 0.45f)
        .def("set_threads", [](Network &n, int t) { dn_network_set_threads(n.net, t); })
        .def("set_device", [](Network &n, int gpu) {
            dn_status st;
            {
                py::gil_scoped_release nogil;
                st = dn_network_set_device(n.net, gpu);
            }
            check(st);
        }, py::arg("gpu"))
        .def_property_readonly("device", [](const Network &n) { return dn_network_device(n.net); })
        .def_property_readonly("cudnn", [](const Network &n) { return dn_network_uses_cudnn(n.net) != 0; })
        .def_property_readonly("input_shape", &Network::input_shape)
        .def_property_readonly("layers", &Network::layers)
        .def_property_readonly("learning_rate", [](Network &n) { return dn_network_learning_rate(n.net); })
        .def_property("letterbox", [](const Network &n) { return dn_network_letterbox(n.net) != 0; },
                      [](Network &n, py::object v) { dn_network_set_letterbox(n.net, v.is_none() ? -1 : v.cast<bool>()); })
        .def_property_readonly("alexeyab", [](const Network &n) { return dn_network_is_alexeyab(n.net) != 0; })
        .def_property_readonly("current_batch", [](const Network &n) { return dn_network_current_batch(n.net); })
        .def_property("seen", [](const Network &n) { return dn_network_seen(n.net); },
                      [](Network &n, uint64_t s) { dn_network_set_seen(n.net, s); });
    m.def("train", &train, py::arg("data"), py::arg("cfg"), py::arg("weights") = py::none(),
          py::arg("backup") = py::none(), py::arg("max_batches") = 0, py::arg("clear") = false,
          py::arg("seed") = 0, py::arg("nthreads") = 0, py::arg("quiet") = true,
          py::arg("max_skips") = -1, py::arg("map_every") = 0, py::arg("callback") = py::none(),
          py::arg("gpus") = std::vector<int>(), py::arg("letterbox") = 0, py::arg("bn_recalibrate") = 0,
          py::arg("average_last") = 0, py::arg("teacher") = py::none(), py::arg("teacher_cfg") = py::none(),
          py::arg("distill") = 1.0f);
    m.def("cuda_compiled", []() { return dn_cuda_compiled() != 0; });
    m.def("cuda_device_count", []() { return dn_cuda_device_count(); });
    m.def("ternarize", &ternarize, py::arg("w"), py::arg("groups") = 1);
    m.def("label_path", &label_path, py::arg("image_path"));
    m.def("load_labels", &load_labels, py::arg("path"), py::arg("classes") = 0);
    m.def("calc_anchors", &calc_anchors, py::arg("list"), py::arg("classes"), py::arg("n"), py::arg("width"),
          py::arg("height"));
    py::class_<Loader>(m, "Loader")
        .def(py::init<const std::string &, int, int, int, bool, float, float, float, float, uint64_t, int, int,
                      float, bool, bool>(),
             py::arg("list"), py::arg("batch"), py::arg("classes"), py::arg("max_boxes") = 90,
             py::arg("augment") = true, py::arg("jitter") = .2f, py::arg("hue") = .1f,
             py::arg("saturation") = 1.5f, py::arg("exposure") = 1.5f, py::arg("seed") = 0,
             py::arg("max_skips") = -1, py::arg("placement") = 0, py::arg("resize") = 1.f,
             py::arg("letterbox") = false, py::arg("flip") = true)
        .def("next", &Loader::next, py::arg("w"), py::arg("h"))
        .def_property_readonly("size", [](const Loader &l) { return dn_loader_size(l.ld); })
        .def_property_readonly("skipped", [](const Loader &l) { return dn_loader_skipped(l.ld); });
    m.def("set_option", [](const std::string &name, py::object value) {
        std::string v = value.is_none() ? std::string() : py::str(value).cast<std::string>();
        check(dn_set_option(name.c_str(), value.is_none() ? nullptr : v.c_str()));
    }, py::arg("name"), py::arg("value"));
    m.def("options", []() {
        py::dict d;
        char buf[256];
        for (int k = 0; dn_option_name(k); ++k) d[dn_option_name(k)] = py::make_tuple(dn_get_option(dn_option_name(k)), std::string(dn_option_help(k, buf, sizeof buf)));
        return d;
    });
    m.def("letterbox", &letterbox_u8, py::arg("image"), py::arg("w"), py::arg("h"), py::arg("letterbox") = true);
    m.def("load_image", &load_image, py::arg("path"));
    m.def("draw_boxes", &draw_boxes, py::arg("image"), py::arg("boxes"), py::arg("ids"), py::arg("classes"),
          py::arg("labels"));
    m.def("save_png", &save_png, py::arg("image"), py::arg("path"));
    bind_eval(m);
    bind_ternary(m);
#ifdef DN_TEST_HOOKS
    py::module_ testing = m.attr("testing");  // bind_ternary made it
    testing.def("cuda_ternarize", [](farray w, int groups, int gpu) {
        if (groups <= 0 || w.size() % groups) value_error("cuda_ternarize: groups must divide the size");
        py::array_t<float> t(w.size()), a(groups);
        dn_status st;
        {
            py::gil_scoped_release nogil;
            st = dn_cuda_ternarize(gpu, w.data(), groups, (size_t)(w.size() / groups), t.mutable_data(),
                                   a.mutable_data());
        }
        check(st);
        return py::make_tuple(t, a);
    }, py::arg("w"), py::arg("groups") = 1, py::arg("gpu") = 0);
#endif
    bind_cli(m);
    bind_export(m);
}
