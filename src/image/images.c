/* SPDX-License-Identifier: Apache-2.0 */
#include "base/compat.h"

/*
 * The image database (see images.h): references in index.json, resolution,
 * garbage collection and the layer-tree cache.
 *
 * Why it is built this way:
 *  - index.json is the only list of references, so the store stays a valid
 *    OCI layout. It is edited as JSON (jansson), keeping every entry and
 *    field moat does not know, and replaced whole (temp, fsync, rename,
 *    fsync of the directory) under an exclusive flock of images.lock, so
 *    two taggers never lose each other's entries. Readers need no lock: a
 *    rename never shows half a file.
 *  - Layer trees are unpacked into a temp directory, checked (compressed
 *    digest against the manifest, DiffID against the config), synced and
 *    renamed with RENAME_NOREPLACE: a tree under its ChainID is therefore
 *    always complete and verified, and of two concurrent unpackers the
 *    loser of the rename just removes its copy. Removal (gc) renames a tree
 *    to a temp name first, so a crash half-way never leaves a partial tree
 *    under a ChainID; temp trees are collected by the next gc, which holds
 *    layers.lock exclusively while unpackers hold it shared.
 *  - GC is mark and sweep: every index.json entry is a root; unreadable or
 *    unparsable documents fail the collection rather than free what they
 *    might reference; missing blobs (a partial pull) are skipped.
 */

#include "image/images.h"
#include "image/images-internal.h"

#include <dirent.h>
#include <fcntl.h>
#include <jansson.h>
#include <stdio.h>
#include <sys/file.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/cleanup.h"
#include "base/fileio.h"
#include "image/reference.h"

#define IMAGES_LOCK "images.lock"
/* Layer trees are at most this deep (layer.c bounds paths to 4096 bytes). */
#define RM_MAX_DEPTH 2100u

#define _cleanup_json_ json_auto_t

/* ---- locks ---- */

int moat_images_store_lock(struct moat_store *s, const char *name, int op, int *ret_fd, struct moat_error **reterr)
{
        _cleanup_close_ int fd = openat(moat_store_dir_fd(s), name, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);

        if (fd < 0)
                return moat_error_set(reterr, errno, "opening the store's %s", name);
        while (flock(fd, op) < 0) {
                if (errno != EINTR)
                        return moat_error_set(reterr, errno, "locking the store's %s", name);
        }
        *ret_fd = TAKE_FD(fd);
        return 0;
}

/* ---- references ---- */

static int normalise_reference(const char *text, struct moat_reference *ret_ref, char **ret,
                               struct moat_error **reterr)
{
        struct moat_reference ref = {};
        int r;

        if (!text)
                return moat_error_setx(reterr, -EINVAL, "no reference given");
        r = moat_reference_parse(text, &ref, reterr);
        if (r < 0)
                return r;
        r = moat_reference_format(&ref, ret);
        if (r < 0) {
                moat_reference_clear(&ref);
                return moat_error_set(reterr, r, "formatting reference \"%s\"", text);
        }
        if (ret_ref)
                *ret_ref = ref;
        else
                moat_reference_clear(&ref);
        return 0;
}

static bool is_index_type(const char *mt)
{
        return mt && (streq(mt, OCI_MT_INDEX) || streq(mt, DOCKER_MT_MANIFEST_LIST));
}

static bool is_manifest_type(const char *mt)
{
        return mt && (streq(mt, OCI_MT_MANIFEST) || streq(mt, DOCKER_MT_MANIFEST));
}

/* Read and parse a document blob, checking the descriptor's size (size < 0: unknown). */
static int read_doc(struct moat_store *s, const char *digest, int64_t size, const char *media_type,
                    struct oci_image_doc **ret, struct moat_error **reterr)
{
        _cleanup_free_ char *buf = NULL;
        size_t len;
        int r;

        r = moat_store_read_blob(s, digest, OCI_IMAGE_DOC_MAX_SIZE, &buf, &len, reterr);
        if (r < 0)
                return r;
        if (size >= 0 && (uint64_t) size != len)
                return moat_error_setx(reterr, -EBADMSG, "blob %s is %zu bytes, its descriptor says %lld", digest,
                                       len, (long long) size);
        r = oci_image_doc_parse(buf, len, media_type, ret, reterr);
        if (r < 0)
                return moat_error_wrap(reterr, r, "blob %s", digest);
        return 0;
}

