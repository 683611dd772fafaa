/* SPDX-License-Identifier: Apache-2.0 */
#include "base/compat.h"

/*
 * Health checks (Config.Healthcheck, docker's rules): while a container
 * runs, a thread of its own runs the test as an exec instance every
 * Interval (StartInterval during StartPeriod), waits for it at most
 * Timeout, keeps the last five results (start, end, exit code, the first
 * 4 KiB of output), and turns them into State.Health: "starting" until the
 * first success or until StartPeriod has passed, "healthy" after a
 * success, "unhealthy" after Retries failures in a row (failures during
 * StartPeriod do not count). A change of status is an event
 * ("health_status: healthy"). The thread ends when the container's run
 * ends (its exit_seq moves) or the engine closes.
 *
 * The exec goes through the same path as docker exec (exec.c): the
 * container's credentials, seccomp, cgroup. Its record is deleted after,
 * so ExecIDs show only the user's.
 */

#include "engine/engine-internal.h"

#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "base/cleanup.h"
#include "monitor/monitor.h"

#define DEFAULT_INTERVAL_NS (30LL * 1000000000)
#define DEFAULT_TIMEOUT_NS (30LL * 1000000000)
#define DEFAULT_START_INTERVAL_NS (5LL * 1000000000)
#define DEFAULT_RETRIES 3
#define OUTPUT_MAX 4096
#define LOG_KEEP 5

struct health_job {
        struct moat_engine *e;
        char *id;
        unsigned seq;          /* the run this job watches */
};

static int64_t ns_of(const json_t *hc, const char *key, int64_t def)
{
        json_t *v = json_object_get(hc, key);
        return json_is_integer(v) && json_integer_value(v) > 0 ? json_integer_value(v) : def;
}

/* Sleep until deadline unless the run ends or the engine closes: false then. */
static bool nap(struct health_job *job, int64_t deadline)
{
        struct moat_engine *e = job->e;
        struct container *c;
        bool go_on = true;

        pthread_mutex_lock(&e->lock);
        for (;;) {
                if (e->closing || container_find_locked(e, job->id, &c, NULL) < 0 || c->exit_seq != job->seq ||
                    c->st.state == MOAT_CONTAINER_EXITED) {
                        go_on = false;
                        break;
                }
                if (engine_now_ns() >= deadline)
                        break;
                struct timespec ts = { .tv_sec = deadline / 1000000000, .tv_nsec = deadline % 1000000000 };
                pthread_cond_timedwait(&e->changed, &e->lock, &ts);
        }
        pthread_mutex_unlock(&e->lock);
        return go_on;
}

/* Run the test once: exit code (-1 when it could not run or timed out)
 * and up to OUTPUT_MAX bytes of its output. */
