/* weights.c: Darknet .weights I/O.
 *
 * Layout (little endian): int32 major, minor, revision; seen as uint64 when
 * major*10+minor >= 2 (and both < 1000) else uint32; then for each layer its
 * params in declaration order (conv: biases, [scales, rolling_mean,
 * rolling_variance,] weights), raw float32. The version read is kept so that
 * writing back gives the same bytes. Packed ternary files (packed.c) are
 * read by the same entry point.
 */
#include "internal.h"
#include "fileio.h"
#include "packed.h"
#include "../kernels/ref/ternary.h"

#include <stdlib.h>

#include <errno.h>
#include <string.h>

static int seen_is_64(int major, int minor)
{
    /* Darknet's rule, in 64 bits: a fuzzed header must not overflow it */
    return (int64_t)major * 10 + minor >= 2 && major < 1000 && minor < 1000;
}

static int layer_count(const dn_network *net, int upto)
{
    return (upto < 0 || upto > net->n) ? net->n : upto;
}

/* A Darknet .weights file into the params (unchanged on failure). */
static dn_status read_weights(dn_network *net, const char *path, int upto)
{
    FILE *f = fopen(path, "rb");
    if (!f) return dn_error(DN_ERR_IO, "%s: cannot open weights file: %s", path, strerror(errno));
    int32_t hdr[3];
    dn_status st = DN_OK;
    if (fread(hdr, sizeof(int32_t), 3, f) != 3) {
        fclose(f);
        return dn_error(DN_ERR_FORMAT, "%s: truncated header (need 12 bytes for major, minor, revision)", path);
    }
    uint64_t seen = 0;
    int wide = seen_is_64(hdr[0], hdr[1]);
    if (wide) {
        if (fread(&seen, 8, 1, f) != 1) st = DN_ERR_FORMAT;
    } else {
        uint32_t s32;
        if (fread(&s32, 4, 1, f) != 1) st = DN_ERR_FORMAT;
        seen = s32;
    }
    if (st != DN_OK) {
        fclose(f);
        return dn_error(DN_ERR_FORMAT, "%s: truncated header (no 'seen' field)", path);
    }
    if (hdr[0] < 0 || hdr[1] < 0 || hdr[2] < 0) {
        fclose(f);
        return dn_error(DN_ERR_FORMAT, "%s: bad header: version %d.%d.%d is negative", path, hdr[0], hdr[1], hdr[2]);
    }
    long offset = wide ? 20 : 16;
    int prefix_ok = upto == -2, n = layer_count(net, upto);
    /* read into a copy so that a failed load leaves the params untouched;
     * the layers' params are a prefix of net->params in file order */
    size_t total = 0, done = 0;
    for (int i = 0; i < n; ++i)
        for (int k = 0; k < net->layers[i].nparams; ++k) total += net->layers[i].params[k].n;
    float *block = malloc((total ? total : 1) * sizeof(float));
    if (!block) { fclose(f); return dn_error(DN_ERR_NOMEM, "%s: out of memory (%zu floats)", path, total); }
    for (int i = 0; i < n && st == DN_OK; ++i) {
        dn_layer *l = &net->layers[i];
        for (int k = 0; k < l->nparams; ++k) {
            dn_param *p = &l->params[k];
            size_t got = fread(block + p->offset, sizeof(float), p->n, f);
            if (got != p->n) {
                if (prefix_ok && got == 0 && k == 0 && feof(f) && i > 0) { n = i; break; }
                st = dn_error(DN_ERR_FORMAT,
                              "%s: truncated at byte offset %ld: layer %d [%s] %s needs %zu floats, only %zu left",
                              path, offset + (long)(got * sizeof(float)), i, l->ops->section, p->name, p->n, got);
                break;
            }
            offset += (long)(p->n * sizeof(float));
            done = p->offset + p->n;
        }
    }
    if (st == DN_OK && upto == -1) {
        char extra;
        if (fread(&extra, 1, 1, f) == 1) {
            fseek(f, 0, SEEK_END);
            st = dn_error(DN_ERR_FORMAT, "%s: oversize: %ld extra bytes after the last layer (byte offset %ld); does the cfg match the weights?",
                          path, ftell(f) - offset, offset);
        }
    }
    if (st == DN_OK && ferror(f)) st = dn_error(DN_ERR_IO, "%s: read error", path);
    fclose(f);
    if (st == DN_OK) memcpy(net->params, block, done * sizeof(float));
    free(block);
    if (st != DN_OK) return st;
    net->major = hdr[0]; net->minor = hdr[1]; net->revision = hdr[2];
    net->bn_fresh = 0;
    net->seen = seen;
    return DN_OK;
}

dn_status dn_network_load_weights(dn_network *net, const char *path, int upto)
{
    dn_device_params_to_host(net); /* a prefix load keeps the other params */
    /* packed ternary weights (packed.c) are told apart by their magic */
    dn_status st = dn_weights_is_packed(path) ? dn_packed_load(net, path, upto) : read_weights(net, path, upto);
    dn_params_changed(net); /* also after a failed load: the caches recheck, nothing more */
    return st;
}

/* Write n floats, as their TWN values in `groups` groups when groups > 0. */
static int write_param(FILE *f, const float *x, size_t n, int groups)
{
    if (groups <= 0) return fwrite(x, sizeof(float), n, f) == n;
    float *t = malloc(n * sizeof(float));
    if (!t) return 0;
    dn_ternarize_groups(x, groups, n / (size_t)groups, t, NULL);
    int ok = fwrite(t, sizeof(float), n, f) == n;
    free(t);
    return ok;
}

dn_status dn_weights_write(const dn_network *net, const char *path, int upto,
                           const float *block, uint64_t seen, int ternarize)
{
    dn_atomic_file af;
    dn_status st = dn_atomic_open(&af, path);
    if (st != DN_OK) return st;
    int32_t hdr[3] = {net->major, net->minor, net->revision};
    int ok = fwrite(hdr, sizeof(int32_t), 3, af.f) == 3;
    if (seen_is_64(net->major, net->minor)) {
        ok = ok && fwrite(&seen, 8, 1, af.f) == 1;
    } else {
        uint32_t s = (uint32_t)seen;
        ok = ok && fwrite(&s, 4, 1, af.f) == 1;
    }
    int n = layer_count(net, upto);
    for (int i = 0; i < n && ok; ++i) {
        const dn_layer *l = &net->layers[i];
        for (int k = 0; k < l->nparams && ok; ++k)
            ok = write_param(af.f, block + l->params[k].offset, l->params[k].n,
                             ternarize ? l->params[k].ternary_groups : 0);
    }
    if (!ok) {
        dn_atomic_abort(&af);
        return dn_error(DN_ERR_IO, "%s: write failed: %s", path, strerror(errno));
    }
    return dn_atomic_commit(&af);
}

dn_status dn_network_save_weights(const dn_network *net, const char *path, int upto)
{
    dn_device_params_to_host(net);
    return dn_weights_write(net, path, upto, net->params, net->seen, 1);
}
