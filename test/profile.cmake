# test/profile.cmake — heap profiling (issue 17), included by CMakeLists.txt.
#   profile_exact, profile_memo, profile_sizes, profile_bound, profile_churn, profile_threads  test_profile.c parts (every build:
#             sanitizers included)
#   profile_debug   debug mode refuses profiling (MALLOC_DEBUG=1)
#   profile_pprof   test_profile.sh: the accuracy workload read back by
#             google-pprof --text (in-use and allocated bytes of three
#             functions within 15 %), the leak report naming the leaking
#             function first, and python3 under LD_PRELOAD (the profile's
#             in-use total within 15 % of corona_stats' memory in use);
#             exit 77 without google-pprof (Debian's google-perftools,
#             installed by scripts/deps)
# test_profile links the shared library (corona leaves its own frames out
# of the stacks there) and exports its functions, so dladdr names them.
add_executable(test_profile test_profile.c)
target_link_libraries(test_profile PRIVATE corona Threads::Threads ${CMAKE_DL_LIBS} m)
target_include_directories(test_profile PRIVATE ${CMAKE_CURRENT_SOURCE_DIR})
set_target_properties(test_profile PROPERTIES ENABLE_EXPORTS ON)
add_test(NAME profile_exact COMMAND test_profile exact)
add_test(NAME profile_memo COMMAND test_profile memo)
add_test(NAME profile_sizes COMMAND test_profile sizes)
add_test(NAME profile_bound COMMAND test_profile bound)
add_test(NAME profile_churn COMMAND test_profile churn)
add_test(NAME profile_threads COMMAND test_profile threads)
add_test(NAME profile_debug COMMAND test_profile debug)
set_tests_properties(profile_exact profile_memo profile_sizes profile_bound profile_churn profile_threads profile_debug PROPERTIES TIMEOUT ${CORONA_TEST_TIMEOUT}
  SKIP_RETURN_CODE 77)
set_tests_properties(profile_debug PROPERTIES ENVIRONMENT "MALLOC_DEBUG=1")
if(CORONA_SANITIZE STREQUAL "" AND CORONA_OVERRIDE AND NOT CMAKE_CROSSCOMPILING)
  add_test(NAME profile_pprof COMMAND bash ${CMAKE_CURRENT_SOURCE_DIR}/test_profile.sh $<TARGET_FILE:test_profile>
    $<TARGET_FILE:corona>)
  set_tests_properties(profile_pprof PROPERTIES TIMEOUT ${CORONA_TEST_TIMEOUT} SKIP_RETURN_CODE 77)
endif()
