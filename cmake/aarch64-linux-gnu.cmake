# cmake/aarch64-linux-gnu.cmake — cross-compiles corona for 64-bit Arm
# Linux with Debian's cross compiler (apt-get install gcc-aarch64-linux-gnu
# g++-aarch64-linux-gnu) and runs the test programs under qemu-user
# (qemu-user-static: qemu-aarch64-static):
#
#   cmake -B build-arm64 -DCMAKE_TOOLCHAIN_FILE=cmake/aarch64-linux-gnu.cmake
#   cmake --build build-arm64 && (cd build-arm64 && ctest)
#
# The emulator runs every test program (CMAKE_CROSSCOMPILING_EMULATOR), with
# the cross compiler's C library (-L /usr/aarch64-linux-gnu).  The static
# qemu is the one to use: the dynamically linked qemu-aarch64 would itself
# read LD_PRELOAD, which the preload tests set for the aarch64 program, and
# print an error for it.  Programs that a test starts itself (a child
# re-executing the test, a preloaded program) go through the same command,
# which the tests read from CRTEST_EMULATOR (test/childutil.h,
# test/CMakeLists.txt): no binfmt_misc registration is needed.
set(CMAKE_SYSTEM_NAME Linux)
set(CMAKE_SYSTEM_PROCESSOR aarch64)

set(CORONA_CROSS_TRIPLET aarch64-linux-gnu)
set(CMAKE_C_COMPILER ${CORONA_CROSS_TRIPLET}-gcc)
set(CMAKE_CXX_COMPILER ${CORONA_CROSS_TRIPLET}-g++)

# Headers and libraries from the cross tree only; programs (the build's own
# tools) from the host.
set(CMAKE_FIND_ROOT_PATH /usr/${CORONA_CROSS_TRIPLET})
set(CMAKE_FIND_ROOT_PATH_MODE_PROGRAM NEVER)
set(CMAKE_FIND_ROOT_PATH_MODE_LIBRARY ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_INCLUDE ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_PACKAGE ONLY)

find_program(CORONA_QEMU NAMES qemu-aarch64-static qemu-aarch64 NO_CMAKE_FIND_ROOT_PATH)
if(CORONA_QEMU)
  # CORONA_TEST_EMULATOR: the command, for the tests that start programs of
  # this build from a script (test/CMakeLists.txt passes it on as
  # CRTEST_EMULATOR); every test program sees it in CRTEST_EMULATOR too.
  set(CORONA_TEST_EMULATOR ${CORONA_QEMU} -L /usr/${CORONA_CROSS_TRIPLET})
  string(REPLACE ";" " " corona_emulator_words "${CORONA_TEST_EMULATOR}")
  set(CMAKE_CROSSCOMPILING_EMULATOR
    ${CMAKE_COMMAND} -E env "CRTEST_EMULATOR=${corona_emulator_words}" ${CORONA_TEST_EMULATOR})
else()
  message(WARNING "corona: qemu-aarch64 not found (Debian: apt-get install qemu-user-static); the tests cannot run here")
endif()
