/* packed.c: packed ternary weights (.tpk): writer, reader, statistics.
 *
 * Each ternary param (conv weights with ternary=1) is stored as its TWN
 * codes, 5 trits per byte, plus its alpha(s) as float32; every other param
 * (biases, batch-norm scales and statistics, float layers) as float32. The
 * reader sets the weights to alpha * code, which is exactly the float the
 * TWN quantiser gave (and TWN of those values gives them back), so a
 * packed file unpacks to the ternarised .weights byte for byte.
 *
 * File layout, all integers little endian, offsets from the file start:
 *
 *   header (64 bytes)
 *     0  char[8]  magic "DNTERNPK"
 *     8  u32      version = 1
 *    12  u32      header bytes = 64
 *    16  u32      record bytes = 64
 *    20  u32      layers (records)
 *    24  i32 x 3  major, minor, revision of the .weights header
 *    36  u32      trits per block = 160
 *    40  u64      seen (images trained on, as in .weights)
 *    48  u64      file bytes (the whole file)
 *    56  u32      CRC-32 of the record table
 *    60  u32      CRC-32 of header bytes 0..59
 *   record table: one 64-byte record per layer, in cfg order
 *     0  char[16] cfg section name, NUL padded (at most 15 characters)
 *    16  u32      layer index
 *    20  u32      kind: 0 float (all params float32), 1 ternary
 *    24  u32      alphas (ternary: 1 per layer or 1 per filter), else 0
 *    28  u32      CRC-32 of the layer's data
 *    32  u64      floats stored as float32
 *    40  u64      ternary weights stored as codes
 *    48  u64      byte offset of the layer's data
 *    56  u64      bytes of the layer's data
 *   data: per layer, its params in .weights order: a float param as n
 *   float32; a ternary param as its alphas (float32), then ceil(n/160)
 *   dn_block_tq blocks (below).
 *
 * Version 2, "folded" (dn_network_save_packed with fold, for deployment):
 * the same header with version 2 and record bytes 32; records only for the
 * layers that have params, in layer order:
 *     0  u32      layer index
 *     4  u32      kind: 0 float, 1 ternary, 2 ternary with batch norm folded
 *     8  u32      alphas (kind 1), filters (kind 2), else 0
 *    12  u32      CRC-32 of the layer's data
 *    16  u64      byte offset of the layer's data
 *    24  u64      bytes of the layer's data
 * Kinds 0 and 1 hold their data as in version 1. Kind 2 (a ternary conv
 * with batch_normalize) holds per filter f the float16 scale_f = alpha_f *
 * gamma_f / sqrt(var_f + 1e-6), then the float16 shift_f = beta_f - mean_f
 * * gamma_f / sqrt(var_f + 1e-6), then the codes' blocks: the reader sets
 * weights = code, scales = scale, biases = shift, rolling_mean = 0 and
 * rolling_variance = 1 - 1e-6 (so that sqrt(var + 1e-6) is exactly 1), the
 * same layer up to float16 rounding of scale and shift. The TWN of the
 * codes gives them back with alpha 1.
 *
 * The reader checks, in order: magic, version, sizes, header CRC, each
 * record against the cfg (type, kind, counts, offset), the table CRC, the
 * file size (truncated / oversize), then each layer's CRC, trit bytes and
 * alphas; every error is DN_ERR_FORMAT naming the file, the byte offset and
 * the layer. CRC-32 is the IEEE one (zlib's crc32).
 */
#include "packed.h"
#include "fileio.h"
#include "../kernels/ref/ternary.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

/* 160 ternary codes in 32 bytes: 1.6 bits per weight.
 *
 *   byte j (0..31) = d0 + 3*d1 + 9*d2 + 27*d3 + 81*d4      (0..242)
 *   d_i = code of weight 5j+i of the block + 1   (0: -1, 1: 0, 2: +1)
 *
 *     byte 0           byte 1           ...   byte 31
 *   +---------------+----------------+-----+--------------------+
 *   | w0 w1 w2 w3 w4| w5 w6 w7 w8 w9 | ... | w155 ... w159      |
 *   +---------------+----------------+-----+--------------------+
 *     base-3 digits, the lowest weight index least significant
 *
 * The last block of a param is padded with code 0 (digit 1); the reader
 * rejects bytes above 242 and padding that is not code 0. */
#define DN_TQ_TRITS 160
typedef struct {
    uint8_t q[32];
} dn_block_tq;
_Static_assert(sizeof(dn_block_tq) * 5 == DN_TQ_TRITS, "dn_block_tq: 160 trits in 32 bytes");

#define MAGIC "DNTERNPK"
#define VERSION 1
#define VERSION_FOLDED 2
#define HEADER_BYTES 64
#define RECORD_BYTES 64
#define RECORD_BYTES_FOLDED 32

enum { KIND_FLOAT = 0, KIND_TERNARY = 1, KIND_FOLDED = 2 };

typedef struct {
    char type[16];
    uint32_t layer, kind, alphas, crc;
    uint64_t floats, trits, offset, bytes;
} record;

/* ---- little-endian fields ---- */

static void put_u32(uint8_t *p, uint32_t v)
{
    for (int i = 0; i < 4; ++i) p[i] = (uint8_t)(v >> (8 * i));
}

static void put_u64(uint8_t *p, uint64_t v)
{
    for (int i = 0; i < 8; ++i) p[i] = (uint8_t)(v >> (8 * i));
}

