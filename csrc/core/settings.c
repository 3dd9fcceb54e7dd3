/* settings.c: the run-time settings, in one table. Each is a choice among
 * named values (kernel paths, switches); its first value comes from an
 * environment variable, read once on first use, and dn_set_option changes
 * it afterwards (CLI: -option name=value on any command; Python:
 * darknet_py.set_option / option_context). The kernels and layers ask
 * dn_option() at call time and never read the environment themselves.
 */
#include "internal.h"
#include "settings.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_CHOICES 6

static const struct {
    const char *name, *env;
    const char *choices[MAX_CHOICES]; /* the first is the default */
    const char *what;
} table[DN_OPT_COUNT] = {
    [DN_OPT_CONV_ALGO] = {"conv_algo", "DN_CONV_ALGO", {"auto", "ref", "gemm", "winograd", "direct"},
                          "float convolution path (ref: im2col + BLAS)"},
    [DN_OPT_TERNARY_ALGO] = {"ternary_algo", "DN_TERNARY_ALGO", {"auto", "packed", "direct", "winograd"},
                             "int8 ternary convolution path"},
    [DN_OPT_SIMD] = {"simd", "DN_SIMD", {"auto", "0", "1", "2"},
                     "highest SIMD level of the kernels (0 SSE4.2, 1 AVX2 + FMA, 2 AVX-512 and VNNI)"},
    [DN_OPT_CUDNN] = {"cudnn", "DARKNET_CUDNN", {"1", "0"}, "cuDNN for the convolutions of a CUDA network"},
};

static int value[DN_OPT_COUNT];
static pthread_once_t once = PTHREAD_ONCE_INIT;

static int choice(dn_option_id o, const char *v)
{
    for (int i = 0; i < MAX_CHOICES && table[o].choices[i]; ++i)
        if (!strcmp(v, table[o].choices[i])) return i;
    return -1;
}

static void read_environment(void)
{
    for (int o = 0; o < DN_OPT_COUNT; ++o) {
        const char *e = getenv(table[o].env);
        int i = e && *e ? choice((dn_option_id)o, e) : 0;
        if (i < 0) {
            dn_warn("%s=%s is not one of the values of the setting %s: using %s", table[o].env, e, table[o].name,
                    table[o].choices[0]);
            i = 0;
        }
        value[o] = i;
    }
}

int dn_option(dn_option_id o)
{
    pthread_once(&once, read_environment);
    return value[o];
}

static int find(const char *name)
{
    for (int o = 0; o < DN_OPT_COUNT; ++o)
        if (!strcmp(name, table[o].name)) return o;
    return -1;
}

static void choices_text(int o, char *buf, size_t n)
{
    buf[0] = 0;
    for (int i = 0; i < MAX_CHOICES && table[o].choices[i]; ++i) {
        size_t len = strlen(buf);
        snprintf(buf + len, n - len, "%s%s", i ? ", " : "", table[o].choices[i]);
    }
}

dn_status dn_set_option(const char *name, const char *v)
{
    pthread_once(&once, read_environment);
    int o = name ? find(name) : -1;
    if (o < 0) {
        char names[256] = "";
        for (int k = 0; k < DN_OPT_COUNT; ++k) {
            size_t len = strlen(names);
            snprintf(names + len, sizeof names - len, "%s%s", k ? ", " : "", table[k].name);
        }
        return dn_error(DN_ERR_VALUE, "unknown setting '%s' (settings: %s)", name ? name : "(null)", names);
    }
    int i = v ? choice((dn_option_id)o, v) : 0;
    if (i < 0) {
        char list[128];
        choices_text(o, list, sizeof list);
        return dn_error(DN_ERR_VALUE, "setting %s: unknown value '%s' (%s)", name, v, list);
    }
    value[o] = i;
    return DN_OK;
}

const char *dn_get_option(const char *name)
{
    int o = name ? find(name) : -1;
    return o < 0 ? NULL : table[o].choices[dn_option((dn_option_id)o)];
}

const char *dn_option_name(int k)
{
    return k >= 0 && k < DN_OPT_COUNT ? table[k].name : NULL;
}

const char *dn_option_help(int k, char *buf, size_t n)
{
    if (k < 0 || k >= DN_OPT_COUNT) return NULL;
    char list[128];
    choices_text(k, list, sizeof list);
    snprintf(buf, n, "%s: %s (%s; environment %s)", table[k].name, table[k].what, list, table[k].env);
    return buf;
}
