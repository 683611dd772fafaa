/* SPDX-License-Identifier: Apache-2.0 */
#include "base/compat.h"

/*
 * Opening and closing the engine (engine.h): its directories, the image
 * store, the database, the monitor watcher, and the containers found in
 * the database, reconnected to their monitors (live restore). Closing
 * leaves every container running.
 */

#include "engine/engine-internal.h"

#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "base/cleanup.h"
#include "engine/container-fs.h"
#include "engine/monitor-spawn.h"
#include "engine/watch.h"

static int make_dir(const char *path, mode_t mode, struct moat_error **reterr)
{
        struct stat st;

        if (mkdir(path, mode) < 0 && errno != EEXIST)
                return moat_error_set(reterr, errno, "creating %s", path);
        if (lstat(path, &st) < 0)
                return moat_error_set(reterr, errno, "%s", path);
        if (!S_ISDIR(st.st_mode))
                return moat_error_setx(reterr, -ENOTDIR, "%s is not a directory", path);
        if (st.st_uid != 0 && geteuid() == 0)
                return moat_error_setx(reterr, -EPERM, "%s is not owned by root", path);
        if (chmod(path, mode) < 0)
                return moat_error_set(reterr, errno, "chmod %s", path);
        return 0;
}

/* Watch keys are "<container id>" or "<container id>/<exec id>". */
static void monitor_exited(const char *key, void *userdata)
{
        const char *slash = strchr(key, '/');

        if (slash) {
                char cid[65];
                size_t n = (size_t) (slash - key);
                if (n >= sizeof(cid))
                        return;
                memcpy(cid, key, n);
                cid[n] = '\0';
                exec_monitor_exited(userdata, cid, slash + 1);
        } else
                container_monitor_exited(key, userdata);
}

