/* SPDX-License-Identifier: Apache-2.0 */
#include "base/compat.h"

/*
 * Events (engine.h): every event is appended to the database when it
 * happens (event_locked in containers.c); readers page through the
 * database by sequence number and wait on the engine's condition for
 * newer ones, so a slow reader never holds anything up and a daemon
 * restart keeps the history `docker events --since` asks for. What only
 * the API sees, a client leaving with its detach keys, is recorded the
 * same way through moat_engine_event_detach.
 */

#include "engine/engine-internal.h"

#include <string.h>
#include <time.h>

#include "base/cleanup.h"

#define MAX_FILTER_VALUES 64
#define PAGE 256

static size_t filter_values(const json_t *filters, const char *key, const char *out[MAX_FILTER_VALUES])
{
        json_t *v = json_object_get(filters, key);
        size_t n = 0;

        if (json_is_object(v)) {
                const char *k;
                json_t *x;
                json_object_foreach(v, k, x)
                        if (n < MAX_FILTER_VALUES && json_is_true(x))
                                out[n++] = k;
        } else if (json_is_array(v)) {
                size_t i;
                json_t *x;
                json_array_foreach(v, i, x)
                        if (n < MAX_FILTER_VALUES && json_is_string(x))
                                out[n++] = json_string_value(x);
        }
        return n;
}

int moat_engine_events_check(const json_t *filters, struct moat_error **reterr)
{
        static const char *const known[] = { "type", "event", "container", "image", "label", "volume" };
        const char *key;
        json_t *v;

        json_object_foreach((json_t *) filters, key, v) {
                bool ok = false;
                for (size_t i = 0; i < sizeof(known) / sizeof(known[0]); i++)
                        ok = ok || streq(key, known[i]);
                if (!ok)
                        return moat_error_setx(reterr, -EINVAL, "invalid filter '%s'", key);
        }
        return 0;
}

static bool any_of(const json_t *filters, const char *key, bool (*match)(const char *want, const void *ctx),
                   const void *ctx)
{
        const char *v[MAX_FILTER_VALUES];
        size_t n = filter_values(filters, key, v);

        if (n == 0)
                return true;
        for (size_t i = 0; i < n; i++)
                if (match(v[i], ctx))
                        return true;
        return false;
}

struct event_view {
        const struct moat_db_event *ev;
        json_t *attrs;
};

static bool match_type(const char *want, const void *ctx)
{
        return streq(want, ((const struct event_view *) ctx)->ev->type);
}

static bool match_event(const char *want, const void *ctx)
{
        const char *action = ((const struct event_view *) ctx)->ev->action;
        size_t n = strlen(want);
        /* "exec_start: sh" matches the filter "exec_start". */
        return strncmp(action, want, n) == 0 && (action[n] == '\0' || action[n] == ':');
}

static bool match_container(const char *want, const void *ctx)
{
        const struct event_view *v = ctx;
        const char *name = json_string_value(json_object_get(v->attrs, "name"));
        return streq(v->ev->type, "container") &&
               (startswith(v->ev->actor_id, want) || (name && streq(name, want[0] == '/' ? want + 1 : want)));
}

static bool match_image(const char *want, const void *ctx)
{
        const struct event_view *v = ctx;
        const char *image = json_string_value(json_object_get(v->attrs, "image"));
        return (image && streq(image, want)) || (streq(v->ev->type, "image") && streq(v->ev->actor_id, want));
}

static bool match_label(const char *want, const void *ctx)
{
        const struct event_view *v = ctx;
        const char *eq = strchr(want, '=');
        _cleanup_free_ char *key = eq ? strndup(want, (size_t) (eq - want)) : strdup(want);
        const char *value = key ? json_string_value(json_object_get(v->attrs, key)) : NULL;
        return value && (!eq || streq(value, eq + 1));
}

