/* SPDX-License-Identifier: Apache-2.0 */
#include "base/compat.h"

/*
 * The API's HTTP server: libmicrohttpd (MHD) 0.9.75 on a listen socket the
 * daemon made, a router, and docker's response kinds.
 *
 * Threading model: one thread per connection
 * (MHD_USE_THREAD_PER_CONNECTION | MHD_USE_INTERNAL_POLLING_THREAD), capped
 * at MOAT_HTTP_MAX_CONNECTIONS. The docker API is full of requests that wait:
 * POST /containers/{id}/wait answers 200 at once and its body when the
 * container exits, logs --follow and /events stream for as long as the
 * client reads, attach and exec are hijacked sockets that live as long as
 * the process. With a thread per connection every one of those is plain
 * blocking code: a producer blocks in MHD's content-reader callback (MHD
 * forbids a 0-byte answer in internal-polling modes, so blocking is the
 * only way to wait anyway), a hijack handler runs inside MHD's upgrade
 * callback, which in this mode is the connection's own thread, and an
 * upload is fed to a worker thread through a socketpair while the
 * connection thread reads it. Event-loop mode would need
 * suspend/resume plus a wake-up path per waiting request for no gain at a
 * few hundred local clients.
 *
 * What the spike showed about MHD 0.9.75, and what this file does about it:
 * - A callback response's headers are sent before the callback is first
 *   called, so a blocking producer gives docker's wait its headers at once.
 * - A producer that blocks cannot see the client go away (MHD only notices
 *   on its next write), nor the server stop (MHD_stop_daemon joins the
 *   thread). moat_http_stream_wait() polls the producer's fd together with
 *   the connection's socket (POLLRDHUP) and the server's cancel eventfd.
 * - The upgraded socket is non-blocking and MHD may already have read bytes
 *   past the request (extra_in). The hijack object switches the socket to
 *   blocking and serves extra_in first; half-close is shutdown(SHUT_WR) on
 *   the socket, which MHD permits; the close goes through
 *   MHD_upgrade_action(CLOSE).
 * - MHD's upgrade response has no free callback, so a hijack whose 101
 *   never went out (client gone) is owned by the connection context and
 *   freed when MHD reports the connection closed.
 * - MHD's access handler gets the path already unescaped and the query as
 *   its own table with '+' left alone; Go clients encode spaces in query
 *   values as '+'. The raw target comes from the URI-log callback and is
 *   split and decoded here as Go's url package does.
 * - A response queued before the body was read makes MHD close the
 *   connection after it; that is what happens for errors found from the
 *   headers alone (413 from Content-Length, unknown routes, bad versions).
 */

#include <fcntl.h>
#include <inttypes.h>
#include <microhttpd.h>
#include <poll.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <linux/sockios.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "api/http.h"
#include "base/cleanup.h"
#include "base/log.h"
#include "base/parse.h"

/* ---- pure parsing ---- */

static int hexval(char c)
{
        if (c >= '0' && c <= '9')
                return c - '0';
        if (c >= 'a' && c <= 'f')
                return c - 'a' + 10;
        if (c >= 'A' && c <= 'F')
                return c - 'A' + 10;
        return -1;
}

/* Percent-decode [s, s+len) into a new string; plus_is_space for query
 * components. A '%' not followed by two hex digits is an error, as in Go. */
static int unescape(const char *s, size_t len, bool plus_is_space, char **ret)
{
        char *out = malloc(len + 1), *o = out;
        if (!out)
                return -ENOMEM;
        for (size_t i = 0; i < len; i++) {
                if (s[i] == '%') {
                        int hi = i + 2 < len ? hexval(s[i + 1]) : -1;
                        int lo = i + 2 < len ? hexval(s[i + 2]) : -1;
                        /* A NUL byte would cut the string short of what was sent. */
                        if (hi < 0 || lo < 0 || (hi == 0 && lo == 0)) {
                                free(out);
                                return -EINVAL;
                        }
                        *o++ = (char) (hi << 4 | lo);
                        i += 2;
                        continue;
                }
                *o++ = plus_is_space && s[i] == '+' ? ' ' : s[i];
        }
        *o = '\0';
        *ret = out;
        return 0;
}

void moat_http_params_free(struct moat_http_param *p, size_t n)
{
        if (!p)
                return;
        for (size_t i = 0; i < n; i++) {
                free(p[i].key);
                free(p[i].value);
        }
        free(p);
}

int moat_http_split_target(const char *target, char **ret_path, struct moat_http_param **ret_params, size_t *ret_n,
                           struct moat_error **reterr)
{
        size_t tlen = strlen(target);
        if (tlen > MOAT_HTTP_MAX_TARGET)
                return moat_error_setx(reterr, -E2BIG, "request target is %zu bytes, more than the limit of %d",
                                       tlen, MOAT_HTTP_MAX_TARGET);
        if (target[0] != '/')
                return moat_error_setx(reterr, -EINVAL, "request target \"%.64s\" does not start with '/'", target);

        const char *q = strchr(target, '?');
        size_t plen = q ? (size_t) (q - target) : tlen;
        const char *hash = memchr(target, '#', plen);
        if (hash)
                plen = (size_t) (hash - target);
        _cleanup_free_ char *path = NULL;
        if (unescape(target, plen, false, &path) < 0)
                return moat_error_setx(reterr, -EINVAL, "invalid escape in request path \"%.*s\"", (int) plen, target);

        struct moat_http_param *params = NULL;
        size_t n = 0;
        if (q) {
                const char *s = q + 1;
                const char *end = strchr(s, '#');
                if (!end)
                        end = s + strlen(s);
                while (s < end) {
                        const char *amp = memchr(s, '&', (size_t) (end - s));
                        const char *stop = amp ? amp : end;
                        if (stop > s) {
                                if (n >= MOAT_HTTP_MAX_QUERY_PARAMS) {
                                        moat_http_params_free(params, n);
                                        return moat_error_setx(reterr, -E2BIG,
                                                               "more than %d query parameters",
                                                               MOAT_HTTP_MAX_QUERY_PARAMS);
                                }
                                const char *eq = memchr(s, '=', (size_t) (stop - s));
                                struct moat_http_param *np = realloc(params, (n + 1) * sizeof(*params));
                                if (!np) {
                                        moat_http_params_free(params, n);
                                        return moat_error_set(reterr, -ENOMEM, "query parameters");
                                }
                                params = np;
                                params[n] = (struct moat_http_param) {};
                                const char *kend = eq ? eq : stop;
                                int r = unescape(s, (size_t) (kend - s), true, &params[n].key);
                                if (r >= 0)
                                        r = eq ? unescape(eq + 1, (size_t) (stop - eq - 1), true, &params[n].value)
                                               : ((params[n].value = strdup("")) ? 0 : -ENOMEM);
                                n++;
                                if (r < 0) {
                                        moat_http_params_free(params, n);
                                        return moat_error_setx(reterr, r == -ENOMEM ? -ENOMEM : -EINVAL,
                                                               "invalid query parameter \"%.*s\"",
                                                               (int) (stop - s > 64 ? 64 : stop - s), s);
                                }
                        }
                        s = amp ? amp + 1 : end;
                }
        }
        *ret_path = TAKE_PTR(path);
        *ret_params = params;
        *ret_n = n;
        return 0;
}

