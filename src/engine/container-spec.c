/* SPDX-License-Identifier: Apache-2.0 */
#include "base/compat.h"

/*
 * The engine's side of docker-spec.h: what the translation needs from the
 * engine (other containers' pids, bind sources, the host's abilities) and
 * where its results go (the container's inspect documents, the files
 * bind-mounted over /etc).
 *
 * Volumes (engine-volumes.h) are resolved while the spec is built, when
 * the container's root is mounted (a new volume is filled from it). The
 * database refuses a container's use of a volume that does not exist, so
 * the order is: the volumes exist (held "pending" so no removal or prune
 * takes them), then the container's Mounts are saved, then the volumes
 * are let go. An anonymous volume keeps its name across starts: the
 * previous start's Mounts name it by destination.
 */

#include "engine/engine-internal.h"

#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/cleanup.h"
#include "engine/container-fs.h"
#include "engine/docker-spec.h"
#include "engine/engine-volumes.h"

struct spec_userdata {
        struct moat_engine *e;
        int root_fd;
        int pin_dir_fd;         /* where subpaths are pinned; -EBADF: not (the create pass) */
        json_t *prev_mounts;    /* the Mounts of the previous start */
        char **acquired;        /* volumes held pending */
        size_t n_acquired;
        bool volume_failed;     /* the error came from a volume */
};

/* docker creates missing Binds sources as directories, like mkdir -p. */
static int make_bind_source(void *userdata, const char *path, struct moat_error **reterr)
{
        _cleanup_free_ char *copy = strdup(path);

        if (!copy)
                return moat_error_set(reterr, -ENOMEM, "bind source");
        if (path[0] != '/')
                return moat_error_setx(reterr, -EINVAL, "bind source %s is not an absolute path", path);
        for (char *p = copy + 1;; p++) {
                if (*p == '/' || *p == '\0') {
                        char saved = *p;
                        *p = '\0';
                        if (mkdir(copy, 0755) < 0 && errno != EEXIST)
                                return moat_error_set(reterr, errno, "creating bind source %s", copy);
                        *p = saved;
                        if (!saved)
                                break;
                }
        }
        return 0;
}

static void release_volumes_held(struct spec_userdata *u);

static int container_pid(void *userdata, const char *ref, pid_t *ret_pid, char **ret_id, struct moat_error **reterr)
{
        struct moat_engine *e = ((struct spec_userdata *) userdata)->e;
        struct container *c;
        int r;

        pthread_mutex_lock(&e->lock);
        r = container_find_locked(e, ref, &c, reterr);
        if (r >= 0 && (c->st.state != MOAT_CONTAINER_RUNNING || c->st.pid <= 0))
                r = moat_error_setx(reterr, -EBUSY, "container %s is not running", ref);
        if (r >= 0) {
                *ret_pid = c->st.pid;
                if (!(*ret_id = strdup(c->id)))
                        r = moat_error_set(reterr, -ENOMEM, "container id");
        }
        pthread_mutex_unlock(&e->lock);
        return r;
}

static int container_hostname(void *userdata, const char *ref, char *buf, size_t size, struct moat_error **reterr)
{
        struct moat_engine *e = ((struct spec_userdata *) userdata)->e;
        struct container *c;
        int r;

        pthread_mutex_lock(&e->lock);
        r = container_find_locked(e, ref, &c, reterr);
        if (r >= 0) {
                const char *h = json_string_value(json_object_get(c->config, "Hostname"));
                snprintf(buf, size, "%.*s", h && *h ? (int) (size - 1) : 12, h && *h ? h : c->id);
        }
        pthread_mutex_unlock(&e->lock);
        return r;
}

