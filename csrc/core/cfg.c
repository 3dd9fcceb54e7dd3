/* cfg.c: Darknet .cfg parser (see cfg.h). Text is read whole, split into
 * lines; '#' and ';' start comment lines; spaces around keys, values and
 * '=' are ignored, as Darknet strips all whitespace. */
#include "internal.h"

#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

static char *dup_range(const char *a, const char *b)
{
    size_t n = (size_t)(b - a);
    char *s = malloc(n + 1);
    if (!s) return NULL;
    memcpy(s, a, n);
    s[n] = 0;
    return s;
}

/* Copy [a,b) without any whitespace (Darknet's strip). */
static char *dup_stripped(const char *a, const char *b)
{
    char *s = malloc((size_t)(b - a) + 1), *p = s;
    if (!s) return NULL;
    for (; a < b; ++a)
        if (!isspace((unsigned char)*a)) *p++ = *a;
    *p = 0;
    return s;
}

static dn_status add_section(dn_cfg *cfg, char *name, int line)
{
    dn_cfg_section *ns = realloc(cfg->sections, sizeof(*ns) * (size_t)(cfg->nsections + 1));
    if (!ns) { free(name); return dn_error(DN_ERR_NOMEM, "out of memory parsing %s", cfg->path); }
    cfg->sections = ns;
    dn_cfg_section *s = &ns[cfg->nsections++];
    memset(s, 0, sizeof(*s));
    s->name = name;
    s->file = cfg->path;
    s->line = line;
    return DN_OK;
}

static dn_status add_option(dn_cfg *cfg, dn_cfg_section *s, char *key, char *value, int line)
{
    dn_cfg_option *no = realloc(s->opts, sizeof(*no) * (size_t)(s->nopts + 1));
    if (!no) { free(key); free(value); return dn_error(DN_ERR_NOMEM, "out of memory parsing %s", cfg->path); }
    s->opts = no;
    no[s->nopts++] = (dn_cfg_option){key, value, line, 0};
    return DN_OK;
}

static dn_status parse_text(dn_cfg *cfg, const char *text, const char *name, int implicit)
{
    memset(cfg, 0, sizeof(*cfg));
    cfg->path = dup_range(name, name + strlen(name));
    if (!cfg->path) return dn_error(DN_ERR_NOMEM, "out of memory");
    const char *p = text;
    int line = 0;
    dn_status st = DN_OK;
    while (*p && st == DN_OK) {
        const char *end = strchr(p, '\n');
        if (!end) end = p + strlen(p);
        ++line;
        const char *a = p, *b = end;
        while (a < b && isspace((unsigned char)*a)) ++a;
        while (b > a && isspace((unsigned char)b[-1])) --b;
        p = *end ? end + 1 : end;
        if (a == b || *a == '#' || *a == ';') continue;
        if (memchr(a, 0, (size_t)(b - a))) {
            st = dn_error(DN_ERR_PARSE, "%s:%d: NUL byte in cfg text", cfg->path, line);
            break;
        }
        if (*a == '[') {
            if (b[-1] != ']' || b - a < 3) {
                st = dn_error(DN_ERR_PARSE, "%s:%d: malformed section header '%.*s'",
                              cfg->path, line, (int)(b - a), a);
                break;
            }
            char *nm = dup_stripped(a + 1, b - 1);
            if (!nm) { st = dn_error(DN_ERR_NOMEM, "out of memory"); break; }
            st = add_section(cfg, nm, line);
            continue;
        }
        const char *eq = memchr(a, '=', (size_t)(b - a));
        if (!eq) {
            st = dn_error(DN_ERR_PARSE, "%s:%d: expected key=value, got '%.*s'",
                          cfg->path, line, (int)(b - a), a);
            break;
        }
        if (cfg->nsections == 0) {
            if (!implicit) {
                st = dn_error(DN_ERR_PARSE, "%s:%d: option before any [section]", cfg->path, line);
                break;
            }
            char *nm = dup_range("", "");
            if (!nm || (st = add_section(cfg, nm, 0)) != DN_OK) {
                st = nm ? st : dn_error(DN_ERR_NOMEM, "out of memory");
                break;
            }
        }
        char *key = dup_stripped(a, eq), *val = dup_stripped(eq + 1, b);
        if (!key || !val) { free(key); free(val); st = dn_error(DN_ERR_NOMEM, "out of memory"); break; }
        if (!*key) {
            free(key); free(val);
            st = dn_error(DN_ERR_PARSE, "%s:%d: empty key", cfg->path, line);
            break;
        }
        st = add_option(cfg, &cfg->sections[cfg->nsections - 1], key, val, line);
    }
    if (st == DN_OK && cfg->nsections == 0)
        st = dn_error(DN_ERR_PARSE, implicit ? "%s: empty file" : "%s: no [section] found", cfg->path);
    if (st != DN_OK) dn_cfg_free(cfg);
    return st;
}

