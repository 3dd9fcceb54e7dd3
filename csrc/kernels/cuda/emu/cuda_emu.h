/* cuda_emu.h: a CPU emulator of the CUDA C++ subset the kernels of
 * kernels/cuda use, for testing the CUDA backend where there is no GPU
 * (DARKNET_GPU=emu builds; see emu/runtime.cpp for the runtime API).
 *
 * Included first (-include) when a .cu file is compiled as C++17 with
 * -DDN_CUDA_EMU. A launch runs the whole grid before it returns, one block
 * at a time, the block's threads as fibers on the launching thread;
 * __syncthreads switches to the next fiber, so a round over the fibers
 * takes the block from one barrier to the next. __shared__ arrays are
 * function statics (one block runs at a time) and launches are serialised,
 * so the emulator is exact for kernels that follow CUDA's rules (no
 * inter-block communication, barriers reached by all threads of a block).
 * It checks logic (indexing, reductions, the host code's buffers and
 * copies), not speed or the memory model.
 */
#ifndef DN_CUDA_EMU_H
#define DN_CUDA_EMU_H

#include <cfloat>
#include <cmath>
#include <cstddef>
#include <cstring>
#include <functional>

#define __global__
#define __device__
#define __host__
#define __shared__ static

struct dim3 {
    unsigned x, y, z;
    dim3(unsigned x_ = 1, unsigned y_ = 1, unsigned z_ = 1) : x(x_), y(y_), z(z_) {}
};

inline dim3 threadIdx, blockIdx, blockDim, gridDim; /* of the running fiber */

/* Run fn as every thread of every block of grid x block (runtime.cpp). */
void dn_emu_launch(dim3 grid, dim3 block, const std::function<void()> &fn);
void dn_emu_syncthreads();
float dn_emu_atomic_add(float *p, float v);

inline void __syncthreads() { dn_emu_syncthreads(); }
inline float atomicAdd(float *p, float v) { return dn_emu_atomic_add(p, v); }

#endif
