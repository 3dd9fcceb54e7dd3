/* status.c: error and warning reporting, and the clock. The last error
 * message is kept per thread; warnings go to a replaceable sink (stderr by
 * default). */
#include "internal.h"

#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static _Thread_local char last_error[1024];
static dn_warning_fn warn_fn;
static void *warn_user;

const char *dn_last_error(void) { return last_error; }

const char *dn_status_name(dn_status s)
{
    static const char *names[] = {"ok", "io error", "parse error", "format error",
                                  "value error", "out of memory", "state error", "unsupported"};
    return (unsigned)s < sizeof(names) / sizeof(names[0]) ? names[s] : "unknown error";
}

/* Formatted into a copy first: callers often pass dn_last_error() itself
 * as an argument (wrapping the previous message). */
dn_status dn_error(dn_status s, const char *fmt, ...)
{
    char msg[sizeof(last_error)];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    memcpy(last_error, msg, sizeof(msg));
    return s;
}

void dn_set_warning_handler(dn_warning_fn fn, void *user)
{
    warn_fn = fn;
    warn_user = user;
}

void dn_warn(const char *fmt, ...)
{
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    if (warn_fn) warn_fn(msg, warn_user);
    else fprintf(stderr, "warning: %s\n", msg);
}

/* The allocation-failure hook of the tests: the countdown-th allocation
 * through the functions below fails (once). */
static _Atomic long fail_countdown = -1;

void dn_test_fail_allocation(long n) { fail_countdown = n; }

static int hook_fails(void)
{
    long c = fail_countdown;
    if (c < 0) return 0;
    fail_countdown = c - 1;
    return c == 0;
}

static void *checked(void *p, size_t bytes)
{
    if (!p) dn_error(DN_ERR_NOMEM, "out of memory allocating %zu bytes", bytes);
    return p;
}

void *dn_calloc(size_t n, size_t size)
{
    return checked(hook_fails() ? NULL : calloc(n ? n : 1, size ? size : 1), n * size);
}

void *dn_malloc(size_t bytes) { return checked(hook_fails() ? NULL : malloc(bytes ? bytes : 1), bytes); }

void *dn_realloc(void *p, size_t bytes) { return checked(hook_fails() ? NULL : realloc(p, bytes ? bytes : 1), bytes); }

void *dn_aligned_alloc(size_t align, size_t bytes)
{
    size_t n = (bytes + align - 1) / align * align;
    return checked(hook_fails() ? NULL : aligned_alloc(align, n ? n : align), bytes);
}

double dn_seconds(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec * 1e-9;
}
