/* labels.c: Darknet label files. The label of an image lives at the image
 * path with /images/ and /JPEGImages/ replaced by /labels/ and the extension
 * by .txt; each line is `class cx cy w h`, relative to the image size. */
#include "../core/internal.h"
#include "../core/fileio.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

static int replace(char *s, size_t cap, const char *from, const char *to)
{
    char *p = strstr(s, from);
    if (!p) return 1;
    size_t lf = strlen(from), lt = strlen(to), ls = strlen(s);
    if (ls - lf + lt + 1 > cap) return 0;
    memmove(p + lt, p + lf, ls - (size_t)(p - s) - lf + 1);
    memcpy(p, to, lt);
    return 1;
}

dn_status dn_label_path(const char *image_path, char *out, size_t cap)
{
    if (strlen(image_path) + 8 > cap) return dn_error(DN_ERR_VALUE, "%s: path too long", image_path);
    strcpy(out, image_path);
    replace(out, cap, "/images/", "/labels/");
    replace(out, cap, "/JPEGImages/", "/labels/");
    char *slash = strrchr(out, '/'), *dot = strrchr(out, '.');
    if (dot && (!slash || dot > slash)) *dot = 0;
    strcat(out, ".txt");
    return DN_OK;
}

dn_status dn_labels_load(const char *path, int classes, dn_label **out, int *n)
{
    *out = NULL;
    *n = 0;
    FILE *f = fopen(path, "r");
    if (!f) {
        if (errno == ENOENT) return DN_OK;
        return dn_error(DN_ERR_IO, "%s: cannot open label file: %s", path, strerror(errno));
    }
    char *line = NULL;
    size_t lcap = 0;
    int cap = 0, lineno = 0;
    long len;
    dn_status st = DN_OK;
    while ((st = dn_read_line(f, &line, &lcap, 1024, path, ++lineno, &len)) == DN_OK && len >= 0) {
        char *p = line;
        while (*p == ' ' || *p == '\t') ++p;
        if (!*p) continue;
        int id, used = 0;
        float x, y, w, h;
        if (sscanf(p, "%d %f %f %f %f %n", &id, &x, &y, &w, &h, &used) != 5 || p[used]) {
            st = dn_error(DN_ERR_PARSE, "%s:%d: expected 'class cx cy w h', got '%.*s'",
                          path, lineno, (int)strcspn(p, "\r\n"), p);
            break;
        }
        if (id < 0 || (classes > 0 && id >= classes)) {
            st = dn_error(DN_ERR_PARSE, "%s:%d: class id %d outside [0, %d)", path, lineno, id, classes);
            break;
        }
        if (!(x >= 0 && x <= 1 && y >= 0 && y <= 1 && w > 0 && w <= 1 && h > 0 && h <= 1)) {
            st = dn_error(DN_ERR_PARSE, "%s:%d: box %g %g %g %g is not inside [0,1] with positive size",
                          path, lineno, x, y, w, h);
            break;
        }
        if (*n == cap) {
            cap = cap ? 2 * cap : 16;
            dn_label *nl = realloc(*out, sizeof(dn_label) * (size_t)cap);
            if (!nl) { st = dn_error(DN_ERR_NOMEM, "out of memory"); break; }
            *out = nl;
        }
        (*out)[(*n)++] = (dn_label){x, y, w, h, id};
    }
    free(line);
    fclose(f);
    if (st != DN_OK) { free(*out); *out = NULL; *n = 0; }
    return st;
}
