/* winograd.h: 3x3 stride-1 convolution by Winograd F(4x4,3x3) (Lavin & Gray,
 * "Fast Algorithms for Convolutional Neural Networks", 2015).
 *
 * Each 4x4 output tile is A^T [ (G g G^T) .* (B^T d B) ] A for its 6x6 input
 * patch d and a 3x3 filter g; over channels this becomes 36 independent
 * GEMMs M[xi] (filters x tiles) = U[xi] (filters x c) V[xi] (c x tiles), run
 * on the conv_fast.h core. Tiles of all images are numbered together
 * (t = (b*tiles_y + ty)*tiles_x + tx) and processed in blocks small enough
 * for the L2 cache; output tiles past the image edge are computed and
 * dropped. groups must be 1.
 *
 * U (the transformed filters) is made once per weights by
 * dn_winograd43_weights and kept by the caller.
 */
#ifndef DN_WINOGRAD_H
#define DN_WINOGRAD_H

#include "conv_fast.h"

#include <stddef.h>

/* Floats of U for `filters` filters of c channels. */
size_t dn_winograd43_weights_size(int filters, int c);
/* weights [filters][c][3][3] -> U, layout [36][filters/6 panels][c][6]
 * (the MR-row packed panels of dn_gemm_block, zero rows past filters). */
void dn_winograd43_weights(const float *weights, int filters, int c, float *u);
/* The same for the transposed convolution of a layer with weights
 * [filters][c][3][3]: U (dn_winograd43_weights_size(c, filters) floats) of
 * the c filters over `filters` channels w'[ch][f] = w[f][ch] rotated by 180
 * degrees, which turn dL/doutput into dL/dinput for a 3x3 stride-1 layer
 * (with padding 2 - its padding). */
void dn_winograd43_weights_transposed(const float *weights, int filters, int c, float *u);

/* Scratch floats for dn_winograd43_forward with this shape and thread count. */
size_t dn_winograd43_scratch(const dn_conv_shape *s, int nthreads);
/* output = epilogue(conv3x3(input, weights)) with s->size == 3,
 * s->stride == 1, s->groups == 1, out_h = h + 2*pad - 2 (same for w). */
void dn_winograd43_forward(const dn_conv_shape *s, const float *input, const float *u,
                           const dn_epilogue *ep, float *output, float *scratch, int nthreads);

#endif
