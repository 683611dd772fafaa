/* SPDX-License-Identifier: Apache-2.0 */
#include "base/compat.h"

/*
 * Image archives (see image-archive.h; not archive.h, which would shadow libarchive's <archive.h> in this directory).
 *
 * Loading is one streaming pass: tar members come in any order, so each
 * member that is a blob is ingested as it comes (verified against the
 * digest its name carries when it carries one: blobs/sha256/<hex> and the
 * legacy <hex>.json configs; legacy <dir>/layer.tar by computed digest),
 * and the small JSON documents (manifest.json, index.json, oci-layout)
 * are kept in memory (repositories is not needed). At the end the documents
 * are resolved against what was ingested: an OCI layout's index.json
 * descriptors are checked (blob present, size right, a manifest's config
 * and layers present), a legacy docker archive's manifest.json gets an
 * OCI image manifest synthesised from its config and uncompressed layers
 * (layer digest == DiffID, checked against the config's rootfs.diff_ids).
 *
 * The synthesised manifest uses OCI media types: src/oci accepts an
 * uncompressed layer only as application/vnd.oci.image.layer.v1.tar.
 *
 * Progress (moat_archive_load_options) is reported per blob member while
 * it is ingested, throttled to every 512 KiB; whether a blob is a layer is
 * judged from its first byte ('{' starts a JSON document), since an OCI
 * layout's blobs are anonymous until index.json is read at the end.
 *
 * Member names are refused when absolute or containing "..". Symlinks and
 * hard links between members (docker save links repeated layers) are
 * followed lexically inside the archive, a few hops at most.
 */

#include <archive.h>
#include <archive_entry.h>
#include <dirent.h>
#include <fcntl.h>
#include <inttypes.h>
#include <jansson.h>
#include <stdio.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/cleanup.h"
#include "image/image-archive.h"
#include "oci/image-spec.h"

#define NAME_MAX_LEN 4096
#define LINK_HOPS_MAX 8
#define BUF_SIZE (128 * 1024)
#define REF_NAME_ANNOTATION "org.opencontainers.image.ref.name"
#define CONTAINERD_NAME_ANNOTATION "io.containerd.image.name"

struct member {
        char *name;
        char *digest; /* ingested blob, or NULL */
        int64_t size;
        char *link;   /* normalised link target, or NULL */
};

#define PROGRESS_EVERY (512u * 1024u)

struct loader {
        struct moat_store *store;
        const struct moat_archive_load_options *opts;
        struct member *members;
        size_t n_members;
        char *manifest_json;
        size_t manifest_json_len;
        char *index_json;
        size_t index_json_len;
        char *oci_layout;
        size_t oci_layout_len;
        struct moat_archive_result *result;
};

static void loader_done(struct loader *l)
{
        for (size_t i = 0; i < l->n_members; i++) {
                free(l->members[i].name);
                free(l->members[i].digest);
                free(l->members[i].link);
        }
        free(l->members);
        free(l->manifest_json);
        free(l->index_json);
        free(l->oci_layout);
        moat_archive_result_free(l->result);
}

void moat_archive_result_free(struct moat_archive_result *r)
{
        if (!r)
                return;
        for (size_t i = 0; i < r->n_images; i++) {
                free(r->images[i].ref);
                free(r->images[i].digest);
                free(r->images[i].media_type);
        }
        free(r->images);
        free(r);
}

static void archive_readp(struct archive **a)
{
        if (*a)
                archive_read_free(*a);
}

static void archive_writep(struct archive **a)
{
        if (*a)
                archive_write_free(*a);
}


static bool is_hex64(const char *s, size_t len)
{
        if (len != 64)
                return false;
        for (size_t i = 0; i < 64; i++)
                if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
                        return false;
        return true;
}

/* Lexically normalise a member name: drop "./", "." and empty components;
 * pop ".." only when allow_dotdot (link targets), refuse leaving the top.
 * base, when given, is the directory a relative link target is relative to. */
static int normalise_name(const char *base, const char *name, bool allow_dotdot, char **ret,
                          struct moat_error **reterr)
{
        _cleanup_free_ char *joined = NULL, *out = NULL;
        size_t olen = 0;

        if (strempty(name))
                return moat_error_setx(reterr, -EINVAL, "empty member name");
        if (strlen(name) > NAME_MAX_LEN)
                return moat_error_setx(reterr, -ENAMETOOLONG, "member name longer than %d bytes", NAME_MAX_LEN);
        if (name[0] == '/')
                return moat_error_setx(reterr, -EINVAL, "member name \"%s\" is absolute", name);
        if (asprintf(&joined, "%s%s%s", base ? base : "", base && *base ? "/" : "", name) < 0)
                return -ENOMEM;
        out = calloc(1, strlen(joined) + 1);
        if (!out)
                return -ENOMEM;
        for (char *save = NULL, *c = strtok_r(joined, "/", &save); c; c = strtok_r(NULL, "/", &save)) {
                if (streq(c, "."))
                        continue;
                if (streq(c, "..")) {
                        if (!allow_dotdot || olen == 0)
                                return moat_error_setx(reterr, -EINVAL, "member name \"%s\" contains \"..\"", name);
                        char *slash = memrchr(out, '/', olen);
                        olen = slash ? (size_t) (slash - out) : 0;
                        out[olen] = 0;
                        continue;
                }
                if (olen > 0)
                        out[olen++] = '/';
                memcpy(out + olen, c, strlen(c));
                olen += strlen(c);
                out[olen] = 0;
        }
        if (olen == 0)
                return moat_error_setx(reterr, -EINVAL, "member name \"%s\" names the archive's top", name);
        *ret = TAKE_PTR(out);
        return 0;
}

static struct member *find_member(struct loader *l, const char *name)
{
        for (size_t i = 0; i < l->n_members; i++)
                if (streq(l->members[i].name, name))
                        return &l->members[i];
        return NULL;
}

