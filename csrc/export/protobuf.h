/* protobuf.h: the little of the protocol buffers wire format that ONNX's
 * ModelProto needs, written into a growing byte buffer.
 *
 * Wire format: a field is a key varint (field << 3 | wire type) and a value:
 * wire type 0 a varint (int64 as two's complement: 10 bytes when negative),
 * 2 a length varint and that many bytes (strings, bytes, packed repeated
 * scalars, embedded messages), 5 four little-endian bytes (float).
 * Embedded messages are written in place: dn_pb_begin writes the key and a
 * one-byte length, dn_pb_end fills in the length and, when it needs more
 * bytes, moves the message's content up (cheap for the small messages it is
 * used for: nodes, attributes, shapes). Allocation failures are remembered
 * (b->failed) and every later call does nothing, so a writer checks once at
 * the end.
 */
#ifndef DN_EXPORT_PROTOBUF_H
#define DN_EXPORT_PROTOBUF_H

#include <stddef.h>
#include <stdint.h>

#define DN_PB_MAX_DEPTH 8

typedef struct {
    uint8_t *data;
    size_t len, cap;
    int failed;                     /* an allocation failed: the content is incomplete */
    size_t open[DN_PB_MAX_DEPTH];   /* offsets of the length bytes of the open messages */
    int depth;
} dn_pb;

void dn_pb_free(dn_pb *b);
/* Raw bytes and varints (no key). */
void dn_pb_raw(dn_pb *b, const void *p, size_t n);
void dn_pb_varint(dn_pb *b, uint64_t v);
/* Bytes a varint of v takes. */
size_t dn_pb_varint_size(uint64_t v);
/* One field each: int64/int32/enum (varint), float (fixed32), bytes, string. */
void dn_pb_int(dn_pb *b, int field, int64_t v);
void dn_pb_float(dn_pb *b, int field, float v);
void dn_pb_bytes(dn_pb *b, int field, const void *p, size_t n);
void dn_pb_string(dn_pb *b, int field, const char *s);
/* Packed repeated int64 and float fields. */
void dn_pb_ints(dn_pb *b, int field, const int64_t *v, int n);
void dn_pb_floats(dn_pb *b, int field, const float *v, int n);
/* An embedded message: begin, its fields, end. */
void dn_pb_begin(dn_pb *b, int field);
void dn_pb_end(dn_pb *b);

#endif
