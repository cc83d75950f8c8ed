// One pass of inpainting by normalised convolution (server/inpaint.py): every unknown pixel with
// known neighbours becomes their binomial-weighted average; known pixels are copied. Passes are
// Jacobi steps (read one buffer, write the other), launched until every pixel is known. The 2-D
// window sums in another order than the CPU's separable filter: equal up to float rounding.
#include "compat.h"

SA_KERNEL void inpaint_pass(const float* __restrict__ canvas, const unsigned char* __restrict__ known,
                            float* __restrict__ canvas_out, unsigned char* __restrict__ known_out, int n, int h,
                            int w, const float* __restrict__ taps, int ntaps)
{
    int r = ntaps / 2;
    int64 total = (int64)n * h * w;
    for (int64 i = SA_FIRST; i < total; i += SA_STRIDE) {
        if (known[i]) {
            known_out[i] = 1;
            canvas_out[i * 3] = canvas[i * 3];
            canvas_out[i * 3 + 1] = canvas[i * 3 + 1];
            canvas_out[i * 3 + 2] = canvas[i * 3 + 2];
            continue;
        }
        int x = (int)(i % w);
        int y = (int)((i / w) % h);
        int64 base = i - ((int64)y * w + x);  // first pixel of this frame
        float num0 = 0.0f, num1 = 0.0f, num2 = 0.0f, den = 0.0f;
        for (int dy = -r; dy <= r; ++dy) {
            int yy = y + dy;
            if (yy < 0 || yy >= h) continue;
            for (int dx = -r; dx <= r; ++dx) {
                int xx = x + dx;
                if (xx < 0 || xx >= w) continue;
                int64 j = base + (int64)yy * w + xx;
                if (!known[j]) continue;
                float wt = taps[dy + r] * taps[dx + r];
                num0 += wt * canvas[j * 3];
                num1 += wt * canvas[j * 3 + 1];
                num2 += wt * canvas[j * 3 + 2];
                den += wt;
            }
        }
        bool fill = den > 1e-6f;
        known_out[i] = fill ? 1 : 0;
        canvas_out[i * 3] = fill ? num0 / den : 0.0f;
        canvas_out[i * 3 + 1] = fill ? num1 / den : 0.0f;
        canvas_out[i * 3 + 2] = fill ? num2 / den : 0.0f;
    }
}
