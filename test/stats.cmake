# test/stats.cmake — issue 6: statistics and Valgrind (included from
# test/CMakeLists.txt).
#   stats           test_stats.c: exact counter deltas (per bin, large,
#                   cache hits/misses, cross-thread frees, exited threads),
#                   small calls counted only while counting is on (and
#                   exactly from the moment it is switched on), memory in
#                   use / peak / mapped, corona_stats_print, and the
#                   MALLOC_STATS=1 report at exit of a child process, its
#                   label (program and pid), STATS_FILE, a pipeline of 40
#                   processes, corona_stats_print_json; with
#                   CORONA_STATS=OFF it checks ENOTSUP and skips the rest
#   stats_preload   python3 (else perl), which knows nothing of corona, run
#                   with LD_PRELOAD=libcorona.so MALLOC_STATS=1 prints the
#                   report at exit (not with a sanitizer or without the
#                   override: the library must export malloc uninstrumented)
#   valgrind_*      (label "valgrind") memcheck on corona's objects, through
#                   the client requests (CORONA_VALGRIND): see
#                   valgrind/run.sh.  Each of the programs leaky, faulty,
#                   clean and aligned (a clean one: posix_memalign, usable
#                   size, free, with reuse of aligned large objects) runs
#                   linked with libcorona.a calling corona_* (valgrind_leaks,
#                   valgrind_errors, valgrind_clean, valgrind_aligned), and as
#                   a plain malloc program under LD_PRELOAD=libcorona.so
#                   (the same names + _preload); valgrind_leaks_default runs
#                   the static one with memcheck's default options (its own
#                   malloc replacement serves the standard names there, and
#                   corona_* still reports through corona).  Only when
#                   valgrind is found, without a sanitizer, and with the
#                   client requests compiled in (CORONA_VALGRIND_ON).

corona_add_test(test_stats test_stats.c corona_static)

if(CORONA_SANITIZE STREQUAL "" AND NOT WIN32 AND (NOT DEFINED CORONA_OVERRIDE OR CORONA_OVERRIDE))
  # corona_preload_target: see test/CMakeLists.txt.
  add_test(NAME stats_preload COMMAND test_stats preload $<TARGET_FILE:corona> ${corona_preload_target})
  set_tests_properties(stats_preload PROPERTIES TIMEOUT ${CORONA_TEST_TIMEOUT} SKIP_RETURN_CODE 77)

  # ---- issue 16: glibc's introspection names (mallinfo2, mallinfo,
  # malloc_trim, malloc_stats, malloc_info, mallopt) answered by corona, see
  # test_introspect.c: linked with libcorona.a (introspect), a plain program
  # under LD_PRELOAD=libcorona.so (introspect_preload), linked fully
  # statically where the C library comes as libc.a (introspect_full_static),
  # and the plain program on glibc alone (introspect_glibc: the schema check
  # of malloc_info accepts glibc's own XML).  Decay is held off so that
  # nothing cached goes back on its own while a part measures, and so is the
  # purger, whose start allocates (glibc's TLS block for its thread) in the
  # middle of a part's figures.
  set(introspect_env "CORONA_DECAY_MS=100000;CORONA_BACKGROUND_PURGE=0")
  corona_add_test(test_introspect test_introspect.c corona_static)
  set_tests_properties(introspect PROPERTIES ENVIRONMENT "${introspect_env}")
  add_executable(introspect_plain test_introspect.c)
  target_compile_definitions(introspect_plain PRIVATE INTROSPECT_PLAIN)
  target_include_directories(introspect_plain PRIVATE ${CMAKE_CURRENT_SOURCE_DIR} ${PROJECT_SOURCE_DIR}/include)
  target_link_libraries(introspect_plain PRIVATE ${CMAKE_DL_LIBS})
  add_dependencies(introspect_plain corona) # preloaded
  add_test(NAME introspect_preload COMMAND introspect_plain)
  set_tests_properties(introspect_preload PROPERTIES TIMEOUT ${CORONA_TEST_TIMEOUT}
    ENVIRONMENT "${introspect_env};LD_PRELOAD=$<TARGET_FILE:corona>")
  add_test(NAME introspect_glibc COMMAND introspect_plain --glibc)
  set_tests_properties(introspect_glibc PROPERTIES TIMEOUT ${CORONA_TEST_TIMEOUT})
  include(CheckCSourceCompiles)
  set(CMAKE_REQUIRED_LINK_OPTIONS -static)
  check_c_source_compiles("#include <stdio.h>\nint main(void) { puts(\"\"); return 0; }" CORONA_HAVE_STATIC_LIBC)
  unset(CMAKE_REQUIRED_LINK_OPTIONS)
  if(CORONA_HAVE_STATIC_LIBC)
    add_executable(introspect_full_static test_introspect.c)
    target_include_directories(introspect_full_static PRIVATE ${CMAKE_CURRENT_SOURCE_DIR})
    target_link_libraries(introspect_full_static PRIVATE corona_static Threads::Threads)
    target_link_options(introspect_full_static PRIVATE -static)
    add_test(NAME introspect_full_static COMMAND introspect_full_static)
    set_tests_properties(introspect_full_static PROPERTIES TIMEOUT ${CORONA_TEST_TIMEOUT}
      ENVIRONMENT "${introspect_env}")
  else()
    message(STATUS "corona: no static C library (libc.a); introspect_full_static is left out")
  endif()
