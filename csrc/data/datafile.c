/* datafile.c: Darknet .data files (classes, train, valid, names, backup as
 * key = value lines) and .names files (one class name per line). */
#include "../core/internal.h"
#include "../core/fileio.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

void dn_names_free(char **names, int n)
{
    for (int i = 0; i < n; ++i) free(names[i]);
    free(names);
}

dn_status dn_names_load(const char *path, char ***names, int *n)
{
    return dn_read_lines(path, "names file", 0, names, n);
}

void dn_data_free(dn_data *d)
{
    free(d->train); free(d->valid); free(d->names_path); free(d->backup);
    dn_names_free(d->names, d->nnames);
    memset(d, 0, sizeof(*d));
}

static char *dup_opt(dn_cfg_section *s, const char *key)
{
    const char *v = dn_cfg_str(s, key, NULL);
    return v ? strdup(v) : NULL;
}

dn_status dn_data_load(dn_data *d, const char *path)
{
    memset(d, 0, sizeof(*d));
    dn_cfg cfg;
    dn_status st = dn_cfg_parse_options_file(&cfg, path);
    if (st != DN_OK) return st;
    dn_cfg_section *s = &cfg.sections[0];
    if (cfg.nsections != 1 || s->name[0])
        st = dn_error(DN_ERR_PARSE, "%s:%d: a .data file holds key = value lines, not [sections]",
                      path, cfg.nsections > 1 ? cfg.sections[1].line : s->line);
    if (st == DN_OK) st = dn_cfg_int(s, "classes", 0, &d->classes);
    if (st == DN_OK && d->classes < 0)
        st = dn_error(DN_ERR_PARSE, "%s:%d: classes must be >= 0", path, dn_cfg_line(s, "classes"));
    if (st == DN_OK) {
        d->train = dup_opt(s, "train");
        d->valid = dup_opt(s, "valid");
        d->names_path = dup_opt(s, "names");
        d->backup = dup_opt(s, "backup");
        dn_cfg_str(s, "results", NULL);
        dn_cfg_str(s, "eval", NULL);
        dn_cfg_str(s, "map", NULL);
        dn_cfg_str(s, "top", NULL);
        dn_cfg_warn_unused(s);
    }
    if (st == DN_OK && d->names_path) {
        st = dn_names_load(d->names_path, &d->names, &d->nnames);
        if (st == DN_OK && d->classes && d->nnames < d->classes)
            st = dn_error(DN_ERR_PARSE, "%s:%d: names file %s has %d names but classes = %d",
                          path, dn_cfg_line(s, "names"), d->names_path, d->nnames, d->classes);
    }
    dn_cfg_free(&cfg);
    if (st != DN_OK) dn_data_free(d);
    return st;
}
