// eval_bind.cpp: bindings of the AP/mAP evaluator and the validation driver
// (csrc/eval/map.c, validate.c). Bindings only: boxes arrive as float64
// corner arrays and become dn_box here; the C calls run without the GIL and
// the callbacks take it back to call Python (progress, per-image capture),
// stopping the run when Python raises (Ctrl-C included), re-raised after.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <memory>
#include <string>
#include <vector>

#include "common.h"

namespace py = pybind11;
using darray = py::array_t<double, py::array::c_style | py::array::forcecast>;

namespace {

// Corners (x1, y1, x2, y2) <-> dn_box (centre, size). Done in double, the
// round trip of a float box is exact.
dn_box box_from_corners(const double *c)
{
    return dn_box{(float)((c[0] + c[2]) / 2), (float)((c[1] + c[3]) / 2), (float)(c[2] - c[0]),
                  (float)(c[3] - c[1])};
}

void corners_from_box(dn_box b, double *c)
{
    c[0] = (double)b.x - (double)b.w / 2;
    c[1] = (double)b.y - (double)b.h / 2;
    c[2] = (double)b.x + (double)b.w / 2;
    c[3] = (double)b.y + (double)b.h / 2;
}

// An owned dn_eval_result.
struct EvalResult {
    dn_eval_result r{};
    EvalResult() = default;
    EvalResult(const EvalResult &) = delete;
    EvalResult &operator=(const EvalResult &) = delete;
    ~EvalResult() { dn_eval_result_free(&r); }

    py::dict summary() const
    {
        py::dict d;
        d["classes"] = r.classes;
        d["images"] = r.images;
        d["map"] = r.map;
        d["classes_with_truth"] = r.classes_with_truth;
        d["truth"] = r.truth;
        d["detections"] = r.detections;
        d["tp"] = r.tp;
        d["fp"] = r.fp;
        d["fn"] = r.fn;
        d["precision"] = r.precision;
        d["recall"] = r.recall;
        d["f1"] = r.f1;
        d["avg_iou"] = r.avg_iou;
        d["iou_thresh"] = r.opts.iou_thresh;
        d["thresh"] = r.opts.thresh;
        d["points"] = r.opts.points;
        d["seconds_network"] = r.seconds_network;
        d["seconds_decode"] = r.seconds_decode;
        d["seconds_eval"] = r.seconds_eval;
        py::list per_class;
        for (int c = 0; c < r.classes; ++c) {
            const dn_class_eval &e = r.per_class[c];
            py::dict p;
            p["ap"] = e.ap;
            p["truth"] = e.truth;
            p["difficult"] = e.difficult;
            p["detections"] = e.detections;
            p["tp"] = e.tp;
            p["fp"] = e.fp;
            p["fn"] = e.fn;
            p["avg_iou"] = e.avg_iou;
            per_class.append(p);
        }
        d["per_class"] = per_class;
        return d;
    }