/* Load index.json: the document and its "manifests" array (borrowed). */
static int index_load(struct moat_store *s, json_t **ret, json_t **ret_manifests, struct moat_error **reterr)
{
        _cleanup_free_ char *buf = NULL;
        _cleanup_json_ *root = NULL;
        json_error_t jerr;
        json_t *m;
        size_t len;
        int r;

        r = read_full_file_at(moat_store_dir_fd(s), "index.json", MOAT_IMAGES_INDEX_MAX_SIZE, &buf, &len);
        if (r < 0)
                return moat_error_set(reterr, r, "reading the store's index.json (at most %u bytes)",
                                      MOAT_IMAGES_INDEX_MAX_SIZE);
        root = json_loadb(buf, len, JSON_REJECT_DUPLICATES, &jerr);
        if (!root)
                return moat_error_setx(reterr, -EINVAL, "the store's index.json: line %d: %s", jerr.line, jerr.text);
        if (!json_is_object(root))
                return moat_error_setx(reterr, -EINVAL, "the store's index.json is not an object");
        m = json_object_get(root, "manifests");
        if (!m) {
                m = json_array();
                if (!m || json_object_set_new(root, "manifests", m) < 0)
                        return moat_error_set(reterr, -ENOMEM, "index.json");
        }
        if (!json_is_array(m))
                return moat_error_setx(reterr, -EINVAL, "the store's index.json: manifests is not an array");
        if (json_array_size(m) > MOAT_IMAGES_MAX_REFS)
                return moat_error_setx(reterr, -E2BIG, "the store's index.json: %zu manifests (at most %u)",
                                       json_array_size(m), MOAT_IMAGES_MAX_REFS);
        *ret_manifests = m;
        *ret = TAKE_PTR(root);
        return 0;
}

static int index_save(struct moat_store *s, json_t *root, struct moat_error **reterr)
{
        _cleanup_free_ char *text = json_dumps(root, JSON_COMPACT);
        int r;

        if (!text)
                return moat_error_set(reterr, -ENOMEM, "serialising index.json");
        r = write_file_atomic_at(moat_store_dir_fd(s), "index.json", text, strlen(text), 0644);
        if (r < 0)
                return moat_error_set(reterr, r, "writing the store's index.json");
        if (fsync(moat_store_dir_fd(s)) < 0)
                return moat_error_set(reterr, errno, "fsync of the store directory");
        return 0;
}

static const char *entry_ref_name(json_t *entry)
{
        json_t *a = json_object_get(entry, "annotations");
        json_t *n = json_is_object(a) ? json_object_get(a, MOAT_IMAGES_REF_ANNOTATION) : NULL;
        return json_is_string(n) ? json_string_value(n) : NULL;
}

/* Remove every entry named name; returns how many went. */
static size_t index_remove(json_t *manifests, const char *name)
{
        size_t removed = 0;

        for (size_t i = json_array_size(manifests); i > 0; i--) {
                const char *n = entry_ref_name(json_array_get(manifests, i - 1));
                if (n && streq(n, name)) {
                        if (json_array_remove(manifests, i - 1) == 0)
                                removed++;
                }
        }
        return removed;
}

int moat_images_tag(struct moat_store *s, const char *reference, const struct oci_descriptor *target,
                    struct moat_error **reterr)
{
        _cleanup_free_ char *name = NULL;
        _cleanup_oci_image_doc_ struct oci_image_doc *doc = NULL;
        _cleanup_json_ *root = NULL;
        _cleanup_close_ int lock_fd = -EBADF;
        struct moat_reference ref = {};
        json_t *manifests, *entry;
        int r;

        if (!target || !target->digest || !target->media_type)
                return moat_error_setx(reterr, -EINVAL, "tag: no target descriptor");
        r = normalise_reference(reference, &ref, &name, reterr);
        if (r < 0)
                return r;
        if (ref.digest && !streq(ref.digest, target->digest)) {
                r = moat_error_setx(reterr, -EINVAL, "reference %s names digest %s, not the target %s", name,
                                    ref.digest, target->digest);
                moat_reference_clear(&ref);
                return r;
        }
        moat_reference_clear(&ref);
        if (!is_index_type(target->media_type) && !is_manifest_type(target->media_type))
                return moat_error_setx(reterr, -EMEDIUMTYPE, "tag %s: media type \"%s\" is not a manifest or index",
                                       name, target->media_type);
        if (target->size < 0)
                return moat_error_setx(reterr, -EINVAL, "tag %s: negative size %lld", name, (long long) target->size);
        r = read_doc(s, target->digest, target->size, target->media_type, &doc, reterr);
        if (r < 0)
                return moat_error_wrap(reterr, r, "tag %s", name);

