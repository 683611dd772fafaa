/* SPDX-License-Identifier: Apache-2.0 */
#include "base/compat.h"

/*
 * State directories. Each container owns <root>/<id>/; creating it with
 * mkdirat() is what makes an id taken (EEXIST), so two concurrent creates of
 * one id cannot both win. state.json is replaced atomically. The status is
 * computed from the recorded init pid and its start time, so a reused pid
 * never makes a stopped container look alive; "paused" and moat's
 * "oomKilled" come from the container's cgroup (freezer, OOM kill count).
 */

#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "base/cleanup.h"
#include "base/fileio.h"
#include "base/parse.h"
#include "runtime/cgroup.h"
#include "runtime/cgroup-control.h"
#include "runtime/state.h"

static const char *const status_names[] = {
        [MOAT_STATUS_CREATING] = "creating",
        [MOAT_STATUS_CREATED] = "created",
        [MOAT_STATUS_RUNNING] = "running",
        [MOAT_STATUS_PAUSED] = "paused",
        [MOAT_STATUS_STOPPED] = "stopped",
};

const char *moat_status_to_string(enum moat_status s)
{
        return status_names[s];
}

void moat_state_free(struct moat_state *s)
{
        if (!s)
                return;
        free(s->id);
        free(s->bundle);
        free(s->rootfs);
        free(s->created);
        free(s->owner);
        json_decref(s->annotations);
        free(s->cgroup);
        free(s);
}

int moat_state_root_open(const struct moat_runtime *rt, bool create, int *ret_fd, struct moat_error **reterr)
{
        const char *root = rt->root ? rt->root : MOAT_RUNTIME_DEFAULT_ROOT;

        if (create && mkdir(root, 0700) < 0 && errno != EEXIST) {
                /* Create missing parents too, like runc does for --root. */
                int r = -errno;
                if (r != -ENOENT)
                        return moat_error_set(reterr, r, "creating state root '%s'", root);
                _cleanup_free_ char *copy = strdup(root);
                if (!copy)
                        return -ENOMEM;
                for (char *p = copy + 1; *p; p++) {
                        if (*p != '/')
                                continue;
                        *p = '\0';
                        if (mkdir(copy, 0700) < 0 && errno != EEXIST)
                                return moat_error_set(reterr, errno, "creating '%s'", copy);
                        *p = '/';
                }
                if (mkdir(root, 0700) < 0 && errno != EEXIST)
                        return moat_error_set(reterr, errno, "creating state root '%s'", root);
        }
        int fd = open(root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (fd < 0)
                return moat_error_set(reterr, errno, "opening state root '%s'", root);
        *ret_fd = fd;
        return 0;
}

static int json_get_string(json_t *o, const char *key, char **ret)
{
        json_t *v = json_object_get(o, key);
        if (!v)
                return 0;
        if (!json_is_string(v))
                return -EINVAL;
        *ret = strdup(json_string_value(v));
        return *ret ? 0 : -ENOMEM;
}

int moat_state_load(int root_fd, const char *id, struct moat_state **ret, int *ret_dir_fd, struct moat_error **reterr)
{
        _cleanup_close_ int dir_fd = -EBADF;
        _cleanup_free_ char *text = NULL;
        int r;

        r = moat_id_validate(id, reterr);
        if (r < 0)
                return r;
        dir_fd = openat(root_fd, id, O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW);
        if (dir_fd < 0) {
                if (errno == ENOENT)
                        return moat_error_setx(reterr, -ENOENT, "container \"%s\" does not exist", id);
                return moat_error_set(reterr, errno, "opening state of container \"%s\"", id);
        }
        r = read_full_file_at(dir_fd, MOAT_STATE_FILE, MOAT_STATE_MAX_SIZE, &text, NULL);
        if (r == -ENOENT)
                return moat_error_setx(reterr, -ENOENT, "container \"%s\" does not exist (no state file)", id);
        if (r < 0)
                return moat_error_set(reterr, r, "reading state of container \"%s\"", id);

        json_error_t jerr;
        json_t *doc = json_loads(text, 0, &jerr);
        if (!doc || !json_is_object(doc)) {
                json_decref(doc);
                return moat_error_setx(reterr, -EINVAL, "state of container \"%s\" is corrupt: %s", id,
                                       jerr.text);
        }

        struct moat_state *s = calloc(1, sizeof(*s));
        if (!s) {
                json_decref(doc);
                return -ENOMEM;
        }
        r = 0;
        if (json_get_string(doc, "id", &s->id) < 0 || json_get_string(doc, "bundle", &s->bundle) < 0 ||
            json_get_string(doc, "rootfs", &s->rootfs) < 0 || json_get_string(doc, "created", &s->created) < 0 ||
            json_get_string(doc, "owner", &s->owner) < 0 || json_get_string(doc, "cgroup", &s->cgroup) < 0)
                r = -EINVAL;
        json_t *pid = json_object_get(doc, "pid"), *start = json_object_get(doc, "pidStartTime");
        if (!json_is_integer(pid) || !json_is_integer(start))
                r = -EINVAL;
        else {
                s->pid = (pid_t) json_integer_value(pid);
                s->pid_start_time = (uint64_t) json_integer_value(start);
        }
        s->has_poststop_hooks = json_is_true(json_object_get(doc, "poststopHooks"));
        json_t *ann = json_object_get(doc, "annotations");
        s->annotations = json_is_object(ann) ? json_incref(ann) : json_object();
        json_decref(doc);
        if (r < 0 || !s->id) {
                moat_state_free(s);
                return moat_error_setx(reterr, -EINVAL, "state of container \"%s\" is corrupt", id);
        }
        *ret = s;
        if (ret_dir_fd)
                *ret_dir_fd = TAKE_FD(dir_fd);
        return 0;
}

int moat_state_save(int dir_fd, const struct moat_state *s, struct moat_error **reterr)
{
        json_t *doc = json_pack("{s:s, s:I, s:I, s:s, s:s, s:s, s:s, s:O, s:s, s:b}", "id", s->id, "pid",
                                (json_int_t) s->pid, "pidStartTime", (json_int_t) s->pid_start_time, "bundle",
                                s->bundle ? s->bundle : "", "rootfs", s->rootfs ? s->rootfs : "", "created",
                                s->created ? s->created : "", "owner", s->owner ? s->owner : "", "annotations",
                                s->annotations ? s->annotations : json_object(), "cgroup",
                                s->cgroup ? s->cgroup : "", "poststopHooks", s->has_poststop_hooks);
        if (!doc)
                return moat_error_set(reterr, ENOMEM, "encoding state");
        _cleanup_free_ char *text = json_dumps(doc, JSON_COMPACT);
        json_decref(doc);
        if (!text)
                return moat_error_set(reterr, ENOMEM, "encoding state");
        int r = write_file_replace_at(dir_fd, MOAT_STATE_FILE, text, strlen(text), 0600);
        if (r < 0)
                return moat_error_set(reterr, r, "writing %s", MOAT_STATE_FILE);
        return 0;
}

int moat_process_start_time(pid_t pid, uint64_t *ret_start, bool *ret_zombie)
{
        char path[64], buf[1024];

        snprintf(path, sizeof(path), "/proc/%d/stat", (int) pid);
        _cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd < 0)
                return errno == ENOENT ? -ESRCH : -errno;
        ssize_t n = read(fd, buf, sizeof(buf) - 1);
        if (n <= 0)
                return n < 0 ? -errno : -ESRCH;
        buf[n] = '\0';

        /* The command name may contain spaces and parentheses: fields start
         * after the last ')'. */
        char *p = strrchr(buf, ')');
        if (!p || p[1] != ' ')
                return -EINVAL;
        p += 2;
        char state = *p;
        /* field 3 is state; start time is field 22, i.e. 19 more fields. */
        for (int field = 3; field < 22; field++) {
                p = strchr(p, ' ');
                if (!p)
                        return -EINVAL;
                p++;
        }
        char *end = strchr(p, ' ');
        if (end)
                *end = '\0';
        uint64_t v;
        int r = safe_atou64(p, &v);
        if (r < 0)
                return r;
        if (ret_start)
                *ret_start = v;
        if (ret_zombie)
                *ret_zombie = state == 'Z' || state == 'X';
        return 0;
}

