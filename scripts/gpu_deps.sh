#!/usr/bin/env bash
# Run here before a GPU run: unpacks the Debian packages that the build needs
# and the GPU machine's image lacks (stb's headers and library) into
# .gpu_deps/usr (git-ignored; about 3 MB), to send along with the device
# tool's `carry: [".gpu_deps"]`. scripts/gpu_check.sh builds against it
# (STB_PREFIX) when that machine has no stb of its own.
set -euo pipefail
cd "$(dirname "$0")/.."
rm -rf .gpu_deps
mkdir -p .gpu_deps/debs
(cd .gpu_deps/debs && apt-get download -q libstb0 libstb-dev)
for deb in .gpu_deps/debs/*.deb; do dpkg -x "$deb" .gpu_deps; done
rm -rf .gpu_deps/debs
test -f .gpu_deps/usr/include/stb/stb_image.h && test -e .gpu_deps/usr/lib/x86_64-linux-gnu/libstb.so
echo "gpu_deps: stb unpacked into .gpu_deps/usr ($(du -sh .gpu_deps | cut -f1))"