        entry = json_pack("{s:s, s:s, s:I, s:{s:s}}", "mediaType", target->media_type, "digest", target->digest,
                          "size", (json_int_t) target->size, "annotations", MOAT_IMAGES_REF_ANNOTATION, name);
        if (!entry)
                return moat_error_set(reterr, -ENOMEM, "tag %s", name);

        r = moat_images_store_lock(s, IMAGES_LOCK, LOCK_EX, &lock_fd, reterr);
        if (r >= 0)
                r = index_load(s, &root, &manifests, reterr);
        if (r < 0) {
                json_decref(entry);
                return moat_error_wrap(reterr, r, "tag %s", name);
        }
        (void) index_remove(manifests, name);
        if (json_array_size(manifests) >= MOAT_IMAGES_MAX_REFS) {
                json_decref(entry);
                return moat_error_setx(reterr, -E2BIG, "tag %s: the store has %u references already", name,
                                       MOAT_IMAGES_MAX_REFS);
        }
        if (json_array_append_new(manifests, entry) < 0)
                return moat_error_set(reterr, -ENOMEM, "tag %s", name);
        r = index_save(s, root, reterr);
        if (r < 0)
                return moat_error_wrap(reterr, r, "tag %s", name);
        return 0;
}

int moat_images_untag(struct moat_store *s, const char *reference, struct moat_error **reterr)
{
        _cleanup_free_ char *name = NULL;
        _cleanup_json_ *root = NULL;
        _cleanup_close_ int lock_fd = -EBADF;
        json_t *manifests;
        int r;

        r = normalise_reference(reference, NULL, &name, reterr);
        if (r < 0)
                return r;
        r = moat_images_store_lock(s, IMAGES_LOCK, LOCK_EX, &lock_fd, reterr);
        if (r >= 0)
                r = index_load(s, &root, &manifests, reterr);
        if (r < 0)
                return moat_error_wrap(reterr, r, "untag %s", name);
        if (index_remove(manifests, name) == 0)
                return moat_error_setx(reterr, -ENOENT, "no image %s in the store", name);
        r = index_save(s, root, reterr);
        if (r < 0)
                return moat_error_wrap(reterr, r, "untag %s", name);
        return 0;
}

void moat_image_refs_free(struct moat_image_ref *refs, size_t n)
{
        if (!refs)
                return;
        for (size_t i = 0; i < n; i++) {
                free(refs[i].reference);
                free(refs[i].digest);
                free(refs[i].media_type);
        }
        free(refs);
}

static int ref_cmp(const void *a, const void *b)
{
        return strcmp(((const struct moat_image_ref *) a)->reference, ((const struct moat_image_ref *) b)->reference);
}

/* The descriptor fields of an index.json entry, checked. */
static int entry_fields(json_t *entry, size_t i, const char **ret_mt, const char **ret_digest, int64_t *ret_size,
                        struct moat_error **reterr)
{
        json_t *mt = json_object_get(entry, "mediaType"), *dg = json_object_get(entry, "digest"),
               *sz = json_object_get(entry, "size");
        int r;

        if (!json_is_string(mt) || !json_is_string(dg) || !json_is_integer(sz) || json_integer_value(sz) < 0)
                return moat_error_setx(reterr, -EINVAL,
                                       "the store's index.json: manifests[%zu] lacks a mediaType, digest or size", i);
        r = oci_digest_validate(json_string_value(dg), reterr);
        if (r < 0)
                return moat_error_wrap(reterr, r, "the store's index.json: manifests[%zu].digest", i);
        *ret_mt = json_string_value(mt);
        *ret_digest = json_string_value(dg);
        *ret_size = json_integer_value(sz);
        return 0;
}