dn_status dn_cfg_parse_string(dn_cfg *cfg, const char *text, const char *name)
{
    return parse_text(cfg, text, name, 0);
}

static dn_status parse_file(dn_cfg *cfg, const char *path, int implicit)
{
    memset(cfg, 0, sizeof(*cfg));
    FILE *f = fopen(path, "rb");
    if (!f) return dn_error(DN_ERR_IO, "%s: cannot open cfg file: %s", path, strerror(errno));
    size_t cap = 1 << 16, n = 0;
    char *buf = malloc(cap + 1);
    while (buf) {
        size_t r = fread(buf + n, 1, cap - n, f);
        n += r;
        if (n < cap) break;
        char *nb = realloc(buf, 2 * cap + 1);
        if (!nb) { free(buf); buf = NULL; break; }
        buf = nb; cap *= 2;
    }
    int err = ferror(f);
    fclose(f);
    if (!buf) return dn_error(DN_ERR_NOMEM, "%s: out of memory", path);
    if (err) { free(buf); return dn_error(DN_ERR_IO, "%s: read error", path); }
    buf[n] = 0;
    if (strlen(buf) != n) {
        size_t off = strlen(buf);
        free(buf);
        return dn_error(DN_ERR_PARSE, "%s: byte offset %zu: NUL byte, not a text cfg", path, off);
    }
    dn_status st = parse_text(cfg, buf, path, implicit);
    free(buf);
    return st;
}

dn_status dn_cfg_parse_file(dn_cfg *cfg, const char *path) { return parse_file(cfg, path, 0); }

dn_status dn_cfg_parse_options_file(dn_cfg *cfg, const char *path) { return parse_file(cfg, path, 1); }

void dn_cfg_free(dn_cfg *cfg)
{
    for (int i = 0; i < cfg->nsections; ++i) {
        dn_cfg_section *s = &cfg->sections[i];
        for (int j = 0; j < s->nopts; ++j) { free(s->opts[j].key); free(s->opts[j].value); }
        free(s->opts);
        free(s->name);
    }
    free(cfg->sections);
    free(cfg->path);
    memset(cfg, 0, sizeof(*cfg));
}

/* First occurrence wins, as in Darknet's option lookup; later duplicates
 * stay unused and are warned about. */
static dn_cfg_option *find(const dn_cfg_section *s, const char *key)
{
    for (int j = 0; j < s->nopts; ++j)
        if (!strcmp(s->opts[j].key, key)) return &s->opts[j];
    return NULL;
}

int dn_cfg_has(const dn_cfg_section *s, const char *key) { return find(s, key) != NULL; }

int dn_cfg_line(const dn_cfg_section *s, const char *key)
{
    dn_cfg_option *o = find(s, key);
    return o ? o->line : s->line;
}

static dn_status parse_int(const char *v, int *out)
{
    char *end;
    errno = 0;
    long x = strtol(v, &end, 10);
    if (end == v || errno) return DN_ERR_PARSE;
    if (*end == '.') { /* accept "1." / "2.0" when integral */
        double d = strtod(v, &end);
        if (*end || d != floor(d)) return DN_ERR_PARSE;
        x = (long)d;
    } else if (*end) return DN_ERR_PARSE;
    if (x < INT_MIN || x > INT_MAX) return DN_ERR_PARSE;
    *out = (int)x;
    return DN_OK;
}