static int run_check(struct moat_engine *e, const char *id, const json_t *test, int64_t timeout_ns, char *out,
                     size_t *out_len)
{
        _cleanup_free_ char *exec_id = NULL;
        _cleanup_error_ struct moat_error *err = NULL;
        json_t *cmd = json_array();
        const char *kind = json_string_value(json_array_get(test, 0));
        int fd = -1, code = -1;
        bool tty = false;

        *out_len = 0;
        if (kind && streq(kind, "CMD-SHELL")) {
                json_array_append_new(cmd, json_string("/bin/sh"));
                json_array_append_new(cmd, json_string("-c"));
                json_array_append(cmd, json_array_get(test, 1));
        } else
                for (size_t i = 1; i < json_array_size(test); i++)
                        json_array_append(cmd, json_array_get(test, i));
        json_t *body = json_pack("{s:o, s:b, s:b}", "Cmd", cmd, "AttachStdout", true, "AttachStderr", true);
        int r = moat_engine_exec_create(e, id, body, &exec_id, &err);
        json_decref(body);
        if (r < 0) {
                *out_len = (size_t) snprintf(out, OUTPUT_MAX, "%s", err ? err->msg : "exec failed");
                return -1;
        }
        r = moat_engine_exec_start(e, exec_id, false, &fd, &tty, &err);
        if (r < 0) {
                *out_len = (size_t) snprintf(out, OUTPUT_MAX, "%s", err ? err->msg : "exec failed");
                code = engine_start_failure_code(err ? err->msg : "");
                goto done;
        }
        /* Read the stream (multiplexed frames) until it ends or time is up. */
        int64_t deadline = engine_now_ns() + timeout_ns;
        uint8_t buf[8192];
        size_t have = 0;
        bool timed_out = false;
        for (;;) {
                int64_t left = (deadline - engine_now_ns()) / 1000000;
                if (left <= 0) {
                        timed_out = true;
                        break;
                }
                struct pollfd p = { .fd = fd, .events = POLLIN };
                int n = poll(&p, 1, (int) (left > 1000 ? 1000 : left));
                if (__atomic_load_n(&e->closing, __ATOMIC_RELAXED)) {
                        timed_out = true;
                        break;
                }
                if (n < 0 && errno == EINTR)
                        continue;
                if (n == 0)
                        continue;
                ssize_t k = read(fd, buf + have, sizeof(buf) - have);
                if (k <= 0)
                        break;
                have += (size_t) k;
                /* Keep the payload of whole frames, drop the headers. */
                size_t pos = 0;
                while (have - pos >= MOAT_FRAME_HEADER_SIZE) {
                        enum moat_stream st;
                        uint32_t size;
                        if (moat_frame_parse(buf + pos, &st, &size) < 0 || size > sizeof(buf) - MOAT_FRAME_HEADER_SIZE) {
                                pos = have;
                                break;
                        }
                        if (have - pos - MOAT_FRAME_HEADER_SIZE < size)
                                break;
                        size_t take = size;
                        if (take > OUTPUT_MAX - *out_len)
                                take = OUTPUT_MAX - *out_len;
                        memcpy(out + *out_len, buf + pos + MOAT_FRAME_HEADER_SIZE, take);
                        *out_len += take;
                        pos += MOAT_FRAME_HEADER_SIZE + size;
                }
                memmove(buf, buf + pos, have - pos);
                have -= pos;
        }
        close(fd);
        if (timed_out) {
                _cleanup_db_exec_ struct moat_db_exec *rec = NULL;
                if (moat_db_exec_get(e->db, exec_id, &rec, NULL) >= 0 && rec->pid > 0)
                        (void) kill(rec->pid, SIGKILL);
                *out_len = (size_t) snprintf(out, OUTPUT_MAX, "Health check exceeded timeout (%lldms)",
                                             (long long) (timeout_ns / 1000000));
                code = -1;
                goto done;
        }
        {
                json_t *info = NULL;
                /* The exit file is written before the stream ends. */
                if (moat_engine_exec_inspect(e, exec_id, &info, NULL) >= 0) {
                        json_t *ec = json_object_get(info, "ExitCode");
                        code = json_is_integer(ec) ? (int) json_integer_value(ec) : -1;
                        json_decref(info);
                }
        }
done:
        (void) !moat_db_exec_delete(e->db, exec_id, NULL);
        return code;
}