static int parse_version(const char *s, size_t len, unsigned *major, unsigned *minor)
{
        char buf[32];
        if (len == 0 || len >= sizeof(buf))
                return -EINVAL;
        memcpy(buf, s, len);
        buf[len] = '\0';
        char *dot = strchr(buf, '.');
        uint32_t ma, mi = 0;
        if (dot)
                *dot = '\0';
        if (safe_atou32(buf, &ma) < 0 || (dot && safe_atou32(dot + 1, &mi) < 0))
                return -EINVAL;
        *major = ma;
        *minor = mi;
        return 0;
}

static int version_cmp(unsigned ama, unsigned ami, unsigned bma, unsigned bmi)
{
        if (ama != bma)
                return ama < bma ? -1 : 1;
        if (ami != bmi)
                return ami < bmi ? -1 : 1;
        return 0;
}

int moat_http_parse_version_prefix(const char *path, unsigned *ret_major, unsigned *ret_minor, const char **ret_rest,
                                   struct moat_error **reterr)
{
        *ret_major = MOAT_API_VERSION_MAJOR;
        *ret_minor = MOAT_API_VERSION_MINOR;
        *ret_rest = path;
        /* moby's matcher: "/v{version:[0-9.]+}" followed by the route. */
        if (path[0] != '/' || path[1] != 'v' || !(path[2] >= '0' && path[2] <= '9'))
                return 0;
        size_t len = strspn(path + 2, "0123456789.");
        const char *rest = path + 2 + len;
        if (*rest != '/' && *rest != '\0')
                return 0;
        unsigned ma, mi;
        if (parse_version(path + 2, len, &ma, &mi) < 0)
                return moat_error_setx(reterr, -EINVAL, "invalid API version \"%.*s\"", (int) (len > 32 ? 32 : len),
                                       path + 2);
        if (version_cmp(ma, mi, MOAT_API_MIN_VERSION_MAJOR, MOAT_API_MIN_VERSION_MINOR) < 0)
                return moat_error_setx(reterr, -ERANGE,
                                       "client version %.*s is too old. Minimum supported API version is %s, "
                                       "please upgrade your client to a newer version",
                                       (int) len, path + 2, MOAT_API_MIN_VERSION);
        if (version_cmp(ma, mi, MOAT_API_VERSION_MAJOR, MOAT_API_VERSION_MINOR) > 0)
                return moat_error_setx(reterr, -ERANGE,
                                       "client version %.*s is too new. Maximum supported API version is %s",
                                       (int) len, path + 2, MOAT_API_VERSION);
        *ret_major = ma;
        *ret_minor = mi;
        *ret_rest = *rest ? rest : "/";
        return 0;
}

bool moat_http_bool_value(const char *v)
{
        if (!v)
                return false;
        static const char *const falsy[] = { "", "0", "no", "false", "none" };
        for (size_t i = 0; i < ELEMENTSOF(falsy); i++)
                if (strcasecmp(v, falsy[i]) == 0)
                        return false;
        return true;
}

/* ---- router ---- */

struct moat_http_route {
        char *method;
        char **segs;
        char **names;   /* per segment: the parameter's name, NULL for a literal */
        bool *greedy;
        size_t n_segs;
        moat_http_handler_fn fn;
        void *userdata;
        struct moat_http_route_opts opts;
};

struct moat_http_router {
        struct moat_http_route *routes;
        size_t n;
};

int moat_http_router_new(struct moat_http_router **ret)
{
        *ret = calloc(1, sizeof(**ret));
        return *ret ? 0 : -ENOMEM;
}

static void route_clear(struct moat_http_route *rt)
{
        free(rt->method);
        for (size_t i = 0; i < rt->n_segs; i++) {
                free(rt->segs[i]);
                free(rt->names[i]);
        }
        free(rt->segs);
        free(rt->names);
        free(rt->greedy);
}

void moat_http_router_free(struct moat_http_router *r)
{
        if (!r)
                return;
        for (size_t i = 0; i < r->n; i++)
                route_clear(&r->routes[i]);
        free(r->routes);
        free(r);
}

#define MAX_SEGS 64

int moat_http_router_add(struct moat_http_router *r, const char *method, const char *pattern, moat_http_handler_fn fn,
                         void *userdata, const struct moat_http_route_opts *opts, struct moat_error **reterr)
{
        if (pattern[0] != '/')
                return moat_error_setx(reterr, -EINVAL, "route pattern \"%s\" does not start with '/'", pattern);
        struct moat_http_route rt = {
                .fn = fn,
                .userdata = userdata,
                .opts = opts ? *opts : (struct moat_http_route_opts) {},
                .method = strdup(method),
                .segs = calloc(MAX_SEGS, sizeof(char *)),
                .names = calloc(MAX_SEGS, sizeof(char *)),
                .greedy = calloc(MAX_SEGS, sizeof(bool)),
        };
        size_t n_params = 0;
        int r2 = 0;
        if (!rt.method || !rt.segs || !rt.names || !rt.greedy) {
                r2 = moat_error_set(reterr, -ENOMEM, "route %s", pattern);
                goto fail;
        }
        for (const char *s = pattern + 1; *s;) {
                const char *slash = strchr(s, '/');
                size_t len = slash ? (size_t) (slash - s) : strlen(s);
                if (len == 0 || rt.n_segs >= MAX_SEGS) {
                        r2 = moat_error_setx(reterr, -EINVAL, "route pattern \"%s\": empty segment or too many",
                                             pattern);
                        goto fail;
                }
                char *seg = strndup(s, len);
                if (!seg) {
                        r2 = moat_error_set(reterr, -ENOMEM, "route %s", pattern);
                        goto fail;
                }
                rt.segs[rt.n_segs] = seg;
                if (len >= 3 && seg[0] == '{' && seg[len - 1] == '}') {
                        bool greedy = seg[len - 2] == '*';
                        rt.greedy[rt.n_segs] = greedy;
                        rt.names[rt.n_segs] = strndup(seg + 1, len - 2 - greedy);
                        n_params++;
                        if (!rt.names[rt.n_segs]) {
                                rt.n_segs++;
                                r2 = moat_error_set(reterr, -ENOMEM, "route %s", pattern);
                                goto fail;
                        }
                }
                rt.n_segs++;
                s += len + (slash ? 1 : 0);
        }
        if (n_params > MOAT_HTTP_MAX_PATH_PARAMS) {
                r2 = moat_error_setx(reterr, -EINVAL, "route pattern \"%s\" has too many parameters", pattern);
                goto fail;
        }
        struct moat_http_route *nr = realloc(r->routes, (r->n + 1) * sizeof(*nr));
        if (!nr) {
                r2 = moat_error_set(reterr, -ENOMEM, "route %s", pattern);
                goto fail;
        }
        r->routes = nr;
        r->routes[r->n++] = rt;
        return 0;
fail:
        route_clear(&rt);
        return r2;
}

