/* boxes.c: Darknet's box IoU, AlexeyAB's box overlap measures and the box
 * step of his IoU-family losses (see boxes.h). Boxes are centre/size; edges
 * l = x - w/2, r = x + w/2, t = y - h/2, b = y + h/2 (p: predicted, g: truth).
 */
#include "boxes.h"

#include <math.h>
#include <string.h>

#define PI_F 3.14159265358979f

int dn_iou_kind_parse(const char *name)
{
    static const char *const names[] = {"mse", "iou", "giou", "diou", "ciou"};
    for (int k = 0; k < 5; ++k)
        if (!strcmp(name, names[k])) return k;
    return -1;
}

/* Length of the overlap of two 1-D segments given by centre and size. */
static float overlap(float x1, float w1, float x2, float w2)
{
    float l1 = x1 - w1 / 2, l2 = x2 - w2 / 2;
    float left = l1 > l2 ? l1 : l2;
    float r1 = x1 + w1 / 2, r2 = x2 + w2 / 2;
    float right = r1 < r2 ? r1 : r2;
    return right - left;
}

float dn_box_iou(dn_box a, dn_box b)
{
    float w = overlap(a.x, a.w, b.x, b.w), h = overlap(a.y, a.h, b.y, b.h);
    float inter = (w < 0 || h < 0) ? 0 : w * h;
    float uni = a.w * a.h + b.w * b.h - inter;
    return uni > 0 ? inter / uni : 0;
}

typedef struct { float l, r, t, b; } edges;

static edges box_edges(dn_box a) { return (edges){a.x - a.w / 2, a.x + a.w / 2, a.y - a.h / 2, a.y + a.h / 2}; }

/* The smallest box enclosing a and b, as edges. */
static edges enclosing(edges a, edges b)
{
    return (edges){fminf(a.l, b.l), fmaxf(a.r, b.r), fminf(a.t, b.t), fmaxf(a.b, b.b)};
}

float dn_box_overlap(dn_box a, dn_box b, dn_iou_kind kind)
{
    float iou = dn_box_iou(a, b);
    if (kind == DN_IOU_MSE || kind == DN_IOU_IOU) return iou;
    edges c = enclosing(box_edges(a), box_edges(b));
    float cw = c.r - c.l, ch = c.b - c.t;
    if (kind == DN_IOU_GIOU) {
        float area = cw * ch;
        if (area == 0) return iou;
        float iw = fminf(a.x + a.w / 2, b.x + b.w / 2) - fmaxf(a.x - a.w / 2, b.x - b.w / 2);
        float ih = fminf(a.y + a.h / 2, b.y + b.h / 2) - fmaxf(a.y - a.h / 2, b.y - b.h / 2);
        float inter = (iw < 0 || ih < 0) ? 0 : iw * ih;
        float uni = a.w * a.h + b.w * b.h - inter;
        return iou - (area - uni) / area;
    }
    float diag = cw * cw + ch * ch;
    if (diag == 0) return iou;
    float d = ((a.x - b.x) * (a.x - b.x) + (a.y - b.y) * (a.y - b.y)) / diag;
    if (kind == DN_IOU_DIOU) return iou - powf(d, .6f); /* his box_diou: exponent .6 */
    float da = atanf(b.w / b.h) - atanf(a.w / a.h);
    float v = 4 / (PI_F * PI_F) * da * da;
    float alpha = v / (1 - iou + v + 1e-6f);
    return iou - (d + alpha * v);
}

float dn_box_diou_nms(dn_box a, dn_box b, float beta)
{
    float iou = dn_box_iou(a, b);
    edges c = enclosing(box_edges(a), box_edges(b));
    float cw = c.r - c.l, ch = c.b - c.t, diag = cw * cw + ch * ch;
    if (diag == 0) return iou;
    float d = (a.x - b.x) * (a.x - b.x) + (a.y - b.y) * (a.y - b.y);
    return iou - powf(d / diag, beta);
}