int moat_images_list(struct moat_store *s, struct moat_image_ref **ret, size_t *ret_n, struct moat_error **reterr)
{
        _cleanup_json_ *root = NULL;
        struct moat_image_ref *refs = NULL;
        json_t *manifests;
        size_t n = 0;
        int r;

        r = index_load(s, &root, &manifests, reterr);
        if (r < 0)
                return r;
        refs = calloc(json_array_size(manifests) + 1, sizeof(*refs));
        if (!refs)
                return moat_error_set(reterr, -ENOMEM, "listing images");
        for (size_t i = 0; i < json_array_size(manifests); i++) {
                json_t *e = json_array_get(manifests, i);
                const char *name = entry_ref_name(e), *mt, *digest;
                int64_t size;

                if (!name)
                        continue;
                r = entry_fields(e, i, &mt, &digest, &size, reterr);
                if (r < 0) {
                        moat_image_refs_free(refs, n);
                        return r;
                }
                refs[n].reference = strdup(name);
                refs[n].digest = strdup(digest);
                refs[n].media_type = strdup(mt);
                refs[n].size = size;
                n++;
                if (!refs[n - 1].reference || !refs[n - 1].digest || !refs[n - 1].media_type) {
                        moat_image_refs_free(refs, n);
                        return moat_error_set(reterr, -ENOMEM, "listing images");
                }
        }
        if (n > 1)
                qsort(refs, n, sizeof(*refs), ref_cmp);
        *ret = refs;
        *ret_n = n;
        return 0;
}

/* ---- resolve ---- */

void moat_image_free(struct moat_image *img)
{
        if (!img)
                return;
        free(img->reference);
        free(img->target_digest);
        free(img->manifest_digest);
        free(img->config_digest);
        oci_image_doc_free(img->manifest_doc);
        oci_image_doc_free(img->config_doc);
        free(img);
}

/* Find the entry of name: copies its descriptor fields. -ENOENT when absent. */
static int index_find(struct moat_store *s, const char *name, char **ret_mt, char **ret_digest, int64_t *ret_size,
                      struct moat_error **reterr)
{
        _cleanup_json_ *root = NULL;
        json_t *manifests;
        int r;

        r = index_load(s, &root, &manifests, reterr);
        if (r < 0)
                return r;
        for (size_t i = json_array_size(manifests); i > 0; i--) {
                json_t *e = json_array_get(manifests, i - 1);
                const char *n = entry_ref_name(e), *mt, *digest;
                int64_t size;

                if (!n || !streq(n, name))
                        continue;
                r = entry_fields(e, i - 1, &mt, &digest, &size, reterr);
                if (r < 0)
                        return r;
                *ret_mt = strdup(mt);
                *ret_digest = strdup(digest);
                *ret_size = size;
                if (!*ret_mt || !*ret_digest)
                        return moat_error_set(reterr, -ENOMEM, "resolving %s", name);
                return 0;
        }
        return -ENOENT;
}

/* The media type of a blob found by digest alone: its own mediaType. */
static int sniff_media_type(struct moat_store *s, const char *digest, char **ret, struct moat_error **reterr)
{
        _cleanup_oci_image_doc_ struct oci_image_doc *doc = NULL;
        int r = read_doc(s, digest, -1, NULL, &doc, reterr);

        if (r < 0)
                return r;
        if (doc->kind == OCI_DOC_CONFIG)
                return moat_error_setx(reterr, -EMEDIUMTYPE, "blob %s is an image config, not a manifest", digest);
        *ret = strdup(doc->media_type);
        return *ret ? 0 : moat_error_set(reterr, -ENOMEM, "blob %s", digest);
}

int moat_images_resolve(struct moat_store *s, const char *reference, const struct oci_platform *platform,
                        struct moat_image **ret, struct moat_error **reterr)
{
        _cleanup_image_ struct moat_image *img = NULL;
        _cleanup_free_ char *mt = NULL, *digest = NULL;
        struct moat_reference ref = {};
        int64_t size = -1;
        int r;

