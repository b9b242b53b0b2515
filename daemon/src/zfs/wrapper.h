/* The headers that build.rs generates Rust declarations from. */
#include <libzfs.h>
#include <libzfs_core.h>
#include <libnvpair.h>
