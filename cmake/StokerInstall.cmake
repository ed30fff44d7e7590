# What `cmake --install` gives C and C++ users beyond the files each directory
# installs (tests/install checks all of it):
#  - RPATHs, so installed programs find the installed libstoker with no ldconfig;
#  - pkg-config files stoker.pc and stoker-gpu.pc, written for the prefix
#    installed to (`cmake --install BUILD --prefix P` included);
#  - the CMake package: find_package(stoker) gives stoker::stoker and
#    stoker::stoker_gpu;
#  - man pages stokerd(8) and stoker(1), made from --help by help2man.
include(CMakePackageConfigHelpers)

option(STOKER_INSTALL_RPATH "Installed programs and libraries find libstoker through a relative RPATH" ON)
option(STOKER_MAN "Make and install man pages from --help (needs help2man)" ON)

if(IS_ABSOLUTE "${CMAKE_INSTALL_LIBDIR}")
  set(_stk_libdir_abs "${CMAKE_INSTALL_LIBDIR}")
  set(STOKER_PC_LIBDIR "${CMAKE_INSTALL_LIBDIR}")
else()
  set(_stk_libdir_abs "\${CMAKE_INSTALL_PREFIX}/${CMAKE_INSTALL_LIBDIR}")
  set(STOKER_PC_LIBDIR "\${prefix}/${CMAKE_INSTALL_LIBDIR}")
endif()
if(IS_ABSOLUTE "${CMAKE_INSTALL_INCLUDEDIR}")
  set(STOKER_PC_INCLUDEDIR "${CMAKE_INSTALL_INCLUDEDIR}")
else()
  set(STOKER_PC_INCLUDEDIR "\${prefix}/${CMAKE_INSTALL_INCLUDEDIR}")
endif()

if(STOKER_INSTALL_RPATH AND NOT IS_ABSOLUTE "${CMAKE_INSTALL_LIBDIR}"
   AND NOT IS_ABSOLUTE "${CMAKE_INSTALL_BINDIR}")
  file(RELATIVE_PATH _stk_rel "/p/${CMAKE_INSTALL_BINDIR}" "/p/${CMAKE_INSTALL_LIBDIR}")
  foreach(_t stoker-cli stoker-bench stoker-h2d)
    if(TARGET ${_t})
      set_target_properties(${_t} PROPERTIES INSTALL_RPATH "\$ORIGIN/${_stk_rel}")
    endif()
  endforeach()
  set_target_properties(stoker stoker_gpu PROPERTIES INSTALL_RPATH "\$ORIGIN")
endif()
# The CUDA runtime's directory too, where it is not on the loader's path.
set_target_properties(stoker_gpu PROPERTIES INSTALL_RPATH_USE_LINK_PATH ON)

# pkg-config: configured now but for the prefix, which is filled in at
# install time (CMAKE_INSTALL_PREFIX in the install script is --prefix's).
set(STOKER_PC_PREFIX "@CMAKE_INSTALL_PREFIX@")
foreach(_pc stoker stoker-gpu)
  configure_file(${PROJECT_SOURCE_DIR}/cmake/${_pc}.pc.in ${PROJECT_BINARY_DIR}/pkgconfig/${_pc}.pc.in
    @ONLY)
endforeach()
install(CODE "
  foreach(_pc stoker stoker-gpu)
    set(_to \"\$ENV{DESTDIR}${_stk_libdir_abs}/pkgconfig/\${_pc}.pc\")
    message(STATUS \"Installing: \${_to}\")
    configure_file(\"${PROJECT_BINARY_DIR}/pkgconfig/\${_pc}.pc.in\" \"\${_to}\" @ONLY)
    list(APPEND CMAKE_INSTALL_MANIFEST_FILES \"\${_to}\")
  endforeach()
")

# The CMake package.
set(_stk_cmakedir ${CMAKE_INSTALL_LIBDIR}/cmake/stoker)
install(EXPORT stokerTargets NAMESPACE stoker:: DESTINATION ${_stk_cmakedir})
configure_package_config_file(${PROJECT_SOURCE_DIR}/cmake/stokerConfig.cmake.in
  ${PROJECT_BINARY_DIR}/cmake/stokerConfig.cmake INSTALL_DESTINATION ${_stk_cmakedir})
# SOVERSION 0 is the ABI promise: any 0.x that is at least the version asked for.
write_basic_package_version_file(${PROJECT_BINARY_DIR}/cmake/stokerConfigVersion.cmake
  VERSION ${PROJECT_VERSION} COMPATIBILITY SameMajorVersion)
install(FILES ${PROJECT_BINARY_DIR}/cmake/stokerConfig.cmake
  ${PROJECT_BINARY_DIR}/cmake/stokerConfigVersion.cmake DESTINATION ${_stk_cmakedir})

# Man pages, from the programs' own --help and --version, so they cannot drift.
if(STOKER_MAN)
  find_program(HELP2MAN help2man)
  if(NOT HELP2MAN)
    message(WARNING "help2man not found (Debian: help2man; scripts/deps.sh installs it): "
      "the man pages stokerd(8) and stoker(1) are not made")
  else()
    set(_stk_man ${PROJECT_BINARY_DIR}/man)
    add_custom_command(OUTPUT ${_stk_man}/stokerd.8
      COMMAND ${CMAKE_COMMAND} -E make_directory ${_stk_man}
      COMMAND ${CMAKE_COMMAND} -E env STK_H2M_PROG=$<TARGET_FILE:stokerd>
        ${HELP2MAN} --no-info --section=8
        "--name=dataset prefetch daemon: objects to RAM ahead of need, handed over in shared memory"
        --include=${PROJECT_SOURCE_DIR}/cmake/stokerd.h2m
        --output=${_stk_man}/stokerd.8 ${PROJECT_SOURCE_DIR}/cmake/help2man-run.sh
      DEPENDS stokerd ${PROJECT_SOURCE_DIR}/cmake/stokerd.h2m ${PROJECT_SOURCE_DIR}/cmake/help2man-run.sh
      VERBATIM)
    add_custom_command(OUTPUT ${_stk_man}/stoker.1
      COMMAND ${CMAKE_COMMAND} -E make_directory ${_stk_man}
      COMMAND ${CMAKE_COMMAND} -E env STK_H2M_PROG=$<TARGET_FILE:stoker-cli>
        ${HELP2MAN} --no-info --section=1
        "--name=list, read, warm and watch datasets through stokerd"
        --include=${PROJECT_SOURCE_DIR}/cmake/stoker.h2m
        --output=${_stk_man}/stoker.1 ${PROJECT_SOURCE_DIR}/cmake/help2man-run.sh
      DEPENDS stoker-cli ${PROJECT_SOURCE_DIR}/cmake/stoker.h2m ${PROJECT_SOURCE_DIR}/cmake/help2man-run.sh
      VERBATIM)
    add_custom_target(man ALL DEPENDS ${_stk_man}/stokerd.8 ${_stk_man}/stoker.1)
    install(FILES ${_stk_man}/stokerd.8 DESTINATION ${CMAKE_INSTALL_MANDIR}/man8)
    install(FILES ${_stk_man}/stoker.1 DESTINATION ${CMAKE_INSTALL_MANDIR}/man1)
  endif()
endif()
