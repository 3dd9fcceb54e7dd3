/* runtime.cpp: the CPU emulator's launch machinery (cuda_emu.h) and runtime
 * API (cuda_runtime_api.h) for DARKNET_GPU=emu builds: "device" memory is
 * host memory whose allocations are tracked so that copies can be checked. */
#include "cuda_emu.h"
#include "cuda_runtime_api.h"

#include <ucontext.h>

#include <cstdlib>
#include <map>
#include <mutex>
#include <vector>

static std::mutex launch_lock;   /* one kernel at a time: __shared__ statics, the fibers below */
static std::mutex atomic_lock;
static std::mutex alloc_lock;
static std::map<const char *, size_t> allocations;
static thread_local cudaError_t last_error = cudaSuccess;

/* The threads of a block are fibers (ucontext) on the launching thread:
 * each runs until it reaches __syncthreads or ends, then the next one runs;
 * a round over all fibers thus moves the block from one barrier to the
 * next. Stacks are kept between launches. */
#define FIBER_STACK (256 * 1024)
static ucontext_t scheduler;
static std::vector<ucontext_t> fibers;
static std::vector<char *> stacks;
static std::vector<unsigned char> finished;
static unsigned current;
static const std::function<void()> *kernel;

static void fiber_main(int t)
{
    (*kernel)();
    finished[(unsigned)t] = 1;
}

void dn_emu_launch(dim3 grid, dim3 block, const std::function<void()> &fn)
{
    std::lock_guard<std::mutex> hold(launch_lock);
    unsigned nt = block.x * block.y * block.z;
    while (stacks.size() < nt) stacks.push_back(static_cast<char *>(std::malloc(FIBER_STACK)));
    fibers.resize(nt);
    finished.assign(nt, 0);
    kernel = &fn;
    blockDim = block;
    gridDim = grid;
    for (unsigned z = 0; z < grid.z; ++z)
        for (unsigned y = 0; y < grid.y; ++y)
            for (unsigned x = 0; x < grid.x; ++x) {
                blockIdx = dim3(x, y, z);
                for (unsigned t = 0; t < nt; ++t) {
                    getcontext(&fibers[t]);
                    fibers[t].uc_stack.ss_sp = stacks[t];
                    fibers[t].uc_stack.ss_size = FIBER_STACK;
                    fibers[t].uc_link = &scheduler;
                    makecontext(&fibers[t], reinterpret_cast<void (*)()>(fiber_main), 1, (int)t);
                    finished[t] = 0;
                }
                for (unsigned alive = nt; alive;) {
                    alive = 0;
                    for (unsigned t = 0; t < nt; ++t) {
                        if (finished[t]) continue;
                        current = t;
                        threadIdx = dim3(t % block.x, t / block.x % block.y, t / (block.x * block.y));
                        swapcontext(&scheduler, &fibers[t]);
                        alive += !finished[t];
                    }
                }
            }
}

void dn_emu_syncthreads() { swapcontext(&fibers[current], &scheduler); }

float dn_emu_atomic_add(float *p, float v)
{
    std::lock_guard<std::mutex> hold(atomic_lock);
    float old = *p;
    *p = old + v;
    return old;
}

static bool on_device(const void *p, size_t n)
{
    std::lock_guard<std::mutex> hold(alloc_lock);
    const char *c = static_cast<const char *>(p);
    auto it = allocations.upper_bound(c);
    if (it == allocations.begin()) return false;
    --it;
    return c >= it->first && c + n <= it->first + it->second;
}

static cudaError_t fail(cudaError_t e)
{
    last_error = e;
    return e;
}

extern "C" {

int dn_emu_on_device(const void *p, size_t bytes) { return on_device(p, bytes); }

cudaError_t cudaMalloc(void **p, size_t bytes)
{
    *p = std::malloc(bytes ? bytes : 1);
    if (!*p) return fail(cudaErrorMemoryAllocation);
    std::lock_guard<std::mutex> hold(alloc_lock);
    allocations[static_cast<const char *>(*p)] = bytes;
    return cudaSuccess;
}

cudaError_t cudaFree(void *p)
{
    if (!p) return cudaSuccess;
    {
        std::lock_guard<std::mutex> hold(alloc_lock);
        auto it = allocations.find(static_cast<const char *>(p));
        if (it == allocations.end()) return fail(cudaErrorInvalidValue);
        allocations.erase(it);
    }
    std::free(p);
    return cudaSuccess;
}

cudaError_t cudaMemcpy(void *dst, const void *src, size_t bytes, enum cudaMemcpyKind kind)
{
    bool dd = on_device(dst, bytes), sd = on_device(src, bytes);
    bool ok = kind == cudaMemcpyHostToDevice ? dd && !on_device(src, 1)
            : kind == cudaMemcpyDeviceToHost ? sd && !on_device(dst, 1)
            : kind == cudaMemcpyDeviceToDevice ? dd && sd
            : true;
    if (!ok) return fail(cudaErrorInvalidValue);
    std::memmove(dst, src, bytes);
    return cudaSuccess;
}

cudaError_t cudaMemset(void *p, int value, size_t bytes)
{
    if (!on_device(p, bytes)) return fail(cudaErrorInvalidValue);
    std::memset(p, value, bytes);
    return cudaSuccess;
}

cudaError_t cudaGetDeviceCount(int *n)
{
    const char *e = std::getenv("DN_EMU_DEVICES");
    *n = e ? std::atoi(e) : 2;
    if (*n <= 0) {
        *n = 0;
        return fail(cudaErrorNoDevice);
    }
    return cudaSuccess;
}

cudaError_t cudaSetDevice(int device)
{
    int n = 0;
    cudaGetDeviceCount(&n);
    if (device < 0 || device >= n) return fail(cudaErrorInvalidDevice);
    return cudaSuccess;
}

cudaError_t cudaGetLastError(void)
{
    cudaError_t e = last_error;
    last_error = cudaSuccess;
    return e;
}

const char *cudaGetErrorString(cudaError_t e)
{
    switch (e) {
    case cudaSuccess: return "no error";
    case cudaErrorInvalidValue: return "invalid argument (emulator: a copy outside a device allocation or in the wrong direction)";
    case cudaErrorMemoryAllocation: return "out of memory";
    case cudaErrorNoDevice: return "no CUDA-capable device is detected";
    case cudaErrorInvalidDevice: return "invalid device ordinal";
    }
    return "unknown error";
}

}