static void record(struct health_job *job, int64_t start_ns, int code, const char *out, size_t out_len,
                   int64_t start_period_ns, int64_t run_started_ns, int retries)
{
        struct moat_engine *e = job->e;
        struct container *c;
        char t0[40], t1[40];

        engine_format_time(start_ns, t0);
        engine_format_time(engine_now_ns(), t1);
        pthread_mutex_lock(&e->lock);
        if (container_find_locked(e, job->id, &c, NULL) < 0 || c->exit_seq != job->seq) {
                pthread_mutex_unlock(&e->lock);
                return;
        }
        if (!c->health)
                c->health = json_pack("{s:s, s:i, s:[]}", "Status", "starting", "FailingStreak", 0, "Log");
        json_t *log = json_object_get(c->health, "Log");
        json_array_append_new(log, json_pack("{s:s, s:s, s:i, s:s%}", "Start", t0, "End", t1, "ExitCode", code,
                                             "Output", out, out_len));
        while (json_array_size(log) > LOG_KEEP)
                json_array_remove(log, 0);
        const char *old = json_string_value(json_object_get(c->health, "Status"));
        char *was = strdup(old ? old : "starting");
        json_int_t streak = json_integer_value(json_object_get(c->health, "FailingStreak"));
        bool in_start_period = start_ns - run_started_ns < start_period_ns;
        const char *now = was;
        if (code == 0) {
                streak = 0;
                now = "healthy";
        } else if (!in_start_period || (was && !streq(was, "starting"))) {
                streak++;
                if (streak >= retries)
                        now = "unhealthy";
        }
        json_object_set_new(c->health, "FailingStreak", json_integer(streak));
        json_object_set_new(c->health, "Status", json_string(now));
        (void) !container_save_locked(e, c, NULL);
        if (was && !streq(was, now)) {
                char action[64];
                snprintf(action, sizeof(action), "health_status: %s", now);
                event_locked(e, c, action, NULL);
        }
        free(was);
        pthread_mutex_unlock(&e->lock);
}

static void *health_thread(void *arg)
{
        struct health_job *job = arg;
        struct moat_engine *e = job->e;
        json_t *hc = NULL;
        int64_t run_started = engine_now_ns();
        struct container *c;

        pthread_mutex_lock(&e->lock);
        if (container_find_locked(e, job->id, &c, NULL) >= 0) {
                hc = json_deep_copy(json_object_get(c->config, "Healthcheck"));
                if (c->st.started_ns > 0)
                        run_started = c->st.started_ns;
        }
        pthread_mutex_unlock(&e->lock);

        json_t *test = json_object_get(hc, "Test");
        int64_t interval = ns_of(hc, "Interval", DEFAULT_INTERVAL_NS);
        int64_t timeout = ns_of(hc, "Timeout", DEFAULT_TIMEOUT_NS);
        int64_t start_period = ns_of(hc, "StartPeriod", 0);
        int64_t start_interval = ns_of(hc, "StartInterval", DEFAULT_START_INTERVAL_NS);
        int retries = (int) ns_of(hc, "Retries", DEFAULT_RETRIES);
        char *out = malloc(OUTPUT_MAX + 1);

        while (out && json_array_size(test) >= 2) {
                int64_t now = engine_now_ns();
                int64_t wait = now - run_started < start_period ? start_interval : interval;
                if (!nap(job, now + wait))
                        break;
                size_t out_len = 0;
                int64_t t0 = engine_now_ns();
                int code = run_check(e, job->id, test, timeout, out, &out_len);
                record(job, t0, code, out, out_len, start_period, run_started, retries);
        }
        free(out);
        json_decref(hc);
        pthread_mutex_lock(&e->lock);
        e->bg_threads--;
        pthread_cond_broadcast(&e->changed);
        pthread_mutex_unlock(&e->lock);
        free(job->id);
        free(job);
        return NULL;
}

void container_health_start_locked(struct moat_engine *e, struct container *c)
{
        json_t *test = json_object_get(json_object_get(c->config, "Healthcheck"), "Test");
        const char *kind = json_string_value(json_array_get(test, 0));
        struct health_job *job;
        pthread_t t;

        if (!kind || streq(kind, "NONE") || json_array_size(test) < 2 || e->closing)
                return;
        json_decref(c->health);
        c->health = json_pack("{s:s, s:i, s:[]}", "Status", "starting", "FailingStreak", 0, "Log");
        job = calloc(1, sizeof(*job));
        if (!job || !(job->id = strdup(c->id))) {
                free(job);
                return;
        }
        job->e = e;
        job->seq = c->exit_seq;
        e->bg_threads++;
        sigset_t all, old;
        sigfillset(&all);
        pthread_sigmask(SIG_BLOCK, &all, &old);
        int r = pthread_create(&t, NULL, health_thread, job);
        pthread_sigmask(SIG_SETMASK, &old, NULL);
        if (r != 0) {
                e->bg_threads--;
                free(job->id);
                free(job);
                return;
        }
        pthread_detach(t);
}
