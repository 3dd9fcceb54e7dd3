# Builds ./darknet, libdarknet.a and libdarknet.so from csrc/sources.txt
# (the same list setup.py uses).  Options: GPU=0|1 OPENMP=0|1 SANITIZE=0|1
# BLAS=0|1 (default: 1 when OpenBLAS's cblas.h is found) DEBUG=0|1
# PORTABLE=0|1: 1 builds for any x86-64 CPU with SSE4.2 (-march=x86-64-v2;
# the float kernels of kernels/cpu/isa/ and the ternary kernels still use
# AVX2, AVX-512 and VNNI where the CPU has them) into build/portable/;
# 0 (default) for this machine (-march=native).
# GPU=1 adds csrc/sources_gpu.txt (the CUDA backend; nvcc from CUDA_PATH,
# default /usr/local/cuda); CUBLAS=0|1 (default: 1 when cublas_v2.h is in
# CUBLAS_DIR, default CUDA_PATH) picks cuBLAS or the built-in GEMM kernel;
# CUDNN=1 runs the convolutions on cuDNN (CUDNN_DIR, default CUDA_PATH:
# include/cudnn.h, lib64/ or lib/libcudnn.so*); NVCC_ARCH the -gencode list.
GPU ?= 0
PORTABLE ?= 0
OPENMP ?= 1
SANITIZE ?= 0
DEBUG ?= 0
BLAS ?= $(shell echo 'int main(void){return 0;}' | $(CC) -x c -include cblas.h - -o /dev/null -lopenblas 2>/dev/null && echo 1 || echo 0)

CC ?= cc
SRCS := $(shell grep -v '^\#' csrc/sources.txt)
ifeq ($(GPU),1)
GPU_SRCS := $(shell grep -v '^\#' csrc/sources_gpu.txt)
SRCS += $(filter %.c,$(GPU_SRCS))
CU_SRCS := $(filter %.cu,$(GPU_SRCS))
endif
CLI_SRCS := $(wildcard csrc/cli/*.c)
# Sanitizer builds live apart (build/san/) so they never replace the normal
# ./darknet and libdarknet.so that Python loads.
OUT := $(if $(filter 1,$(SANITIZE)),build/san/,$(if $(filter 1,$(PORTABLE)),build/portable/,))
OBJDIR = build/obj$(if $(filter 1,$(SANITIZE)),-san)$(if $(filter 1,$(PORTABLE)),-portable)$(if $(filter 1,$(GPU)),-gpu$(if $(filter 1,$(CUBLAS)),-cublas)$(if $(filter 1,$(CUDNN)),-cudnn))
OBJS = $(SRCS:%.c=$(OBJDIR)/%.o) $(CU_SRCS:%.cu=$(OBJDIR)/%.cu.o)
# Switching between the CPU and the GPU build relinks the outputs.
FLAVOR := build/.flavor$(if $(filter 1,$(SANITIZE)),-san)$(if $(filter 1,$(PORTABLE)),-portable)-$(if $(filter 1,$(GPU)),gpu$(if $(filter 1,$(CUDNN)),-cudnn),cpu)
CLI_OBJS = $(CLI_SRCS:%.c=$(OBJDIR)/%.o)

# STB_PREFIX: a usr/ folder holding stb's headers and library where the system
# has none (scripts/gpu_deps.sh unpacks Debian's packages for the GPU machine).
ifdef STB_PREFIX
STB_CFLAGS := -I$(STB_PREFIX)/include/stb
STB_LIBS := -L$(STB_PREFIX)/lib/x86_64-linux-gnu -Wl,-rpath,$(abspath $(STB_PREFIX))/lib/x86_64-linux-gnu -lstb
else
STB_CFLAGS := $(shell pkg-config --cflags stb 2>/dev/null || echo -I/usr/include/stb)
STB_LIBS := -lstb
endif
# -Wno-psabi: the SIMD files pass GCC vector values only between their own
# static functions, so GCC's note that such an ABI differs between x86-64
# levels does not apply (a pragma cannot silence it under #pragma GCC target).
CFLAGS := -std=c11 -D_GNU_SOURCE -Wall -Wextra -Wno-psabi -fPIC -Icsrc/include $(STB_CFLAGS)
LDLIBS := $(STB_LIBS) -lm -lpthread
ifeq ($(DEBUG),1)
CFLAGS += -O0 -g
else
CFLAGS += -O3 -march=$(if $(filter 1,$(PORTABLE)),x86-64-v2,native) -g
endif
ifeq ($(OPENMP),1)
CFLAGS += -fopenmp
LDLIBS += -fopenmp
else
CFLAGS += -Wno-unknown-pragmas
endif
ifeq ($(BLAS),1)
CFLAGS += -DDN_USE_BLAS
LDLIBS += -lopenblas
endif
ifeq ($(SANITIZE),1)
CFLAGS += -fsanitize=address,undefined -fno-omit-frame-pointer
LDLIBS += -fsanitize=address,undefined
endif
ifeq ($(GPU),1)
CUDA_PATH ?= /usr/local/cuda
NVCC ?= $(CUDA_PATH)/bin/nvcc
CUBLAS_DIR ?= $(CUDA_PATH)
CUBLAS ?= $(if $(wildcard $(CUBLAS_DIR)/include/cublas_v2.h),1,0)
NVCC_ARCH ?= -gencode arch=compute_75,code=compute_75 -gencode arch=compute_80,code=sm_80 -gencode arch=compute_90,code=sm_90
ifeq ($(wildcard $(NVCC)),)
$(error GPU=1: nvcc not found at $(NVCC); install the CUDA toolkit or set CUDA_PATH=... (or NVCC=...))
endif
CFLAGS += -DDN_GPU -I$(CUDA_PATH)/include
NVCCFLAGS := -std=c++14 -O3 $(NVCC_ARCH) -Xcompiler -fPIC,-Wall -Icsrc/include
LDLIBS += -L$(CUDA_PATH)/lib64 -lcudart_static -ldl -lrt -lstdc++
ifeq ($(CUBLAS),1)
NVCCFLAGS += -DDN_USE_CUBLAS -I$(CUBLAS_DIR)/include
LDLIBS += -L$(CUBLAS_DIR)/lib64 -L$(CUBLAS_DIR)/lib -Wl,-rpath-link,$(CUBLAS_DIR)/lib -lcublas
endif
ifeq ($(CUDNN),1)
CUDNN_DIR ?= $(CUDA_PATH)
ifeq ($(wildcard $(CUDNN_DIR)/include/cudnn.h),)
$(error CUDNN=1: cudnn.h not found in $(CUDNN_DIR)/include; install cuDNN or set CUDNN_DIR=..., or build with GPU=1 alone)
endif
CUDNN_LIB := $(firstword $(wildcard $(foreach d,lib64 lib lib/x86_64-linux-gnu,$(CUDNN_DIR)/$(d)/libcudnn.so) \
                                     $(foreach d,lib64 lib lib/x86_64-linux-gnu,$(CUDNN_DIR)/$(d)/libcudnn.so.[0-9]*)))
ifeq ($(CUDNN_LIB),)
$(error CUDNN=1: libcudnn.so not found under $(CUDNN_DIR)/lib64 or $(CUDNN_DIR)/lib; set CUDNN_DIR=...)
endif
NVCCFLAGS += -DDN_USE_CUDNN -I$(CUDNN_DIR)/include
LDLIBS += $(CUDNN_LIB) -Wl,-rpath,$(abspath $(dir $(CUDNN_LIB)))
endif
else ifeq ($(CUDNN),1)
$(error CUDNN=1 needs GPU=1)
endif

all: $(OUT)darknet $(OUT)libdarknet.a $(OUT)libdarknet.so

$(FLAVOR):
	@mkdir -p build
	@rm -f build/.flavor$(if $(filter 1,$(SANITIZE)),-san)$(if $(filter 1,$(PORTABLE)),-portable)-*
	@touch $@

$(OUT)darknet: $(CLI_OBJS) $(OUT)libdarknet.a $(FLAVOR)
	$(CC) -o $@ $(CLI_OBJS) $(OUT)libdarknet.a $(LDLIBS)

$(OUT)libdarknet.a: $(OBJS) $(FLAVOR)
	@mkdir -p $(dir $@)
	rm -f $@
	ar rcs $@ $(OBJS)

$(OUT)libdarknet.so: $(OBJS) $(FLAVOR)
	@mkdir -p $(dir $@)
	$(CC) -shared -o $@ $(OBJS) $(LDLIBS)

$(OBJDIR)/%.cu.o: %.cu $(wildcard csrc/kernels/cuda/*.h csrc/kernels/cuda/*.cuh csrc/core/activations.h) Makefile
	@mkdir -p $(dir $@)
	$(NVCC) $(NVCCFLAGS) -c $< -o $@

$(OBJDIR)/%.o: %.c $(wildcard csrc/include/*.h csrc/*/*.h csrc/*/*/*.h) Makefile
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -c $< -o $@

