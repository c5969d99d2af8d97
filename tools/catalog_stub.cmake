# catalog-stub: fakestore-compatible catalog stub with fault injection (tests, bench, demo).
# include() from the top-level CMakeLists.txt; FAV_ROOT may be set to point elsewhere.
if(NOT DEFINED FAV_ROOT)
  set(FAV_ROOT ${CMAKE_CURRENT_SOURCE_DIR})
endif()

find_package(Boost 1.81 REQUIRED COMPONENTS json system)
find_package(Threads REQUIRED)

add_executable(catalog-stub ${FAV_ROOT}/tools/catalog_stub.cpp)
target_compile_features(catalog-stub PRIVATE cxx_std_20)
set_target_properties(catalog-stub PROPERTIES CXX_EXTENSIONS OFF)
target_compile_options(catalog-stub PRIVATE -Wall -Wextra -Wpedantic)
target_link_libraries(catalog-stub PRIVATE Boost::json Boost::system Threads::Threads)