struct path_segs {
        const char *start[MAX_SEGS];
        size_t len[MAX_SEGS];
        size_t n;
};

static bool match_from(const struct moat_http_route *rt, size_t pi, const struct path_segs *ps, size_t si,
                       size_t *bind_first, size_t *bind_last)
{
        if (pi == rt->n_segs)
                return si == ps->n;
        if (!rt->names[pi]) {
                const char *seg = rt->segs[pi];
                return si < ps->n && ps->len[si] == strlen(seg) && memcmp(ps->start[si], seg, ps->len[si]) == 0 &&
                       match_from(rt, pi + 1, ps, si + 1, bind_first, bind_last);
        }
        if (si >= ps->n || ps->len[si] == 0)
                return false;
        if (!rt->greedy[pi]) {
                bind_first[pi] = bind_last[pi] = si;
                return match_from(rt, pi + 1, ps, si + 1, bind_first, bind_last);
        }
        /* Longest first, as moby's "{name:.*}" does. */
        for (size_t end = ps->n; end > si; end--) {
                bind_first[pi] = si;
                bind_last[pi] = end - 1;
                if (match_from(rt, pi + 1, ps, end, bind_first, bind_last))
                        return true;
        }
        return false;
}

static bool route_matches(const struct moat_http_route *rt, const struct path_segs *ps, size_t *first, size_t *last)
{
        return match_from(rt, 0, ps, 0, first, last);
}

enum moat_http_match moat_http_router_match(const struct moat_http_router *r, const char *method, const char *path,
                                            const struct moat_http_route **ret_route,
                                            struct moat_http_path_param *params, size_t *ret_n, char **ret_buf)
{
        struct path_segs ps = {};
        *ret_route = NULL;
        *ret_n = 0;
        *ret_buf = NULL;
        if (path[0] != '/')
                return MOAT_HTTP_MATCH_NO_ROUTE;
        for (const char *s = path + 1; *s || ps.n > 0;) {
                if (ps.n >= MAX_SEGS)
                        return MOAT_HTTP_MATCH_NO_ROUTE;
                const char *slash = strchr(s, '/');
                ps.start[ps.n] = s;
                ps.len[ps.n] = slash ? (size_t) (slash - s) : strlen(s);
                ps.n++;
                if (!slash)
                        break;
                s = slash + 1;
        }

        size_t first[MAX_SEGS], last[MAX_SEGS];
        const struct moat_http_route *found = NULL;
        bool path_matched = false;
        for (size_t i = 0; i < r->n && !found; i++) {
                const struct moat_http_route *rt = &r->routes[i];
                if (!route_matches(rt, &ps, first, last))
                        continue;
                if (streq(rt->method, method))
                        found = rt;
                else
                        path_matched = true;
        }
        /* HEAD is served by the GET route when there is no HEAD route. */
        for (size_t i = 0; i < r->n && !found && streq(method, "HEAD"); i++)
                if (streq(r->routes[i].method, "GET") && route_matches(&r->routes[i], &ps, first, last))
                        found = &r->routes[i];
        if (!found)
                return path_matched ? MOAT_HTTP_MATCH_BAD_METHOD : MOAT_HTTP_MATCH_NO_ROUTE;

        char *buf = malloc(strlen(path) + MOAT_HTTP_MAX_PATH_PARAMS + 1);
        if (!buf)
                return MOAT_HTTP_MATCH_NO_MEMORY;
        char *o = buf;
        size_t n = 0;
        for (size_t pi = 0; pi < found->n_segs; pi++) {
                if (!found->names[pi])
                        continue;
                const char *vs = ps.start[first[pi]];
                size_t vl = (size_t) (ps.start[last[pi]] + ps.len[last[pi]] - vs);
                memcpy(o, vs, vl);
                o[vl] = '\0';
                params[n].name = found->names[pi];
                params[n].value = o;
                o += vl + 1;
                n++;
        }
        *ret_route = found;
        *ret_n = n;
        *ret_buf = buf;
        return MOAT_HTTP_MATCH_OK;
}

/* ---- responses ---- */

enum response_kind {
        RESPONSE_BUFFER,
        RESPONSE_STREAM,
        RESPONSE_HIJACK,
};

struct header {
        char *name;
        char *value;
};

struct moat_http_response {
        int status;
        enum response_kind kind;
        char *content_type;
        void *data;
        size_t len;
        struct header *headers;
        size_t n_headers;
        moat_http_producer_fn produce;
        moat_http_hijack_fn hijack;
        void *userdata;
        void (*free_userdata)(void *);
};

struct moat_http_stream {
        struct moat_http_server *server;
        int conn_fd;
        moat_http_producer_fn produce;
        void *userdata;
        void (*free_userdata)(void *);
};

struct moat_http_hijack {
        struct moat_http_hijack *next;  /* the server's list of running hijacks */
        struct moat_http_server *server;
        int fd;
        struct MHD_UpgradeResponseHandle *urh;
        char *extra;
        size_t extra_len, extra_off;
        moat_http_hijack_fn fn;
        void *userdata;
        void (*free_userdata)(void *);
};

int moat_http_status_for_errno(int r)
{
        switch (r < 0 ? -r : r) {
        case ENOENT:
        case ESRCH:
                return 404;
        case EEXIST:
        case EBUSY:
        case ENOTEMPTY:
                return 409;
        case EINVAL:
        case E2BIG:
        case ERANGE:
        case EBADMSG:
        case ENAMETOOLONG:
                return 400;
        case EPERM:
        case EACCES:
                return 403;
        case EOPNOTSUPP:
        case ENOSYS:
                return 501;
        case EALREADY:
                return 304;
        case EFBIG:
        case EMSGSIZE:
                return 413;
        default:
                return 500;
        }
}

