/* SPDX-License-Identifier: Apache-2.0 */
#include "base/compat.h"

/*
 * Containers of the engine (engine.h): their table in memory, mirrored in
 * the database at every change of state, and their life through the
 * monitor.
 *
 * Why it is built this way:
 *  - The database is written before the table answers, so a daemon killed
 *    at any point restarts with what clients were told (db.h commits are
 *    durable when they return).
 *  - One operation at a time per container: start, stop, the handling of
 *    an exit and removal mark it busy; the others wait on the engine's
 *    condition variable. Nothing slow runs under the lock.
 *  - Start has two steps so that `docker run` loses no output: the monitor
 *    creates the container (its init waits on exec.fifo), the attach
 *    connections waiting for this container connect to the monitor, and
 *    only then is the monitor asked to start it (docs/monitor.md).
 *  - An exit is learnt from the monitor's pidfd (watch.h) and read from
 *    exit.json, which the monitor writes before it exits; a monitor that
 *    died without one (SIGKILL) leaves the runtime's state, which is
 *    deleted here, and the container is marked exited with code 255.
 */

#include "engine/engine-internal.h"

#include <dirent.h>
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "base/cleanup.h"
#include "base/parse.h"
#include "base/fileio.h"
#include "engine/container-fs.h"
#include "engine/engine-volumes.h"
#include "engine/monitor-spawn.h"
#include "engine/names.h"
#include "engine/watch.h"
#include "image/imageconfig.h"
#include "monitor/monitor.h"
#include "runtime/runtime.h"

#define TRASH_PREFIX ".removed-"
/*
 * A removed container's directory that the container left as it was made
 * (moat_container_fs_recycle) becomes the next new container's, renamed:
 * a create then allocates no directory on the data root's file system, and
 * a removal deletes none. On ext4 without a journal, as here, every new
 * inode is searched for past the inodes deleted in the last minutes, and
 * the containers' directory (Orlov's choice for a new directory) took
 * 0.1-2 ms to make after a few dozen removals. At most ELEMENTSOF(ready)
 * wait, named READY_PREFIX<n>; the next start takes those it finds.
 */
#define READY_PREFIX ".ready-"
#define DEFAULT_STOP_TIMEOUT 10
#define KILL_WAIT_SECONDS 30
#define ATTACH_WAIT_SECONDS 10
#define MONITOR_PID_FILE MOAT_MONITOR_PID_FILE
#define EXIT_FILE MOAT_MONITOR_EXIT_FILE
#define LOG_SUFFIX "-json.log"
#define NAME_RETRIES 16

/* ---- small helpers ---------------------------------------------------------- */

int64_t engine_now_ns(void)
{
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        return (int64_t) ts.tv_sec * 1000000000 + ts.tv_nsec;
}

void engine_format_time(int64_t ns, char buf[static 40])
{
        struct tm tm;
        time_t secs = (time_t) (ns / 1000000000);

        if (ns <= 0) {
                strcpy(buf, "0001-01-01T00:00:00Z");
                return;
        }
        gmtime_r(&secs, &tm);
        size_t n = strftime(buf, 40, "%Y-%m-%dT%H:%M:%S", &tm);
        snprintf(buf + n, 40 - n, ".%09" PRId64 "Z", ns % 1000000000);
}

void engine_log(struct moat_engine *e, int level, const char *fmt, ...)
{
        _cleanup_free_ char *msg = NULL;
        va_list ap;

        if (!e->log)
                return;
        va_start(ap, fmt);
        int r = vasprintf(&msg, fmt, ap);
        va_end(ap);
        if (r >= 0)
                e->log(level, msg);
}

bool container_is_running(const struct container *c)
{
        return c->st.state == MOAT_CONTAINER_RUNNING || c->st.state == MOAT_CONTAINER_PAUSED ||
               c->st.state == MOAT_CONTAINER_RESTARTING;
}

static struct moat_runtime runtime_of(const struct moat_engine *e)
{
        return (struct moat_runtime) { .root = e->runtime_root };
}

void container_free(struct container *c)
{
        if (!c)
                return;
        free(c->id);
        free(c->name);
        free(c->image);
        free(c->image_id);
        json_decref(c->config);
        json_decref(c->host_config);
        json_decref(c->mounts);
        json_decref(c->health);
        free(c->path);
        json_decref(c->args);
        free(c->st.error);
        free(c);
}

static int random_hex_id(char ret[static 65])
{
        uint8_t b[32];

        if (getrandom(b, sizeof(b), 0) != sizeof(b))
                return -errno;
        for (size_t i = 0; i < sizeof(b); i++)
                snprintf(ret + 2 * i, 3, "%02x", b[i]);
        return 0;
}

static void set_error(struct container *c, const char *msg)
{
        free(c->st.error);
        c->st.error = msg ? strdup(msg) : NULL;
}

