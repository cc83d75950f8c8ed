// Render a batch of frames (DESIGN.md section 2): per output pixel, gather from the frame's uint8
// RGBX source through the host-computed per-axis tables (kernels/tables.py), black outside the
// destination, then per-channel scale/bias into the engine's layout and dtype. One launch per batch.
//
// Summation order is the reference's (kernels/reference.py): for each row tap, the column taps
// summed from 0, then that sum times the row weight added to the pixel; every step a float32
// multiply then add (NVRTC --fmad=false), so both renderers give the same bits.
#include "compat.h"

// frames: FRAME_FIELDS int64 per frame; F_SRC is the address of the frame's source image, RGBX (4 bytes a
// pixel, so one aligned 32-bit load gathers a pixel), in device memory on a GPU and host memory in the
// host build: sources are uploaded once per image.
enum { F_SRC, F_ROWS_AT, F_N_ROWS, F_KY, F_COLS_AT, F_N_COLS, F_KX, F_START_Y, F_START_X, FRAME_FIELDS };

// One tap of a per-axis table: where it reads (rows: source row * source width, columns: source
// column; both in pixels) and its weight. One 8-byte load a tap.
struct Tap {
    int at;
    float weight;
};

struct Frame {
    const unsigned int* src;
    int64 rows_at, cols_at;
    int n_rows, ky, n_cols, kx, start_y, start_x;
};

SA_DEVICE Frame sa_frame(const int64* __restrict__ f)
{
    Frame fr;
    fr.src = (const unsigned int*)f[F_SRC];
    fr.rows_at = f[F_ROWS_AT];
    fr.n_rows = (int)f[F_N_ROWS];
    fr.ky = (int)f[F_KY];
    fr.cols_at = f[F_COLS_AT];
    fr.n_cols = (int)f[F_N_COLS];
    fr.kx = (int)f[F_KX];
    fr.start_y = (int)f[F_START_Y];
    fr.start_x = (int)f[F_START_X];
    return fr;
}

// Channel k of pixel i of frame f of the engine's input: NCHW or NHWC, float32 or float16 (half bits).
SA_DEVICE void sa_store(void* out, int nchw, int half, int64 f, int i, int hw, int k, float value)
{
    int64 at = nchw ? (f * 3 + k) * hw + i : (f * hw + i) * 3 + k;
    if (half) ((unsigned short*)out)[at] = sa_half_bits(value);
    else ((float*)out)[at] = value;
}

// Pixel (y, x) of a frame in pixel space (0..255), RGB; returns whether the destination covers it
// fully (weights summing to 1 on both axes), which is what inpainting treats as known.
SA_DEVICE bool sa_pixel(const Tap* __restrict__ taps, const Frame& fr, int y, int x, float& v0, float& v1,
                        float& v2, bool coverage)
{
    v0 = v1 = v2 = 0.0f;
    int r = y - fr.start_y, c = x - fr.start_x;
    if (r < 0 || r >= fr.n_rows || c < 0 || c >= fr.n_cols) return false;
    const Tap* rt = taps + fr.rows_at + r * fr.ky;
    const Tap* ct = taps + fr.cols_at + c * fr.kx;
    float cov_y = 0.0f, cov_x = 0.0f;
    if (coverage)
        for (int b = 0; b < fr.kx; ++b) cov_x += ct[b].weight;
    for (int a = 0; a < fr.ky; ++a) {
        int row;
        float wy;
        sa_ldg_pair(rt + a, row, wy);
        float t0 = 0.0f, t1 = 0.0f, t2 = 0.0f;
        for (int b = 0; b < fr.kx; ++b) {
            int col;
            float wx;
            sa_ldg_pair(ct + b, col, wx);
            unsigned int p = sa_ldg(fr.src + (unsigned int)(row + col));  // < 2^29: 32-bit offset math
            t0 = t0 + sa_byte(p, 0) * wx;
            t1 = t1 + sa_byte(p, 1) * wx;
            t2 = t2 + sa_byte(p, 2) * wx;
        }
        v0 = v0 + t0 * wy;
        v1 = v1 + t1 * wy;
        v2 = v2 + t2 * wy;
        if (coverage) cov_y += wy;
    }
    return coverage && cov_y * cov_x >= 1.0f - 1e-6f;
}