static struct moat_http_response *response_new(int status, enum response_kind kind)
{
        struct moat_http_response *resp = calloc(1, sizeof(*resp));
        if (resp) {
                resp->status = status;
                resp->kind = kind;
        }
        return resp;
}

void moat_http_response_free(struct moat_http_response *resp)
{
        if (!resp)
                return;
        free(resp->content_type);
        free(resp->data);
        for (size_t i = 0; i < resp->n_headers; i++) {
                free(resp->headers[i].name);
                free(resp->headers[i].value);
        }
        free(resp->headers);
        if (resp->free_userdata && resp->userdata)
                resp->free_userdata(resp->userdata);
        free(resp);
}

DEFINE_CLEANUP_FUNC(struct moat_http_response *, moat_http_response_free)

struct moat_http_response *moat_http_response_bytes(int status, const char *content_type, void *data, size_t len)
{
        struct moat_http_response *resp = response_new(status, RESPONSE_BUFFER);
        if (!resp || (content_type && !(resp->content_type = strdup(content_type)))) {
                free(data);
                moat_http_response_free(resp);
                return NULL;
        }
        resp->data = data;
        resp->len = len;
        return resp;
}

struct moat_http_response *moat_http_response_empty(int status)
{
        return response_new(status, RESPONSE_BUFFER);
}

struct moat_http_response *moat_http_response_json(int status, json_t *body)
{
        /* moby's json.Encoder ends every document with a newline. */
        char *s = json_dumps(body, JSON_COMPACT | JSON_ENCODE_ANY);
        json_decref(body);
        if (!s)
                return NULL;
        size_t len = strlen(s);
        char *data = realloc(s, len + 2);
        if (!data) {
                free(s);
                return NULL;
        }
        data[len] = '\n';
        data[len + 1] = '\0';
        return moat_http_response_bytes(status, "application/json", data, len + 1);
}

struct moat_http_response *moat_http_response_error(int status, const char *fmt, ...)
{
        va_list ap;
        char *msg = NULL;
        va_start(ap, fmt);
        int r = vasprintf(&msg, fmt, ap);
        va_end(ap);
        if (r < 0)
                return NULL;
        json_t *body = json_pack("{s:s}", "message", msg);
        free(msg);
        if (!body)
                return NULL;
        return moat_http_response_json(status, body);
}

struct moat_http_response *moat_http_response_from_error(int r, const struct moat_error *err)
{
        return moat_http_response_error(moat_http_status_for_errno(r), "%s",
                                        err && err->msg ? err->msg : strerror(r < 0 ? -r : r));
}

struct moat_http_response *moat_http_response_stream(int status, const char *content_type,
                                                     moat_http_producer_fn produce, void *userdata,
                                                     void (*free_userdata)(void *))
{
        struct moat_http_response *resp = response_new(status, RESPONSE_STREAM);
        if (!resp || (content_type && !(resp->content_type = strdup(content_type)))) {
                if (free_userdata && userdata)
                        free_userdata(userdata);
                moat_http_response_free(resp);
                return NULL;
        }
        resp->produce = produce;
        resp->userdata = userdata;
        resp->free_userdata = free_userdata;
        return resp;
}

struct moat_http_response *moat_http_response_hijack(const char *content_type, moat_http_hijack_fn fn, void *userdata,
                                                     void (*free_userdata)(void *))
{
        struct moat_http_response *resp = response_new(MHD_HTTP_SWITCHING_PROTOCOLS, RESPONSE_HIJACK);
        if (!resp || (content_type && !(resp->content_type = strdup(content_type)))) {
                if (free_userdata && userdata)
                        free_userdata(userdata);
                moat_http_response_free(resp);
                return NULL;
        }
        resp->hijack = fn;
        resp->userdata = userdata;
        resp->free_userdata = free_userdata;
        return resp;
}

int moat_http_response_add_header(struct moat_http_response *resp, const char *name, const char *value)
{
        struct header *nh = realloc(resp->headers, (resp->n_headers + 1) * sizeof(*nh));
        if (!nh)
                return -ENOMEM;
        resp->headers = nh;
        nh[resp->n_headers] = (struct header) { strdup(name), strdup(value) };
        if (!nh[resp->n_headers].name || !nh[resp->n_headers].value) {
                free(nh[resp->n_headers].name);
                free(nh[resp->n_headers].value);
                return -ENOMEM;
        }
        resp->n_headers++;
        return 0;
}

/* ---- server and requests ---- */

struct moat_http_server {
        struct MHD_Daemon *mhd;
        struct moat_http_router *router;
        char *server_header;
        int listen_fd;
        int cancel_fd;                  /* eventfd, readable once stopping */
        atomic_uint requests;           /* between the request line and the end of the response */
        atomic_bool stopping;
        pthread_mutex_t lock;
        struct moat_http_hijack *hijacks;   /* running hijack handlers, under lock */
        unsigned n_hijacks;
};

/* Per connection (MHD's socket context): the peer and a hijack whose 101
 * has been queued but whose upgrade callback has not run yet. */
struct conn_ctx {
        int fd;
        pid_t pid;
        uid_t uid;
        gid_t gid;
        struct moat_http_hijack *pending_hijack;
};

struct moat_http_request {
        struct moat_http_server *server;
        struct MHD_Connection *conn;
        struct conn_ctx *cc;
        char *target;
        char *method;
        char *path_full;
        const char *path;
        struct moat_http_param *query;
        size_t n_query;
        unsigned major, minor;
        const struct moat_http_route *route;
        struct moat_http_path_param params[MOAT_HTTP_MAX_PATH_PARAMS];
        size_t n_params;
        char *params_buf;
        bool started, queued;
        int status;
        struct timespec t0;

        char *body;
        size_t body_len, max_body;
        bool too_large;

        /* streaming bodies */
        int body_fds[2];                /* [0] the handler reads, [1] the connection thread writes */
        bool body_dropped;              /* the handler stopped reading; the rest is discarded */
        pthread_t worker;
        bool worker_running;
        atomic_bool body_complete;
        struct moat_http_response *worker_resp;
};

static void hijack_free(struct moat_http_hijack *h)
{
        if (!h)
                return;
        if (h->free_userdata && h->userdata)
                h->free_userdata(h->userdata);
        free(h->extra);
        free(h);
}

/* ---- requests ---- */

const char *moat_http_request_method(const struct moat_http_request *req)
{
        return req->method;
}

const char *moat_http_request_path(const struct moat_http_request *req)
{
        return req->path;
}