static uint32_t get_u32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static uint64_t get_u64(const uint8_t *p) { return get_u32(p) | (uint64_t)get_u32(p + 4) << 32; }

static void put_f32(uint8_t *p, float f)
{
    uint32_t v;
    memcpy(&v, &f, 4);
    put_u32(p, v);
}

static float get_f32(const uint8_t *p)
{
    uint32_t v = get_u32(p);
    float f;
    memcpy(&f, &v, 4);
    return f;
}

/* IEEE half precision, round to nearest even; |f| beyond 65504 gives inf. */
static uint16_t f32_to_f16(float f)
{
    uint32_t x;
    memcpy(&x, &f, 4);
    uint32_t sign = (x >> 16) & 0x8000u, e = (x >> 23) & 0xff, m = x & 0x7fffffu;
    if (e == 0xff) return (uint16_t)(sign | 0x7c00u | (m ? 0x200u : 0));
    int ex = (int)e - 127 + 15;
    if (ex >= 31) return (uint16_t)(sign | 0x7c00u);
    if (ex <= 0) { /* subnormal half (or zero) */
        if (ex < -10) return (uint16_t)sign;
        m |= 0x800000u;
        int shift = 14 - ex;
        uint32_t h = m >> shift, rest = m & ((1u << shift) - 1), half = 1u << (shift - 1);
        if (rest > half || (rest == half && (h & 1))) ++h;
        return (uint16_t)(sign | h);
    }
    uint32_t h = ((uint32_t)ex << 10) | (m >> 13), rest = m & 0x1fffu;
    if (rest > 0x1000u || (rest == 0x1000u && (h & 1))) ++h; /* may carry into the exponent: still right */
    return (uint16_t)(sign | h);
}

static float f16_to_f32(uint16_t h)
{
    uint32_t sign = (uint32_t)(h & 0x8000u) << 16, e = (h >> 10) & 0x1f, m = h & 0x3ffu, x;
    if (e == 0x1f) {
        x = sign | 0x7f800000u | (m << 13);
    } else if (e == 0) {
        float v = ldexpf((float)m, -24);
        return sign ? -v : v;
    } else {
        x = sign | ((e - 15 + 127) << 23) | (m << 13);
    }
    float f;
    memcpy(&f, &x, 4);
    return f;
}

/* CRC-32 (IEEE 802.3, reflected 0xEDB88320), continuing from crc. */
static uint32_t crc32_update(uint32_t crc, const uint8_t *p, size_t n)
{
    uint32_t table[256];
    for (uint32_t i = 0; i < 256; ++i) {
        uint32_t c = i;
        for (int k = 0; k < 8; ++k) c = c & 1 ? 0xEDB88320u ^ (c >> 1) : c >> 1;
        table[i] = c;
    }
    crc = ~crc;
    for (size_t i = 0; i < n; ++i) crc = table[(crc ^ p[i]) & 0xff] ^ (crc >> 8);
    return ~crc;
}

/* ---- layer layout ---- */

static int layer_is_ternary(const dn_layer *l)
{
    for (int k = 0; k < l->nparams; ++k)
        if (l->params[k].ternary_groups > 0) return 1;
    return 0;
}

static uint64_t tq_blocks(uint64_t n) { return (n + DN_TQ_TRITS - 1) / DN_TQ_TRITS; }

/* A ternary conv with batch norm, whose params version 2 folds. */
typedef struct {
    const dn_param *w, *b, *sc, *m, *v;
} bn_params;

static int foldable(const dn_layer *l, bn_params *bp)
{
    memset(bp, 0, sizeof(*bp));
    for (int k = 0; k < l->nparams; ++k) {
        const dn_param *p = &l->params[k];
        const dn_param **slot = p->ternary_groups > 0 ? &bp->w
                              : !strcmp(p->name, "biases") ? &bp->b
                              : !strcmp(p->name, "scales") ? &bp->sc
                              : !strcmp(p->name, "rolling_mean") ? &bp->m
                              : !strcmp(p->name, "rolling_variance") ? &bp->v : NULL;
        if (!slot || *slot) return 0;
        *slot = p;
    }
    if (!bp->w || !bp->b || !bp->sc || !bp->m || !bp->v) return 0;
    size_t f = bp->b->n;
    int g = bp->w->ternary_groups;
    return f > 0 && bp->sc->n == f && bp->m->n == f && bp->v->n == f && bp->w->n % f == 0 &&
           (g == 1 || (size_t)g == f);
}

/* The record layer i of net should have (offset left 0, crc 0); fold: as
 * version 2 stores it. */
static void expected_record(const dn_network *net, int i, int fold, record *r)
{
    const dn_layer *l = &net->layers[i];
    memset(r, 0, sizeof(*r));
    strncpy(r->type, l->ops->section, sizeof(r->type) - 1);
    r->layer = (uint32_t)i;
    r->kind = layer_is_ternary(l) ? KIND_TERNARY : KIND_FLOAT;
    bn_params bp;
    if (fold && foldable(l, &bp)) {
        r->kind = KIND_FOLDED;
        r->alphas = (uint32_t)bp.b->n;
        r->trits = bp.w->n;
        r->bytes = 4 * (uint64_t)bp.b->n + sizeof(dn_block_tq) * tq_blocks(bp.w->n);
        return;
    }
    for (int k = 0; k < l->nparams; ++k) {
        const dn_param *p = &l->params[k];
        if (p->ternary_groups > 0) {
            r->alphas += (uint32_t)p->ternary_groups;
            r->trits += p->n;
            r->bytes += 4 * (uint64_t)p->ternary_groups + sizeof(dn_block_tq) * tq_blocks(p->n);
        } else {
            r->floats += p->n;
            r->bytes += 4 * (uint64_t)p->n;
        }
    }
}