static int container_shm(void *userdata, const char *id, char **ret_path, struct moat_error **reterr)
{
        struct moat_engine *e = ((struct spec_userdata *) userdata)->e;
        _cleanup_close_ int dir_fd = openat(e->containers_fd, id, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        int r = dir_fd < 0 ? -errno : moat_container_fs_shm_mounted(dir_fd);
        if (r < 0 && r != -ENOENT)
                return moat_error_set(reterr, r, "container %s: its /dev/shm", id);
        if (r <= 0)
                return moat_error_setx(reterr, -EINVAL,
                                       "container %s: non-shareable IPC (hint: use IpcMode:shareable for the donor "
                                       "container)",
                                       id);
        if (asprintf(ret_path, "%s/containers/%s/" MOAT_CONTAINER_SHM, e->data_root, id) < 0)
                return moat_error_set(reterr, -ENOMEM, "paths");
        return 0;
}

static int container_mounts(void *userdata, const char *ref, json_t **ret_mounts, char **ret_id,
                            struct moat_error **reterr)
{
        struct spec_userdata *u = userdata;
        struct moat_engine *e = u->e;
        struct container *c;
        int r;

        pthread_mutex_lock(&e->lock);
        r = container_find_locked(e, ref, &c, reterr);
        if (r >= 0) {
                *ret_mounts = c->mounts ? json_deep_copy(c->mounts) : json_array();
                *ret_id = strdup(c->id);
                if (!*ret_mounts || !*ret_id) {
                        json_decref(*ret_mounts);
                        free(*ret_id);
                        *ret_mounts = NULL;
                        *ret_id = NULL;
                        r = moat_error_set(reterr, -ENOMEM, "mounts");
                }
        }
        pthread_mutex_unlock(&e->lock);
        if (r < 0)
                u->volume_failed = true; /* a create fails on it, as docker's does */
        if (r == -ENOENT) {
                /* a 400, not a 404: the docker CLI takes a 404 from create
                 * for a missing image and tries to pull it */
                if (reterr && *reterr)
                        (*reterr)->errnum = EINVAL;
                r = -EINVAL;
        }
        return r;
}

static int volume(void *userdata, const struct moat_docker_volume_request *req, char **ret_host_path,
                  char **ret_name, struct moat_error **reterr)
{
        struct spec_userdata *u = userdata;
        const char *reuse = NULL;
        size_t i;
        json_t *m;

        if (!req->name)
                json_array_foreach(u->prev_mounts, i, m)
                        if (streq(json_string_value(json_object_get(m, "Type")) ?: "", "volume") &&
                            streq(json_string_value(json_object_get(m, "Destination")) ?: "", req->destination) &&
                            !strempty(json_string_value(json_object_get(m, "Name"))))
                                reuse = json_string_value(json_object_get(m, "Name"));
        char **grown = realloc(u->acquired, (u->n_acquired + 1) * sizeof(char *));
        if (!grown)
                return moat_error_set(reterr, -ENOMEM, "volumes");
        u->acquired = grown;
        int r = engine_volume_acquire(u->e, req, reuse, u->root_fd, u->pin_dir_fd, ret_host_path, ret_name, reterr);
        if (r < 0) {
                u->volume_failed = true;
                return r;
        }
        if (!(u->acquired[u->n_acquired] = strdup(*ret_name))) {
                engine_volume_release(u->e, *ret_name);
                free(*ret_host_path);
                free(*ret_name);
                *ret_host_path = *ret_name = NULL;
                return moat_error_set(reterr, -ENOMEM, "volumes");
        }
        u->n_acquired++;
        return 0;
}

/* A spec that failed drops the anonymous volumes it made: no record names them. */
static void drop_new_anonymous_volumes(struct spec_userdata *u)
{
        _cleanup_(json_decrefp) json_t *made = json_array();

        for (size_t i = 0; made && i < u->n_acquired; i++) {
                bool known = false;
                size_t k;
                json_t *m;
                json_array_foreach(u->prev_mounts, k, m)
                        known = known || streq(json_string_value(json_object_get(m, "Name")) ?: "", u->acquired[i]);
                if (!known)
                        json_array_append_new(made, json_pack("{s:s, s:s}", "Type", "volume", "Name", u->acquired[i]));
        }
        release_volumes_held(u);
        engine_volumes_remove_anonymous(u->e, made);
}

static void release_volumes_held(struct spec_userdata *u)
{
        for (size_t i = 0; i < u->n_acquired; i++) {
                engine_volume_release(u->e, u->acquired[i]);
                free(u->acquired[i]);
        }
        free(u->acquired);
        u->acquired = NULL;
        u->n_acquired = 0;
}

static void release_volumes(struct spec_userdata *u)
{
        release_volumes_held(u);
        json_decref(u->prev_mounts);
        u->prev_mounts = NULL;
}

static void host_abilities(struct moat_docker_host *h)
{
        /* cgroup v2 has no swappiness or oom_kill_disable; v1 needs the
         * memsw files for swap limits. */
        bool v2 = access("/sys/fs/cgroup/cgroup.controllers", F_OK) == 0;

        *h = (struct moat_docker_host) {};
        if (v2) {
                h->no_memory_swappiness = true;
                h->no_oom_kill_disable = true;
        } else if (access("/sys/fs/cgroup/memory/memory.memsw.limit_in_bytes", F_OK) < 0)
                h->no_swap_limit = true;
        /* v2: the io controller has weights (a child's io.weight); v1: the files of the root */
        if (!v2)
                h->no_blkio_weight_device = access("/sys/fs/cgroup/blkio/blkio.weight_device", F_OK) < 0 &&
                                            access("/sys/fs/cgroup/blkio/blkio.bfq.weight_device", F_OK) < 0;
}

/* The daemon's defaults where the request leaves a field unset, as moby
 * fills them: LogConfig by mergeAndVerifyLogConfig (the default driver
 * for no Type; the default options the config lacks when the driver is
 * the default one), ShmSize when 0, IpcMode when empty, Init when null,
 * and the default Ulimits whose names the request does not set. */
static int apply_defaults(const json_t *d, json_t *body)
{
        json_t *hc = json_object_get(body, "HostConfig"), *v;

        if (!hc) {
                hc = json_object();
                if (!hc || json_object_set_new(body, "HostConfig", hc) < 0)
                        return -ENOMEM;
        }
        if (!json_is_object(hc))
                return 0; /* the parse says what is wrong */
        if ((v = json_object_get(d, "ShmSize")) && json_integer_value(json_object_get(hc, "ShmSize")) == 0 &&
            json_object_set(hc, "ShmSize", v) < 0)
                return -ENOMEM;
        if ((v = json_object_get(d, "IpcMode")) && strempty(json_string_value(json_object_get(hc, "IpcMode"))) &&
            json_object_set(hc, "IpcMode", v) < 0)
                return -ENOMEM;
        if ((v = json_object_get(d, "Init")) && !json_is_boolean(json_object_get(hc, "Init")) &&
            json_object_set(hc, "Init", v) < 0)
                return -ENOMEM;

        json_t *dul = json_object_get(d, "Ulimits"), *ul = json_object_get(hc, "Ulimits");
        if (json_array_size(dul) > 0 && (json_is_array(ul) || !ul || json_is_null(ul))) {
                json_t *merged = json_is_array(ul) ? json_copy(ul) : json_array();
                size_t i, k;
                json_t *x, *y;
                if (!merged)
                        return -ENOMEM;
                json_array_foreach(dul, i, x) {
                        bool set = false;
                        json_array_foreach(ul, k, y)
                                set = set || json_equal(json_object_get(x, "Name"), json_object_get(y, "Name"));
                        if (!set && json_array_append(merged, x) < 0) {
                                json_decref(merged);
                                return -ENOMEM;
                        }
                }
                if (json_object_set_new(hc, "Ulimits", merged) < 0)
                        return -ENOMEM;
        }

        const json_t *dlc = json_object_get(d, "LogConfig");
        json_t *lc = json_object_get(hc, "LogConfig");
        if (dlc && (!lc || json_is_null(lc) || json_is_object(lc))) {
                const char *dtype = json_string_value(json_object_get(dlc, "Type"));
                const char *type = json_string_value(json_object_get(lc, "Type"));
                json_t *conf = json_object_get(lc, "Config");
                if (conf && !json_is_null(conf) && !json_is_object(conf))
                        return 0;
                json_t *n = json_object();
                json_t *nconf = json_is_object(conf) ? json_copy(conf) : json_object();
                if (!n || !nconf || json_object_set_new(n, "Config", nconf) < 0) {
                        json_decref(n);
                        return -ENOMEM;
                }
                if (strempty(type))
                        type = dtype;
                if (json_object_set_new(n, "Type", json_string(type)) < 0) {
                        json_decref(n);
                        return -ENOMEM;
                }
                if (streq(type, dtype)) {
                        const char *k;
                        json_object_foreach((json_t *) json_object_get(dlc, "Config"), k, v)
                                if (!json_object_get(nconf, k) && json_object_set(nconf, k, v) < 0) {
                                        json_decref(n);
                                        return -ENOMEM;
                                }
                }
                if (json_object_set_new(hc, "LogConfig", n) < 0)
                        return -ENOMEM;
        }
        return 0;
}

int moat_engine_defaults_check(const json_t *defaults, struct moat_error **reterr)
{
        _cleanup_docker_create_ struct moat_docker_create *dc = NULL;
        struct moat_docker_host host;
        uint64_t size;
        unsigned files;
        json_t *body = json_pack("{s:s, s:{}}", "Image", "defaults", "HostConfig");
        int r;

        if (!body)
                return moat_error_set(reterr, -ENOMEM, "defaults");
        r = apply_defaults(defaults, body);
        if (r < 0) {
                json_decref(body);
                return moat_error_set(reterr, r, "defaults");
        }
        host_abilities(&host);
        r = moat_docker_create_parse(body, &host, &dc, reterr);
        if (r >= 0)
                r = moat_engine_log_options(json_object_get(json_object_get(dc->host_config, "LogConfig"), "Config"),
                                            &size, &files, reterr);
        json_decref(body);
        return r;
}

int container_normalize_create(struct moat_engine *e, json_t *body, json_t **ret_config, json_t **ret_host_config,
                               json_t **ret_warnings, struct moat_error **reterr)
{
        _cleanup_docker_create_ struct moat_docker_create *dc = NULL;
        struct moat_docker_host host;
        json_t *with_defaults = NULL;
        int r;

        if (e->host_config_defaults && json_is_object(body)) {
                with_defaults = json_deep_copy(body);
                if (!with_defaults || apply_defaults(e->host_config_defaults, with_defaults) < 0) {
                        json_decref(with_defaults);
                        return moat_error_set(reterr, -ENOMEM, "create body");
                }
                body = with_defaults;
        }
        host_abilities(&host);
        r = moat_docker_create_parse(body, &host, &dc, reterr);
        json_decref(with_defaults);
        if (r < 0)
                return r;
        *ret_config = json_incref(dc->config);
        *ret_host_config = json_incref(dc->host_config);
        *ret_warnings = json_incref(dc->warnings);
        return 0;
}

/* The create body again, from what create stored. */
static json_t *body_of(const struct container *c)
{
        json_t *body = json_deep_copy(c->config);
        if (body)
                json_object_set(body, "HostConfig", c->host_config);
        return body;
}

/* run_fd: the run directory for the /etc files (-EBADF with volumes_only). */
static int make_spec(struct moat_engine *e, struct container *c, const struct moat_image *img, int dir_fd, int run_fd,
                     bool volumes_only, char **ret_spec_text, bool *ret_volume_failed, struct moat_error **reterr)
{
        _cleanup_docker_create_ struct moat_docker_create *dc = NULL;
        _cleanup_docker_spec_ struct moat_docker_spec *ds = NULL;
        _cleanup_free_ char *dir = NULL, *hostname_path = NULL, *hosts_path = NULL, *resolv_path = NULL,
                            *root_path = NULL, *shm_path = NULL;
        _cleanup_close_ int root_fd = -EBADF;
        struct moat_docker_host host;
        json_t *body;
        int r;

        body = body_of(c);
        if (!body)
                return moat_error_set(reterr, -ENOMEM, "create body");
        host_abilities(&host);
        r = moat_docker_create_parse(body, &host, &dc, reterr);
        json_decref(body);
        if (r < 0)
                return r;
        root_fd = openat(dir_fd, MOAT_CONTAINER_ROOTFS, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (root_fd < 0)
                return moat_error_set(reterr, errno, "opening the root filesystem of %s", c->id);
        r = engine_run_dir_path(e, c->id, &dir, reterr);
        if (r < 0)
                return r;
        if (asprintf(&hostname_path, "%s/hostname", dir) < 0 || asprintf(&hosts_path, "%s/hosts", dir) < 0 ||
            asprintf(&resolv_path, "%s/resolv.conf", dir) < 0 ||
            asprintf(&root_path, "%s/containers/%s/" MOAT_CONTAINER_ROOTFS, e->data_root, c->id) < 0 ||
            asprintf(&shm_path, "%s/containers/%s/" MOAT_CONTAINER_SHM, e->data_root, c->id) < 0)
                return moat_error_set(reterr, -ENOMEM, "paths");
        struct spec_userdata u = { .e = e, .root_fd = root_fd, .pin_dir_fd = volumes_only ? -EBADF : dir_fd };
        pthread_mutex_lock(&e->lock);
        u.prev_mounts = c->mounts ? json_deep_copy(c->mounts) : json_array();
        pthread_mutex_unlock(&e->lock);
        if (!u.prev_mounts)
                return moat_error_set(reterr, -ENOMEM, "mounts");
        struct moat_docker_spec_context ctx = {
                .id = c->id,
                .image = img->config,
                .root_fd = root_fd,
                .root_path = volumes_only ? NULL : root_path,
                .hostname_path = hostname_path,
                .hosts_path = hosts_path,
                .resolv_conf_path = resolv_path,
                .shm_path = shm_path,
                .init_path = e->init_path,
                .container_pid = container_pid,
                .container_shm = container_shm,
                .container_hostname = container_hostname,
                .make_bind_source = make_bind_source,
                .volume = volume,
                .container_mounts = container_mounts,
                .userdata = &u,
                .volumes_only = volumes_only,
        };
        r = moat_docker_create_spec(dc, &ctx, &ds, reterr);
        if (r < 0) {
                if (ret_volume_failed)
                        *ret_volume_failed = u.volume_failed;
                drop_new_anonymous_volumes(&u);
                release_volumes(&u);
                return r;
        }
        bool host_network = dc->network_mode && streq(dc->network_mode, "host");
        const char *domain = json_string_value(json_object_get(ds->config, "Domainname"));
        if (!volumes_only) {
                /* The bundle is the run directory; the root (root_path) stays under the data root. */
                r = moat_container_fs_write_etc(run_fd, ds->hostname, domain, host_network, dc->host_config,
                                                reterr);
                if (r < 0) {
                        drop_new_anonymous_volumes(&u);
                        release_volumes(&u);
                        return r;
                }
        }

        /* What inspect shows from now on: the Config merged with the image. */
        pthread_mutex_lock(&e->lock);
        json_decref(c->config);
        c->config = json_incref(ds->config);
        json_decref(c->host_config);
        c->host_config = json_incref(ds->host_config);
        json_decref(c->mounts);
        c->mounts = json_incref(ds->mounts);
        json_t *argv = json_array();
        json_array_extend(argv, json_object_get(ds->config, "Entrypoint"));
        json_array_extend(argv, json_object_get(ds->config, "Cmd"));
        free(c->path);
        c->path = json_array_size(argv) > 0 && json_is_string(json_array_get(argv, 0))
                          ? strdup(json_string_value(json_array_get(argv, 0)))
                          : NULL;
        json_decref(c->args);
        if (json_array_size(argv) > 0)
                json_array_remove(argv, 0);
        c->args = argv;
        /* The uses of the volumes are recorded before they are let go.
         * Without volumes a start leaves the saving to its end, which
         * records the document with the state whether the start worked or
         * not: a state database transaction less before the answer. */
        r = volumes_only || u.n_acquired > 0 ? container_save_locked(e, c, reterr) : 0;
        pthread_mutex_unlock(&e->lock);
        release_volumes(&u);
        if (r < 0)
                return r;

        if (ret_spec_text)
                *ret_spec_text = TAKE_PTR(ds->text);
        return 0;
}

int container_make_spec(struct moat_engine *e, struct container *c, const struct moat_image *img, int dir_fd,
                        int run_fd, char **ret_spec_text, struct moat_error **reterr)
{
        return make_spec(e, c, img, dir_fd, run_fd, false, ret_spec_text, NULL, reterr);
}

/* Does the container ask for volumes or bind mounts (which docker resolves at create)? */
bool container_wants_volumes(const struct container *c)
{
        json_t *volumes = json_object_get(c->config, "Volumes");
        json_t *binds = json_object_get(c->host_config, "Binds");
        json_t *mounts = json_object_get(c->host_config, "Mounts");

        return json_object_size(volumes) > 0 || json_array_size(binds) > 0 || json_array_size(mounts) > 0 ||
               json_array_size(json_object_get(c->host_config, "VolumesFrom")) > 0;
}

/* docker creates a container's volumes when the container is created
 * (`docker volume ls` shows them, inspect's Mounts names them), filling
 * new ones from the image; so does this, with the root mounted only for
 * the time it takes. */
int container_create_volumes(struct moat_engine *e, struct container *c, const struct moat_image *img, int dir_fd,
                             struct moat_error **reterr)
{
        int r;

        if (!container_wants_volumes(c))
                return 0;
        /* read-only: nothing is written, and its unmount syncs nothing */
        r = moat_container_fs_mount(e->store, img, dir_fd, MOAT_SNAPSHOT_READONLY, reterr);
        if (r < 0)
                return r;
        _cleanup_error_ struct moat_error *err = NULL;
        bool volume_failed = false;
        r = make_spec(e, c, img, dir_fd, -EBADF, true, NULL, &volume_failed, &err);
        if (r < 0 && !volume_failed) {
                /* Like docker, what is wrong besides the volumes (a user
                 * the image lacks, say) is the start's error, not create's. */
                engine_log(e, 7, "container %s: left for start: %s", c->id, err->msg);
                r = 0;
        }
        if (r < 0 && reterr)
                *reterr = TAKE_PTR(err);
        int u = moat_container_fs_unmount(dir_fd, r < 0 ? NULL : reterr);
        return r < 0 ? r : u;
}