/* Resolve a member name through links to the ingested blob. */
static int member_blob(struct loader *l, const char *name, const struct member **ret, struct moat_error **reterr)
{
        _cleanup_free_ char *norm = NULL;
        const char *cur;
        int r;

        r = normalise_name(NULL, name, false, &norm, reterr);
        if (r < 0)
                return r;
        cur = norm;
        for (unsigned hop = 0; hop <= LINK_HOPS_MAX; hop++) {
                const struct member *m = find_member(l, cur);
                if (!m)
                        return moat_error_setx(reterr, -ENOENT, "member \"%s\" is not in the archive", cur);
                if (m->link) {
                        cur = m->link;
                        continue;
                }
                if (!m->digest)
                        return moat_error_setx(reterr, -EINVAL, "member \"%s\" is not an image blob", cur);
                *ret = m;
                return 0;
        }
        return moat_error_setx(reterr, -ELOOP, "member \"%s\": too many links", name);
}

static int add_member(struct loader *l, const char *name, const char *digest, int64_t size, const char *link)
{
        struct member *n, *m;

        n = reallocarray(l->members, l->n_members + 1, sizeof(*n));
        if (!n)
                return -ENOMEM;
        l->members = n;
        m = &l->members[l->n_members];
        *m = (struct member) { .size = size };
        m->name = strdup(name);
        m->digest = digest ? strdup(digest) : NULL;
        m->link = link ? strdup(link) : NULL;
        l->n_members++;
        if (!m->name || (digest && !m->digest) || (link && !m->link))
                return -ENOMEM;
        return 0;
}

static void progress(const struct loader *l, struct moat_archive_progress *p)
{
        if (l && l->opts && l->opts->progress)
                l->opts->progress(p, l->opts->userdata);
}

/* p is NULL when nobody wants progress of this member. */
static int read_member_data(struct archive *a, const char *name, struct moat_ingest *in, char *buf, size_t max,
                            size_t *ret_len, const struct loader *l, struct moat_archive_progress *p,
                            struct moat_error **reterr)
{
        const void *block;
        size_t len, total = 0;
        uint64_t last = 0;
        la_int64_t offset;
        int r;

        for (;;) {
                r = archive_read_data_block(a, &block, &len, &offset);
                if (r == ARCHIVE_EOF)
                        break;
                if (r < ARCHIVE_WARN)
                        return moat_error_setx(reterr, -EIO, "member \"%s\": %s", name, archive_error_string(a));
                if (offset < 0 || (uint64_t) offset != total)
                        return moat_error_setx(reterr, -EINVAL, "member \"%s\": sparse members are not supported",
                                               name);
                if (in) {
                        r = moat_ingest_write(in, block, len, reterr);
                        if (r < 0)
                                return moat_error_wrap(reterr, r, "member \"%s\"", name);
                        if (p && len > 0) {
                                if (total == 0)
                                        p->kind = ((const char *) block)[0] == '{' ? MOAT_ARCHIVE_BLOB_DOCUMENT
                                                                                    : MOAT_ARCHIVE_BLOB_LAYER;
                                p->current = total + len;
                                if (total == 0 || p->current - last >= PROGRESS_EVERY) {
                                        last = p->current;
                                        progress(l, p);
                                }
                        }
                } else {
                        if (len > max - total)
                                return moat_error_setx(reterr, -EFBIG, "member \"%s\" is larger than %zu bytes",
                                                       name, max);
                        memcpy(buf + total, block, len);
                }
                total += len;
        }
        if (ret_len)
                *ret_len = total;
        return 0;
}

static int keep_json(struct archive *a, const char *name, int64_t size, char **slot, size_t *slot_len,
                     struct moat_error **reterr)
{
        _cleanup_free_ char *buf = NULL;
        size_t len;
        int r;

        if (*slot)
                return moat_error_setx(reterr, -EINVAL, "member \"%s\" appears twice", name);
        if (size < 0 || size > (int64_t) MOAT_ARCHIVE_JSON_MAX)
                return moat_error_setx(reterr, -EFBIG, "member \"%s\" is larger than %u bytes", name,
                                       MOAT_ARCHIVE_JSON_MAX);
        buf = malloc((size_t) size + 1);
        if (!buf)
                return -ENOMEM;
        r = read_member_data(a, name, NULL, buf, (size_t) size, &len, NULL, NULL, reterr);
        if (r < 0)
                return r;
        buf[len] = 0;
        *slot = TAKE_PTR(buf);
        *slot_len = len;
        return 0;
}

static int ingest_member(struct loader *l, struct archive *a, const char *name, const char *expected, int64_t size,
                         struct moat_error **reterr)
{
        struct moat_ingest *in = NULL;
        _cleanup_free_ char *digest = NULL;
        int r;

        if (size > MOAT_ARCHIVE_MEMBER_MAX)
                return moat_error_setx(reterr, -EFBIG, "member \"%s\" is larger than %" PRId64 " bytes", name,
                                       MOAT_ARCHIVE_MEMBER_MAX);
        struct moat_archive_progress p = {
                .member = name,
                .digest = expected,
                .kind = MOAT_ARCHIVE_BLOB_DOCUMENT,
                .total = size,
        };
        bool want = l->opts && l->opts->progress;

        r = moat_store_ingest_begin(l->store, expected, size, &in, reterr);
        if (r < 0)
                return moat_error_wrap(reterr, r, "member \"%s\"", name);
        r = read_member_data(a, name, in, NULL, 0, NULL, l, want ? &p : NULL, reterr);
        if (r < 0) {
                moat_ingest_abort(in);
                return r;
        }
        r = moat_ingest_commit(in, &digest, reterr);
        if (r < 0)
                return moat_error_wrap(reterr, r, "member \"%s\"", name);
        if (want) {
                p.done = true;
                progress(l, &p);
        }
        return add_member(l, name, digest, size, NULL);
}

