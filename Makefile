# Builds ./darknet, libdarknet.a and libdarknet.so from csrc/sources.txt
# (the same list setup.py uses).  Options: GPU=0|1 OPENMP=0|1 SANITIZE=0|1
# BLAS=0|1 (default: 1 when OpenBLAS's cblas.h is found) DEBUG=0|1.
GPU ?= 0
OPENMP ?= 1
SANITIZE ?= 0
DEBUG ?= 0
BLAS ?= $(shell echo 'int main(void){return 0;}' | $(CC) -x c -include cblas.h - -o /dev/null -lopenblas 2>/dev/null && echo 1 || echo 0)

CC ?= cc
SRCS := $(shell grep -v '^\#' csrc/sources.txt)
CLI_SRCS := $(wildcard csrc/cli/*.c)
# Sanitizer builds live apart (build/san/) so they never replace the normal
# ./darknet and libdarknet.so that Python loads.
OUT := $(if $(filter 1,$(SANITIZE)),build/san/,)
OBJDIR := build/obj$(if $(filter 1,$(SANITIZE)),-san)
OBJS := $(SRCS:%.c=$(OBJDIR)/%.o)
CLI_OBJS := $(CLI_SRCS:%.c=$(OBJDIR)/%.o)

CFLAGS := -std=c11 -D_GNU_SOURCE -Wall -Wextra -fPIC -Icsrc/include $(shell pkg-config --cflags stb 2>/dev/null || echo -I/usr/include/stb)
LDLIBS := -lstb -lm -lpthread
ifeq ($(DEBUG),1)
CFLAGS += -O0 -g
else
CFLAGS += -O3 -march=native -g
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
$(error GPU=1: the CUDA backend is not implemented yet (see the CUDA issue); build with GPU=0)
endif

all: $(OUT)darknet $(OUT)libdarknet.a $(OUT)libdarknet.so

$(OUT)darknet: $(CLI_OBJS) $(OUT)libdarknet.a
	$(CC) -o $@ $(CLI_OBJS) $(OUT)libdarknet.a $(LDLIBS)

$(OUT)libdarknet.a: $(OBJS)
	@mkdir -p $(dir $@)
	ar rcs $@ $^

$(OUT)libdarknet.so: $(OBJS)
	@mkdir -p $(dir $@)
	$(CC) -shared -o $@ $^ $(LDLIBS)

$(OBJDIR)/%.o: %.c $(wildcard csrc/include/*.h csrc/*/*.h csrc/*/*/*.h) Makefile
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -c $< -o $@

# libFuzzer targets (fuzz/*.c, clang with ASan+UBSan): `make fuzz` builds
# them in build/fuzz/ and runs each for FUZZ_SECONDS (scripts/fuzz.sh).
FUZZ_CC ?= $(shell command -v clang-14 || command -v clang)
FUZZ_TARGETS := cfg weights packed labels image
FUZZ_SECONDS ?= 60
FUZZ_FLAGS := -std=c11 -D_GNU_SOURCE -O1 -g -Wall -Wextra -Wno-unknown-pragmas -Icsrc/include \
	$(shell pkg-config --cflags stb 2>/dev/null || echo -I/usr/include/stb) \
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
