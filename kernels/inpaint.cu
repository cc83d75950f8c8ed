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
