/* SPDX-License-Identifier: Apache-2.0 */
#include "base/compat.h"

/*
 * docker exec (engine.h): an exec instance is a database record from
 * create until its container goes; start runs it through a monitor of its
 * own (moat-monitor exec), which holds its stdio and records its exit
 * code, so an exec'd process outlives a daemon restart as its container
 * does.
 *
 * The process is the container's (config.json written at start: its
 * capabilities, seccomp profile, rlimits, no_new_privs) with the exec's
 * args, env, cwd, user and terminal. A privileged exec gets, as moby's
 * does (daemon/exec_linux.go), every capability in its bounding,
 * permitted and effective sets and none inheritable or ambient, whatever
 * the container's; its seccomp filter, AppArmor profile and
 * no_new_privs stay the container's. The monitor is told to wait
 * (--wait-start) until the stream is connected, then to run the process:
 * `docker exec c echo hi` loses nothing. The exit code is in
 * exec-<id>.exit.json before the stream ends, so inspect answers right
 * after the client read the end of the stream, as the CLI needs.
 */

#include "engine/engine-internal.h"

#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/random.h>
#include <unistd.h>

#include "base/cleanup.h"
#include "base/fileio.h"
#include "engine/container-fs.h"
#include "engine/docker-spec.h"
#include "engine/monitor-spawn.h"
#include "engine/watch.h"
#include "image/imageconfig.h"
#include "monitor/monitor.h"

#define SPEC_MAX (4u * 1024u * 1024u)
#define EXEC_ARGS_MAX 4096u

static int random_id(char ret[static 65])
{
        uint8_t b[32];

        if (getrandom(b, sizeof(b), 0) != sizeof(b))
                return -errno;
        for (size_t i = 0; i < sizeof(b); i++)
                snprintf(ret + 2 * i, 3, "%02x", b[i]);
        return 0;
}

static bool is_string_array(const json_t *a, size_t max)
{
        size_t i;
        json_t *v;

        if (!json_is_array(a) || json_array_size(a) > max)
                return false;
        json_array_foreach(a, i, v)
                if (!json_is_string(v))
                        return false;
        return true;
}

/* moby's exec event actions name the command: "exec_start: sh -c true".
 * Bounded: a command of many arguments is cut at EXEC_ACTION_MAX bytes. */
#define EXEC_ACTION_MAX 4096

static char *exec_event_action(const char *verb, const json_t *cmd)
{
        size_t len = strlen(verb), i;
        char *s = malloc(EXEC_ACTION_MAX + 1);
        json_t *arg;

        if (!s)
                return NULL;
        memcpy(s, verb, len);
        json_array_foreach(cmd, i, arg) {
                const char *a = json_string_value(arg);
                size_t al = a ? strlen(a) : 0;
                const char *sep = i == 0 ? ": " : " ";
                if (len + strlen(sep) + al > EXEC_ACTION_MAX)
                        break;
                memcpy(s + len, sep, strlen(sep));
                len += strlen(sep);
                memcpy(s + len, a ? a : "", al);
                len += al;
        }
        s[len] = '\0';
        return s;
}

int moat_engine_exec_create(struct moat_engine *e, const char *ref, json_t *body, char **ret_id,
                            struct moat_error **reterr)
{
        _cleanup_free_ char *doc_text = NULL;
        struct container *c;
        struct moat_db_exec rec = { .exit_code = -1 };
        json_t *cmd = json_object_get(body, "Cmd");
        int r;

