/* SPDX-License-Identifier: Apache-2.0 */
#include "base/compat.h"

/*
 * Unpacking an image's layers into the ChainID-keyed cache of images.h
 * (see moat_images_unpack there).
 *
 * Every layer tree is independent of the others (a tree holds one layer's
 * diff; its ChainID only names it), so the missing layers are unpacked
 * concurrently by a bounded pool: min(missing layers, usable CPUs, 8)
 * workers, the calling thread being one of them, taking layers largest
 * blob first (the longest job starts first, so the last one to finish is
 * short). One missing layer, or one CPU, runs in the calling thread with
 * no thread at all. Every worker is joined before moat_images_unpack
 * returns, so the caller is single-threaded again afterwards (the runtime
 * relies on that around clone()).
 *
 * Two phases:
 *   1. each layer into its own layers/.tmp-<random> tree, its compressed
 *      digest and DiffID checked (workers);
 *   2. when all succeeded: one syncfs() for all the trees (they share the
 *      filesystem of layers/; one sync instead of one per layer), then each
 *      renamed to its ChainID with RENAME_NOREPLACE (losing that race to
 *      another unpacker discards our copy), then one fsync of layers/.
 * First error wins: the failing worker records its error, raises the
 * shared cancel flag and removes its tree; no worker starts another layer
 * once the flag is up, and a worker that completes a layer after it
 * removes that tree itself (in parallel). A layer already being unpacked
 * runs to its end: layer.c has no hook to stop between entries. So a
 * failure leaves no temp tree and installs nothing, and the error names
 * the layer (index and digest).
 *
 * What the workers share, and why it is safe: the store is only read
 * (moat_store_open_blob: openat on its blobs fd); each worker has its own
 * blob fd, tree fd, libarchive handles and nettle contexts (inside
 * moat_layer_unpack, per call), and its own struct moat_error; temp names
 * come from getrandom() and mkdirat()'s EEXIST; errno and the strerror()
 * buffers of glibc (>= 2.32) are per thread. The only shared writes are
 * the job cursor and the cancel and failure marks, all atomics; each job's
 * result is read by the calling thread only after pthread_join(). Workers
 * block every signal, so process-directed signals keep going to the
 * caller's thread.
 */

#include "image/images.h"
#include "image/images-internal.h"

#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/cleanup.h"

#define UNPACK_MAX_WORKERS 8u

struct unpack_job {
        const struct oci_descriptor *layer;
        size_t index;            /* in the manifest */
        const char *diff_id;
        const char *chain_id;
        char tmp[32];            /* the temp tree in layers/, "" when none */
        int r;
        struct moat_error *err;
};

struct unpack_pool {
        struct moat_store *store;
        int layers_fd;
        const struct moat_layer_options *opts;
        struct unpack_job *jobs;
        size_t *order;           /* job indexes, largest blob first */
        size_t n_jobs;
        atomic_size_t next;      /* into order */
        atomic_bool cancel;
        atomic_size_t failed;    /* the job whose error wins; SIZE_MAX: none */
};

static void remove_tmp(int layers_fd, struct unpack_job *job)
{
        if (!job->tmp[0])
                return;
        (void) moat_images_rm_rf_at(layers_fd, job->tmp, 0);
        job->tmp[0] = '\0';
}

/* Phase 1 for one layer: unpack into a new temp tree and check both digests.
 * On failure nothing is left behind. */