int moat_engine_open(const struct moat_engine_config *cfg, struct moat_engine **ret, struct moat_error **reterr)
{
        struct moat_engine *e = calloc(1, sizeof(*e));
        _cleanup_free_ char *containers = NULL, *run_containers = NULL, *images = NULL;
        int r;

        if (!e)
                return moat_error_set(reterr, -ENOMEM, "engine");
        e->data_fd = e->containers_fd = e->run_containers_fd = -EBADF;
        pthread_mutex_init(&e->lock, NULL);
        pthread_cond_init(&e->changed, NULL);
        e->log = cfg->log;
        if (cfg->host_config_defaults) {
                r = moat_engine_defaults_check(cfg->host_config_defaults, reterr);
                if (r < 0)
                        goto fail;
                e->host_config_defaults = json_deep_copy(cfg->host_config_defaults);
                if (!e->host_config_defaults) {
                        r = moat_error_set(reterr, -ENOMEM, "engine");
                        goto fail;
                }
        }
        if (!(e->data_root = strdup(cfg->data_root)) || !(e->exec_root = strdup(cfg->exec_root)) ||
            !(e->monitor_path = strdup(cfg->monitor_path)) ||
            (cfg->init_path && !(e->init_path = strdup(cfg->init_path))) ||
            asprintf(&e->runtime_root, "%s/runtime", cfg->exec_root) < 0 ||
            asprintf(&containers, "%s/containers", cfg->data_root) < 0 ||
            asprintf(&run_containers, "%s/containers", cfg->exec_root) < 0 ||
            asprintf(&images, "%s/images", cfg->data_root) < 0) {
                r = moat_error_set(reterr, -ENOMEM, "engine");
                goto fail;
        }
        r = make_dir(e->data_root, 0700, reterr);
        if (r >= 0)
                r = make_dir(e->exec_root, 0700, reterr);
        if (r >= 0)
                r = make_dir(e->runtime_root, 0700, reterr);
        if (r >= 0)
                r = make_dir(containers, 0700, reterr);
        if (r >= 0)
                r = make_dir(run_containers, 0700, reterr);
        if (r < 0)
                goto fail;
        e->data_fd = open(e->data_root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        e->containers_fd = open(containers, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (e->data_fd < 0 || e->containers_fd < 0) {
                r = moat_error_set(reterr, errno, "opening %s", e->data_root);
                goto fail;
        }
        e->run_containers_fd = open(run_containers, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (e->run_containers_fd < 0) {
                r = moat_error_set(reterr, errno, "opening %s", run_containers);
                goto fail;
        }
        r = moat_store_open(images, true, &e->store, reterr);
        if (r < 0)
                goto fail;
        r = moat_db_open(e->data_root, &(struct moat_db_options) { .flags = MOAT_DB_OPEN_QUICK_CHECK }, &e->db,
                         reterr);
        if (r < 0)
                goto fail;
        {
                /* Events continue from the newest one kept. */
                struct moat_db_event *ev = NULL;
                size_t n_ev = 0;
                r = moat_db_event_list(e->db, NULL, &ev, &n_ev, reterr);
                if (r < 0)
                        goto fail;
                e->last_event_seq = n_ev > 0 ? ev[n_ev - 1].seq : 0;
                moat_db_events_free(ev, n_ev);
        }
        r = moat_watch_new(monitor_exited, e, &e->watch, reterr);
        if (r < 0)
                goto fail;
        pthread_mutex_lock(&e->lock);
        r = containers_restore(e, reterr);
        pthread_mutex_unlock(&e->lock);
        if (r < 0)
                goto fail;
        *ret = e;
        return 0;
fail:
        moat_engine_free(e);
        return r;
}

void moat_engine_free(struct moat_engine *e)
{
        if (!e)
                return;
        /* Restart threads still waiting for their back-off end now; one
         * that is starting a container is waited for, boundedly; if it
         * does not finish the engine is left allocated (the process is
         * exiting) rather than freed under it. */
        pthread_mutex_lock(&e->lock);
        e->closing = true;
        pthread_cond_broadcast(&e->changed);
        struct timespec until;
        clock_gettime(CLOCK_REALTIME, &until);
        until.tv_sec += 30;
        while (e->bg_threads > 0 && pthread_cond_timedwait(&e->changed, &e->lock, &until) == 0)
                ;
        bool busy = e->bg_threads > 0;
        pthread_mutex_unlock(&e->lock);
        if (busy)
                return;
        moat_monitor_zygote_stop();
        moat_watch_free(e->watch);
        for (struct container *c = e->containers, *next; c; c = next) {
                next = c->next;
                container_free(c);
        }
        if (e->db)
                moat_db_close(e->db);
        moat_store_free(e->store);
        if (e->data_fd >= 0)
                close(e->data_fd);
        if (e->containers_fd >= 0)
                close(e->containers_fd);
        if (e->run_containers_fd >= 0)
                close(e->run_containers_fd);
        free(e->data_root);
        free(e->exec_root);
        free(e->runtime_root);
        free(e->monitor_path);
        free(e->init_path);
        json_decref(e->host_config_defaults);
        pthread_cond_destroy(&e->changed);
        pthread_mutex_destroy(&e->lock);
        free(e);
}

int engine_run_dir_path(struct moat_engine *e, const char *id, char **ret_path, struct moat_error **reterr)
{
        if (asprintf(ret_path, "%s/containers/%s", e->exec_root, id) < 0)
                return moat_error_set(reterr, -ENOMEM, "run directory path");
        return 0;
}

int engine_run_dir_open(struct moat_engine *e, const char *id, bool create, struct moat_error **reterr)
{
        if (create && mkdirat(e->run_containers_fd, id, 0711) < 0 && errno != EEXIST)
                return moat_error_set(reterr, errno, "creating %s/containers/%s", e->exec_root, id);
        int fd = openat(e->run_containers_fd, id, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (fd < 0)
                return moat_error_set(reterr, errno, "%s/containers/%s", e->exec_root, id);
        return fd;
}

void engine_run_dir_remove(struct moat_engine *e, const char *id)
{
        _cleanup_error_ struct moat_error *err = NULL;
        if (moat_container_fs_remove(e->run_containers_fd, id, &err) < 0)
                engine_log(e, 3, "removing the run directory of %s: %s", id, err->msg);
}

struct moat_store *moat_engine_store(struct moat_engine *e)
{
        return e->store;
}