        if (!is_string_array(cmd, EXEC_ARGS_MAX) || json_array_size(cmd) == 0)
                return moat_error_setx(reterr, -EINVAL, "No exec command specified");
        json_t *env = json_object_get(body, "Env");
        if (env && !json_is_null(env) && !is_string_array(env, EXEC_ARGS_MAX))
                return moat_error_setx(reterr, -EINVAL, "Env: must be an array of strings");
        json_t *wd = json_object_get(body, "WorkingDir");
        if (json_is_string(wd) && json_string_length(wd) > 0 && json_string_value(wd)[0] != '/')
                return moat_error_setx(reterr, -EINVAL, "the working directory '%s' is invalid, it needs to be an absolute path",
                                       json_string_value(wd));
        r = random_id(rec.id);
        if (r < 0)
                return moat_error_set(reterr, r, "exec id");
        json_t *doc = json_pack("{s:O, s:O?, s:O?, s:O?, s:b, s:b, s:b, s:b, s:O?, s:b, s:O?}", "Cmd", cmd, "Env", env,
                                "User", json_object_get(body, "User"), "WorkingDir", wd, "Tty",
                                json_is_true(json_object_get(body, "Tty")), "AttachStdin",
                                json_is_true(json_object_get(body, "AttachStdin")), "AttachStdout",
                                json_is_true(json_object_get(body, "AttachStdout")), "AttachStderr",
                                json_is_true(json_object_get(body, "AttachStderr")), "ConsoleSize",
                                json_object_get(body, "ConsoleSize"), "Privileged",
                                json_is_true(json_object_get(body, "Privileged")), "DetachKeys",
                                json_object_get(body, "DetachKeys"));
        if (!doc || !(doc_text = json_dumps(doc, JSON_COMPACT))) {
                json_decref(doc);
                return moat_error_set(reterr, -ENOMEM, "exec");
        }
        json_decref(doc);
        rec.doc = doc_text;

        pthread_mutex_lock(&e->lock);
        r = container_find_locked(e, ref, &c, reterr);
        if (r >= 0 && c->st.state != MOAT_CONTAINER_RUNNING)
                r = moat_error_setx(reterr, -EBUSY,
                                    c->st.state == MOAT_CONTAINER_PAUSED
                                            ? "Container %s is paused, unpause the container before exec"
                                    : c->st.state == MOAT_CONTAINER_RESTARTING
                                            ? "Container %s is restarting, wait until the container is running"
                                            : "Container %s is not running",
                                    c->id);
        if (r >= 0) {
                memcpy(rec.container_id, c->id, sizeof(rec.container_id));
                r = moat_db_exec_insert(e->db, &rec, reterr);
        }
        if (r >= 0) {
                _cleanup_free_ char *action = exec_event_action("exec_create", cmd);
                event_locked(e, c, action ? action : "exec_create", json_pack("{s:s}", "execID", rec.id));
        }
        pthread_mutex_unlock(&e->lock);
        if (r < 0)
                return r;
        if (!(*ret_id = strdup(rec.id)))
                return moat_error_set(reterr, -ENOMEM, "exec id");
        return 0;
}


/* The exec's process object from the container's. */
/* run_fd: the container's run directory (config.json); data_fd: its data
 * directory (rootfs/, for a user name). */