static int open_container_dir(struct moat_engine *e, const char *id, struct moat_error **reterr)
{
        int fd = openat(e->containers_fd, id, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (fd < 0)
                return moat_error_set(reterr, errno, "containers/%s", id);
        return fd;
}

/* Wait on the engine's condition until deadline (CLOCK_REALTIME ns; 0: no
 * deadline). Returns false when the deadline passed. */
static bool wait_changed(struct moat_engine *e, int64_t deadline_ns)
{
        if (deadline_ns <= 0) {
                pthread_cond_wait(&e->changed, &e->lock);
                return true;
        }
        struct timespec ts = { .tv_sec = deadline_ns / 1000000000, .tv_nsec = deadline_ns % 1000000000 };
        return pthread_cond_timedwait(&e->changed, &e->lock, &ts) == 0;
}

/* Under the lock: wait until no other operation runs on c, then claim it.
 * -ENOENT when c was removed meanwhile (c must be referenced). */
int container_claim_locked(struct moat_engine *e, struct container *c)
{
        while (c->busy && !c->removed)
                wait_changed(e, 0);
        if (c->removed)
                return -ENOENT;
        c->busy = true;
        return 0;
}

void container_release_locked(struct moat_engine *e, struct container *c)
{
        c->busy = false;
        pthread_cond_broadcast(&e->changed);
}

void container_unref_locked(struct container *c)
{
        if (--c->refs == 0 && c->removed)
                container_free(c);
}

/* ---- lookup ------------------------------------------------------------------ */

int container_find_locked(struct moat_engine *e, const char *ref, struct container **ret, struct moat_error **reterr)
{
        struct container *match = NULL;
        const char *name = ref && ref[0] == '/' ? ref + 1 : ref;
        size_t len;

        if (!ref || !*ref)
                return moat_error_setx(reterr, -EINVAL, "No such container: %s", ref ? ref : "");
        for (struct container *c = e->containers; c; c = c->next)
                if (streq(c->id, ref)) {
                        *ret = c;
                        return 0;
                }
        for (struct container *c = e->containers; c; c = c->next)
                if (streq(c->name, name)) {
                        *ret = c;
                        return 0;
                }
        len = strlen(ref);
        for (struct container *c = e->containers; c; c = c->next)
                if (strncmp(c->id, ref, len) == 0) {
                        if (match)
                                return moat_error_setx(reterr, -EINVAL,
                                                       "multiple IDs found with provided prefix: %s", ref);
                        match = c;
                }
        if (!match)
                return moat_error_setx(reterr, -ENOENT, "No such container: %s", ref);
        *ret = match;
        return 0;
}

int moat_engine_resolve(struct moat_engine *e, const char *ref, char **ret_id, struct moat_error **reterr)
{
        struct container *c;
        int r;

        pthread_mutex_lock(&e->lock);
        r = container_find_locked(e, ref, &c, reterr);
        if (r >= 0 && !(*ret_id = strdup(c->id)))
                r = moat_error_set(reterr, -ENOMEM, "container id");
        pthread_mutex_unlock(&e->lock);
        return r;
}

/* ---- persistence --------------------------------------------------------------- */

/* The container's document for the database, as JSON and as its text
 * (the database is given both, so it does not parse the text again). */
static int container_doc(const struct container *c, json_t **ret_json, char **ret_text)
{
        json_t *doc = json_pack("{s:O, s:O, s:O, s:s?, s:O?, s:b, s:b, s:O?}", "Config", c->config, "HostConfig",
                                c->host_config, "Mounts", c->mounts ? c->mounts : json_array(), "Path", c->path,
                                "Args", c->args, "ManuallyStopped", c->manually_stopped, "Tty", c->tty, "Health",
                                c->health);
        if (!doc)
                return -ENOMEM;
        char *s = json_dumps(doc, JSON_COMPACT);
        if (!s) {
                json_decref(doc);
                return -ENOMEM;
        }
        *ret_json = doc;
        *ret_text = s;
        return 0;
}

int container_save_locked(struct moat_engine *e, struct container *c, struct moat_error **reterr)
{
        _cleanup_(json_decrefp) json_t *doc = NULL;
        _cleanup_free_ char *text = NULL;

        if (container_doc(c, &doc, &text) < 0)
                return moat_error_set(reterr, -ENOMEM, "container %s document", c->id);
        return moat_db_container_update_parsed(e->db, c->id, &c->st, text, doc, reterr);
}

static struct container *container_from_db(const struct moat_db_container *d)
{
        json_error_t jerr;
        struct container *c = calloc(1, sizeof(*c));
        json_t *doc;

        if (!c)
                return NULL;
        doc = json_loads(d->doc ? d->doc : "{}", 0, &jerr);
        c->id = strdup(d->id);
        c->name = strdup(d->name);
        c->image = strdup(d->image_ref ? d->image_ref : "");
        c->image_id = strdup(d->image_id ? d->image_id : "");
        c->created_ns = d->created_ns;
        c->st = d->status;
        c->st.error = d->status.error ? strdup(d->status.error) : NULL;
        c->config = json_incref(json_object_get(doc, "Config"));
        c->host_config = json_incref(json_object_get(doc, "HostConfig"));
        c->mounts = json_incref(json_object_get(doc, "Mounts"));
        const char *path = json_string_value(json_object_get(doc, "Path"));
        c->path = path ? strdup(path) : NULL;
        c->args = json_incref(json_object_get(doc, "Args"));
        c->manually_stopped = json_is_true(json_object_get(doc, "ManuallyStopped"));
        c->health = json_incref(json_object_get(doc, "Health"));
        c->tty = json_is_true(json_object_get(doc, "Tty"));
        json_decref(doc);
        if (!c->id || !c->name || !c->image || !c->image_id) {
                container_free(c);
                return NULL;
        }
        if (!c->config)
                c->config = json_object();
        if (!c->host_config)
                c->host_config = json_object();
        return c;
}

/* The event's record (extra, taken, adds attributes); *ret_text, the
 * attributes' text, is the caller's to free. */
static void event_build(const struct container *c, const char *action, json_t *extra, struct moat_db_event *ret,
                        char **ret_text)
{
        json_t *attrs = extra ? extra : json_object();
        json_t *labels = json_object_get(c->config, "Labels");
        const char *k;
        json_t *v;

        json_object_set_new(attrs, "name", json_string(c->name));
        json_object_set_new(attrs, "image", json_string(c->image));
        json_object_foreach(labels, k, v)
                if (json_is_string(v) && !json_object_get(attrs, k))
                        json_object_set(attrs, k, v);
        *ret_text = json_dumps(attrs, JSON_COMPACT);
        json_decref(attrs);
        *ret = (struct moat_db_event) {
                .type = (char *) "container",
                .action = (char *) action,
                .actor_id = c->id,
                .attributes = *ret_text,
                .time_ns = engine_now_ns(),
        };
}

static void event_recorded_locked(struct moat_engine *e, int64_t seq)
{
        if (seq > e->last_event_seq)
                e->last_event_seq = seq;
        pthread_cond_broadcast(&e->changed);
}

void event_locked(struct moat_engine *e, const struct container *c, const char *action, json_t *extra)
{
        _cleanup_error_ struct moat_error *err = NULL;
        _cleanup_free_ char *text = NULL;
        struct moat_db_event ev;
        int64_t seq = 0;

        event_build(c, action, extra, &ev, &text);
        if (moat_db_event_append(e->db, &ev, &seq, &err) < 0)
                engine_log(e, 4, "event %s of %s: %s", action, c->id, err->msg);
        event_recorded_locked(e, seq);
}

/* container_save_locked and event_locked(action) in one transaction. An
 * event the database refuses (labels too large for its bounds) must not
 * fail what it records: the state is then saved alone. */
static int container_save_event_locked(struct moat_engine *e, struct container *c, const char *action,
                                       struct moat_error **reterr)
{
        _cleanup_(json_decrefp) json_t *doc = NULL;
        _cleanup_free_ char *text = NULL, *attrs = NULL;
        _cleanup_error_ struct moat_error *err = NULL;
        struct moat_db_event ev;
        int64_t seq = 0;

        if (container_doc(c, &doc, &text) < 0)
                return moat_error_set(reterr, -ENOMEM, "container %s document", c->id);
        event_build(c, action, NULL, &ev, &attrs);
        if (attrs && moat_db_container_update_event(e->db, c->id, &c->st, text, doc, &ev, &seq, &err) >= 0) {
                event_recorded_locked(e, seq);
                return 0;
        }
        int r = moat_db_container_update_parsed(e->db, c->id, &c->st, text, doc, reterr);
        if (r >= 0)
                event_locked(e, c, action, NULL);
        return r;
}

/* ---- container directories ------------------------------------------------------ */

/* Kept for a new container if there is room and it is as it was made. */
static bool recycle_dir(struct moat_engine *e, const char *name)
{
        char ready[sizeof(e->ready[0])];

        pthread_mutex_lock(&e->lock);
        bool room = e->n_ready < ELEMENTSOF(e->ready) && !e->closing;
        snprintf(ready, sizeof(ready), READY_PREFIX "%u", e->ready_seq++);
        pthread_mutex_unlock(&e->lock);
        if (!room || moat_container_fs_recycle(e->containers_fd, name, ready) < 0)
                return false;
        pthread_mutex_lock(&e->lock);
        room = e->n_ready < ELEMENTSOF(e->ready);
        if (room)
                memcpy(e->ready[e->n_ready++], ready, sizeof(ready));
        pthread_mutex_unlock(&e->lock);
        if (!room)
                (void) !moat_container_fs_remove(e->containers_fd, ready, NULL);
        return true;
}

/* A new container's directory: a recycled one, else a new one. */
static int make_container_dir(struct moat_engine *e, const char *id, struct moat_error **reterr)
{
        char ready[sizeof(e->ready[0])] = "";

        pthread_mutex_lock(&e->lock);
        if (e->n_ready > 0)
                memcpy(ready, e->ready[--e->n_ready], sizeof(ready));
        pthread_mutex_unlock(&e->lock);
        if (ready[0]) {
                if (renameat(e->containers_fd, ready, e->containers_fd, id) == 0) {
                        /* its root's times are the new container's, as a new one's are */
                        char upper[80];
                        snprintf(upper, sizeof(upper), "%s/upper", id);
                        (void) utimensat(e->containers_fd, upper, NULL, AT_SYMLINK_NOFOLLOW);
                        return 0;
                }
                (void) !moat_container_fs_remove(e->containers_fd, ready, NULL);
        }
        if (mkdirat(e->containers_fd, id, 0700) < 0)
                return moat_error_set(reterr, errno, "creating containers/%s", id);
        return 0;
}

/* ---- create ------------------------------------------------------------------- */

static bool name_valid(const char *n)
{
        size_t len = strlen(n);

        if (len < 2 || len > MOAT_DB_NAME_MAX)
                return false;
        for (size_t i = 0; i < len; i++) {
                char ch = n[i];
                bool alnum = (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9');
                if (!alnum && (i == 0 || (ch != '_' && ch != '.' && ch != '-')))
                        return false;
        }
        return true;
}

/* What docker shows for a container before its first start: the Config
 * merged with the image's (Entrypoint, Cmd, Env, WorkingDir, User,
 * Labels, StopSignal, Hostname) and Path/Args; start recomputes all of it
 * with the root filesystem at hand (container_make_spec). */
static json_t *strv_json(char **v)
{
        json_t *a = json_array();
        for (size_t i = 0; v && v[i]; i++)
                json_array_append_new(a, json_string(v[i]));
        return a;
}

static void merge_image_config(struct container *c, const struct oci_image_config *img)
{
        const struct oci_image_exec_config *ic = img ? &img->config : NULL;
        json_t *cfg = c->config;
        json_t *ep = json_object_get(cfg, "Entrypoint"), *cmd = json_object_get(cfg, "Cmd");
        bool ep_given = ep && !json_is_null(ep);

        if (!ic)
                return;
        if (!ep_given && ic->has_entrypoint)
                json_object_set_new(cfg, "Entrypoint", strv_json(ic->entrypoint));
        if (json_array_size(cmd) == 0 && !ep_given && ic->has_cmd)
                json_object_set_new(cfg, "Cmd", strv_json(ic->cmd));
        json_t *env = strv_json(ic->env);
        size_t i;
        json_t *v;
        json_array_foreach(json_object_get(cfg, "Env"), i, v) {
                const char *kv = json_string_value(v);
                size_t klen = kv ? strcspn(kv, "=") : 0;
                bool replaced = false;
                for (size_t j = 0; kv && j < json_array_size(env); j++) {
                        const char *old = json_string_value(json_array_get(env, j));
                        if (strncmp(old, kv, klen) == 0 && (old[klen] == '=' || old[klen] == '\0')) {
                                json_array_set(env, j, v);
                                replaced = true;
                                break;
                        }
                }
                if (kv && !replaced)
                        json_array_append(env, v);
        }
        bool has_path = false;
        json_array_foreach(env, i, v)
                has_path = has_path || startswith(json_string_value(v), "PATH=");
        if (!has_path)
                json_array_insert_new(env, 0, json_string("PATH=" MOAT_IMAGE_DEFAULT_PATH));
        json_object_set_new(cfg, "Env", env);
        const char *wd = json_string_value(json_object_get(cfg, "WorkingDir"));
        if ((!wd || !*wd) && ic->working_dir)
                json_object_set_new(cfg, "WorkingDir", json_string(ic->working_dir));
        const char *user = json_string_value(json_object_get(cfg, "User"));
        if ((!user || !*user) && ic->user)
                json_object_set_new(cfg, "User", json_string(ic->user));
        const char *sig = json_string_value(json_object_get(cfg, "StopSignal"));
        if ((!sig || !*sig) && ic->stop_signal)
                json_object_set_new(cfg, "StopSignal", json_string(ic->stop_signal));
        json_t *labels = json_object_get(cfg, "Labels");
        if (!json_is_object(labels)) {
                labels = json_object();
                json_object_set_new(cfg, "Labels", labels);
        }
        for (size_t k = 0; k < ic->n_labels; k++)
                if (!json_object_get(labels, ic->labels[k].key))
                        json_object_set_new(labels, ic->labels[k].key, json_string(ic->labels[k].value));
        /* The short id by default; with the host's network or another's UTS
         * namespace, start finds the name (the host's, the other's). */
        const char *hn = json_string_value(json_object_get(cfg, "Hostname"));
        const char *uts = json_string_value(json_object_get(c->host_config, "UTSMode"));
        const char *net = json_string_value(json_object_get(c->host_config, "NetworkMode"));
        bool name_of_its_own = !(uts && (streq(uts, "host") || startswith(uts, "container:"))) && !(net && streq(net, "host"));
        if ((!hn || !*hn) && name_of_its_own) {
                char short_id[13];
                snprintf(short_id, sizeof(short_id), "%.12s", c->id);
                json_object_set_new(cfg, "Hostname", json_string(short_id));
        }
        json_t *argv = json_array();
        json_array_extend(argv, json_object_get(cfg, "Entrypoint"));
        json_array_extend(argv, json_object_get(cfg, "Cmd"));
        free(c->path);
        c->path = json_is_string(json_array_get(argv, 0)) ? strdup(json_string_value(json_array_get(argv, 0))) : NULL;
        if (json_array_size(argv) > 0)
                json_array_remove(argv, 0);
        json_decref(c->args);
        c->args = argv;
}

int moat_engine_create(struct moat_engine *e, const char *name, json_t *body, char **ret_id, json_t **ret_warnings,
                       struct moat_error **reterr)
{
        _cleanup_image_ struct moat_image *img = NULL;
        _cleanup_close_ int dir_fd = -EBADF;
        _cleanup_(json_decrefp) json_t *doc_json = NULL;
        _cleanup_free_ char *doc = NULL, *event_text = NULL;
        json_t *config = NULL, *host_config = NULL, *warnings = NULL;
        struct container *c = NULL;
        struct moat_db_event ev;
        int64_t event_seq = 0;
        char id[65];
        const char *image;
        int r;

        if (!json_is_object(body))
                return moat_error_setx(reterr, -EINVAL, "config cannot be empty in order to create a container");
        if (name && *name) {
                if (name[0] == '/')
                        name++;
                if (!name_valid(name))
                        return moat_error_setx(reterr, -EINVAL,
                                               "Invalid container name (%s), only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed",
                                               name);
        }
        image = json_string_value(json_object_get(body, "Image"));
        if (!image || !*image)
                return moat_error_setx(reterr, -EINVAL, "Config.Image: no image specified");
        r = moat_images_lookup(e->store, image, NULL, &img, reterr);
        if (r == -ENOENT) {
                moat_error_free(*reterr);
                *reterr = NULL;
                return moat_error_setx(reterr, -ENOENT, "No such image: %s", image);
        }
        if (r < 0)
                return r;
        r = container_normalize_create(e, body, &config, &host_config, &warnings, reterr);
        if (r < 0)
                return r;
        r = random_hex_id(id);
        if (r < 0) {
                r = moat_error_set(reterr, r, "container id");
                goto fail;
        }
        c = calloc(1, sizeof(*c));
        if (!c) {
                r = moat_error_set(reterr, -ENOMEM, "container");
                goto fail;
        }
        c->id = strdup(id);
        c->image = strdup(image);
        c->image_id = strdup(img->config_digest);
        c->config = TAKE_PTR(config);
        c->host_config = TAKE_PTR(host_config);
        c->mounts = json_array();
        c->created_ns = engine_now_ns();
        c->st.state = MOAT_CONTAINER_CREATED;
        c->tty = json_is_true(json_object_get(c->config, "Tty"));
        if (!c->id || !c->image || !c->image_id) {
                r = moat_error_set(reterr, -ENOMEM, "container");
                goto fail;
        }
        merge_image_config(c, img->config);
        if (!c->config) {
                r = moat_error_set(reterr, -ENOMEM, "container");
                goto fail;
        }
        r = make_container_dir(e, id, reterr);
        if (r < 0)
                goto fail;
        dir_fd = open_container_dir(e, id, reterr);
        if (dir_fd < 0) {
                r = dir_fd;
                goto fail_dir;
        }
        r = moat_container_fs_prepare(e->store, img, dir_fd, reterr);
        if (r < 0)
                goto fail_dir;

        pthread_mutex_lock(&e->lock);
        r = container_doc(c, &doc_json, &doc);
        if (r < 0)
                r = moat_error_set(reterr, r, "container");
        for (unsigned attempt = 0; doc; attempt++) {
                struct moat_db_container d = {};

                free(c->name);
                c->name = NULL;
                if (name && *name)
                        c->name = strdup(name);
                else if (moat_engine_random_name(attempt / 4, &c->name) < 0)
                        c->name = NULL;
                if (!c->name) {
                        r = moat_error_set(reterr, -ENOMEM, "container");
                        break;
                }
                memcpy(d.id, c->id, sizeof(d.id));
                d.name = c->name;
                d.image_ref = c->image;
                d.image_id = c->image_id;
                d.created_ns = c->created_ns;
                d.status = c->st;
                d.doc = doc;
                /* Without volumes to make, nothing can fail between the row
                 * and its event: one transaction for both. */
                free(event_text);
                event_text = NULL;
                if (!container_wants_volumes(c))
                        event_build(c, "create", NULL, &ev, &event_text);
                if (event_text && moat_db_event_valid(&ev))
                        r = moat_db_container_insert_event(e->db, &d, doc_json, &ev, &event_seq, reterr);
                else
                        r = moat_db_container_insert_parsed(e->db, &d, doc_json, reterr);
                if (r != -EEXIST || (name && *name) || attempt >= NAME_RETRIES)
                        break;
                moat_error_free(*reterr);
                *reterr = NULL;
        }
        if (r < 0) {
                pthread_mutex_unlock(&e->lock);
                goto fail_dir;
        }
        c->next = e->containers;
        e->containers = c;
        c->busy = true; /* claimed until its volumes exist */
        c->refs++;
        pthread_mutex_unlock(&e->lock);

        r = container_create_volumes(e, c, img, dir_fd, reterr);

        pthread_mutex_lock(&e->lock);
        if (r < 0) {
                for (struct container **p = &e->containers; *p; p = &(*p)->next)
                        if (*p == c) {
                                *p = c->next;
                                break;
                        }
                pthread_mutex_unlock(&e->lock);
                (void) !moat_db_container_delete(e->db, c->id, NULL);
                engine_volumes_remove_anonymous(e, c->mounts);
                pthread_mutex_lock(&e->lock);
                c->removed = true;
                container_release_locked(e, c);
                container_unref_locked(c); /* freed here or by the last holder */
                c = NULL;
                pthread_mutex_unlock(&e->lock);
                goto fail_dir;
        }
        container_release_locked(e, c);
        container_unref_locked(c);
        if (event_seq > 0)
                event_recorded_locked(e, event_seq);
        else
                event_locked(e, c, "create", NULL);
        pthread_mutex_unlock(&e->lock);
        if (!(*ret_id = strdup(id)))
                return moat_error_set(reterr, -ENOMEM, "container id");
        *ret_warnings = warnings ? warnings : json_array();
        return 0;

fail_dir:
        dir_fd = safe_close(dir_fd);
        (void) !moat_container_fs_remove(e->containers_fd, id, NULL);
fail:
        json_decref(config);
        json_decref(host_config);
        json_decref(warnings);
        container_free(c);
        return r;
}

/* ---- talking to the monitor ------------------------------------------------------ */

/* One request on the monitor's ctl.sock (monitor.h). */
static int monitor_ctl(struct moat_engine *e, const char *id, const char *request, struct moat_error **reterr)
{
        _cleanup_free_ char *dir = NULL, *reply = NULL;

        int r = engine_run_dir_path(e, id, &dir, reterr);
        if (r < 0)
                return r;
        return moat_monitor_ctl(dir, NULL, request, &reply, reterr);
}

/* ---- start -------------------------------------------------------------------- */

static int64_t json_int(const json_t *obj, const char *key, int64_t def)
{
        json_t *v = json_object_get(obj, key);
        return json_is_integer(v) ? json_integer_value(v) : def;
}

static int write_spec(int dir_fd, const char *text, struct moat_error **reterr)
{
        int r = write_file_replace_at(dir_fd, "config.json", text, strlen(text), 0600);
        if (r < 0)
                return moat_error_set(reterr, r, "writing config.json");
        return 0;
}

/* The work of start without the lock: c is claimed. With hold, the
 * monitor creates the container and waits for its start request. */
static int start_claimed(struct moat_engine *e, struct container *c, bool hold, struct moat_monitor_started *ret,
                         struct moat_error **reterr)
{
        _cleanup_image_ struct moat_image *img = NULL;
        _cleanup_close_ int dir_fd = -EBADF, run_fd = -EBADF;
        _cleanup_free_ char *bundle = NULL, *log_path = NULL, *spec_text = NULL;
        uint64_t log_size = 0;
        unsigned log_files = 0;
        int r;

        dir_fd = open_container_dir(e, c->id, reterr);
        if (dir_fd < 0)
                return dir_fd;
        run_fd = engine_run_dir_open(e, c->id, true, reterr);
        if (run_fd < 0)
                return run_fd;
        r = moat_images_lookup(e->store, c->image_id, NULL, &img, reterr);
        if (r < 0)
                return moat_error_wrap(reterr, r, "image %s of container %s", c->image_id, c->name);
        /* docker run --rm: the writable layer goes with the container, so it
         * is never synced (podman does the same for --rm). */
        bool disposable = json_is_true(json_object_get(c->host_config, "AutoRemove"));
        r = moat_container_fs_mount(e->store, img, dir_fd, disposable ? MOAT_SNAPSHOT_VOLATILE : 0, reterr);
        if (r < 0)
                return r;
        if (streq(json_string_value(json_object_get(c->host_config, "IpcMode")) ?: "", "shareable")) {
                json_int_t shm = json_integer_value(json_object_get(c->host_config, "ShmSize"));
                r = moat_container_fs_mount_shm(dir_fd, shm > 0 ? (uint64_t) shm : 64u << 20, reterr);
                if (r < 0)
                        goto fail;
        }
        (void) unlinkat(run_fd, EXIT_FILE, 0);
        r = container_make_spec(e, c, img, dir_fd, run_fd, &spec_text, reterr);
        if (r >= 0)
                r = write_spec(run_fd, spec_text, reterr);
        if (r >= 0)
                r = moat_engine_log_options(json_object_get(json_object_get(c->host_config, "LogConfig"), "Config"),
                                            &log_size, &log_files, reterr);
        if (r < 0)
                goto fail;
        r = engine_run_dir_path(e, c->id, &bundle, reterr);
        if (r < 0)
                goto fail;
        if (asprintf(&log_path, "%s/containers/%s/%s%s", e->data_root, c->id, c->id, LOG_SUFFIX) < 0) {
                r = moat_error_set(reterr, -ENOMEM, "paths");
                goto fail;
        }
        struct moat_monitor_run o = {
                .monitor_path = e->monitor_path,
                .id = c->id,
                .bundle = bundle,
                .runtime_root = e->runtime_root,
                .log_path = log_path,
                .log_max_size = log_size,
                .log_max_file = log_files,
                .tty = c->tty,
                .open_stdin = json_is_true(json_object_get(c->config, "OpenStdin")),
                /* moby closes stdin at the client's EOF only without a tty:
                 * a detached tty session can be attached again */
                .stdin_once = json_is_true(json_object_get(c->config, "StdinOnce")) && !c->tty,
                .wait_start = hold,
        };
        r = moat_monitor_start_run(&o, ret, reterr);
        if (r < 0)
                goto fail;
        return 0;
fail:
        (void) !moat_container_fs_unmount(dir_fd, NULL);
        return r;
}

/* moby's translateContainerdStartErr: the exit code of a start that
 * failed, from what failed. */
int engine_start_failure_code(const char *msg)
{
        if (strstr(msg, "executable file not found") || strstr(msg, "no such file or directory") ||
            strstr(msg, "No such file or directory"))
                return 127;
        if (strstr(msg, "permission denied") || strstr(msg, "Permission denied") ||
            strstr(msg, "exec format error") || strstr(msg, "Exec format error"))
                return 126;
        return 128;
}

static int remove_claimed(struct moat_engine *e, struct container *c, struct moat_error **reterr);

/* A start by a client, or (policy_seq set) the restart policy's start of
 * the exit numbered *policy_seq, which a stop or kill meanwhile cancels. */
static int start_container(struct moat_engine *e, const char *ref, const unsigned *policy_seq,
                           struct moat_error **reterr)
{
        struct moat_monitor_started m = { .monitor_pidfd = -EBADF };
        struct container *c;
        int r;

        pthread_mutex_lock(&e->lock);
        r = container_find_locked(e, ref, &c, reterr);
        if (r < 0)
                goto out;
        c->refs++;
        r = container_claim_locked(e, c);
        if (r < 0) {
                r = moat_error_setx(reterr, r, "No such container: %s", ref);
                goto out_unref;
        }
        if (policy_seq) {
                if (c->st.state != MOAT_CONTAINER_RESTARTING || c->exit_seq != *policy_seq || c->manually_stopped) {
                        r = 0;
                        goto out_release;
                }
        } else if (c->st.state == MOAT_CONTAINER_PAUSED) {
                r = moat_error_setx(reterr, -EBUSY,
                                    "cannot start a paused container, try unpause instead");
                goto out_release;
        } else if (container_is_running(c)) {
                r = -EALREADY;
                goto out_release;
        } else if (c->st.state == MOAT_CONTAINER_REMOVING || c->st.state == MOAT_CONTAINER_DEAD) {
                r = moat_error_setx(reterr, -EBUSY, "container is marked for removal and cannot be started");
                goto out_release;
        }
        /* With an attach waiting (docker run without -d attaches before it
         * starts), the program waits until that stream is connected, so it
         * gets the output from the first byte. Without one the monitor
         * starts it right away, sparing the start request's round trip. */
        bool hold = c->attach_pending > 0;
        pthread_mutex_unlock(&e->lock);

        r = start_claimed(e, c, hold, &m, reterr);

        pthread_mutex_lock(&e->lock);
        if (r < 0) {
                /* Docker keeps the container as it was, with the error and
                 * the exit code the CLI turns into its own (127: the program
                 * is not there, 126: it cannot be run); waiters and pending
                 * attaches see it as an exit; AutoRemove removes it. */
                const char *msg = (*reterr) ? (*reterr)->msg : "";
                set_error(c, msg);
                if (c->st.state == MOAT_CONTAINER_RESTARTING)
                        c->st.state = MOAT_CONTAINER_EXITED;
                c->st.exit_code = engine_start_failure_code(msg);
                c->exit_seq++;
                (void) !container_save_locked(e, c, NULL);
                pthread_cond_broadcast(&e->changed);
                if (json_is_true(json_object_get(c->host_config, "AutoRemove"))) {
                        c->st.state = MOAT_CONTAINER_REMOVING;
                        pthread_mutex_unlock(&e->lock);
                        (void) !remove_claimed(e, c, NULL);
                        pthread_mutex_lock(&e->lock);
                }
                goto out_release;
        }
        c->st.state = MOAT_CONTAINER_RUNNING;
        c->st.pid = m.pid;
        c->st.monitor_pid = m.monitor_pid;
        c->st.started_ns = engine_now_ns();
        c->st.exit_code = 0;
        c->st.oom_killed = false;
        c->manually_stopped = false;
        set_error(c, NULL);
        /* A program already running may end as soon as it is watched: its
         * start is recorded first (with its state), so that "die" comes
         * after it. */
        r = hold ? container_save_locked(e, c, reterr) : container_save_event_locked(e, c, "start", reterr);
        if (r < 0) {
                (void) syscall(SYS_pidfd_send_signal, m.monitor_pidfd, SIGKILL, NULL, 0);
                (void) !moat_container_kill(&(struct moat_runtime) { .root = e->runtime_root }, c->id, SIGKILL, true,
                                           NULL);
                c->st.state = MOAT_CONTAINER_CREATED;
                goto out_release;
        }
        if (!hold)
                container_health_start_locked(e, c);
        /* Let the attach connections waiting for this container connect. */
        c->monitor_ready = true;
        pthread_cond_broadcast(&e->changed);
        int64_t deadline = engine_now_ns() + (int64_t) ATTACH_WAIT_SECONDS * 1000000000;
        while (c->attach_pending > 0 && wait_changed(e, deadline))
                ;
        c->monitor_ready = false;
        pthread_mutex_unlock(&e->lock);

        r = moat_watch_add(e->watch, c->id, TAKE_FD(m.monitor_pidfd), reterr);
        if (r >= 0 && hold)
                r = monitor_ctl(e, c->id, "{\"op\":\"start\"}", reterr);

        pthread_mutex_lock(&e->lock);
        if (r < 0) {
                /* The watcher learns the monitor's end and records the exit. */
                struct moat_runtime rt = runtime_of(e);
                (void) !moat_container_kill(&rt, c->id, SIGKILL, true, NULL);
                goto out_release;
        }
        if (hold) {
                event_locked(e, c, "start", NULL);
                container_health_start_locked(e, c);
        }
out_release:
        container_release_locked(e, c);
out_unref:
        container_unref_locked(c);
out:
        pthread_mutex_unlock(&e->lock);
        if (m.monitor_pidfd >= 0)
                close(m.monitor_pidfd);
        return r;
}

int moat_engine_start(struct moat_engine *e, const char *ref, struct moat_error **reterr)
{
        return start_container(e, ref, NULL, reterr);
}

/* ---- exits ----------------------------------------------------------------------- */

struct exit_record {
        int exit_code;
        bool oom_killed;
        int64_t finished_ns;
        bool found;
};

static void read_exit(struct moat_engine *e, const char *id, struct exit_record *ret)
{
        _cleanup_free_ char *dir = NULL;
        struct moat_monitor_exit ex;

        *ret = (struct exit_record) { .exit_code = 255, .finished_ns = engine_now_ns() };
        if (engine_run_dir_path(e, id, &dir, NULL) < 0 || moat_monitor_read_exit(dir, NULL, &ex, NULL) < 0)
                return;
        ret->found = true;
        ret->exit_code = ex.exit_code;
        ret->oom_killed = ex.oom_killed;
        if (ex.finished_at.tv_sec > 0)
                ret->finished_ns = (int64_t) ex.finished_at.tv_sec * 1000000000 + ex.finished_at.tv_nsec;
}

struct restart_job {
        struct moat_engine *e;
        char *id;
        unsigned delay_ms;
        unsigned exit_seq;
};

/* Under the lock: is the restart of this exit still wanted? */
static bool restart_pending_locked(struct moat_engine *e, const struct restart_job *job)
{
        for (struct container *c = e->containers; c; c = c->next)
                if (streq(c->id, job->id))
                        return c->st.state == MOAT_CONTAINER_RESTARTING && c->exit_seq == job->exit_seq &&
                               !c->manually_stopped;
        return false;
}

static void *restart_thread(void *arg)
{
        struct restart_job *job = arg;
        struct moat_engine *e = job->e;
        _cleanup_error_ struct moat_error *err = NULL;
        int64_t deadline = engine_now_ns() + (int64_t) job->delay_ms * 1000000;
        bool closing;

        /* The back-off, cut short when the engine closes or a stop cancels it. */
        pthread_mutex_lock(&e->lock);
        while (!e->closing && restart_pending_locked(e, job) && wait_changed(e, deadline))
                ;
        closing = e->closing;
        pthread_mutex_unlock(&e->lock);
        if (!closing && start_container(e, job->id, &job->exit_seq, &err) < 0 && err)
                engine_log(e, 3, "restarting %s: %s", job->id, err->msg);
        free(job->id);
        free(job);
        pthread_mutex_lock(&e->lock);
        e->bg_threads--;
        pthread_cond_broadcast(&e->changed);
        pthread_mutex_unlock(&e->lock);
        return NULL;
}

/* Docker's policies: "no", "always", "unless-stopped", "on-failure[:N]";
 * the delay doubles from 100 ms up to a minute. */
static bool should_restart(const struct container *c, unsigned *ret_delay_ms)
{
        json_t *policy = json_object_get(c->host_config, "RestartPolicy");
        const char *name = json_string_value(json_object_get(policy, "Name"));
        int64_t max = json_int(policy, "MaximumRetryCount", 0);
        bool yes;

        if (!name || c->manually_stopped)
                return false;
        if (streq(name, "always") || streq(name, "unless-stopped"))
                yes = true;
        else if (streq(name, "on-failure"))
                yes = c->st.exit_code != 0 && (max <= 0 || c->st.restart_count < (uint64_t) max);
        else
                yes = false;
        unsigned delay = 100;
        for (unsigned i = 0; i < c->st.restart_count && delay < 60000; i++)
                delay *= 2;
        *ret_delay_ms = delay > 60000 ? 60000 : delay;
        return yes;
}

static int remove_claimed(struct moat_engine *e, struct container *c, struct moat_error **reterr);

void container_monitor_exited(const char *id, void *userdata)
{
        struct moat_engine *e = userdata;
        _cleanup_error_ struct moat_error *err = NULL;
        _cleanup_close_ int dir_fd = -EBADF;
        struct moat_runtime rt = runtime_of(e);
        struct exit_record rec;
        struct container *c;
        unsigned delay_ms = 0;
        bool restart, auto_remove;

        pthread_mutex_lock(&e->lock);
        if (container_find_locked(e, id, &c, &err) < 0 || !streq(c->id, id)) {
                pthread_mutex_unlock(&e->lock);
                return;
        }
        c->refs++;
        if (container_claim_locked(e, c) < 0) {
                container_unref_locked(c);
                pthread_mutex_unlock(&e->lock);
                return;
        }
        pthread_mutex_unlock(&e->lock);

        dir_fd = openat(e->containers_fd, id, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        read_exit(e, id, &rec);
        {
                _cleanup_close_ int run_fd = engine_run_dir_open(e, id, false, NULL);
                if (run_fd >= 0)
                        (void) unlinkat(run_fd, MONITOR_PID_FILE, 0);
        }
        if (!rec.found)
                /* The monitor died without recording: clean up what it held. */
                (void) !moat_container_delete(&rt, id, true, NULL);
        if (dir_fd >= 0 && moat_container_fs_unmount(dir_fd, &err) < 0)
                engine_log(e, 3, "container %s: %s", id, err->msg);

        pthread_mutex_lock(&e->lock);
        c->st.state = MOAT_CONTAINER_EXITED;
        c->st.exit_code = rec.exit_code;
        c->st.oom_killed = rec.oom_killed;
        c->st.finished_ns = rec.finished_ns;
        c->st.pid = 0;
        c->st.monitor_pid = 0;
        if (!rec.found)
                set_error(c, "the container's monitor exited without recording the exit status");
        c->exit_seq++;
        restart = should_restart(c, &delay_ms);
        auto_remove = json_is_true(json_object_get(c->host_config, "AutoRemove"));
        if (restart) {
                c->st.restart_count++;
                c->st.state = MOAT_CONTAINER_RESTARTING;
        }
        unsigned exit_seq = c->exit_seq;
        moat_error_free(err);
        err = NULL;
        if (container_save_locked(e, c, &err) < 0)
                engine_log(e, 3, "container %s: %s", id, err->msg);
        json_t *attrs = json_object();
        char code[16];
        snprintf(code, sizeof(code), "%d", rec.exit_code);
        json_object_set_new(attrs, "exitCode", json_string(code));
        if (rec.oom_killed)
                event_locked(e, c, "oom", NULL);
        event_locked(e, c, "die", attrs);
        if (auto_remove && !restart) {
                pthread_mutex_unlock(&e->lock);
                moat_error_free(err);
                err = NULL;
                if (remove_claimed(e, c, &err) < 0)
                        engine_log(e, 3, "removing %s: %s", id, err->msg);
                pthread_mutex_lock(&e->lock);
        }
        container_release_locked(e, c);
        container_unref_locked(c);
        pthread_mutex_unlock(&e->lock);

        if (restart) {
                struct restart_job *job = calloc(1, sizeof(*job));
                pthread_t t;
                if (job && (job->id = strdup(id))) {
                        job->e = e;
                        job->delay_ms = delay_ms;
                        job->exit_seq = exit_seq;
                        pthread_mutex_lock(&e->lock);
                        e->bg_threads++;
                        pthread_mutex_unlock(&e->lock);
                        if (pthread_create(&t, NULL, restart_thread, job) == 0) {
                                pthread_detach(t);
                                return;
                        }
                        pthread_mutex_lock(&e->lock);
                        e->bg_threads--;
                        pthread_mutex_unlock(&e->lock);
                        free(job->id);
                }
                free(job);
        }
}

/* ---- stop, kill, pause ------------------------------------------------------------ */

static int signal_of(const char *text, int fallback, int *ret, struct moat_error **reterr)
{
        if (!text || !*text) {
                *ret = fallback;
                return 0;
        }
        if (moat_signal_parse(text, ret) < 0)
                return moat_error_setx(reterr, -EINVAL, "Invalid signal: %s", text);
        return 0;
}

/* Under the lock, c referenced: a container waiting out its restart back-off
 * is stopped where it is, as docker does; one the policy is starting right
 * now is waited for and then stopped like any other. */
static bool cancel_restart_locked(struct moat_engine *e, struct container *c)
{
        while (c->st.state == MOAT_CONTAINER_RESTARTING && c->busy && !c->removed)
                wait_changed(e, 0);
        if (c->st.state != MOAT_CONTAINER_RESTARTING)
                return false;
        c->st.state = MOAT_CONTAINER_EXITED;
        c->manually_stopped = true;
        (void) !container_save_locked(e, c, NULL);
        pthread_cond_broadcast(&e->changed);
        return true;
}

/* Under the lock, c referenced: wait for the exit after seq, until deadline. */
static bool wait_exit_locked(struct moat_engine *e, struct container *c, unsigned seq, int64_t deadline_ns)
{
        while (c->exit_seq == seq && !c->removed)
                if (!wait_changed(e, deadline_ns) && c->exit_seq == seq)
                        return false;
        return true;
}

static int stop_locked(struct moat_engine *e, struct container *c, int timeout, const char *signal,
                       struct moat_error **reterr)
{
        struct moat_runtime rt = runtime_of(e);
        const char *stop_signal = json_string_value(json_object_get(c->config, "StopSignal"));
        unsigned seq = c->exit_seq;
        int sig, r;

        r = signal_of(signal ? signal : stop_signal, SIGTERM, &sig, reterr);
        if (r < 0)
                return r;
        if (cancel_restart_locked(e, c))
                return 0;
        if (!container_is_running(c))
                return 0;
        seq = c->exit_seq;
        if (timeout < 0)
                timeout = (int) json_int(c->config, "StopTimeout", DEFAULT_STOP_TIMEOUT);
        c->manually_stopped = true;
        (void) !container_save_locked(e, c, NULL);
        if (c->st.state == MOAT_CONTAINER_PAUSED)
                (void) !moat_container_resume(&rt, c->id, NULL);
        if (timeout != 0) {
                pthread_mutex_unlock(&e->lock);
                r = moat_container_kill(&rt, c->id, sig, false, NULL);
                pthread_mutex_lock(&e->lock);
                if (r >= 0 && (timeout < 0 ||
                               wait_exit_locked(e, c, seq, engine_now_ns() + (int64_t) timeout * 1000000000)))
                        return 0;
        }
        pthread_mutex_unlock(&e->lock);
        r = moat_container_kill(&rt, c->id, SIGKILL, true, NULL);
        pthread_mutex_lock(&e->lock);
        if (!wait_exit_locked(e, c, seq, engine_now_ns() + (int64_t) KILL_WAIT_SECONDS * 1000000000))
                return moat_error_setx(reterr, -ETIMEDOUT, "container %s did not exit %d s after SIGKILL",
                                       c->name, KILL_WAIT_SECONDS);
        return 0;
}

int moat_engine_stop(struct moat_engine *e, const char *ref, int timeout, const char *signal,
                     struct moat_error **reterr)
{
        struct container *c;
        int r;

        pthread_mutex_lock(&e->lock);
        r = container_find_locked(e, ref, &c, reterr);
        if (r < 0)
                goto out;
        c->refs++;
        while (c->busy && !c->removed && !container_is_running(c))
                wait_changed(e, 0);
        if (!container_is_running(c) || c->removed)
                r = -EALREADY;
        else
                r = stop_locked(e, c, timeout, signal, reterr);
        if (r >= 0)
                event_locked(e, c, "stop", NULL);
        container_unref_locked(c);
out:
        pthread_mutex_unlock(&e->lock);
        return r;
}

int moat_engine_restart(struct moat_engine *e, const char *ref, int timeout, const char *signal,
                        struct moat_error **reterr)
{
        int r = moat_engine_stop(e, ref, timeout, signal, reterr);
        if (r < 0 && r != -EALREADY)
                return r;
        r = moat_engine_start(e, ref, reterr);
        if (r == -EALREADY)
                r = 0;
        if (r >= 0) {
                struct container *c;
                pthread_mutex_lock(&e->lock);
                if (container_find_locked(e, ref, &c, NULL) >= 0)
                        event_locked(e, c, "restart", NULL);
                pthread_mutex_unlock(&e->lock);
        }
        return r;
}

int moat_engine_kill(struct moat_engine *e, const char *ref, const char *signal, struct moat_error **reterr)
{
        struct moat_runtime rt = runtime_of(e);
        _cleanup_free_ char *id = NULL;
        struct container *c;
        int sig, r;

        r = signal_of(signal, SIGKILL, &sig, reterr);
        if (r < 0)
                return r;
        pthread_mutex_lock(&e->lock);
        r = container_find_locked(e, ref, &c, reterr);
        if (r >= 0 && c->st.state == MOAT_CONTAINER_RESTARTING) {
                /* Nothing runs to signal: the kill ends the restart loop;
                 * one the policy is starting right now is killed once started. */
                c->refs++;
                bool cancelled = cancel_restart_locked(e, c);
                if (cancelled)
                        event_locked(e, c, "kill", NULL);
                bool removed = c->removed;
                container_unref_locked(c);
                if (cancelled || removed) {
                        pthread_mutex_unlock(&e->lock);
                        return removed ? moat_error_setx(reterr, -ENOENT, "No such container: %s", ref) : 0;
                }
        }
        if (r >= 0 && !container_is_running(c))
                r = moat_error_setx(reterr, -EBUSY, "Cannot kill container: %s: Container %s is not running", ref,
                                    c->id);
        if (r >= 0 && !(id = strdup(c->id)))
                r = moat_error_set(reterr, -ENOMEM, "container id");
        if (r >= 0) {
                json_t *attrs = json_object();
                char num[16];
                snprintf(num, sizeof(num), "%d", sig);
                json_object_set_new(attrs, "signal", json_string(num));
                if (sig == SIGKILL || sig == SIGTERM || sig == SIGINT)
                        c->manually_stopped = false; /* docker restarts killed containers per policy */
                event_locked(e, c, "kill", attrs);
        }
        pthread_mutex_unlock(&e->lock);
        if (r < 0)
                return r;
        r = moat_container_kill(&rt, id, sig, false, reterr);
        if (r < 0)
                return moat_error_wrap(reterr, r, "Cannot kill container: %s", ref);
        return 0;
}

static int pause_resume(struct moat_engine *e, const char *ref, bool pause, struct moat_error **reterr)
{
        struct moat_runtime rt = runtime_of(e);
        struct container *c;
        int r;

        pthread_mutex_lock(&e->lock);
        r = container_find_locked(e, ref, &c, reterr);
        if (r < 0)
                goto out;
        if (c->st.state == MOAT_CONTAINER_RESTARTING)
                r = moat_error_setx(reterr, -EBUSY, "Container %s is restarting, wait until the container is running",
                                    c->id);
        else if (!container_is_running(c))
                r = moat_error_setx(reterr, -EBUSY, "Container %s is not running", c->id);
        else if (pause && c->st.state == MOAT_CONTAINER_PAUSED)
                r = moat_error_setx(reterr, -EBUSY, "Container %s is already paused", c->id);
        else if (!pause && c->st.state != MOAT_CONTAINER_PAUSED)
                r = moat_error_setx(reterr, -EBUSY, "Container %s is not paused", c->id);
        else
                r = pause ? moat_container_pause(&rt, c->id, reterr) : moat_container_resume(&rt, c->id, reterr);
        if (r >= 0) {
                c->st.state = pause ? MOAT_CONTAINER_PAUSED : MOAT_CONTAINER_RUNNING;
                r = container_save_locked(e, c, reterr);
                event_locked(e, c, pause ? "pause" : "unpause", NULL);
        }
out:
        pthread_mutex_unlock(&e->lock);
        return r;
}

int moat_engine_pause(struct moat_engine *e, const char *ref, struct moat_error **reterr)
{
        return pause_resume(e, ref, true, reterr);
}

int moat_engine_unpause(struct moat_engine *e, const char *ref, struct moat_error **reterr)
{
        return pause_resume(e, ref, false, reterr);
}

/* ---- remove, rename ----------------------------------------------------------------- */

struct trash_job {
        struct moat_engine *e;
        char name[80];
};

static void *trash_thread(void *arg)
{
        struct trash_job *job = arg;
        struct moat_engine *e = job->e;
        _cleanup_error_ struct moat_error *err = NULL;

        if (!recycle_dir(e, job->name) && moat_container_fs_remove(e->containers_fd, job->name, &err) < 0)
                engine_log(e, 4, "removing containers/%s: %s", job->name, err->msg);
        free(job);
        pthread_mutex_lock(&e->lock);
        e->bg_threads--;
        pthread_cond_broadcast(&e->changed);
        pthread_mutex_unlock(&e->lock);
        return NULL;
}

/* A removed container's directory is renamed out of the way (one atomic
 * step: its id is free again at once) and deleted by a background thread,
 * so that `docker run --rm` and `rm` do not wait on the file system's
 * journal for the deletes of its writable layer (20-50 ms measured here
 * under load). A daemon stopped meanwhile finds the leftover at its next
 * start (TRASH_PREFIX, reconcile_dirs_locked). */
static int remove_dir_later(struct moat_engine *e, const char *id, struct moat_error **reterr)
{
        struct trash_job *job = calloc(1, sizeof(*job));
        pthread_t t;

        if (!job)
                return moat_container_fs_remove(e->containers_fd, id, reterr);
        job->e = e;
        snprintf(job->name, sizeof(job->name), TRASH_PREFIX "%s", id);
        if (renameat(e->containers_fd, id, e->containers_fd, job->name) < 0) {
                free(job);
                return errno == ENOENT ? 0 : moat_container_fs_remove(e->containers_fd, id, reterr);
        }
        pthread_mutex_lock(&e->lock);
        e->bg_threads++;
        pthread_mutex_unlock(&e->lock);
        if (pthread_create(&t, NULL, trash_thread, job) == 0) {
                pthread_detach(t);
                return 0;
        }
        pthread_mutex_lock(&e->lock);
        e->bg_threads--;
        pthread_mutex_unlock(&e->lock);
        int r = moat_container_fs_remove(e->containers_fd, job->name, reterr);
        free(job);
        return r;
}

/* c is claimed and stopped; the lock is not held. */
static int remove_claimed(struct moat_engine *e, struct container *c, struct moat_error **reterr)
{
        _cleanup_close_ int dir_fd = -EBADF;
        struct moat_runtime rt = runtime_of(e);
        int r;

        dir_fd = openat(e->containers_fd, c->id, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (dir_fd >= 0) {
                r = moat_container_fs_unmount(dir_fd, reterr);
                if (r < 0)
                        return r;
        }
        (void) !moat_container_delete(&rt, c->id, true, NULL);
        r = moat_db_container_delete(e->db, c->id, reterr);
        if (r < 0 && r != -ENOENT)
                return r;
        dir_fd = safe_close(dir_fd);
        engine_run_dir_remove(e, c->id);
        r = remove_dir_later(e, c->id, reterr);
        if (json_is_true(json_object_get(c->host_config, "AutoRemove")))
                engine_volumes_remove_anonymous(e, c->mounts);

        pthread_mutex_lock(&e->lock);
        for (struct container **p = &e->containers; *p; p = &(*p)->next)
                if (*p == c) {
                        *p = c->next;
                        break;
                }
        c->removed = true;
        event_locked(e, c, "destroy", NULL);
        pthread_mutex_unlock(&e->lock);
        return r;
}

int moat_engine_remove(struct moat_engine *e, const char *ref, bool force, bool volumes,
                       struct moat_error **reterr)
{
        struct container *c;
        int r;

        pthread_mutex_lock(&e->lock);
        r = container_find_locked(e, ref, &c, reterr);
        if (r < 0)
                goto out;
        c->refs++;
        if (container_is_running(c)) {
                if (!force) {
                        r = moat_error_setx(reterr, -EBUSY,
                                            "cannot remove container \"/%s\": container is running: stop the container before removing or force remove",
                                            c->name);
                        goto out_unref;
                }
                r = stop_locked(e, c, 0, "SIGKILL", reterr);
                if (r < 0)
                        goto out_unref;
        }
        r = container_claim_locked(e, c);
        if (r < 0) {
                r = 0; /* removed by someone else meanwhile (AutoRemove) */
                goto out_unref;
        }
        if (container_is_running(c)) {
                r = moat_error_setx(reterr, -EBUSY, "container %s was started again while being removed", c->name);
                container_release_locked(e, c);
                goto out_unref;
        }
        c->st.state = MOAT_CONTAINER_REMOVING;
        pthread_mutex_unlock(&e->lock);
        r = remove_claimed(e, c, reterr);
        if (r >= 0 && volumes)
                engine_volumes_remove_anonymous(e, c->mounts);
        pthread_mutex_lock(&e->lock);
        if (r < 0 && !c->removed) {
                c->st.state = MOAT_CONTAINER_DEAD;
                (void) !container_save_locked(e, c, NULL);
        }
        container_release_locked(e, c);
out_unref:
        container_unref_locked(c);
out:
        pthread_mutex_unlock(&e->lock);
        return r;
}

int moat_engine_rename(struct moat_engine *e, const char *ref, const char *new_name, struct moat_error **reterr)
{
        struct container *c;
        char *copy;
        int r;

        if (new_name && new_name[0] == '/')
                new_name++;
        if (!new_name || !name_valid(new_name))
                return moat_error_setx(reterr, -EINVAL,
                                       "Invalid container name (%s), only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed",
                                       new_name ? new_name : "");
        pthread_mutex_lock(&e->lock);
        r = container_find_locked(e, ref, &c, reterr);
        if (r >= 0 && streq(c->name, new_name))
                r = moat_error_setx(reterr, -EINVAL, "Renaming a container with the same name as its current name");
        if (r >= 0)
                r = moat_db_container_rename(e->db, c->id, new_name, reterr);
        if (r >= 0) {
                json_t *attrs = json_object();
                json_object_set_new(attrs, "oldName", json_pack("s+", "/", c->name));
                if (!(copy = strdup(new_name)))
                        r = moat_error_set(reterr, -ENOMEM, "name");
                else {
                        free(c->name);
                        c->name = copy;
                }
                event_locked(e, c, "rename", attrs);
        }
        pthread_mutex_unlock(&e->lock);
        return r;
}

/* ---- wait ------------------------------------------------------------------------------ */

struct moat_engine_wait {
        struct moat_engine *e;
        struct container *c;
        enum moat_wait_condition cond;
        unsigned seq;
};

int moat_wait_condition_parse(const char *s, enum moat_wait_condition *ret)
{
        if (!s || !*s || streq(s, "not-running"))
                *ret = MOAT_WAIT_NOT_RUNNING;
        else if (streq(s, "next-exit"))
                *ret = MOAT_WAIT_NEXT_EXIT;
        else if (streq(s, "removed"))
                *ret = MOAT_WAIT_REMOVED;
        else
                return -EINVAL;
        return 0;
}

int moat_engine_wait_begin(struct moat_engine *e, const char *ref, enum moat_wait_condition cond,
                           struct moat_engine_wait **ret, struct moat_error **reterr)
{
        struct moat_engine_wait *w = calloc(1, sizeof(*w));
        struct container *c;
        int r;

        if (!w)
                return moat_error_set(reterr, -ENOMEM, "wait");
        pthread_mutex_lock(&e->lock);
        r = container_find_locked(e, ref, &c, reterr);
        if (r >= 0) {
                c->refs++;
                w->e = e;
                w->c = c;
                w->cond = cond;
                w->seq = c->exit_seq;
                *ret = w;
        } else
                free(w);
        pthread_mutex_unlock(&e->lock);
        return r;
}

int moat_engine_wait_finish(struct moat_engine_wait *w, moat_engine_cancelled_fn cancelled, void *userdata,
                            int *ret_status, char **ret_error, struct moat_error **reterr)
{
        struct moat_engine *e = w->e;
        struct container *c = w->c;
        int r = 0;

        pthread_mutex_lock(&e->lock);
        for (;;) {
                bool done;

                switch (w->cond) {
                case MOAT_WAIT_NOT_RUNNING:
                        done = c->removed || (!container_is_running(c) && !c->busy);
                        break;
                case MOAT_WAIT_NEXT_EXIT:
                        done = c->removed || c->exit_seq != w->seq;
                        break;
                default:
                        done = c->removed;
                }
                if (done)
                        break;
                if (cancelled) {
                        if (cancelled(userdata)) {
                                r = -ECANCELED;
                                break;
                        }
                        /* Wake now and then to notice a client that went away. */
                        wait_changed(e, engine_now_ns() + 500000000);
                } else
                        wait_changed(e, 0);
        }
        if (r >= 0) {
                *ret_status = c->st.exit_code;
                *ret_error = c->st.error ? strdup(c->st.error) : NULL;
        }
        pthread_mutex_unlock(&e->lock);
        (void) reterr;
        return r;
}

void moat_engine_wait_free(struct moat_engine_wait *w)
{
        if (!w)
                return;
        pthread_mutex_lock(&w->e->lock);
        container_unref_locked(w->c);
        pthread_mutex_unlock(&w->e->lock);
        free(w);
}

/* ---- attach, resize, logs ---------------------------------------------------------------- */

struct moat_engine_attach {
        struct moat_engine *e;
        struct container *c;
        struct moat_engine_attach_options o;
        unsigned exit_seq;   /* the container's when the attach began */
        bool pending;
};

int moat_engine_attach_begin(struct moat_engine *e, const char *ref, const struct moat_engine_attach_options *o,
                             struct moat_engine_attach **ret, struct moat_error **reterr)
{
        struct moat_engine_attach *a = calloc(1, sizeof(*a));
        struct container *c;
        int r;

        if (!a)
                return moat_error_set(reterr, -ENOMEM, "attach");
        pthread_mutex_lock(&e->lock);
        r = container_find_locked(e, ref, &c, reterr);
        if (r >= 0) {
                c->refs++;
                c->attach_pending++;
                a->e = e;
                a->c = c;
                a->o = *o;
                a->exit_seq = c->exit_seq;
                a->pending = true;
                *ret = a;
        } else
                free(a);
        pthread_mutex_unlock(&e->lock);
        return r;
}

static void attach_settle_locked(struct moat_engine_attach *a)
{
        if (a->pending) {
                a->pending = false;
                a->c->attach_pending--;
                pthread_cond_broadcast(&a->e->changed);
        }
}

void moat_engine_attach_free(struct moat_engine_attach *a)
{
        if (!a)
                return;
        pthread_mutex_lock(&a->e->lock);
        attach_settle_locked(a);
        container_unref_locked(a->c);
        pthread_mutex_unlock(&a->e->lock);
        free(a);
}

int moat_engine_attach_connect(struct moat_engine_attach *a, moat_engine_cancelled_fn cancelled, void *userdata,
                               int *ret_fd, bool *ret_tty, struct moat_error **reterr)
{
        struct moat_engine *e = a->e;
        struct container *c = a->c;
        _cleanup_close_ int fd = -EBADF;
        _cleanup_free_ char *id = NULL, *dir = NULL;
        int r = 0;

        pthread_mutex_lock(&e->lock);
        unsigned seq = a->exit_seq;
        /* Not started yet: wait for the monitor to be there (start waits for
         * us); an exit meanwhile (a start that failed) ends the wait. */
        while (!c->removed && !c->monitor_ready && !(container_is_running(c) && !c->busy) && c->exit_seq == seq) {
                if (cancelled) {
                        if (cancelled(userdata)) {
                                r = -ECANCELED;
                                break;
                        }
                        wait_changed(e, engine_now_ns() + 500000000);
                } else
                        wait_changed(e, 0);
        }
        if (r >= 0 && (c->removed || (!c->monitor_ready && !container_is_running(c))))
                r = moat_error_setx(reterr, -EBUSY, "container %s is not running", c->name);
        if (r >= 0 && !(id = strdup(c->id)))
                r = -ENOMEM;
        *ret_tty = c->tty;
        pthread_mutex_unlock(&e->lock);

        if (r >= 0)
                r = engine_run_dir_path(e, id, &dir, reterr);
        if (r >= 0) {
                r = moat_monitor_attach(dir, NULL, a->o.stdin_, a->o.stdout_, a->o.stderr_, reterr);
                if (r >= 0)
                        fd = r;
        }
        pthread_mutex_lock(&e->lock);
        attach_settle_locked(a);
        pthread_mutex_unlock(&e->lock);
        if (r < 0)
                return r;
        *ret_fd = TAKE_FD(fd);
        return 0;
}

int moat_engine_resize(struct moat_engine *e, const char *ref, unsigned height, unsigned width,
                       struct moat_error **reterr)
{
        _cleanup_free_ char *id = NULL;
        struct container *c;
        char req[96];
        int r;

        pthread_mutex_lock(&e->lock);
        r = container_find_locked(e, ref, &c, reterr);
        if (r >= 0 && !container_is_running(c))
                r = moat_error_setx(reterr, -EBUSY, "Container %s is not running", c->id);
        if (r >= 0 && !c->tty)
                r = moat_error_setx(reterr, -EINVAL, "Container %s has no terminal to resize", c->id);
        if (r >= 0 && !(id = strdup(c->id)))
                r = -ENOMEM;
        pthread_mutex_unlock(&e->lock);
        if (r < 0)
                return r;
        snprintf(req, sizeof(req), "{\"op\":\"resize\",\"height\":%u,\"width\":%u}", height, width);
        return monitor_ctl(e, id, req, reterr);
}

int moat_engine_log_options(const json_t *cfg, uint64_t *ret_size, unsigned *ret_files, struct moat_error **reterr)
{
        const char *size = json_string_value(json_object_get(cfg, "max-size"));
        const char *files = json_string_value(json_object_get(cfg, "max-file"));

        *ret_size = 0;
        *ret_files = 0;
        if (size) {
                char *end;
                double v = strtod(size, &end);
                uint64_t mult = 1;
                if (*end == 'k' || *end == 'K')
                        mult = 1000;
                else if (*end == 'm' || *end == 'M')
                        mult = 1000 * 1000;
                else if (*end == 'g' || *end == 'G')
                        mult = 1000 * 1000 * 1000;
                else if (*end)
                        return moat_error_setx(reterr, -EINVAL, "HostConfig.LogConfig.Config.max-size: \"%s\" is not a size",
                                               size);
                if (v <= 0)
                        return moat_error_setx(reterr, -EINVAL, "HostConfig.LogConfig.Config.max-size: must be positive");
                *ret_size = (uint64_t) (v * (double) mult);
        }
        if (files) {
                char *end;
                long n = strtol(files, &end, 10);
                if (*end || n < 1 || n > 1000)
                        return moat_error_setx(reterr, -EINVAL,
                                               "HostConfig.LogConfig.Config.max-file: \"%s\" is not a count from 1 to 1000",
                                               files);
                *ret_files = (unsigned) n;
        }
        return 0;
}

int moat_engine_log_path(struct moat_engine *e, const char *ref, char **ret_path, bool *ret_tty, bool *ret_running,
                         struct moat_error **reterr)
{
        struct container *c;
        int r;

        pthread_mutex_lock(&e->lock);
        r = container_find_locked(e, ref, &c, reterr);
        if (r >= 0) {
                if (asprintf(ret_path, "%s/containers/%s/%s%s", e->data_root, c->id, c->id, LOG_SUFFIX) < 0)
                        r = moat_error_set(reterr, -ENOMEM, "log path");
                *ret_tty = c->tty;
                *ret_running = container_is_running(c) || c->busy;
        }
        pthread_mutex_unlock(&e->lock);
        return r;
}

/* ---- restore -------------------------------------------------------------------------------- */

/* Is pid the monitor of id? A monitor forked by the zygote is named
 * moat-monitor and works in the container's run directory; one exec'd by
 * an older moat names both in its command line. */
static bool is_monitor_of(struct moat_engine *e, pid_t pid, const char *id)
{
        char path[64], comm[32] = "";
        _cleanup_free_ char *cmdline = NULL;
        _cleanup_close_ int comm_fd = -EBADF;
        struct stat cwd_st, run_st;
        size_t len;

        snprintf(path, sizeof(path), "/proc/%d/comm", (int) pid);
        comm_fd = open(path, O_RDONLY | O_CLOEXEC);
        ssize_t n = comm_fd >= 0 ? read(comm_fd, comm, sizeof(comm) - 1) : -1;
        if (n > 0 && comm[n - 1] == '\n')
                comm[n - 1] = '\0';
        snprintf(path, sizeof(path), "/proc/%d/cwd", (int) pid);
        if (streq(comm, "moat-monitor") && stat(path, &cwd_st) >= 0 &&
            fstatat(e->run_containers_fd, id, &run_st, AT_SYMLINK_NOFOLLOW) >= 0 && cwd_st.st_dev == run_st.st_dev &&
            cwd_st.st_ino == run_st.st_ino)
                return true;

        snprintf(path, sizeof(path), "/proc/%d/cmdline", (int) pid);
        if (read_full_file_at(AT_FDCWD, path, 64 * 1024, &cmdline, &len) < 0)
                return false;
        bool has_monitor = false, has_id = false;
        for (size_t i = 0; i < len; i += strlen(cmdline + i) + 1) {
                const char *arg = cmdline + i;
                const char *slash = strrchr(arg, '/');
                if (streq(slash ? slash + 1 : arg, "moat-monitor") || streq(slash ? slash + 1 : arg, "moat-monitor-loop"))
                        has_monitor = true;
                if (streq(arg, id))
                        has_id = true;
        }
        return has_monitor && has_id;
}

/* A container the database does not record as running whose monitor is
 * there anyway: the daemon was killed during its start, after the monitor
 * created it and before the start was recorded. The client never heard
 * of a success: the monitor is killed, the runtime's state deleted and
 * the root filesystem unmounted, so the container is created again. */
static void reap_stray_monitor(struct moat_engine *e, struct container *c)
{
        _cleanup_close_ int dir_fd = openat(e->containers_fd, c->id, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        _cleanup_close_ int run_fd = engine_run_dir_open(e, c->id, false, NULL);
        _cleanup_free_ char *text = NULL;
        struct moat_runtime rt = runtime_of(e);
        size_t len;
        int pid = 0;

        if (dir_fd < 0 || run_fd < 0 || read_full_file_at(run_fd, MONITOR_PID_FILE, 64, &text, &len) < 0)
                return;
        if (sscanf(text, "%d", &pid) == 1 && pid > 0 && is_monitor_of(e, pid, c->id)) {
                int pidfd = (int) syscall(SYS_pidfd_open, pid, 0);
                if (pidfd >= 0) {
                        struct pollfd p = { .fd = pidfd, .events = POLLIN };
                        (void) syscall(SYS_pidfd_send_signal, pidfd, SIGKILL, NULL, 0);
                        (void) poll(&p, 1, 5000);
                        close(pidfd);
                }
                engine_log(e, 4, "container %s: killed monitor %d left from an interrupted start", c->id, pid);
        }
        (void) !moat_container_delete(&rt, c->id, true, NULL);
        (void) unlinkat(run_fd, MONITOR_PID_FILE, 0);
        (void) !moat_container_fs_unmount(dir_fd, NULL);
}

/* Directories the database does not know: a create killed between its
 * mkdir and its commit, or a database that lost its last commits to a
 * power loss. Unmounted and removed, so nothing outlives its record. */
static void reconcile_dirs_locked(struct moat_engine *e)
{
        _cleanup_close_ int fd = openat(e->containers_fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        _cleanup_closedir_ DIR *d = fd >= 0 ? fdopendir(fd) : NULL;
        struct dirent *de;

        if (!d)
                return;
        fd = -EBADF; /* owned by d */
        while ((de = readdir(d))) {
                struct container *c;
                bool known = false;

                if (startswith(de->d_name, TRASH_PREFIX)) {
                        if (moat_container_fs_remove(e->containers_fd, de->d_name, NULL) >= 0)
                                engine_log(e, 6, "removed containers/%s, left by a removal", de->d_name);
                        continue;
                }
                /* Made ready by the daemon before; kept if there is room. */
                unsigned seq;
                if (startswith(de->d_name, READY_PREFIX) &&
                    safe_atou32(de->d_name + strlen(READY_PREFIX), &seq) >= 0 &&
                    strlen(de->d_name) < sizeof(e->ready[0])) {
                        if (e->n_ready < ELEMENTSOF(e->ready)) {
                                memcpy(e->ready[e->n_ready++], de->d_name, strlen(de->d_name) + 1);
                                if (seq >= e->ready_seq)
                                        e->ready_seq = seq + 1;
                        } else
                                (void) !moat_container_fs_remove(e->containers_fd, de->d_name, NULL);
                        continue;
                }
                if (strlen(de->d_name) != 64 || strspn(de->d_name, "0123456789abcdef") != 64)
                        continue;
                for (c = e->containers; c && !known; c = c->next)
                        known = streq(c->id, de->d_name);
                if (known)
                        continue;
                _cleanup_close_ int dir_fd = openat(e->containers_fd, de->d_name,
                                                     O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
                if (dir_fd >= 0 && moat_container_fs_unmount(dir_fd, NULL) < 0)
                        continue;
                if (moat_container_fs_remove(e->containers_fd, de->d_name, NULL) >= 0)
                        engine_log(e, 4, "removed containers/%s: the database has no such container", de->d_name);
        }

        /* The same for run directories (a removal killed after its commit). */
        _cleanup_close_ int run_fd = openat(e->run_containers_fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        _cleanup_closedir_ DIR *rd = run_fd >= 0 ? fdopendir(run_fd) : NULL;
        if (!rd)
                return;
        run_fd = -EBADF; /* owned by rd */
        while ((de = readdir(rd))) {
                bool known = false;
                if (strlen(de->d_name) != 64 || strspn(de->d_name, "0123456789abcdef") != 64)
                        continue;
                for (struct container *c = e->containers; c && !known; c = c->next)
                        known = streq(c->id, de->d_name);
                if (!known && moat_container_fs_remove(e->run_containers_fd, de->d_name, NULL) >= 0)
                        engine_log(e, 4, "removed the run directory of %s: the database has no such container",
                                   de->d_name);
        }
}

int containers_restore(struct moat_engine *e, struct moat_error **reterr)
{
        struct moat_db_container *v = NULL;
        size_t n = 0;
        int r;

        r = moat_db_container_list(e->db, 0, &v, &n, reterr);
        if (r < 0)
                return r;
        for (size_t i = n; i-- > 0;) {
                struct container *c = container_from_db(&v[i]);
                if (!c) {
                        moat_db_containers_free(v, n);
                        return moat_error_set(reterr, -ENOMEM, "restoring containers");
                }
                c->next = e->containers;
                e->containers = c;
        }
        moat_db_containers_free(v, n);

        reconcile_dirs_locked(e);

        _cleanup_strv_free_ char **gone = calloc(n + 1, sizeof(char *));
        size_t n_gone = 0;
        if (!gone)
                return moat_error_set(reterr, -ENOMEM, "restoring containers");
        for (struct container *c = e->containers; c; c = c->next) {
                _cleanup_error_ struct moat_error *err = NULL;
                int pidfd;

                if (c->st.state == MOAT_CONTAINER_REMOVING) {
                        c->st.state = MOAT_CONTAINER_DEAD;
                        (void) !container_save_locked(e, c, NULL);
                }
                if (!container_is_running(c)) {
                        reap_stray_monitor(e, c);
                        continue;
                }
                pidfd = c->st.monitor_pid > 0 ? (int) syscall(SYS_pidfd_open, c->st.monitor_pid, 0) : -1;
                if (pidfd >= 0 && is_monitor_of(e, c->st.monitor_pid, c->id)) {
                        if (moat_watch_add(e->watch, c->id, pidfd, &err) < 0)
                                engine_log(e, 3, "watching %s: %s", c->id, err->msg);
                        else {
                                engine_log(e, 6, "reconnected to container %s (monitor %d)", c->id,
                                           (int) c->st.monitor_pid);
                                container_health_start_locked(e, c);
                        }
                        continue;
                }
                if (pidfd >= 0)
                        close(pidfd);
                if (n_gone < n && !(gone[n_gone++] = strdup(c->id)))
                        return moat_error_set(reterr, -ENOMEM, "restoring containers");
        }
        /* Their monitors are gone: record the exits as the watcher would. */
        pthread_mutex_unlock(&e->lock);
        for (size_t i = 0; i < n_gone; i++)
                container_monitor_exited(gone[i], e);
        pthread_mutex_lock(&e->lock);
        return 0;
}