static json_t *message(const struct moat_db_event *ev, json_t *attrs)
{
        const char *from = json_string_value(json_object_get(attrs, "image"));
        json_t *m = json_pack("{s:s, s:s, s:{s:s, s:O}, s:s, s:I, s:I}", "Type", ev->type, "Action", ev->action,
                              "Actor", "ID", ev->actor_id, "Attributes", attrs, "scope", "local", "time",
                              (json_int_t) (ev->time_ns / 1000000000), "timeNano", (json_int_t) ev->time_ns);
        if (m && streq(ev->type, "container")) {
                /* The fields of API < 1.22 that the CLI still prints. */
                json_object_set_new(m, "status", json_string(ev->action));
                json_object_set_new(m, "id", json_string(ev->actor_id));
                if (from)
                        json_object_set_new(m, "from", json_string(from));
        }
        return m;
}

int moat_engine_events_next(struct moat_engine *e, const struct moat_engine_events_query *q, int64_t *cursor,
                            bool *started, size_t limit, json_t **ret, struct moat_error **reterr)
{
        struct moat_db_event *v = NULL;
        size_t n = 0;
        json_t *out = json_array();
        int r;

        if (!out)
                return moat_error_set(reterr, -ENOMEM, "events");
        if (!*started) {
                *started = true;
                if (q->since_ns <= 0) {
                        pthread_mutex_lock(&e->lock);
                        *cursor = e->last_event_seq;
                        pthread_mutex_unlock(&e->lock);
                }
        }
        struct moat_db_event_query dq = {
                .since_ns = q->since_ns > 0 ? q->since_ns : 0,
                .until_ns = q->until_ns,
                .after_seq = *cursor,
                .limit = limit > 0 && limit < PAGE ? limit : PAGE,
        };
        r = moat_db_event_list(e->db, &dq, &v, &n, reterr);
        if (r < 0) {
                json_decref(out);
                return r;
        }
        for (size_t i = 0; i < n; i++) {
                json_error_t jerr;
                json_t *attrs = json_loads(v[i].attributes ? v[i].attributes : "{}", 0, &jerr);
                struct event_view view = { .ev = &v[i], .attrs = attrs };

                *cursor = v[i].seq;
                if (!json_is_object(attrs)) {
                        json_decref(attrs);
                        continue;
                }
                if (any_of(q->filters, "type", match_type, &view) && any_of(q->filters, "event", match_event, &view) &&
                    any_of(q->filters, "container", match_container, &view) &&
                    any_of(q->filters, "image", match_image, &view) && any_of(q->filters, "label", match_label, &view))
                        json_array_append_new(out, message(&v[i], attrs));
                json_decref(attrs);
        }
        moat_db_events_free(v, n);
        *ret = out;
        return 0;
}

int moat_engine_events_wait(struct moat_engine *e, int64_t cursor, int timeout_ms)
{
        struct timespec ts;
        int found;

        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_sec += timeout_ms / 1000;
        ts.tv_nsec += (long) (timeout_ms % 1000) * 1000000;
        if (ts.tv_nsec >= 1000000000) {
                ts.tv_sec++;
                ts.tv_nsec -= 1000000000;
        }
        pthread_mutex_lock(&e->lock);
        while (e->last_event_seq <= cursor)
                if (pthread_cond_timedwait(&e->changed, &e->lock, &ts) != 0)
                        break;
        found = e->last_event_seq > cursor;
        pthread_mutex_unlock(&e->lock);
        return found;
}

int moat_engine_event_detach(struct moat_engine *e, const char *ref, const char *exec_id,
                             struct moat_error **reterr)
{
        _cleanup_db_exec_ struct moat_db_exec *rec = NULL;
        struct container *c;
        json_t *attrs = NULL;
        int r;

        if (exec_id) {
                r = moat_db_exec_get(e->db, exec_id, &rec, reterr);
                if (r < 0)
                        return r;
                ref = rec->container_id;
                attrs = json_pack("{s:s}", "execID", rec->id);
                if (!attrs)
                        return moat_error_set(reterr, -ENOMEM, "event");
        }
        pthread_mutex_lock(&e->lock);
        r = container_find_locked(e, ref, &c, reterr);
        if (r >= 0)
                event_locked(e, c, exec_id ? "exec_detach" : "detach", TAKE_PTR(attrs));
        pthread_mutex_unlock(&e->lock);
        json_decref(attrs);
        return r;
}