uint64_t dn_packed_layer_bytes(const dn_network *net, int i, int version)
{
    record r;
    expected_record(net, i, version == VERSION_FOLDED, &r);
    return r.bytes;
}

static void record_encode_folded(const record *r, uint8_t *p)
{
    memset(p, 0, RECORD_BYTES_FOLDED);
    put_u32(p, r->layer);
    put_u32(p + 4, r->kind);
    put_u32(p + 8, r->alphas);
    put_u32(p + 12, r->crc);
    put_u64(p + 16, r->offset);
    put_u64(p + 24, r->bytes);
}

static void record_decode_folded(const uint8_t *p, record *r)
{
    memset(r, 0, sizeof(*r));
    r->layer = get_u32(p);
    r->kind = get_u32(p + 4);
    r->alphas = get_u32(p + 8);
    r->crc = get_u32(p + 12);
    r->offset = get_u64(p + 16);
    r->bytes = get_u64(p + 24);
}

static void record_encode(const record *r, uint8_t *p)
{
    memset(p, 0, RECORD_BYTES);
    memcpy(p, r->type, 16);
    put_u32(p + 16, r->layer);
    put_u32(p + 20, r->kind);
    put_u32(p + 24, r->alphas);
    put_u32(p + 28, r->crc);
    put_u64(p + 32, r->floats);
    put_u64(p + 40, r->trits);
    put_u64(p + 48, r->offset);
    put_u64(p + 56, r->bytes);
}

static void record_decode(const uint8_t *p, record *r)
{
    memcpy(r->type, p, 16);
    r->type[15] = 0;
    r->layer = get_u32(p + 16);
    r->kind = get_u32(p + 20);
    r->alphas = get_u32(p + 24);
    r->crc = get_u32(p + 28);
    r->floats = get_u64(p + 32);
    r->trits = get_u64(p + 40);
    r->offset = get_u64(p + 48);
    r->bytes = get_u64(p + 56);
}

/* The codes of t (n values in {-a, 0, +a}) as tq_blocks(n) blocks at o. */
static void put_trits(const float *t, size_t n, uint8_t *o)
{
    uint64_t nb = tq_blocks(n);
    for (uint64_t b = 0; b < nb; ++b, o += sizeof(dn_block_tq)) {
        for (int j = 0; j < 32; ++j) {
            int v = 0;
            for (int d = 4; d >= 0; --d) {
                uint64_t i = b * DN_TQ_TRITS + 5 * (uint64_t)j + (uint64_t)d;
                int digit = i < n ? (t[i] > 0 ? 2 : t[i] < 0 ? 0 : 1) : 1;
                v = 3 * v + digit;
            }
            o[j] = (uint8_t)v;
        }
    }
}

/* Folded layer data (version 2 kind 2): 0, or -1 with the error set. */
static int encode_folded(const dn_layer *l, const bn_params *bp, const float *block, float *t, float *alpha,
                         uint8_t *o)
{
    size_t f = bp->b->n;
    int groups = bp->w->ternary_groups;
    dn_ternarize_groups(block + bp->w->offset, groups, bp->w->n / (size_t)groups, t, alpha);
    for (size_t i = 0; i < f; ++i) {
        float inv = block[bp->sc->offset + i] / sqrtf(block[bp->v->offset + i] + .000001f);
        float a = alpha[groups == 1 ? 0 : i];
        float v[2] = {a * inv, block[bp->b->offset + i] - block[bp->m->offset + i] * inv};
        for (int k = 0; k < 2; ++k) {
            uint16_t h = f32_to_f16(v[k]);
            if (!isfinite(f16_to_f32(h)))
                return dn_error(DN_ERR_VALUE, "layer %d [%s]: filter %zu's folded batch-norm %s %g does not fit float16",
                                l->index, l->ops->section, i, k ? "shift" : "scale", (double)v[k]), -1;
            o[2 * (k * f + i)] = (uint8_t)h;
            o[2 * (k * f + i) + 1] = (uint8_t)(h >> 8);
        }
    }
    put_trits(t, bp->w->n, o + 4 * f);
    return 0;
}

/* Encode layer l's params (block: net->params layout) into buf (r.bytes):
 * 1, 0 out of memory, -1 with the error set. */
static int layer_encode(const dn_layer *l, const float *block, int fold, uint8_t *buf)
{
    size_t most = 1;
    int most_groups = 1;
    for (int k = 0; k < l->nparams; ++k)
        if (l->params[k].ternary_groups > 0) {
            most = l->params[k].n > most ? l->params[k].n : most;
            most_groups = l->params[k].ternary_groups > most_groups ? l->params[k].ternary_groups : most_groups;
        }
    float *t = malloc(sizeof(float) * most), *alpha = malloc(sizeof(float) * (size_t)most_groups);
    if (!t || !alpha) { free(t); free(alpha); return 0; }
    int ret = 1;
    bn_params bp;
    if (fold && foldable(l, &bp)) {
        ret = encode_folded(l, &bp, block, t, alpha, buf) ? -1 : 1;
    } else {
        uint8_t *o = buf;
        for (int k = 0; k < l->nparams; ++k) {
            const dn_param *p = &l->params[k];
            const float *x = block + p->offset;
            if (p->ternary_groups <= 0) {
                for (size_t i = 0; i < p->n; ++i, o += 4) put_f32(o, x[i]);
                continue;
            }
            int groups = p->ternary_groups;
            dn_ternarize_groups(x, groups, p->n / (size_t)groups, t, alpha);
            for (int g = 0; g < groups; ++g, o += 4) put_f32(o, alpha[g]);
            put_trits(t, p->n, o);
            o += sizeof(dn_block_tq) * tq_blocks(p->n);
        }
    }
    free(t);
    free(alpha);
    return ret;
}

