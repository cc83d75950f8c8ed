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

// ---- The separable path: the CPU renderer's (a compiled host build), the same arithmetic as `render` ----
// `render` gathers ky x kx taps a pixel, which a GPU does at bandwidth but a CPU core pays for tap by tap.
// The host renders each resampled block once (the frames of a pair share it) in two passes: the column
// taps over the band of source rows the row taps read, then the row taps over that band. Each sum starts
// at 0 and adds its taps in `sa_pixel`'s order, every step a float32 multiply then add, so the blocks are
// the very values `render` computes. Sources are the decoded RGB images themselves (three bytes a pixel:
// no copy); pixel-space values are RGBX float: the fourth lane is a free SIMD lane (and inpainting's
// weight, inpaint.cu). Per block a row of BLOCK_FIELDS int64 (addresses and sizes).
enum {
    B_SRC, B_WIDTH, B_BAND, B_ROW0, B_BAND_ROWS, B_COL_INDEX, B_COL_WEIGHT, B_N_COLS, B_KX, B_ROW_INDEX,
    B_ROW_WEIGHT, B_N_ROWS, B_KY, B_OUT, BLOCK_FIELDS
};

// band[r][c] = sum_b src[row0 + r][col_index[c][b]] * col_weight[c][b], for the band's rows.
SA_KERNEL void resample_columns(const int64* __restrict__ blocks, int n)
{
    for (int f = SA_FRAME; f < n; f += SA_FRAMES) {
        const int64* b = blocks + (int64)f * BLOCK_FIELDS;
        const unsigned char* src = (const unsigned char*)b[B_SRC];
        const int* index = (const int*)b[B_COL_INDEX];
        const float* weight = (const float*)b[B_COL_WEIGHT];
        float* band = (float*)b[B_BAND];
        int width = (int)b[B_WIDTH], row0 = (int)b[B_ROW0], cols = (int)b[B_N_COLS], kx = (int)b[B_KX];
        int size = (int)b[B_BAND_ROWS] * cols;
        for (Walk k = sa_walk(cols); k.i < size; sa_step(k, cols)) {
            const unsigned char* row = src + (int64)(row0 + k.y) * width * 3;
            sa_f4 t = sa_zero4();
            for (int tap = 0; tap < kx; ++tap)
                t = t + sa_rgb(row + index[k.x * kx + tap] * 3) * weight[k.x * kx + tap];
            sa_store4(band + (int64)k.i * 4, t);
        }
    }
}

// out[y][c] = sum_a band[row_index[y][a] - row0][c] * row_weight[y][a]: the block, (n_rows, n_cols) RGBX.
// A thread makes whole rows, adding tap a's band row to every pixel before tap a + 1's (each pixel's sum
// still in tap order): straight loops over contiguous rows, with the row's taps read once.
SA_KERNEL void resample_rows(const int64* __restrict__ blocks, int n)
{
    for (int f = SA_FRAME; f < n; f += SA_FRAMES) {
        const int64* b = blocks + (int64)f * BLOCK_FIELDS;
        const float* band = (const float*)b[B_BAND];
        const int* index = (const int*)b[B_ROW_INDEX];
        const float* weight = (const float*)b[B_ROW_WEIGHT];
        float* out = (float*)b[B_OUT];
        int row0 = (int)b[B_ROW0], cols = (int)b[B_N_COLS], ky = (int)b[B_KY];
        for (int y = SA_FIRST; y < (int)b[B_N_ROWS]; y += SA_STRIDE) {
            float* o = out + (int64)y * cols * 4;
            for (int x = 0; x < cols; ++x) sa_store4(o + x * 4, sa_zero4());
            for (int tap = 0; tap < ky; ++tap) {
                const float* t = band + (int64)(index[y * ky + tap] - row0) * cols * 4;
                float w = weight[y * ky + tap];
                for (int x = 0; x < cols; ++x) sa_store4(o + x * 4, sa_load4(o + x * 4) + sa_load4(t + x * 4) * w);
            }
        }
    }
}

