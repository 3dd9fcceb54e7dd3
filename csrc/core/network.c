/* network.c: build a network from a cfg, resize it, run the forward pass.
 *
 * Build: [net] sets the input shape and hyperparameters; each following
 * section is looked up in the layer registry, parsed (declaring its params)
 * and sized from the previous layer's output. Then all params are placed in
 * one allocation (net->params, .weights order) and randomly initialised.
 */
#include "internal.h"
#include "../kernels/cpu/threads.h"

#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

static uint64_t splitmix64(uint64_t *s)
{
    uint64_t z = (*s += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

float dn_rand_uniform(uint64_t *state) { return (float)((splitmix64(state) >> 40) * (1.0 / 16777216.0)); }

float dn_rand_normal(uint64_t *state)
{
    float u1 = dn_rand_uniform(state), u2 = dn_rand_uniform(state);
    if (u1 < 1e-7f) u1 = 1e-7f;
    return sqrtf(-2.f * logf(u1)) * cosf(6.2831853f * u2);
}

/* Largest tensor (floats) a layer may have: the kernels index with int. */
static size_t tensor_limit = INT_MAX;

void dn_set_tensor_limit(size_t floats) { tensor_limit = floats ? floats : INT_MAX; }

static dn_status check_tensor(const dn_network *net, const dn_layer *l, const char *what, size_t n)
{
    if (n <= tensor_limit) return DN_OK;
    return dn_error(DN_ERR_VALUE, "%s:%d: [%s] layer %d: %s would need %zu floats, more than the limit of %zu",
                    net->cfg_path, l->line, l->ops->section, l->index, what, n, tensor_limit);
}

dn_status dn_layer_add_param(dn_layer *l, const char *name, size_t n, int flags)
{
    if (l->nparams == DN_MAX_PARAMS) return dn_error(DN_ERR_STATE, "layer %d: too many params", l->index);
    l->params[l->nparams++] = (dn_param){name, n, 0, flags, 0, NULL, NULL};
    return DN_OK;
}

dn_param *dn_layer_param(dn_layer *l, const char *name)
{
    for (int i = 0; i < l->nparams; ++i)
        if (!strcmp(l->params[i].name, name)) return &l->params[i];
    return NULL;
}

dn_status dn_layer_alloc_output(dn_layer *l, dn_network *net)
{
    size_t n = (size_t)l->batch * l->outputs;
    float *o = realloc(l->output, (n ? n : 1) * sizeof(float));
    if (!o) return dn_error(DN_ERR_NOMEM, "layer %d: out of memory for output (%zu floats)", l->index, n);
    l->output = o;
    memset(o, 0, n * sizeof(float));
    if (net->train) {
        float *d = realloc(l->delta, (n ? n : 1) * sizeof(float));
        if (!d) return dn_error(DN_ERR_NOMEM, "layer %d: out of memory for delta", l->index);
        l->delta = d;
        memset(d, 0, n * sizeof(float));
    }
    return DN_OK;
}

dn_status dn_layer_ref(dn_network *net, int index, int v, int *out,
                       const dn_cfg_section *s, const char *key)
{
    int j = v < 0 ? index + v : v;
    if (j < 0 || j >= index)
        return dn_error(DN_ERR_PARSE, "%s:%d: [%s] %s=%d refers to layer %d, which is not an earlier layer (this is layer %d)",
                        s->file, dn_cfg_line(s, key), s->name, key, v, j, index);
    net->layers[j].referenced = 1;
    *out = j;
    return DN_OK;
}

static dn_status parse_policy(dn_cfg_section *s, dn_hparams *hp)
{
    static const char *names[] = {"constant", "step", "steps", "exp", "poly", "sigmoid", "random"};
    const char *p = dn_cfg_str(s, "policy", "constant");
    for (int i = 0; i < 7; ++i)
        if (!strcmp(p, names[i])) { hp->policy = (dn_policy)i; return DN_OK; }
    return dn_error(DN_ERR_PARSE, "%s:%d: [net] unknown policy '%s'", s->file, dn_cfg_line(s, "policy"), p);
}

/* [net] keys only AlexeyAB's fork has. letter_box and flip are honoured; the
 * augmentations and the weight averaging that are not implemented here are
 * named in a warning when they are on, with what differs. Any of them marks
 * the cfg as his dialect. */
static dn_status parse_net_alexeyab(dn_network *net, dn_cfg_section *s)
{
    static const struct { const char *key, *what; } off[] = {
        {"mosaic", "4-image mosaic augmentation"}, {"cutmix", "CutMix augmentation"},
        {"mixup", "MixUp augmentation"}, {"blur", "blur augmentation"},
        {"gaussian_noise", "Gaussian-noise augmentation"},
        {"ema_alpha", "exponential moving average of the weights"},
        {"adversarial_lr", "adversarial augmentation"}, {"contrastive", "contrastive loss"},
    };
    for (size_t k = 0; k < sizeof off / sizeof off[0]; ++k) {
        if (!dn_cfg_has(s, off[k].key)) continue;
        float v;
        TRY(dn_cfg_float(s, off[k].key, 0, &v));
        net->alexeyab = 1;
        if (v != 0)
            dn_warn("%s:%d: [net] %s=%g (AlexeyAB's %s) is not implemented: training runs without it, "
                    "so it differs from his trainer; inference is unaffected",
                    s->file, dn_cfg_line(s, off[k].key), off[k].key, (double)v, off[k].what);
    }
    net->letterbox = -1;
    if (dn_cfg_has(s, "letter_box")) {
        net->alexeyab = 1;
        TRY(dn_cfg_int(s, "letter_box", 0, &net->letterbox));
        if (net->letterbox != 0 && net->letterbox != 1)
            return dn_error(DN_ERR_PARSE, "%s:%d: [net] letter_box must be 0 or 1, got %d", s->file,
                            dn_cfg_line(s, "letter_box"), net->letterbox);
    }
    TRY(dn_cfg_int(s, "flip", 1, &net->hp.flip));
    return DN_OK;
}

static dn_status parse_net(dn_network *net, dn_cfg_section *s)
{
    dn_hparams *hp = &net->hp;
    TRY(dn_cfg_dim(s, "batch", 1, &hp->batch));
    TRY(dn_cfg_dim(s, "subdivisions", 1, &hp->subdivisions));
    TRY(dn_cfg_dim(s, "width", 0, &net->w));
    TRY(dn_cfg_dim(s, "height", 0, &net->h));
    TRY(dn_cfg_dim(s, "channels", 0, &net->c));
    if (!net->w && !net->h && !net->c) {
        int inputs;
        TRY(dn_cfg_int(s, "inputs", 0, &inputs));
        net->w = net->h = 1;
        net->c = inputs;
    }
    if (net->w <= 0 || net->h <= 0 || net->c <= 0)
        return dn_error(DN_ERR_PARSE, "%s:%d: [net] width, height and channels must be positive (got %d x %d x %d)",
                        s->file, s->line, net->w, net->h, net->c);
    if (hp->batch <= 0 || hp->subdivisions <= 0 || hp->subdivisions > hp->batch)
        return dn_error(DN_ERR_PARSE, "%s:%d: [net] need batch >= subdivisions >= 1 (got batch=%d subdivisions=%d)",
                        s->file, dn_cfg_line(s, "subdivisions"), hp->batch, hp->subdivisions);
    TRY(dn_cfg_float(s, "learning_rate", .001f, &hp->learning_rate));
    TRY(dn_cfg_float(s, "momentum", .9f, &hp->momentum));
    TRY(dn_cfg_float(s, "decay", .0001f, &hp->decay));
    TRY(dn_cfg_int(s, "burn_in", 0, &hp->burn_in));
    TRY(dn_cfg_float(s, "power", 4.f, &hp->power));
    TRY(dn_cfg_int(s, "max_batches", 0, &hp->max_batches));
    static const char *const nonneg[] = {"learning_rate", "momentum", "decay", "burn_in", "max_batches"};
    const float vals[] = {hp->learning_rate, hp->momentum, hp->decay, (float)hp->burn_in, (float)hp->max_batches};
    for (int i = 0; i < 5; ++i)
        if (!(vals[i] >= 0))
            return dn_error(DN_ERR_PARSE, "%s:%d: [net] %s must not be negative, got %g", s->file,
                            dn_cfg_line(s, nonneg[i]), nonneg[i], (double)vals[i]);
    TRY(parse_policy(s, hp));
    TRY(dn_cfg_int(s, "step", 1, &hp->step));
    TRY(dn_cfg_float(s, "scale", 1.f, &hp->scale));
    TRY(dn_cfg_float(s, "gamma", 1.f, &hp->gamma));
    int ns = 0, nsc = 0;
    TRY(dn_cfg_int_list(s, "steps", &hp->steps, &ns));
    TRY(dn_cfg_float_list(s, "scales", &hp->scales, &nsc));
    if (hp->policy == DN_POLICY_STEPS && ns != nsc)
        return dn_error(DN_ERR_PARSE, "%s:%d: [net] steps has %d entries but scales has %d",
                        s->file, dn_cfg_line(s, "scales"), ns, nsc);
    hp->nsteps = ns < nsc ? ns : nsc;
    TRY(dn_cfg_float(s, "angle", 0, &hp->angle));
    TRY(dn_cfg_float(s, "saturation", 1, &hp->saturation));
    TRY(dn_cfg_float(s, "exposure", 1, &hp->exposure));
    TRY(dn_cfg_float(s, "hue", 0, &hp->hue));
    TRY(dn_cfg_float(s, "aspect", 1, &hp->aspect));
    TRY(dn_cfg_int(s, "min_crop", net->w, &hp->min_crop));
    TRY(dn_cfg_int(s, "max_crop", net->w * 2, &hp->max_crop));
    float mb;
    TRY(dn_cfg_float(s, "workspace_size_limit_MB", 1024, &mb));
    if (!(mb >= 0 && mb <= 1 << 30))
        return dn_error(DN_ERR_PARSE, "%s:%d: [net] workspace_size_limit_MB must be in [0, 2^30], got %g", s->file,
                        dn_cfg_line(s, "workspace_size_limit_MB"), (double)mb);
    net->workspace_limit = (size_t)((double)mb * 1048576.0);
    return parse_net_alexeyab(net, s);
}

static void layer_free(dn_layer *l)
{
    if (l->ops && l->ops->free_priv) l->ops->free_priv(l);
    free(l->priv);
    free(l->output);
    free(l->delta);
    memset(l, 0, sizeof(*l));
}

void dn_network_free(dn_network *net)
{
    if (!net) return;
    dn_device_free(net);
    for (int i = 0; i < net->n; ++i) layer_free(&net->layers[i]);
    free(net->layers);
    free(net->params);
    free(net->grads);
    free(net->momentum);
    free(net->workspace);
    free(net->input);
    free(net->truth);
    free(net->teacher_layer);
    free(net->hp.steps);
    free(net->hp.scales);
    free(net->cfg_path);
    free(net);
}

static void set_input_shape(dn_network *net, int i)
{
    dn_layer *l = &net->layers[i];
    l->batch = net->batch;
    if (i == 0) { l->c = net->c; l->h = net->h; l->w = net->w; }
    else { dn_layer *p = &net->layers[i - 1]; l->c = p->out_c; l->h = p->out_h; l->w = p->out_w; }
    l->inputs = (size_t)l->c * l->h * l->w;
}

/* Give layer i its input shape from its predecessor, size it, allocate its output. */
static dn_status size_layer(dn_network *net, int i)
{
    dn_layer *l = &net->layers[i];
    set_input_shape(net, i);
    TRY(l->ops->resize(l, net));
    if (l->out_c <= 0 || l->out_h <= 0 || l->out_w <= 0)
        return dn_error(DN_ERR_VALUE, "%s:%d: [%s] layer %d: output size %d x %d x %d is not positive (input %d x %d x %d)",
                        net->cfg_path, l->line, l->ops->section, i, l->out_w, l->out_h, l->out_c, l->w, l->h, l->c);
    l->outputs = (size_t)l->out_c * l->out_h * l->out_w;
    TRY(check_tensor(net, l, "the output", l->outputs * (size_t)l->batch));
    TRY(check_tensor(net, l, "the workspace", l->workspace));
    return dn_layer_alloc_output(l, net);
}

/* The buffers shared by all layers: workspace and the input copy. */
static dn_status size_shared(dn_network *net)
{
    size_t ws = 0;
    for (int i = 0; i < net->n; ++i)
        if (net->layers[i].workspace > ws) ws = net->layers[i].workspace;
    if (ws > net->workspace_size || !net->workspace) {
        float *w = realloc(net->workspace, (ws ? ws : 1) * sizeof(float));
        if (!w) return dn_error(DN_ERR_NOMEM, "out of memory for workspace (%zu floats)", ws);
        net->workspace = w;
        net->workspace_size = ws;
    }
    net->inputs = (size_t)net->c * net->h * net->w;
    if (net->inputs * (size_t)net->batch > tensor_limit)
        return dn_error(DN_ERR_VALUE, "%s: [net] the input (%d x %d x %d x %d) would need more than the limit of %zu floats",
                        net->cfg_path, net->batch, net->c, net->h, net->w, tensor_limit);
    float *in = realloc(net->input, (size_t)net->batch * net->inputs * sizeof(float));
    if (!in) return dn_error(DN_ERR_NOMEM, "out of memory for input");
    net->input = in;
    return DN_OK;
}

static dn_status size_layers(dn_network *net)
{
    for (int i = 0; i < net->n; ++i) TRY(size_layer(net, i));
    return size_shared(net);
}

/* Place every declared param in the flat block. */
static dn_status alloc_params(dn_network *net)
{
    size_t off = 0;
    for (int i = 0; i < net->n; ++i)
        for (int k = 0; k < net->layers[i].nparams; ++k) {
            net->layers[i].params[k].offset = off;
            off += net->layers[i].params[k].n;
        }
    net->nparams = off;
    net->params = dn_calloc(off, sizeof(float));
    if (!net->params) return DN_ERR_NOMEM;
    for (int i = 0; i < net->n; ++i)
        for (int k = 0; k < net->layers[i].nparams; ++k)
            net->layers[i].params[k].data = net->params + net->layers[i].params[k].offset;
    return DN_OK;
}

static dn_status build(dn_network *net, dn_cfg *cfg, int batch)
{
    if (strcmp(cfg->sections[0].name, "net") && strcmp(cfg->sections[0].name, "network"))
        return dn_error(DN_ERR_PARSE, "%s:%d: the first section must be [net], got [%s]",
                        cfg->path, cfg->sections[0].line, cfg->sections[0].name);
    TRY(parse_net(net, &cfg->sections[0]));
    dn_cfg_warn_unused(&cfg->sections[0]);
    net->batch = batch > 0 ? batch : net->hp.batch / net->hp.subdivisions;
    net->n = cfg->nsections - 1;
    if (net->n == 0) return dn_error(DN_ERR_PARSE, "%s: no layers after [net]", cfg->path);
    net->layers = dn_calloc((size_t)net->n, sizeof(dn_layer));
    if (!net->layers) return DN_ERR_NOMEM;
    for (int i = 0; i < net->n; ++i) {
        dn_cfg_section *s = &cfg->sections[i + 1];
        dn_layer *l = &net->layers[i];
        l->index = i;
        l->line = s->line;
        l->ops = dn_layer_ops_find(s->name);
        if (!l->ops)
            return dn_error(DN_ERR_PARSE, "%s:%d: unknown section [%s]", s->file, s->line, s->name);
        set_input_shape(net, i);
        TRY(l->ops->parse(l, s, net));
        for (int k = 0; k < l->nparams; ++k) TRY(check_tensor(net, l, l->params[k].name, l->params[k].n));
        TRY(size_layer(net, i));
        dn_cfg_warn_unused(s);
    }
    TRY(alloc_params(net));
    net->cfg_letterbox = net->letterbox >= 0 ? net->letterbox : !net->alexeyab;
    net->letterbox = net->cfg_letterbox;
    net->bn_fresh = 1;
    for (int i = 0; i < net->n; ++i)
        if (net->layers[i].ops->init_params) net->layers[i].ops->init_params(&net->layers[i], net);
    return size_shared(net);
}

dn_status dn_network_load(dn_network **out, const char *cfg_path, int batch, uint64_t seed)
{
    *out = NULL;
    dn_cfg cfg;
    TRY(dn_cfg_parse_file(&cfg, cfg_path));
    dn_network *net = dn_calloc(1, sizeof(dn_network));
    if (!net) { dn_cfg_free(&cfg); return DN_ERR_NOMEM; }
    net->cfg_path = strdup(cfg_path);
    net->major = 0; net->minor = 2; net->revision = 0;
    net->rng = seed;
    net->nthreads = 0;
    dn_status st = net->cfg_path ? build(net, &cfg, batch) : dn_error(DN_ERR_NOMEM, "out of memory");
    dn_cfg_free(&cfg);
    if (st != DN_OK) { dn_network_free(net); return st; }
    *out = net;
    return DN_OK;
}

/* ---- network-wide settings ---- */

static const char *const kernel_names[] = {"off", "float", "int8"};

const char *dn_ternary_kernel_name(dn_ternary_kernel k)
{
    return (unsigned)k < 3 ? kernel_names[k] : "?";
}

dn_status dn_ternary_kernel_parse(const char *name, dn_ternary_kernel *out)
{
    for (int i = 0; i < 3; ++i)
        if (name && !strcmp(name, kernel_names[i])) { *out = (dn_ternary_kernel)i; return DN_OK; }
    return dn_error(DN_ERR_VALUE, "unknown ternary kernel '%s' (off, float or int8)", name ? name : "(null)");
}

dn_status dn_network_set_ternary_kernel(dn_network *net, dn_ternary_kernel k)
{
    if ((unsigned)k > DN_TERNARY_INT8)
        return dn_error(DN_ERR_VALUE, "ternary kernel %d out of range (0 off, 1 float, 2 int8)", (int)k);
    net->ternary_kernel = (int)k;
    return DN_OK;
}

dn_ternary_kernel dn_network_ternary_kernel(const dn_network *net)
{
    return (dn_ternary_kernel)net->ternary_kernel;
}

int dn_network_letterbox(const dn_network *net) { return net->letterbox; }
int dn_network_is_alexeyab(const dn_network *net) { return net->alexeyab; }
void dn_network_set_letterbox(dn_network *net, int letterbox)
{
    net->letterbox = letterbox < 0 ? net->cfg_letterbox : letterbox != 0;
}

dn_status dn_network_resize(dn_network *net, int batch, int w, int h)
{
    if (batch <= 0 || w <= 0 || h <= 0)
        return dn_error(DN_ERR_VALUE, "resize: batch, width and height must be positive (got %d, %d, %d)", batch, w, h);
    int ob = net->batch, ow = net->w, oh = net->h;
    net->batch = batch; net->w = w; net->h = h;
    dn_status st = size_layers(net);
    if (st != DN_OK) {
        char msg[1024];
        snprintf(msg, sizeof msg, "%s", dn_last_error());
        net->batch = ob; net->w = ow; net->h = oh;
        size_layers(net);
        dn_device_resize(net);
        return dn_error(st, "%s", msg);
    }
    return dn_device_resize(net);
}

dn_status dn_network_forward(dn_network *net, const float *input)
{
    if (!input) return dn_error(DN_ERR_VALUE, "forward: input is NULL");
    for (int i = 0; i < net->n; ++i) {
        net->layers[i].stale = 0;
        net->layers[i].forward_ms = 0;
    }
    if (net->gpu) return dn_device_forward(net, input);
    int distill = net->train && net->teacher && !net->bn_average;
    if (distill) {
        dn_status st = dn_distill_teacher_forward(net, input);
        if (st != DN_OK) return st;
    }
    dn_threads_apply(net->nthreads);
    memcpy(net->input, input, (size_t)net->batch * net->inputs * sizeof(float));
    const float *x = net->input;
    for (int i = 0; i < net->n; ++i) {
        dn_layer *l = &net->layers[i];
        double t0 = dn_seconds();
        int fused = !net->train && i + 1 < net->n && !l->referenced && l->ops->forward_fused
                        ? l->ops->forward_fused(l, &net->layers[i + 1], net, x) : 0;
        if (fused < 0) return DN_ERR_NOMEM; /* the message is set */
        if (fused) {
            l->stale = 1;
        } else {
            dn_status st = l->ops->forward(l, net, x);
            if (st != DN_OK) return st;
            if (distill && l->is_detector) dn_distill_layer(net, l);
        }
        l->forward_ms = (dn_seconds() - t0) * 1e3;
        x = l->stale ? net->layers[++i].output : l->output;
    }
    if (net->train) net->bn_fresh = 0;
    return DN_OK;
}

void dn_params_changed(dn_network *net)
{
    ++net->params_version;
    dn_device_params_changed(net);
}

void dn_network_set_threads(dn_network *net, int nthreads) { net->nthreads = nthreads; }
int dn_network_num_layers(const dn_network *net) { return net->n; }
uint64_t dn_network_seen(const dn_network *net) { return net->seen; }
void dn_network_set_seen(dn_network *net, uint64_t seen) { net->seen = seen; }

void dn_network_input_shape(const dn_network *net, int *batch, int *c, int *h, int *w)
{
    if (batch) *batch = net->batch;
    if (c) *c = net->c;
    if (h) *h = net->h;
    if (w) *w = net->w;
}

const float *dn_network_layer_output(const dn_network *net, int i)
{
    if (i < 0 || i >= net->n) return NULL;
    dn_device_output_to_host(net, i);
    dn_layer *l = &net->layers[i];
    if (l->stale) { /* fused away by the last forward: computed now, from its input */
        dn_network *mut = (dn_network *)net;
        dn_threads_apply(net->nthreads);
        if (l->ops->forward(l, mut, i ? net->layers[i - 1].output : net->input) != DN_OK) return NULL;
        l->stale = 0;
    }
    return l->output;
}

dn_status dn_network_layer_info(const dn_network *net, int i, dn_layer_info *out)
{
    if (i < 0 || i >= net->n) return dn_error(DN_ERR_VALUE, "layer index %d out of range [0, %d)", i, net->n);
    const dn_layer *l = &net->layers[i];
    memset(out, 0, sizeof(*out));
    out->type = l->ops->section;
    out->in_c = l->c; out->in_h = l->h; out->in_w = l->w;
    out->out_c = l->out_c; out->out_h = l->out_h; out->out_w = l->out_w;
    out->bflops = l->flops / 1e9;
    out->ternary = l->ternary;
    out->forward_ms = l->forward_ms;
    out->activation = "";
    for (int k = 0; k < l->nparams; ++k) out->nparams += l->params[k].n;
    if (l->ops->describe) l->ops->describe(l, out);
    if (net->gpu) dn_device_layer_info(net, i, out);
    return DN_OK;
}

dn_status dn_network_layer_param(dn_network *net, int i, int k, const char **name,
                                 float **data, size_t *n)
{
    if (i < 0 || i >= net->n || k < 0 || k >= net->layers[i].nparams)
        return dn_error(DN_ERR_VALUE, "layer %d has no param %d", i, k);
    dn_device_params_to_host(net);
    /* the caller may write through the view: the weight caches hash from
     * now on, and the device copy is refreshed before the next device use */
    net->params_views = 1;
    dn_device_params_changed(net);
    dn_param *p = &net->layers[i].params[k];
    *name = p->name;
    *data = p->data;
    *n = p->n;
    return DN_OK;
}

float *dn_network_layer_grad(dn_network *net, int i, int k)
{
    if (i < 0 || i >= net->n || k < 0 || k >= net->layers[i].nparams) return NULL;
    dn_device_grads_to_host(net);
    return net->layers[i].params[k].grad;
}
