/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

/*
 * A directory tree (a container's merged root) as an uncompressed tar, the
 * stream behind `docker export` and `docker cp` out of a container.
 *
 * The tree is walked by fd only: each entry is opened relative to its
 * parent's fd with O_NOFOLLOW, one component at a time, so a symlink
 * (to /etc/passwd, to "../../..") is archived as a symlink and never
 * followed, whatever the tree holds. Entries are sorted by name in each
 * directory, so the same tree gives the same bytes. Names are relative
 * ("bin/sh", directories "bin/"), the root itself is not an entry, as in
 * docker export. Kept: regular files, directories, symlinks, hard links
 * (a second name of an inode already written becomes a hard link entry),
 * char and block devices, fifos; ownership (numbers), modes with setuid,
 * setgid and sticky bits, mtimes (whole seconds, as docker writes them)
 * and extended attributes except trusted.overlay.*. Skipped: sockets,
 * overlay whiteouts (char 0/0) and entries that vanish while the tree is
 * walked. A regular file that changes size while it is read is written
 * at the size it had when opened (cut or zero-padded).
 */

#include "base/compat.h"
#include "base/error.h"

#define MOAT_EXPORT_DEPTH_MAX 512u

struct moat_export_options {
        unsigned max_depth; /* directories below the root; 0: MOAT_EXPORT_DEPTH_MAX */
};

struct moat_export_result {
        uint64_t entries;
        uint64_t bytes; /* of regular file contents */
};

/* Write the tree under dir_fd to out_fd. A tree deeper than max_depth is
 * -ELOOP naming the path; ret may be NULL. */
MOAT_NODISCARD int moat_export_tree(int dir_fd, int out_fd, const struct moat_export_options *opts,
                                    struct moat_export_result *ret, struct moat_error **reterr);