void moat_http_request_version(const struct moat_http_request *req, unsigned *major, unsigned *minor)
{
        *major = req->major;
        *minor = req->minor;
}

bool moat_http_request_version_ge(const struct moat_http_request *req, unsigned major, unsigned minor)
{
        return version_cmp(req->major, req->minor, major, minor) >= 0;
}

const char *moat_http_request_param(const struct moat_http_request *req, const char *name)
{
        for (size_t i = 0; i < req->n_params; i++)
                if (streq(req->params[i].name, name))
                        return req->params[i].value;
        return NULL;
}

const char *moat_http_request_query(const struct moat_http_request *req, const char *key)
{
        for (size_t i = 0; i < req->n_query; i++)
                if (streq(req->query[i].key, key))
                        return req->query[i].value;
        return NULL;
}

size_t moat_http_request_query_all(const struct moat_http_request *req, const struct moat_http_param **ret)
{
        *ret = req->query;
        return req->n_query;
}

bool moat_http_request_query_bool(const struct moat_http_request *req, const char *key)
{
        return moat_http_bool_value(moat_http_request_query(req, key));
}

const char *moat_http_request_header(const struct moat_http_request *req, const char *name)
{
        return MHD_lookup_connection_value(req->conn, MHD_HEADER_KIND, name);
}

const void *moat_http_request_body(const struct moat_http_request *req, size_t *ret_len)
{
        *ret_len = req->body_len;
        return req->body ? req->body : "";
}

int moat_http_request_json(const struct moat_http_request *req, json_t **ret, struct moat_error **reterr)
{
        if (req->body_len == 0) {
                *ret = json_object();
                return *ret ? 0 : moat_error_set(reterr, -ENOMEM, "request body");
        }
        json_error_t jerr;
        json_t *j = json_loadb(req->body, req->body_len, JSON_REJECT_DUPLICATES, &jerr);
        if (!j)
                return moat_error_setx(reterr, -EINVAL, "invalid JSON in the request body: %s at line %d column %d",
                                       jerr.text, jerr.line, jerr.column);
        if (!json_is_object(j)) {
                json_decref(j);
                return moat_error_setx(reterr, -EINVAL, "invalid JSON in the request body: expected an object");
        }
        *ret = j;
        return 0;
}

int moat_http_request_body_fd(const struct moat_http_request *req)
{
        return req->body_fds[0];
}

bool moat_http_request_body_complete(const struct moat_http_request *req)
{
        return atomic_load(&req->body_complete);
}

void moat_http_request_peer(const struct moat_http_request *req, pid_t *pid, uid_t *uid, gid_t *gid)
{
        if (pid)
                *pid = req->cc ? req->cc->pid : -1;
        if (uid)
                *uid = req->cc ? req->cc->uid : (uid_t) -1;
        if (gid)
                *gid = req->cc ? req->cc->gid : (gid_t) -1;
}

struct moat_http_server *moat_http_request_server(const struct moat_http_request *req)
{
        return req->server;
}

int moat_http_server_cancel_fd(const struct moat_http_server *s)
{
        return s->cancel_fd;
}

/* ---- waiting that ends when the client leaves or the server stops ---- */

static int wait_common(struct moat_http_server *server, int conn_fd, bool conn_readable, int fd, short events,
                       int timeout_ms)
{
        struct pollfd p[3] = {
                { .fd = server->cancel_fd, .events = POLLIN },
                { .fd = conn_fd, .events = conn_readable ? POLLIN | POLLRDHUP : POLLRDHUP },
                { .fd = fd, .events = events },
        };
        for (;;) {
                int r = poll(p, fd >= 0 ? 3 : 2, timeout_ms);
                if (r < 0 && errno == EINTR)
                        continue;
                if (r < 0)
                        return -errno;
                if (r == 0)
                        return 0;
                if (p[0].revents)
                        return -ECANCELED;
                if (fd >= 0 && p[2].revents)
                        return 1;
                if (conn_readable && p[1].revents)
                        return 2;
                if (p[1].revents)
                        return -EPIPE;
        }
}

int moat_http_stream_wait(struct moat_http_stream *s, int fd, short events, int timeout_ms)
{
        return wait_common(s->server, s->conn_fd, false, fd, events, timeout_ms);
}

int moat_http_hijack_wait(struct moat_http_hijack *h, int fd, short events, int timeout_ms)
{
        if (h->extra_off < h->extra_len)
                return 2;
        return wait_common(h->server, h->fd, true, fd, events, timeout_ms);
}

int moat_http_hijack_fd(const struct moat_http_hijack *h)
{
        return h->fd;
}

ssize_t moat_http_hijack_read(struct moat_http_hijack *h, void *buf, size_t len)
{
        if (h->extra_off < h->extra_len) {
                size_t n = h->extra_len - h->extra_off;
                if (n > len)
                        n = len;
                memcpy(buf, h->extra + h->extra_off, n);
                h->extra_off += n;
                return (ssize_t) n;
        }
        for (;;) {
                ssize_t n = recv(h->fd, buf, len, 0);
                if (n >= 0)
                        return n;
                if (errno == EINTR)
                        continue;
                if (errno == ECONNRESET || errno == EPIPE)
                        return 0;
                return -errno;
        }
}

int moat_http_hijack_write(struct moat_http_hijack *h, const void *buf, size_t len)
{
        const char *p = buf;
        while (len > 0) {
                ssize_t n = send(h->fd, p, len, MSG_NOSIGNAL);
                if (n < 0 && errno == EINTR)
                        continue;
                if (n < 0)
                        return -errno;
                p += n;
                len -= (size_t) n;
        }
        return 0;
}

int moat_http_hijack_close_write(struct moat_http_hijack *h)
{
        return RET_NERRNO(shutdown(h->fd, SHUT_WR));
}

/* ---- MHD callbacks ---- */

static ssize_t stream_reader(void *cls, uint64_t pos, char *buf, size_t max)
{
        struct moat_http_stream *s = cls;
        if (atomic_load(&s->server->stopping))
                return MHD_CONTENT_READER_END_WITH_ERROR;
        ssize_t n = s->produce(s, s->userdata, buf, max);
        if (n > 0)
                return n;
        return n == 0 ? MHD_CONTENT_READER_END_OF_STREAM : MHD_CONTENT_READER_END_WITH_ERROR;
}

static void stream_free(void *cls)
{
        struct moat_http_stream *s = cls;
        if (s->free_userdata && s->userdata)
                s->free_userdata(s->userdata);
        free(s);
}

