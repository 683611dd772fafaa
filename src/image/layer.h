/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

/*
 * Unpacking one image layer (tar, tar+gzip, tar+zstd) into a directory,
 * streaming: decompress, hash (the compressed digest and the DiffID of the
 * uncompressed tar) and write in one pass. The layer tree is in overlayfs
 * form: ".wh.<name>" entries become whiteouts (char device 0/0) and
 * ".wh..wh..opq" makes its directory opaque (trusted.overlay.opaque="y").
 *
 * A hostile layer cannot touch anything outside its tree: every path is
 * resolved by fd inside the tree (openat2 RESOLVE_IN_ROOT), ".." and
 * absolute names are contained, symlink targets are never followed while
 * unpacking, hardlinks only point inside the same tree, device nodes only
 * when allowed; ownership, modes, times, setuid bits and xattrs
 * (security.capability among them) are kept as in the archive.
 */

#include "base/compat.h"
#include "base/error.h"

struct moat_layer_options {
        bool allow_devices;   /* create char/block nodes (root, not in a user namespace) */
        bool keep_ownership;  /* chown to the archive's uid/gid (root) */
        int64_t max_entries;  /* bound on entries (0: default 1,000,000) */
        int64_t max_bytes;    /* bound on uncompressed bytes (0: default 64 GiB) */
};

struct moat_layer_result {
        char compressed_digest[80];   /* "sha256:..." of the bytes read */
        char diff_id[80];             /* "sha256:..." of the uncompressed tar */
        uint64_t entries;
        uint64_t uncompressed_size;
};

/*
 * Unpack the layer read from in_fd into the directory dir_fd (which must
 * be empty or an existing layer tree being built). The compression is
 * detected from the stream. Errors name the entry and the problem
 * ("layer entry \"../etc/passwd\": path leaves the layer").
 */
MOAT_NODISCARD int moat_layer_unpack(int in_fd, int dir_fd, const struct moat_layer_options *opts,
                                     struct moat_layer_result *ret, struct moat_error **reterr);
