/* SPDX-License-Identifier: Apache-2.0 */
#include "base/compat.h"

/*
 * `events`: runc's event lines. {"type":"stats","id":..,"data":{..}} carries
 * cgroup-control.c's statistics; {"type":"oom","id":..} is printed for each
 * OOM kill the kernel counts in the container's cgroup (v1
 * memory.oom_control, v2 memory.events "oom_kill"). The stream polls that
 * counter every OOM_POLL_MS (a cumulative counter cannot miss a kill, which
 * an eventfd or inotify wake-up would not add to) and watches the init's
 * pidfd, so it ends as soon as the container stops, after a last look at
 * the counter: the OOM kill that ends a container is still reported.
 */

#include <poll.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "base/cleanup.h"
#include "runtime/cgroup.h"
#include "runtime/cgroup-control.h"
#include "runtime/state.h"

#define OOM_POLL_MS 100u

struct target {
        struct moat_state *s;
        struct moat_cgroup *cg;
        enum moat_status status;
        int pidfd;
};

static void target_done(struct target *t)
{
        moat_state_free(t->s);
        moat_cgroup_free(t->cg);
        safe_close(t->pidfd);
}

static int load(const struct moat_runtime *rt, const char *id, struct target *t, struct moat_error **reterr)
{
        _cleanup_close_ int dir_fd = -EBADF;
        int r;

        *t = (struct target) { .pidfd = -EBADF };
        r = moat_state_open(rt, id, &t->s, &dir_fd, reterr);
        if (r < 0)
                return r;
        t->status = moat_state_status(t->s, dir_fd);
        if (t->status == MOAT_STATUS_STOPPED)
                return moat_error_setx(reterr, -ESRCH, "container \"%s\": container not running", id);
        if (strempty(t->s->cgroup))
                return moat_error_setx(reterr, -EOPNOTSUPP, "container \"%s\" has no cgroup to report on", id);
        r = moat_cgroup_deserialize(t->s->cgroup, &t->cg, reterr);
        if (r < 0)
                return moat_error_wrap(reterr, r, "container \"%s\"", id);
        return 0;
}

static int event_line(const char *type, const char *id, json_t *data, char **ret)
{
        json_t *doc = json_pack("{s:s, s:s}", "type", type, "id", id);
        if (!doc || (data && json_object_set(doc, "data", data) < 0)) {
                json_decref(doc);
                return -ENOMEM;
        }
        int r = moat_cgroup_stats_dumps(doc, ret);
        json_decref(doc);
        return r;
}

static int stats_line(struct target *t, char **ret, struct moat_error **reterr)
{
        json_t *stats = NULL;
        int r = moat_cgroup_stats(t->cg, &stats, reterr);
        if (r < 0)
                return moat_error_wrap(reterr, r, "container \"%s\"", t->s->id);
        r = event_line("stats", t->s->id, stats, ret);
        json_decref(stats);
        return r < 0 ? moat_error_set(reterr, r, "encoding statistics") : 0;
}

int moat_container_stats(const struct moat_runtime *rt, const char *id, char **ret_json, struct moat_error **reterr)
{
        struct target t;
        int r = load(rt, id, &t, reterr);
        if (r >= 0)
                r = stats_line(&t, ret_json, reterr);
        target_done(&t);
        return r;
}

int moat_container_oom_kills(const struct moat_runtime *rt, const char *id, uint64_t *ret,
                             struct moat_error **reterr)
{
        _cleanup_close_ int dir_fd = -EBADF;
        _cleanup_state_ struct moat_state *s = NULL;
        _cleanup_cgroup_ struct moat_cgroup *cg = NULL;
        int r;

        r = moat_state_open(rt, id, &s, &dir_fd, reterr);
        if (r < 0)
                return r;
        if (strempty(s->cgroup))
                return moat_error_setx(reterr, -ENOENT, "container \"%s\" has no cgroup", id);
        r = moat_cgroup_deserialize(s->cgroup, &cg, reterr);
        if (r < 0)
                return moat_error_wrap(reterr, r, "container \"%s\"", id);
        r = moat_cgroup_oom_kills(cg, ret, reterr);
        if (r < 0)
                return moat_error_wrap(reterr, r, "container \"%s\"", id);
        return 0;
}

