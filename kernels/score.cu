// Scoring on the device (kernels/reference.py, softmax): per output row the top-1 class and the softmax
// denominator; then, per frame, the probability of its unit's first-frame top class c*. Only these
// O(N) numbers go back to the host. One thread per row: rows are few (a batch) and short (classes).
#include "compat.h"

// top1[i], rowmax[i] and denom[i] = sum exp(x - rowmax) (or the sum itself for probabilities).
SA_KERNEL void score_rows(const float* __restrict__ out, int n, int classes, int logits, int* __restrict__ top1,
                          float* __restrict__ rowmax, float* __restrict__ denom)
{
    for (int i = SA_FIRST; i < n; i += SA_STRIDE) {
        const float* row = out + (int64)i * classes;
        int best = 0;
        for (int c = 1; c < classes; ++c)
            if (row[c] > row[best]) best = c;
        float m = row[best], s = 0.0f;
        for (int c = 0; c < classes; ++c) s += logits ? expf(row[c] - m) : row[c];
        top1[i] = best;
        rowmax[i] = m;
        denom[i] = s;
    }
}

// p_star[i] = p_i[c*], where c* = cls[i] if cls[i] >= 0, else top1[-cls[i] - 1] (the first frame of
// the unit is row -cls[i]-1 of this batch; otherwise its class came from an earlier batch).
SA_KERNEL void score_pstar(const float* __restrict__ out, int n, int classes, int logits,
                           const int* __restrict__ cls, const int* __restrict__ top1,
                           const float* __restrict__ rowmax, const float* __restrict__ denom,
                           float* __restrict__ p_star)
{
    for (int i = SA_FIRST; i < n; i += SA_STRIDE) {
        int c = cls[i] >= 0 ? cls[i] : top1[-cls[i] - 1];
        float x = out[(int64)i * classes + c];
        p_star[i] = (logits ? expf(x - rowmax[i]) : x) / denom[i];
    }
}