    std::string format(const std::vector<std::string> &names) const
    {
        std::vector<const char *> p;
        for (const auto &n : names) p.push_back(n.c_str());
        size_t n = dn_eval_result_format(&r, p.data(), (int)p.size(), nullptr, 0);
        std::string out(n + 1, '\0');
        dn_eval_result_format(&r, p.data(), (int)p.size(), &out[0], n + 1);
        out.resize(n);
        return out;
    }
};

dn_eval_opts eval_opts(float iou_thresh, float thresh, int points)
{
    dn_eval_opts o;
    o.iou_thresh = iou_thresh;
    o.thresh = thresh;
    o.points = points;
    return o;
}

void check_rows(const darray &a, const char *what)
{
    if (a.ndim() != 2 || a.shape(1) != 7)
        value_error(std::string("evaluate: ") + what + " must be an N x 7 float64 array");
}

// truth: N x 7 [image, class, x1, y1, x2, y2, difficult];
// dets: M x 7 [image, class, score, x1, y1, x2, y2]. Rows are added in order.
std::unique_ptr<EvalResult> evaluate(darray truth, darray dets, int classes, float iou_thresh, float thresh,
                                     int points)
{
    check_rows(truth, "ground truth");
    check_rows(dets, "detections");
    std::vector<dn_eval_truth> t((size_t)truth.shape(0));
    std::vector<int> timg(t.size()), dimg((size_t)dets.shape(0));
    std::vector<dn_eval_det> d(dimg.size());
    for (size_t i = 0; i < t.size(); ++i) {
        const double *row = truth.data((py::ssize_t)i, 0);
        timg[i] = (int)row[0];
        t[i] = dn_eval_truth{box_from_corners(row + 2), (int)row[1], row[6] != 0};
    }
    for (size_t i = 0; i < d.size(); ++i) {
        const double *row = dets.data((py::ssize_t)i, 0);
        dimg[i] = (int)row[0];
        d[i] = dn_eval_det{box_from_corners(row + 3), (int)row[1], (float)row[2]};
    }
    auto res = std::make_unique<EvalResult>();
    dn_evaluator *ev = nullptr;
    dn_status st;
    {
        py::gil_scoped_release nogil;
        st = dn_evaluator_init(&ev, classes);
        for (size_t i = 0, j; st == DN_OK && i < t.size(); i = j) {  // runs of one image
            for (j = i + 1; j < t.size() && timg[j] == timg[i]; ++j) {}
            st = dn_evaluator_add(ev, timg[i], &t[i], (int)(j - i), nullptr, 0);
        }
        for (size_t i = 0, j; st == DN_OK && i < d.size(); i = j) {
            for (j = i + 1; j < d.size() && dimg[j] == dimg[i]; ++j) {}
            st = dn_evaluator_add(ev, dimg[i], nullptr, 0, &d[i], (int)(j - i));
        }
        dn_eval_opts o = eval_opts(iou_thresh, thresh, points);
        if (st == DN_OK) st = dn_evaluator_compute(ev, &o, &res->r);
        dn_evaluator_free(ev);
    }
    check(st);
    return res;
}

// Callbacks of a validation run: they hold the GIL only while they run.
struct RunCtx {
    py::object progress;        // progress(done, total) or None
    bool capture = false;
    py::list images;            // captured per-image dicts
    std::unique_ptr<py::error_already_set> error;
};

int progress_cb(int done, int total, void *user)
{
    RunCtx *ctx = static_cast<RunCtx *>(user);
    py::gil_scoped_acquire gil;
    try {
        if (PyErr_CheckSignals() != 0) throw py::error_already_set();
        if (!ctx->progress.is_none()) ctx->progress(done, total);
    } catch (py::error_already_set &e) {  // never unwind through C: stop, re-raise afterwards
        ctx->error = std::make_unique<py::error_already_set>(std::move(e));
        return 1;
    }
    return 0;
}

// One captured image: dets N x 6 [class, score, x1, y1, x2, y2] (the entries
// the evaluator gets), truth N x 6 [class, x1, y1, x2, y2, difficult], pixels.
int image_cb(const dn_valid_image *im, void *user)
{
    RunCtx *ctx = static_cast<RunCtx *>(user);
    py::gil_scoped_acquire gil;
    try {
        py::array_t<double> dets({(py::ssize_t)im->nentries, (py::ssize_t)6});
        py::array_t<double> truth({(py::ssize_t)im->ntruth, (py::ssize_t)6});
        for (int i = 0; i < im->nentries; ++i) {
            double *r = dets.mutable_data(i, 0);
            r[0] = im->entries[i].class_id;
            r[1] = im->entries[i].score;
            corners_from_box(im->entries[i].box, r + 2);
        }
        for (int i = 0; i < im->ntruth; ++i) {
            double *r = truth.mutable_data(i, 0);
            r[0] = im->truth[i].class_id;
            corners_from_box(im->truth[i].box, r + 1);
            r[5] = im->truth[i].difficult;
        }
        py::dict d;
        d["path"] = std::string(im->path);
        d["width"] = im->width;
        d["height"] = im->height;
        d["detections"] = dets;
        d["truth"] = truth;
        ctx->images.append(d);
    } catch (py::error_already_set &e) {
        ctx->error = std::make_unique<py::error_already_set>(std::move(e));
        return 1;
    }
    return 0;
}

std::string opt_str(const py::object &o) { return o.is_none() ? std::string() : py::str(o).cast<std::string>(); }

struct RunArgs {
    std::string data, cfg, weights, list;
    dn_validate_opts o;
    RunCtx ctx;