static uint64_t now_ms(void)
{
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t) ts.tv_sec * 1000u + (uint64_t) ts.tv_nsec / 1000000u;
}

/* The init's pidfd, checked against the recorded start time. */
static int open_init(struct target *t)
{
        int fd = (int) syscall(SYS_pidfd_open, t->s->pid, 0);
        if (fd < 0)
                return -errno;
        uint64_t start;
        bool zombie;
        if (moat_process_start_time(t->s->pid, &start, &zombie) < 0 || zombie || start != t->s->pid_start_time) {
                close(fd);
                return -ESRCH;
        }
        t->pidfd = fd;
        return 0;
}

/* Emit one "oom" line per kill counted since *seen. */
static int report_ooms(struct target *t, uint64_t *seen, void (*emit)(const char *, void *), void *userdata)
{
        uint64_t n;
        if (moat_cgroup_oom_kills(t->cg, &n, NULL) < 0 || n <= *seen)
                return 0;
        for (uint64_t i = *seen; i < n && i - *seen < 1024; i++) {
                _cleanup_free_ char *line = NULL;
                int r = event_line("oom", t->s->id, NULL, &line);
                if (r < 0)
                        return r;
                emit(line, userdata);
        }
        *seen = n;
        return 0;
}

int moat_container_events(const struct moat_runtime *rt, const char *id, unsigned interval_ms,
                          void (*emit)(const char *json_line, void *userdata), void *userdata,
                          struct moat_error **reterr)
{
        struct target t;
        uint64_t seen = 0;
        int r;

        if (interval_ms == 0)
                return moat_error_setx(reterr, -EINVAL, "events: the interval must be greater than 0");
        r = load(rt, id, &t, reterr);
        if (r < 0)
                goto out;
        if (open_init(&t) < 0)
                goto out; /* stopped meanwhile: nothing more to report */
        /* Kills before the stream started are not news. */
        if (moat_cgroup_oom_kills(t.cg, &seen, NULL) < 0)
                seen = 0;

        uint64_t next_stats = now_ms() + interval_ms;
        for (;;) {
                uint64_t now = now_ms();
                unsigned wait = OOM_POLL_MS;
                if (next_stats > now && next_stats - now < wait)
                        wait = (unsigned) (next_stats - now);
                if (next_stats <= now)
                        wait = 0;
                struct pollfd p = { .fd = t.pidfd, .events = POLLIN };
                int k = poll(&p, 1, (int) wait);
                if (k < 0 && errno != EINTR) {
                        r = moat_error_set(reterr, errno, "waiting on container \"%s\"", id);
                        goto out;
                }
                r = report_ooms(&t, &seen, emit, userdata);
                if (r < 0) {
                        r = moat_error_set(reterr, r, "encoding an oom event");
                        goto out;
                }
                if (k > 0) {
                        r = 0; /* the init exited: the container stopped */
                        goto out;
                }
                if (now_ms() >= next_stats) {
                        _cleanup_free_ char *line = NULL;
                        _cleanup_error_ struct moat_error *err = NULL;
                        r = stats_line(&t, &line, &err);
                        if (r < 0) {
                                /* Statistics fail when the container is torn
                                 * down under us; that ends the stream. */
                                struct pollfd q = { .fd = t.pidfd, .events = POLLIN };
                                if (poll(&q, 1, 0) > 0) {
                                        r = 0;
                                        goto out;
                                }
                                if (reterr && !*reterr)
                                        *reterr = TAKE_PTR(err);
                                goto out;
                        }
                        emit(line, userdata);
                        next_stats += interval_ms;
                        if (next_stats <= now_ms())
                                next_stats = now_ms() + interval_ms;
                }
        }
out:
        target_done(&t);
        return r;
}
