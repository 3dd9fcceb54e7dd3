/* fileio.h: atomic file writing (temp file in the same folder, fsync, rename),
 * so that a crash at any moment leaves either the old or the new file. */
#ifndef DN_FILEIO_H
#define DN_FILEIO_H

#include "darknet.h"
#include <stdio.h>

typedef struct {
    FILE *f;
    char *path, *tmp;
} dn_atomic_file;

dn_status dn_atomic_open(dn_atomic_file *af, const char *path);
/* Flush, fsync and rename over path; on any failure the temp file is removed. */
dn_status dn_atomic_commit(dn_atomic_file *af);
/* Remove the temp file without touching path. */
void dn_atomic_abort(dn_atomic_file *af);

#endif
