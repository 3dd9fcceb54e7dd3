/* ternary.h: the TWN quantiser (see ternary_ref.c). */
#ifndef DN_TERNARY_H
#define DN_TERNARY_H

#include <stddef.h>

/* t[n] = TWN(w[n]); returns alpha. t may alias w. */
float dn_ternarize(const float *w, size_t n, float *t);
/* One alpha per group of `per` consecutive weights (per output filter). */
void dn_ternarize_groups(const float *w, int groups, size_t per, float *t, float *alphas);

#endif