# the per-level wrappers of kernels/cpu/isa/ include the kernel files themselves
$(OBJDIR)/csrc/kernels/cpu/isa/%.o: $(wildcard csrc/kernels/cpu/*.c)

# libFuzzer targets (fuzz/*.c, clang with ASan+UBSan): `make fuzz` builds
# them in build/fuzz/ and runs each for FUZZ_SECONDS (scripts/fuzz.sh).
FUZZ_CC ?= $(shell command -v clang-14 || command -v clang)
FUZZ_TARGETS := cfg weights packed labels image
FUZZ_SECONDS ?= 60
FUZZ_FLAGS := -std=c11 -D_GNU_SOURCE -O1 -g -Wall -Wextra -Wno-unknown-pragmas -Icsrc/include \
	$(STB_CFLAGS) \
	-fsanitize=address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer
FUZZ_OBJS := $(SRCS:%.c=build/obj-fuzz/%.o)

build/obj-fuzz/%.o: %.c $(wildcard csrc/include/*.h csrc/*/*.h csrc/*/*/*.h) Makefile
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(FUZZ_FLAGS) -fsanitize=fuzzer-no-link -c $< -o $@

build/fuzz/fuzz_%: fuzz/fuzz_%.c fuzz/*.h $(FUZZ_OBJS)
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(FUZZ_FLAGS) -fsanitize=fuzzer -o $@ $< $(FUZZ_OBJS) -lstb -lm -lpthread

fuzz-build: $(FUZZ_TARGETS:%=build/fuzz/fuzz_%)

fuzz: fuzz-build
	bash scripts/fuzz.sh $(FUZZ_SECONDS)

clean:
	rm -rf build darknet libdarknet.a libdarknet.so darknet_py/_core*.so

.PHONY: all clean fuzz fuzz-build