static void upgrade_cb(void *cls, struct MHD_Connection *connection, void *con_cls, const char *extra_in,
                       size_t extra_in_size, MHD_socket sock, struct MHD_UpgradeResponseHandle *urh)
{
        const union MHD_ConnectionInfo *ci = MHD_get_connection_info(connection, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
        struct conn_ctx *cc = ci ? ci->socket_context : NULL;
        struct moat_http_hijack *h = cls;

        if (cc && cc->pending_hijack == h)
                cc->pending_hijack = NULL;
        h->fd = sock;
        h->urh = urh;
        if (extra_in_size > 0 && (h->extra = malloc(extra_in_size))) {
                memcpy(h->extra, extra_in, extra_in_size);
                h->extra_len = extra_in_size;
        }
        int flags = fcntl(sock, F_GETFL);
        if (flags >= 0 && h->extra_len == extra_in_size)
                (void) fcntl(sock, F_SETFL, flags & ~O_NONBLOCK);
        struct moat_http_server *s = h->server;
        pthread_mutex_lock(&s->lock);
        h->next = s->hijacks;
        s->hijacks = h;
        s->n_hijacks++;
        pthread_mutex_unlock(&s->lock);
        /* Let the client read the 101 before any stream byte follows it:
         * clients that read the head with a buffering HTTP parser and then
         * the raw socket (docker-py) lose what came in the same read
         * (docker/docker-py#2042). Nothing says when the peer has read, so
         * this looks again after naps growing from 50 us (a client that
         * reads at once is not kept waiting) to 5 ms. Bounded: 200 ms. */
        long nap_ns = 50 * 1000, waited_ns = 0;
        while (waited_ns < 200L * 1000 * 1000) {
                int queued = 0;
                if (ioctl(sock, SIOCOUTQ, &queued) < 0 || queued <= 0)
                        break;
                struct timespec nap = { 0, nap_ns };
                nanosleep(&nap, NULL);
                waited_ns += nap_ns;
                nap_ns = nap_ns * 2 > 5L * 1000 * 1000 ? 5L * 1000 * 1000 : nap_ns * 2;
        }
        if (flags >= 0 && h->extra_len == extra_in_size && !atomic_load(&s->stopping))
                h->fn(h, h->userdata);
        pthread_mutex_lock(&s->lock);
        for (struct moat_http_hijack **i = &s->hijacks; *i; i = &(*i)->next)
                if (*i == h) {
                        *i = h->next;
                        break;
                }
        s->n_hijacks--;
        pthread_mutex_unlock(&s->lock);
        MHD_upgrade_action(urh, MHD_UPGRADE_ACTION_CLOSE);
        hijack_free(h);
}

static void add_common_headers(struct moat_http_server *s, struct MHD_Response *r)
{
        MHD_add_response_header(r, "Api-Version", MOAT_API_VERSION);
        MHD_add_response_header(r, "Docker-Experimental", "false");
        MHD_add_response_header(r, "Ostype", "linux");
        MHD_add_response_header(r, "Server", s->server_header);
}

/* Hand resp (consumed) to MHD for req. */
static enum MHD_Result queue(struct moat_http_request *req, struct moat_http_response *resp)
{
        _cleanup_(moat_http_response_freep) struct moat_http_response *owned = resp;
        struct MHD_Response *r = NULL;

        if (!owned)
                owned = moat_http_response_error(500, "out of memory");
        if (!owned)
                return MHD_NO;

        if (owned->kind == RESPONSE_HIJACK) {
                const char *up = moat_http_request_header(req, "Upgrade");
                if (!up || !req->cc) {
                        /* Every docker client asks for the upgrade; without it the
                         * connection would need HTTP/1.0-style raw streaming. */
                        moat_http_response_free(TAKE_PTR(owned));
                        owned = moat_http_response_error(400, "this endpoint hijacks the connection: "
                                                              "the request needs \"Connection: Upgrade\" and "
                                                              "\"Upgrade: tcp\"");
                        if (!owned)
                                return MHD_NO;
                }
        }

        switch (owned->kind) {
        case RESPONSE_BUFFER:
                r = MHD_create_response_from_buffer(owned->len, owned->data ? owned->data : (void *) "",
                                                    owned->data ? MHD_RESPMEM_MUST_FREE : MHD_RESPMEM_PERSISTENT);
                if (r)
                        owned->data = NULL;
                break;
        case RESPONSE_STREAM: {
                struct moat_http_stream *st = calloc(1, sizeof(*st));
                const union MHD_ConnectionInfo *ci = MHD_get_connection_info(req->conn,
                                                                             MHD_CONNECTION_INFO_CONNECTION_FD);
                if (!st || !ci) {
                        free(st);
                        return MHD_NO;
                }
                *st = (struct moat_http_stream) {
                        .server = req->server,
                        .conn_fd = ci->connect_fd,
                        .produce = owned->produce,
                        .userdata = TAKE_PTR(owned->userdata),
                        .free_userdata = owned->free_userdata,
                };
                r = MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, 64 * 1024, stream_reader, st, stream_free);
                if (!r) {
                        stream_free(st);
                        return MHD_NO;
                }
                break;
        }
        case RESPONSE_HIJACK: {
                struct moat_http_hijack *h = calloc(1, sizeof(*h));
                if (!h)
                        return MHD_NO;
                *h = (struct moat_http_hijack) {
                        .server = req->server,
                        .fd = -EBADF,
                        .fn = owned->hijack,
                        .userdata = TAKE_PTR(owned->userdata),
                        .free_userdata = owned->free_userdata,
                };
                r = MHD_create_response_for_upgrade(upgrade_cb, h);
                if (!r) {
                        hijack_free(h);
                        return MHD_NO;
                }
                hijack_free(req->cc->pending_hijack);
                req->cc->pending_hijack = h;
                MHD_add_response_header(r, MHD_HTTP_HEADER_UPGRADE, "tcp");
                break;
        }
        }
        if (!r)
                return MHD_NO;
        add_common_headers(req->server, r);
        if (owned->content_type)
                MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, owned->content_type);
        for (size_t i = 0; i < owned->n_headers; i++)
                MHD_add_response_header(r, owned->headers[i].name, owned->headers[i].value);
        req->status = owned->status;
        req->queued = true;
        enum MHD_Result ret = MHD_queue_response(req->conn, (unsigned) owned->status, r);
        MHD_destroy_response(r);
        return ret;
}

static void *uri_log_cb(void *cls, const char *uri, struct MHD_Connection *con)
{
        struct moat_http_request *req = calloc(1, sizeof(*req));
        if (!req)
                return NULL;
        req->server = cls;
        atomic_fetch_add(&req->server->requests, 1);
        req->body_fds[0] = req->body_fds[1] = -EBADF;
        req->target = strdup(uri);
        clock_gettime(CLOCK_MONOTONIC, &req->t0);
        return req;
}

