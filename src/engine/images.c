/* SPDX-License-Identifier: Apache-2.0 */
#include "base/compat.h"

/*
 * The engine's image operations (engine-images.h): Docker's image
 * documents built from the image library's data, and the verbs that need
 * the engine's containers.
 *
 * The library (image/images.h) keeps images as index.json entries: a name
 * (or none) and the manifest it holds, resolved to an ID (the config
 * digest). Docker shows images, not entries: one ImageSummary per ID with
 * every name holding it as RepoTags (familiar form) and name@digest as
 * RepoDigests. The document builders take a store, so the in-process CLI
 * can call them; the verbs take the engine.
 *
 * Which containers use an image is the engine's answer to the library's
 * removal veto (moat_images_use_fn): the containers table, read under
 * e->lock. A running (or paused, or restarting) container's image cannot
 * be deleted; a stopped one's only with force, as docker decides. A prune
 * with until= uses the same veto to keep the images created after the
 * cut-off, since the library's prune has no time filter of its own.
 *
 * Sizes: an image's Size is the sum of its layer blobs as stored (what a
 * save writes), not the unpacked size docker's graph drivers report, since
 * a layer is only unpacked once a container needs it. History rows and
 * container SizeRw walk the unpacked trees (docker's directory.Size),
 * bounded by MOAT_ENGINE_TREE_WALK_*.
 */

#include "engine/engine-images.h"
#include "engine/engine-volumes.h"

#include <dirent.h>
#include <fcntl.h>
#include <fnmatch.h>
#include <search.h>
#include <stdio.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "base/cleanup.h"
#include "engine/engine-internal.h"
#include "image/image-archive.h"
#include "image/images.h"
#include "image/import.h"
#include "image/reference.h"
#include "oci/image-spec.h"

#define ZERO_TIME "0001-01-01T00:00:00Z"
#define NONE "<none>"

/* ---- small helpers --------------------------------------------------------- */

/* An RFC 3339 time to unix seconds; -EINVAL when it is not one. */
static int parse_rfc3339(const char *text, int64_t *ret)
{
        struct tm tm = {};
        const char *end;

        if (strempty(text) || !(end = strptime(text, "%Y-%m-%dT%H:%M:%S", &tm)))
                return -EINVAL;
        int64_t t = (int64_t) timegm(&tm);
        if (*end == '.')
                for (end++; *end >= '0' && *end <= '9'; end++)
                        ;
        if ((*end == '+' || *end == '-') && strlen(end) == 6 && end[3] == ':') {
                int64_t off = ((end[1] - '0') * 10 + (end[2] - '0')) * 3600 + ((end[4] - '0') * 10 + (end[5] - '0')) * 60;
                t += *end == '+' ? -off : off;
        } else if (!streq(end, "Z") && !streq(end, "z"))
                return -EINVAL;
        *ret = t;
        return 0;
}

static int64_t created_secs(const char *created)
{
        int64_t t = 0;
        return parse_rfc3339(created, &t) < 0 ? 0 : t;
}

/* The familiar form of reference text ("busybox:latest", "localhost/x:1"). */
static int familiar(const char *reference, char **ret)
{
        struct moat_reference ref = {};
        int r = moat_reference_parse(reference, &ref, NULL);
        if (r < 0)
                return r;
        r = moat_reference_familiar(&ref, ret);
        moat_reference_clear(&ref);
        return r;
}

/* The familiar name alone ("busybox", "localhost/x"). */
static int familiar_name(const char *reference, char **ret)
{
        struct moat_reference ref = {};
        int r = moat_reference_parse(reference, &ref, NULL);
        if (r < 0)
                return r;
        free(ref.tag);
        free(ref.digest);
        ref.tag = ref.digest = NULL;
        r = moat_reference_familiar(&ref, ret);
        moat_reference_clear(&ref);
        if (r < 0)
                return r;
        /* whatever the formatter appends for a missing tag goes too */
        char *slash = strrchr(*ret, '/');
        char *cut = strpbrk(slash ? slash : *ret, ":@");
        if (cut)
                *cut = '\0';
        return 0;
}

static bool has_digest(const char *reference)
{
        return strchr(reference, '@') != NULL;
}

/* Docker's filters come as {"key":{"value":true}} or, from old clients,
 * {"key":["value"]}; this collects the values of key. */
static int filter_values(const json_t *filters, const char *key, const char *out[MOAT_ENGINE_IMAGES_MAX_FILTER_VALUES],
                         size_t *ret_n, struct moat_error **reterr)
{
        json_t *v = json_object_get(filters, key), *x;
        const char *k;
        size_t n = 0, i;

        if (json_is_object(v)) {
                json_object_foreach(v, k, x) {
                        if (n >= MOAT_ENGINE_IMAGES_MAX_FILTER_VALUES)
                                return moat_error_setx(reterr, -E2BIG, "filter '%s': more than %u values", key,
                                                       MOAT_ENGINE_IMAGES_MAX_FILTER_VALUES);
                        out[n++] = k;
                }
        } else if (json_is_array(v)) {
                json_array_foreach(v, i, x) {
                        if (!json_is_string(x))
                                return moat_error_setx(reterr, -EINVAL, "invalid filter '%s': values must be strings",
                                                       key);
                        if (n >= MOAT_ENGINE_IMAGES_MAX_FILTER_VALUES)
                                return moat_error_setx(reterr, -E2BIG, "filter '%s': more than %u values", key,
                                                       MOAT_ENGINE_IMAGES_MAX_FILTER_VALUES);
                        out[n++] = json_string_value(x);
                }
        } else if (v)
                return moat_error_setx(reterr, -EINVAL, "invalid filter '%s'", key);
        *ret_n = n;
        return 0;
}

/* moby's filters.GetBoolOrDefault for "dangling": -1 absent, else 0 or 1. */
static int filter_bool(const json_t *filters, const char *key, int *ret, struct moat_error **reterr)
{
        const char *v[MOAT_ENGINE_IMAGES_MAX_FILTER_VALUES];
        size_t n = 0;
        int r = filter_values(filters, key, v, &n, reterr);
        if (r < 0)
                return r;
        *ret = -1;
        for (size_t i = 0; i < n; i++) {
                int b;
                if (strcasecmp(v[i], "true") == 0 || streq(v[i], "1"))
                        b = 1;
                else if (strcasecmp(v[i], "false") == 0 || streq(v[i], "0"))
                        b = 0;
                else
                        return moat_error_setx(reterr, -EINVAL, "invalid filter '%s=%s'", key, v[i]);
                if (*ret >= 0 && *ret != b)
                        return moat_error_setx(reterr, -EINVAL, "invalid filter '%s': true and false both given", key);
                *ret = b;
        }
        return 0;
}

static int check_filter_keys(const json_t *filters, const char *const *known, struct moat_error **reterr)
{
        const char *k;
        json_t *v;

        if (!filters)
                return 0;
        json_object_foreach((json_t *) filters, k, v) {
                bool ok = false;
                for (size_t i = 0; known[i] && !ok; i++)
                        ok = streq(k, known[i]);
                if (!ok)
                        return moat_error_setx(reterr, -EINVAL, "invalid filter '%s'", k);
        }
        return 0;
}

static json_t *strv_json(char *const *v, size_t n)
{
        json_t *a = json_array();
        for (size_t i = 0; a && v && i < n && v[i]; i++)
                if (json_array_append_new(a, json_string(v[i])) < 0) {
                        json_decref(a);
                        return NULL;
                }
        return a;
}

static size_t strv_len(char *const *v)
{
        size_t n = 0;
        while (v && v[n])
                n++;
        return n;
}

static int64_t manifest_size(const struct moat_image *img)
{
        int64_t sum = 0;
        for (size_t i = 0; i < img->manifest->n_layers; i++)
                if (img->manifest->layers[i].size > 0)
                        sum += img->manifest->layers[i].size;
        return sum;
}

/* lookup with docker's error classes: an ambiguous prefix or an artifact
 * is the client's mistake (400), not the server's. */
static int lookup(struct moat_store *s, const char *text, struct moat_image **ret, struct moat_error **reterr)
{
        int r = moat_images_lookup(s, text, NULL, ret, reterr);
        if (r == -ENOTUNIQ || r == -EMEDIUMTYPE) {
                if (reterr && *reterr)
                        (*reterr)->errnum = EINVAL;
                return -EINVAL;
        }
        return r;
}

