/* SPDX-License-Identifier: Apache-2.0 */
#include "base/compat.h"

/*
 * The Docker Engine API client of moat's verbs (see client.h). libcurl
 * does the HTTP: a reused easy handle for calls and streams (keep-alive
 * on the unix socket, CURLOPT_UNIX_SOCKET_PATH), a multi handle for a
 * pending request driven from the caller's own poll loop, and
 * CURLOPT_CONNECT_ONLY for hijacks.
 *
 * The hijack's request and response head are hand-written: libcurl has no
 * HTTP Upgrade other than WebSocket, and with CONNECT_ONLY it only opens
 * the connection, so the request is sent with curl_easy_send and the head
 * (status line, Content-Type, an error's body) read with curl_easy_recv
 * and parsed here; the bytes past the head are the container's stream.
 * Half-close is shutdown(SHUT_WR) on curl's socket (CURLINFO_ACTIVESOCKET):
 * curl has no call for it.
 *
 * Every reply is bounded: buffered bodies by MOAT_CLIENT_MAX_REPLY, a
 * hijack's head by HEAD_MAX, an error body by ERROR_MAX.
 */

#include "cli/client.h"

#include <curl/curl.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include "base/cleanup.h"
#include "moat-config.h"

#define HEAD_MAX (64u * 1024)
#define ERROR_MAX (1024u * 1024)
#define BASE_URL "http://api.moby.localhost"

struct moat_client {
        char *host;
        char *socket_path;
        char *version;
        CURL *easy;
        char errbuf[CURL_ERROR_SIZE];
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

static int connect_error(struct moat_client *c, CURLcode code, struct moat_error **reterr)
{
        if (code == CURLE_COULDNT_CONNECT || code == CURLE_COULDNT_RESOLVE_HOST)
                return moat_error_setx(reterr, -ECONNREFUSED,
                                       "Cannot connect to the moat daemon at %s. Is the moat daemon running?", c->host);
        return moat_error_setx(reterr, -EIO, "error during connect to %s: %s", c->host,
                               c->errbuf[0] ? c->errbuf : curl_easy_strerror(code));
}

/* ---- the client ------------------------------------------------------- */

int moat_client_new(const char *host, struct moat_client **ret, struct moat_error **reterr)
{
        static bool initialized;
        _cleanup_free_ struct moat_client *c = calloc(1, sizeof(*c));

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
        if (!initialized) {
                if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
                        return moat_error_setx(reterr, -ENOMEM, "initialise libcurl");
                initialized = true;
        }
        c->host = strdup(host);
        c->socket_path = strdup(host + strlen("unix://"));
        c->easy = curl_easy_init();
        if (!c->host || !c->socket_path || !c->easy) {
                moat_client_free(TAKE_PTR(c));
                return moat_error_set(reterr, -ENOMEM, "client");
        }
        *ret = TAKE_PTR(c);
        return 0;
}

void moat_client_free(struct moat_client *c)
{
        if (!c)
                return;
        if (c->easy)
                curl_easy_cleanup(c->easy);
        free(c->host);
        free(c->socket_path);
        free(c->version);
        free(c);
}

const char *moat_client_host(const struct moat_client *c)
{
        return c->host;
}

/* A reply being received. */
struct sink {
        CURL *easy;
        char *data;
        size_t len, max;
        bool too_big;
        char content_type[128];
        char api_version[16];
        bool head_done;
        long status;
        /* streams: the body goes to fn once the status says success */
        moat_client_data_fn fn;
        void *userdata;
        int fn_error;
};

static size_t sink_header(char *buf, size_t size, size_t nitems, void *userdata)
{
        struct sink *s = userdata;
        size_t len = size * nitems;

        if (len >= 5 && strncmp(buf, "HTTP/", 5) == 0) {
                s->content_type[0] = s->api_version[0] = 0;
                s->head_done = false;
                return len;
        }
        if (len <= 2 && (buf[0] == '\r' || buf[0] == '\n')) {
                long status = 0;
                curl_easy_getinfo(s->easy, CURLINFO_RESPONSE_CODE, &status);
                if (status >= 200) {
                        s->status = status;
                        s->head_done = true;
                }
                return len;
        }
        const char *colon = memchr(buf, ':', len);
        if (!colon)
                return len;
        size_t klen = (size_t) (colon - buf);
        const char *v = colon + 1, *end = buf + len;
        while (v < end && (*v == ' ' || *v == '\t'))
                v++;
        while (end > v && (end[-1] == '\r' || end[-1] == '\n' || end[-1] == ' '))
                end--;
        char *dst = NULL;
        size_t dmax = 0;
        if (klen == 12 && strncasecmp(buf, "Content-Type", 12) == 0)
                dst = s->content_type, dmax = sizeof(s->content_type);
        else if (klen == 11 && strncasecmp(buf, "Api-Version", 11) == 0)
                dst = s->api_version, dmax = sizeof(s->api_version);
        if (dst)
                snprintf(dst, dmax, "%.*s", (int) (end - v), v);
        return len;
}

static size_t sink_write(char *buf, size_t size, size_t nmemb, void *userdata)
{
        struct sink *s = userdata;
        size_t len = size * nmemb;

        if (s->fn && s->status > 0 && s->status < 400) {
                int r = s->fn(buf, len, s->userdata);
                if (r < 0) {
                        s->fn_error = r;
                        return 0;
                }
                return len;
        }
        if (s->len + len > s->max) {
                s->too_big = true;
                return 0;
        }
        char *d = realloc(s->data, s->len + len + 1);
        if (!d)
                return 0;
        memcpy(d + s->len, buf, len);
        s->len += len;
        d[s->len] = 0;
        s->data = d;
        return len;
}

struct request {
        struct curl_slist *headers;
        char *body;
        char *url;
};

static void request_clear(struct request *q)
{
        curl_slist_free_all(q->headers);
        free(q->body);
        free(q->url);
}

/* Set up easy for method target body; versioned: prefix /v<version>. */
static int request_setup(struct moat_client *c, CURL *easy, struct request *q, const char *method,
                         const char *target, json_t *body, bool versioned, struct sink *s,
                         struct moat_error **reterr)
{
        struct curl_slist *l;

