/* SPDX-License-Identifier: Apache-2.0 */
#include "base/compat.h"

/*
 * GET /containers/{id}/logs' reading side: the container's json-file log,
 * written by its monitor, read with the monitor library's reader (rotated
 * files oldest first, then the live one) and follower, so that api/ sees
 * entries, never the log format or the monitor. tail is two passes (count,
 * then skip): no number of lines is held in memory. follow polls the live
 * file until the container has stopped and the file is drained.
 */

#include "engine/engine-internal.h"

#include <time.h>
#include <unistd.h>

#include "base/cleanup.h"
#include "monitor/monitor.h"

#define FOLLOW_POLL_MS 200
#define MAX_ROTATED 1000

struct reading {
        struct moat_engine *e;
        const char *id;
        const struct moat_engine_logs_options *o;
        moat_engine_log_entry_fn fn;
        void *userdata;
        bool counting;
        uint64_t count, skip;
};

static int64_t entry_ns(const struct moat_log_entry *en)
{
        return (int64_t) en->time.tv_sec * 1000000000 + en->time.tv_nsec;
}

static int each(const struct moat_log_entry *en, void *userdata)
{
        struct reading *rd = userdata;
        const struct moat_engine_logs_options *o = rd->o;

        if (o->stopped && o->stopped(rd->userdata))
                return -ECANCELED;
        if ((en->stream == MOAT_STREAM_STDOUT && !o->want_stdout) ||
            (en->stream == MOAT_STREAM_STDERR && !o->want_stderr) ||
            (o->since_ns > 0 && entry_ns(en) < o->since_ns) || (o->until_ns > 0 && entry_ns(en) > o->until_ns))
                return 0;
        if (rd->counting) {
                rd->count++;
                return 0;
        }
        if (rd->skip > 0) {
                rd->skip--;
                return 0;
        }
        return rd->fn(en->stream == MOAT_STREAM_STDERR ? 2 : 1, entry_ns(en), en->data, en->len, rd->userdata);
}

static bool still_running(struct reading *rd)
{
        _cleanup_free_ char *path = NULL;
        bool tty, running = false;

        if (moat_engine_log_path(rd->e, rd->id, &path, &tty, &running, NULL) < 0)
                return false;
        return running;
}

int moat_engine_logs_read(struct moat_engine *e, const char *id, const char *path,
                          const struct moat_engine_logs_options *o, moat_engine_log_entry_fn fn, void *userdata,
                          struct moat_error **reterr)
{
        struct reading rd = { .e = e, .id = id, .o = o, .fn = fn, .userdata = userdata };
        struct moat_log_follow *f = NULL;
        int r;

        if (o->tail >= 0) {
                rd.counting = true;
                r = moat_logfile_read_rotated(path, MAX_ROTATED, each, &rd, reterr);
                if (r >= 0)
                        r = moat_logfile_read(path, 1, each, &rd, reterr);
                rd.counting = false;
                if (r < 0)
                        return r;
                rd.skip = rd.count > (uint64_t) o->tail ? rd.count - (uint64_t) o->tail : 0;
        }
        r = moat_logfile_read_rotated(path, MAX_ROTATED, each, &rd, reterr);
        if (r >= 0)
                r = moat_log_follow_open(path, &f, reterr);
        if (r >= 0)
                r = moat_log_follow_read(f, each, &rd, reterr);
        while (r >= 0 && o->follow && !(o->stopped && o->stopped(userdata))) {
                bool running = still_running(&rd);
                r = moat_log_follow_read(f, each, &rd, reterr);
                if (r < 0 || (!running && r == 0))
                        break;
                struct timespec now;
                clock_gettime(CLOCK_REALTIME, &now);
                if (o->until_ns > 0 && (int64_t) now.tv_sec * 1000000000 + now.tv_nsec > o->until_ns)
                        break;
                usleep(FOLLOW_POLL_MS * 1000);
        }
        moat_log_follow_free(f);
        return r < 0 ? r : 0;
}

void moat_engine_format_rfc3339nano(int64_t ns, char buf[static MOAT_ENGINE_RFC3339NANO_MAX])
{
        struct timespec ts = { .tv_sec = ns / 1000000000, .tv_nsec = ns % 1000000000 };
        moat_format_rfc3339nano(&ts, buf);
}
