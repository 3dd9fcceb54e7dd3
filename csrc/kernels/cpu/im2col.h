/* im2col.h: unfold an image for convolution as GEMM.
 * im: C x H x W; col: (C*size*size) x (out_h*out_w), row r = (c*size + ky)*size + kx.
 * Out-of-image taps read 0. col2im is the adjoint (accumulates into im). */
#ifndef DN_IM2COL_H
#define DN_IM2COL_H

void dn_im2col(const float *im, int c, int h, int w, int size, int stride, int pad,
               int out_h, int out_w, float *col);
void dn_col2im(const float *col, int c, int h, int w, int size, int stride, int pad,
               int out_h, int out_w, float *im);
#endif
