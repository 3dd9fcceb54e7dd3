/* fileio.c: atomic writes (see fileio.h): temp file next to the target
 * (path.tmp<pid>.<n>; those of dead writers are removed), fsync, rename,
 * fsync of the folder; the line and list readers of the text inputs. */
#include "fileio.h"
#include "internal.h"

#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Remove the temp files of path left by killed writers: path.tmp<pid>.<n>
 * whose process no longer exists. */
static void remove_stale_temps(const char *path)
{
    const char *slash = strrchr(path, '/');
    const char *base = slash ? slash + 1 : path;
    char *dir = slash ? strndup(path, slash == path ? 1 : (size_t)(slash - path)) : strdup(".");
    DIR *d = dir ? opendir(dir) : NULL;
    size_t nb = strlen(base);
    struct dirent *e;
    while (d && (e = readdir(d))) {
        long pid;
        unsigned k;
        char tail;
        if (strncmp(e->d_name, base, nb) || sscanf(e->d_name + nb, ".tmp%ld.%u%c", &pid, &k, &tail) != 2) continue;
        if (pid <= 0 || pid == (long)getpid() || kill((pid_t)pid, 0) == 0 || errno != ESRCH) continue;
        size_t n = strlen(dir) + strlen(e->d_name) + 2;
        char *full = malloc(n);
        if (full) {
            snprintf(full, n, "%s/%s", dir, e->d_name);
            unlink(full);
            free(full);
        }
    }
    if (d) closedir(d);
    free(dir);
}

dn_status dn_atomic_open(dn_atomic_file *af, const char *path)
{
    memset(af, 0, sizeof(*af));
    size_t n = strlen(path);
    af->path = strdup(path);
    af->tmp = malloc(n + 32);
    if (!af->path || !af->tmp) { dn_atomic_abort(af); return dn_error(DN_ERR_NOMEM, "out of memory"); }
    remove_stale_temps(path);
    /* open(O_EXCL, 0666) rather than mkstemp: the file gets the usual
     * umask permissions (mkstemp's 0600 would survive the rename) */
    static _Atomic unsigned counter;
    int fd = -1;
    for (int tries = 0; fd < 0 && tries < 100; ++tries) {
        snprintf(af->tmp, n + 32, "%s.tmp%ld.%u", path, (long)getpid(), counter++);
        fd = open(af->tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
        if (fd < 0 && errno != EEXIST) break;
    }
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

/* fsync the folder holding path so the rename itself survives a power cut
 * (best effort: some file systems refuse it). */
static void sync_dir(const char *path)
{
    const char *slash = strrchr(path, '/');
    char *dir = slash ? strndup(path, slash == path ? 1 : (size_t)(slash - path)) : strdup(".");
    if (!dir) return;
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd >= 0) { fsync(fd); close(fd); }
    free(dir);
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
    sync_dir(af->path);
    free(af->tmp);
    free(af->path);
    memset(af, 0, sizeof(*af));
    return DN_OK;
}

dn_status dn_read_line(FILE *f, char **buf, size_t *cap, size_t max, const char *path, int lineno,
                       long *len)
{
    *len = -1;
    errno = 0;
    ssize_t n = getline(buf, cap, f);
    if (n < 0) {
        if (!ferror(f)) return DN_OK;
        return dn_error(errno == ENOMEM ? DN_ERR_NOMEM : DN_ERR_IO, "%s:%d: read error: %s", path, lineno,
                        strerror(errno ? errno : EIO));
    }
    if (n && (*buf)[n - 1] == '\n') (*buf)[--n] = 0;
    if (n && (*buf)[n - 1] == '\r') (*buf)[--n] = 0;
    if ((size_t)n > max)
        return dn_error(DN_ERR_PARSE, "%s:%d: line too long (%ld bytes, at most %zu)", path, lineno, (long)n, max);
    size_t nul = strlen(*buf);
    if (nul != (size_t)n)
        return dn_error(DN_ERR_PARSE, "%s:%d: NUL byte at column %zu: not a text file", path, lineno, nul + 1);
    *len = (long)n;
    return DN_OK;
}

dn_status dn_read_lines(const char *path, const char *what, int trim_leading, char ***out, int *n)
{
    *out = NULL;
    *n = 0;
    FILE *f = fopen(path, "r");
    if (!f) return dn_error(DN_ERR_IO, "%s: cannot open %s: %s", path, what, strerror(errno));
    char *line = NULL;
    size_t lcap = 0;
    int cap = 0, lineno = 0;
    long len;
    dn_status st;
    while ((st = dn_read_line(f, &line, &lcap, 4096, path, ++lineno, &len)) == DN_OK && len >= 0) {
        while (len && (line[len - 1] == ' ' || line[len - 1] == '\t')) line[--len] = 0;
        char *p = line;
        while (trim_leading && (*p == ' ' || *p == '\t')) ++p;
        if (!*p) continue;
        if (*n == cap) {
            cap = cap ? 2 * cap : 256;
            char **np = realloc(*out, sizeof(char *) * (size_t)cap);
            if (!np) { st = dn_error(DN_ERR_NOMEM, "out of memory"); break; }
            *out = np;
        }
        if (!((*out)[*n] = strdup(p))) { st = dn_error(DN_ERR_NOMEM, "out of memory"); break; }
        ++*n;
    }
    free(line);
    fclose(f);
    if (st != DN_OK) {
        for (int i = 0; i < *n; ++i) free((*out)[i]);
        free(*out);
        *out = NULL;
        *n = 0;
    }
    return st;
}

dn_status dn_read_list(const char *path, char ***out, int *n)
{
    dn_status st = dn_read_lines(path, "image list", 1, out, n);
    if (st == DN_OK && !*n) {
        free(*out);
        *out = NULL;
        st = dn_error(DN_ERR_PARSE, "%s: the image list is empty", path);
    }
    return st;
}