static dn_status parse_float(const char *v, float *out)
{
    char *end;
    errno = 0;
    double d = strtod(v, &end);
    if (end == v || *end || errno || !isfinite(d)) return DN_ERR_PARSE;
    *out = (float)d;
    return DN_OK;
}

dn_status dn_cfg_int(dn_cfg_section *s, const char *key, int def, int *out)
{
    dn_cfg_option *o = find(s, key);
    *out = def;
    if (!o) return DN_OK;
    o->used = 1;
    if (parse_int(o->value, out) != DN_OK)
        return dn_error(DN_ERR_PARSE, "%s:%d: [%s] %s=%s: expected an integer",
                        s->file, o->line, s->name, key, o->value);
    return DN_OK;
}

dn_status dn_cfg_dim(dn_cfg_section *s, const char *key, int def, int *out)
{
    dn_status st = dn_cfg_int(s, key, def, out);
    if (st == DN_OK && (*out > DN_CFG_MAX_DIM || *out < -DN_CFG_MAX_DIM))
        return dn_error(DN_ERR_PARSE, "%s:%d: [%s] %s=%d is too large (at most %d)", s->file, dn_cfg_line(s, key),
                        s->name, key, *out, DN_CFG_MAX_DIM);
    return st;
}

dn_status dn_cfg_float(dn_cfg_section *s, const char *key, float def, float *out)
{
    dn_cfg_option *o = find(s, key);
    *out = def;
    if (!o) return DN_OK;
    o->used = 1;
    if (parse_float(o->value, out) != DN_OK)
        return dn_error(DN_ERR_PARSE, "%s:%d: [%s] %s=%s: expected a number",
                        s->file, o->line, s->name, key, o->value);
    return DN_OK;
}

const char *dn_cfg_str(dn_cfg_section *s, const char *key, const char *def)
{
    dn_cfg_option *o = find(s, key);
    if (!o) return def;
    o->used = 1;
    return o->value;
}

/* Split on commas; empty items (e.g. a trailing comma) are skipped. */
static dn_status parse_list(dn_cfg_section *s, const char *key, int is_int, void **out, int *n)
{
    *out = NULL;
    *n = 0;
    dn_cfg_option *o = find(s, key);
    if (!o) return DN_OK;
    o->used = 1;
    size_t len = strlen(o->value), cap = 1;
    for (size_t i = 0; i < len; ++i) cap += o->value[i] == ',';
    void *arr = malloc(cap * (is_int ? sizeof(int) : sizeof(float)));
    char *tmp = malloc(len + 1);
    if (!arr || !tmp) { free(arr); free(tmp); return dn_error(DN_ERR_NOMEM, "out of memory"); }
    int k = 0;
    const char *p = o->value;
    while (1) {
        const char *c = strchr(p, ',');
        size_t m = c ? (size_t)(c - p) : strlen(p);
        if (m) {
            memcpy(tmp, p, m);
            tmp[m] = 0;
            dn_status st = is_int ? parse_int(tmp, (int *)arr + k) : parse_float(tmp, (float *)arr + k);
            if (st != DN_OK) {
                st = dn_error(DN_ERR_PARSE, "%s:%d: [%s] %s: item %d '%s' is not %s",
                              s->file, o->line, s->name, key, k + 1, tmp,
                              is_int ? "an integer" : "a number");
                free(arr);
                free(tmp);
                return st;
            }
            ++k;
        }
        if (!c) break;
        p = c + 1;
    }
    free(tmp);
    *out = arr;
    *n = k;
    return DN_OK;
}

dn_status dn_cfg_int_list(dn_cfg_section *s, const char *key, int **out, int *n)
{
    return parse_list(s, key, 1, (void **)out, n);
}

dn_status dn_cfg_float_list(dn_cfg_section *s, const char *key, float **out, int *n)
{
    return parse_list(s, key, 0, (void **)out, n);
}

void dn_cfg_warn_unused(const dn_cfg_section *s)
{
    for (int j = 0; j < s->nopts; ++j)
        if (!s->opts[j].used)
            dn_warn("%s:%d: unused option '%s = %s' in [%s]", s->file, s->opts[j].line,
                    s->opts[j].key, s->opts[j].value, s->name);
}
