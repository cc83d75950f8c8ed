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
#include <cstring>
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

// Four float lanes (a pixel's RGBX, or its value and inpainting weight) with lane-wise + and *, and a
// scalar weight times all four: on the host a GCC vector, so each operation is one SIMD instruction (the
// CPU renderer's inner loops); on the device a plain struct. Lane-wise IEEE operations either way.
#ifdef __CUDACC_RTC__
struct sa_f4 {
    float v[4];
    SA_DEVICE float& operator[](int k) { return v[k]; }
    SA_DEVICE float operator[](int k) const { return v[k]; }
};
SA_DEVICE sa_f4 operator+(sa_f4 a, sa_f4 b) { return {{a[0] + b[0], a[1] + b[1], a[2] + b[2], a[3] + b[3]}}; }
SA_DEVICE sa_f4 operator*(sa_f4 a, float w) { return {{a[0] * w, a[1] * w, a[2] * w, a[3] * w}}; }
SA_DEVICE sa_f4 operator/(sa_f4 a, float w) { return {{a[0] / w, a[1] / w, a[2] / w, a[3] / w}}; }
SA_DEVICE sa_f4 sa_zero4() { return {{0.0f, 0.0f, 0.0f, 0.0f}}; }
SA_DEVICE sa_f4 sa_bytes4(unsigned int p) { return {{sa_byte(p, 0), sa_byte(p, 1), sa_byte(p, 2), sa_byte(p, 3)}}; }
SA_DEVICE sa_f4 sa_rgb(const unsigned char* p) { return {{(float)p[0], (float)p[1], (float)p[2], 0.0f}}; }
SA_DEVICE sa_f4 sa_load4(const float* p) { return {{p[0], p[1], p[2], p[3]}}; }
SA_DEVICE void sa_store4(float* p, sa_f4 a) { p[0] = a[0]; p[1] = a[1]; p[2] = a[2]; p[3] = a[3]; }
#else
typedef float sa_f4 __attribute__((vector_size(16)));
typedef unsigned char sa_u8x4 __attribute__((vector_size(4)));
typedef int sa_i4 __attribute__((vector_size(16)));
SA_DEVICE sa_f4 sa_zero4() { return sa_f4{0.0f, 0.0f, 0.0f, 0.0f}; }
#ifdef __SSE2__
#include <emmintrin.h>
SA_DEVICE sa_f4 sa_bytes4(unsigned int p)  // two unpacks with zero and one conversion (compilers scalarise it)
{
    __m128i zero = _mm_setzero_si128();
    return (sa_f4)_mm_cvtepi32_ps(_mm_unpacklo_epi16(_mm_unpacklo_epi8(_mm_cvtsi32_si128((int)p), zero), zero));
}
#else
SA_DEVICE sa_f4 sa_bytes4(unsigned int p)
{
    sa_u8x4 b;
    std::memcpy(&b, &p, 4);
    return __builtin_convertvector(__builtin_convertvector(b, sa_i4), sa_f4);
}
#endif
// An RGB pixel (three bytes) as RGBX floats, X = 0: the three bytes assembled into a word in registers (no
// read past the pixel: the image's last one ends its buffer; a memcpy of three bytes went through the stack
// and stalled every tap), then widened as `sa_bytes4`.
SA_DEVICE sa_f4 sa_rgb(const unsigned char* p)
{
    unsigned short rg;
    std::memcpy(&rg, p, 2);
    return sa_bytes4((unsigned int)rg | ((unsigned int)p[2] << 16));
}
SA_DEVICE sa_f4 sa_load4(const float* p)
{
    sa_f4 a;
    std::memcpy(&a, p, 16);
    return a;
}
SA_DEVICE void sa_store4(float* p, sa_f4 a) { std::memcpy(p, &a, 16); }
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
SA_DEVICE unsigned int sa_ldg(const unsigned int* p) { return *p; }
SA_DEVICE void sa_ldg_pair(const void* p, int& i, float& f)
{
    std::memcpy(&i, p, 4);
    std::memcpy(&f, (const char*)p + 4, 4);
}
#endif