elseif(NOT WIN32 AND (NOT DEFINED CORONA_OVERRIDE OR CORONA_OVERRIDE))
  # Under a sanitizer, whose runtime owns malloc and glibc's names, corona
  # replaces neither: the same checks run on the same code (src/introspect.c
  # built into the test) under other names, with corona_malloc as the
  # test's malloc (INTROSPECT_RENAMED).
  set(introspect_renames mallinfo2=crt_mallinfo2 mallinfo=crt_mallinfo malloc_trim=crt_malloc_trim
    malloc_stats=crt_malloc_stats malloc_info=crt_malloc_info mallopt=crt_mallopt)
  add_executable(test_introspect test_introspect.c ${PROJECT_SOURCE_DIR}/src/introspect.c)
  target_include_directories(test_introspect PRIVATE ${CMAKE_CURRENT_SOURCE_DIR} ${PROJECT_SOURCE_DIR}/src)
  target_compile_definitions(test_introspect PRIVATE ${introspect_renames} INTROSPECT_RENAMED _GNU_SOURCE
    CORONA_STATS=$<BOOL:${CORONA_STATS}>)
  target_link_libraries(test_introspect PRIVATE corona_static Threads::Threads)
  add_test(NAME introspect COMMAND test_introspect)
  set_tests_properties(introspect PROPERTIES TIMEOUT ${CORONA_TEST_TIMEOUT} ENVIRONMENT
    "CORONA_DECAY_MS=100000;CORONA_BACKGROUND_PURGE=0")
endif()

# ---- Valgrind ---------------------------------------------------------------
# A cross build's programs run under qemu-user, and valgrind cannot run a
# program inside another emulator: every valgrind test is a visible skip.
if(CMAKE_CROSSCOMPILING)
  foreach(name leaks leaks_default errors clean aligned leaks_preload errors_preload clean_preload aligned_preload)
    corona_skip_test(valgrind_${name} "valgrind cannot run a program under qemu-user (no ${CMAKE_SYSTEM_PROCESSOR} valgrind here)"
      LABELS valgrind)
  endforeach()
  return()
endif()
find_program(VALGRIND valgrind)
if(NOT VALGRIND)
  message(STATUS "corona: valgrind not found; the valgrind tests are left out (Debian: apt-get install valgrind)")
  return()
endif()
if(NOT CORONA_SANITIZE STREQUAL "")
  return() # a sanitizer's runtime and memcheck do not mix
endif()
if(NOT CORONA_VALGRIND_ON)
  message(STATUS "corona: CORONA_VALGRIND is off; the valgrind tests are left out")
  return()
endif()

find_program(CORONA_BASH bash)
if(NOT CORONA_BASH)
  set(CORONA_BASH bash)
endif()
set(vg_dir ${CMAKE_CURRENT_SOURCE_DIR}/valgrind)
set(vg_override ON)
if(DEFINED CORONA_OVERRIDE AND NOT CORONA_OVERRIDE)
  set(vg_override OFF)
endif()
set(vg_preload ON)
if(WIN32 OR (DEFINED CORONA_OVERRIDE AND NOT CORONA_OVERRIDE))
  set(vg_preload OFF)
endif()

foreach(prog leaky faulty clean aligned)
  # -O0 -g: memcheck's reports name the program's lines; nothing is optimised away.
  # DWARF 4: valgrind 3.19 (Debian 12) cannot read the DWARF 5 forms clang
  # writes by default (DW_FORM_addrx), and its reports then name no function.
  add_executable(vg_${prog} valgrind/vg_${prog}.c)
  target_compile_definitions(vg_${prog} PRIVATE VG_API_CORONA)
  target_compile_options(vg_${prog} PRIVATE -O0 -g -gdwarf-4)
  target_link_libraries(vg_${prog} PRIVATE corona_static Threads::Threads)
  add_executable(vg_${prog}_plain valgrind/vg_${prog}.c)
  target_compile_definitions(vg_${prog}_plain PRIVATE VG_API_PLAIN)
  target_compile_options(vg_${prog}_plain PRIVATE -O0 -g -gdwarf-4)
  target_link_libraries(vg_${prog}_plain PRIVATE Threads::Threads)
  add_dependencies(vg_${prog}_plain corona) # preloaded
endforeach()

function(vg_test name kind mode program)
  add_test(NAME ${name} COMMAND ${CORONA_BASH} ${vg_dir}/run.sh ${kind} ${mode} $<TARGET_FILE:${program}>
    $<TARGET_FILE:corona> ${VALGRIND} ${vg_override})
  set_tests_properties(${name} PROPERTIES TIMEOUT ${CORONA_TEST_TIMEOUT} LABELS valgrind SKIP_RETURN_CODE 77)
endfunction()

vg_test(valgrind_leaks leaks static vg_leaky)
vg_test(valgrind_leaks_default leaks default vg_leaky)
vg_test(valgrind_errors errors static vg_faulty)
vg_test(valgrind_clean clean static vg_clean)
vg_test(valgrind_aligned clean static vg_aligned)
if(vg_preload)
  vg_test(valgrind_leaks_preload leaks preload vg_leaky_plain)
  vg_test(valgrind_errors_preload errors preload vg_faulty_plain)
  vg_test(valgrind_clean_preload clean preload vg_clean_plain)
  vg_test(valgrind_aligned_preload clean preload vg_aligned_plain)
endif()