        if (asprintf(&q->url, "%s%s%s%s", BASE_URL, versioned ? "/v" : "", versioned ? c->version : "", target) < 0)
                return moat_error_set(reterr, -ENOMEM, "request");
        if (body) {
                q->body = json_dumps(body, JSON_COMPACT);
                if (!q->body)
                        return moat_error_set(reterr, -ENOMEM, "request body");
                l = curl_slist_append(q->headers, "Content-Type: application/json");
                if (!l)
                        return moat_error_set(reterr, -ENOMEM, "request");
                q->headers = l;
        }
        l = curl_slist_append(q->headers, "Expect:");
        if (!l)
                return moat_error_set(reterr, -ENOMEM, "request");
        q->headers = l;

        curl_easy_reset(easy);
        c->errbuf[0] = 0;
        s->easy = easy;
        curl_easy_setopt(easy, CURLOPT_ERRORBUFFER, c->errbuf);
        curl_easy_setopt(easy, CURLOPT_UNIX_SOCKET_PATH, c->socket_path);
        curl_easy_setopt(easy, CURLOPT_URL, q->url);
        curl_easy_setopt(easy, CURLOPT_USERAGENT, "moat/" MOAT_VERSION " (linux)");
        curl_easy_setopt(easy, CURLOPT_HTTPHEADER, q->headers);
        curl_easy_setopt(easy, CURLOPT_HEADERFUNCTION, sink_header);
        curl_easy_setopt(easy, CURLOPT_HEADERDATA, s);
        curl_easy_setopt(easy, CURLOPT_WRITEFUNCTION, sink_write);
        curl_easy_setopt(easy, CURLOPT_WRITEDATA, s);
        curl_easy_setopt(easy, CURLOPT_NOSIGNAL, 1L);
        curl_easy_setopt(easy, CURLOPT_PROTOCOLS_STR, "http");
        if (streq(method, "GET"))
                curl_easy_setopt(easy, CURLOPT_HTTPGET, 1L);
        else if (streq(method, "HEAD"))
                curl_easy_setopt(easy, CURLOPT_NOBODY, 1L);
        else {
                curl_easy_setopt(easy, CURLOPT_POST, 1L);
                curl_easy_setopt(easy, CURLOPT_POSTFIELDS, q->body ? q->body : "");
                curl_easy_setopt(easy, CURLOPT_POSTFIELDSIZE, (long) (q->body ? strlen(q->body) : 0));
                if (!streq(method, "POST"))
                        curl_easy_setopt(easy, CURLOPT_CUSTOMREQUEST, method);
        }
        return 0;
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
        struct request q = {};
        const char *pinned = getenv("MOAT_API_VERSION");
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
        r = request_setup(c, c->easy, &q, "GET", "/_ping", NULL, false, &s, reterr);
        if (r >= 0) {
                CURLcode code = curl_easy_perform(c->easy);
                if (code != CURLE_OK)
                        r = connect_error(c, code, reterr);
        }
        request_clear(&q);
        free(s.data);
        if (r < 0)
                return r;
        const char *v = s.api_version[0] ? s.api_version : "1.24";
        if (!version_valid(v))
                return moat_error_setx(reterr, -EPROTO, "the daemon's Api-Version \"%s\" is not a version", v);
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

static int perform(struct moat_client *c, const char *method, const char *target, json_t *body, struct sink *s,
                   struct moat_error **reterr)
{
        struct request q = {};
        int r = negotiate(c, reterr);
        if (r < 0)
                return r;
        r = request_setup(c, c->easy, &q, method, target, body, true, s, reterr);
        if (r >= 0) {
                CURLcode code = curl_easy_perform(c->easy);
                curl_easy_getinfo(c->easy, CURLINFO_RESPONSE_CODE, &s->status);
                if (code == CURLE_WRITE_ERROR && s->fn_error < 0)
                        r = s->fn_error;
                else if (code == CURLE_WRITE_ERROR && s->too_big)
                        r = moat_error_setx(reterr, -EFBIG, "%s %s: the daemon's reply is larger than %zu bytes",
                                            method, target, s->max);
                else if (code != CURLE_OK && s->status == 0)
                        r = connect_error(c, code, reterr);
                else if (code != CURLE_OK && !(code == CURLE_PARTIAL_FILE && s->status >= 400))
                        r = moat_error_setx(reterr, -EIO, "%s %s: %s", method, target,
                                            c->errbuf[0] ? c->errbuf : curl_easy_strerror(code));
        }
        request_clear(&q);
        if (r < 0)
                return r;
        if (s->status >= 400)
                return daemon_error(s->status, s->data, s->len, target, reterr);
        return 0;
}

int moat_client_call_raw(struct moat_client *c, const char *method, const char *target, json_t *body,
                         long *ret_status, char **ret_body, size_t *ret_len, struct moat_error **reterr)
{
        struct sink s = { .max = MOAT_CLIENT_MAX_REPLY };
        int r = perform(c, method, target, body, &s, reterr);
        if (r < 0) {
                free(s.data);
                return r;
        }
        if (ret_status)
                *ret_status = s.status;
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
        int r = perform(c, method, target, body, &s, reterr);
        free(s.data);
        return r;
}

/* ---- pending requests --------------------------------------------------- */

struct moat_client_pending {
        struct moat_client *client;
        CURLM *multi;
        CURL *easy;
        struct request q;
        struct sink s;
        char *target;
        bool done;
        CURLcode result;
};

void moat_client_pending_free(struct moat_client_pending *p)
{
        if (!p)
                return;
        if (p->multi && p->easy)
                curl_multi_remove_handle(p->multi, p->easy);
        if (p->easy)
                curl_easy_cleanup(p->easy);
        if (p->multi)
                curl_multi_cleanup(p->multi);
        request_clear(&p->q);
        free(p->s.data);
        free(p->target);
        free(p);
}

static void pending_check(struct moat_client_pending *p)
{
        CURLMsg *m;
        int left;
        while ((m = curl_multi_info_read(p->multi, &left)))
                if (m->msg == CURLMSG_DONE && m->easy_handle == p->easy) {
                        p->done = true;
                        p->result = m->data.result;
                }
}

int moat_client_pending_poll(struct moat_client_pending *p, struct pollfd *extra, unsigned n_extra, int timeout_ms,
                             struct moat_error **reterr)
{
        int running;
        struct pollfd pfds[FD_SETSIZE + 16];
        fd_set rd, wr, ex;
        int maxfd = -1;
        long curl_timeout = -1;
        unsigned n = 0;