        img = calloc(1, sizeof(*img));
        if (!img)
                return moat_error_set(reterr, -ENOMEM, "resolving %s", reference);
        r = normalise_reference(reference, &ref, &img->reference, reterr);
        if (r < 0)
                return r;
        r = index_find(s, img->reference, &mt, &digest, &size, reterr);
        if (r == -ENOENT && ref.digest) {
                digest = strdup(ref.digest);
                r = digest ? moat_store_has_blob(s, digest) : -ENOMEM;
                if (r == 0)
                        r = -ENOENT;
                else if (r > 0)
                        r = sniff_media_type(s, digest, &mt, reterr);
        }
        moat_reference_clear(&ref);
        if (r == -ENOENT)
                return moat_error_setx(reterr, -ENOENT, "no image %s in the store", img->reference);
        if (r < 0)
                return moat_error_wrap(reterr, r, "resolving %s", img->reference);
        img->target_digest = strdup(digest);
        if (!img->target_digest)
                return moat_error_set(reterr, -ENOMEM, "resolving %s", img->reference);

        for (unsigned depth = 0;; depth++) {
                _cleanup_oci_image_doc_ struct oci_image_doc *doc = NULL;
                const struct oci_descriptor *pick;

                if (depth > MOAT_IMAGES_MAX_NESTING)
                        return moat_error_setx(reterr, -ELOOP, "resolving %s: indexes nested deeper than %u",
                                               img->reference, MOAT_IMAGES_MAX_NESTING);
                if (!is_index_type(mt) && !is_manifest_type(mt))
                        return moat_error_setx(reterr, -EMEDIUMTYPE,
                                               "resolving %s: %s has media type \"%s\", not a manifest or index",
                                               img->reference, digest, mt);
                r = read_doc(s, digest, size, mt, &doc, reterr);
                if (r < 0)
                        return moat_error_wrap(reterr, r, "resolving %s", img->reference);
                if (doc->kind == OCI_DOC_MANIFEST) {
                        img->manifest_doc = TAKE_PTR(doc);
                        break;
                }
                if (doc->kind != OCI_DOC_INDEX)
                        return moat_error_setx(reterr, -EMEDIUMTYPE, "resolving %s: %s is not a manifest or index",
                                               img->reference, digest);
                r = oci_index_select(&doc->index, platform ? platform->os : NULL,
                                     platform ? platform->architecture : NULL, platform ? platform->variant : NULL,
                                     &pick, reterr);
                if (r < 0)
                        return moat_error_wrap(reterr, r, "resolving %s (index %s)", img->reference, digest);
                free(mt);
                free(digest);
                mt = strdup(pick->media_type);
                digest = strdup(pick->digest);
                size = pick->size;
                if (!mt || !digest)
                        return moat_error_set(reterr, -ENOMEM, "resolving %s", img->reference);
        }

        img->manifest = oci_image_doc_manifest(img->manifest_doc);
        img->manifest_digest = TAKE_PTR(digest);
        if (img->manifest->artifact)
                return moat_error_setx(reterr, -EMEDIUMTYPE,
                                       "resolving %s: manifest %s is an artifact (config %s), not an image",
                                       img->reference, img->manifest_digest, img->manifest->config.media_type);
        img->config_digest = strdup(img->manifest->config.digest);
        if (!img->config_digest)
                return moat_error_set(reterr, -ENOMEM, "resolving %s", img->reference);
        r = read_doc(s, img->config_digest, img->manifest->config.size, img->manifest->config.media_type,
                     &img->config_doc, reterr);
        if (r < 0)
                return moat_error_wrap(reterr, r, "resolving %s: config", img->reference);
        img->config = oci_image_doc_config(img->config_doc);
        if (!img->config)
                return moat_error_setx(reterr, -EMEDIUMTYPE, "resolving %s: config %s is not an image config",
                                       img->reference, img->config_digest);
        if (img->config->n_diff_ids != img->manifest->n_layers)
                return moat_error_setx(reterr, -EINVAL,
                                       "resolving %s: manifest %s has %zu layers but config %s has %zu diff_ids",
                                       img->reference, img->manifest_digest, img->manifest->n_layers,
                                       img->config_digest, img->config->n_diff_ids);
        *ret = TAKE_PTR(img);
        return 0;
}

/* ---- layer trees ---- */