static void *body_worker(void *p)
{
        struct moat_http_request *req = p;
        req->worker_resp = req->route->fn(req, req->route->userdata);
        /* The connection thread's next write fails instead of blocking. */
        (void) shutdown(req->body_fds[0], SHUT_RD);
        return NULL;
}

static void worker_join(struct moat_http_request *req)
{
        if (!req->worker_running)
                return;
        req->body_fds[1] = safe_close(req->body_fds[1]);
        pthread_join(req->worker, NULL);
        req->worker_running = false;
}

/* Write to the worker; -EPIPE once it stopped reading, -ECANCELED when the
 * server stops. */
static int feed_worker(struct moat_http_request *req, const char *p, size_t len)
{
        while (len > 0) {
                ssize_t n = send(req->body_fds[1], p, len, MSG_NOSIGNAL | MSG_DONTWAIT);
                if (n < 0 && errno == EINTR)
                        continue;
                if (n < 0 && errno == EAGAIN) {
                        struct pollfd pf[2] = {
                                { .fd = req->body_fds[1], .events = POLLOUT },
                                { .fd = req->server->cancel_fd, .events = POLLIN },
                        };
                        if (poll(pf, 2, -1) < 0 && errno != EINTR)
                                return -errno;
                        if (pf[1].revents)
                                return -ECANCELED;
                        continue;
                }
                if (n < 0)
                        return -errno;
                p += n;
                len -= (size_t) n;
        }
        return 0;
}

/* From the request line and headers alone: the route, or the error to answer. */
static struct moat_http_response *prepare(struct moat_http_request *req)
{
        _cleanup_error_ struct moat_error *err = NULL;
        int r;

        if (!req->target)
                return moat_http_response_error(500, "out of memory");
        r = moat_http_split_target(req->target, &req->path_full, &req->query, &req->n_query, &err);
        if (r < 0)
                return moat_http_response_error(strlen(req->target) > MOAT_HTTP_MAX_TARGET ? 414 : 400, "%s",
                                                err->msg);
        r = moat_http_parse_version_prefix(req->path_full, &req->major, &req->minor, &req->path, &err);
        if (r < 0)
                return moat_http_response_error(400, "%s", err->msg);

        switch (moat_http_router_match(req->server->router, req->method, req->path, &req->route, req->params,
                                       &req->n_params, &req->params_buf)) {
        case MOAT_HTTP_MATCH_OK:
                break;
        case MOAT_HTTP_MATCH_BAD_METHOD:
                return moat_http_response_error(405, "method %s is not allowed on %s", req->method, req->path);
        case MOAT_HTTP_MATCH_NO_MEMORY:
                return moat_http_response_error(500, "out of memory");
        case MOAT_HTTP_MATCH_NO_ROUTE:
        default:
                return moat_http_response_error(404, "page not found");
        }

        req->max_body = req->route->opts.max_body ? req->route->opts.max_body : MOAT_HTTP_DEFAULT_MAX_BODY;
        const char *cl = moat_http_request_header(req, MHD_HTTP_HEADER_CONTENT_LENGTH);
        uint64_t len;
        if (!req->route->opts.stream_body && cl && safe_atou64(cl, &len) >= 0 && len > req->max_body)
                return moat_http_response_error(413, "request body of %" PRIu64 " bytes is larger than the limit of "
                                                "%zu bytes for %s %s", len, req->max_body, req->method, req->path);
        if (req->route->opts.stream_body) {
                if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, req->body_fds) < 0)
                        return moat_http_response_error(500, "request body channel: %m");
                if (pthread_create(&req->worker, NULL, body_worker, req) != 0)
                        return moat_http_response_error(500, "request body worker: cannot create a thread");
                req->worker_running = true;
        }
        return NULL;
}

static enum MHD_Result access_cb(void *cls, struct MHD_Connection *conn, const char *url, const char *method,
                                 const char *version, const char *upload_data, size_t *upload_data_size,
                                 void **con_cls)
{
        struct moat_http_request *req = *con_cls;
        if (!req)
                return MHD_NO;

        if (!req->started) {
                req->started = true;
                req->conn = conn;
                const union MHD_ConnectionInfo *ci = MHD_get_connection_info(conn,
                                                                             MHD_CONNECTION_INFO_SOCKET_CONTEXT);
                req->cc = ci ? ci->socket_context : NULL;
                req->method = strdup(method);
                if (!req->method)
                        return MHD_NO;
                struct moat_http_response *early = prepare(req);
                if (early)
                        return queue(req, early);
                return MHD_YES;
        }
        if (req->queued) {
                *upload_data_size = 0;
                return MHD_YES;
        }

        if (*upload_data_size > 0) {
                size_t n = *upload_data_size;
                *upload_data_size = 0;
                if (req->route->opts.stream_body) {
                        if (req->body_dropped)
                                return MHD_YES;
                        int r = feed_worker(req, upload_data, n);
                        if (r == -ECANCELED)
                                return MHD_NO;
                        if (r < 0) {
                                /* The handler stopped reading (it answered early): MHD
                                 * takes no response in the middle of a body, so the
                                 * rest is read and dropped and the answer goes out at
                                 * its end, where a client looks for it. The body's
                                 * size was bounded by the handler, not here: a client
                                 * sending forever is cut by the idle timeout. */
                                req->body_dropped = true;
                        }
                        return MHD_YES;
                }
                if (req->too_large)
                        return MHD_YES;
                if (n > req->max_body - req->body_len) {
                        /* MHD takes no response in the middle of a body: the rest is
                         * read and dropped, and 413 goes out at its end. */
                        req->too_large = true;
                        free(req->body);
                        req->body = NULL;
                        req->body_len = 0;
                        return MHD_YES;
                }
                char *nb = realloc(req->body, req->body_len + n + 1);
                if (!nb)
                        return MHD_NO;
                req->body = nb;
                memcpy(req->body + req->body_len, upload_data, n);
                req->body_len += n;
                req->body[req->body_len] = '\0';
                return MHD_YES;
        }

        if (req->route->opts.stream_body) {
                atomic_store(&req->body_complete, true);
                worker_join(req);
                return queue(req, TAKE_PTR(req->worker_resp));
        }
        if (req->too_large)
                return queue(req, moat_http_response_error(413, "request body is larger than the limit of %zu bytes "
                                                                "for %s %s", req->max_body, req->method, req->path));
        return queue(req, req->route->fn(req, req->route->userdata));
}

