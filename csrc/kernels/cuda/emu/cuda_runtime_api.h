/* cuda_runtime_api.h (emulator): the part of the CUDA runtime API that the
 * backend's host code (core/network_gpu.c) calls, served from host memory by
 * emu/runtime.cpp. Found first on the include path of DARKNET_GPU=emu
 * builds. Device pointers are tracked: a copy or memset that reaches
 * outside an allocation, or a copy whose direction does not match its
 * pointers, fails with cudaErrorInvalidValue, which the backend reports as
 * an error. DN_EMU_DEVICES (default 2) sets the device count. */
#ifndef DN_EMU_CUDA_RUNTIME_API_H
#define DN_EMU_CUDA_RUNTIME_API_H

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef enum cudaError {
    cudaSuccess = 0,
    cudaErrorInvalidValue = 1,
    cudaErrorMemoryAllocation = 2,
    cudaErrorNoDevice = 100,
    cudaErrorInvalidDevice = 101
} cudaError_t;

enum cudaMemcpyKind {
    cudaMemcpyHostToHost = 0,
    cudaMemcpyHostToDevice = 1,
    cudaMemcpyDeviceToHost = 2,
    cudaMemcpyDeviceToDevice = 3,
    cudaMemcpyDefault = 4
};

cudaError_t cudaMalloc(void **p, size_t bytes);
cudaError_t cudaFree(void *p);
cudaError_t cudaMemcpy(void *dst, const void *src, size_t bytes, enum cudaMemcpyKind kind);
cudaError_t cudaMemset(void *p, int value, size_t bytes);
cudaError_t cudaGetDeviceCount(int *n);
cudaError_t cudaSetDevice(int device);
cudaError_t cudaGetLastError(void);
const char *cudaGetErrorString(cudaError_t e);
/* Emulator only: 1 when [p, p + bytes) lies inside one device allocation. */
int dn_emu_on_device(const void *p, size_t bytes);

#ifdef __cplusplus
}
#endif

#endif