/* Remove name in dfd, recursively; never follows symlinks. */
int moat_images_rm_rf_at(int dfd, const char *name, unsigned depth)
{
        _cleanup_closedir_ DIR *d = NULL;
        struct dirent *de;
        int fd, r;

        if (unlinkat(dfd, name, 0) >= 0)
                return 0;
        if (errno != EISDIR && errno != EPERM)
                return errno == ENOENT ? 0 : negative_errno();
        if (depth > RM_MAX_DEPTH)
                return -ELOOP;
        fd = openat(dfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (fd < 0)
                return negative_errno();
        d = fdopendir(fd);
        if (!d) {
                r = negative_errno();
                safe_close(fd);
                return r;
        }
        while ((errno = 0, de = readdir(d))) {
                if (streq(de->d_name, ".") || streq(de->d_name, ".."))
                        continue;
                r = moat_images_rm_rf_at(dirfd(d), de->d_name, depth + 1);
                if (r < 0)
                        return r;
        }
        if (errno != 0)
                return negative_errno();
        return RET_NERRNO(unlinkat(dfd, name, AT_REMOVEDIR));
}

int moat_images_layers_dir(struct moat_store *s, int *ret_fd, struct moat_error **reterr)
{
        int fd;

        if (mkdirat(moat_store_dir_fd(s), LAYERS_DIR, 0700) < 0 && errno != EEXIST)
                return moat_error_set(reterr, errno, "creating the store's %s/", LAYERS_DIR);
        fd = openat(moat_store_dir_fd(s), LAYERS_DIR, O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW);
        if (fd < 0)
                return moat_error_set(reterr, errno, "opening the store's %s/", LAYERS_DIR);
        *ret_fd = fd;
        return 0;
}

/* A new, empty temp directory in layers/ (mode 0755: it becomes a root). */
int moat_images_layer_tmp_create(int layers_fd, char ret_name[static 32], struct moat_error **reterr)
{
        for (unsigned attempt = 0; attempt < 16; attempt++) {
                uint64_t nonce = 0;

                if (getrandom(&nonce, sizeof(nonce), 0) != sizeof(nonce))
                        return moat_error_set(reterr, errno, "getrandom");
                snprintf(ret_name, 32, LAYER_TMP_PREFIX "%016llx", (unsigned long long) nonce);
                if (mkdirat(layers_fd, ret_name, 0700) < 0) {
                        if (errno == EEXIST)
                                continue;
                        return moat_error_set(reterr, errno, "creating layers/%s", ret_name);
                }
                return 0;
        }
        return moat_error_setx(reterr, -EEXIST, "no free temp name in layers/");
}

/* ---- garbage collection ---- */

struct strset {
        char **v;
        size_t n, cap;
};

static void strset_clear(struct strset *set)
{
        for (size_t i = 0; i < set->n; i++)
                free(set->v[i]);
        free(set->v);
        *set = (struct strset) {};
}

static int strset_add(struct strset *set, const char *s)
{
        if (set->n == set->cap) {
                size_t cap = set->cap ? set->cap * 2 : 64;
                char **v = reallocarray(set->v, cap, sizeof(char *));
                if (!v)
                        return -ENOMEM;
                set->v = v;
                set->cap = cap;
        }
        set->v[set->n] = strdup(s);
        if (!set->v[set->n])
                return -ENOMEM;
        set->n++;
        return 0;
}

static int str_cmp(const void *a, const void *b)
{
        return strcmp(*(char *const *) a, *(char *const *) b);
}

static bool strset_has(const struct strset *set, const char *s)
{
        return set->n > 0 && bsearch(&s, set->v, set->n, sizeof(char *), str_cmp);
}

struct gc_marks {
        struct strset blobs;
        struct strset chains;
};

static int gc_mark(struct moat_store *s, const char *mt, const char *digest, int64_t size, unsigned depth,
                   struct gc_marks *marks, struct moat_error **reterr)
{
        _cleanup_oci_image_doc_ struct oci_image_doc *doc = NULL;
        int r;

        r = oci_digest_validate(digest, reterr);
        if (r < 0)
                return r;
        if (strset_add(&marks->blobs, digest) < 0)
                return moat_error_set(reterr, -ENOMEM, "gc");
        if (!is_index_type(mt) && !is_manifest_type(mt))
                return 0;
        if (depth > MOAT_IMAGES_MAX_NESTING)
                return moat_error_setx(reterr, -ELOOP, "%s: indexes nested deeper than %u", digest,
                                       MOAT_IMAGES_MAX_NESTING);
        r = moat_store_has_blob(s, digest);
        if (r < 0)
                return moat_error_set(reterr, r, "blob %s", digest);
        if (r == 0)
                return 0; /* a partial pull */
        r = read_doc(s, digest, size, mt, &doc, reterr);
        if (r < 0)
                return r;
        if (doc->kind == OCI_DOC_INDEX) {
                for (size_t i = 0; i < doc->index.n_manifests; i++) {
                        const struct oci_descriptor *d = &doc->index.manifests[i];
                        r = gc_mark(s, d->media_type, d->digest, d->size, depth + 1, marks, reterr);
                        if (r < 0)
                                return moat_error_wrap(reterr, r, "index %s: manifests[%zu]", digest, i);
                }
                return 0;
        }
        if (doc->kind != OCI_DOC_MANIFEST)
                return 0;

        const struct oci_manifest *m = &doc->manifest;
        if (strset_add(&marks->blobs, m->config.digest) < 0)
                return moat_error_set(reterr, -ENOMEM, "gc");
        for (size_t i = 0; i < m->n_layers; i++)
                if (strset_add(&marks->blobs, m->layers[i].digest) < 0)
                        return moat_error_set(reterr, -ENOMEM, "gc");
        if (m->artifact)
                return 0;
        r = moat_store_has_blob(s, m->config.digest);
        if (r < 0)
                return moat_error_set(reterr, r, "blob %s", m->config.digest);
        if (r == 0)
                return 0;

        _cleanup_oci_image_doc_ struct oci_image_doc *cfg = NULL;
        _cleanup_strv_free_ char **chain = NULL;
        r = read_doc(s, m->config.digest, m->config.size, m->config.media_type, &cfg, reterr);
        if (r < 0)
                return moat_error_wrap(reterr, r, "manifest %s: config", digest);
        if (cfg->kind != OCI_DOC_CONFIG)
                return 0;
        r = oci_chain_ids(cfg->config.diff_ids, cfg->config.n_diff_ids, &chain, reterr);
        if (r < 0)
                return moat_error_wrap(reterr, r, "config %s", m->config.digest);
        for (size_t i = 0; chain[i]; i++)
                if (strset_add(&marks->chains, chain[i]) < 0)
                        return moat_error_set(reterr, -ENOMEM, "gc");
        return 0;
}

static int gc_sweep_blobs(struct moat_store *s, const struct strset *keep, struct moat_images_gc_result *res,
                          struct moat_error **reterr)
{
        _cleanup_closedir_ DIR *d = NULL;
        struct dirent *de;
        int fd, r;

        fd = openat(moat_store_dir_fd(s), "blobs/sha256", O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW);
        if (fd < 0)
                return moat_error_set(reterr, errno, "opening the store's blobs/sha256");
        d = fdopendir(fd);
        if (!d) {
                r = negative_errno();
                safe_close(fd);
                return moat_error_set(reterr, r, "opening the store's blobs/sha256");
        }
        while ((errno = 0, de = readdir(d))) {
                char digest[MOAT_DIGEST_MAX];
                struct stat st;

                if (strlen(de->d_name) != 64)
                        continue;
                snprintf(digest, sizeof(digest), "sha256:%s", de->d_name);
                if (moat_digest_validate(digest, NULL) < 0 || strset_has(keep, digest))
                        continue;
                if (fstatat(dirfd(d), de->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0)
                        st.st_size = 0;
                r = moat_store_remove_blob(s, digest, NULL);
                if (r == -ENOENT)
                        continue;
                if (r < 0)
                        return moat_error_set(reterr, r, "removing blob %s", digest);
                res->blobs_removed++;
                res->bytes_removed += (uint64_t) st.st_size;
        }
        if (errno != 0)
                return moat_error_set(reterr, errno, "reading the store's blobs/sha256");
        return 0;
}

static int gc_sweep_layers(struct moat_store *s, const struct strset *keep, struct moat_images_gc_result *res,
                           struct moat_error **reterr)
{
        _cleanup_close_ int layers_fd = -EBADF;
        _cleanup_closedir_ DIR *d = NULL;
        struct strset doomed = {};
        struct dirent *de;
        int fd, r = 0;

        r = moat_images_layers_dir(s, &layers_fd, reterr);
        if (r < 0)
                return r;
        fd = openat(layers_fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (fd < 0)
                return moat_error_set(reterr, errno, "opening the store's layers/");
        d = fdopendir(fd);
        if (!d) {
                r = negative_errno();
                safe_close(fd);
                return moat_error_set(reterr, r, "opening the store's layers/");
        }
        while ((errno = 0, de = readdir(d))) {
                if (streq(de->d_name, ".") || streq(de->d_name, ".."))
                        continue;
                if (startswith(de->d_name, LAYER_TMP_PREFIX) ||
                    (oci_digest_validate(de->d_name, NULL) >= 0 && !strset_has(keep, de->d_name)))
                        if (strset_add(&doomed, de->d_name) < 0) {
                                strset_clear(&doomed);
                                return moat_error_set(reterr, -ENOMEM, "gc");
                        }
        }
        if (errno != 0) {
                strset_clear(&doomed);
                return moat_error_set(reterr, errno, "reading the store's layers/");
        }
        for (size_t i = 0; i < doomed.n && r >= 0; i++) {
                const char *name = doomed.v[i];
                char tmp[32];

                if (!startswith(name, LAYER_TMP_PREFIX)) {
                        /* Out of its name first: never a partial tree under a ChainID. */
                        r = moat_images_layer_tmp_create(layers_fd, tmp, reterr);
                        if (r < 0)
                                break;
                        if (renameat(layers_fd, name, layers_fd, tmp) < 0) { /* replaces the empty tmp */
                                r = moat_error_set(reterr, errno, "moving layers/%s aside", name);
                                (void) unlinkat(layers_fd, tmp, AT_REMOVEDIR);
                                break;
                        }
                        name = tmp;
                }
                r = moat_images_rm_rf_at(layers_fd, name, 0);
                if (r < 0)
                        r = moat_error_set(reterr, r, "removing layers/%s", name);
                else
                        res->layers_removed++;
        }
        strset_clear(&doomed);
        if (r >= 0 && fsync(layers_fd) < 0)
                r = moat_error_set(reterr, errno, "fsync of layers/");
        return r;
}

int moat_images_gc(struct moat_store *s, struct moat_images_gc_result *ret, struct moat_error **reterr)
{
        _cleanup_close_ int images_lock = -EBADF, layers_lock = -EBADF;
        _cleanup_json_ *root = NULL;
        struct moat_images_gc_result res = {};
        struct gc_marks marks = {};
        json_t *manifests;
        int r;

        r = moat_images_store_lock(s, IMAGES_LOCK, LOCK_EX, &images_lock, reterr);
        if (r < 0)
                return r;
        r = moat_images_store_lock(s, LAYERS_LOCK, LOCK_EX, &layers_lock, reterr);
        if (r < 0)
                return r;
        r = index_load(s, &root, &manifests, reterr);
        if (r < 0)
                return moat_error_wrap(reterr, r, "gc");
        for (size_t i = 0; i < json_array_size(manifests) && r >= 0; i++) {
                const char *mt, *digest;
                int64_t size;

                r = entry_fields(json_array_get(manifests, i), i, &mt, &digest, &size, reterr);
                if (r >= 0)
                        r = gc_mark(s, mt, digest, size, 0, &marks, reterr);
                if (r < 0) {
                        const char *name = entry_ref_name(json_array_get(manifests, i));
                        r = moat_error_wrap(reterr, r, "gc: %s", name ? name : "unnamed index.json entry");
                }
        }
        if (r >= 0) {
                if (marks.blobs.n > 1)
                        qsort(marks.blobs.v, marks.blobs.n, sizeof(char *), str_cmp);
                if (marks.chains.n > 1)
                        qsort(marks.chains.v, marks.chains.n, sizeof(char *), str_cmp);
                r = gc_sweep_blobs(s, &marks.blobs, &res, reterr);
        }
        if (r >= 0)
                r = gc_sweep_layers(s, &marks.chains, &res, reterr);
        strset_clear(&marks.blobs);
        strset_clear(&marks.chains);
        if (r < 0)
                return r;
        if (ret)
                *ret = res;
        return 0;
}

int moat_images_rmi(struct moat_store *s, const char *reference, struct moat_images_gc_result *ret,
                    struct moat_error **reterr)
{
        int r = moat_images_untag(s, reference, reterr);

        if (r < 0)
                return r;
        return moat_images_gc(s, ret, reterr);
}
