# CMake toolchain file: a Windows x86-64 build of libimp (CPU only) with Debian's mingw-w64.
#   cmake -S . -B build-win -DCMAKE_TOOLCHAIN_FILE=packaging/mingw-w64.cmake -DIMP_CUDA=OFF \
#         -DIMP_BUILD_TESTS=OFF -DIMP_BUILD_TOOLS=OFF -DUTF8PROC_INCLUDE_DIR=... -DUTF8PROC_LIBRARY=...
# packaging/windows/build_and_run.sh does all of it, utf8proc included, and runs the examples under wine.
set(CMAKE_SYSTEM_NAME Windows)
set(CMAKE_SYSTEM_PROCESSOR x86_64)

# The -posix compilers: the engine uses std::thread and std::mutex, which GCC 12's win32 thread model lacks.
set(CMAKE_C_COMPILER x86_64-w64-mingw32-gcc-posix)
set(CMAKE_CXX_COMPILER x86_64-w64-mingw32-g++-posix)
set(CMAKE_RC_COMPILER x86_64-w64-mingw32-windres)

set(CMAKE_FIND_ROOT_PATH /usr/x86_64-w64-mingw32)
set(CMAKE_FIND_ROOT_PATH_MODE_PROGRAM NEVER)
set(CMAKE_FIND_ROOT_PATH_MODE_LIBRARY ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_INCLUDE ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_PACKAGE ONLY)

# GCC on Win64 does not align the stack to 32 bytes, yet may spill AVX registers with aligned moves
# (GCC bug 54412), a crash as soon as the AVX2 kernels run; the assembler turns them into unaligned moves.
set(CMAKE_C_FLAGS_INIT "-Wa,-muse-unaligned-vector-move")
set(CMAKE_CXX_FLAGS_INIT "-Wa,-muse-unaligned-vector-move")
# A self-contained imp.dll: libgcc, libstdc++ and winpthread are linked in, so it needs only Windows' DLLs.
set(CMAKE_SHARED_LINKER_FLAGS_INIT "-static")
set(CMAKE_EXE_LINKER_FLAGS_INIT "-static")

set(CMAKE_CROSSCOMPILING_EMULATOR wine)