static int unpack_to_tmp(struct unpack_pool *p, struct unpack_job *job, struct moat_error **reterr)
{
        const struct oci_descriptor *layer = job->layer;
        _cleanup_close_ int blob_fd = -EBADF, tree_fd = -EBADF;
        struct moat_layer_result res = {};
        enum oci_compression comp;
        size_t i = job->index;
        bool nondist;
        int r;

        r = oci_layer_media_type(layer->media_type, &comp, &nondist);
        if (r < 0)
                return moat_error_setx(reterr, -EMEDIUMTYPE, "layers[%zu] (%s): media type \"%s\" cannot be unpacked",
                                       i, layer->digest, layer->media_type);
        r = moat_store_open_blob(p->store, layer->digest, false, &blob_fd, reterr);
        if (r < 0)
                return moat_error_wrap(reterr, r, "layers[%zu]", i);
        r = moat_images_layer_tmp_create(p->layers_fd, job->tmp, reterr);
        if (r < 0) {
                job->tmp[0] = '\0';
                return moat_error_wrap(reterr, r, "layers[%zu] (%s)", i, layer->digest);
        }
        tree_fd = openat(p->layers_fd, job->tmp, O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW);
        if (tree_fd < 0) {
                r = moat_error_set(reterr, errno, "layers[%zu] (%s): opening layers/%s", i, layer->digest, job->tmp);
                goto fail;
        }
        if (fchmod(tree_fd, 0755) < 0) {
                r = moat_error_set(reterr, errno, "layers[%zu] (%s): chmod layers/%s", i, layer->digest, job->tmp);
                goto fail;
        }
        r = moat_layer_unpack(blob_fd, tree_fd, p->opts, &res, reterr);
        if (r < 0) {
                r = moat_error_wrap(reterr, r, "layers[%zu] (%s)", i, layer->digest);
                goto fail;
        }
        if (!streq(res.compressed_digest, layer->digest)) {
                r = moat_error_setx(reterr, -EBADMSG, "layers[%zu]: blob %s hashes to %s while unpacking", i,
                                    layer->digest, res.compressed_digest);
                goto fail;
        }
        if (!streq(res.diff_id, job->diff_id)) {
                r = moat_error_setx(reterr, -EBADMSG,
                                    "layers[%zu] (%s): unpacked DiffID %s does not match the config's diff_ids[%zu] %s",
                                    i, layer->digest, res.diff_id, i, job->diff_id);
                goto fail;
        }
        return 0;
fail:
        tree_fd = safe_close(tree_fd);
        remove_tmp(p->layers_fd, job);
        return r;
}

static void *unpack_worker(void *userdata)
{
        struct unpack_pool *p = userdata;

        while (!atomic_load(&p->cancel)) {
                size_t k = atomic_fetch_add(&p->next, 1);
                if (k >= p->n_jobs)
                        break;
                struct unpack_job *job = &p->jobs[p->order[k]];

                job->r = unpack_to_tmp(p, job, &job->err);
                if (job->r < 0) {
                        size_t none = SIZE_MAX;
                        (void) atomic_compare_exchange_strong(&p->failed, &none, p->order[k]);
                        atomic_store(&p->cancel, true);
                        break;
                }
                if (atomic_load(&p->cancel))
                        remove_tmp(p->layers_fd, job);
        }
        return NULL;
}

static unsigned usable_cpus(void)
{
        cpu_set_t set;

        if (sched_getaffinity(0, sizeof(set), &set) == 0 && CPU_COUNT(&set) > 0)
                return (unsigned) CPU_COUNT(&set);
        long n = sysconf(_SC_NPROCESSORS_ONLN);
        return n > 0 ? (unsigned) n : 1;
}

/* Run the pool with up to n_workers workers, the calling thread included.
 * A thread that cannot be created only makes the pool smaller. */
static void run_pool(struct unpack_pool *p, unsigned n_workers)
{
        pthread_t threads[UNPACK_MAX_WORKERS];
        unsigned started = 0;

        if (n_workers > 1) {
                sigset_t all, old;

                sigfillset(&all);
                if (pthread_sigmask(SIG_SETMASK, &all, &old) == 0) {
                        for (unsigned t = 1; t < n_workers; t++) {
                                if (pthread_create(&threads[started], NULL, unpack_worker, p) != 0)
                                        break;
                                started++;
                        }
                        (void) pthread_sigmask(SIG_SETMASK, &old, NULL);
                }
        }
        unpack_worker(p);
        for (unsigned t = 0; t < started; t++)
                (void) pthread_join(threads[t], NULL);
}

static int cmp_by_size_desc(const void *a, const void *b, void *userdata)
{
        const struct unpack_job *jobs = userdata;
        int64_t x = jobs[*(const size_t *) a].layer->size, y = jobs[*(const size_t *) b].layer->size;

        if (x != y)
                return x > y ? -1 : 1;
        return *(const size_t *) a < *(const size_t *) b ? -1 : 1;
}

static void jobs_free(struct unpack_job *jobs, size_t n)
{
        if (!jobs)
                return;
        for (size_t i = 0; i < n; i++)
                moat_error_free(jobs[i].err);
        free(jobs);
}