/* ---- writer ---- */

static void header_encode(const dn_network *net, int fold, uint32_t nlayers, uint64_t file_bytes,
                          uint32_t table_crc, uint8_t *h)
{
    memset(h, 0, HEADER_BYTES);
    memcpy(h, MAGIC, 8);
    put_u32(h + 8, fold ? VERSION_FOLDED : VERSION);
    put_u32(h + 12, HEADER_BYTES);
    put_u32(h + 16, fold ? RECORD_BYTES_FOLDED : RECORD_BYTES);
    put_u32(h + 20, nlayers);
    put_u32(h + 24, (uint32_t)net->major);
    put_u32(h + 28, (uint32_t)net->minor);
    put_u32(h + 32, (uint32_t)net->revision);
    put_u32(h + 36, DN_TQ_TRITS);
    put_u64(h + 40, net->seen);
    put_u64(h + 48, file_bytes);
    put_u32(h + 56, table_crc);
    put_u32(h + 60, crc32_update(0, h, 60));
}

dn_status dn_network_save_packed(const dn_network *net, const char *path, int fold)
{
    /* version 1: a record per layer; 2: per layer with params */
    const size_t rb = fold ? RECORD_BYTES_FOLDED : RECORD_BYTES;
    int n = 0;
    record *recs = calloc((size_t)net->n, sizeof(record));
    if (!recs) return dn_error(DN_ERR_NOMEM, "%s: out of memory", path);
    for (int i = 0; i < net->n; ++i)
        if (!fold || net->layers[i].nparams > 0) expected_record(net, i, fold, &recs[n++]);
    uint8_t *table = calloc((size_t)(n ? n : 1), rb);
    if (!table) { free(recs); return dn_error(DN_ERR_NOMEM, "%s: out of memory", path); }
    uint64_t off = HEADER_BYTES + (uint64_t)n * rb, maxb = 0;
    for (int i = 0; i < n; ++i) {
        recs[i].offset = off;
        off += recs[i].bytes;
        if (recs[i].bytes > maxb) maxb = recs[i].bytes;
    }
    uint8_t *buf = malloc(maxb ? maxb : 1);
    dn_atomic_file af;
    dn_status st = buf ? dn_atomic_open(&af, path) : dn_error(DN_ERR_NOMEM, "%s: out of memory", path);
    if (st != DN_OK) { free(recs); free(table); free(buf); return st; }
    uint8_t h[HEADER_BYTES];
    memset(h, 0, sizeof h);
    /* header and table are written last, once the data CRCs are known */
    int ok = fwrite(h, 1, HEADER_BYTES, af.f) == HEADER_BYTES && fwrite(table, rb, (size_t)n, af.f) == (size_t)n;
    int err = 0; /* 0 I/O, 1 out of memory, -1 error set */
    for (int i = 0; i < n && ok; ++i) {
        int e = layer_encode(&net->layers[recs[i].layer], net->params, fold, buf);
        if (e != 1) { ok = 0; err = e ? -1 : 1; break; }
        recs[i].crc = crc32_update(0, buf, recs[i].bytes);
        ok = fwrite(buf, 1, recs[i].bytes, af.f) == recs[i].bytes;
    }
    for (int i = 0; i < n; ++i) (fold ? record_encode_folded : record_encode)(&recs[i], table + (size_t)i * rb);
    header_encode(net, fold, (uint32_t)n, off, crc32_update(0, table, (size_t)n * rb), h);
    ok = ok && fseek(af.f, 0, SEEK_SET) == 0 && fwrite(h, 1, HEADER_BYTES, af.f) == HEADER_BYTES &&
         fwrite(table, rb, (size_t)n, af.f) == (size_t)n;
    free(recs);
    free(table);
    free(buf);
    if (!ok) {
        dn_atomic_abort(&af);
        if (err < 0) return dn_error(DN_ERR_VALUE, "%s: %s", path, dn_last_error());
        return err ? dn_error(DN_ERR_NOMEM, "%s: out of memory", path)
                   : dn_error(DN_ERR_IO, "%s: write failed: %s", path, strerror(errno));
    }
    return dn_atomic_commit(&af);
}

/* ---- reader ---- */

int dn_weights_is_packed(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f) return 0;
    uint8_t m[8];
    size_t got = fread(m, 1, 8, f);
    fclose(f);
    if (got != 8) return 0;
    int same = 0;
    for (int i = 0; i < 8; ++i) same += m[i] == (uint8_t)MAGIC[i];
    return same >= 6;
}

int dn_packed_version(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f) return 0;
    uint8_t h[12];
    size_t got = fread(h, 1, 12, f);
    fclose(f);
    return got == 12 && !memcmp(h, MAGIC, 8) ? (int)get_u32(h + 8) : 0;
}

static void printable(const uint8_t *p, size_t n, char *out)
{
    for (size_t i = 0; i < n; ++i) out[i] = p[i] >= 32 && p[i] < 127 ? (char)p[i] : '?';
    out[n] = 0;
}