static int load_entry(struct loader *l, struct archive *a, struct archive_entry *e, struct moat_error **reterr)
{
        _cleanup_free_ char *name = NULL;
        const char *raw = archive_entry_pathname(e);
        mode_t type = archive_entry_filetype(e);
        int64_t size = archive_entry_size_is_set(e) ? archive_entry_size(e) : -1;
        int r;

        /* Directories carry nothing a layout needs ("./" of `tar -C DIR -cf F .` included). */
        if (type == AE_IFDIR)
                return 0;
        r = normalise_name(NULL, raw ? raw : "", false, &name, reterr);
        if (r < 0)
                return r;

        if (archive_entry_hardlink(e)) {
                _cleanup_free_ char *target = NULL;
                r = normalise_name(NULL, archive_entry_hardlink(e), false, &target, reterr);
                if (r < 0)
                        return moat_error_wrap(reterr, r, "link target of member \"%s\"", name);
                return add_member(l, name, NULL, -1, target);
        }
        if (type == AE_IFLNK) {
                _cleanup_free_ char *target = NULL, *dir = strdup(name);
                char *slash;
                if (!dir)
                        return -ENOMEM;
                slash = strrchr(dir, '/');
                if (slash)
                        *slash = 0;
                else
                        dir[0] = 0;
                r = normalise_name(dir, archive_entry_symlink(e) ? archive_entry_symlink(e) : "", true, &target,
                                   reterr);
                if (r < 0)
                        return moat_error_wrap(reterr, r, "link target of member \"%s\"", name);
                return add_member(l, name, NULL, -1, target);
        }
        if (type != AE_IFREG)
                return 0; /* directories and anything else carry nothing */

        if (streq(name, "manifest.json"))
                return keep_json(a, name, size, &l->manifest_json, &l->manifest_json_len, reterr);
        if (streq(name, "index.json"))
                return keep_json(a, name, size, &l->index_json, &l->index_json_len, reterr);
        if (streq(name, "oci-layout"))
                return keep_json(a, name, size, &l->oci_layout, &l->oci_layout_len, reterr);

        if (startswith(name, "blobs/sha256/") && is_hex64(name + 13, strlen(name + 13))) {
                char expected[OCI_DIGEST_STRING_SIZE];
                snprintf(expected, sizeof(expected), "sha256:%s", name + 13);
                return ingest_member(l, a, name, expected, size, reterr);
        }
        if (!strchr(name, '/') && strlen(name) == 69 && streq(name + 64, ".json") && is_hex64(name, 64)) {
                char expected[OCI_DIGEST_STRING_SIZE];
                snprintf(expected, sizeof(expected), "sha256:%.64s", name);
                return ingest_member(l, a, name, expected, size, reterr);
        }
        {
                const char *slash = strchr(name, '/');
                if (slash && !strchr(slash + 1, '/') && streq(slash + 1, "layer.tar"))
                        return ingest_member(l, a, name, NULL, size, reterr);
        }
        /* podman and skopeo write each layer once as <diffid>.tar at the
         * top, <dir>/layer.tar being a symlink to it; its digest is checked
         * against the config's diff_ids when the manifest is made. */
        if (!strchr(name, '/') && strlen(name) == 68 && streq(name + 64, ".tar") && is_hex64(name, 64))
                return ingest_member(l, a, name, NULL, size, reterr);
        return 0; /* repositories, legacy <dir>/json and VERSION: not needed */
}

static int result_add(struct loader *l, const char *ref, const char *digest, const char *media_type, int64_t size)
{
        struct moat_archive_image *n, *img;

        if (!l->result) {
                l->result = calloc(1, sizeof(*l->result));
                if (!l->result)
                        return -ENOMEM;
        }
        if (l->result->n_images >= MOAT_ARCHIVE_IMAGES_MAX)
                return -E2BIG;
        n = reallocarray(l->result->images, l->result->n_images + 1, sizeof(*n));
        if (!n)
                return -ENOMEM;
        l->result->images = n;
        img = &n[l->result->n_images++];
        *img = (struct moat_archive_image) { .size = size };
        img->ref = ref ? strdup(ref) : NULL;
        img->digest = strdup(digest);
        img->media_type = strdup(media_type);
        if ((ref && !img->ref) || !img->digest || !img->media_type)
                return -ENOMEM;
        return 0;
}

static int blob_size(struct moat_store *s, const char *digest, int64_t *ret, struct moat_error **reterr)
{
        _cleanup_close_ int fd = -EBADF;
        struct stat st;
        int r;

        r = moat_store_open_blob(s, digest, false, &fd, reterr);
        if (r < 0)
                return r;
        if (fstat(fd, &st) < 0)
                return moat_error_set(reterr, errno, "stat blob %s", digest);
        *ret = st.st_size;
        return 0;
}

static int require_blob(struct moat_store *s, const struct oci_descriptor *d, struct moat_error **reterr)
{
        int64_t size;
        int r;

        r = moat_store_has_blob(s, d->digest);
        if (r < 0)
                return moat_error_set(reterr, r, "blob %s", d->digest);
        if (r == 0)
                return moat_error_setx(reterr, -ENOENT, "blob %s is neither in the archive nor in the store",
                                       d->digest);
        r = blob_size(s, d->digest, &size, reterr);
        if (r < 0)
                return r;
        if (size != d->size)
                return moat_error_setx(reterr, -EBADMSG, "blob %s has %" PRId64 " bytes, its descriptor says %" PRId64,
                                       d->digest, size, d->size);
        return 0;
}

static int read_doc(struct moat_store *s, const char *digest, const char *media_type, struct oci_image_doc **ret,
                    struct moat_error **reterr)
{
        _cleanup_free_ char *buf = NULL;
        size_t len;
        int r;

        r = moat_store_read_blob(s, digest, MOAT_ARCHIVE_JSON_MAX, &buf, &len, reterr);
        if (r < 0)
                return r;
        r = oci_image_doc_parse(buf, len, media_type, ret, reterr);
        if (r < 0)
                return moat_error_wrap(reterr, r, "blob %s", digest);
        return 0;
}

