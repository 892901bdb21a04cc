# tern_embed(OUT_C VAR_NAME FILE): write a C file defining
#   const char VAR_NAME[] = "<file contents>";
# at configure time; editing FILE re-runs the configure step.
function(tern_embed out_c var_name file)
  file(READ "${file}" hex HEX)
  string(REGEX REPLACE "([0-9a-f][0-9a-f])" "0x\\1," bytes "${hex}")
  file(WRITE "${out_c}.tmp"
       "/* generated from ${var_name} by cmake/embed.cmake; do not edit */\n"
       "const char ${var_name}[] = {${bytes} 0x00};\n")
  file(COPY_FILE "${out_c}.tmp" "${out_c}" ONLY_IF_DIFFERENT)
  set_property(DIRECTORY APPEND PROPERTY CMAKE_CONFIGURE_DEPENDS "${file}")
endfunction()