// The grid-stride walk over a frame's pixels with (y, x) kept by addition: a division per pixel
// costs more than a tap.
struct Walk {
    int i, y, x, dy, dx;
};

SA_DEVICE Walk sa_walk(int w)
{
    Walk k;
    k.i = SA_FIRST;
    k.y = k.i / w;
    k.x = k.i % w;
    k.dy = SA_STRIDE / w;
    k.dx = SA_STRIDE % w;
    return k;
}

SA_DEVICE void sa_step(Walk& k, int w)
{
    k.i += SA_STRIDE;
    k.y += k.dy;
    k.x += k.dx;
    if (k.x >= w) {
        k.x -= w;
        ++k.y;
    }
}

// One pixel of the engine's input from its RGB pixel-space value: channel order, scale, bias, store.
// (Selects, not an indexed array: a runtime index would put the values in local memory.)
SA_DEVICE void sa_output(void* out, int nchw, int half, int64 f, int i, int hw, float r, float g, float b,
                         int bgr, const float* scale, const float* bias)
{
    float c0 = bgr ? b : r, c2 = bgr ? r : b;
    float p0 = c0 * scale[0], p1 = g * scale[1], p2 = c2 * scale[2];
    sa_store(out, nchw, half, f, i, hw, 0, p0 + bias[0]);
    sa_store(out, nchw, half, f, i, hw, 1, p1 + bias[1]);
    sa_store(out, nchw, half, f, i, hw, 2, p2 + bias[2]);
}

SA_KERNEL void render(const Tap* __restrict__ taps, const int64* __restrict__ frames, int n, int h, int w, float s0, float s1, float s2,
                      float b0, float b1, float b2, int bgr, int nchw, int half, void* out)
{
    const float scale[3] = {s0, s1, s2}, bias[3] = {b0, b1, b2};
    int hw = h * w;
    for (int f = SA_FRAME; f < n; f += SA_FRAMES) {
        Frame fr = sa_frame(frames + (int64)f * FRAME_FIELDS);
        for (Walk k = sa_walk(w); k.i < hw; sa_step(k, w)) {
            float r, g, b;
            sa_pixel(taps, fr, k.y, k.x, r, g, b, false);
            sa_output(out, nchw, half, f, k.i, hw, r, g, b, bgr, scale, bias);
        }
    }
}

// Pixel-space canvases (N, H, W, 3) float32 and their known-pixel masks, for frames to inpaint.
SA_KERNEL void render_canvas(const Tap* __restrict__ taps, const int64* __restrict__ frames, int n, int h, int w, float* __restrict__ canvas,
                             unsigned char* __restrict__ known)
{
    int hw = h * w;
    for (int f = SA_FRAME; f < n; f += SA_FRAMES) {
        Frame fr = sa_frame(frames + (int64)f * FRAME_FIELDS);
        for (Walk k = sa_walk(w); k.i < hw; sa_step(k, w)) {
            int64 at = (int64)f * hw + k.i;
            float r, g, b;
            known[at] = sa_pixel(taps, fr, k.y, k.x, r, g, b, true) ? 1 : 0;
            canvas[at * 3] = r;
            canvas[at * 3 + 1] = g;
            canvas[at * 3 + 2] = b;
        }
    }
}

// Pixel-space canvases -> frames slots[f] of the engine's input (the normalisation step of `render`).
SA_KERNEL void normalise(const float* __restrict__ canvas, const int* __restrict__ slots, int n, int h, int w,
                         float s0, float s1, float s2, float b0, float b1, float b2, int bgr, int nchw, int half,
                         void* out)
{
    const float scale[3] = {s0, s1, s2}, bias[3] = {b0, b1, b2};
    int hw = h * w;
    for (int f = SA_FRAME; f < n; f += SA_FRAMES) {
        for (int i = SA_FIRST; i < hw; i += SA_STRIDE) {
            const float* px = canvas + ((int64)f * hw + i) * 3;
            sa_output(out, nchw, half, slots[f], i, hw, px[0], px[1], px[2], bgr, scale, bias);
        }
    }
}