/* The descriptor's blob is present; a manifest's config and layers too. */
static int check_descriptor(struct moat_store *s, const struct oci_descriptor *d, const char **ret_config,
                            struct oci_image_doc **ret_doc, struct moat_error **reterr)
{
        _cleanup_oci_image_doc_ struct oci_image_doc *doc = NULL;
        const struct oci_manifest *m;
        int r;

        r = require_blob(s, d, reterr);
        if (r < 0)
                return r;
        r = read_doc(s, d->digest, d->media_type, &doc, reterr);
        if (r < 0)
                return r;
        m = oci_image_doc_manifest(doc);
        if (m) {
                r = require_blob(s, &m->config, reterr);
                if (r < 0)
                        return moat_error_wrap(reterr, r, "config of manifest %s", d->digest);
                for (size_t i = 0; i < m->n_layers; i++) {
                        r = require_blob(s, &m->layers[i], reterr);
                        if (r < 0)
                                return moat_error_wrap(reterr, r, "layers[%zu] of manifest %s", i, d->digest);
                }
                *ret_config = m->config.digest;
        } else if (!oci_image_doc_index(doc))
                return moat_error_setx(reterr, -EINVAL, "index.json entry %s is neither a manifest nor an index",
                                       d->digest);
        *ret_doc = TAKE_PTR(doc);
        return 0;
}

/* docker 25's manifest.json entry whose Config is this config blob. */
static json_t *docker_entry_for_config(json_t *mj, const char *config_digest)
{
        size_t i;
        json_t *e;

        if (!mj || !config_digest)
                return NULL;
        json_array_foreach(mj, i, e) {
                const char *c = json_string_value(json_object_get(e, "Config"));
                if (c && startswith(c, "blobs/sha256/") && streq(c + 13, config_digest + 7))
                        return e;
        }
        return NULL;
}

static int parse_manifest_json(struct loader *l, json_t **ret, struct moat_error **reterr)
{
        json_error_t jerr;
        json_t *j;

        j = json_loadb(l->manifest_json, l->manifest_json_len, JSON_REJECT_DUPLICATES, &jerr);
        if (!j)
                return moat_error_setx(reterr, -EINVAL, "manifest.json: %s (line %d)", jerr.text, jerr.line);
        if (!json_is_array(j) || json_array_size(j) > MOAT_ARCHIVE_IMAGES_MAX) {
                json_decref(j);
                return moat_error_setx(reterr, -EINVAL, "manifest.json: not an array of at most %u images",
                                       MOAT_ARCHIVE_IMAGES_MAX);
        }
        *ret = j;
        return 0;
}

static int resolve_oci(struct loader *l, struct moat_error **reterr)
{
        _cleanup_oci_image_doc_ struct oci_image_doc *idx = NULL;
        _cleanup_(json_decrefp) json_t *mj = NULL, *layout = NULL;
        const struct oci_index *index;
        json_error_t jerr;
        const char *ver;
        int r;

        if (!l->oci_layout)
                return moat_error_setx(reterr, -EINVAL, "index.json without oci-layout: not an OCI image layout");
        layout = json_loadb(l->oci_layout, l->oci_layout_len, 0, &jerr);
        ver = json_string_value(json_object_get(layout, "imageLayoutVersion"));
        if (!ver || !streq(ver, "1.0.0"))
                return moat_error_setx(reterr, -EPROTONOSUPPORT,
                                       "oci-layout: imageLayoutVersion is not \"1.0.0\"");
        r = oci_image_doc_parse(l->index_json, l->index_json_len, OCI_MT_INDEX, &idx, reterr);
        if (r < 0)
                return moat_error_wrap(reterr, r, "index.json");
        index = oci_image_doc_index(idx);
        if (l->manifest_json) {
                r = parse_manifest_json(l, &mj, reterr);
                if (r < 0)
                        return r;
        }

        for (size_t i = 0; i < index->n_manifests; i++) {
                const struct oci_descriptor *d = &index->manifests[i];
                _cleanup_oci_image_doc_ struct oci_image_doc *doc = NULL;
                const char *config = NULL, *ref;
                json_t *entry, *tags;

                r = check_descriptor(l->store, d, &config, &doc, reterr);
                if (r < 0)
                        return moat_error_wrap(reterr, r, "index.json manifests[%zu]", i);

                /* docker 25 with the containerd store saves an index per image */
                if (!config && mj && oci_image_doc_index(doc)) {
                        const struct oci_index *sub = oci_image_doc_index(doc);
                        for (size_t k = 0; k < sub->n_manifests; k++) {
                                _cleanup_oci_image_doc_ struct oci_image_doc *child = NULL;
                                const struct oci_manifest *cm;
                                if (moat_store_has_blob(l->store, sub->manifests[k].digest) <= 0)
                                        continue;
                                if (read_doc(l->store, sub->manifests[k].digest, sub->manifests[k].media_type,
                                             &child, NULL) < 0)
                                        continue;
                                cm = oci_image_doc_manifest(child);
                                if (cm && docker_entry_for_config(mj, cm->config.digest)) {
                                        entry = docker_entry_for_config(mj, cm->config.digest);
                                        goto tagged;
                                }
                        }
                }
                entry = docker_entry_for_config(mj, config);
        tagged:
                tags = entry ? json_object_get(entry, "RepoTags") : NULL;
                if (json_is_array(tags) && json_array_size(tags) > 0) {
                        size_t k;
                        json_t *t;
                        json_array_foreach(tags, k, t) {
                                if (!json_is_string(t))
                                        return moat_error_setx(reterr, -EINVAL,
                                                               "manifest.json: RepoTags[%zu] is not a string", k);
                                r = result_add(l, json_string_value(t), d->digest, d->media_type, d->size);
                                if (r < 0)
                                        return moat_error_set(reterr, r, "images of the archive");
                        }
                        continue;
                }
                ref = oci_key_value_find(d->annotations, d->n_annotations, CONTAINERD_NAME_ANNOTATION);
                if (!ref)
                        ref = oci_key_value_find(d->annotations, d->n_annotations, REF_NAME_ANNOTATION);
                r = result_add(l, ref, d->digest, d->media_type, d->size);
                if (r < 0)
                        return moat_error_set(reterr, r, "images of the archive");
        }
        return 0;
}