static int make_process(int run_fd, int data_fd, json_t *doc, json_t **ret, struct moat_error **reterr)
{
        _cleanup_free_ char *text = NULL;
        _cleanup_close_ int root_fd = -EBADF;
        size_t len;
        json_error_t jerr;
        int r;

        r = read_full_file_at(run_fd, "config.json", SPEC_MAX, &text, &len);
        if (r < 0)
                return moat_error_set(reterr, r, "reading the container's config.json");
        json_t *spec = json_loads(text, 0, &jerr);
        json_t *process = json_deep_copy(json_object_get(spec, "process"));
        json_decref(spec);
        if (!json_is_object(process)) {
                json_decref(process);
                return moat_error_setx(reterr, -EINVAL, "the container's config.json has no process");
        }
        json_t *cmd = json_object_get(doc, "Cmd");
        json_object_set(process, "args", cmd);
        json_object_set_new(process, "terminal", json_boolean(json_is_true(json_object_get(doc, "Tty"))));
        json_t *size = json_object_get(doc, "ConsoleSize");
        if (json_is_true(json_object_get(doc, "Tty")) && json_array_size(size) == 2)
                json_object_set_new(process, "consoleSize",
                                    json_pack("{s:O, s:O}", "height", json_array_get(size, 0), "width",
                                              json_array_get(size, 1)));
        else
                json_object_del(process, "consoleSize");

        /* env: the container's, with the exec's replacing same names. */
        json_t *env = json_object_get(process, "env");
        if (!json_is_array(env)) {
                env = json_array();
                json_object_set_new(process, "env", env);
        }
        size_t i;
        json_t *v;
        json_array_foreach(json_object_get(doc, "Env"), i, v) {
                const char *kv = json_string_value(v);
                size_t klen = strcspn(kv, "=");
                bool replaced = false;
                for (size_t j = 0; j < json_array_size(env); j++) {
                        const char *old = json_string_value(json_array_get(env, j));
                        if (old && strncmp(old, kv, klen) == 0 && (old[klen] == '=' || old[klen] == '\0')) {
                                json_array_set(env, j, v);
                                replaced = true;
                                break;
                        }
                }
                if (!replaced)
                        json_array_append(env, v);
        }
        if (json_is_true(json_object_get(doc, "Privileged"))) {
                json_t *all = moat_docker_capabilities_json(moat_docker_all_capabilities());
                json_t *caps = all ? json_pack("{s:O, s:O, s:O}", "bounding", all, "effective", all, "permitted", all)
                                   : NULL;
                json_decref(all);
                if (!caps) {
                        json_decref(process);
                        return moat_error_set(reterr, -ENOMEM, "the capabilities of a privileged exec");
                }
                json_object_set_new(process, "capabilities", caps);
        }
        const char *wd = json_string_value(json_object_get(doc, "WorkingDir"));
        if (wd && *wd)
                json_object_set_new(process, "cwd", json_string(wd));

        /* user: resolved in the container's own /etc/passwd and /etc/group. */
        const char *user = json_string_value(json_object_get(doc, "User"));
        if (user && *user) {
                _cleanup_image_runtime_config_ struct moat_image_runtime_config *rc = NULL;
                char *const one_arg[] = { (char *) "sh", NULL };
                struct moat_image_overrides ov = { .cmd = one_arg, .user = user };

                root_fd = openat(data_fd, MOAT_CONTAINER_ROOTFS, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
                if (root_fd < 0) {
                        json_decref(process);
                        return moat_error_set(reterr, errno, "opening the container's root filesystem");
                }
                r = moat_image_runtime_config_make(NULL, root_fd, &ov, &rc, reterr);
                if (r < 0) {
                        json_decref(process);
                        return r;
                }
                json_t *gids = json_array();
                for (size_t k = 0; k < rc->n_additional_gids; k++)
                        json_array_append_new(gids, json_integer(rc->additional_gids[k]));
                json_object_set_new(process, "user",
                                    json_pack("{s:I, s:I, s:o}", "uid", (json_int_t) rc->uid, "gid",
                                              (json_int_t) rc->gid, "additionalGids", gids));
        }
        *ret = process;
        return 0;
}

int moat_engine_exec_start(struct moat_engine *e, const char *exec_id, bool detach, int *ret_fd, bool *ret_tty,
                           struct moat_error **reterr)
{
        _cleanup_db_exec_ struct moat_db_exec *rec = NULL;
        _cleanup_close_ int dir_fd = -EBADF, data_fd = -EBADF, stream_fd = -EBADF;
        _cleanup_free_ char *dir = NULL, *process_path = NULL, *process_text = NULL, *reply = NULL, *key = NULL,
                            *start_action = NULL;
        struct moat_monitor_started m = { .monitor_pidfd = -EBADF };
        char process_name[128];
        json_error_t jerr;
        json_t *doc = NULL, *process = NULL;
        struct container *c;
        int r;

        r = moat_db_exec_get(e->db, exec_id, &rec, reterr);
        if (r < 0)
                return r;
        doc = json_loads(rec->doc, 0, &jerr);
        if (!json_is_object(doc)) {
                json_decref(doc);
                return moat_error_setx(reterr, -EUCLEAN, "exec %s: its record is not JSON", exec_id);
        }
        start_action = exec_event_action("exec_start", json_object_get(doc, "Cmd"));
        if (!start_action) {
                json_decref(doc);
                return moat_error_set(reterr, -ENOMEM, "exec %s", exec_id);
        }
        pthread_mutex_lock(&e->lock);
        r = container_find_locked(e, rec->container_id, &c, reterr);
        if (r >= 0 && c->st.state != MOAT_CONTAINER_RUNNING)
                r = moat_error_setx(reterr, -EBUSY, "Container %s is not running", c->id);
        if (r >= 0 && (rec->running || rec->exit_code >= 0))
                r = moat_error_setx(reterr, -EBUSY, "exec %s has already been started", exec_id);
        if (r >= 0) {
                /* Claimed in the record before anything runs: one start only. */
                rec->running = true;
                r = moat_db_exec_update(e->db, rec, reterr);
        }
        pthread_mutex_unlock(&e->lock);
        if (r < 0)
                goto out;
        *ret_tty = json_is_true(json_object_get(doc, "Tty"));

        dir_fd = engine_run_dir_open(e, rec->container_id, false, reterr);
        if (dir_fd < 0) {
                r = dir_fd;
                goto fail;
        }
        data_fd = openat(e->containers_fd, rec->container_id, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (data_fd < 0) {
                r = moat_error_set(reterr, errno, "containers/%s", rec->container_id);
                goto fail;
        }
        r = make_process(dir_fd, data_fd, doc, &process, reterr);
        if (r < 0)
                goto fail;
        process_text = json_dumps(process, JSON_COMPACT);
        json_decref(process);
        snprintf(process_name, sizeof(process_name), "exec-%s.process.json", exec_id);
        r = process_text ? write_file_replace_at(dir_fd, process_name, process_text, strlen(process_text), 0600)
                         : -ENOMEM;
        if (r < 0) {
                r = moat_error_set(reterr, r, "writing %s", process_name);
                goto fail;
        }
        r = engine_run_dir_path(e, rec->container_id, &dir, reterr);
        if (r < 0)
                goto fail;
        if (asprintf(&process_path, "%s/%s", dir, process_name) < 0 ||
            asprintf(&key, "%s/%s", rec->container_id, exec_id) < 0) {
                r = moat_error_set(reterr, -ENOMEM, "paths");
                goto fail;
        }
        struct moat_monitor_exec o = {
                .monitor_path = e->monitor_path,
                .id = rec->container_id,
                .exec_id = exec_id,
                .dir = dir,
                .runtime_root = e->runtime_root,
                .process_file = process_path,
                .tty = *ret_tty,
                .open_stdin = json_is_true(json_object_get(doc, "AttachStdin")) && !detach,
                .stdin_once = true,
                .wait_start = true,
        };
        r = moat_monitor_start_exec(&o, &m, reterr);
        if (r < 0)
                goto fail;
        r = moat_watch_add(e->watch, key, TAKE_FD(m.monitor_pidfd), reterr);
        if (r < 0)
                goto fail;
        if (!detach) {
                r = moat_monitor_attach(dir, exec_id, json_is_true(json_object_get(doc, "AttachStdin")),
                                        json_is_true(json_object_get(doc, "AttachStdout")),
                                        json_is_true(json_object_get(doc, "AttachStderr")), reterr);
                if (r < 0)
                        goto fail;
                stream_fd = r;
        }
        r = moat_monitor_ctl(dir, exec_id, "{\"op\":\"start\"}", &reply, reterr);
        if (r < 0)
                goto fail;
        json_t *rep = json_loads(reply, 0, &jerr);
        rec->pid = (pid_t) json_integer_value(json_object_get(rep, "pid"));
        json_decref(rep);
        (void) !moat_db_exec_update(e->db, rec, NULL);
        pthread_mutex_lock(&e->lock);
        if (container_find_locked(e, rec->container_id, &c, NULL) >= 0)
                event_locked(e, c, start_action, json_pack("{s:s}", "execID", exec_id));
        pthread_mutex_unlock(&e->lock);
        *ret_fd = detach ? -1 : TAKE_FD(stream_fd);
        r = 0;
        goto out;
fail:
        if (m.monitor_pid > 0)
                (void) kill(m.monitor_pid, SIGKILL);
        rec->running = false;
        rec->exit_code = engine_start_failure_code(*reterr ? (*reterr)->msg : "");
        (void) !moat_db_exec_update(e->db, rec, NULL);
out:
        if (m.monitor_pidfd >= 0)
                close(m.monitor_pidfd);
        json_decref(doc);
        return r;
}

void exec_monitor_exited(struct moat_engine *e, const char *container_id, const char *exec_id)
{
        _cleanup_db_exec_ struct moat_db_exec *rec = NULL;
        _cleanup_free_ char *dir = NULL;
        struct moat_monitor_exit ex;
        struct container *c;

        if (moat_db_exec_get(e->db, exec_id, &rec, NULL) < 0)
                return;
        if (engine_run_dir_path(e, container_id, &dir, NULL) < 0)
                return;
        rec->running = false;
        rec->exit_code = moat_monitor_read_exit(dir, exec_id, &ex, NULL) >= 0 ? ex.exit_code : 255;
        (void) !moat_db_exec_update(e->db, rec, NULL);
        pthread_mutex_lock(&e->lock);
        if (container_find_locked(e, container_id, &c, NULL) >= 0) {
                json_t *attrs = json_object();
                char code[16];
                snprintf(code, sizeof(code), "%d", rec->exit_code);
                json_object_set_new(attrs, "execID", json_string(exec_id));
                json_object_set_new(attrs, "exitCode", json_string(code));
                event_locked(e, c, "exec_die", attrs);
        }
        pthread_mutex_unlock(&e->lock);
}

int moat_engine_exec_inspect(struct moat_engine *e, const char *exec_id, json_t **ret, struct moat_error **reterr)
{
        _cleanup_db_exec_ struct moat_db_exec *rec = NULL;
        _cleanup_free_ char *dir = NULL;
        json_error_t jerr;
        int r;

        r = moat_db_exec_get(e->db, exec_id, &rec, reterr);
        if (r < 0)
                return r;
        json_t *doc = json_loads(rec->doc, 0, &jerr);
        bool running = rec->running;
        int exit_code = rec->exit_code;
        if (running && engine_run_dir_path(e, rec->container_id, &dir, NULL) >= 0) {
                /* The monitor records the exit before it ends the stream; the
                 * watcher may not have seen the monitor go yet. */
                struct moat_monitor_exit ex;
                if (moat_monitor_read_exit(dir, exec_id, &ex, NULL) >= 0) {
                        running = false;
                        exit_code = ex.exit_code;
                }
        }
        json_t *cmd = json_object_get(doc, "Cmd");
        json_t *args = json_deep_copy(cmd);
        if (json_array_size(args) > 0)
                json_array_remove(args, 0);
        const char *user = json_string_value(json_object_get(doc, "User"));
        *ret = json_pack("{s:b, s:s, s:s, s:b, s:o, s:b, s:b, s:b, s:{s:b, s:s, s:o, s:b, s:s}, s:s, s:i}",
                         "CanRemove", false, "ContainerID", rec->container_id, "DetachKeys",
                         json_string_value(json_object_get(doc, "DetachKeys")) ?: "", "Running", running,
                         "ExitCode", exit_code >= 0 && !running ? json_integer(exit_code) : json_null(), "OpenStdin",
                         json_is_true(json_object_get(doc, "AttachStdin")), "OpenStderr",
                         json_is_true(json_object_get(doc, "AttachStderr")), "OpenStdout",
                         json_is_true(json_object_get(doc, "AttachStdout")), "ProcessConfig", "tty",
                         json_is_true(json_object_get(doc, "Tty")), "entrypoint",
                         json_string_value(json_array_get(cmd, 0)) ? json_string_value(json_array_get(cmd, 0)) : "",
                         "arguments", args ? args : json_array(), "privileged",
                         json_is_true(json_object_get(doc, "Privileged")), "user", user ? user : "",
                         "ID", rec->id, "Pid", running ? (int) rec->pid : 0);
        json_decref(doc);
        if (!*ret)
                return moat_error_set(reterr, -ENOMEM, "exec inspect");
        return 0;
}

int moat_engine_exec_resize(struct moat_engine *e, const char *exec_id, unsigned height, unsigned width,
                            struct moat_error **reterr)
{
        _cleanup_db_exec_ struct moat_db_exec *rec = NULL;
        _cleanup_free_ char *dir = NULL;
        int r;

        r = moat_db_exec_get(e->db, exec_id, &rec, reterr);
        if (r < 0)
                return r;
        if (!rec->running)
                return moat_error_setx(reterr, -EBUSY, "exec %s is not running", exec_id);
        r = engine_run_dir_path(e, rec->container_id, &dir, reterr);
        if (r < 0)
                return r;
        return moat_monitor_resize(dir, exec_id, height, width, reterr);
}