enum moat_status moat_state_status(const struct moat_state *s, int dir_fd)
{
        uint64_t start;
        bool zombie;

        if (s->pid <= 0 || moat_process_start_time(s->pid, &start, &zombie) < 0 || zombie ||
            start != s->pid_start_time)
                return MOAT_STATUS_STOPPED;
        if (faccessat(dir_fd, MOAT_STATE_FIFO, F_OK, AT_SYMLINK_NOFOLLOW) == 0)
                return MOAT_STATUS_CREATED;
        if (!strempty(s->cgroup)) {
                _cleanup_cgroup_ struct moat_cgroup *cg = NULL;
                bool frozen = false;
                if (moat_cgroup_deserialize(s->cgroup, &cg, NULL) >= 0 && moat_cgroup_is_frozen(cg, &frozen, NULL) >= 0 &&
                    frozen)
                        return MOAT_STATUS_PAUSED;
        }
        return MOAT_STATUS_RUNNING;
}

int moat_state_remove(int root_fd, const char *id, struct moat_error **reterr)
{
        _cleanup_close_ int dir_fd = openat(root_fd, id, O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW);
        if (dir_fd < 0) {
                if (errno == ENOENT)
                        return 0;
                return moat_error_set(reterr, errno, "opening state of container \"%s\"", id);
        }
        int dfd = fcntl(dir_fd, F_DUPFD_CLOEXEC, 3);
        if (dfd < 0)
                return moat_error_set(reterr, errno, "removing state of container \"%s\"", id);
        DIR *d = fdopendir(dfd);
        if (!d) {
                close(dfd);
                return moat_error_set(reterr, errno, "removing state of container \"%s\"", id);
        }
        struct dirent *de;
        while ((de = readdir(d))) {
                if (streq(de->d_name, ".") || streq(de->d_name, ".."))
                        continue;
                if (unlinkat(dir_fd, de->d_name, 0) < 0 && errno != ENOENT) {
                        int r = -errno;
                        closedir(d);
                        return moat_error_set(reterr, r, "removing '%s' of container \"%s\"", de->d_name, id);
                }
        }
        closedir(d);
        if (unlinkat(root_fd, id, AT_REMOVEDIR) < 0 && errno != ENOENT)
                return moat_error_set(reterr, errno, "removing state directory of container \"%s\"", id);
        return 0;
}