        if (n_extra > 16)
                return moat_error_setx(reterr, -E2BIG, "more than 16 descriptors to poll");
        for (unsigned i = 0; i < n_extra; i++) {
                pfds[n++] = extra[i];
                extra[i].revents = 0;
        }
        if (!p->done) {
                FD_ZERO(&rd);
                FD_ZERO(&wr);
                FD_ZERO(&ex);
                if (curl_multi_fdset(p->multi, &rd, &wr, &ex, &maxfd) != CURLM_OK)
                        return moat_error_setx(reterr, -EIO, "curl_multi_fdset failed");
                for (int fd = 0; fd <= maxfd && n < ELEMENTSOF(pfds); fd++) {
                        short ev = (short) ((FD_ISSET(fd, &rd) ? POLLIN : 0) | (FD_ISSET(fd, &wr) ? POLLOUT : 0) |
                                            (FD_ISSET(fd, &ex) ? POLLPRI : 0));
                        if (ev)
                                pfds[n++] = (struct pollfd) { .fd = fd, .events = ev };
                }
                (void) curl_multi_timeout(p->multi, &curl_timeout);
                if (maxfd < 0 && curl_timeout < 0)
                        curl_timeout = 100;
                if (curl_timeout >= 0 && (timeout_ms < 0 || curl_timeout < timeout_ms))
                        timeout_ms = (int) curl_timeout;
        }
        if (poll(pfds, n, timeout_ms) < 0 && errno != EINTR)
                return moat_error_set(reterr, errno, "poll");
        for (unsigned i = 0; i < n_extra; i++)
                extra[i].revents = pfds[i].revents;
        if (!p->done) {
                (void) curl_multi_perform(p->multi, &running);
                pending_check(p);
        }
        return p->done;
}

int moat_client_pending_start(struct moat_client *c, const char *method, const char *target, json_t *body,
                              struct moat_client_pending **ret, struct moat_error **reterr)
{
        struct moat_client_pending *p = calloc(1, sizeof(*p));
        int r, running;