/* The step, in AlexeyAB's form (his dx_box_iou):
 *  - I = Iw*Ih and U = Ap + Ag - I with the overlap widths Iw, Ih NOT clamped
 *    at 0; the IoU term, for U > 0: dIoU/de = (U dI/de - I dU/de) / U^2 for
 *    each edge e of the prediction, with dI/de = +-Iw or +-Ih where that edge
 *    bounds the overlap, dU/de = dAp/de - dI/de;
 *  - giou adds (C dU/de - U dC/de) / C^2 (C: enclosing area), and uses it
 *    alone when Iw <= 0 or Ih <= 0;
 *  - edges to box: dx = dl + dr, dy = dt + db, dw = dr - dl, dh = db - dt
 *    (w and h not halved);
 *  - diou/ciou add the centre term with S = |centre distance|^2, c^2 = Cw^2
 *    + Ch^2: dx += (2 (gx - px) c^2 - 2 (Cw dCw/dx + Ch dCh/dx) S) / c^4,
 *    dw += 2 (Cw dCw/dw + Ch dCh/dw) S / c^4 (y, h alike), where dCw/dx = 
 *    [pr > gr] - [pl < gl], dCw/dw = ([pr > gr] + [pl < gl]) / 2; and use it
 *    alone when Iw <= 0 or Ih <= 0;
 *  - ciou also adds alpha * 8/pi^2 (atan(gw/gh) - atan(pw/ph)) * (ph, -pw)
 *    to (dw, dh), alpha = v / (1 - I/U + v + 1e-6). */
void dn_box_overlap_step(dn_box pred, dn_box truth, dn_iou_kind kind, float out[4])
{
    edges p = box_edges(pred), g = box_edges(truth);
    float ap = (p.b - p.t) * (p.r - p.l), ag = (g.b - g.t) * (g.r - g.l);
    float ih = fminf(p.b, g.b) - fmaxf(p.t, g.t), iw = fminf(p.r, g.r) - fmaxf(p.l, g.l);
    float inter = iw * ih, uni = ap + ag - inter;
    /* derivatives by the edges t, b, l, r of the prediction */
    float dA[4] = {-(p.r - p.l), p.r - p.l, -(p.b - p.t), p.b - p.t};
    float dI[4] = {p.t > g.t ? -iw : 0, p.b < g.b ? iw : 0, p.l > g.l ? -ih : 0, p.r < g.r ? ih : 0};
    float dU[4], de[4] = {0, 0, 0, 0};
    for (int e = 0; e < 4; ++e) {
        dU[e] = dA[e] - dI[e];
        if (uni > 0) de[e] = (uni * dI[e] - inter * dU[e]) / (uni * uni);
    }
    edges c = enclosing(p, g);
    float cw = c.r - c.l, ch = c.b - c.t;
    int apart = iw <= 0 || ih <= 0;
    if (kind == DN_IOU_GIOU) {
        float area = cw * ch;
        float dC[4] = {p.t < g.t ? -cw : 0, p.b > g.b ? cw : 0, p.l < g.l ? -ch : 0, p.r > g.r ? ch : 0};
        for (int e = 0; e < 4; ++e) {
            float term = area > 0 ? (area * dU[e] - uni * dC[e]) / (area * area) : 0;
            if (apart) de[e] = term;
            else de[e] += term;
        }
    }
    float dx = de[2] + de[3], dy = de[0] + de[1], dw = de[3] - de[2], dh = de[1] - de[0];
    if (kind == DN_IOU_DIOU || kind == DN_IOU_CIOU) {
        float s = (pred.x - truth.x) * (pred.x - truth.x) + (pred.y - truth.y) * (pred.y - truth.y);
        float diag = cw * cw + ch * ch;
        float left = p.l < g.l, right = p.r > g.r, top = p.t < g.t, bot = p.b > g.b;
        float dcw_dx = right - left, dcw_dw = (right + left) / 2;
        float dch_dy = bot - top, dch_dh = (bot + top) / 2;
        float tx = 0, ty = 0, tw = 0, th = 0;
        if (diag > 0) {
            float d2 = diag * diag;
            tx = (2 * (truth.x - pred.x) * diag - 2 * cw * dcw_dx * s) / d2;
            ty = (2 * (truth.y - pred.y) * diag - 2 * ch * dch_dy * s) / d2;
            tw = 2 * cw * dcw_dw * s / d2;
            th = 2 * ch * dch_dh * s / d2;
        }
        if (kind == DN_IOU_CIOU && diag > 0) {
            float da = atanf(truth.w / truth.h) - atanf(pred.w / pred.h);
            float v = 4 / (PI_F * PI_F) * da * da;
            float alpha = v / (1 - inter / uni + v + 1e-6f);
            tw += alpha * 8 / (PI_F * PI_F) * da * pred.h;
            th -= alpha * 8 / (PI_F * PI_F) * da * pred.w;
        }
        if (apart) { dx = tx; dy = ty; dw = tw; dh = th; }
        else { dx += tx; dy += ty; dw += tw; dh += th; }
    }
    out[0] = dx; out[1] = dy; out[2] = dw; out[3] = dh;
}
