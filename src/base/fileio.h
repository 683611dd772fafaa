/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

/*
 * Whole-file and whole-buffer I/O with bounds: every read of something a
 * client controls names its maximum size, and state files are replaced
 * atomically (temp file, fsync, rename) so a crash never leaves half a file.
 */

#include "base/compat.h"

/* Read everything from fd (at most max bytes; -EFBIG beyond). The buffer is
 * NUL-terminated; *ret_size excludes the NUL. */
MOAT_NODISCARD int read_full_fd(int fd, size_t max, char **ret, size_t *ret_size);

/* Read a file relative to dir_fd (AT_FDCWD allowed), bounded by max. */
MOAT_NODISCARD int read_full_file_at(int dir_fd, const char *path, size_t max, char **ret, size_t *ret_size);

MOAT_NODISCARD int write_all(int fd, const void *buf, size_t len);

/* Write a small string to an existing file (sysfs/procfs/cgroupfs style). */
MOAT_NODISCARD int write_string_file_at(int dir_fd, const char *path, const char *s);

/* Create or replace dir_fd/name with the given content: temp file in the
 * same directory, fsync, rename. */
MOAT_NODISCARD int write_file_atomic_at(int dir_fd, const char *name, const void *buf, size_t len, mode_t mode);

/* The same without the fsync: readers never see half a file, but a crash
 * may lose the write. For state that does not outlive the machine anyway
 * (the runtime's state on /run), where an fsync per container start costs
 * more than it protects. */
MOAT_NODISCARD int write_file_replace_at(int dir_fd, const char *name, const void *buf, size_t len, mode_t mode);

/* openat2(2), again while it fails with EAGAIN: a lookup with ".." under
 * RESOLVE_IN_ROOT or RESOLVE_BENEATH fails so when a rename or mount
 * anywhere on the system raced with it. Returns the fd or -errno. */
struct open_how;
int moat_openat2(int dir_fd, const char *path, const struct open_how *how);