static void completed_cb(void *cls, struct MHD_Connection *conn, void **con_cls, enum MHD_RequestTerminationCode toe)
{
        struct moat_http_request *req = *con_cls;
        if (!req)
                return;
        *con_cls = NULL;
        worker_join(req);
        if (log_debug_enabled()) {
                struct timespec t1;
                clock_gettime(CLOCK_MONOTONIC, &t1);
                long ms = (t1.tv_sec - req->t0.tv_sec) * 1000 + (t1.tv_nsec - req->t0.tv_nsec) / 1000000;
                log_debug("api request method=%s target=\"%.256s\" status=%d ms=%ld uid=%d pid=%d%s",
                          req->method ? req->method : "?", req->target ? req->target : "?", req->status, ms,
                          req->cc ? (int) req->cc->uid : -1, req->cc ? (int) req->cc->pid : -1,
                          toe == MHD_REQUEST_TERMINATED_COMPLETED_OK ? "" : " terminated=early");
        }
        moat_http_response_free(req->worker_resp);
        safe_close(req->body_fds[0]);
        safe_close(req->body_fds[1]);
        free(req->body);
        free(req->params_buf);
        moat_http_params_free(req->query, req->n_query);
        free(req->path_full);
        free(req->method);
        free(req->target);
        atomic_fetch_sub(&req->server->requests, 1);
        free(req);
}

static void connection_cb(void *cls, struct MHD_Connection *conn, void **socket_context,
                          enum MHD_ConnectionNotificationCode toe)
{
        if (toe == MHD_CONNECTION_NOTIFY_STARTED) {
                struct conn_ctx *cc = calloc(1, sizeof(*cc));
                if (!cc)
                        return;
                cc->pid = -1;
                cc->uid = (uid_t) -1;
                cc->gid = (gid_t) -1;
                const union MHD_ConnectionInfo *ci = MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CONNECTION_FD);
                cc->fd = ci ? ci->connect_fd : -EBADF;
                struct ucred cred;
                socklen_t len = sizeof(cred);
                if (cc->fd >= 0 && getsockopt(cc->fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) == 0) {
                        cc->pid = cred.pid;
                        cc->uid = cred.uid;
                        cc->gid = cred.gid;
                }
                *socket_context = cc;
        } else if (toe == MHD_CONNECTION_NOTIFY_CLOSED) {
                struct conn_ctx *cc = *socket_context;
                if (cc) {
                        hijack_free(cc->pending_hijack);
                        free(cc);
                        *socket_context = NULL;
                }
        }
}

int moat_http_server_start(const struct moat_http_server_config *cfg, struct moat_http_router *router,
                           struct moat_http_server **ret, struct moat_error **reterr)
{
        _cleanup_close_ int lfd = cfg->listen_fd;
        struct moat_http_server *s = calloc(1, sizeof(*s));
        if (!s)
                return moat_error_set(reterr, -ENOMEM, "http server");
        s->router = router;
        s->listen_fd = -EBADF;
        s->server_header = strdup(cfg->server_header ? cfg->server_header : "Moat (linux)");
        pthread_mutex_init(&s->lock, NULL);
        s->cancel_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
        if (!s->server_header || s->cancel_fd < 0) {
                int r = moat_error_set(reterr, s->server_header ? errno : ENOMEM, "http server set-up");
                safe_close(s->cancel_fd);
                free(s->server_header);
                free(s);
                return r;
        }
        unsigned limit = cfg->max_connections ? cfg->max_connections : MOAT_HTTP_MAX_CONNECTIONS;
        s->mhd = MHD_start_daemon(MHD_USE_THREAD_PER_CONNECTION | MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_ITC |
                                          MHD_ALLOW_UPGRADE | MHD_USE_POLL,
                                  0, NULL, NULL, access_cb, s,
                                  MHD_OPTION_LISTEN_SOCKET, (MHD_socket) lfd,
                                  MHD_OPTION_CONNECTION_LIMIT, limit,
                                  MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t) MOAT_HTTP_HEADER_MEMORY,
                                  MHD_OPTION_CONNECTION_TIMEOUT, (unsigned) MOAT_HTTP_IDLE_TIMEOUT_SEC,
                                  MHD_OPTION_URI_LOG_CALLBACK, uri_log_cb, s,
                                  MHD_OPTION_NOTIFY_COMPLETED, completed_cb, s,
                                  MHD_OPTION_NOTIFY_CONNECTION, connection_cb, NULL,
                                  MHD_OPTION_END);
        if (!s->mhd) {
                int r = moat_error_set(reterr, errno ? errno : EIO, "start the HTTP server (libmicrohttpd)");
                safe_close(s->cancel_fd);
                free(s->server_header);
                free(s);
                return r;
        }
        s->listen_fd = TAKE_FD(lfd);
        *ret = s;
        return 0;
}

void moat_http_server_stop(struct moat_http_server *s, int grace_ms)
{
        if (!s)
                return;
        MHD_socket lfd = MHD_quiesce_daemon(s->mhd);
        if (lfd != MHD_INVALID_SOCKET)
                close(lfd);
        s->listen_fd = -EBADF;
        atomic_store(&s->stopping, true);
        uint64_t one = 1;
        if (write(s->cancel_fd, &one, sizeof(one)) < 0) {
                /* An eventfd write fails only on overflow, and it is already readable then. */
        }
        /* In-flight requests get grace_ms, idle keep-alive connections none;
         * then hijacked sockets are cut so their handlers' I/O fails. */
        struct timespec t0, t;
        bool cut = false;
        clock_gettime(CLOCK_MONOTONIC, &t0);
        for (;;) {
                pthread_mutex_lock(&s->lock);
                unsigned hj = s->n_hijacks;
                if (cut)
                        for (struct moat_http_hijack *h = s->hijacks; h; h = h->next)
                                (void) shutdown(h->fd, SHUT_RDWR);
                pthread_mutex_unlock(&s->lock);
                if (hj == 0 && atomic_load(&s->requests) == 0)
                        break;
                clock_gettime(CLOCK_MONOTONIC, &t);
                long ms = (t.tv_sec - t0.tv_sec) * 1000 + (t.tv_nsec - t0.tv_nsec) / 1000000;
                if (!cut && ms >= grace_ms) {
                        cut = true;
                        continue;
                }
                if (cut && ms >= grace_ms + 2000)
                        break;
                struct timespec nap = { 0, 20 * 1000 * 1000 };
                nanosleep(&nap, NULL);
        }
        /* Closes what is left and joins every connection thread. */
        MHD_stop_daemon(s->mhd);
        pthread_mutex_destroy(&s->lock);
        safe_close(s->cancel_fd);
        free(s->server_header);
        free(s);
}
