# The PostgreSQL backend's sources and the store contract suite, for the top-level CMakeLists.
# Link the library with PostgreSQL::PostgreSQL (find_package(PostgreSQL REQUIRED)).
set(FAV_PG_SOURCES
    ${CMAKE_CURRENT_LIST_DIR}/pg_conn.cpp
    ${CMAKE_CURRENT_LIST_DIR}/pg_pool.cpp
    ${CMAKE_CURRENT_LIST_DIR}/pg_migrations.cpp
    ${CMAKE_CURRENT_LIST_DIR}/pg_store.cpp)
set(FAV_STORE_TESTS ${CMAKE_CURRENT_LIST_DIR}/../../tests/store/test_store_contract.cpp)