        if (!p)
                return moat_error_set(reterr, -ENOMEM, "request");
        p->client = c;
        p->s.max = ERROR_MAX;
        p->target = strdup(target);
        p->multi = curl_multi_init();
        p->easy = curl_easy_init();
        if (!p->target || !p->multi || !p->easy) {
                moat_client_pending_free(p);
                return moat_error_set(reterr, -ENOMEM, "request");
        }
        r = negotiate(c, reterr);
        if (r >= 0)
                r = request_setup(c, p->easy, &p->q, method, target, body, true, &p->s, reterr);
        if (r >= 0 && curl_multi_add_handle(p->multi, p->easy) != CURLM_OK)
                r = moat_error_setx(reterr, -EIO, "%s %s: curl_multi_add_handle failed", method, target);
        if (r < 0) {
                moat_client_pending_free(p);
                return r;
        }
        (void) curl_multi_perform(p->multi, &running);
        pending_check(p);
        while (!p->done && !p->s.head_done) {
                r = moat_client_pending_poll(p, NULL, 0, 1000, reterr);
                if (r < 0) {
                        moat_client_pending_free(p);
                        return r;
                }
        }
        if (p->done && p->result != CURLE_OK && p->s.status == 0) {
                r = connect_error(c, p->result, reterr);
                moat_client_pending_free(p);
                return r;
        }
        if (p->s.status >= 400) {
                while (!p->done)
                        if ((r = moat_client_pending_poll(p, NULL, 0, 1000, reterr)) < 0)
                                break;
                r = r < 0 ? r : daemon_error(p->s.status, p->s.data, p->s.len, target, reterr);
                moat_client_pending_free(p);
                return r;
        }
        *ret = p;
        return 0;
}

int moat_client_pending_result(struct moat_client_pending *p, json_t **ret, struct moat_error **reterr)
{
        json_error_t jerr;

        if (!p->done)
                return moat_error_setx(reterr, -EINPROGRESS, "%s: the reply is not complete", p->target);
        if (p->result != CURLE_OK)
                return moat_error_setx(reterr, -EIO, "%s: %s", p->target, curl_easy_strerror(p->result));
        *ret = json_loadb(p->s.data ? p->s.data : "", p->s.len, 0, &jerr);
        if (!*ret)
                return moat_error_setx(reterr, -EPROTO, "%s: the daemon's reply is not JSON: %s", p->target,
                                       jerr.text);
        return 0;
}

/* ---- hijacked connections -------------------------------------------- */

struct moat_client_hijack {
        CURL *easy;
        int fd;
        char *buf;          /* bytes read past the head, not yet handed out */
        size_t buf_len, buf_off;
        char content_type[128];
        char errbuf[CURL_ERROR_SIZE];
};

void moat_client_hijack_free(struct moat_client_hijack *h)
{
        if (!h)
                return;
        if (h->easy)
                curl_easy_cleanup(h->easy);
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

static int wait_fd(int fd, short events)
{
        struct pollfd pfd = { .fd = fd, .events = events };
        for (;;) {
                int k = poll(&pfd, 1, -1);
                if (k >= 0)
                        return 0;
                if (errno != EINTR)
                        return -errno;
        }
}

int moat_client_hijack_write(struct moat_client_hijack *h, const void *buf, size_t len)
{
        const char *p = buf;
        while (len > 0) {
                size_t n = 0;
                CURLcode code = curl_easy_send(h->easy, p, len, &n);
                if (code == CURLE_AGAIN) {
                        int r = wait_fd(h->fd, POLLOUT);
                        if (r < 0)
                                return r;
                        continue;
                }
                if (code != CURLE_OK)
                        return -EPIPE;
                p += n;
                len -= n;
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
        size_t n = 0;
        CURLcode code = curl_easy_recv(h->easy, buf, len, &n);
        if (code == CURLE_AGAIN)
                return -EAGAIN;
        if (code != CURLE_OK)
                return -ECONNRESET;
        return (ssize_t) n;
}

int moat_client_hijack_close_write(struct moat_client_hijack *h)
{
        return shutdown(h->fd, SHUT_WR) < 0 ? -errno : 0;
}

/* Read until "\r\n\r\n" (bounded); what follows stays in h->buf. */
static int read_head(struct moat_client_hijack *h, char **ret_head, struct moat_error **reterr)
{
        size_t len = 0, cap = 4096;
        char *b = malloc(cap + 1);
        if (!b)
                return moat_error_set(reterr, -ENOMEM, "reply");
        for (;;) {
                if (len == cap) {
                        if (cap >= HEAD_MAX) {
                                free(b);
                                return moat_error_setx(reterr, -EPROTO, "the daemon's reply head is larger than %u bytes",
                                                       HEAD_MAX);
                        }
                        char *nb = realloc(b, cap * 2 + 1);
                        if (!nb) {
                                free(b);
                                return moat_error_set(reterr, -ENOMEM, "reply");
                        }
                        b = nb;
                        cap *= 2;
                }
                size_t n = 0;
                CURLcode code = curl_easy_recv(h->easy, b + len, cap - len, &n);
                if (code == CURLE_AGAIN) {
                        int r = wait_fd(h->fd, POLLIN);
                        if (r < 0) {
                                free(b);
                                return moat_error_set(reterr, r, "poll");
                        }
                        continue;
                }
                if (code != CURLE_OK || n == 0) {
                        free(b);
                        return moat_error_setx(reterr, -ECONNRESET, "the daemon closed the connection before answering");
                }
                len += n;
                b[len] = 0;
                char *end = strstr(b, "\r\n\r\n");
                if (end) {
                        size_t head_len = (size_t) (end - b) + 4;
                        h->buf_len = len - head_len;
                        if (h->buf_len) {
                                h->buf = malloc(h->buf_len);
                                if (!h->buf) {
                                        free(b);
                                        return moat_error_set(reterr, -ENOMEM, "reply");
                                }
                                memcpy(h->buf, b + head_len, h->buf_len);
                        }
                        b[head_len] = 0;
                        *ret_head = b;
                        return 0;
                }
        }
}

static const char *head_header(const char *head, const char *name, size_t *ret_len)
{
        size_t nl = strlen(name);
        for (const char *l = strstr(head, "\r\n"); l && l[2]; l = strstr(l + 2, "\r\n")) {
                const char *k = l + 2;
                if (strncasecmp(k, name, nl) == 0 && k[nl] == ':') {
                        const char *v = k + nl + 1;
                        while (*v == ' ')
                                v++;
                        *ret_len = strcspn(v, "\r");
                        return v;
                }
        }
        return NULL;
}

/* The body of an error answer to a hijack (Content-Length, or chunked:
 * up to the last chunk; bounded by ERROR_MAX). */
static int hijack_error(struct moat_client_hijack *h, long status, const char *head, const char *target,
                        struct moat_error **reterr)
{
        size_t vl = 0, want = ERROR_MAX, len = 0;
        const char *v = head_header(head, "Content-Length", &vl);
        bool chunked = head_header(head, "Transfer-Encoding", &vl) != NULL;
        _cleanup_free_ char *body = malloc(ERROR_MAX + 1);

        if (!body)
                return moat_error_set(reterr, -ENOMEM, "reply");
        if (v)
                want = strtoul(v, NULL, 10) < ERROR_MAX ? strtoul(v, NULL, 10) : ERROR_MAX;
        while (len < want) {
                ssize_t n = moat_client_hijack_read(h, body + len, want - len);
                if (n == -EAGAIN) {
                        if (wait_fd(h->fd, POLLIN) < 0)
                                break;
                        continue;
                }
                if (n <= 0)
                        break;
                len += (size_t) n;
                body[len] = 0;
                if (chunked && strstr(body, "\r\n0\r\n"))
                        break;
        }
        body[len] = 0;
        if (chunked) {
                /* one chunk is what an error body is: "<hex>\r\n<data>\r\n0\r\n\r\n" */
                char *data = strstr(body, "\r\n");
                char *end = data ? strstr(data + 2, "\r\n") : NULL;
                if (data && end)
                        return daemon_error(status, data + 2, (size_t) (end - data - 2), target, reterr);
        }
        return daemon_error(status, body, len, target, reterr);
}

int moat_client_hijack(struct moat_client *c, const char *target, json_t *body, struct moat_client_hijack **ret,
                       struct moat_error **reterr)
{
        struct moat_client_hijack *h = calloc(1, sizeof(*h));
        _cleanup_free_ char *url = NULL, *text = NULL, *req = NULL, *head = NULL;
        curl_socket_t sock = CURL_SOCKET_BAD;
        CURLcode code;
        int r;

        if (!h)
                return moat_error_set(reterr, -ENOMEM, "attach");
        h->fd = -1;
        r = negotiate(c, reterr);
        if (r < 0)
                goto fail;
        h->easy = curl_easy_init();
        text = body ? json_dumps(body, JSON_COMPACT) : strdup("");
        if (!h->easy || !text || asprintf(&url, "%s/", BASE_URL) < 0 ||
            asprintf(&req,
                     "POST /v%s%s HTTP/1.1\r\nHost: api.moby.localhost\r\nUser-Agent: moat/" MOAT_VERSION
                     " (linux)\r\nContent-Type: application/json\r\nContent-Length: %zu\r\n"
                     "Connection: Upgrade\r\nUpgrade: tcp\r\n\r\n%s",
                     c->version, target, strlen(text), text) < 0) {
                r = moat_error_set(reterr, -ENOMEM, "attach");
                goto fail;
        }
        curl_easy_setopt(h->easy, CURLOPT_ERRORBUFFER, h->errbuf);
        curl_easy_setopt(h->easy, CURLOPT_UNIX_SOCKET_PATH, c->socket_path);
        curl_easy_setopt(h->easy, CURLOPT_URL, url);
        curl_easy_setopt(h->easy, CURLOPT_CONNECT_ONLY, 1L);
        curl_easy_setopt(h->easy, CURLOPT_NOSIGNAL, 1L);
        code = curl_easy_perform(h->easy);
        if (code != CURLE_OK) {
                memcpy(c->errbuf, h->errbuf, sizeof(c->errbuf));
                r = connect_error(c, code, reterr);
                goto fail;
        }
        if (curl_easy_getinfo(h->easy, CURLINFO_ACTIVESOCKET, &sock) != CURLE_OK || sock == CURL_SOCKET_BAD) {
                r = moat_error_setx(reterr, -EIO, "attach: no socket from libcurl");
                goto fail;
        }
        h->fd = sock;
        r = moat_client_hijack_write(h, req, strlen(req));
        if (r < 0) {
                r = moat_error_set(reterr, r, "send POST %s", target);
                goto fail;
        }
        r = read_head(h, &head, reterr);
        if (r < 0)
                goto fail;
        long status = 0;
        if (sscanf(head, "HTTP/1.%*d %ld", &status) != 1) {
                r = moat_error_setx(reterr, -EPROTO, "POST %s: not an HTTP reply: \"%.40s\"", target, head);
                goto fail;
        }
        size_t vl = 0;
        const char *ct = head_header(head, "Content-Type", &vl);
        if (ct)
                snprintf(h->content_type, sizeof(h->content_type), "%.*s", (int) vl, ct);
        if (status >= 400) {
                r = hijack_error(h, status, head, target, reterr);
                goto fail;
        }
        if (status != 101 && status != 200) {
                r = moat_error_setx(reterr, -EPROTO, "unable to upgrade to tcp, received %ld", status);
                goto fail;
        }
        *ret = h;
        return 0;
fail:
        moat_client_hijack_free(h);
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
