# Helper functions shared by every target: warnings, generated protos, embedded SQL.

# kp_warnings(target): the project's warning set on one target.
function(kp_warnings target)
  target_compile_options(${target} PRIVATE -Wall -Wextra -Wpedantic -Wno-unused-parameter)
  if(KP_WERROR)
    target_compile_options(${target} PRIVATE -Werror)
  endif()
endfunction()

# kp_proto_library(NAME name PROTOS a.proto ... [GRPC]): one static library of generated code,
# built once and linked by everything that needs it (kept out of the hot rebuild path).
function(kp_proto_library)
  cmake_parse_arguments(ARG "GRPC" "NAME" "PROTOS;DEPS" ${ARGN})
  set(srcs)
  set(gen_dir ${CMAKE_BINARY_DIR}/gen)
  foreach(proto ${ARG_PROTOS})
    get_filename_component(abs ${proto} ABSOLUTE)
    file(RELATIVE_PATH rel ${KP_PROTO_ROOT} ${abs})
    string(REGEX REPLACE "\\.proto$" "" base ${rel})
    set(outs ${gen_dir}/${base}.pb.cc ${gen_dir}/${base}.pb.h)
    set(plugin_args)
    if(ARG_GRPC)
      list(APPEND outs ${gen_dir}/${base}.grpc.pb.cc ${gen_dir}/${base}.grpc.pb.h)
      set(plugin_args --grpc_out=${gen_dir}
          --plugin=protoc-gen-grpc=$<TARGET_FILE:gRPC::grpc_cpp_plugin>)
    endif()
    add_custom_command(
      OUTPUT ${outs}
      COMMAND ${CMAKE_COMMAND} -E make_directory ${gen_dir}
      COMMAND protobuf::protoc --cpp_out=${gen_dir} ${plugin_args}
              -I ${KP_PROTO_ROOT} -I ${Protobuf_INCLUDE_DIRS} ${abs}
      DEPENDS ${abs} protobuf::protoc
      COMMENT "protoc ${rel}")
    list(FILTER outs INCLUDE REGEX "\\.cc$")
    list(APPEND srcs ${outs})
  endforeach()
  add_library(${ARG_NAME} STATIC ${srcs})
  target_include_directories(${ARG_NAME} SYSTEM PUBLIC ${gen_dir})
  target_link_libraries(${ARG_NAME} PUBLIC protobuf::libprotobuf gRPC::grpc++ ${ARG_DEPS})
endfunction()

# kp_embed_sql(OUT_VAR namespace files...): generates a .cc defining
# `const std::vector<kp::storage::Migration>& <namespace>::Migrations()` from numbered SQL
# files (NNNN_description.sql), so a binary carries its schema with it. Files in a directory
# named `postgresql` are that dialect's versions of the same migrations; the rest are SQLite's.
function(kp_embed_sql out_var ns)
  set(body "")
  foreach(f ${ARGN})
    get_filename_component(abs ${f} ABSOLUTE)
    get_filename_component(fname ${f} NAME_WE)
    get_filename_component(dir ${abs} DIRECTORY)
    get_filename_component(dir ${dir} NAME)
    if(dir STREQUAL "postgresql")
      set(dialect "kp::storage::Dialect::kPostgres")
    else()
      set(dialect "kp::storage::Dialect::kSqlite")
    endif()
    string(REGEX MATCH "^[0-9]+" version ${fname})
    string(REGEX REPLACE "^[0-9]+_" "" desc ${fname})
    math(EXPR version "${version} + 0")
    file(READ ${abs} sql)
    string(APPEND body "    {${version}, \"${desc}\", R\"kpsql(${sql})kpsql\", ${dialect}},\n")
    set_property(DIRECTORY APPEND PROPERTY CMAKE_CONFIGURE_DEPENDS ${abs})
  endforeach()
  set(out ${CMAKE_CURRENT_BINARY_DIR}/${ns}_migrations.cc)
  string(REPLACE "::" "_" _unused ${ns})
  file(CONFIGURE OUTPUT ${out} CONTENT
"// Generated from migrations/*.sql by kp_embed_sql; do not edit.
#include \"common/storage/migrations.h\"
namespace ${ns} {
const std::vector<kp::storage::Migration>& Migrations() {
  static const auto* kMigrations = new std::vector<kp::storage::Migration>{
${body}  };
  return *kMigrations;
}
}  // namespace ${ns}
" @ONLY)
  set(${out_var} ${out} PARENT_SCOPE)
endfunction()

# kp_service(NAME events SOURCES a.cc ...): a backend's object library (kp_<name>_lib, linked by
# the binary and its tests, with its SQL migrations — migrations/*.sql for SQLite and
# migrations/postgresql/*.sql — embedded as <ns>::Migrations()) and its binary kp-<name>.
# kp_fast_malloc(target): links tcmalloc into a server (not under the sanitizers).
function(kp_fast_malloc target)
  if(NOT KP_SANITIZE)
    target_link_options(${target} PRIVATE "LINKER:--no-as-needed")
    target_link_libraries(${target} PRIVATE PkgConfig::TCMALLOC)
  endif()
endfunction()

function(kp_service)
  cmake_parse_arguments(ARG "" "NAME" "SOURCES" ${ARGN})
  # Every service also keeps the shared audit log (common/resource/migrations).
  # PostgreSQL's versions of both live in their migrations/postgresql directories.
  file(GLOB common_migrations CONFIGURE_DEPENDS ${PROJECT_SOURCE_DIR}/common/resource/migrations/*.sql
                              ${PROJECT_SOURCE_DIR}/common/resource/migrations/postgresql/*.sql)
  file(GLOB own_migrations CONFIGURE_DEPENDS ${CMAKE_CURRENT_SOURCE_DIR}/migrations/*.sql
                           ${CMAKE_CURRENT_SOURCE_DIR}/migrations/postgresql/*.sql)
  kp_embed_sql(migrations_cc "kp::${ARG_NAME}" ${own_migrations} ${common_migrations})
  add_library(kp_${ARG_NAME}_lib STATIC ${ARG_SOURCES} ${migrations_cc})
  target_link_libraries(kp_${ARG_NAME}_lib PUBLIC kp_common)
  kp_warnings(kp_${ARG_NAME}_lib)
  add_executable(kp-${ARG_NAME} main.cc)
  target_link_libraries(kp-${ARG_NAME} PRIVATE kp_${ARG_NAME}_lib kp_service_main)
  kp_fast_malloc(kp-${ARG_NAME})
  kp_warnings(kp-${ARG_NAME})
endfunction()