    RunArgs(py::object data_, const std::string &cfg_, py::object weights_, py::object list_, float det_thresh,
            float nms, int nthreads, int gpu, py::object progress, int letterbox)
        : data(opt_str(data_)), cfg(cfg_), weights(opt_str(weights_)), list(opt_str(list_))
    {
        dn_validate_opts_default(&o);
        o.data = data.empty() ? nullptr : data.c_str();
        o.cfg = cfg.c_str();
        o.weights = weights.empty() ? nullptr : weights.c_str();
        o.list = list.empty() ? nullptr : list.c_str();
        o.det_thresh = det_thresh;
        o.nms = nms;
        o.nthreads = nthreads;
        o.gpu = gpu;
        o.letterbox = letterbox;
        ctx.progress = progress;
        o.progress = progress_cb;
        o.progress_user = &ctx;
    }

    // Raise what a callback raised, else the C status.
    void finish(dn_status st)
    {
        if (ctx.error) throw *ctx.error;
        check(st);
    }
};

// -> (EvalResult, [captured image dicts] or None)
py::tuple validate(py::object data, const std::string &cfg, py::object weights, py::object list,
                   float iou_thresh, float thresh, int points, float det_thresh, float nms, int nthreads, int gpu,
                   py::object progress, bool capture, int letterbox)
{
    RunArgs a(data, cfg, weights, list, det_thresh, nms, nthreads, gpu, progress, letterbox);
    a.o.eval = eval_opts(iou_thresh, thresh, points);
    if (capture) {
        a.o.on_image = image_cb;
        a.o.image_user = &a.ctx;
    }
    auto res = std::make_unique<EvalResult>();
    dn_status st;
    {
        py::gil_scoped_release nogil;
        st = dn_validate(&a.o, &res->r);
    }
    a.finish(st);
    py::object images = capture ? py::object(a.ctx.images) : py::object(py::none());
    return py::make_tuple(py::cast(std::move(res)), images);
}

void write_results(py::object data, const std::string &cfg, py::object weights, py::object list,
                   py::object dir, py::object prefix, const std::vector<std::string> &names, float det_thresh,
                   float nms, int nthreads, int gpu, py::object progress, int letterbox)
{
    RunArgs a(data, cfg, weights, list, det_thresh, nms, nthreads, gpu, progress, letterbox);
    std::string d = opt_str(dir), p = opt_str(prefix);
    std::vector<const char *> n;
    for (const auto &s : names) n.push_back(s.c_str());
    dn_status st;
    {
        py::gil_scoped_release nogil;
        st = dn_validate_write_results(&a.o, d.empty() ? nullptr : d.c_str(), prefix.is_none() ? nullptr : p.c_str(),
                                       n.data(), (int)n.size());
    }
    a.finish(st);
}

}  // namespace

void bind_eval(py::module_ &m)
{
    py::class_<EvalResult>(m, "EvalResult")
        .def("summary", &EvalResult::summary)
        .def("format", &EvalResult::format, py::arg("names") = std::vector<std::string>());
    m.def("evaluate", &evaluate, py::arg("truth"), py::arg("dets"), py::arg("classes"),
          py::arg("iou_thresh") = .5f, py::arg("thresh") = .25f, py::arg("points") = 0);
    m.def("validate", &validate, py::arg("data"), py::arg("cfg"), py::arg("weights") = py::none(),
          py::arg("list") = py::none(), py::arg("iou_thresh") = .5f, py::arg("thresh") = .25f,
          py::arg("points") = 0, py::arg("det_thresh") = .005f, py::arg("nms") = .45f,
          py::arg("nthreads") = 0, py::arg("gpu") = -1, py::arg("progress") = py::none(),
          py::arg("capture") = false, py::arg("letterbox") = -1);
    m.def("write_results", &write_results, py::arg("data"), py::arg("cfg"), py::arg("weights") = py::none(),
          py::arg("list") = py::none(), py::arg("dir") = py::none(), py::arg("prefix") = py::none(),
          py::arg("names") = std::vector<std::string>(), py::arg("det_thresh") = .005f, py::arg("nms") = .45f,
          py::arg("nthreads") = 0, py::arg("gpu") = -1, py::arg("progress") = py::none(), py::arg("letterbox") = -1);
}
