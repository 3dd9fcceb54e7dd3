/* fileio.c: atomic writes (see fileio.h). */
#include "fileio.h"
#include "internal.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

dn_status dn_atomic_open(dn_atomic_file *af, const char *path)
{
    memset(af, 0, sizeof(*af));
    size_t n = strlen(path);
    af->path = strdup(path);
    af->tmp = malloc(n + 16);
    if (!af->path || !af->tmp) { dn_atomic_abort(af); return dn_error(DN_ERR_NOMEM, "out of memory"); }
    snprintf(af->tmp, n + 16, "%s.tmpXXXXXX", path);
    int fd = mkstemp(af->tmp);
    if (fd < 0) {
        dn_status st = dn_error(DN_ERR_IO, "%s: cannot create temporary file: %s", path, strerror(errno));
        free(af->tmp); af->tmp = NULL;
        dn_atomic_abort(af);
        return st;
    }
    af->f = fdopen(fd, "wb");
    if (!af->f) {
        close(fd);
        dn_atomic_abort(af);
        return dn_error(DN_ERR_IO, "%s: cannot open temporary file", path);
    }
    return DN_OK;
}

void dn_atomic_abort(dn_atomic_file *af)
{
    if (af->f) fclose(af->f);
    if (af->tmp) remove(af->tmp);
    free(af->tmp);
    free(af->path);
    memset(af, 0, sizeof(*af));
}

dn_status dn_atomic_commit(dn_atomic_file *af)
{
    dn_status st = DN_OK;
    if (fflush(af->f) || ferror(af->f) || fsync(fileno(af->f)))
        st = dn_error(DN_ERR_IO, "%s: write failed: %s", af->path, strerror(errno));
    if (fclose(af->f) && st == DN_OK)
        st = dn_error(DN_ERR_IO, "%s: close failed: %s", af->path, strerror(errno));
    af->f = NULL;
    if (st == DN_OK && rename(af->tmp, af->path))
        st = dn_error(DN_ERR_IO, "%s: rename failed: %s", af->path, strerror(errno));
    if (st != DN_OK) { dn_atomic_abort(af); return st; }
    free(af->tmp);
    free(af->path);
    memset(af, 0, sizeof(*af));
    return DN_OK;
}
