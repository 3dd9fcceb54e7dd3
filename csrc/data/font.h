/* font.h: stb's easy font (text as quads), included once here with the
 * warnings its header raises silenced; for the drawn labels (draw.c) and
 * the training chart (train/chart.c). */
#ifndef DN_FONT_H
#define DN_FONT_H

#if defined(__GNUC__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmissing-braces"
#pragma GCC diagnostic ignored "-Wunused-function"
#endif
#include <stb_easy_font.h>
#if defined(__GNUC__)
#pragma GCC diagnostic pop
#endif

#endif
