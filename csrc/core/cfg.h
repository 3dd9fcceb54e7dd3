/* cfg.h: Darknet .cfg parser.
 *
 * A cfg is a list of [section]s, each a list of key=value options with the
 * line they came from. Getters convert values and report a wrong type as an
 * error naming file and line; options never read are reported by
 * dn_cfg_warn_unused (Darknet's "Unused field"). Lists are comma separated.
 */
#ifndef DN_CFG_H
#define DN_CFG_H

#include "darknet.h"

typedef struct {
    char *key, *value;
    int line;
    int used;
} dn_cfg_option;

typedef struct {
    char *name;
    const char *file;  /* view of dn_cfg.path */
    int line;
    int nopts;
    dn_cfg_option *opts;
} dn_cfg_section;

typedef struct {
    char *path;
    int nsections;
    dn_cfg_section *sections;
} dn_cfg;

dn_status dn_cfg_parse_file(dn_cfg *cfg, const char *path);
/* A file of key=value lines without sections (.data files): the options land
 * in one section named "" (sections may still follow). */
dn_status dn_cfg_parse_options_file(dn_cfg *cfg, const char *path);
/* Parse text held in memory; name is used in messages. */
dn_status dn_cfg_parse_string(dn_cfg *cfg, const char *text, const char *name);
void dn_cfg_free(dn_cfg *cfg);

/* Getters: absent key -> *out = def, DN_OK. Bad value -> error with file:line. */
dn_status dn_cfg_int(dn_cfg_section *s, const char *key, int def, int *out);
dn_status dn_cfg_float(dn_cfg_section *s, const char *key, float def, float *out);
/* An integer used as a size, stride, padding or count: as dn_cfg_int, and an
 * error beyond +-DN_CFG_MAX_DIM, so that shape arithmetic cannot overflow. */
#define DN_CFG_MAX_DIM 65536
dn_status dn_cfg_dim(dn_cfg_section *s, const char *key, int def, int *out);
/* String view (valid while cfg lives); absent -> def. */
const char *dn_cfg_str(dn_cfg_section *s, const char *key, const char *def);
/* Comma separated lists; *out is malloc'd (NULL and *n = 0 if absent). */
dn_status dn_cfg_int_list(dn_cfg_section *s, const char *key, int **out, int *n);
dn_status dn_cfg_float_list(dn_cfg_section *s, const char *key, float **out, int *n);
/* Line of a key, or the section line if absent (for messages). */
int dn_cfg_line(const dn_cfg_section *s, const char *key);
int dn_cfg_has(const dn_cfg_section *s, const char *key);
void dn_cfg_warn_unused(const dn_cfg_section *s);

#endif
