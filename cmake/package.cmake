# cmake/package.cmake — CPack's DEB generator, set up for two Debian
# packages built from the install components of CMakeLists.txt:
#   libcorona0     (runtime) libcorona.so.0 -> libcorona.so.0.2.0, corona-run
#   libcorona-dev  (dev)     corona.h, libcorona.a, the libcorona.so link,
#                            corona.pc, the CMake package
# scripts/package configures a build with the prefix /usr (so GNUInstallDirs
# picks the multiarch library directory) and runs cpack; see docs/package.md.
# The package name carries the SONAME's major version, as Debian's library
# packaging policy asks, so a future libcorona1 can be installed beside it.

set(CPACK_GENERATOR DEB)
set(CPACK_PACKAGE_NAME corona)
set(CPACK_PACKAGE_VENDOR corona)
set(CPACK_PACKAGE_VERSION ${PROJECT_VERSION})
set(CPACK_PACKAGE_CONTACT "corona maintainers <maintainers@users.noreply.b-seed-548642bb.example>")
# The packaging revision: the same sources packaged again get a higher one.
set(CPACK_DEBIAN_PACKAGE_RELEASE 1)
set(corona_deb_version "${PROJECT_VERSION}-${CPACK_DEBIAN_PACKAGE_RELEASE}")

# The packages install under the configured prefix (/usr from
# scripts/package), the one GNUInstallDirs derived the library directory
# from.  CPack's DEB generator stages with DESTDIR, so corona.pc, written at
# install time from CMAKE_INSTALL_PREFIX, names /usr (the test checks it).
set(CPACK_PACKAGING_INSTALL_PREFIX ${CMAKE_INSTALL_PREFIX})
set(CPACK_STRIP_FILES ON)

set(CPACK_DEB_COMPONENT_INSTALL ON)
set(CPACK_COMPONENTS_ALL runtime dev)
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)
set(CPACK_DEBIAN_PACKAGE_PRIORITY optional)
set(CPACK_DEBIAN_PACKAGE_CONTROL_STRICT_PERMISSION ON)

# A description is its summary line, then the body; CPack indents the body
# and turns its empty lines into Debian's " ." (so no summary variable is
# set, which CPack would put before both).
set(corona_deb_long "corona gives each thread its own bins of 16 KB slab blocks, without locks
or atomic read-modify-write instructions on the fast path, and a free from
another thread costs one CAS.  It replaces malloc, free and C++ new and
delete in any program that links it or preloads it.")

set(CPACK_DEBIAN_RUNTIME_PACKAGE_NAME libcorona${PROJECT_VERSION_MAJOR})
set(CPACK_DEBIAN_RUNTIME_PACKAGE_SECTION libs)
set(CPACK_DEBIAN_RUNTIME_DESCRIPTION "scalable general-purpose memory allocator (shared library)
${corona_deb_long}

This package holds the shared library and corona-run, which runs a program
with corona preloaded.")
# Depends: from dpkg-shlibdeps (libc6); shlibs: programs linked with
# libcorona.so.0 depend on this version or a later one.  The linker's cache
# must learn of the library so that a program finds it without an rpath:
# the triggers file asks libc for ldconfig, Debian's way (lintian wants it);
# CPack's own postinst and postrm, generated for any library in /usr/lib,
# call ldconfig as well, which costs a second run and a lintian warning.
set(CPACK_DEBIAN_RUNTIME_PACKAGE_CONTROL_EXTRA ${CMAKE_CURRENT_LIST_DIR}/deb/triggers)
set(CPACK_DEBIAN_RUNTIME_PACKAGE_SHLIBDEPS ON)
set(CPACK_DEBIAN_PACKAGE_GENERATE_SHLIBS ON)
set(CPACK_DEBIAN_PACKAGE_GENERATE_SHLIBS_POLICY ">=")

set(CPACK_DEBIAN_DEV_PACKAGE_NAME libcorona-dev)
set(CPACK_DEBIAN_DEV_PACKAGE_SECTION libdevel)
# The headers and the static library match one build of the shared library.
set(CPACK_DEBIAN_DEV_PACKAGE_DEPENDS "libcorona${PROJECT_VERSION_MAJOR} (= ${corona_deb_version})")
set(CPACK_DEBIAN_DEV_DESCRIPTION "scalable general-purpose memory allocator (development files)
${corona_deb_long}

This package holds corona.h, the static library, the libcorona.so link, the
pkg-config file corona.pc and the CMake package (find_package(corona)).")

include(CPack)