/* ---- tree sizes ---------------------------------------------------------- */

struct tree_walk {
        void *inodes;       /* tsearch tree of ino_t, files with several links */
        int64_t size;
        size_t entries;
};

static int ino_cmp(const void *a, const void *b)
{
        ino_t x = *(const ino_t *) a, y = *(const ino_t *) b;
        return x < y ? -1 : x > y;
}

static int tree_walk_at(struct tree_walk *t, int fd, unsigned depth)
{
        _cleanup_closedir_ DIR *d = NULL;
        struct dirent *de;

        if (depth > MOAT_ENGINE_TREE_WALK_MAX_DEPTH) {
                close(fd);
                return -ELOOP;
        }
        d = fdopendir(fd);
        if (!d) {
                int r = -errno;
                close(fd);
                return r;
        }
        while ((errno = 0, de = readdir(d))) {
                struct stat st;
                if (streq(de->d_name, ".") || streq(de->d_name, ".."))
                        continue;
                if (++t->entries > MOAT_ENGINE_TREE_WALK_MAX_ENTRIES)
                        return -E2BIG;
                if (fstatat(dirfd(d), de->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0) {
                        if (errno == ENOENT) /* a container removing it while we look */
                                continue;
                        return -errno;
                }
                if (S_ISDIR(st.st_mode)) {
                        int sub = openat(dirfd(d), de->d_name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
                        if (sub < 0) {
                                if (errno == ENOENT)
                                        continue;
                                return -errno;
                        }
                        int r = tree_walk_at(t, sub, depth + 1);
                        if (r < 0)
                                return r;
                        continue;
                }
                if (st.st_size <= 0)
                        continue;
                if (st.st_nlink > 1) {
                        ino_t *k = malloc(sizeof(*k));
                        if (!k)
                                return -ENOMEM;
                        *k = st.st_ino;
                        ino_t **found = tsearch(k, &t->inodes, ino_cmp);
                        if (!found) {
                                free(k);
                                return -ENOMEM;
                        }
                        if (*found != k) {
                                free(k);
                                continue;
                        }
                }
                t->size += st.st_size;
        }
        return errno > 0 ? -errno : 0;
}

int moat_engine_tree_size(int dfd, const char *name, int64_t *ret)
{
        struct tree_walk t = {};
        int fd = openat(dfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (fd < 0)
                return -errno;
        int r = tree_walk_at(&t, fd, 0);
        tdestroy(t.inodes, free);
        if (r < 0)
                return r;
        *ret = t.size;
        return 0;
}

/* ---- images grouped by ID ---------------------------------------------------- */

struct image_group {
        const struct moat_image_entry *first;   /* a named entry when there is one */
        const struct moat_image_entry **names;  /* named entries, sorted by reference */
        size_t n_names;
        struct moat_image *img;                 /* resolved by ID; NULL when that failed */
        int64_t created;
};

struct image_set {
        struct moat_image_entry *v;
        size_t n;
        struct image_group *g;
        size_t n_groups;
};

static void image_set_done(struct image_set *set)
{
        for (size_t i = 0; set->g && i < set->n_groups; i++) {
                free(set->g[i].names);
                moat_image_free(set->g[i].img);
        }
        free(set->g);
        moat_image_entries_free(set->v, set->n);
        *set = (struct image_set) {};
}

/* Every image of the store; resolve: look each up by ID (config, layers). */
static int image_set_load(struct moat_store *s, bool resolve, struct image_set *set, struct moat_error **reterr)
{
        int r = moat_images_entries(s, NULL, &set->v, &set->n, reterr);
        if (r < 0)
                return r;
        set->g = calloc(set->n + 1, sizeof(*set->g));
        if (!set->g)
                return moat_error_set(reterr, -ENOMEM, "images");
        for (size_t i = 0; i < set->n; i++) {
                struct image_group *im = NULL;
                if (!set->v[i].id)
                        continue; /* an artifact or a broken entry, not an image */
                for (size_t k = 0; k < set->n_groups && !im; k++)
                        if (streq(set->g[k].first->id, set->v[i].id))
                                im = &set->g[k];
                if (!im) {
                        im = &set->g[set->n_groups++];
                        im->first = &set->v[i];
                        im->created = created_secs(set->v[i].created);
                }
                if (set->v[i].reference) {
                        const struct moat_image_entry **nn = reallocarray(im->names, im->n_names + 1,
                                                                          sizeof(*im->names));
                        if (!nn)
                                return moat_error_set(reterr, -ENOMEM, "images");
                        im->names = nn;
                        if (!im->first->reference)
                                im->first = &set->v[i];
                        im->names[im->n_names++] = &set->v[i];
                }
        }
        for (size_t k = 0; resolve && k < set->n_groups; k++)
                /* A broken image still lists, without labels or layers. */
                if (moat_images_lookup(s, set->g[k].first->id, NULL, &set->g[k].img, NULL) < 0)
                        set->g[k].img = NULL;
        return 0;
}

static int group_cmp(const void *a, const void *b)
{
        const struct image_group *x = a, *y = b;
        if (x->created != y->created)
                return x->created > y->created ? -1 : 1;
        return strcmp(x->first->id, y->first->id);
}

/* The RepoTags and RepoDigests of the names of an image. */
static int names_json(const struct moat_image_entry *const *names, size_t n, json_t **ret_tags,
                      json_t **ret_digests, const char **ret_last_tag)
{
        json_t *tags = json_array(), *digests = json_array();
        const char *last = NULL;
        int r = 0;

        for (size_t i = 0; tags && digests && r >= 0 && i < n; i++) {
                _cleanup_free_ char *fam = NULL, *repo = NULL, *rd = NULL;
                const struct moat_image_entry *e = names[i];
                if (e->tag_time && (!last || strcmp(e->tag_time, last) > 0))
                        last = e->tag_time;
                r = familiar(e->reference, &fam);
                if (r >= 0)
                        r = familiar_name(e->reference, &repo);
                if (r < 0)
                        break;
                if (!has_digest(e->reference) && json_array_append_new(tags, json_string(fam)) < 0)
                        r = -ENOMEM;
                if (asprintf(&rd, "%s@%s", repo, e->digest) < 0) {
                        r = -ENOMEM;
                        break;
                }
                bool seen = false;
                for (size_t k = 0; k < json_array_size(digests); k++)
                        seen = seen || streq(json_string_value(json_array_get(digests, k)), rd);
                if (!seen && json_array_append_new(digests, json_string(rd)) < 0)
                        r = -ENOMEM;
        }
        if (r >= 0 && (!tags || !digests))
                r = -ENOMEM;
        if (r < 0) {
                json_decref(tags);
                json_decref(digests);
                return r;
        }
        *ret_tags = tags;
        *ret_digests = digests;
        if (ret_last_tag)
                *ret_last_tag = last;
        return 0;
}

static json_t *labels_json(const struct oci_image_config *cfg)
{
        if (!cfg || cfg->config.n_labels == 0)
                return json_null();
        json_t *o = json_object();
        for (size_t i = 0; o && i < cfg->config.n_labels; i++)
                json_object_set_new(o, cfg->config.labels[i].key, json_string(cfg->config.labels[i].value));
        return o;
}

static bool label_matches(const struct moat_image *img, const char *want)
{
        const struct oci_image_config *cfg = img ? img->config : NULL;
        const char *eq = strchr(want, '=');
        size_t klen = eq ? (size_t) (eq - want) : strlen(want);

        for (size_t i = 0; cfg && i < cfg->config.n_labels; i++) {
                const struct oci_key_value *kv = &cfg->config.labels[i];
                if (strlen(kv->key) != klen || strncmp(kv->key, want, klen) != 0)
                        continue;
                if (!eq || streq(kv->value ? kv->value : "", eq + 1))
                        return true;
        }
        return false;
}

/* docker's reference.FamiliarMatch: the familiar string, then the familiar name. */
static bool reference_matches(const char *const *patterns, size_t n, const char *reference)
{
        _cleanup_free_ char *fam = NULL, *name = NULL;

        if (familiar(reference, &fam) < 0 || familiar_name(reference, &name) < 0)
                return false;
        for (size_t i = 0; i < n; i++)
                if (fnmatch(patterns[i], fam, FNM_PATHNAME) == 0 || fnmatch(patterns[i], name, FNM_PATHNAME) == 0)
                        return true;
        return false;
}

/* docker's until: a unix time (with fraction), an RFC 3339 time, or a Go
 * duration before now ("24h", "1h30m", "90s"). */
static int parse_until(const char *v, int64_t now, int64_t *ret, struct moat_error **reterr)
{
        char *end;
        int64_t t;

        errno = 0;
        double d = strtod(v, &end);
        if (!errno && end != v && *end == '\0' && d >= 0) {
                *ret = (int64_t) d;
                return 0;
        }
        if (parse_rfc3339(v, &t) >= 0) {
                *ret = t;
                return 0;
        }
        if (strlen(v) == 10 && v[4] == '-' && v[7] == '-') {
                struct tm tm = {};
                const char *e2 = strptime(v, "%Y-%m-%d", &tm);
                if (e2 && *e2 == '\0') {
                        *ret = (int64_t) timegm(&tm);
                        return 0;
                }
        }
        /* Go's time.ParseDuration, units h, m, s, ms */
        double secs = 0;
        const char *p = v;
        if (*p == '\0')
                goto bad;
        while (*p) {
                errno = 0;
                double n = strtod(p, &end);
                if (errno || end == p || n < 0)
                        goto bad;
                p = end;
                if (startswith(p, "ms")) {
                        secs += n / 1000;
                        p += 2;
                } else if (*p == 'h') {
                        secs += n * 3600;
                        p++;
                } else if (*p == 'm') {
                        secs += n * 60;
                        p++;
                } else if (*p == 's') {
                        secs += n;
                        p++;
                } else
                        goto bad;
        }
        if (secs > 1e11)
                goto bad;
        *ret = now - (int64_t) secs;
        return 0;
bad:
        return moat_error_setx(reterr, -EINVAL, "invalid filter 'until=%s': not a timestamp or a duration", v);
}

/* before=/since=: the created time of the image the value names. */
static int filter_image_time(struct moat_store *s, const json_t *filters, const char *key, bool *ret_set,
                             int64_t *ret, struct moat_error **reterr)
{
        const char *v[MOAT_ENGINE_IMAGES_MAX_FILTER_VALUES];
        size_t n = 0;
        int r = filter_values(filters, key, v, &n, reterr);
        if (r < 0)
                return r;
        *ret_set = false;
        for (size_t i = 0; i < n; i++) {
                _cleanup_image_ struct moat_image *img = NULL;
                r = lookup(s, v[i], &img, reterr);
                if (r < 0)
                        return r;
                int64_t t = created_secs(img->config->created);
                /* several values: docker keeps the last; the tightest is as good */
                if (!*ret_set || (streq(key, "before") ? t < *ret : t > *ret))
                        *ret = t;
                *ret_set = true;
        }
        return 0;
}

int moat_image_list_json(struct moat_store *s, const struct moat_image_list_options *o, json_t **ret,
                         int64_t *ret_layers_size, struct moat_error **reterr)
{
        static const char *const known[] = { "dangling", "reference", "label", "before", "since", "until", NULL };
        _cleanup_(image_set_done) struct image_set set = {};
        const char *refs[MOAT_ENGINE_IMAGES_MAX_FILTER_VALUES], *labels[MOAT_ENGINE_IMAGES_MAX_FILTER_VALUES];
        size_t n_refs = 0, n_labels = 0;
        struct layer_use {
                const char *digest;
                int64_t size;
                size_t users;
        } *layers = NULL;
        size_t n_layers = 0;
        const json_t *filters = o ? o->filters : NULL;
        const char *until[MOAT_ENGINE_IMAGES_MAX_FILTER_VALUES];
        size_t n_until = 0;
        int64_t before = 0, since = 0, until_t = 0, layers_size = 0;
        bool has_before = false, has_since = false;
        int dangling = -1, r;
        json_t *out = NULL;

        r = check_filter_keys(filters, known, reterr);
        if (r < 0)
                return r;
        if (filters) {
                r = filter_bool(filters, "dangling", &dangling, reterr);
                if (r >= 0)
                        r = filter_values(filters, "reference", refs, &n_refs, reterr);
                if (r >= 0)
                        r = filter_values(filters, "label", labels, &n_labels, reterr);
                if (r >= 0)
                        r = filter_image_time(s, filters, "before", &has_before, &before, reterr);
                if (r >= 0)
                        r = filter_image_time(s, filters, "since", &has_since, &since, reterr);
                if (r >= 0)
                        r = filter_values(filters, "until", until, &n_until, reterr);
                if (r >= 0 && n_until > 1)
                        r = moat_error_setx(reterr, -EINVAL, "invalid filter 'until': more than one value");
                if (r >= 0 && n_until == 1)
                        r = parse_until(until[0], (int64_t) time(NULL), &until_t, reterr);
                if (r < 0)
                        return r;
        }

        r = image_set_load(s, true, &set, reterr);
        if (r < 0)
                return r;
        if (set.n_groups > 1)
                qsort(set.g, set.n_groups, sizeof(*set.g), group_cmp);

        /* every image's distinct layers, for SharedSize and LayersSize */
        for (size_t k = 0; k < set.n_groups; k++) {
                const struct moat_image *img = set.g[k].img;
                for (size_t l = 0; img && l < img->manifest->n_layers; l++) {
                        const struct oci_descriptor *d = &img->manifest->layers[l];
                        size_t j;
                        for (j = 0; j < n_layers && !streq(layers[j].digest, d->digest); j++)
                                ;
                        if (j == n_layers) {
                                void *nl = reallocarray(layers, n_layers + 1, sizeof(*layers));
                                if (!nl) {
                                        free(layers);
                                        return moat_error_set(reterr, -ENOMEM, "images");
                                }
                                layers = nl;
                                layers[n_layers++] = (struct layer_use) { .digest = d->digest,
                                                                          .size = d->size > 0 ? d->size : 0 };
                                layers_size += d->size > 0 ? d->size : 0;
                        }
                        /* an image listing one layer twice uses it once */
                        bool again = false;
                        for (size_t p = 0; p < l && !again; p++)
                                again = streq(img->manifest->layers[p].digest, d->digest);
                        if (!again)
                                layers[j].users++;
                }
        }

        out = json_array();
        for (size_t k = 0; out && k < set.n_groups; k++) {
                struct image_group *im = &set.g[k];
                const struct oci_image_config *cfg = im->img ? im->img->config : NULL;
                bool is_dangling = im->n_names == 0;
                json_t *tags = NULL, *digests = NULL;

                if (dangling >= 0 && dangling != is_dangling)
                        continue;
                if (has_before && im->created >= before)
                        continue;
                if (has_since && im->created <= since)
                        continue;
                if (n_until == 1 && im->created >= until_t)
                        continue;
                bool labels_ok = true;
                for (size_t i = 0; i < n_labels && labels_ok; i++)
                        labels_ok = label_matches(im->img, labels[i]);
                if (!labels_ok)
                        continue;
                /* With a reference filter only the matching names show, and
                 * an image none of whose names match does not. */
                const struct moat_image_entry **names = im->names;
                size_t n_names = im->n_names;
                _cleanup_free_ const struct moat_image_entry **matching = NULL;
                if (n_refs > 0) {
                        matching = calloc(im->n_names + 1, sizeof(*matching));
                        if (!matching) {
                                json_decref(out);
                                free(layers);
                                return moat_error_set(reterr, -ENOMEM, "images");
                        }
                        n_names = 0;
                        for (size_t i = 0; i < im->n_names; i++)
                                if (reference_matches(refs, n_refs, im->names[i]->reference))
                                        matching[n_names++] = im->names[i];
                        if (n_names == 0)
                                continue;
                        names = matching;
                }
                r = names_json(names, n_names, &tags, &digests, NULL);
                if (r < 0) {
                        json_decref(out);
                        free(layers);
                        return moat_error_set(reterr, r, "image %s: names", im->first->id);
                }
                int64_t shared = -1;
                if (o && o->shared_size) {
                        shared = 0;
                        for (size_t l = 0; im->img && l < im->img->manifest->n_layers; l++)
                                for (size_t j = 0; j < n_layers; j++)
                                        if (streq(layers[j].digest, im->img->manifest->layers[l].digest) &&
                                            layers[j].users > 1) {
                                                shared += layers[j].size;
                                                break;
                                        }
                }
                int64_t ctrs = o && o->containers ? o->containers(im->first->id, o->userdata) : -1;
                json_t *sum = json_pack("{s:s, s:s, s:o, s:o, s:I, s:I, s:I, s:o, s:I}",
                                        "Id", im->first->id,
                                        "ParentId", "",
                                        "RepoTags", tags,
                                        "RepoDigests", digests,
                                        "Created", (json_int_t) (cfg ? created_secs(cfg->created) : im->created),
                                        "Size", (json_int_t) im->first->image_size,
                                        "SharedSize", (json_int_t) shared,
                                        "Labels", labels_json(cfg),
                                        "Containers", (json_int_t) ctrs);
                if (!sum || json_array_append_new(out, sum) < 0) {
                        json_decref(out);
                        free(layers);
                        return moat_error_set(reterr, -ENOMEM, "images");
                }
        }
        free(layers);
        if (!out)
                return moat_error_set(reterr, -ENOMEM, "images");
        if (ret_layers_size)
                *ret_layers_size = layers_size;
        *ret = out;
        return 0;
}

/* ---- inspect ----------------------------------------------------------------- */

/* docker prints null for an absent list */
static json_t *strv_or_null(char **v, bool present)
{
        return present || v ? strv_json(v, strv_len(v)) : json_null();
}

static json_t *keys_object(char **keys)
{
        json_t *o = json_object();
        for (size_t i = 0; o && keys && keys[i]; i++)
                json_object_set_new(o, keys[i], json_object());
        return o;
}

static json_t *config_json(const struct oci_image_config *cfg)
{
        const struct oci_image_exec_config *x = &cfg->config;
        json_t *o = json_pack("{s:s, s:o, s:o, s:o, s:o, s:s, s:o}",
                              "User", x->user ? x->user : "",
                              "ExposedPorts", x->exposed_ports ? keys_object(x->exposed_ports) : json_null(),
                              "Env", strv_or_null(x->env, false),
                              "Cmd", strv_or_null(x->cmd, x->has_cmd),
                              "Entrypoint", strv_or_null(x->entrypoint, x->has_entrypoint),
                              "WorkingDir", x->working_dir ? x->working_dir : "",
                              "Labels", labels_json(cfg));
        if (!o)
                return NULL;
        if (x->volumes)
                json_object_set_new(o, "Volumes", keys_object(x->volumes));
        if (x->stop_signal)
                json_object_set_new(o, "StopSignal", json_string(x->stop_signal));
        if (x->args_escaped)
                json_object_set_new(o, "ArgsEscaped", json_true());
        if (x->healthcheck)
                json_object_set(o, "Healthcheck", x->healthcheck);
        return o;
}

static const char *doc_string(const struct oci_image_doc *doc, const char *key)
{
        const char *v = json_string_value(json_object_get(doc->json, key));
        return v ? v : "";
}

/* GraphDriver: the unpacked layer trees (<store>/layers/<ChainID>), top
 * first, when every one is there; Data is null otherwise. */
static json_t *graph_driver_json(struct moat_store *s, const struct moat_image *img, const char *layers_path)
{
        _cleanup_strv_free_ char **chain = NULL;
        _cleanup_close_ int layers_fd = -EBADF;
        _cleanup_free_ char *lower = NULL;
        const struct oci_image_config *cfg = img->config;
        json_t *data = NULL;

        if (layers_path && cfg->n_diff_ids > 0 && oci_chain_ids(cfg->diff_ids, cfg->n_diff_ids, &chain, NULL) >= 0 &&
            (layers_fd = openat(moat_store_dir_fd(s), "layers", O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)) >= 0) {
                size_t len = 0;
                FILE *f = open_memstream(&lower, &len);
                bool all = f != NULL;
                for (size_t i = cfg->n_diff_ids; all && i > 0; i--) {
                        struct stat st;
                        if (fstatat(layers_fd, chain[i - 1], &st, AT_SYMLINK_NOFOLLOW) < 0 || !S_ISDIR(st.st_mode))
                                all = false;
                        else
                                fprintf(f, "%s%s/%s", i == cfg->n_diff_ids ? "" : ":", layers_path, chain[i - 1]);
                }
                if (f && fclose(f) != 0)
                        all = false;
                if (all)
                        data = json_pack("{s:s}", "LowerDir", lower);
        }
        return json_pack("{s:o, s:s}", "Data", data ? data : json_null(), "Name", "overlay");
}

int moat_image_inspect_json(struct moat_store *s, const struct moat_image *img, const char *layers_path,
                            json_t **ret, struct moat_error **reterr)
{
        struct moat_image_entry *v = NULL;
        _cleanup_free_ const struct moat_image_entry **names = NULL;
        const struct oci_image_config *cfg = img->config;
        const char *last_tag = NULL;
        json_t *tags = NULL, *digests = NULL;
        size_t n = 0, n_names = 0;
        int r;

        r = moat_images_entries(s, NULL, &v, &n, reterr);
        if (r < 0)
                return r;
        names = calloc(n + 1, sizeof(*names));
        if (!names) {
                moat_image_entries_free(v, n);
                return moat_error_set(reterr, -ENOMEM, "inspect");
        }
        for (size_t i = 0; i < n; i++)
                if (v[i].reference && v[i].id && streq(v[i].id, img->config_digest))
                        names[n_names++] = &v[i];
        r = names_json(names, n_names, &tags, &digests, &last_tag);
        if (r < 0) {
                moat_image_entries_free(v, n);
                return moat_error_set(reterr, r, "image %s: names", img->config_digest);
        }
        json_t *obj = json_pack("{s:s, s:o, s:o, s:s, s:s, s:s, s:s, s:s, s:o, s:s}",
                                "Id", img->config_digest,
                                "RepoTags", tags,
                                "RepoDigests", digests,
                                "Parent", "",
                                "Comment", doc_string(img->config_doc, "comment"),
                                "Created", cfg->created ? cfg->created : "",
                                "DockerVersion", doc_string(img->config_doc, "docker_version"),
                                "Author", cfg->author ? cfg->author : "",
                                "Config", config_json(cfg),
                                "Architecture", cfg->architecture ? cfg->architecture : "");
        if (obj) {
                if (cfg->variant)
                        json_object_set_new(obj, "Variant", json_string(cfg->variant));
                json_object_set_new(obj, "Os", json_string(cfg->os ? cfg->os : ""));
                if (cfg->os_version)
                        json_object_set_new(obj, "OsVersion", json_string(cfg->os_version));
                json_object_set_new(obj, "Size", json_integer(manifest_size(img)));
                json_object_set_new(obj, "GraphDriver", graph_driver_json(s, img, layers_path));
                json_object_set_new(obj, "RootFS", json_pack("{s:s, s:o}", "Type", "layers", "Layers",
                                                             strv_json(cfg->diff_ids, cfg->n_diff_ids)));
                json_object_set_new(obj, "Metadata",
                                    json_pack("{s:s}", "LastTagTime", last_tag ? last_tag : ZERO_TIME));
        }
        moat_image_entries_free(v, n);
        if (!obj)
                return moat_error_set(reterr, -ENOMEM, "inspect: JSON");
        *ret = obj;
        return 0;
}

/* ---- history ----------------------------------------------------------------- */

int moat_image_history_json(struct moat_store *s, const struct moat_image *img, json_t **ret,
                            struct moat_error **reterr)
{
        _cleanup_strv_free_ char **chain = NULL;
        _cleanup_close_ int layers_fd = -EBADF;
        const struct oci_image_config *cfg = img->config;
        const struct oci_manifest *m = img->manifest;
        json_t *top_tags = NULL, *doc = NULL, *rows = NULL;
        int r;

        if (cfg->n_diff_ids > 0) {
                r = oci_chain_ids(cfg->diff_ids, cfg->n_diff_ids, &chain, reterr);
                if (r < 0)
                        return moat_error_wrap(reterr, r, "history: %s", img->config_digest);
        }
        /* Looked at, never created: without it every size comes from the manifest. */
        layers_fd = openat(moat_store_dir_fd(s), "layers", O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);

        r = moat_image_inspect_json(s, img, NULL, &doc, reterr);
        if (r < 0)
                return r;
        top_tags = json_incref(json_object_get(doc, "RepoTags"));
        json_decref(doc);

        rows = json_array();
        size_t layer = 0;
        for (size_t i = 0; rows && i < cfg->n_history; i++) {
                const struct oci_history *h = &cfg->history[i];
                int64_t size = 0;
                if (!h->empty_layer) {
                        if (layer >= cfg->n_diff_ids || layer >= m->n_layers) {
                                json_decref(rows);
                                json_decref(top_tags);
                                return moat_error_setx(reterr, -EINVAL,
                                                       "too many non-empty layers in History section of %s",
                                                       img->config_digest);
                        }
                        if (layers_fd < 0 || moat_engine_tree_size(layers_fd, chain[layer], &size) < 0)
                                size = m->layers[layer].size;
                        layer++;
                }
                json_t *row = json_pack("{s:s, s:I, s:s, s:n, s:I, s:s}",
                                        "Id", "<missing>",
                                        "Created", (json_int_t) created_secs(h->created),
                                        "CreatedBy", h->created_by ? h->created_by : "",
                                        "Tags",
                                        "Size", (json_int_t) size,
                                        "Comment", h->comment ? h->comment : "");
                if (!row || json_array_insert_new(rows, 0, row) < 0) {
                        json_decref(rows);
                        rows = NULL;
                }
        }
        if (rows && json_array_size(rows) > 0) {
                json_t *top = json_array_get(rows, 0);
                json_object_set_new(top, "Id", json_string(img->config_digest));
                if (json_array_size(top_tags) > 0)
                        json_object_set(top, "Tags", top_tags);
        }
        json_decref(top_tags);
        if (!rows)
                return moat_error_set(reterr, -ENOMEM, "history");
        *ret = rows;
        return 0;
}

/* ---- engine: containers using images ---------------------------------------- */

/* moat_images_use_fn: a running user first, as docker names it. */
static int image_use(const char *image_id, char **ret_container, void *userdata)
{
        struct moat_engine *e = userdata;
        const char *who = NULL;
        int use = MOAT_IMAGE_UNUSED;

        pthread_mutex_lock(&e->lock);
        for (struct container *c = e->containers; c; c = c->next) {
                if (c->removed || !c->image_id || !streq(c->image_id, image_id))
                        continue;
                if (container_is_running(c)) {
                        use = MOAT_IMAGE_USED_RUNNING;
                        who = c->id;
                        break;
                }
                if (use == MOAT_IMAGE_UNUSED) {
                        use = MOAT_IMAGE_USED_STOPPED;
                        who = c->id;
                }
        }
        /* docker's messages name the container by its short ID */
        char *id = who ? strndup(who, 12) : NULL;
        pthread_mutex_unlock(&e->lock);
        if (who && !id)
                return -ENOMEM;
        *ret_container = id;
        return use;
}

static int64_t image_containers(const char *image_id, void *userdata)
{
        struct moat_engine *e = userdata;
        int64_t n = 0;

        pthread_mutex_lock(&e->lock);
        for (struct container *c = e->containers; c; c = c->next)
                if (!c->removed && c->image_id && streq(c->image_id, image_id))
                        n++;
        pthread_mutex_unlock(&e->lock);
        return n;
}

/* ---- engine operations ------------------------------------------------------ */

int moat_engine_images_list(struct moat_engine *e, const json_t *filters, bool shared_size, json_t **ret,
                            struct moat_error **reterr)
{
        struct moat_image_list_options o = { .filters = filters, .shared_size = shared_size };
        return moat_image_list_json(e->store, &o, ret, NULL, reterr);
}

int moat_engine_image_inspect(struct moat_engine *e, const char *text, json_t **ret, struct moat_error **reterr)
{
        _cleanup_image_ struct moat_image *img = NULL;
        _cleanup_free_ char *layers = NULL;
        int r = lookup(e->store, text, &img, reterr);
        if (r < 0)
                return r;
        if (asprintf(&layers, "%s/images/layers", e->data_root) < 0)
                return moat_error_set(reterr, -ENOMEM, "inspect");
        return moat_image_inspect_json(e->store, img, layers, ret, reterr);
}

/* The platform query parameter of the image routes, as docker's clients
 * send it: a JSON-encoded OCI platform. *ret points into *ret_doc. */
static int platform_query(const char *text, json_t **ret_doc, struct oci_platform *ret, bool *ret_set,
                          struct moat_error **reterr)
{
        json_error_t jerr;

        *ret_set = false;
        if (strempty(text))
                return 0;
        if (strlen(text) > 1024)
                return moat_error_setx(reterr, -EINVAL, "platform: longer than 1024 bytes");
        json_t *doc = json_loads(text, 0, &jerr);
        const char *os = json_string_value(json_object_get(doc, "os"));
        const char *arch = json_string_value(json_object_get(doc, "architecture"));
        if (!json_is_object(doc) || strempty(os) || strempty(arch)) {
                json_decref(doc);
                return moat_error_setx(reterr, -EINVAL,
                                       "platform: not a JSON object with \"os\" and \"architecture\": %.100s", text);
        }
        *ret = (struct oci_platform) {
                .os = (char *) os,
                .architecture = (char *) arch,
                .variant = (char *) json_string_value(json_object_get(doc, "variant")),
        };
        *ret_doc = doc;
        *ret_set = true;
        return 0;
}

/* lookup() of one platform's image (NULL: the default one); an image that
 * exists without that platform is named in the error. */
static int lookup_platform(struct moat_store *s, const char *text, const struct oci_platform *p,
                           struct moat_image **ret, struct moat_error **reterr)
{
        int r = moat_images_lookup(s, text, p, ret, reterr);
        if (r == -ENOENT && p) {
                _cleanup_image_ struct moat_image *any = NULL;
                if (moat_images_lookup(s, text, NULL, &any, NULL) >= 0 && reterr) {
                        moat_error_free(*reterr);
                        *reterr = NULL;
                        return moat_error_setx(reterr, -ENOENT, "No such image: %s: it has no image for %s/%s%s%s", text,
                                               p->os, p->architecture, p->variant ? "/" : "", p->variant ? p->variant : "");
                }
        }
        if (r == -ENOTUNIQ || r == -EMEDIUMTYPE) {
                if (reterr && *reterr)
                        (*reterr)->errnum = EINVAL;
                return -EINVAL;
        }
        return r;
}

int moat_engine_image_history(struct moat_engine *e, const char *text, const char *platform, json_t **ret,
                              struct moat_error **reterr)
{
        _cleanup_image_ struct moat_image *img = NULL;
        _cleanup_(json_decrefp) json_t *pdoc = NULL;
        struct oci_platform p;
        bool has_platform;
        int r = platform_query(platform, &pdoc, &p, &has_platform, reterr);
        if (r < 0)
                return r;
        r = lookup_platform(e->store, text, has_platform ? &p : NULL, &img, reterr);
        if (r < 0)
                return r;
        return moat_image_history_json(e->store, img, ret, reterr);
}

int moat_engine_image_tag(struct moat_engine *e, const char *source, const char *repo, const char *tag,
                          struct moat_error **reterr)
{
        _cleanup_image_ struct moat_image *img = NULL;
        _cleanup_free_ char *target = NULL, *buf = NULL;
        struct moat_reference ref = {};
        size_t len = 0;
        int r;

        if (strempty(repo))
                return moat_error_setx(reterr, -EINVAL, "repository name must have at least one component");
        if (asprintf(&target, "%s%s%s", repo, strempty(tag) ? "" : ":", strempty(tag) ? "" : tag) < 0)
                return moat_error_set(reterr, -ENOMEM, "tag");
        r = moat_reference_parse(target, &ref, reterr);
        if (r < 0) {
                if (reterr && *reterr)
                        (*reterr)->errnum = EINVAL;
                return -EINVAL;
        }
        bool digest = ref.digest != NULL;
        moat_reference_clear(&ref);
        if (digest)
                return moat_error_setx(reterr, -EINVAL, "refusing to create a tag with a digest reference");
        r = lookup(e->store, source, &img, reterr);
        if (r < 0)
                return r;
        struct oci_descriptor d = {
                .media_type = img->target_media_type,
                .digest = img->target_digest,
                .size = img->target_size,
        };
        if (d.size < 0) {
                /* found by digest alone: the name points at the resolved manifest */
                r = moat_store_read_blob(e->store, img->manifest_digest, OCI_IMAGE_DOC_MAX_SIZE, &buf, &len, reterr);
                if (r < 0)
                        return r;
                d.media_type = img->manifest_doc->media_type;
                d.digest = img->manifest_digest;
                d.size = (int64_t) len;
        }
        r = moat_images_tag(e->store, target, &d, reterr);
        if (r < 0)
                return moat_error_wrap(reterr, r, "tag %s", target);
        return 0;
}

static json_t *delete_items_json(const struct moat_images_delete_report *rep)
{
        json_t *a = json_array();
        for (size_t i = 0; a && i < rep->n; i++) {
                if (rep->items[i].untagged)
                        json_array_append_new(a, json_pack("{s:s}", "Untagged", rep->items[i].untagged));
                if (rep->items[i].deleted)
                        json_array_append_new(a, json_pack("{s:s}", "Deleted", rep->items[i].deleted));
        }
        return a;
}

int moat_engine_image_remove(struct moat_engine *e, const char *text, bool force, json_t **ret,
                             struct moat_error **reterr)
{
        struct moat_images_remove_options o = { .force = force, .in_use = image_use, .userdata = e };
        struct moat_images_delete_report rep = {};

        int r = moat_images_remove(e->store, text, &o, &rep, reterr);
        if (r == -ENOTUNIQ || r == -EMEDIUMTYPE) {
                if (reterr && *reterr)
                        (*reterr)->errnum = EINVAL;
                r = -EINVAL;
        }
        if (r >= 0) {
                *ret = delete_items_json(&rep);
                if (!*ret)
                        r = moat_error_set(reterr, -ENOMEM, "rmi");
        }
        moat_images_delete_report_clear(&rep);
        return r;
}

/* ---- prune ---------------------------------------------------------------------- */

struct prune_ctx {
        struct moat_engine *e;
        struct image_set set;
        bool has_until;
        int64_t until;
        const char *labels[MOAT_ENGINE_IMAGES_MAX_FILTER_VALUES];      /* label=: each must match */
        size_t n_labels;
        const char *not_labels[MOAT_ENGINE_IMAGES_MAX_FILTER_VALUES];  /* label!=: none may match */
        size_t n_not_labels;
};

/* The prune's veto: the engine's containers, and images not older than until. */
static int prune_use(const char *image_id, char **ret_container, void *userdata)
{
        struct prune_ctx *p = userdata;
        int r = image_use(image_id, ret_container, p->e);
        if (r != MOAT_IMAGE_UNUSED || (!p->has_until && p->n_labels == 0 && p->n_not_labels == 0))
                return r;
        for (size_t k = 0; k < p->set.n_groups; k++) {
                const struct image_group *g = &p->set.g[k];
                if (!streq(g->first->id, image_id))
                        continue;
                bool keep = p->has_until && g->created >= p->until;
                for (size_t i = 0; !keep && i < p->n_labels; i++)
                        keep = !label_matches(g->img, p->labels[i]);
                for (size_t i = 0; !keep && i < p->n_not_labels; i++)
                        keep = label_matches(g->img, p->not_labels[i]);
                if (keep) {
                        *ret_container = strdup("(filter)");
                        return *ret_container ? MOAT_IMAGE_USED_STOPPED : -ENOMEM;
                }
        }
        return MOAT_IMAGE_UNUSED;
}

int moat_engine_images_prune(struct moat_engine *e, const json_t *filters, json_t **ret, struct moat_error **reterr)
{
        static const char *const known[] = { "dangling", "until", "label", "label!", NULL };
        struct prune_ctx p = { .e = e };
        struct moat_images_delete_report rep = {};
        const char *until[MOAT_ENGINE_IMAGES_MAX_FILTER_VALUES];
        size_t n_until = 0;
        int dangling = -1, r;

        r = check_filter_keys(filters, known, reterr);
        if (r < 0)
                return r;
        if (filters) {
                r = filter_bool(filters, "dangling", &dangling, reterr);
                if (r >= 0)
                        r = filter_values(filters, "until", until, &n_until, reterr);
                if (r >= 0)
                        r = filter_values(filters, "label", p.labels, &p.n_labels, reterr);
                if (r >= 0)
                        r = filter_values(filters, "label!", p.not_labels, &p.n_not_labels, reterr);
                if (r < 0)
                        return r;
        }
        if (n_until > 1)
                return moat_error_setx(reterr, -EINVAL, "invalid filter 'until': more than one value");
        if (n_until == 1) {
                r = parse_until(until[0], engine_now_ns() / 1000000000, &p.until, reterr);
                if (r < 0)
                        return r;
                p.has_until = true;
        }
        if (p.has_until || p.n_labels > 0 || p.n_not_labels > 0) {
                /* resolved (the configs read) only when labels are to be matched */
                r = image_set_load(e->store, p.n_labels > 0 || p.n_not_labels > 0, &p.set, reterr);
                if (r < 0)
                        return r;
        }
        struct moat_images_prune_options o = { .all = dangling == 0, .in_use = prune_use, .userdata = &p };
        r = moat_images_prune(e->store, &o, &rep, reterr);
        image_set_done(&p.set);
        if (r >= 0) {
                json_t *items = rep.n > 0 ? delete_items_json(&rep) : json_null();
                *ret = items ? json_pack("{s:o, s:I}", "ImagesDeleted", items, "SpaceReclaimed",
                                         (json_int_t) rep.reclaimed)
                             : NULL;
                if (!*ret)
                        r = moat_error_set(reterr, -ENOMEM, "prune");
        }
        moat_images_delete_report_clear(&rep);
        return r;
}

int moat_engine_images_count(struct moat_engine *e, int64_t *ret, struct moat_error **reterr)
{
        _cleanup_(image_set_done) struct image_set set = {};
        int r = image_set_load(e->store, false, &set, reterr);
        if (r < 0)
                return r;
        *ret = (int64_t) set.n_groups;
        return 0;
}

/* ---- load ---------------------------------------------------------------------- */

/* The config digest of an untagged image: its manifest, or through an
 * index the manifest of this platform. */
static int untagged_id(struct moat_store *s, const struct moat_archive_image *im, char **ret,
                       struct moat_error **reterr)
{
        _cleanup_free_ char *buf = NULL;
        _cleanup_oci_image_doc_ struct oci_image_doc *doc = NULL;
        _cleanup_oci_image_doc_ struct oci_image_doc *mdoc = NULL;
        size_t len;
        int r;

        r = moat_store_read_blob(s, im->digest, OCI_IMAGE_DOC_MAX_SIZE, &buf, &len, reterr);
        if (r < 0)
                return r;
        r = oci_image_doc_parse(buf, len, im->media_type, &doc, reterr);
        if (r < 0)
                return moat_error_wrap(reterr, r, "%s", im->digest);
        const struct oci_manifest *m = oci_image_doc_manifest(doc);
        if (!m) {
                const struct oci_index *idx = oci_image_doc_index(doc);
                const struct oci_descriptor *d = NULL;
                if (!idx)
                        return moat_error_setx(reterr, -EINVAL, "%s is neither a manifest nor an index", im->digest);
                r = oci_index_select(idx, NULL, NULL, NULL, &d, reterr);
                if (r < 0)
                        return moat_error_wrap(reterr, r, "%s", im->digest);
                free(buf);
                buf = NULL;
                r = moat_store_read_blob(s, d->digest, OCI_IMAGE_DOC_MAX_SIZE, &buf, &len, reterr);
                if (r < 0)
                        return r;
                r = oci_image_doc_parse(buf, len, d->media_type, &mdoc, reterr);
                if (r < 0)
                        return moat_error_wrap(reterr, r, "%s", d->digest);
                m = oci_image_doc_manifest(mdoc);
                if (!m)
                        return moat_error_setx(reterr, -EINVAL, "%s is not a manifest", d->digest);
        }
        *ret = strdup(m->config.digest);
        return *ret ? 0 : moat_error_set(reterr, -ENOMEM, "config digest");
}

struct load_ctx {
        moat_engine_load_progress_fn fn;
        void *userdata;
};

static void load_progress(const struct moat_archive_progress *p, void *userdata)
{
        struct load_ctx *l = userdata;
        char id[13];

        if (p->kind != MOAT_ARCHIVE_BLOB_LAYER)
                return;
        if (p->digest) {
                const char *colon = strchr(p->digest, ':');
                snprintf(id, sizeof(id), "%s", colon ? colon + 1 : p->digest);
        } else {
                /* legacy <dir>/layer.tar: docker names the line by the layer's directory */
                size_t len = strcspn(p->member, "/");
                snprintf(id, sizeof(id), "%.*s", (int) (len < 12 ? len : 12), p->member);
        }
        struct moat_engine_load_progress ep = {
                .id = id,
                .current = p->current,
                .total = p->total,
                .done = p->done,
        };
        l->fn(&ep, l->userdata);
}

/* load --platform: the manifest of an archived image for platform p (its
 * own when it is one and has p, the index's pick when it is an index); the
 * strings are copied into ret (free with platform_pick_done). */
struct platform_pick {
        char *media_type, *digest;
        int64_t size;
};

static void platform_pick_done(struct platform_pick *pk)
{
        free(pk->media_type);
        free(pk->digest);
}

static int pick_platform(struct moat_store *s, const struct moat_archive_image *im, const struct oci_platform *p,
                         struct platform_pick *ret, struct moat_error **reterr)
{
        _cleanup_free_ char *buf = NULL, *cbuf = NULL;
        _cleanup_oci_image_doc_ struct oci_image_doc *doc = NULL, *cdoc = NULL;
        const struct oci_descriptor *d = NULL;
        size_t len;
        int r;

        r = moat_store_read_blob(s, im->digest, OCI_IMAGE_DOC_MAX_SIZE, &buf, &len, reterr);
        if (r < 0)
                return r;
        r = oci_image_doc_parse(buf, len, im->media_type, &doc, reterr);
        if (r < 0)
                return moat_error_wrap(reterr, r, "%s", im->digest);
        const struct oci_index *idx = oci_image_doc_index(doc);
        const struct oci_manifest *m = oci_image_doc_manifest(doc);
        if (idx) {
                r = oci_index_select(idx, p->os, p->architecture, p->variant, &d, reterr);
                if (r < 0)
                        return moat_error_wrap(reterr, r, "%s", im->ref ? im->ref : im->digest);
                *ret = (struct platform_pick) { .media_type = strdup(d->media_type), .digest = strdup(d->digest),
                                                .size = d->size };
        } else if (m) {
                /* a single image: its config's platform, matched as an index entry would be */
                r = moat_store_read_blob(s, m->config.digest, OCI_IMAGE_DOC_MAX_SIZE, &cbuf, &len, reterr);
                if (r < 0)
                        return r;
                r = oci_image_doc_parse(cbuf, len, m->config.media_type, &cdoc, reterr);
                if (r < 0)
                        return moat_error_wrap(reterr, r, "%s", m->config.digest);
                const struct oci_image_config *cfg = oci_image_doc_config(cdoc);
                struct oci_descriptor one = { .media_type = im->media_type, .digest = im->digest, .size = im->size,
                                              .has_platform = cfg != NULL };
                if (cfg)
                        one.platform = (struct oci_platform) { .os = cfg->os, .architecture = cfg->architecture,
                                                               .variant = cfg->variant };
                struct oci_index fake = { .manifests = &one, .n_manifests = 1 };
                r = oci_index_select(&fake, p->os, p->architecture, p->variant, &d, reterr);
                if (r < 0)
                        return moat_error_wrap(reterr, r, "%s", im->ref ? im->ref : im->digest);
                *ret = (struct platform_pick) { .media_type = strdup(im->media_type), .digest = strdup(im->digest),
                                                .size = im->size };
        } else
                return moat_error_setx(reterr, -EINVAL, "%s is neither a manifest nor an index", im->digest);
        if (!ret->media_type || !ret->digest) {
                platform_pick_done(ret);
                return moat_error_set(reterr, -ENOMEM, "load");
        }
        return 0;
}

/* Tag (or keep untagged) what a load brought, each image or its picked
 * platform's manifest; the "Loaded image" lines. */
static int tag_loaded(struct moat_engine *e, const struct moat_archive_result *res, const struct platform_pick *picks,
                      json_t **ret_lines, struct moat_error **reterr)
{
        json_t *lines;
        int r;

        lines = json_array();
        if (!lines)
                return moat_error_set(reterr, -ENOMEM, "load");
        for (size_t i = 0; i < res->n_images; i++) {
                const struct moat_archive_image *im = &res->images[i];
                _cleanup_free_ char *text = NULL, *shown = NULL;
                struct moat_archive_image picked = *im;
                if (picks) {
                        picked.media_type = picks[i].media_type;
                        picked.digest = picks[i].digest;
                        picked.size = picks[i].size;
                }
                struct oci_descriptor d = {
                        .media_type = picked.media_type,
                        .digest = picked.digest,
                        .size = picked.size,
                };
                if (im->ref) {
                        r = moat_images_tag(e->store, im->ref, &d, reterr);
                        if (r < 0) {
                                json_decref(lines);
                                return moat_error_wrap(reterr, r, "tag %s", im->ref);
                        }
                        r = familiar(im->ref, &shown);
                        if (r < 0) {
                                json_decref(lines);
                                return moat_error_set(reterr, r, "format reference \"%s\"", im->ref);
                        }
                        r = asprintf(&text, "Loaded image: %s", shown);
                } else {
                        r = moat_images_add_untagged(e->store, &d, reterr);
                        if (r >= 0)
                                r = untagged_id(e->store, &picked, &shown, reterr);
                        if (r < 0) {
                                json_decref(lines);
                                return r;
                        }
                        r = asprintf(&text, "Loaded image ID: %s", shown);
                }
                if (r < 0 || json_array_append_new(lines, json_string(text)) < 0) {
                        json_decref(lines);
                        return moat_error_set(reterr, -ENOMEM, "load");
                }
        }
        *ret_lines = lines;
        return 0;
}

int moat_engine_images_load(struct moat_engine *e, int fd, const char *platform, moat_engine_load_progress_fn progress,
                            void *userdata, json_t **ret_lines, struct moat_error **reterr)
{
        _cleanup_archive_result_ struct moat_archive_result *res = NULL;
        _cleanup_(json_decrefp) json_t *pdoc = NULL;
        struct load_ctx l = { .fn = progress, .userdata = userdata };
        struct moat_archive_load_options opts = { .progress = load_progress, .userdata = &l };
        struct oci_platform plat;
        bool has_platform;
        int r;

        r = platform_query(platform, &pdoc, &plat, &has_platform, reterr);
        if (r < 0)
                return r;
        r = moat_archive_load(e->store, fd, progress ? &opts : NULL, &res, reterr);
        if (r < 0)
                return r;
        /* With a platform every image must have it, before anything is tagged. */
        _cleanup_free_ struct platform_pick *picks = has_platform ? calloc(res->n_images + 1, sizeof(*picks)) : NULL;
        if (has_platform && !picks)
                return moat_error_set(reterr, -ENOMEM, "load");
        for (size_t i = 0; has_platform && i < res->n_images; i++) {
                r = pick_platform(e->store, &res->images[i], &plat, &picks[i], reterr);
                if (r < 0) {
                        for (size_t k = 0; k < i; k++)
                                platform_pick_done(&picks[k]);
                        (void) !moat_images_gc(e->store, &(struct moat_images_gc_result) {}, NULL);
                        return r;
                }
        }
        r = tag_loaded(e, res, picks, ret_lines, reterr);
        for (size_t i = 0; has_platform && i < res->n_images; i++)
                platform_pick_done(&picks[i]);
        /* the other platforms' blobs, which nothing names now */
        if (r >= 0 && has_platform)
                (void) !moat_images_gc(e->store, &(struct moat_images_gc_result) {}, NULL);
        return r;
}

/* ---- save ---------------------------------------------------------------------- */

struct moat_engine_image_save {
        struct moat_store *s;
        size_t n;
        char **refs;       /* may hold NULLs */
        char **digests;
        struct moat_archive_save_image *saves;
};

void moat_engine_images_save_free(struct moat_engine_image_save *sv)
{
        if (!sv)
                return;
        for (size_t i = 0; i < sv->n; i++) {
                free(sv->refs[i]);
                free(sv->digests[i]);
        }
        free(sv->refs);
        free(sv->digests);
        free(sv->saves);
        free(sv);
}

/* The RepoTag docker writes for what the user typed: the familiar
 * reference when it names a tag, NULL for an ID or a digest reference. */
static int save_name(const struct moat_image *img, char **ret)
{
        struct moat_reference ref = {};
        int r;

        *ret = NULL;
        if (img->by_id)
                return 0;
        r = moat_reference_parse(img->reference, &ref, NULL);
        if (r < 0)
                return r;
        if (!ref.digest)
                r = moat_reference_familiar(&ref, ret);
        moat_reference_clear(&ref);
        return r;
}

int moat_engine_images_save_prepare(struct moat_engine *e, const char *const *names, size_t n, const char *platform,
                                    struct moat_engine_image_save **ret, struct moat_error **reterr)
{
        _cleanup_(json_decrefp) json_t *pdoc = NULL;
        struct moat_engine_image_save *sv;
        struct oci_platform plat;
        bool has_platform;
        int r;

        r = platform_query(platform, &pdoc, &plat, &has_platform, reterr);
        if (r < 0)
                return r;

        if (n == 0)
                return moat_error_setx(reterr, -EINVAL, "no images to save: give at least one name");
        if (n > MOAT_ENGINE_IMAGES_MAX_NAMES)
                return moat_error_setx(reterr, -E2BIG, "more than %u images to save", MOAT_ENGINE_IMAGES_MAX_NAMES);
        sv = calloc(1, sizeof(*sv));
        if (!sv)
                return moat_error_set(reterr, -ENOMEM, "save");
        sv->s = e->store;
        sv->refs = calloc(n, sizeof(*sv->refs));
        sv->digests = calloc(n, sizeof(*sv->digests));
        sv->saves = calloc(n, sizeof(*sv->saves));
        if (!sv->refs || !sv->digests || !sv->saves) {
                moat_engine_images_save_free(sv);
                return moat_error_set(reterr, -ENOMEM, "save");
        }
        for (size_t i = 0; i < n; i++) {
                _cleanup_image_ struct moat_image *img = NULL;
                _cleanup_free_ char *name = NULL;
                bool dup = false;

                r = lookup_platform(e->store, names[i], has_platform ? &plat : NULL, &img, reterr);
                if (r >= 0 && (r = save_name(img, &name)) < 0)
                        r = moat_error_set(reterr, r, "format reference \"%s\"", img->reference);
                if (r < 0) {
                        moat_engine_images_save_free(sv);
                        return r;
                }
                /* A name goes with what it names (an index saved as this
                 * platform's manifest: manifest.json describes one image); an
                 * ID with the image itself. */
                const char *digest = name && !has_platform && streq(img->target_digest, img->manifest_digest)
                                             ? img->target_digest
                                             : img->manifest_digest;
                for (size_t k = 0; k < sv->n && !dup; k++)
                        dup = streq(sv->digests[k], digest) &&
                              ((!sv->refs[k] && !name) || (sv->refs[k] && name && streq(sv->refs[k], name)));
                if (dup)
                        continue;
                sv->digests[sv->n] = strdup(digest);
                if (!sv->digests[sv->n]) {
                        moat_engine_images_save_free(sv);
                        return moat_error_set(reterr, -ENOMEM, "save");
                }
                sv->refs[sv->n] = TAKE_PTR(name);
                sv->saves[sv->n] = (struct moat_archive_save_image) { .ref = sv->refs[sv->n],
                                                                      .digest = sv->digests[sv->n] };
                sv->n++;
        }
        *ret = sv;
        return 0;
}

int moat_engine_images_save_write(struct moat_engine_image_save *sv, int fd, bool oci_only,
                                  struct moat_error **reterr)
{
        return moat_archive_save(sv->s, sv->saves, sv->n, fd, oci_only ? MOAT_ARCHIVE_OCI : MOAT_ARCHIVE_DOCKER,
                                 reterr);
}

/* ---- import -------------------------------------------------------------------- */

int moat_engine_images_import(struct moat_engine *e, int fd, const struct moat_engine_import_options *o,
                              char **ret_id, struct moat_error **reterr)
{
        _cleanup_import_result_ struct moat_import_result *res = NULL;
        struct moat_import_options io = {
                .changes = o->changes,
                .n_changes = o->n_changes,
                .message = strempty(o->message) ? NULL : o->message,
                .platform = strempty(o->platform) ? NULL : o->platform,
        };
        int r;

        if (o->n_changes > MOAT_IMPORT_CHANGES_MAX)
                return moat_error_setx(reterr, -E2BIG, "more than %u changes", MOAT_IMPORT_CHANGES_MAX);
        if (o->reference) {
                struct moat_reference ref = {};
                r = moat_reference_parse(o->reference, &ref, reterr);
                if (r < 0) {
                        if (reterr && *reterr)
                                (*reterr)->errnum = EINVAL;
                        return -EINVAL;
                }
                bool digest = ref.digest != NULL;
                moat_reference_clear(&ref);
                if (digest)
                        return moat_error_setx(reterr, -EINVAL, "cannot import digest reference");
        }
        r = moat_import_rootfs(e->store, fd, &io, &res, reterr);
        if (r < 0)
                return r;
        if (o->reference)
                r = moat_images_tag(e->store, o->reference, &res->manifest, reterr);
        else
                r = moat_images_add_untagged(e->store, &res->manifest, reterr);
        if (r < 0)
                return moat_error_wrap(reterr, r, "import: %s", o->reference ? o->reference : "keep the image");
        *ret_id = strdup(res->id);
        return *ret_id ? 0 : moat_error_set(reterr, -ENOMEM, "import");
}

/* ---- system df ------------------------------------------------------------------ */

/* Volumes: none until the engine has volumes; their df entries go here. */
static int df_containers(struct moat_engine *e, const json_t *images, json_t **ret, struct moat_error **reterr)
{
        json_t *list = NULL, *c;
        size_t i;
        int r = moat_engine_list(e, true, -1, NULL, &list, reterr);
        if (r < 0)
                return r;
        json_array_foreach(list, i, c) {
                const char *id = json_string_value(json_object_get(c, "Id"));
                const char *image_id = json_string_value(json_object_get(c, "ImageID"));
                _cleanup_free_ char *upper = NULL;
                int64_t rw = 0, image_size = 0;
                size_t k;
                json_t *im;

                if (id && asprintf(&upper, "%s/upper", id) >= 0 &&
                    moat_engine_tree_size(e->containers_fd, upper, &rw) < 0)
                        rw = 0; /* removed meanwhile, or past the walk's bounds */
                json_array_foreach(images, k, im)
                        if (image_id && streq(json_string_value(json_object_get(im, "Id")) ?: "", image_id))
                                image_size = json_integer_value(json_object_get(im, "Size"));
                json_object_set_new(c, "SizeRw", json_integer(rw));
                json_object_set_new(c, "SizeRootFs", json_integer(rw + image_size));
        }
        *ret = list;
        return 0;
}

int moat_engine_system_df(struct moat_engine *e, unsigned what, json_t **ret, struct moat_error **reterr)
{
        struct moat_image_list_options o = { .shared_size = true, .containers = image_containers, .userdata = e };
        json_t *images = NULL, *containers = NULL, *doc;
        int64_t layers_size = 0;
        int r;

        if (what == 0)
                what = MOAT_ENGINE_DF_ALL;
        r = moat_image_list_json(e->store, &o, &images, &layers_size, reterr);
        if (r < 0)
                return r;
        if (what & MOAT_ENGINE_DF_CONTAINERS) {
                r = df_containers(e, images, &containers, reterr);
                if (r < 0) {
                        json_decref(images);
                        return r;
                }
        }
        doc = json_object();
        if (!doc) {
                json_decref(images);
                json_decref(containers);
                return moat_error_set(reterr, -ENOMEM, "system df");
        }
        if (what & MOAT_ENGINE_DF_IMAGES) {
                json_object_set_new(doc, "LayersSize", json_integer(layers_size));
                json_object_set_new(doc, "Images", images);
        } else
                json_decref(images);
        if (containers)
                json_object_set_new(doc, "Containers", containers);
        if (what & MOAT_ENGINE_DF_VOLUMES) {
                json_t *volumes = NULL;
                r = engine_volumes_df(e, &volumes, reterr);
                if (r < 0) {
                        json_decref(doc);
                        return r;
                }
                json_object_set_new(doc, "Volumes", volumes);
        }
        if (what & MOAT_ENGINE_DF_BUILD_CACHE)
                json_object_set_new(doc, "BuildCache", json_array());
        *ret = doc;
        return 0;
}
