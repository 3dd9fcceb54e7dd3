/* protobuf.c: the protocol buffers writer of protobuf.h (varints, fixed32
 * floats, length-delimited fields, embedded messages written in place). */
#include "protobuf.h"

#include <stdlib.h>
#include <string.h>

enum { WIRE_VARINT = 0, WIRE_LEN = 2, WIRE_FIXED32 = 5 };

void dn_pb_free(dn_pb *b)
{
    free(b->data);
    memset(b, 0, sizeof(*b));
}

static int reserve(dn_pb *b, size_t n)
{
    if (b->failed) return 0;
    if (b->len + n <= b->cap) return 1;
    size_t cap = b->cap ? b->cap : 256;
    while (cap < b->len + n) {
        if (cap > SIZE_MAX / 2) { b->failed = 1; return 0; }
        cap *= 2;
    }
    uint8_t *p = realloc(b->data, cap);
    if (!p) { b->failed = 1; return 0; }
    b->data = p;
    b->cap = cap;
    return 1;
}

void dn_pb_raw(dn_pb *b, const void *p, size_t n)
{
    if (!n || !reserve(b, n)) return;
    memcpy(b->data + b->len, p, n);
    b->len += n;
}

size_t dn_pb_varint_size(uint64_t v)
{
    size_t n = 1;
    while (v >= 0x80) { v >>= 7; ++n; }
    return n;
}

/* v as a varint at out (dn_pb_varint_size(v) bytes). */
static void put_varint(uint8_t *out, uint64_t v)
{
    while (v >= 0x80) {
        *out++ = (uint8_t)(v | 0x80);
        v >>= 7;
    }
    *out = (uint8_t)v;
}

void dn_pb_varint(dn_pb *b, uint64_t v)
{
    size_t n = dn_pb_varint_size(v);
    if (!reserve(b, n)) return;
    put_varint(b->data + b->len, v);
    b->len += n;
}

static void key(dn_pb *b, int field, int wire)
{
    dn_pb_varint(b, ((uint64_t)field << 3) | (uint64_t)wire);
}

void dn_pb_int(dn_pb *b, int field, int64_t v)
{
    key(b, field, WIRE_VARINT);
    dn_pb_varint(b, (uint64_t)v);
}

static void put_fixed32(dn_pb *b, float v)
{
    uint32_t u;
    memcpy(&u, &v, 4);
    uint8_t le[4] = {(uint8_t)u, (uint8_t)(u >> 8), (uint8_t)(u >> 16), (uint8_t)(u >> 24)};
    dn_pb_raw(b, le, 4);
}

void dn_pb_float(dn_pb *b, int field, float v)
{
    key(b, field, WIRE_FIXED32);
    put_fixed32(b, v);
}

void dn_pb_bytes(dn_pb *b, int field, const void *p, size_t n)
{
    key(b, field, WIRE_LEN);
    dn_pb_varint(b, n);
    dn_pb_raw(b, p, n);
}

void dn_pb_string(dn_pb *b, int field, const char *s)
{
    dn_pb_bytes(b, field, s, strlen(s));
}

void dn_pb_ints(dn_pb *b, int field, const int64_t *v, int n)
{
    size_t bytes = 0;
    for (int i = 0; i < n; ++i) bytes += dn_pb_varint_size((uint64_t)v[i]);
    key(b, field, WIRE_LEN);
    dn_pb_varint(b, bytes);
    for (int i = 0; i < n; ++i) dn_pb_varint(b, (uint64_t)v[i]);
}

void dn_pb_floats(dn_pb *b, int field, const float *v, int n)
{
    key(b, field, WIRE_LEN);
    dn_pb_varint(b, 4 * (uint64_t)n);
    for (int i = 0; i < n; ++i) put_fixed32(b, v[i]);
}

void dn_pb_begin(dn_pb *b, int field)
{
    if (b->depth >= DN_PB_MAX_DEPTH) { b->failed = 1; return; }
    key(b, field, WIRE_LEN);
    if (!reserve(b, 1)) return;
    b->open[b->depth++] = b->len;
    b->data[b->len++] = 0;
}

void dn_pb_end(dn_pb *b)
{
    if (b->failed || b->depth <= 0) { b->failed = 1; return; }
    size_t at = b->open[--b->depth], n = b->len - at - 1, sz = dn_pb_varint_size(n);
    if (sz > 1) {
        if (!reserve(b, sz - 1)) return;
        memmove(b->data + at + sz, b->data + at + 1, n);
        b->len += sz - 1;
    }
    put_varint(b->data + at, n);
}