static int descriptor_json(const char *media_type, const char *digest, int64_t size, json_t **ret)
{
        json_t *d = json_pack("{s:s, s:s, s:I}", "mediaType", media_type, "digest", digest, "size",
                              (json_int_t) size);
        if (!d)
                return -ENOMEM;
        *ret = d;
        return 0;
}

static int resolve_legacy_one(struct loader *l, json_t *entry, size_t i, struct moat_error **reterr)
{
        _cleanup_(json_decrefp) json_t *manifest = NULL, *layers_out = NULL;
        _cleanup_oci_image_doc_ struct oci_image_doc *cdoc = NULL;
        _cleanup_free_ char *text = NULL, *digest = NULL;
        const struct oci_image_config *config;
        const struct member *cm;
        json_t *layers, *tags, *v, *desc = NULL;
        const char *cname;
        size_t k;
        int r;

        cname = json_string_value(json_object_get(entry, "Config"));
        layers = json_object_get(entry, "Layers");
        if (!cname || !json_is_array(layers))
                return moat_error_setx(reterr, -EINVAL, "manifest.json[%zu]: needs Config and Layers", i);
        if (json_array_size(layers) > OCI_IMAGE_LAYERS_MAX)
                return moat_error_setx(reterr, -E2BIG, "manifest.json[%zu]: more than %u layers", i,
                                       OCI_IMAGE_LAYERS_MAX);
        r = member_blob(l, cname, &cm, reterr);
        if (r < 0)
                return moat_error_wrap(reterr, r, "manifest.json[%zu].Config", i);
        r = read_doc(l->store, cm->digest, OCI_MT_CONFIG, &cdoc, reterr);
        if (r < 0)
                return moat_error_wrap(reterr, r, "manifest.json[%zu].Config \"%s\"", i, cname);
        config = oci_image_doc_config(cdoc);
        if (config->n_diff_ids != json_array_size(layers))
                return moat_error_setx(reterr, -EINVAL,
                                       "manifest.json[%zu]: %zu Layers but the config has %zu rootfs.diff_ids", i,
                                       json_array_size(layers), config->n_diff_ids);

        layers_out = json_array();
        if (!layers_out)
                return -ENOMEM;
        json_array_foreach(layers, k, v) {
                const struct member *lm;
                if (!json_is_string(v))
                        return moat_error_setx(reterr, -EINVAL, "manifest.json[%zu].Layers[%zu]: not a string", i, k);
                r = member_blob(l, json_string_value(v), &lm, reterr);
                if (r < 0)
                        return moat_error_wrap(reterr, r, "manifest.json[%zu].Layers[%zu]", i, k);
                if (!streq(lm->digest, config->diff_ids[k]))
                        return moat_error_setx(reterr, -EBADMSG,
                                               "member \"%s\" has digest %s but the config's rootfs.diff_ids[%zu] is %s"
                                               " (docker-archive layers must be uncompressed tars)",
                                               lm->name, lm->digest, k, config->diff_ids[k]);
                r = descriptor_json(OCI_MT_LAYER_TAR, lm->digest, lm->size, &desc);
                if (r < 0 || json_array_append_new(layers_out, desc) < 0)
                        return -ENOMEM;
        }
        r = descriptor_json(OCI_MT_CONFIG, cm->digest, cm->size, &desc);
        if (r < 0)
                return -ENOMEM;
        manifest = json_pack("{s:i, s:s, s:o, s:O}", "schemaVersion", 2, "mediaType", OCI_MT_MANIFEST, "config",
                             desc, "layers", layers_out);
        if (!manifest)
                return -ENOMEM;
        text = json_dumps(manifest, JSON_COMPACT | JSON_PRESERVE_ORDER);
        if (!text)
                return -ENOMEM;
        r = moat_store_put(l->store, text, strlen(text), NULL, &digest, reterr);
        if (r < 0)
                return moat_error_wrap(reterr, r, "manifest synthesised for manifest.json[%zu]", i);

        tags = json_object_get(entry, "RepoTags");
        if (json_is_array(tags) && json_array_size(tags) > 0) {
                json_array_foreach(tags, k, v) {
                        if (!json_is_string(v))
                                return moat_error_setx(reterr, -EINVAL,
                                                       "manifest.json[%zu].RepoTags[%zu]: not a string", i, k);
                        r = result_add(l, json_string_value(v), digest, OCI_MT_MANIFEST, (int64_t) strlen(text));
                        if (r < 0)
                                return moat_error_set(reterr, r, "images of the archive");
                }
                return 0;
        }
        r = result_add(l, NULL, digest, OCI_MT_MANIFEST, (int64_t) strlen(text));
        if (r < 0)
                return moat_error_set(reterr, r, "images of the archive");
        return 0;
}

static int resolve_legacy(struct loader *l, struct moat_error **reterr)
{
        _cleanup_(json_decrefp) json_t *mj = NULL;
        json_t *entry;
        size_t i;
        int r;

        r = parse_manifest_json(l, &mj, reterr);
        if (r < 0)
                return r;
        json_array_foreach(mj, i, entry) {
                r = resolve_legacy_one(l, entry, i, reterr);
                if (r < 0)
                        return r;
        }
        return 0;
}

static int resolve(struct loader *l, struct moat_archive_result **ret, struct moat_error **reterr)
{
        int r;

        if (l->index_json)
                r = resolve_oci(l, reterr);
        else if (l->manifest_json)
                r = resolve_legacy(l, reterr);
        else
                return moat_error_setx(reterr, -EINVAL,
                                       "the archive has neither index.json nor manifest.json: not an image archive");
        if (r < 0)
                return r;
        if (!l->result) {
                l->result = calloc(1, sizeof(*l->result));
                if (!l->result)
                        return -ENOMEM;
        }
        *ret = TAKE_PTR(l->result);
        return 0;
}