/* The n codes of tq_blocks(n) blocks at o (data of record r, read into
 * buf) into x: code * alpha of weight i's group (alphas: float32 at
 * alphas[4 * (i / per)]), or the code itself (alphas NULL). */
static dn_status decode_trits(const char *path, const dn_layer *l, const dn_param *p, const record *r,
                              const uint8_t *buf, const uint8_t *o, const uint8_t *alphas, size_t per, float *x)
{
    uint64_t nb = tq_blocks(p->n);
    for (uint64_t b = 0; b < nb; ++b, o += sizeof(dn_block_tq)) {
        for (int j = 0; j < 32; ++j) {
            int v = o[j];
            if (v > 242)
                return dn_error(DN_ERR_FORMAT, "%s: bad trit byte %d (> 242) at byte offset %llu: layer %d [%s] %s",
                                path, v, (unsigned long long)(r->offset + (uint64_t)(o - buf) + (uint64_t)j),
                                l->index, l->ops->section, p->name);
            for (int d = 0; d < 5; ++d, v /= 3) {
                uint64_t i = b * DN_TQ_TRITS + 5 * (uint64_t)j + (uint64_t)d;
                int code = v % 3 - 1;
                if (i >= p->n) {
                    if (code != 0)
                        return dn_error(DN_ERR_FORMAT, "%s: bad padding at byte offset %llu: layer %d [%s] %s: codes past the %zu weights must be 0",
                                        path, (unsigned long long)(r->offset + (uint64_t)(o - buf) + (uint64_t)j),
                                        l->index, l->ops->section, p->name, p->n);
                    continue;
                }
                float a = alphas ? get_f32(alphas + 4 * (i / per)) : 1.f;
                x[i] = code > 0 ? a : code < 0 ? -a : 0.f;
            }
        }
    }
    return DN_OK;
}

/* Version 2 kind 2: float16 scale and shift per filter, then the codes. */
static dn_status decode_folded(const char *path, const dn_layer *l, const bn_params *bp, const record *r,
                               const uint8_t *buf, float *block)
{
    size_t f = bp->b->n;
    for (size_t i = 0; i < f; ++i) {
        float v[2];
        for (int k = 0; k < 2; ++k) {
            size_t at = 2 * (k * f + i);
            v[k] = f16_to_f32((uint16_t)(buf[at] | buf[at + 1] << 8));
            if (!isfinite(v[k]))
                return dn_error(DN_ERR_FORMAT, "%s: bad folded %s at byte offset %llu: layer %d [%s] filter %zu must be finite",
                                path, k ? "shift" : "scale", (unsigned long long)(r->offset + at), l->index,
                                l->ops->section, i);
        }
        block[bp->sc->offset + i] = v[0];
        block[bp->b->offset + i] = v[1];
        block[bp->m->offset + i] = 0.f;
        block[bp->v->offset + i] = 1.f - .000001f; /* + 1e-6 in the forward: exactly 1 */
    }
    return decode_trits(path, l, bp->w, r, buf, buf + 4 * f, NULL, 1, block + bp->w->offset);
}

/* Decode layer i's data (r.bytes at buf, file offset r.offset) into block. */
static dn_status layer_decode(const char *path, const dn_layer *l, const record *r, const uint8_t *buf,
                              float *block)
{
    bn_params bp;
    if (r->kind == KIND_FOLDED && foldable(l, &bp)) return decode_folded(path, l, &bp, r, buf, block);
    const uint8_t *o = buf;
    for (int k = 0; k < l->nparams; ++k) {
        const dn_param *p = &l->params[k];
        float *x = block + p->offset;
        if (p->ternary_groups <= 0) {
            for (size_t i = 0; i < p->n; ++i, o += 4) x[i] = get_f32(o);
            continue;
        }
        int groups = p->ternary_groups;
        for (int g = 0; g < groups; ++g) {
            float a = get_f32(o + 4 * (size_t)g);
            if (!(a >= 0) || isinf(a))
                return dn_error(DN_ERR_FORMAT, "%s: bad alpha %g at byte offset %llu: layer %d [%s] %s alpha %d must be finite and >= 0",
                                path, (double)a, (unsigned long long)(r->offset + (uint64_t)(o - buf) + 4 * (uint64_t)g),
                                l->index, l->ops->section, p->name, g);
        }
        dn_status st = decode_trits(path, l, p, r, buf, o + 4 * (size_t)groups, o, p->n / (size_t)groups, x);
        if (st != DN_OK) return st;
        o += 4 * (size_t)groups + sizeof(dn_block_tq) * tq_blocks(p->n);
    }
    return DN_OK;
}

typedef struct {
    const char *path;
    FILE *f;
    uint64_t size;
    int nlayers;   /* records */
    record *recs;
    int *rec_of;   /* [net->n]: layer i's record, -1 when it has none */
    uint8_t *buf;
    float *block;
} reader;

static void reader_close(reader *rd)
{
    if (rd->f) fclose(rd->f);
    free(rd->recs);
    free(rd->rec_of);
    free(rd->buf);
    free(rd->block);
}

#define FAIL(...) (st = dn_error(DN_ERR_FORMAT, __VA_ARGS__))

/* Version 2: the records of layers [0, n) against the cfg, in order (every
 * layer with params has one, as version 2 stores it), into rd->rec_of. */
