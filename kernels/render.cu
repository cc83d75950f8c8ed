// Render a batch of frames (DESIGN.md section 2): per output pixel, gather from the frame's uint8
// HWC source through the host-computed per-axis tables (server/geometry.py), black outside the
// destination, then per-channel scale/bias into the engine's layout and dtype. One launch per batch.
//
// Summation order is the CPU renderer's (server/render_cpu.py): for each row tap, the column taps
// summed from 0, then that sum times the row weight added to the pixel; every step a float32
// multiply then add (NVRTC --fmad=false), so both renderers give the same bits.
#include "compat.h"

// frames: FRAME_FIELDS int64 per frame; F_SRC is the address of the frame's source image (device
// memory on a GPU, host memory in the host build), so sources are uploaded once per image.
enum { F_SRC, F_SRC_W, F_ROWS_AT, F_N_ROWS, F_KY, F_COLS_AT, F_N_COLS, F_KX, F_START_Y, F_START_X, FRAME_FIELDS };

// Pixel (y, x) of frame f in pixel space (0..255), RGB; returns whether the destination covers it
// fully (weights summing to 1 on both axes), which is what inpainting treats as known.
SA_DEVICE bool sa_pixel(const int* __restrict__ index, const float* __restrict__ weight, const int64* __restrict__ fr, int y, int x,
                        float* v)
{
    v[0] = v[1] = v[2] = 0.0f;
    int r = y - (int)fr[F_START_Y], c = x - (int)fr[F_START_X];
    if (r < 0 || r >= (int)fr[F_N_ROWS] || c < 0 || c >= (int)fr[F_N_COLS]) return false;
    int ky = (int)fr[F_KY], kx = (int)fr[F_KX];
    const int* ri = index + fr[F_ROWS_AT] + (int64)r * ky;
    const float* rw = weight + fr[F_ROWS_AT] + (int64)r * ky;
    const int* ci = index + fr[F_COLS_AT] + (int64)c * kx;
    const float* cw = weight + fr[F_COLS_AT] + (int64)c * kx;
    const unsigned char* src = (const unsigned char*)fr[F_SRC];
    int64 stride = fr[F_SRC_W] * 3;
    float cov_y = 0.0f, cov_x = 0.0f;
    for (int b = 0; b < kx; ++b) cov_x += cw[b];
    for (int a = 0; a < ky; ++a) {
        const unsigned char* row = src + (int64)ri[a] * stride;
        float t0 = 0.0f, t1 = 0.0f, t2 = 0.0f;
        for (int b = 0; b < kx; ++b) {
            const unsigned char* s = row + (int64)ci[b] * 3;
            t0 = t0 + (float)s[0] * cw[b];
            t1 = t1 + (float)s[1] * cw[b];
            t2 = t2 + (float)s[2] * cw[b];
        }
        v[0] = v[0] + t0 * rw[a];
        v[1] = v[1] + t1 * rw[a];
        v[2] = v[2] + t2 * rw[a];
        cov_y += rw[a];
    }
    return cov_y * cov_x >= 1.0f - 1e-6f;
}

// The engine's input: out[n] in NCHW or NHWC, float32 or float16 (half bits).
SA_DEVICE void sa_store(void* out, int nchw, int half, int64 f, int y, int x, int h, int w, int k, float value)
{
    int64 i = nchw ? ((f * 3 + k) * h + y) * (int64)w + x : ((f * h + y) * (int64)w + x) * 3 + k;
    if (half) ((unsigned short*)out)[i] = sa_half_bits(value);
    else ((float*)out)[i] = value;
}

SA_KERNEL void render(const int* __restrict__ index,
                      const float* __restrict__ weight, const int64* __restrict__ frames, int n, int h, int w,
                      float s0, float s1, float s2, float b0, float b1, float b2, int bgr, int nchw, int half,
                      void* out)
{
    const float scale[3] = {s0, s1, s2}, bias[3] = {b0, b1, b2};
    int64 total = (int64)n * h * w;
    for (int64 i = SA_FIRST; i < total; i += SA_STRIDE) {
        int x = (int)(i % w);
        int64 t = i / w;
        int y = (int)(t % h);
        int64 f = t / h;
        float v[3];
        sa_pixel(index, weight, frames + f * FRAME_FIELDS, y, x, v);
        for (int k = 0; k < 3; ++k) {
            float p = v[bgr ? 2 - k : k] * scale[k];
            sa_store(out, nchw, half, f, y, x, h, w, k, p + bias[k]);
        }
    }
}

// Pixel-space canvases (N, H, W, 3) float32 and their known-pixel masks, for frames to inpaint.
SA_KERNEL void render_canvas(const int* __restrict__ index,
                             const float* __restrict__ weight, const int64* __restrict__ frames, int n, int h,
                             int w, float* __restrict__ canvas, unsigned char* __restrict__ known)
{
    int64 total = (int64)n * h * w;
    for (int64 i = SA_FIRST; i < total; i += SA_STRIDE) {
        int x = (int)(i % w);
        int64 t = i / w;
        int y = (int)(t % h);
        int64 f = t / h;
        float v[3];
        known[i] = sa_pixel(index, weight, frames + f * FRAME_FIELDS, y, x, v) ? 1 : 0;
        canvas[i * 3] = v[0];
        canvas[i * 3 + 1] = v[1];
        canvas[i * 3 + 2] = v[2];
    }
}

// Pixel-space canvases -> frames slots[f] of the engine's input (the normalisation step of `render`).
SA_KERNEL void normalise(const float* __restrict__ canvas, const int* __restrict__ slots, int n, int h, int w,
                         float s0, float s1, float s2, float b0, float b1, float b2, int bgr, int nchw, int half,
                         void* out)
{
    const float scale[3] = {s0, s1, s2}, bias[3] = {b0, b1, b2};
    int64 total = (int64)n * h * w;
    for (int64 i = SA_FIRST; i < total; i += SA_STRIDE) {
        int x = (int)(i % w);
        int64 t = i / w;
        int y = (int)(t % h);
        int64 f = slots[t / h];
        for (int k = 0; k < 3; ++k) {
            float p = canvas[i * 3 + (bgr ? 2 - k : k)] * scale[k];
            sa_store(out, nchw, half, f, y, x, h, w, k, p + bias[k]);
        }
    }
}