int moat_state_to_oci_json(const struct moat_state *s, enum moat_status status, char **ret)
{
        json_t *doc = json_pack("{s:s, s:s, s:s, s:I, s:s, s:s, s:s, s:s, s:O}", "ociVersion", MOAT_OCI_VERSION, "id",
                                s->id, "status", moat_status_to_string(status), "pid",
                                (json_int_t) (status == MOAT_STATUS_STOPPED ? 0 : s->pid), "bundle",
                                s->bundle ? s->bundle : "", "rootfs", s->rootfs ? s->rootfs : "", "created",
                                s->created ? s->created : "", "owner", s->owner ? s->owner : "", "annotations",
                                s->annotations ? s->annotations : json_object());
        if (!doc)
                return -ENOMEM;
        /* moat's addition to the state (the schema allows more properties;
         * runc has none for this): "oomKilled": true once the kernel's OOM
         * killer killed a process of the container. The cgroup lives until
         * delete, so a container that stopped that way still says so. */
        if (status != MOAT_STATUS_CREATING && !strempty(s->cgroup)) {
                _cleanup_cgroup_ struct moat_cgroup *cg = NULL;
                uint64_t kills = 0;
                if (moat_cgroup_deserialize(s->cgroup, &cg, NULL) >= 0 && moat_cgroup_oom_kills(cg, &kills, NULL) >= 0 &&
                    kills > 0 && json_object_set_new(doc, "oomKilled", json_true()) < 0) {
                        json_decref(doc);
                        return -ENOMEM;
                }
        }
        *ret = json_dumps(doc, JSON_COMPACT);
        json_decref(doc);
        return *ret ? 0 : -ENOMEM;
}

int moat_now_rfc3339(char **ret)
{
        struct timespec ts;
        struct tm tm;
        char buf[64];

        clock_gettime(CLOCK_REALTIME, &ts);
        gmtime_r(&ts.tv_sec, &tm);
        size_t n = strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%S", &tm);
        snprintf(buf + n, sizeof(buf) - n, ".%09ldZ", ts.tv_nsec);
        *ret = strdup(buf);
        return *ret ? 0 : -ENOMEM;
}

int moat_state_pidfd(const struct moat_state *s, int *ret)
{
        int fd = (int) syscall(SYS_pidfd_open, s->pid, 0);
        if (fd < 0)
                return -errno;
        uint64_t start;
        bool zombie;
        if (moat_process_start_time(s->pid, &start, &zombie) < 0 || zombie || start != s->pid_start_time) {
                close(fd);
                return -ESRCH;
        }
        *ret = fd;
        return 0;
}

int moat_state_open(const struct moat_runtime *rt, const char *id, struct moat_state **ret, int *ret_dir_fd,
                    struct moat_error **reterr)
{
        _cleanup_close_ int root_fd = -EBADF;
        int r = moat_id_validate(id, reterr);
        if (r < 0)
                return r;
        r = moat_state_root_open(rt, false, &root_fd, NULL);
        if (r == -ENOENT)
                return moat_error_setx(reterr, -ENOENT, "container \"%s\" does not exist", id);
        if (r < 0)
                return moat_error_set(reterr, r, "opening the state root");
        return moat_state_load(root_fd, id, ret, ret_dir_fd, reterr);
}

int moat_write_pid_file(const char *path, pid_t pid, struct moat_error **reterr)
{
        _cleanup_free_ char *copy = strdup(path);
        _cleanup_close_ int dfd = -EBADF;
        char buf[32];
        int n = snprintf(buf, sizeof(buf), "%d", (int) pid);

        if (!copy)
                return -ENOMEM;
        char *slash = strrchr(copy, '/');
        const char *name = copy;
        if (slash) {
                *slash = '\0';
                name = slash + 1;
                dfd = open(slash == copy ? "/" : copy, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        } else
                dfd = open(".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (dfd < 0)
                return moat_error_set(reterr, errno, "--pid-file '%s'", path);
        if (strempty(name))
                return moat_error_setx(reterr, -EISDIR, "--pid-file '%s': names a directory", path);
        int r = write_file_replace_at(dfd, name, buf, (size_t) n, 0644);
        if (r < 0)
                return moat_error_set(reterr, r, "writing --pid-file '%s'", path);
        return 0;
}