static dn_status match_folded(reader *rd, const dn_network *net, int n)
{
    dn_status st = DN_OK;
    const char *path = rd->path;
    int k = 0;
    for (int i = 0; i < net->n; ++i) {
        rd->rec_of[i] = -1;
        while (k < rd->nlayers && rd->recs[k].layer < (uint32_t)i) {
            const dn_layer *l = &net->layers[rd->recs[k].layer];
            return FAIL("%s: record %d at byte offset %llu: layer %u [%s] has no params in the cfg (does the cfg match the file?)",
                        path, k, (unsigned long long)(HEADER_BYTES + (uint64_t)k * RECORD_BYTES_FOLDED),
                        rd->recs[k].layer, l->ops->section);
        }
        const dn_layer *l = &net->layers[i];
        if (i >= n || l->nparams == 0) continue;
        unsigned long long at = HEADER_BYTES + (unsigned long long)k * RECORD_BYTES_FOLDED;
        if (k >= rd->nlayers || rd->recs[k].layer != (uint32_t)i)
            return FAIL("%s: no record for layer %d [%s] (the record table, bytes %d-%llu, skips it; does the cfg match the file?)",
                        path, i, l->ops->section, HEADER_BYTES,
                        (unsigned long long)(HEADER_BYTES + (uint64_t)rd->nlayers * RECORD_BYTES_FOLDED) - 1);
        record e;
        expected_record(net, i, 1, &e);
        const record *r = &rd->recs[k];
        if (r->kind != e.kind || r->alphas != e.alphas || r->bytes != e.bytes)
            return FAIL("%s: layer %d [%s] record at byte offset %llu: kind %u, %u alphas/filters, %llu bytes; the cfg needs %u, %u, %llu (does the cfg match the file?)",
                        path, i, l->ops->section, at + 4, r->kind, r->alphas, (unsigned long long)r->bytes, e.kind,
                        e.alphas, (unsigned long long)e.bytes);
        rd->rec_of[i] = k++;
    }
    if (n == net->n && k < rd->nlayers)
        return FAIL("%s: record %d at byte offset %llu is for layer %u, the cfg has %d layers (does the cfg match the file?)",
                    path, k, (unsigned long long)(HEADER_BYTES + (uint64_t)k * RECORD_BYTES_FOLDED), rd->recs[k].layer,
                    net->n);
    return DN_OK;
}

/* Header and record table; *nload: the layers to load for upto (as in
 * dn_network_load_weights), whose records are checked against the cfg. */