int moat_archive_load(struct moat_store *s, int fd, const struct moat_archive_load_options *opts,
                      struct moat_archive_result **ret, struct moat_error **reterr)
{
        _cleanup_(archive_readp) struct archive *a = NULL;
        _cleanup_(loader_done) struct loader l = { .store = s, .opts = opts };
        struct archive_entry *e;
        size_t n = 0;
        int r;

        a = archive_read_new();
        if (!a)
                return -ENOMEM;
        if (archive_read_support_format_tar(a) != ARCHIVE_OK || archive_read_support_filter_gzip(a) != ARCHIVE_OK ||
            archive_read_support_filter_zstd(a) < ARCHIVE_WARN)
                return moat_error_setx(reterr, -EIO, "archive reader: %s", archive_error_string(a));
        if (archive_read_open_fd(a, fd, 64 * 1024) != ARCHIVE_OK)
                return moat_error_setx(reterr, -EINVAL, "image archive: %s", archive_error_string(a));
        for (;;) {
                r = archive_read_next_header(a, &e);
                if (r == ARCHIVE_EOF)
                        break;
                if (r < ARCHIVE_WARN)
                        return moat_error_setx(reterr, -EINVAL, "image archive: %s", archive_error_string(a));
                if (++n > MOAT_ARCHIVE_ENTRIES_MAX)
                        return moat_error_setx(reterr, -E2BIG, "image archive has more than %u members",
                                               MOAT_ARCHIVE_ENTRIES_MAX);
                r = load_entry(&l, a, e, reterr);
                if (r < 0)
                        return moat_error_wrap(reterr, r, "image archive");
        }
        r = resolve(&l, ret, reterr);
        if (r < 0)
                return moat_error_wrap(reterr, r, "image archive");
        return 0;
}

static int ingest_file(struct loader *l, int fd, const char *name, const char *expected, struct moat_error **reterr)
{
        struct moat_ingest *in = NULL;
        _cleanup_free_ char *digest = NULL, *buf = malloc(BUF_SIZE);
        struct stat st;
        int r;

        if (!buf)
                return -ENOMEM;
        if (fstat(fd, &st) < 0)
                return moat_error_set(reterr, errno, "%s", name);
        if (!S_ISREG(st.st_mode))
                return moat_error_setx(reterr, -EINVAL, "%s is not a regular file", name);
        r = moat_store_ingest_begin(l->store, expected, st.st_size, &in, reterr);
        if (r < 0)
                return moat_error_wrap(reterr, r, "%s", name);
        for (;;) {
                ssize_t k = read(fd, buf, BUF_SIZE);
                if (k < 0) {
                        if (errno == EINTR)
                                continue;
                        r = moat_error_set(reterr, errno, "read %s", name);
                        moat_ingest_abort(in);
                        return r;
                }
                if (k == 0)
                        break;
                r = moat_ingest_write(in, buf, (size_t) k, reterr);
                if (r < 0) {
                        moat_ingest_abort(in);
                        return moat_error_wrap(reterr, r, "%s", name);
                }
        }
        r = moat_ingest_commit(in, &digest, reterr);
        if (r < 0)
                return moat_error_wrap(reterr, r, "%s", name);
        return add_member(l, name, digest, st.st_size, NULL);
}

