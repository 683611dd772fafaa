/* SPDX-License-Identifier: Apache-2.0 */
#include "base/compat.h"

/*
 * The Docker Engine API client of moat's verbs (see client.h), over
 * http-conn.c (HTTP/1.1 on the unix socket, parsed by http-parser; why not
 * libcurl is said there). The client keeps one connection alive for its
 * calls, streams and transfers; a pending request has a connection of its
 * own, polled with the caller's descriptors; a hijack asks for an upgrade
 * on a connection of its own and takes its socket, with the bytes that
 * came after the response head, once the daemon answered 101 (or 200
 * with a raw stream). Half-close is shutdown(SHUT_WR) on that socket.
 *
 * Every reply is bounded: buffered bodies by MOAT_CLIENT_MAX_REPLY, heads
 * by http-conn's MOAT_HTTP_HEAD_MAX, an error body by ERROR_MAX.
 */

#include "cli/client.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include "base/cleanup.h"
#include "cli/http-conn.h"
#include "moat-config.h"

#define ERROR_MAX (1024u * 1024)
#define HOST_HEADER "api.moby.localhost"
#define USER_AGENT "User-Agent: moat/" MOAT_VERSION " (linux)"

struct moat_client {
        char *host;
        char *socket_path;
        char *version;
        struct moat_http_conn *conn;
};

/* ---- small helpers ---------------------------------------------------- */

int moat_write_all(int fd, const void *buf, size_t len)
{
        const char *p = buf;
        while (len > 0) {
                ssize_t n = write(fd, p, len);
                if (n < 0) {
                        if (errno == EINTR)
                                continue;
                        if (errno == EAGAIN) {
                                struct pollfd pfd = { .fd = fd, .events = POLLOUT };
                                (void) poll(&pfd, 1, -1);
                                continue;
                        }
                        return -errno;
                }
                p += n;
                len -= (size_t) n;
        }
        return 0;
}

