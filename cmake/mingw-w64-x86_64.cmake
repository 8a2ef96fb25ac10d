# cmake/mingw-w64-x86_64.cmake — cross-compiles corona for 64-bit Windows
# with Debian's mingw-w64 (apt-get install gcc-mingw-w64-x86-64
# g++-mingw-w64-x86-64) and runs the test programs under Wine (wine64):
#
#   cmake -B build-win -DCMAKE_TOOLCHAIN_FILE=cmake/mingw-w64-x86_64.cmake
#   cmake --build build-win && (cd build-win && ctest)
#
# The Wine prefix lives in the build tree (build-win/wine-prefix), so a CI
# run depends on nothing in $HOME; ctest creates it on the first test run.
set(CMAKE_SYSTEM_NAME Windows)
set(CMAKE_SYSTEM_PROCESSOR x86_64)

set(CORONA_MINGW_TRIPLET x86_64-w64-mingw32)
set(CMAKE_C_COMPILER ${CORONA_MINGW_TRIPLET}-gcc)
set(CMAKE_CXX_COMPILER ${CORONA_MINGW_TRIPLET}-g++)
set(CMAKE_RC_COMPILER ${CORONA_MINGW_TRIPLET}-windres)

# Headers and libraries come from the mingw sysroot only; programs (the
# build's own tools) from the host.
set(CMAKE_FIND_ROOT_PATH /usr/${CORONA_MINGW_TRIPLET})
set(CMAKE_FIND_ROOT_PATH_MODE_PROGRAM NEVER)
set(CMAKE_FIND_ROOT_PATH_MODE_LIBRARY ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_INCLUDE ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_PACKAGE ONLY)

# The programs carry their own libgcc and winpthreads (no
# libgcc_s_seh-1.dll / libwinpthread-1.dll to find at run time); only
# corona.dll itself is a DLL the tests load.
set(CMAKE_EXE_LINKER_FLAGS_INIT "-static-libgcc -static")
set(CMAKE_SHARED_LINKER_FLAGS_INIT "-static-libgcc -static")

# Wine runs the tests.  Debian's wine64 package installs the loader as
# /usr/lib/wine/wine64 and the `wine` package adds /usr/bin/wine (a script
# that picks it); either will do for 64-bit programs.
find_program(CORONA_WINE NAMES wine64 wine PATHS /usr/lib/wine /usr/bin NO_CMAKE_FIND_ROOT_PATH)
if(CORONA_WINE)
  # A prefix of our own under the build tree, no debug chatter, and no
  # Mono/Gecko installer prompts on the first start; wine-run.sh starts
  # the loader again when it fails before any program could run.
  set(CMAKE_CROSSCOMPILING_EMULATOR
    ${CMAKE_COMMAND} -E env
    "WINEPREFIX=${CMAKE_BINARY_DIR}/wine-prefix"
    "WINEDEBUG=-all"
    "WINEDLLOVERRIDES=mscoree,mshtml="
    bash ${CMAKE_CURRENT_LIST_DIR}/wine-run.sh ${CORONA_WINE})
else()
  message(WARNING "corona: wine not found (Debian: apt-get install wine64 wine); the tests cannot run here")
endif()