static int read_small_at(int dir_fd, const char *name, char **ret, size_t *ret_len, struct moat_error **reterr)
{
        _cleanup_close_ int fd = -EBADF;
        _cleanup_free_ char *buf = NULL;
        size_t len = 0;
        struct stat st;

        fd = openat(dir_fd, name, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
        if (fd < 0)
                return moat_error_set(reterr, errno, "%s", name);
        if (fstat(fd, &st) < 0)
                return moat_error_set(reterr, errno, "%s", name);
        if (!S_ISREG(st.st_mode) || st.st_size > (off_t) MOAT_ARCHIVE_JSON_MAX)
                return moat_error_setx(reterr, -EINVAL, "%s is not a regular file of at most %u bytes", name,
                                       MOAT_ARCHIVE_JSON_MAX);
        buf = malloc((size_t) st.st_size + 1);
        if (!buf)
                return -ENOMEM;
        while (len < (size_t) st.st_size) {
                ssize_t k = read(fd, buf + len, (size_t) st.st_size - len);
                if (k < 0 && errno == EINTR)
                        continue;
                if (k < 0)
                        return moat_error_set(reterr, errno, "read %s", name);
                if (k == 0)
                        break;
                len += (size_t) k;
        }
        buf[len] = 0;
        *ret = TAKE_PTR(buf);
        *ret_len = len;
        return 0;
}

int moat_archive_load_layout_dir(struct moat_store *s, int dir_fd, struct moat_archive_result **ret,
                                 struct moat_error **reterr)
{
        _cleanup_(loader_done) struct loader l = { .store = s };
        _cleanup_closedir_ DIR *d = NULL;
        struct dirent *de;
        size_t n = 0;
        int bfd, r;

        r = read_small_at(dir_fd, "oci-layout", &l.oci_layout, &l.oci_layout_len, reterr);
        if (r < 0)
                return moat_error_wrap(reterr, r, "OCI layout");
        r = read_small_at(dir_fd, "index.json", &l.index_json, &l.index_json_len, reterr);
        if (r < 0)
                return moat_error_wrap(reterr, r, "OCI layout");

        bfd = openat(dir_fd, "blobs/sha256", O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW);
        if (bfd < 0)
                return moat_error_set(reterr, errno, "OCI layout: blobs/sha256");
        d = fdopendir(bfd);
        if (!d) {
                r = moat_error_set(reterr, errno, "OCI layout: blobs/sha256");
                safe_close(bfd);
                return r;
        }
        while ((errno = 0, de = readdir(d))) {
                _cleanup_close_ int fd = -EBADF;
                char name[NAME_MAX_LEN], expected[OCI_DIGEST_STRING_SIZE];

                if (streq(de->d_name, ".") || streq(de->d_name, ".."))
                        continue;
                if (++n > MOAT_ARCHIVE_ENTRIES_MAX)
                        return moat_error_setx(reterr, -E2BIG, "OCI layout: more than %u blobs",
                                               MOAT_ARCHIVE_ENTRIES_MAX);
                snprintf(name, sizeof(name), "blobs/sha256/%s", de->d_name);
                if (!is_hex64(de->d_name, strlen(de->d_name)))
                        return moat_error_setx(reterr, -EINVAL, "OCI layout: %s is not named by a sha256 digest",
                                               name);
                snprintf(expected, sizeof(expected), "sha256:%s", de->d_name);
                fd = openat(dirfd(d), de->d_name, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
                if (fd < 0)
                        return moat_error_set(reterr, errno, "OCI layout: %s", name);
                r = ingest_file(&l, fd, name, expected, reterr);
                if (r < 0)
                        return moat_error_wrap(reterr, r, "OCI layout");
        }
        if (errno != 0)
                return moat_error_set(reterr, errno, "OCI layout: read blobs/sha256");
        r = resolve(&l, ret, reterr);
        if (r < 0)
                return moat_error_wrap(reterr, r, "OCI layout");
        return 0;
}

/* ---- save ---- */

struct saver {
        struct moat_store *store;
        struct archive *a;
        char **written; /* digests already in the tar */
        size_t n_written;
};

static int write_member(struct archive *a, const char *name, const void *buf, size_t len, struct moat_error **reterr)
{
        struct archive_entry *e = archive_entry_new();
        int r = 0;

        if (!e)
                return -ENOMEM;
        archive_entry_set_pathname(e, name);
        archive_entry_set_filetype(e, AE_IFREG);
        archive_entry_set_perm(e, 0644);
        archive_entry_set_size(e, (la_int64_t) len);
        if (archive_write_header(a, e) != ARCHIVE_OK ||
            (len > 0 && archive_write_data(a, buf, len) != (la_ssize_t) len))
                r = moat_error_setx(reterr, -EIO, "write %s: %s", name, archive_error_string(a));
        archive_entry_free(e);
        return r;
}

static int write_blob(struct saver *sv, const char *digest, struct moat_error **reterr)
{
        _cleanup_close_ int fd = -EBADF;
        _cleanup_free_ char *buf = malloc(BUF_SIZE);
        struct archive_entry *e;
        char name[NAME_MAX_LEN];
        struct stat st;
        int64_t left;
        char **n;
        int r;

        if (!buf)
                return -ENOMEM;
        for (size_t i = 0; i < sv->n_written; i++)
                if (streq(sv->written[i], digest))
                        return 0;
        r = moat_store_open_blob(sv->store, digest, false, &fd, reterr);
        if (r < 0)
                return r;
        if (fstat(fd, &st) < 0)
                return moat_error_set(reterr, errno, "blob %s", digest);
        snprintf(name, sizeof(name), "blobs/sha256/%s", digest + 7);
        e = archive_entry_new();
        if (!e)
                return -ENOMEM;
        archive_entry_set_pathname(e, name);
        archive_entry_set_filetype(e, AE_IFREG);
        archive_entry_set_perm(e, 0644);
        archive_entry_set_size(e, st.st_size);
        r = archive_write_header(sv->a, e);
        archive_entry_free(e);
        if (r != ARCHIVE_OK)
                return moat_error_setx(reterr, -EIO, "write %s: %s", name, archive_error_string(sv->a));
        for (left = st.st_size; left > 0;) {
                ssize_t k = read(fd, buf, left < BUF_SIZE ? (size_t) left : BUF_SIZE);
                if (k < 0 && errno == EINTR)
                        continue;
                if (k < 0)
                        return moat_error_set(reterr, errno, "read blob %s", digest);
                if (k == 0)
                        return moat_error_setx(reterr, -EIO, "blob %s shrank while being saved", digest);
                if (archive_write_data(sv->a, buf, (size_t) k) != k)
                        return moat_error_setx(reterr, -EIO, "write %s: %s", name, archive_error_string(sv->a));
                left -= k;
        }
        n = reallocarray(sv->written, sv->n_written + 1, sizeof(*n));
        if (!n)
                return -ENOMEM;
        sv->written = n;
        n[sv->n_written] = strdup(digest);
        if (!n[sv->n_written])
                return -ENOMEM;
        sv->n_written++;
        return 0;
}

/* Write a manifest's blobs; for docker format also its manifest.json entry. */
static int save_manifest(struct saver *sv, const struct oci_manifest *m, const char *digest, json_t *docker,
                         const char *ref, struct moat_error **reterr)
{
        char path[OCI_DIGEST_STRING_SIZE + 16];
        json_t *entry = NULL, *layers;
        size_t i;
        int r;

        r = write_blob(sv, digest, reterr);
        if (r < 0)
                return r;
        r = write_blob(sv, m->config.digest, reterr);
        if (r < 0)
                return moat_error_wrap(reterr, r, "config of manifest %s", digest);
        for (i = 0; i < m->n_layers; i++) {
                r = write_blob(sv, m->layers[i].digest, reterr);
                if (r < 0)
                        return moat_error_wrap(reterr, r, "layers[%zu] of manifest %s", i, digest);
        }
        if (!docker || m->artifact)
                return 0;

        snprintf(path, sizeof(path), "blobs/sha256/%s", m->config.digest + 7);
        json_array_foreach(docker, i, entry)
                if (streq(json_string_value(json_object_get(entry, "Config")), path))
                        break;
        if (i == json_array_size(docker)) {
                layers = json_array();
                entry = json_pack("{s:s, s:[], s:o}", "Config", path, "RepoTags", "Layers", layers);
                if (!entry || json_array_append_new(docker, entry) < 0)
                        return -ENOMEM;
                for (size_t k = 0; k < m->n_layers; k++) {
                        snprintf(path, sizeof(path), "blobs/sha256/%s", m->layers[k].digest + 7);
                        if (json_array_append_new(layers, json_string(path)) < 0)
                                return -ENOMEM;
                }
        }
        if (ref && json_array_append_new(json_object_get(entry, "RepoTags"), json_string(ref)) < 0)
                return -ENOMEM;
        return 0;
}

static int save_image(struct saver *sv, const struct moat_archive_save_image *img, json_t *index_manifests,
                      json_t *docker, struct moat_error **reterr)
{
        _cleanup_oci_image_doc_ struct oci_image_doc *doc = NULL;
        const struct oci_index *idx;
        json_t *desc = NULL;
        int64_t size;
        int r;

        r = moat_digest_validate(img->digest, reterr);
        if (r < 0)
                return r;
        r = read_doc(sv->store, img->digest, NULL, &doc, reterr);
        if (r < 0)
                return r;
        r = blob_size(sv->store, img->digest, &size, reterr);
        if (r < 0)
                return r;
        if (oci_image_doc_manifest(doc)) {
                r = save_manifest(sv, oci_image_doc_manifest(doc), img->digest, docker, img->ref, reterr);
                if (r < 0)
                        return r;
        } else if ((idx = oci_image_doc_index(doc))) {
                r = write_blob(sv, img->digest, reterr);
                if (r < 0)
                        return r;
                for (size_t i = 0; i < idx->n_manifests; i++) {
                        _cleanup_oci_image_doc_ struct oci_image_doc *child = NULL;
                        const struct oci_descriptor *c = &idx->manifests[i];
                        if (moat_store_has_blob(sv->store, c->digest) <= 0)
                                continue; /* platforms that were not pulled */
                        r = read_doc(sv->store, c->digest, c->media_type, &child, reterr);
                        if (r < 0)
                                return r;
                        if (!oci_image_doc_manifest(child))
                                continue;
                        r = save_manifest(sv, oci_image_doc_manifest(child), c->digest, NULL, NULL, reterr);
                        if (r < 0)
                                return moat_error_wrap(reterr, r, "manifests[%zu] of index %s", i, img->digest);
                }
        } else
                return moat_error_setx(reterr, -EINVAL, "%s is neither a manifest nor an index", img->digest);

        r = descriptor_json(doc->media_type, img->digest, size, &desc);
        if (r < 0)
                return r;
        if (img->ref && json_object_set_new(desc, "annotations",
                                            json_pack("{s:s, s:s}", CONTAINERD_NAME_ANNOTATION, img->ref,
                                                      REF_NAME_ANNOTATION, img->ref)) < 0) {
                json_decref(desc);
                return -ENOMEM;
        }
        if (json_array_append_new(index_manifests, desc) < 0)
                return -ENOMEM;
        return 0;
}

int moat_archive_save(struct moat_store *s, const struct moat_archive_save_image *images, size_t n, int out_fd,
                      enum moat_archive_format format, struct moat_error **reterr)
{
        static const char layout[] = "{\"imageLayoutVersion\":\"1.0.0\"}";
        _cleanup_(archive_writep) struct archive *a = NULL;
        _cleanup_(json_decrefp) json_t *manifests = NULL, *docker = NULL, *index = NULL;
        _cleanup_free_ char *index_text = NULL, *docker_text = NULL;
        struct saver sv = { .store = s };
        int r;

        if (n == 0 || n > MOAT_ARCHIVE_IMAGES_MAX)
                return moat_error_setx(reterr, -EINVAL, "save: between 1 and %u images", MOAT_ARCHIVE_IMAGES_MAX);
        a = archive_write_new();
        if (!a)
                return -ENOMEM;
        if (archive_write_set_format_pax_restricted(a) != ARCHIVE_OK || archive_write_add_filter_none(a) != ARCHIVE_OK ||
            archive_write_set_bytes_in_last_block(a, 1) != ARCHIVE_OK || archive_write_open_fd(a, out_fd) != ARCHIVE_OK)
                return moat_error_setx(reterr, -EIO, "save: %s", archive_error_string(a));
        sv.a = a;
        manifests = json_array();
        docker = format == MOAT_ARCHIVE_DOCKER ? json_array() : NULL;
        if (!manifests || (format == MOAT_ARCHIVE_DOCKER && !docker))
                return -ENOMEM;

        r = write_member(a, "oci-layout", layout, strlen(layout), reterr);
        for (size_t i = 0; r >= 0 && i < n; i++) {
                r = save_image(&sv, &images[i], manifests, docker, reterr);
                if (r < 0)
                        r = moat_error_wrap(reterr, r, "save %s", images[i].ref ? images[i].ref : images[i].digest);
        }
        for (size_t i = 0; i < sv.n_written; i++)
                free(sv.written[i]);
        free(sv.written);
        if (r < 0)
                return r;

        index = json_pack("{s:i, s:s, s:O}", "schemaVersion", 2, "mediaType", OCI_MT_INDEX, "manifests", manifests);
        if (!index || !(index_text = json_dumps(index, JSON_COMPACT | JSON_PRESERVE_ORDER)))
                return -ENOMEM;
        r = write_member(a, "index.json", index_text, strlen(index_text), reterr);
        if (r < 0)
                return r;
        if (docker) {
                docker_text = json_dumps(docker, JSON_COMPACT | JSON_PRESERVE_ORDER);
                if (!docker_text)
                        return -ENOMEM;
                r = write_member(a, "manifest.json", docker_text, strlen(docker_text), reterr);
                if (r < 0)
                        return r;
        }
        if (archive_write_close(a) != ARCHIVE_OK)
                return moat_error_setx(reterr, -EIO, "save: %s", archive_error_string(a));
        return 0;
}
