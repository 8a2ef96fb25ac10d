# test/pool.cmake — issue 7: memory pools (corona_pool_*).  Included from
# test/CMakeLists.txt (corona_add_test is defined there).  One program,
# test_pool.c, run once per group so that a failure names its area:
#   pool_errors     EINVAL for bad policies, NULL and destroyed pools; misuse
#                   (destroyed/NULL pool in debug mode, an object freed or
#                   reallocated through the wrong pool) aborts in a child with
#                   one "corona: " line naming the call and the pool or object
#   pool_fixed      fixed pools over a static buffer (aligned, misaligned,
#                   two regions): raw_alloc once, >= 85 % of the buffer usable,
#                   fill to ENOMEM, recovery after frees, reset rounds
#   pool_growing    raw_alloc/raw_free accounting (exact pairs), keep_all_memory,
#                   failing raw_alloc, realloc/calloc/aligned, misaligned raw
#                   memory, raw memory from corona_malloc (child)
#   pool_threads    8 pools x 4 threads, cross-thread frees and reallocs,
#                   resets while the threads wait, identify/usable_size
#   pool_lifecycle  1000 create/destroy cycles, 255 pools at once, threads
#                   exiting before destroy and outliving their pool, destroy
#                   racing create
#   debug_pool      fixed, growing, threads and lifecycle again under
#                   MALLOC_DEBUG=1 (via test_debug clean-run): pools are not
#                   wrapped, but corona_free/usable_size/identify of their
#                   objects go through debug mode's paths
# Work scales with CRTEST_SCALE (sanitizer builds run less by default).

# Not corona_add_test: that would also register the whole program as one
# test, which the groups below already cover.
add_executable(test_pool test_pool.c)
target_link_libraries(test_pool PRIVATE corona_static Threads::Threads)
target_include_directories(test_pool PRIVATE ${CMAKE_CURRENT_SOURCE_DIR})
foreach(group errors fixed growing threads lifecycle)
  add_test(NAME pool_${group} COMMAND test_pool ${group})
  set_tests_properties(pool_${group} PROPERTIES TIMEOUT ${CORONA_TEST_TIMEOUT})
endforeach()

if(TARGET test_debug)
  add_test(NAME debug_pool COMMAND test_debug clean-run $<TARGET_FILE:test_pool> fixed growing threads lifecycle)
  set_tests_properties(debug_pool PROPERTIES TIMEOUT ${CORONA_TEST_TIMEOUT})
endif()
