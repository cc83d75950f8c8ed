// One pass of inpainting by normalised convolution (kernels/reference.py): every unknown pixel with
// known neighbours becomes their binomial-weighted average; known pixels are copied. Passes are
// Jacobi steps (read one buffer, write the other), launched until every pixel is known. The 2-D
// window sums in another order than the CPU's separable filter: equal up to float rounding.
#include "compat.h"

SA_KERNEL void inpaint_pass(const float* __restrict__ canvas, const unsigned char* __restrict__ known,
                            float* __restrict__ canvas_out, unsigned char* __restrict__ known_out, int n, int h,
                            int w, const float* __restrict__ taps, int ntaps)
{
    int r = ntaps / 2, hw = h * w;
    for (int f = SA_FRAME; f < n; f += SA_FRAMES) {
        const float* cin = canvas + (int64)f * hw * 3;
        const unsigned char* kin = known + (int64)f * hw;
        float* cout = canvas_out + (int64)f * hw * 3;
        unsigned char* kout = known_out + (int64)f * hw;
        for (int i = SA_FIRST; i < hw; i += SA_STRIDE) {
            if (kin[i]) {
                kout[i] = 1;
                cout[i * 3] = cin[i * 3];
                cout[i * 3 + 1] = cin[i * 3 + 1];
                cout[i * 3 + 2] = cin[i * 3 + 2];
                continue;
            }
            int y = i / w, x = i % w;
            float num0 = 0.0f, num1 = 0.0f, num2 = 0.0f, den = 0.0f;
            for (int dy = -r; dy <= r; ++dy) {
                int yy = y + dy;
                if (yy < 0 || yy >= h) continue;
                for (int dx = -r; dx <= r; ++dx) {
                    int xx = x + dx;
                    if (xx < 0 || xx >= w) continue;
                    int j = yy * w + xx;
                    if (!kin[j]) continue;
                    float wt = taps[dy + r] * taps[dx + r];
                    num0 += wt * cin[j * 3];
                    num1 += wt * cin[j * 3 + 1];
                    num2 += wt * cin[j * 3 + 2];
                    den += wt;
                }
            }
            bool fill = den > 1e-6f;
            kout[i] = fill ? 1 : 0;
            cout[i * 3] = fill ? num0 / den : 0.0f;
            cout[i * 3 + 1] = fill ? num1 / den : 0.0f;
            cout[i * 3 + 2] = fill ? num2 / den : 0.0f;
        }
    }
}

// ---- The same passes where the known pixels are a rectangle (an embedded image): the CPU renderer's ----
// Pass p of `inpaint_pass` fills exactly the ring of width r around the known rectangle grown by p * r
// (a pixel there has a known neighbour in its window, one further out has none), and reads only inside
// that grown rectangle. So a pass visits its ring alone, in place (it writes no pixel it reads), summing
// the window's known pixels in `inpaint_pass`'s order: the same bits in a fraction of the work. Canvases
// are RGBX float with the fourth lane 1 where known, so the weights' sum is that lane's sum, and the lane
// stays 1 (den / den) once filled. Per frame a row of RING_FIELDS int64: canvas, known rectangle.
enum { R_CANVAS, R_Y0, R_Y1, R_X0, R_X1, RING_FIELDS };

// One strip [y0, y1) x [x0, x1) of the ring, reading the known rectangle [ky0, ky1) x [kx0, kx1).
SA_DEVICE void sa_ring_strip(float* canvas, int w, int y0, int y1, int x0, int x1, int ky0, int ky1, int kx0, int kx1,
                             const float* taps, int r)
{
    int sw = x1 - x0, size = (y1 - y0) * sw;
    if (size <= 0) return;
    int i = SA_FIRST, y = i / sw, x = i % sw, dy_step = SA_STRIDE / sw, dx_step = SA_STRIDE % sw;
    for (; i < size; i += SA_STRIDE) {
        int py = y0 + y, px = x0 + x;
        sa_f4 acc = sa_zero4();
        int a0 = ky0 - py > -r ? ky0 - py : -r, a1 = ky1 - 1 - py < r ? ky1 - 1 - py : r;
        int b0 = kx0 - px > -r ? kx0 - px : -r, b1 = kx1 - 1 - px < r ? kx1 - 1 - px : r;
        for (int dy = a0; dy <= a1; ++dy) {
            const float* row = canvas + ((int64)(py + dy) * w + px) * 4;
            for (int dx = b0; dx <= b1; ++dx) acc = acc + sa_load4(row + dx * 4) * (taps[dy + r] * taps[dx + r]);
        }
        sa_store4(canvas + ((int64)py * w + px) * 4, acc / acc[3]);
        y += dy_step;
        x += dx_step;
        if (x >= sw) {
            x -= sw;
            ++y;
        }
    }
}

SA_KERNEL void inpaint_ring(const int64* __restrict__ frames, int n, int h, int w, const float* __restrict__ taps,
                            int ntaps, int pass)
{
    int r = ntaps / 2;
    for (int f = SA_FRAME; f < n; f += SA_FRAMES) {
        const int64* fr = frames + (int64)f * RING_FIELDS;
        float* canvas = (float*)fr[R_CANVAS];
        int grow = pass * r, y0 = (int)fr[R_Y0], y1 = (int)fr[R_Y1], x0 = (int)fr[R_X0], x1 = (int)fr[R_X1];
        int ky0 = y0 - grow > 0 ? y0 - grow : 0, ky1 = y1 + grow < h ? y1 + grow : h;  // known before the pass
        int kx0 = x0 - grow > 0 ? x0 - grow : 0, kx1 = x1 + grow < w ? x1 + grow : w;
        int ny0 = ky0 - r > 0 ? ky0 - r : 0, ny1 = ky1 + r < h ? ky1 + r : h;  // known after it
        int nx0 = kx0 - r > 0 ? kx0 - r : 0, nx1 = kx1 + r < w ? kx1 + r : w;
        sa_ring_strip(canvas, w, ny0, ky0, nx0, nx1, ky0, ky1, kx0, kx1, taps, r);  // above
        sa_ring_strip(canvas, w, ky1, ny1, nx0, nx1, ky0, ky1, kx0, kx1, taps, r);  // below
        sa_ring_strip(canvas, w, ky0, ky1, nx0, kx0, ky0, ky1, kx0, kx1, taps, r);  // left
        sa_ring_strip(canvas, w, ky0, ky1, kx1, nx1, ky0, ky1, kx0, kx1, taps, r);  // right
    }
}
