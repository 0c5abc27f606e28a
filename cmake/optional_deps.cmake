# minidl's dependencies beyond the compiler, split by what a bare machine (the GPU machine of scripts/gpu-check:
# nvcc, CMake, ninja, Python wheels, no Debian -dev packages, no network) can provide.
#
# Optional libraries: found -> used and MINIDL_HAVE_<X> defined on the library; absent -> a STATUS line saying
# what is off, and the feature throws one clear minidl::Error at run time (core/build_features.h). Hide one on
# purpose with -DCMAKE_DISABLE_FIND_PACKAGE_<name>=ON, <name> one of ZLIB, TURBOJPEG, LIBJPEG, STB, Gloo
# (honoured for the pkg-config ones too). The Debian build (scripts/setup) finds them all.
#
# Header-only libraries (doctest for tests/, CLI11 for examples/ and bench/, nlohmann-json for safetensors): the
# Debian package's CMake config, else a copy staged by scripts/stage-gpu-deps in MINIDL_DEPS_DIR.

set(MINIDL_DEPS_DIR "" CACHE PATH
    "Header-only dependencies staged by scripts/stage-gpu-deps (doctest, CLI11, nlohmann-json), for a machine without their Debian packages")
find_package(PkgConfig QUIET)

# minidl_pkg_dep(<prefix> <module>): pkg_check_modules(<prefix> QUIET IMPORTED_TARGET <module>) unless pkg-config
# is missing or -DCMAKE_DISABLE_FIND_PACKAGE_<prefix>=ON; sets <prefix>_FOUND.
macro(minidl_pkg_dep prefix module)
  set(${prefix}_FOUND FALSE)
  if(PKG_CONFIG_FOUND AND NOT CMAKE_DISABLE_FIND_PACKAGE_${prefix})
    pkg_check_modules(${prefix} QUIET IMPORTED_TARGET ${module})
  endif()
endmacro()

# minidl_feature(<var> <found> <off message>): records a feature and says so when it is off.
set(MINIDL_FEATURE_DEFINITIONS)
macro(minidl_feature var found off_message)
  if(${found})
    set(${var} ON)
    list(APPEND MINIDL_FEATURE_DEFINITIONS ${var}=1)
  else()
    set(${var} OFF)
    message(STATUS "minidl: ${var} OFF: ${off_message}")
  endif()
endmacro()

find_package(ZLIB QUIET)
minidl_feature(MINIDL_HAVE_ZLIB ZLIB_FOUND
  "no zlib: gzip'd IDX files cannot be read, their uncompressed copies can (apt-get install zlib1g-dev)")

minidl_pkg_dep(TURBOJPEG libturbojpeg)
minidl_pkg_dep(LIBJPEG libjpeg)
set(_minidl_jpeg FALSE)
if(TURBOJPEG_FOUND AND LIBJPEG_FOUND)
  set(_minidl_jpeg TRUE)
endif()
minidl_feature(MINIDL_HAVE_JPEG _minidl_jpeg
  "no libjpeg-turbo: JPEG images (image folders, imagenet_resnet18) unavailable (apt-get install libturbojpeg0-dev libjpeg62-turbo-dev)")

minidl_pkg_dep(STB stb)
minidl_feature(MINIDL_HAVE_PNG STB_FOUND "no stb_image: PNG images unavailable (apt-get install libstb-dev)")

find_package(Gloo CONFIG QUIET)  # Debian libgloo-dev: target gloo
set(_minidl_gloo FALSE)
if(TARGET gloo)
  set(_minidl_gloo TRUE)
endif()
minidl_feature(MINIDL_HAVE_GLOO _minidl_gloo
  "no Gloo: distributed/ has no CPU process group, only nccl (CUDA) (apt-get install libgloo-dev)")

# minidl_header_only_dep(<target> <package> <header> <debian package>): <target> from the package's CMake
# config, else an imported target on MINIDL_DEPS_DIR/include; a configure error saying both ways otherwise.
macro(minidl_header_only_dep target package header debian)
  if(NOT TARGET ${target})
    find_package(${package} CONFIG QUIET)
  endif()
  if(TARGET ${target})
    message(STATUS "minidl: ${package} from ${${package}_DIR}")
  else()
    unset(_minidl_hdr_dir)  # find_path(NO_CACHE) skips the search when the variable is set
    if(MINIDL_DEPS_DIR)
      find_path(_minidl_hdr_dir ${header} PATHS "${MINIDL_DEPS_DIR}/include" NO_DEFAULT_PATH NO_CACHE)
    endif()
    if(NOT _minidl_hdr_dir)
      message(FATAL_ERROR "minidl: ${package} not found: apt-get install ${debian}, or stage it with "
                          "`scripts/stage-gpu-deps DIR` on a machine that has it and configure with -DMINIDL_DEPS_DIR=DIR")
    endif()
    add_library(${target} INTERFACE IMPORTED)
    set_target_properties(${target} PROPERTIES INTERFACE_INCLUDE_DIRECTORIES "${_minidl_hdr_dir}")
    message(STATUS "minidl: ${package} from ${_minidl_hdr_dir} (MINIDL_DEPS_DIR)")
  endif()
endmacro()

minidl_header_only_dep(nlohmann_json::nlohmann_json nlohmann_json nlohmann/json.hpp nlohmann-json3-dev)
if(MINIDL_BUILD_TESTS)
  minidl_header_only_dep(doctest::doctest doctest doctest/doctest.h doctest-dev)
  # doctest_discover_tests: the package's config puts doctest.cmake on the module path; a staged copy keeps
  # it in MINIDL_DEPS_DIR/cmake.
  if(MINIDL_DEPS_DIR AND EXISTS "${MINIDL_DEPS_DIR}/cmake/doctest.cmake")
    list(APPEND CMAKE_MODULE_PATH "${MINIDL_DEPS_DIR}/cmake")
  endif()
endif()
if(MINIDL_BUILD_EXAMPLES OR MINIDL_BUILD_BENCH)
  minidl_header_only_dep(CLI11::CLI11 CLI11 CLI/CLI.hpp libcli11-dev)
endif()
message(STATUS "minidl: optional libraries: zlib ${MINIDL_HAVE_ZLIB}, libjpeg-turbo ${MINIDL_HAVE_JPEG}, "
               "stb ${MINIDL_HAVE_PNG}, Gloo ${MINIDL_HAVE_GLOO}")