// Frames from blocks: frame slot gets its block (pixel space, RGBX, bh x bw) with the top-left at canvas
// (y, x), clipped, black around it, normalised into the engine's layout and dtype as `render` does. A thread
// walks whole canvas rows (a CPU core then runs straight, vectorisable loops: black, block, black), with the
// layout and dtype fixed per loop: a branch per value would cost more than the value.
enum { P_BLOCK, P_HEIGHT, P_WIDTH, P_Y, P_X, P_SLOT, PLACE_FIELDS };

template <int NCHW, int HALF>
SA_DEVICE void sa_place_pixel(void* out, int64 slot, int i, int hw, float r, float g, float b, int bgr,
                              const float* scale, const float* bias)
{
    float c0 = bgr ? b : r, c2 = bgr ? r : b;
    float p[3] = {c0 * scale[0] + bias[0], g * scale[1] + bias[1], c2 * scale[2] + bias[2]};
    for (int k = 0; k < 3; ++k) {
        int64 at = NCHW ? (slot * 3 + k) * hw + i : (slot * hw + i) * 3 + k;
        if (HALF) ((unsigned short*)out)[at] = sa_half_bits(p[k]);
        else ((float*)out)[at] = p[k];
    }
}

// Canvas row y: black, then the block's pixels px (columns c0 to c1), then black.
template <int NCHW, int HALF>
SA_DEVICE void sa_place_row(void* out, int64 slot, int y, int w, int hw, const float* px, int c0, int c1,
                            int bgr, const float* scale, const float* bias)
{
    int row = y * w;
    for (int x = 0; x < c0; ++x) sa_place_pixel<NCHW, HALF>(out, slot, row + x, hw, 0.0f, 0.0f, 0.0f, bgr, scale, bias);
    for (int x = c0; x < c1; ++x) {
        const float* v = px + (int64)(x - c0) * 4;
        sa_place_pixel<NCHW, HALF>(out, slot, row + x, hw, v[0], v[1], v[2], bgr, scale, bias);
    }
    for (int x = c1; x < w; ++x) sa_place_pixel<NCHW, HALF>(out, slot, row + x, hw, 0.0f, 0.0f, 0.0f, bgr, scale, bias);
}

template <int NCHW, int HALF>
SA_DEVICE void sa_place(const int64* frames, int n, int h, int w, int bgr, const float* scale, const float* bias,
                        void* out)
{
    for (int f = SA_FRAME; f < n; f += SA_FRAMES) {
        const int64* p = frames + (int64)f * PLACE_FIELDS;
        const float* block = (const float*)p[P_BLOCK];
        int bh = (int)p[P_HEIGHT], bw = (int)p[P_WIDTH], y0 = (int)p[P_Y], x0 = (int)p[P_X];
        int c0 = x0 > 0 ? x0 : 0, c1 = x0 + bw < w ? x0 + bw : w;  // the block's columns on the canvas
        for (int y = SA_FIRST; y < h; y += SA_STRIDE) {
            int r = y - y0;
            bool rows = r >= 0 && r < bh && c0 < c1;
            sa_place_row<NCHW, HALF>(out, p[P_SLOT], y, w, h * w, block + ((int64)r * bw + c0 - x0) * 4,
                                     rows ? c0 : w, rows ? c1 : w, bgr, scale, bias);
        }
    }
}

SA_KERNEL void place(const int64* __restrict__ frames, int n, int h, int w, float s0, float s1, float s2, float b0,
                     float b1, float b2, int bgr, int nchw, int half, void* out)
{
    const float scale[3] = {s0, s1, s2}, bias[3] = {b0, b1, b2};
    if (nchw && half) sa_place<1, 1>(frames, n, h, w, bgr, scale, bias, out);
    else if (nchw) sa_place<1, 0>(frames, n, h, w, bgr, scale, bias, out);
    else if (half) sa_place<0, 1>(frames, n, h, w, bgr, scale, bias, out);
    else sa_place<0, 0>(frames, n, h, w, bgr, scale, bias, out);
}
