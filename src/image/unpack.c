/* SPDX-License-Identifier: Apache-2.0 */
#include "base/compat.h"

/*
 * Unpacking an image's layers into the ChainID-keyed cache of images.h
 * (see moat_images_unpack there): each missing tree is unpacked into a
 * temp directory, its compressed digest and DiffID checked, synced and
 * renamed into place with RENAME_NOREPLACE.
 */

#include "image/images.h"
#include "image/images-internal.h"

#include <fcntl.h>
#include <stdio.h>
#include <sys/file.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/cleanup.h"

static int unpack_one(struct moat_store *s, int layers_fd, const struct oci_descriptor *layer, size_t i,
                      const char *diff_id, const char *chain_id, const struct moat_layer_options *opts,
                      struct moat_error **reterr)
{
        _cleanup_close_ int blob_fd = -EBADF, tree_fd = -EBADF;
        struct moat_layer_result res = {};
        enum oci_compression comp;
        bool nondist;
        char tmp[32];
        int r;

        r = oci_layer_media_type(layer->media_type, &comp, &nondist);
        if (r < 0)
                return moat_error_setx(reterr, -EMEDIUMTYPE, "layers[%zu] (%s): media type \"%s\" cannot be unpacked",
                                       i, layer->digest, layer->media_type);
        r = moat_store_open_blob(s, layer->digest, false, &blob_fd, reterr);
        if (r < 0)
                return moat_error_wrap(reterr, r, "layers[%zu]", i);
        r = moat_images_layer_tmp_create(layers_fd, tmp, reterr);
        if (r < 0)
                return r;
        tree_fd = openat(layers_fd, tmp, O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW);
        if (tree_fd < 0) {
                r = moat_error_set(reterr, errno, "opening layers/%s", tmp);
                goto fail;
        }
        if (fchmod(tree_fd, 0755) < 0) {
                r = moat_error_set(reterr, errno, "chmod layers/%s", tmp);
                goto fail;
        }
        r = moat_layer_unpack(blob_fd, tree_fd, opts, &res, reterr);
        if (r < 0) {
                r = moat_error_wrap(reterr, r, "layers[%zu] (%s)", i, layer->digest);
                goto fail;
        }
        if (!streq(res.compressed_digest, layer->digest)) {
                r = moat_error_setx(reterr, -EBADMSG, "layers[%zu]: blob %s hashes to %s while unpacking", i,
                                    layer->digest, res.compressed_digest);
                goto fail;
        }
        if (!streq(res.diff_id, diff_id)) {
                r = moat_error_setx(reterr, -EBADMSG,
                                    "layers[%zu] (%s): unpacked DiffID %s does not match the config's diff_ids[%zu] %s",
                                    i, layer->digest, res.diff_id, i, diff_id);
                goto fail;
        }
        if (syncfs(tree_fd) < 0) {
                r = moat_error_set(reterr, errno, "syncing layer tree %s", chain_id);
                goto fail;
        }
        if (renameat2(layers_fd, tmp, layers_fd, chain_id, RENAME_NOREPLACE) < 0) {
                if (errno == EEXIST || errno == ENOTEMPTY) {
                        /* Another unpacker won: its tree is as good as ours. */
                        (void) moat_images_rm_rf_at(layers_fd, tmp, 0);
                        return 0;
                }
                r = moat_error_set(reterr, errno, "renaming layers/%s to layers/%s", tmp, chain_id);
                goto fail;
        }
        if (fsync(layers_fd) < 0)
                return moat_error_set(reterr, errno, "fsync of layers/");
        return 0;
fail:
        tree_fd = safe_close(tree_fd);
        (void) moat_images_rm_rf_at(layers_fd, tmp, 0);
        return r;
}

int moat_images_unpack(struct moat_store *s, const struct moat_image *img, const struct moat_layer_options *opts,
                       char ***ret_chain_ids, struct moat_error **reterr)
{
        _cleanup_close_ int lock_fd = -EBADF, layers_fd = -EBADF;
        _cleanup_strv_free_ char **chain = NULL;
        const struct oci_manifest *m;
        const struct oci_image_config *c;
        int r;

        if (!img || !img->manifest || !img->config)
                return moat_error_setx(reterr, -EINVAL, "unpack: no resolved image");
        m = img->manifest;
        c = img->config;
        if (c->n_diff_ids != m->n_layers)
                return moat_error_setx(reterr, -EINVAL, "unpack %s: %zu layers but %zu diff_ids",
                                       img->manifest_digest, m->n_layers, c->n_diff_ids);
        r = oci_chain_ids(c->diff_ids, c->n_diff_ids, &chain, reterr);
        if (r < 0)
                return moat_error_wrap(reterr, r, "unpack %s: config %s", img->manifest_digest, img->config_digest);
        r = moat_images_store_lock(s, LAYERS_LOCK, LOCK_SH, &lock_fd, reterr);
        if (r < 0)
                return r;
        r = moat_images_layers_dir(s, &layers_fd, reterr);
        if (r < 0)
                return r;
        for (size_t i = 0; i < m->n_layers; i++) {
                struct stat st;

                if (fstatat(layers_fd, chain[i], &st, AT_SYMLINK_NOFOLLOW) == 0) {
                        if (!S_ISDIR(st.st_mode))
                                return moat_error_setx(reterr, -ENOTDIR, "layers/%s is not a directory", chain[i]);
                        continue;
                }
                if (errno != ENOENT)
                        return moat_error_set(reterr, errno, "layers/%s", chain[i]);
                r = unpack_one(s, layers_fd, &m->layers[i], i, c->diff_ids[i], chain[i], opts, reterr);
                if (r < 0)
                        return moat_error_wrap(reterr, r, "unpack %s", img->manifest_digest);
        }
        *ret_chain_ids = TAKE_PTR(chain);
        return 0;
}