char *moat_client_escape(const char *s)
{
        static const char hex[] = "0123456789ABCDEF";
        char *out = malloc(strlen(s) * 3 + 1), *o = out;
        if (!out)
                return NULL;
        for (const unsigned char *p = (const unsigned char *) s; *p; p++) {
                if ((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
                    strchr("-._~", *p))
                        *o++ = (char) *p;
                else {
                        *o++ = '%';
                        *o++ = hex[*p >> 4];
                        *o++ = hex[*p & 15];
                }
        }
        *o = 0;
        return out;
}

/* The docker client's classes of daemon errors. */
static int errno_for_status(long status)
{
        switch (status) {
        case 304:
                return -EALREADY;
        case 400:
                return -EINVAL;
        case 401:
        case 403:
                return -EPERM;
        case 404:
                return -ENOENT;
        case 409:
                return -EEXIST;
        case 501:
                return -EOPNOTSUPP;
        case 503:
                return -EAGAIN;
        default:
                return status >= 400 && status < 500 ? -EINVAL : -EIO;
        }
}

/* "Error response from daemon: <message>" from an error reply's body. */
static int daemon_error(long status, const char *body, size_t len, const char *target,
                        struct moat_error **reterr)
{
        int r = errno_for_status(status);
        json_error_t jerr;
        json_t *j = len ? json_loadb(body, len, 0, &jerr) : NULL;
        const char *msg = json_string_value(json_object_get(j, "message"));

        if (msg)
                r = moat_error_setx(reterr, r, "Error response from daemon: %s", msg);
        else if (len > 0) {
                size_t l = len;
                while (l > 0 && (body[l - 1] == '\n' || body[l - 1] == '\r'))
                        l--;
                r = moat_error_setx(reterr, r, "Error response from daemon: %.*s", (int) (l > 4096 ? 4096 : l), body);
        } else
                r = moat_error_setx(reterr, r,
                                    "Error response from daemon: request returned %ld for API route %s, check if the "
                                    "server supports the requested API version",
                                    status, target);
        json_decref(j);
        return r;
}

static int connect_error(struct moat_client *c, struct moat_error **reterr)
{
        return moat_error_setx(reterr, -ECONNREFUSED,
                               "Cannot connect to the moat daemon at %s. Is the moat daemon running?", c->host);
}

/* Move a lower layer's error up (or drop it when the caller's own error
 * is what is returned). */
static int pass_error(struct moat_error **reterr, struct moat_error *e, int r)
{
        if (reterr && !*reterr && e)
                *reterr = e;
        else
                moat_error_free(e);
        return r;
}

/* ---- the client ------------------------------------------------------- */

int moat_client_new(const char *host, struct moat_client **ret, struct moat_error **reterr)
{
        _cleanup_free_ struct moat_client *c = calloc(1, sizeof(*c));
        int r;

        if (!c)
                return moat_error_set(reterr, -ENOMEM, "client");
        if (!host)
                host = getenv("MOAT_HOST");
        if (strempty(host))
                host = MOAT_CLIENT_DEFAULT_HOST;
        if (startswith(host, "tcp://") || startswith(host, "ssh://") || startswith(host, "fd://"))
                return moat_error_setx(reterr, -EOPNOTSUPP, "host \"%s\": only unix:// sockets are supported", host);
        if (!startswith(host, "unix://") || strlen(host) <= strlen("unix://") || strlen(host) > 4096)
                return moat_error_setx(reterr, -EINVAL, "host \"%.256s\": not a unix:///path/to/socket address", host);
        c->host = strdup(host);
        c->socket_path = strdup(host + strlen("unix://"));
        if (!c->host || !c->socket_path) {
                moat_client_free(TAKE_PTR(c));
                return moat_error_set(reterr, -ENOMEM, "client");
        }
        r = moat_http_conn_new(c->socket_path, &c->conn, reterr);
        if (r < 0) {
                moat_client_free(TAKE_PTR(c));
                return r;
        }
        *ret = TAKE_PTR(c);
        return 0;
}

void moat_client_free(struct moat_client *c)
{
        if (!c)
                return;
        moat_http_conn_free(c->conn);
        free(c->host);
        free(c->socket_path);
        free(c->version);
        free(c);
}

const char *moat_client_host(const struct moat_client *c)
{
        return c->host;
}

/* A reply being received: a success's body goes to fn when there is one,
 * anything else is kept (up to max). */
struct sink {
        char *data;
        size_t len, max;
        bool too_big;
        moat_client_data_fn fn;
        void *userdata;
        int fn_error;
        struct moat_client_transfer *t;         /* its want_header is kept once the head is in */
        bool header_kept;
};

static int keep_header(struct sink *s, const struct moat_http_response *resp)
{
        if (!s->t || !s->t->want_header || s->header_kept)
                return 0;
        s->header_kept = true;
        const char *v = moat_http_response_header(resp, s->t->want_header);
        free(s->t->header);
        s->t->header = v ? strdup(v) : NULL;
        return v && !s->t->header ? -ENOMEM : 0;
}

static int sink_body(const struct moat_http_response *resp, const char *data, size_t len, void *userdata,
                     struct moat_error **reterr)
{
        struct sink *s = userdata;
        int r = keep_header(s, resp);

        if (r < 0)
                return r;
        if (s->fn && resp->status < 400) {
                r = s->fn(data, len, s->userdata);
                if (r < 0)
                        s->fn_error = r;
                return r;
        }
        if (len > s->max - s->len) {
                s->too_big = true;
                return -EFBIG;
        }
        char *d = realloc(s->data, s->len + len + 1);
        if (!d)
                return -ENOMEM;
        memcpy(d + s->len, data, len);
        s->len += len;
        d[s->len] = 0;
        s->data = d;
        return 0;
}

/* Send method target on conn (versioned: under /v<version>) with a JSON
 * body or a streamed one, the reply's body to s. */
static int send_request(struct moat_client *c, struct moat_http_conn *conn, const char *method, const char *target,
                        bool versioned, json_t *body, const struct moat_client_transfer *t, const char *upgrade,
                        struct sink *s, struct moat_error **reterr)
{
        _cleanup_free_ char *path = NULL, *text = NULL, *ct = NULL;
        struct moat_error *e = NULL;
        const char *headers[3] = { USER_AGENT };
        int r;

        if (asprintf(&path, "%s%s%s", versioned ? "/v" : "", versioned ? c->version : "", target) < 0)
                return moat_error_set(reterr, -ENOMEM, "request");
        if (body) {
                text = json_dumps(body, JSON_COMPACT);
                if (!text)
                        return moat_error_set(reterr, -ENOMEM, "request body");
                headers[1] = "Content-Type: application/json";
        } else if (t && t->read) {
                if (asprintf(&ct, "Content-Type: %s", t->content_type ? t->content_type : "application/x-tar") < 0)
                        return moat_error_set(reterr, -ENOMEM, "request");
                headers[1] = ct;
        }
        struct moat_http_request req = {
                .method = method,
                .target = path,
                .host = HOST_HEADER,
                .headers = headers,
                .body = text,
                .body_len = text ? strlen(text) : 0,
                .source = t && t->read ? t->read : NULL,
                .source_data = t ? t->read_data : NULL,
                .source_length = -1,
                .upgrade = upgrade,
                .on_body = sink_body,
                .userdata = s,
        };
        r = moat_http_conn_connect(conn, &e);
        if (r < 0) {
                moat_error_free(e);
                return connect_error(c, reterr);
        }
        return moat_http_conn_request(conn, &req, reterr);
}

/* The error of a failed wait: the body callback's own, a reply too
 * large, a daemon that closed the connection without answering (docker's
 * "Cannot connect"), or the connection's. */
static int wait_error(struct moat_client *c, struct moat_http_conn *conn, struct sink *s, const char *method,
                      const char *target, int r, struct moat_error *e, struct moat_error **reterr)
{
        if (r == -ECONNRESET && !moat_http_conn_response(conn)->head_done) {
                moat_error_free(e);
                return connect_error(c, reterr);
        }
        if (s->fn_error < 0 && r == s->fn_error) {
                moat_error_free(e);
                return r;
        }
        if (s->too_big) {
                moat_error_free(e);
                return moat_error_setx(reterr, -EFBIG, "%s %s: the daemon's reply is larger than %zu bytes", method,
                                       target, s->max);
        }
        return pass_error(reterr, e, r);
}

static int version_cmp(const char *a, const char *b)
{
        unsigned amaj = 0, amin = 0, bmaj = 0, bmin = 0;
        (void) sscanf(a, "%u.%u", &amaj, &amin);
        (void) sscanf(b, "%u.%u", &bmaj, &bmin);
        if (amaj != bmaj)
                return amaj < bmaj ? -1 : 1;
        return amin < bmin ? -1 : amin > bmin;
}

static bool version_valid(const char *v)
{
        unsigned maj, min;
        char extra;
        return v && strlen(v) < 16 && sscanf(v, "%u.%u%c", &maj, &min, &extra) == 2;
}

/* docker's negotiation: the daemon's Api-Version when older than ours,
 * 1.24 when it sends none; $MOAT_API_VERSION pins it. */
static int negotiate(struct moat_client *c, struct moat_error **reterr)
{
        struct sink s = { .max = 4096 };
        struct moat_error *e = NULL;
        const char *pinned = getenv("MOAT_API_VERSION");
        char v[16] = "1.24";
        int r;

        if (c->version)
                return 0;
        if (!strempty(pinned)) {
                if (!version_valid(pinned))
                        return moat_error_setx(reterr, -EINVAL, "MOAT_API_VERSION \"%.32s\": not a version like 1.51",
                                               pinned);
                c->version = strdup(pinned);
                return c->version ? 0 : moat_error_set(reterr, -ENOMEM, "version");
        }
        r = send_request(c, c->conn, "GET", "/_ping", false, NULL, NULL, NULL, &s, reterr);
        if (r >= 0) {
                r = moat_http_conn_wait(c->conn, &e);
                if (r < 0)
                        r = wait_error(c, c->conn, &s, "GET", "/_ping", r, e, reterr);
        }
        free(s.data);
        if (r < 0)
                return r;
        const char *h = moat_http_response_header(moat_http_conn_response(c->conn), "Api-Version");
        if (h) {
                if (!version_valid(h))
                        return moat_error_setx(reterr, -EPROTO, "the daemon's Api-Version \"%.32s\" is not a version", h);
                snprintf(v, sizeof(v), "%s", h);
        }
        c->version = strdup(version_cmp(v, MOAT_CLIENT_API_VERSION) < 0 ? v : MOAT_CLIENT_API_VERSION);
        return c->version ? 0 : moat_error_set(reterr, -ENOMEM, "version");
}

int moat_client_api_version(struct moat_client *c, const char **ret, struct moat_error **reterr)
{
        int r = negotiate(c, reterr);
        if (r < 0)
                return r;
        *ret = c->version;
        return 0;
}

/*
 * Whether a reply to a request sent under our own version says that the
 * daemon refused the version: docker's and moat's daemons send their
 * Api-Version with every reply, and refuse a newer one than theirs with
 * 400 before anything else; a daemon that sends none gets the ping.
 */
static bool version_refused(const struct moat_http_response *resp)
{
        if (resp->status != 400)
                return false;
        const char *h = moat_http_response_header(resp, "Api-Version");
        return !version_valid(h) || version_cmp(h, MOAT_CLIENT_API_VERSION) < 0;
}

static int perform(struct moat_client *c, const char *method, const char *target, json_t *body,
                   struct moat_client_transfer *t, struct sink *s, long *ret_status, struct moat_error **reterr)
{
        struct moat_error *e = NULL;
        bool guessed = false;
        int r;

        /* A request that can be sent again (no stream either way) goes out
         * under our own version without the /_ping first, one round trip
         * less; a daemon that refuses the version gets docker's
         * negotiation and the request once more. */
        if (!c->version && !t && !s->fn && strempty(getenv("MOAT_API_VERSION"))) {
                c->version = strdup(MOAT_CLIENT_API_VERSION);
                if (!c->version)
                        return moat_error_set(reterr, -ENOMEM, "version");
                guessed = true;
        }
again:
        r = negotiate(c, reterr);
        if (r < 0)
                return r;
        r = send_request(c, c->conn, method, target, true, body, t, NULL, s, reterr);
        if (r < 0)
                return r;
        r = moat_http_conn_wait(c->conn, &e);
        if (r < 0)
                return wait_error(c, c->conn, s, method, target, r, e, reterr);
        const struct moat_http_response *resp = moat_http_conn_response(c->conn);
        if (guessed && version_refused(resp)) {
                guessed = false;
                free(c->version);
                c->version = NULL;
                free(s->data);
                s->data = NULL;
                s->len = 0;
                s->too_big = false;
                goto again;
        }
        if (ret_status)
                *ret_status = resp->status;
        if (keep_header(s, resp) < 0)
                return moat_error_set(reterr, -ENOMEM, "reply");
        if (resp->status >= 400)
                return daemon_error(resp->status, s->data, s->len, target, reterr);
        return 0;
}

int moat_client_call_raw(struct moat_client *c, const char *method, const char *target, json_t *body,
                         long *ret_status, char **ret_body, size_t *ret_len, struct moat_error **reterr)
{
        struct sink s = { .max = MOAT_CLIENT_MAX_REPLY };
        long status = 0;
        int r = perform(c, method, target, body, NULL, &s, &status, reterr);
        if (r < 0) {
                free(s.data);
                return r;
        }
        if (ret_status)
                *ret_status = status;
        if (!s.data)
                s.data = strdup("");
        if (!s.data)
                return moat_error_set(reterr, -ENOMEM, "reply");
        if (ret_len)
                *ret_len = s.len;
        if (ret_body)
                *ret_body = s.data;
        else
                free(s.data);
        return 0;
}

int moat_client_call(struct moat_client *c, const char *method, const char *target, json_t *body, long *ret_status,
                     json_t **ret_reply, struct moat_error **reterr)
{
        _cleanup_free_ char *data = NULL;
        size_t len = 0;
        int r = moat_client_call_raw(c, method, target, body, ret_status, &data, &len, reterr);
        if (r < 0)
                return r;
        if (ret_reply) {
                json_error_t jerr;
                *ret_reply = NULL;
                if (len == 0)
                        return 0;
                *ret_reply = json_loadb(data, len, JSON_DECODE_ANY, &jerr);
                if (!*ret_reply)
                        return moat_error_setx(reterr, -EPROTO, "%s %s: the daemon's reply is not JSON: %s", method,
                                               target, jerr.text);
        }
        return 0;
}

int moat_client_stream(struct moat_client *c, const char *method, const char *target, json_t *body,
                       moat_client_data_fn fn, void *userdata, struct moat_error **reterr)
{
        struct sink s = { .max = ERROR_MAX, .fn = fn, .userdata = userdata };
        int r = perform(c, method, target, body, NULL, &s, NULL, reterr);
        free(s.data);
        return r;
}

int moat_client_transfer(struct moat_client *c, const char *method, const char *target,
                         struct moat_client_transfer *t, struct moat_error **reterr)
{
        struct sink s = { .max = t->fn ? ERROR_MAX : MOAT_CLIENT_MAX_REPLY, .fn = t->fn, .userdata = t->userdata,
                          .t = t };
        int r = perform(c, method, target, NULL, t, &s, &t->status, reterr);
        if (r >= 0 && !t->fn && t->reply_fn)
                r = t->reply_fn(s.data ? s.data : "", s.len, t->userdata);
        free(s.data);
        return r;
}

/* ---- pending requests --------------------------------------------------- */

struct moat_client_pending {
        struct moat_http_conn *conn;
        struct sink s;
        char *target;
        bool done;
        struct moat_error *error;       /* the transfer failed: pending_result reports it */
        int r;
};

void moat_client_pending_free(struct moat_client_pending *p)
{
        if (!p)
                return;
        moat_http_conn_free(p->conn);
        moat_error_free(p->error);
        free(p->s.data);
        free(p->target);
        free(p);
}

static void pending_feed(struct moat_client_pending *p)
{
        int r = moat_http_conn_feed(p->conn, &p->error);
        if (r < 0) {
                p->r = r;
                p->done = true;
        } else if (r > 0)
                p->done = true;
}

int moat_client_pending_poll(struct moat_client_pending *p, struct pollfd *extra, unsigned n_extra, int timeout_ms,
                             struct moat_error **reterr)
{
        struct pollfd pfds[16 + 1];
        unsigned n = 0;

        if (n_extra > 16)
                return moat_error_setx(reterr, -E2BIG, "more than 16 descriptors to poll");
        for (unsigned i = 0; i < n_extra; i++) {
                pfds[n++] = extra[i];
                extra[i].revents = 0;
        }
        if (!p->done)
                pfds[n++] = (struct pollfd) { .fd = moat_http_conn_fd(p->conn), .events = POLLIN };
        if (poll(pfds, n, timeout_ms) < 0 && errno != EINTR)
                return moat_error_set(reterr, errno, "poll");
        for (unsigned i = 0; i < n_extra; i++)
                extra[i].revents = pfds[i].revents;
        if (!p->done && pfds[n_extra].revents)
                pending_feed(p);
        return p->done;
}

int moat_client_pending_start(struct moat_client *c, const char *method, const char *target, json_t *body,
                              struct moat_client_pending **ret, struct moat_error **reterr)
{
        struct moat_client_pending *p = calloc(1, sizeof(*p));
        struct moat_error *e = NULL;
        int r;

        if (!p)
                return moat_error_set(reterr, -ENOMEM, "request");
        p->s.max = ERROR_MAX;
        p->target = strdup(target);
        if (!p->target) {
                moat_client_pending_free(p);
                return moat_error_set(reterr, -ENOMEM, "request");
        }
        r = negotiate(c, reterr);
        if (r >= 0)
                r = moat_http_conn_new(c->socket_path, &p->conn, reterr);
        if (r >= 0)
                r = send_request(c, p->conn, method, target, true, body, NULL, NULL, &p->s, reterr);
        if (r >= 0) {
                r = moat_http_conn_wait_head(p->conn, &e);
                if (r < 0)
                        r = wait_error(c, p->conn, &p->s, method, target, r, e, reterr);
        }
        if (r >= 0 && moat_http_conn_response(p->conn)->status >= 400) {
                r = moat_http_conn_wait(p->conn, &e);
                r = r < 0 ? wait_error(c, p->conn, &p->s, method, target, r, e, reterr)
                          : daemon_error(moat_http_conn_response(p->conn)->status, p->s.data, p->s.len, target, reterr);
        }
        if (r < 0) {
                moat_client_pending_free(p);
                return r;
        }
        p->done = moat_http_conn_response(p->conn)->complete;
        *ret = p;
        return 0;
}

int moat_client_pending_result(struct moat_client_pending *p, json_t **ret, struct moat_error **reterr)
{
        json_error_t jerr;

        if (!p->done)
                return moat_error_setx(reterr, -EINPROGRESS, "%s: the reply is not complete", p->target);
        if (p->r < 0) {
                if (p->s.too_big)
                        return moat_error_setx(reterr, -EFBIG, "%s: the daemon's reply is larger than %zu bytes",
                                               p->target, p->s.max);
                return pass_error(reterr, TAKE_PTR(p->error), p->r);
        }
        *ret = json_loadb(p->s.data ? p->s.data : "", p->s.len, 0, &jerr);
        if (!*ret)
                return moat_error_setx(reterr, -EPROTO, "%s: the daemon's reply is not JSON: %s", p->target,
                                       jerr.text);
        return 0;
}

/* ---- hijacked connections -------------------------------------------- */

struct moat_client_hijack {
        int fd;
        char *buf;          /* bytes read past the head, not yet handed out */
        size_t buf_len, buf_off;
        char content_type[128];
};

void moat_client_hijack_free(struct moat_client_hijack *h)
{
        if (!h)
                return;
        safe_close(h->fd);
        free(h->buf);
        free(h);
}

int moat_client_hijack_fd(const struct moat_client_hijack *h)
{
        return h->fd;
}

const char *moat_client_hijack_content_type(const struct moat_client_hijack *h)
{
        return h->content_type;
}

int moat_client_hijack_write(struct moat_client_hijack *h, const void *buf, size_t len)
{
        const char *p = buf;
        while (len > 0) {
                ssize_t n = send(h->fd, p, len, MSG_NOSIGNAL);
                if (n < 0) {
                        if (errno == EINTR)
                                continue;
                        return -EPIPE;
                }
                p += n;
                len -= (size_t) n;
        }
        return 0;
}

ssize_t moat_client_hijack_read(struct moat_client_hijack *h, void *buf, size_t len)
{
        if (h->buf_off < h->buf_len) {
                size_t n = h->buf_len - h->buf_off < len ? h->buf_len - h->buf_off : len;
                memcpy(buf, h->buf + h->buf_off, n);
                h->buf_off += n;
                return (ssize_t) n;
        }
        ssize_t n = recv(h->fd, buf, len, MSG_DONTWAIT);
        if (n < 0 && (errno == EAGAIN || errno == EINTR))
                return -EAGAIN;
        if (n < 0)
                return -ECONNRESET;
        return n;
}

int moat_client_hijack_close_write(struct moat_client_hijack *h)
{
        return shutdown(h->fd, SHUT_WR) < 0 ? -errno : 0;
}

int moat_client_hijack(struct moat_client *c, const char *target, json_t *body, struct moat_client_hijack **ret,
                       struct moat_error **reterr)
{
        _cleanup_http_conn_ struct moat_http_conn *conn = NULL;
        struct moat_client_hijack *h = NULL;
        struct sink s = { .max = ERROR_MAX };
        struct moat_error *e = NULL;
        int r;

        r = negotiate(c, reterr);
        if (r < 0)
                return r;
        r = moat_http_conn_new(c->socket_path, &conn, reterr);
        if (r < 0)
                return r;
        r = send_request(c, conn, "POST", target, true, body, NULL, "tcp", &s, reterr);
        if (r >= 0) {
                r = moat_http_conn_wait(conn, &e);
                if (r < 0)
                        r = wait_error(c, conn, &s, "POST", target, r, e, reterr);
        }
        if (r < 0)
                goto fail;
        const struct moat_http_response *resp = moat_http_conn_response(conn);
        if (resp->status >= 400) {
                r = daemon_error(resp->status, s.data, s.len, target, reterr);
                goto fail;
        }
        if (!resp->upgraded) {
                r = moat_error_setx(reterr, -EPROTO, "unable to upgrade to tcp, received %d", resp->status);
                goto fail;
        }
        h = calloc(1, sizeof(*h));
        if (!h) {
                r = moat_error_set(reterr, -ENOMEM, "attach");
                goto fail;
        }
        const char *ct = moat_http_response_header(resp, "Content-Type");
        snprintf(h->content_type, sizeof(h->content_type), "%s", ct ? ct : "");
        r = moat_http_conn_take(conn, &h->fd, &h->buf, &h->buf_len, reterr);
        if (r < 0) {
                free(h);
                goto fail;
        }
        free(s.data);
        *ret = h;
        return 0;
fail:
        free(s.data);
        return r;
}

/* ---- stdcopy ----------------------------------------------------------- */

int moat_demux_feed(struct moat_demux *d, const char *data, size_t len, int out_fd, int err_fd)
{
        while (len > 0) {
                if (d->left == 0 && d->head_len < 8) {
                        size_t n = 8 - d->head_len < len ? 8 - d->head_len : len;
                        memcpy(d->head + d->head_len, data, n);
                        d->head_len += n;
                        data += n;
                        len -= n;
                        if (d->head_len < 8)
                                return 0;
                        d->stream = d->head[0];
                        d->left = (uint32_t) d->head[4] << 24 | (uint32_t) d->head[5] << 16 |
                                  (uint32_t) d->head[6] << 8 | d->head[7];
                        d->head_len = 0;
                        if (d->stream > 3)
                                return -EPROTO;
                        continue;
                }
                size_t n = d->left < len ? d->left : len;
                int r = 0;
                if (d->stream == 3) {
                        if (d->error_len < 4096) {
                                size_t k = d->error_len + n > 4096 ? 4096 - d->error_len : n;
                                char *e = realloc(d->error, d->error_len + k + 1);
                                if (!e)
                                        return -ENOMEM;
                                memcpy(e + d->error_len, data, k);
                                d->error_len += k;
                                e[d->error_len] = 0;
                                d->error = e;
                        }
                } else
                        r = moat_write_all(d->stream == 2 ? err_fd : out_fd, data, n);
                if (r < 0)
                        return r;
                d->left -= (uint32_t) n;
                data += n;
                len -= n;
        }
        return 0;
}

void moat_demux_done(struct moat_demux *d)
{
        free(d->error);
        d->error = NULL;
        d->error_len = 0;
}
