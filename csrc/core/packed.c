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
#define HEADER_BYTES 64
#define RECORD_BYTES 64

enum { KIND_FLOAT = 0, KIND_TERNARY = 1 };

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

/* The record layer i of net should have (offset left 0, crc 0). */
static void expected_record(const dn_network *net, int i, record *r)
{
    const dn_layer *l = &net->layers[i];
    memset(r, 0, sizeof(*r));
    strncpy(r->type, l->ops->section, sizeof(r->type) - 1);
    r->layer = (uint32_t)i;
    r->kind = layer_is_ternary(l) ? KIND_TERNARY : KIND_FLOAT;
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

uint64_t dn_packed_layer_bytes(const dn_network *net, int i)
{
    record r;
    expected_record(net, i, &r);
    return r.bytes;
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

/* Encode layer l's params (block: net->params layout) into buf (r.bytes). */
static int layer_encode(const dn_layer *l, const float *block, uint8_t *buf)
{
    uint8_t *o = buf;
    for (int k = 0; k < l->nparams; ++k) {
        const dn_param *p = &l->params[k];
        const float *x = block + p->offset;
        if (p->ternary_groups <= 0) {
            for (size_t i = 0; i < p->n; ++i, o += 4) put_f32(o, x[i]);
            continue;
        }
        int groups = p->ternary_groups;
        float *t = malloc(sizeof(float) * (p->n ? p->n : 1)), *alpha = malloc(sizeof(float) * (size_t)groups);
        if (!t || !alpha) { free(t); free(alpha); return 0; }
        dn_ternarize_groups(x, groups, p->n / (size_t)groups, t, alpha);
        for (int g = 0; g < groups; ++g, o += 4) put_f32(o, alpha[g]);
        uint64_t nb = tq_blocks(p->n);
        for (uint64_t b = 0; b < nb; ++b) {
            dn_block_tq blk;
            for (int j = 0; j < 32; ++j) {
                int v = 0;
                for (int d = 4; d >= 0; --d) {
                    uint64_t i = b * DN_TQ_TRITS + 5 * (uint64_t)j + (uint64_t)d;
                    int digit = i < p->n ? (t[i] > 0 ? 2 : t[i] < 0 ? 0 : 1) : 1;
                    v = 3 * v + digit;
                }
                blk.q[j] = (uint8_t)v;
            }
            memcpy(o, &blk, sizeof blk);
            o += sizeof blk;
        }
        free(t);
        free(alpha);
    }
    return 1;
}

/* ---- writer ---- */

static void header_encode(const dn_network *net, uint32_t nlayers, uint64_t file_bytes,
                          uint32_t table_crc, uint8_t *h)
{
    memset(h, 0, HEADER_BYTES);
    memcpy(h, MAGIC, 8);
    put_u32(h + 8, VERSION);
    put_u32(h + 12, HEADER_BYTES);
    put_u32(h + 16, RECORD_BYTES);
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

dn_status dn_network_save_packed(const dn_network *net, const char *path)
{
    int n = net->n;
    record *recs = calloc((size_t)n, sizeof(record));
    uint8_t *table = calloc((size_t)n, RECORD_BYTES);
    if (!recs || !table) { free(recs); free(table); return dn_error(DN_ERR_NOMEM, "%s: out of memory", path); }
    uint64_t off = HEADER_BYTES + (uint64_t)n * RECORD_BYTES, maxb = 0;
    for (int i = 0; i < n; ++i) {
        expected_record(net, i, &recs[i]);
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
    int ok = fwrite(h, 1, HEADER_BYTES, af.f) == HEADER_BYTES &&
             fwrite(table, RECORD_BYTES, (size_t)n, af.f) == (size_t)n;
    int nomem = 0;
    for (int i = 0; i < n && ok; ++i) {
        if (!layer_encode(&net->layers[i], net->params, buf)) { ok = 0; nomem = 1; break; }
        recs[i].crc = crc32_update(0, buf, recs[i].bytes);
        ok = fwrite(buf, 1, recs[i].bytes, af.f) == recs[i].bytes;
    }
    for (int i = 0; i < n; ++i) record_encode(&recs[i], table + (size_t)i * RECORD_BYTES);
    header_encode(net, (uint32_t)n, off, crc32_update(0, table, (size_t)n * RECORD_BYTES), h);
    ok = ok && fseek(af.f, 0, SEEK_SET) == 0 && fwrite(h, 1, HEADER_BYTES, af.f) == HEADER_BYTES &&
         fwrite(table, RECORD_BYTES, (size_t)n, af.f) == (size_t)n;
    free(recs);
    free(table);
    free(buf);
    if (!ok) {
        dn_atomic_abort(&af);
        return nomem ? dn_error(DN_ERR_NOMEM, "%s: out of memory", path)
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

static void printable(const uint8_t *p, size_t n, char *out)
{
    for (size_t i = 0; i < n; ++i) out[i] = p[i] >= 32 && p[i] < 127 ? (char)p[i] : '?';
    out[n] = 0;
}

/* Decode layer i's data (r.bytes at buf, file offset r.offset) into block. */
static dn_status layer_decode(const char *path, const dn_layer *l, const record *r, const uint8_t *buf,
                              float *block)
{
    const uint8_t *o = buf;
    for (int k = 0; k < l->nparams; ++k) {
        const dn_param *p = &l->params[k];
        float *x = block + p->offset;
        if (p->ternary_groups <= 0) {
            for (size_t i = 0; i < p->n; ++i, o += 4) x[i] = get_f32(o);
            continue;
        }
        int groups = p->ternary_groups;
        size_t per = p->n / (size_t)groups;
        const uint8_t *alphas = o;
        for (int g = 0; g < groups; ++g) {
            float a = get_f32(o + 4 * (size_t)g);
            if (!(a >= 0) || isinf(a))
                return dn_error(DN_ERR_FORMAT, "%s: bad alpha %g at byte offset %llu: layer %d [%s] %s alpha %d must be finite and >= 0",
                                path, (double)a, (unsigned long long)(r->offset + (uint64_t)(o - buf) + 4 * (uint64_t)g),
                                l->index, l->ops->section, p->name, g);
        }
        o += 4 * (size_t)groups;
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
                    float a = get_f32(alphas + 4 * (i / per));
                    x[i] = code > 0 ? a : code < 0 ? -a : 0.f;
                }
            }
        }
    }
    return DN_OK;
}

typedef struct {
    const char *path;
    FILE *f;
    uint64_t size;
    int nlayers;
    record *recs;
    uint8_t *buf;
    float *block;
} reader;

static void reader_close(reader *rd)
{
    if (rd->f) fclose(rd->f);
    free(rd->recs);
    free(rd->buf);
    free(rd->block);
}

#define FAIL(...) (st = dn_error(DN_ERR_FORMAT, __VA_ARGS__))

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
    if (get_u32(h + 8) != VERSION)
        return FAIL("%s: unsupported version %u at byte offset 8 (this reader knows version %d)", path,
                    get_u32(h + 8), VERSION);
    if (got < HEADER_BYTES)
        return FAIL("%s: truncated at byte offset %zu: the header needs %d bytes", path, got, HEADER_BYTES);
    if (get_u32(h + 12) != HEADER_BYTES || get_u32(h + 16) != RECORD_BYTES)
        return FAIL("%s: bad header at byte offset 12: header/record sizes %u/%u, expected %d/%d", path,
                    get_u32(h + 12), get_u32(h + 16), HEADER_BYTES, RECORD_BYTES);
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
    if (nl == 0 || nl > (uint32_t)1 << 20)
        return FAIL("%s: bad header at byte offset 20: %u layers", path, nl);
    rd->nlayers = (int)nl;
    int n;
    if (upto == -1) {
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
    uint64_t table_end = HEADER_BYTES + (uint64_t)nl * RECORD_BYTES;
    uint8_t *table = malloc((size_t)nl * RECORD_BYTES);
    rd->recs = calloc(nl, sizeof(record));
    if (!table || !rd->recs) { free(table); return dn_error(DN_ERR_NOMEM, "%s: out of memory", path); }
    got = fread(table, 1, (size_t)nl * RECORD_BYTES, rd->f);
    if (got < (size_t)nl * RECORD_BYTES) {
        free(table);
        return FAIL("%s: truncated at byte offset %llu: in the record table (layer %zu record; the table ends at byte %llu)",
                    path, (unsigned long long)(HEADER_BYTES + got), got / RECORD_BYTES,
                    (unsigned long long)table_end);
    }
    for (uint32_t i = 0; i < nl; ++i) record_decode(table + (size_t)i * RECORD_BYTES, &rd->recs[i]);
    uint32_t tcrc = crc32_update(0, table, (size_t)nl * RECORD_BYTES);
    free(table);
    /* records: continuity first (any file), then against the cfg */
    uint64_t off = table_end;
    for (uint32_t i = 0; i < nl; ++i) {
        const record *r = &rd->recs[i];
        unsigned long long at = HEADER_BYTES + (unsigned long long)i * RECORD_BYTES;
        if (r->layer != i) return FAIL("%s: bad record at byte offset %llu: layer %u record says layer %u", path, at, i, r->layer);
        if (r->offset != off)
            return FAIL("%s: bad record at byte offset %llu: layer %u data offset %llu, expected %llu", path, at + 48, i,
                        (unsigned long long)r->offset, (unsigned long long)off);
        if (r->bytes > ((uint64_t)1 << 40))
            return FAIL("%s: bad record at byte offset %llu: layer %u has %llu bytes", path, at + 56, i,
                        (unsigned long long)r->bytes);
        off += r->bytes;
    }
    for (int i = 0; i < n; ++i) {
        const record *r = &rd->recs[i];
        record e;
        expected_record(net, i, &e);
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
    if (tcrc != get_u32(h + 56))
        return FAIL("%s: record table checksum mismatch (bytes %d-%llu, CRC at byte offset 56): damaged file", path,
                    HEADER_BYTES, (unsigned long long)table_end - 1);
    if (get_u64(h + 48) != off)
        return FAIL("%s: bad header at byte offset 48: file size field %llu, the records end at %llu", path,
                    (unsigned long long)get_u64(h + 48), (unsigned long long)off);
    if (rd->size < off) {
        int i = 0;
        while (i + 1 < rd->nlayers && rd->recs[i].offset + rd->recs[i].bytes <= rd->size) ++i;
        const char *type = rd->recs[i].type;
        return FAIL("%s: truncated at byte offset %llu: layer %d [%s] data spans bytes %llu-%llu, the file should be %llu bytes",
                    path, (unsigned long long)rd->size, i, type, (unsigned long long)rd->recs[i].offset,
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
    for (int i = 0; i < n; ++i) maxb = rd.recs[i].bytes > maxb ? rd.recs[i].bytes : maxb;
    if (st == DN_OK) {
        rd.buf = malloc(maxb ? maxb : 1);
        rd.block = malloc(sizeof(float) * (net->nparams ? net->nparams : 1));
        if (!rd.buf || !rd.block) st = dn_error(DN_ERR_NOMEM, "%s: out of memory", path);
    }
    for (int i = 0; i < n && st == DN_OK; ++i) {
        const record *r = &rd.recs[i];
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
    int is_packed = dn_weights_is_packed(path);
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
        s->bytes = is_packed ? dn_packed_layer_bytes(net, i) : 4 * (uint64_t)s->params;
    }
    return DN_OK;
}