static dn_status read_header(reader *rd, const dn_network *net, int upto, int *nload, int32_t ver[3],
                             uint64_t *seen)
{
    const char *path = rd->path;
    dn_status st = DN_OK;
    uint8_t h[HEADER_BYTES];
    size_t got = fread(h, 1, HEADER_BYTES, rd->f);
    if (got < 8 || memcmp(h, MAGIC, 8)) {
        char m[9];
        printable(h, got < 8 ? got : 8, m);
        if (got < 8) return FAIL("%s: truncated at byte offset %zu: the header needs %d bytes", path, got, HEADER_BYTES);
        return FAIL("%s: bad magic at byte offset 0: expected \"%s\", got \"%s\" (not a packed ternary weights file, or damaged)",
                    path, MAGIC, m);
    }
    if (got < 12) return FAIL("%s: truncated at byte offset %zu: the header needs %d bytes", path, got, HEADER_BYTES);
    uint32_t version = get_u32(h + 8);
    if (version != VERSION && version != VERSION_FOLDED)
        return FAIL("%s: unsupported version %u at byte offset 8 (this reader knows versions %d and %d)", path,
                    version, VERSION, VERSION_FOLDED);
    const int v2 = version == VERSION_FOLDED;
    const uint32_t rb = v2 ? RECORD_BYTES_FOLDED : RECORD_BYTES;
    if (got < HEADER_BYTES)
        return FAIL("%s: truncated at byte offset %zu: the header needs %d bytes", path, got, HEADER_BYTES);
    if (get_u32(h + 12) != HEADER_BYTES || get_u32(h + 16) != rb)
        return FAIL("%s: bad header at byte offset 12: header/record sizes %u/%u, expected %d/%u", path,
                    get_u32(h + 12), get_u32(h + 16), HEADER_BYTES, rb);
    if (crc32_update(0, h, 60) != get_u32(h + 60))
        return FAIL("%s: header checksum mismatch (bytes 0-59, CRC at byte offset 60): damaged file", path);
    if (get_u32(h + 36) != DN_TQ_TRITS)
        return FAIL("%s: bad header at byte offset 36: %u trits per block, expected %d", path, get_u32(h + 36),
                    DN_TQ_TRITS);
    for (int i = 0; i < 3; ++i) {
        ver[i] = (int32_t)get_u32(h + 24 + 4 * i);
        if (ver[i] < 0) return FAIL("%s: bad header at byte offset %d: version field %d is negative", path, 24 + 4 * i, ver[i]);
    }
    *seen = get_u64(h + 40);
    uint32_t nl = get_u32(h + 20);
    if ((nl == 0 && !v2) || nl > (uint32_t)1 << 20)
        return FAIL("%s: bad header at byte offset 20: %u %s", path, nl, v2 ? "records" : "layers");
    rd->nlayers = (int)nl;
    int n;
    if (v2) {
        n = upto < 0 || upto > net->n ? net->n : upto; /* version 2 names its layers in the records */
    } else if (upto == -1) {
        n = net->n;
        if (rd->nlayers != net->n)
            return FAIL("%s: bad header at byte offset 20: the file has %d layers, the cfg %d (does the cfg match the file?)",
                        path, rd->nlayers, net->n);
    } else if (upto == -2) {
        n = net->n < rd->nlayers ? net->n : rd->nlayers;
    } else {
        n = upto < net->n ? upto : net->n;
        if (n > rd->nlayers)
            return FAIL("%s: bad header at byte offset 20: the file has %d layers, %d requested", path, rd->nlayers, n);
    }
    *nload = n;
    uint64_t table_end = HEADER_BYTES + (uint64_t)nl * rb;
    uint8_t *table = malloc((size_t)(nl ? nl : 1) * rb);
    rd->recs = calloc(nl ? nl : 1, sizeof(record));
    rd->rec_of = malloc(sizeof(int) * (size_t)(net->n ? net->n : 1));
    if (!table || !rd->recs || !rd->rec_of) { free(table); return dn_error(DN_ERR_NOMEM, "%s: out of memory", path); }
    got = fread(table, 1, (size_t)nl * rb, rd->f);
    if (got < (size_t)nl * rb) {
        free(table);
        return FAIL("%s: truncated at byte offset %llu: in the record table (%s %zu record; the table ends at byte %llu)",
                    path, (unsigned long long)(HEADER_BYTES + got), v2 ? "the" : "layer", got / rb,
                    (unsigned long long)table_end);
    }
    for (uint32_t i = 0; i < nl; ++i) (v2 ? record_decode_folded : record_decode)(table + (size_t)i * rb, &rd->recs[i]);
    uint32_t tcrc = crc32_update(0, table, (size_t)nl * rb);
    free(table);
    /* records: continuity first (any file), then against the cfg */
    uint64_t off = table_end;
    for (uint32_t i = 0; i < nl; ++i) {
        const record *r = &rd->recs[i];
        unsigned long long at = HEADER_BYTES + (unsigned long long)i * rb;
        if (!v2 && r->layer != i)
            return FAIL("%s: bad record at byte offset %llu: layer %u record says layer %u", path, at, i, r->layer);
        if (v2 && i > 0 && r->layer <= rd->recs[i - 1].layer)
            return FAIL("%s: bad record at byte offset %llu: record %u is for layer %u, after layer %u", path, at, i,
                        r->layer, rd->recs[i - 1].layer);
        if (r->offset != off)
            return FAIL("%s: bad record at byte offset %llu: layer %u data offset %llu, expected %llu", path,
                        at + (v2 ? 16 : 48), r->layer,
                        (unsigned long long)r->offset, (unsigned long long)off);
        if (r->bytes > ((uint64_t)1 << 40))
            return FAIL("%s: bad record at byte offset %llu: layer %u has %llu bytes", path, at + (v2 ? 24 : 56), r->layer,
                        (unsigned long long)r->bytes);
        off += r->bytes;
    }
    if (v2) {
        st = match_folded(rd, net, n);
        if (st != DN_OK) return st;
    } else {
        for (int i = 0; i < n; ++i) {
            const record *r = &rd->recs[i];
            record e;
            expected_record(net, i, 0, &e);
            unsigned long long at = HEADER_BYTES + (unsigned long long)i * RECORD_BYTES;
            const char *l = net->layers[i].ops->section;
            if (strcmp(r->type, e.type))
                return FAIL("%s: layer %d record at byte offset %llu: the file has a [%s] layer, the cfg a [%s] (does the cfg match the file?)",
                            path, i, at, r->type, l);
            if (r->kind != e.kind)
                return FAIL("%s: layer %d [%s] record at byte offset %llu: stored as %s, the cfg has it %s (does the cfg match the file?)",
                            path, i, l, at + 20, r->kind == KIND_TERNARY ? "ternary" : r->kind == KIND_FLOAT ? "float" : "unknown kind",
                            e.kind == KIND_TERNARY ? "ternary" : "float");
            if (r->alphas != e.alphas || r->floats != e.floats || r->trits != e.trits || r->bytes != e.bytes)
                return FAIL("%s: layer %d [%s] record at byte offset %llu: %llu floats, %llu ternary weights, %u alphas, %llu bytes; the cfg needs %llu, %llu, %u, %llu (does the cfg match the file?)",
                            path, i, l, at + 24, (unsigned long long)r->floats, (unsigned long long)r->trits, r->alphas,
                            (unsigned long long)r->bytes, (unsigned long long)e.floats, (unsigned long long)e.trits,
                            e.alphas, (unsigned long long)e.bytes);
        }
        for (int i = 0; i < net->n; ++i) rd->rec_of[i] = i < n ? i : -1;
    }
    if (tcrc != get_u32(h + 56))
        return FAIL("%s: record table checksum mismatch (bytes %d-%llu, CRC at byte offset 56): damaged file", path,
                    HEADER_BYTES, (unsigned long long)table_end - 1);
    if (get_u64(h + 48) != off)
        return FAIL("%s: bad header at byte offset 48: file size field %llu, the records end at %llu", path,
                    (unsigned long long)get_u64(h + 48), (unsigned long long)off);
    if (rd->size < off) {
        int i = 0;
        while (i + 1 < rd->nlayers && rd->recs[i].offset + rd->recs[i].bytes <= rd->size) ++i;
        uint32_t li = rd->recs[i].layer;
        const char *type = li < (uint32_t)net->n ? net->layers[li].ops->section : rd->recs[i].type;
        return FAIL("%s: truncated at byte offset %llu: layer %u [%s] data spans bytes %llu-%llu, the file should be %llu bytes",
                    path, (unsigned long long)rd->size, li, type, (unsigned long long)rd->recs[i].offset,
                    (unsigned long long)(rd->recs[i].offset + rd->recs[i].bytes),
                    (unsigned long long)off);
    }
    if (rd->size > off)
        return FAIL("%s: oversize: %llu extra bytes after the last layer (byte offset %llu)", path,
                    (unsigned long long)(rd->size - off), (unsigned long long)off);
    return DN_OK;
}

