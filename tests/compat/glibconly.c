/* A library that calls a function only glibc has. */
#include <gnu/libc-version.h>

const char *libc_version(void) { return gnu_get_libc_version(); }
