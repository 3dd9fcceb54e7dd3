/* ternary_ref.c: the TWN quantiser (Ternary Weight Networks, Li & Liu 2016)
 * as the staged-training method uses it:
 *   delta = 0.7 * mean|w|;  alpha = mean of |w| over |w| > delta;
 *   t = +alpha where w > delta, -alpha where w < -delta, else 0.
 * Sums are accumulated in double. No weights above delta (all zero) gives
 * alpha = 0 and t = 0, never a division by zero. */
#include "ternary.h"

#include <math.h>

float dn_ternarize(const float *w, size_t n, float *t)
{
    if (!n) return 0;
    double s = 0;
    for (size_t i = 0; i < n; ++i) s += fabs((double)w[i]);
    float delta = (float)(0.7 * s / (double)n);
    double sa = 0;
    size_t na = 0;
    for (size_t i = 0; i < n; ++i)
        if (fabsf(w[i]) > delta) { sa += fabs((double)w[i]); ++na; }
    float alpha = na ? (float)(sa / (double)na) : 0.f;
    for (size_t i = 0; i < n; ++i) t[i] = w[i] > delta ? alpha : (w[i] < -delta ? -alpha : 0.f);
    return alpha;
}

void dn_ternarize_groups(const float *w, int groups, size_t per, float *t, float *alphas)
{
    for (int g = 0; g < groups; ++g) {
        float a = dn_ternarize(w + (size_t)g * per, per, t + (size_t)g * per);
        if (alphas) alphas[g] = a;
    }
}
