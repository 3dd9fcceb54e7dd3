/* fileio.h: atomic file writing (temp file in the same folder, fsync, rename),
 * so that a crash at any moment leaves either the old or the new file; and
 * the line reader of the text inputs. */
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

/* Text files read line by line (lists, labels, names): the next line of f
 * without its line end ("\n" or "\r\n") in *buf (getline's buffer, freed by
 * the caller) and its length in *len, or *len = -1 at the end of the file.
 * A line longer than max bytes or holding a NUL byte is DN_ERR_PARSE naming
 * path:lineno. */
dn_status dn_read_line(FILE *f, char **buf, size_t *cap, size_t max, const char *path, int lineno,
                       long *len);
/* The non-blank lines of a text file (what: "image list", "names file", for
 * messages), trailing blanks removed, leading ones too when trim_leading.
 * *out: n malloc'd strings (NULL, 0 on failure). */
dn_status dn_read_lines(const char *path, const char *what, int trim_leading, char ***out, int *n);
/* An image list: dn_read_lines with both ends trimmed; empty is an error. */
dn_status dn_read_list(const char *path, char ***out, int *n);

#endif
