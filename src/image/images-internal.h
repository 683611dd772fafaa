/* SPDX-License-Identifier: Apache-2.0 */
#pragma once
/*
 * What images.c shares with the other files of the image database
 * (unpack.c): the names inside the store and its locks.
 */
#include "base/compat.h"
#include "base/error.h"
#include "image/store.h"

#define LAYERS_LOCK "layers.lock"
#define LAYERS_DIR "layers"
#define LAYER_TMP_PREFIX ".tmp-"

/* flock(op) of <store>/<name>, created when absent. */
MOAT_NODISCARD int moat_images_store_lock(struct moat_store *s, const char *name, int op, int *ret_fd,
                                          struct moat_error **reterr);
/* Remove name inside dfd recursively, never following a symlink. */
int moat_images_rm_rf_at(int dfd, const char *name, unsigned depth);
/* A new, empty temp directory layers/.tmp-<random> (mode 0700). */
MOAT_NODISCARD int moat_images_layer_tmp_create(int layers_fd, char ret_name[static 32], struct moat_error **reterr);
