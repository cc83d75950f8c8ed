// Lets a kernel source compile both with NVRTC and as plain host C++ (for checks without a GPU).
// On the host a launch is one call with a grid of one block of one thread: every kernel is a
// grid-stride loop, so that single thread visits every element in order.
#pragma once
#ifdef __CUDACC_RTC__
#define SA_DEVICE __device__
#define SA_KERNEL extern "C" __global__
typedef long long int64;
#else
#include <cmath>
typedef long long int64;
struct sa_dim3 { unsigned x, y, z; };
static const sa_dim3 threadIdx = {0, 0, 0}, blockIdx = {0, 0, 0}, blockDim = {1, 1, 1}, gridDim = {1, 1, 1};
#define SA_DEVICE static inline
#define SA_KERNEL extern "C"
#define __restrict__
#endif

// Grid-stride loops: SA_FIRST/SA_STRIDE over the x dimension (pixels of a frame, rows of a batch),
// SA_FRAME/SA_FRAMES over y (frames of a batch). 32-bit pixel indices: a frame has < 2^31 pixels.
#define SA_FIRST ((int)(blockIdx.x * blockDim.x + threadIdx.x))
#define SA_STRIDE ((int)(gridDim.x * blockDim.x))
#define SA_FRAME ((int)blockIdx.y)
#define SA_FRAMES ((int)gridDim.y)

// float -> IEEE half bits, round to nearest even (as NumPy's astype(float16)); no header needed.
#ifdef __CUDACC_RTC__
SA_DEVICE unsigned short sa_half_bits(float f)
{
    unsigned short h;
    asm("cvt.rn.f16.f32 %0, %1;" : "=h"(h) : "f"(f));
    return h;
}
#else
SA_DEVICE unsigned short sa_half_bits(float f)
{
    union { float f; unsigned int u; } v;
    v.f = f;
    unsigned int x = v.u, sign = (x >> 16) & 0x8000u, mant = x & 0x7fffffu;
    int exp = (int)((x >> 23) & 0xffu);
    if (exp == 0xff) return (unsigned short)(sign | 0x7c00u | (mant ? 0x200u : 0u));
    int e = exp - 127 + 15;
    if (e >= 0x1f) return (unsigned short)(sign | 0x7c00u);
    if (e <= 0) {  // half subnormal (or zero)
        if (e < -10) return (unsigned short)sign;
        mant |= 0x800000u;
        int shift = 14 - e;
        unsigned int h = mant >> shift, rem = mant & ((1u << shift) - 1u), half = 1u << (shift - 1);
        if (rem > half || (rem == half && (h & 1u))) h++;
        return (unsigned short)(sign | h);
    }
    unsigned int h = ((unsigned int)e << 10) | (mant >> 13), rem = mant & 0x1fffu;
    if (rem > 0x1000u || (rem == 0x1000u && (h & 1u))) h++;  // a carry into the exponent is right
    return (unsigned short)(sign | h);
}
#endif

// Byte k of p as a float, exactly. On the device without a (quarter-rate) integer-to-float conversion:
// the byte is placed in the mantissa of 2^23 (one byte permute) and 2^23 subtracted.
#ifdef __CUDACC_RTC__
SA_DEVICE float sa_byte(unsigned int p, unsigned int k)
{
    return __int_as_float((int)__byte_perm(p, 0x4B000000u, 0x7540u | k)) - 8388608.0f;
}
#else
SA_DEVICE float sa_byte(unsigned int p, unsigned int k) { return (float)((p >> (8 * k)) & 0xffu); }
#endif

// Read-only loads through the non-coherent cache: a pointer that came from an integer field is not
// known to be global memory, so the compiler would emit generic loads. ``sa_ldg_pair`` reads an
// (int, float) pair as one 8-byte load. Plain loads on the host.
#ifdef __CUDACC_RTC__
SA_DEVICE unsigned int sa_ldg(const unsigned int* p) { return __ldg(p); }
SA_DEVICE void sa_ldg_pair(const void* p, int& i, float& f)
{
    int2 v = __ldg((const int2*)p);
    i = v.x;
    f = __int_as_float(v.y);
}
#else
#include <cstring>
SA_DEVICE unsigned int sa_ldg(const unsigned int* p) { return *p; }
SA_DEVICE void sa_ldg_pair(const void* p, int& i, float& f)
{
    std::memcpy(&i, p, 4);
    std::memcpy(&f, (const char*)p + 4, 4);
}
#endif
