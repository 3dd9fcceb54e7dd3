/* fuzz_util.h: helpers shared by the libFuzzer targets (fuzz/fuzz_*.c files).
 *
 * The readers under test take file paths, so each input is written to an
 * in-memory file (memfd) and read back through /proc/self/fd/N: no disk I/O
 * per execution. Warnings from the library are swallowed (the fuzzer would
 * otherwise print millions of "unused option" lines).
 */
#ifndef DN_FUZZ_UTIL_H
#define DN_FUZZ_UTIL_H

#include "darknet.h"

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

static void fuzz_quiet(const char *msg, void *user) { (void)msg; (void)user; }

/* Path of an in-memory file holding data[0..size) (one file per slot). */
static const char *fuzz_file(int slot, const uint8_t *data, size_t size)
{
    static int fds[4] = {-1, -1, -1, -1};
    static char paths[4][64];
    if (fds[slot] < 0) {
        fds[slot] = memfd_create("dn_fuzz", 0);
        if (fds[slot] < 0) { perror("memfd_create"); abort(); }
        snprintf(paths[slot], sizeof paths[slot], "/proc/self/fd/%d", fds[slot]);
        dn_set_warning_handler(fuzz_quiet, NULL);
    }
    if (ftruncate(fds[slot], 0) || (size && pwrite(fds[slot], data, size, 0) != (ssize_t)size)) {
        perror("memfd write");
        abort();
    }
    return paths[slot];
}

/* A failing call must leave a message in dn_last_error(). */
static void fuzz_check_error(dn_status st)
{
    if (st != DN_OK && !dn_last_error()[0]) {
        fprintf(stderr, "status %d (%s) without a message\n", (int)st, dn_status_name(st));
        abort();
    }
}

#endif