dn_status dn_packed_load(dn_network *net, const char *path, int upto)
{
    reader rd;
    memset(&rd, 0, sizeof rd);
    rd.path = path;
    rd.f = fopen(path, "rb");
    if (!rd.f) return dn_error(DN_ERR_IO, "%s: cannot open weights file: %s", path, strerror(errno));
    struct stat sb;
    if (fstat(fileno(rd.f), &sb)) { reader_close(&rd); return dn_error(DN_ERR_IO, "%s: cannot stat: %s", path, strerror(errno)); }
    rd.size = (uint64_t)sb.st_size;
    int32_t ver[3] = {0, 0, 0};
    uint64_t seen = 0;
    int n = 0;
    dn_status st = read_header(&rd, net, upto, &n, ver, &seen);
    if (st != DN_OK) { reader_close(&rd); return st; }
    uint64_t maxb = 0;
    for (int i = 0; i < n; ++i)
        if (rd.rec_of[i] >= 0) maxb = rd.recs[rd.rec_of[i]].bytes > maxb ? rd.recs[rd.rec_of[i]].bytes : maxb;
    if (st == DN_OK) {
        rd.buf = malloc(maxb ? maxb : 1);
        rd.block = malloc(sizeof(float) * (net->nparams ? net->nparams : 1));
        if (!rd.buf || !rd.block) st = dn_error(DN_ERR_NOMEM, "%s: out of memory", path);
    }
    for (int i = 0; i < n && st == DN_OK; ++i) {
        if (rd.rec_of[i] < 0) continue;
        const record *r = &rd.recs[rd.rec_of[i]];
        const dn_layer *l = &net->layers[i];
        if (fseeko(rd.f, (off_t)r->offset, SEEK_SET) || fread(rd.buf, 1, r->bytes, rd.f) != r->bytes) {
            FAIL("%s: read error at byte offset %llu: layer %d [%s]", path, (unsigned long long)r->offset, i,
                      l->ops->section);
            break;
        }
        if (crc32_update(0, rd.buf, r->bytes) != r->crc) {
            FAIL("%s: checksum mismatch in layer %d [%s] data at byte offset %llu-%llu: damaged file", path, i,
                      l->ops->section, (unsigned long long)r->offset, (unsigned long long)(r->offset + r->bytes));
            break;
        }
        st = layer_decode(path, l, r, rd.buf, rd.block);
    }
    if (st == DN_OK) {
        for (int i = 0; i < n; ++i) {
            const dn_layer *l = &net->layers[i];
            for (int k = 0; k < l->nparams; ++k)
                memcpy(l->params[k].data, rd.block + l->params[k].offset, sizeof(float) * l->params[k].n);
        }
        net->major = ver[0];
        net->minor = ver[1];
        net->revision = ver[2];
        net->seen = seen;
        net->bn_fresh = 0;
    }
    reader_close(&rd);
    return st;
}

/* ---- statistics ---- */

dn_status dn_ternary_stats(dn_network *net, const char *path, dn_ternary_layer_stats *out, int *packed)
{
    int is_packed = dn_weights_is_packed(path), version = dn_packed_version(path);
    dn_status st = dn_network_load_weights(net, path, -1);
    if (st != DN_OK) return st;
    if (packed) *packed = is_packed;
    for (int i = 0; i < net->n; ++i) {
        const dn_layer *l = &net->layers[i];
        dn_ternary_layer_stats *s = &out[i];
        memset(s, 0, sizeof(*s));
        s->type = l->ops->section;
        s->ternary = layer_is_ternary(l);
        double asum = 0;
        for (int k = 0; k < l->nparams; ++k) {
            const dn_param *p = &l->params[k];
            s->params += p->n;
            if (p->ternary_groups <= 0) continue;
            int groups = p->ternary_groups;
            float *t = malloc(sizeof(float) * (p->n ? p->n : 1)), *a = malloc(sizeof(float) * (size_t)groups);
            if (!t || !a) { free(t); free(a); return dn_error(DN_ERR_NOMEM, "out of memory"); }
            dn_ternarize_groups(p->data, groups, p->n / (size_t)groups, t, a);
            for (size_t j = 0; j < p->n; ++j) s->zeros += t[j] == 0;
            for (int g = 0; g < groups; ++g) {
                if (s->alphas == 0 && g == 0) s->alpha_min = s->alpha_max = a[0];
                s->alpha_min = a[g] < s->alpha_min ? a[g] : s->alpha_min;
                s->alpha_max = a[g] > s->alpha_max ? a[g] : s->alpha_max;
                asum += a[g];
            }
            s->alphas += groups;
            s->weights += p->n;
            free(t);
            free(a);
        }
        s->alpha_mean = s->alphas ? (float)(asum / s->alphas) : 0.f;
        s->bytes = is_packed ? dn_packed_layer_bytes(net, i, version) : 4 * (uint64_t)s->params;
    }
    return DN_OK;
}