/* Phase 2: sync every temp tree at once, then rename each into place. */
static int commit(struct unpack_pool *p, struct moat_error **reterr)
{
        int r = 0;

        if (syncfs(p->layers_fd) < 0)
                r = moat_error_set(reterr, errno, "syncing the new layer trees in layers/");
        for (size_t k = 0; k < p->n_jobs; k++) {
                struct unpack_job *job = &p->jobs[k];

                if (r < 0) {
                        remove_tmp(p->layers_fd, job);
                        continue;
                }
                if (renameat2(p->layers_fd, job->tmp, p->layers_fd, job->chain_id, RENAME_NOREPLACE) < 0) {
                        if (errno == EEXIST || errno == ENOTEMPTY) {
                                /* Another unpacker won: its tree is as good as ours. */
                                remove_tmp(p->layers_fd, job);
                                continue;
                        }
                        r = moat_error_set(reterr, errno, "layers[%zu] (%s): renaming layers/%s to layers/%s",
                                           job->index, job->layer->digest, job->tmp, job->chain_id);
                        remove_tmp(p->layers_fd, job);
                        continue;
                }
                job->tmp[0] = '\0';
        }
        if (r < 0)
                return r;
        if (fsync(p->layers_fd) < 0)
                return moat_error_set(reterr, errno, "fsync of layers/");
        return 0;
}

int moat_images_unpack(struct moat_store *s, const struct moat_image *img, const struct moat_layer_options *opts,
                       char ***ret_chain_ids, struct moat_error **reterr)
{
        _cleanup_close_ int lock_fd = -EBADF, layers_fd = -EBADF;
        _cleanup_strv_free_ char **chain = NULL;
        _cleanup_free_ size_t *order = NULL;
        struct unpack_job *jobs = NULL;
        struct unpack_pool pool;
        const struct oci_manifest *m;
        const struct oci_image_config *c;
        size_t n_jobs = 0;
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

        if (m->n_layers > 0) {
                jobs = calloc(m->n_layers, sizeof(*jobs));
                order = calloc(m->n_layers, sizeof(*order));
                if (!jobs || !order) {
                        free(jobs);
                        return moat_error_set(reterr, -ENOMEM, "unpack %s", img->manifest_digest);
                }
        }
        for (size_t i = 0; i < m->n_layers; i++) {
                struct stat st;

                if (fstatat(layers_fd, chain[i], &st, AT_SYMLINK_NOFOLLOW) == 0) {
                        if (!S_ISDIR(st.st_mode)) {
                                jobs_free(jobs, n_jobs);
                                return moat_error_setx(reterr, -ENOTDIR, "layers/%s is not a directory", chain[i]);
                        }
                        continue;
                }
                if (errno != ENOENT) {
                        r = moat_error_set(reterr, errno, "layers/%s", chain[i]);
                        jobs_free(jobs, n_jobs);
                        return r;
                }
                order[n_jobs] = n_jobs;
                jobs[n_jobs++] = (struct unpack_job) {
                        .layer = &m->layers[i],
                        .index = i,
                        .diff_id = c->diff_ids[i],
                        .chain_id = chain[i],
                };
        }
        if (n_jobs == 0) {
                jobs_free(jobs, n_jobs);
                *ret_chain_ids = TAKE_PTR(chain);
                return 0;
        }

        qsort_r(order, n_jobs, sizeof(*order), cmp_by_size_desc, jobs);
        pool = (struct unpack_pool) {
                .store = s,
                .layers_fd = layers_fd,
                .opts = opts,
                .jobs = jobs,
                .order = order,
                .n_jobs = n_jobs,
        };
        atomic_init(&pool.next, 0);
        atomic_init(&pool.cancel, false);
        atomic_init(&pool.failed, SIZE_MAX);

        unsigned n_workers = usable_cpus();
        if (n_workers > UNPACK_MAX_WORKERS)
                n_workers = UNPACK_MAX_WORKERS;
        if (n_workers > n_jobs)
                n_workers = (unsigned) n_jobs;
        run_pool(&pool, n_workers);

        size_t failed = atomic_load(&pool.failed);
        if (failed != SIZE_MAX) {
                struct unpack_job *bad = &jobs[failed];

                for (size_t k = 0; k < n_jobs; k++)
                        remove_tmp(layers_fd, &jobs[k]);
                r = bad->r;
                if (reterr && !*reterr)
                        *reterr = TAKE_PTR(bad->err);
                jobs_free(jobs, n_jobs);
                return moat_error_wrap(reterr, r, "unpack %s", img->manifest_digest);
        }
        r = commit(&pool, reterr);
        jobs_free(jobs, n_jobs);
        if (r < 0)
                return moat_error_wrap(reterr, r, "unpack %s", img->manifest_digest);
        *ret_chain_ids = TAKE_PTR(chain);
        return 0;
}
