/* common.cuh: what the .cu files share: the launch macro, launch geometry
 * for grid-stride loops over n elements and a deterministic block sum in
 * double. Kernels are launched with DN_LAUNCH(kernel, grid, block, args...)
 * rather than kernel<<<grid, block>>>(args) so that the same files also
 * compile as plain C++ against the CPU emulator of emu/cuda_emu.h (the CI's
 * functional check of the backend without a GPU). */
#ifndef DN_CUDA_COMMON_CUH
#define DN_CUDA_COMMON_CUH

#include <stddef.h>

#ifdef DN_CUDA_EMU
#define DN_LAUNCH(k, grid, block, ...) dn_emu_launch(dim3(grid), dim3(block), [&] { k(__VA_ARGS__); })
#else
#define DN_LAUNCH(k, grid, block, ...) k<<<(grid), (block)>>>(__VA_ARGS__)
#endif

#define DN_THREADS 256

/* Blocks for a grid-stride loop over n elements (at least 1; the
 * emulator runs blocks one after another, so it takes few). */
#ifdef DN_CUDA_EMU
#define DN_MAX_BLOCKS 2
#else
#define DN_MAX_BLOCKS 8192
#endif
static inline unsigned dn_blocks(size_t n)
{
    size_t b = (n + DN_THREADS - 1) / DN_THREADS;
    return (unsigned)(b < 1 ? 1 : (b > DN_MAX_BLOCKS ? DN_MAX_BLOCKS : b));
}

#define DN_GRID_LOOP(i, n) \
    for (size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x; i < (n); i += (size_t)gridDim.x * blockDim.x)

/* Sum of v over the DN_THREADS threads of a block, in a fixed tree order;
 * every thread gets the result. sh: DN_THREADS doubles of shared memory. */
__device__ static inline double dn_block_sum(double v, double *sh)
{
    sh[threadIdx.x] = v;
    __syncthreads();
    for (unsigned s = DN_THREADS / 2; s > 0; s >>= 1) {
        if (threadIdx.x < s) sh[threadIdx.x] += sh[threadIdx.x + s];
        __syncthreads();
    }
    double r = sh[0];
    __syncthreads();
    return r;
}

#endif
