/* SPDX-License-Identifier: Apache-2.0 */
#include "base/compat.h"

/*
 * The CLI's HTTP/1.1 client connection (see http-conn.h).
 *
 * Why not libcurl: Debian's libcurl-gnutls brings about 30 shared objects
 * (gnutls, LDAP, Kerberos, SSH, RTMP, ICU, OpenSSL) into every process
 * that links it; `perf stat -r 20` measured 20.6 ms of CPU to start an
 * empty program linked to it against 3.0 ms for a plain one, and `moat run
 * --rm` starts the client once per container. moat speaks HTTP/1.1 to a
 * local unix socket only, so the messages are parsed by nodejs's
 * http-parser (status line, header fields, Content-Length, chunked coding,
 * bodies until EOF, HEAD and 1xx rules, the Upgrade exit) and only the
 * connection is handled here: connect, write the request, read into a
 * fixed buffer, keep-alive, and the hand-over of an upgraded socket.
 *
 * The socket stays in blocking mode (a taken socket is what its new owner
 * expects); reads that must not wait use MSG_DONTWAIT, writes always do
 * and wait in poll(2) so that an early answer to an upload is noticed.
 *
 * A kept-alive connection may have been closed by the server while idle.
 * Before it is reused, a zero-timeout poll looks for its EOF; if the close
 * races the request anyway (EPIPE, ECONNRESET or EOF before any byte of
 * the answer), a request held in memory is sent again once on a new
 * connection, as curl does. A streamed body is never sent twice.
 */

#include "cli/http-conn.h"

#include <fcntl.h>
#include <http_parser.h>
#include <inttypes.h>
#include <poll.h>
#include <stdio.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "base/cleanup.h"

#define READ_BUF (64u * 1024)
#define CHUNK_HEAD 20           /* "%zx\r\n" of a chunk of at most READ_BUF bytes */

static const char *strna(const char *s)
{
        return s ?: "(null)";
}

enum conn_state {
        CONN_IDLE,      /* no response due */
        CONN_WAITING,   /* a request sent, its response not complete */
        CONN_DONE,      /* the response is complete or upgraded */
};

struct moat_http_conn {
        char *path;
        int fd;
        unsigned requests_on_fd;
        enum conn_state state;

        http_parser parser;
        struct moat_http_response resp;
        bool head_request, upgrade_request;
        bool interim;                   /* the message being parsed is a 1xx */
        bool interim_done;
        bool in_value;                  /* the last header callback was a value */
        bool early_answer;              /* answered before the whole body was sent */
        size_t head_bytes;
        uint64_t received;
        moat_http_body_fn on_body;
        void *userdata;
        struct moat_error **cb_reterr;
        int cb_error;

        char *retry;                    /* the whole request, when it may be sent again */
        size_t retry_len;
        bool may_retry;

        char what[192];                 /* "METHOD target" for messages */
        char start[40];                 /* the answer's first bytes, for messages */
        size_t start_len;

        char *leftover;                 /* after an upgrade: the bytes past the head */
        size_t leftover_len;

        char *buf;                      /* READ_BUF bytes, malloc'ed: untouched pages cost nothing */
};

/* ---- response parsing ------------------------------------------------ */

static int append(char **s, const char *data, size_t len, size_t max)
{
        size_t old = *s ? strlen(*s) : 0;
        if (old + len > max)
                return -E2BIG;
        char *n = realloc(*s, old + len + 1);
        if (!n)
                return -ENOMEM;
        memcpy(n + old, data, len);
        n[old + len] = 0;
        *s = n;
        return 0;
}

static void response_clear(struct moat_http_response *r)
{
        for (size_t i = 0; i < r->n_headers; i++) {
                free(r->headers[i].name);
                free(r->headers[i].value);
        }
        free(r->headers);
        *r = (struct moat_http_response) {};
}

static int cb_fail(struct moat_http_conn *c, int r, const char *what)
{
        c->cb_error = moat_error_setx(c->cb_reterr, r, "%s: %s", c->what, what);
        return -1;
}

static int on_message_begin(http_parser *p)
{
        struct moat_http_conn *c = p->data;
        response_clear(&c->resp);
        c->interim = c->interim_done = c->in_value = false;
        return 0;
}

static int on_status(http_parser *p, const char *at, size_t len)
{
        struct moat_http_conn *c = p->data;
        size_t old = strlen(c->resp.reason), room = sizeof(c->resp.reason) - 1 - old;
        memcpy(c->resp.reason + old, at, len < room ? len : room);
        c->resp.reason[old + (len < room ? len : room)] = 0;
        return 0;
}

static int on_header_field(http_parser *p, const char *at, size_t len)
{
        struct moat_http_conn *c = p->data;
        struct moat_http_response *r = &c->resp;

        if (r->head_done)
                return 0;       /* trailers after a chunked body: read, not kept */
        if (r->n_headers == 0 || c->in_value) {
                if (r->n_headers >= MOAT_HTTP_MAX_HEADERS) {
                        c->cb_error = moat_error_setx(c->cb_reterr, -E2BIG,
                                                      "%s: the response has more than %u header fields", c->what,
                                                      MOAT_HTTP_MAX_HEADERS);
                        return -1;
                }
                struct moat_http_header *h = reallocarray(r->headers, r->n_headers + 1, sizeof(*h));
                if (!h)
                        return cb_fail(c, -ENOMEM, "out of memory");
                r->headers = h;
                r->headers[r->n_headers++] = (struct moat_http_header) {};
                c->in_value = false;
        }
        struct moat_http_header *h = &r->headers[r->n_headers - 1];
        if (append(&h->name, at, len, MOAT_HTTP_HEAD_MAX) < 0)
                return cb_fail(c, -ENOMEM, "out of memory");
        return 0;
}

static int on_header_value(http_parser *p, const char *at, size_t len)
{
        struct moat_http_conn *c = p->data;
        struct moat_http_response *r = &c->resp;

        if (r->head_done || r->n_headers == 0)
                return 0;
        struct moat_http_header *h = &r->headers[r->n_headers - 1];
        if (!c->in_value && !h->value && append(&h->value, "", 0, 0) < 0)
                return cb_fail(c, -ENOMEM, "out of memory");
        c->in_value = true;
        if (append(&h->value, at, len, MOAT_HTTP_HEAD_MAX) < 0)
                return cb_fail(c, -ENOMEM, "out of memory");
        return 0;
}

/* 0: a body may follow; 1: none (HEAD, 1xx); 2: upgraded, the parser stops
 * after the head. */
static int on_headers_complete(http_parser *p)
{
        struct moat_http_conn *c = p->data;
        struct moat_http_response *r = &c->resp;

        r->status = p->status_code;
        r->version_major = p->http_major;
        r->version_minor = p->http_minor;
        c->in_value = false;
        for (size_t i = 0; i < r->n_headers; i++) {
                if (!r->headers[i].value && append(&r->headers[i].value, "", 0, 0) < 0)
                        return cb_fail(c, -ENOMEM, "out of memory");
                char *v = r->headers[i].value;
                size_t l = strlen(v);
                while (l > 0 && (v[l - 1] == ' ' || v[l - 1] == '\t'))
                        v[--l] = 0;
        }
        if (r->status < 100)
                return cb_fail(c, -EPROTO, "not an HTTP/1.x response: the status code has fewer than three digits");
        if (r->status < 200 && r->status != 101) {
                c->interim = true;
                return 1;
        }
        if (r->status == 101 && !c->upgrade_request)
                return cb_fail(c, -EPROTO, "the server switched protocols (101) without being asked to");
        r->head_done = true;
        if (c->upgrade_request && (r->status == 101 || (r->status >= 200 && r->status < 300))) {
                r->upgraded = true;
                return 2;
        }
        return c->head_request ? 1 : 0;
}

static int on_body(http_parser *p, const char *at, size_t len)
{
        struct moat_http_conn *c = p->data;

        c->resp.body_len += len;
        if (!c->on_body)
                return 0;
        int r = c->on_body(&c->resp, at, len, c->userdata, c->cb_reterr);
        if (r < 0) {
                c->cb_error = moat_error_set(c->cb_reterr, r, "%s: response body", c->what);
                return -1;
        }
        return 0;
}

static int on_message_complete(http_parser *p)
{
        struct moat_http_conn *c = p->data;

        if (c->interim)
                c->interim_done = true;
        else {
                c->resp.complete = true;
                c->resp.keep_alive = http_should_keep_alive(p) && !c->resp.upgraded && !c->early_answer;
        }
        http_parser_pause(p, 1);
        return 0;
}

static const http_parser_settings parser_settings = {
        .on_message_begin = on_message_begin,
        .on_status = on_status,
        .on_header_field = on_header_field,
        .on_header_value = on_header_value,
        .on_headers_complete = on_headers_complete,
        .on_body = on_body,
        .on_message_complete = on_message_complete,
};

static void parser_reset(struct moat_http_conn *c)
{
        http_parser_init(&c->parser, HTTP_RESPONSE);
        c->parser.data = c;
}

/* The answer's first bytes, printable, for an error message. */
static const char *start_text(struct moat_http_conn *c, char *out, size_t size)
{
        size_t o = 0;
        for (size_t i = 0; i < c->start_len && o + 5 < size; i++) {
                unsigned char ch = (unsigned char) c->start[i];
                if (ch == '\r')
                        o += (size_t) snprintf(out + o, size - o, "\\r");
                else if (ch == '\n')
                        o += (size_t) snprintf(out + o, size - o, "\\n");
                else if (ch < 0x20 || ch >= 0x7f || ch == '"' || ch == '\\')
                        o += (size_t) snprintf(out + o, size - o, "\\x%02x", ch);
                else
                        out[o++] = (char) ch;
        }
        out[o] = 0;
        return out;
}

static int parse_error(struct moat_http_conn *c, struct moat_error **reterr)
{
        enum http_errno e = HTTP_PARSER_ERRNO(&c->parser);
        char text[sizeof(c->start) * 4 + 1];

        if (c->cb_error < 0)
                return c->cb_error;
        if (!c->resp.head_done)
                return moat_error_setx(reterr, -EPROTO, "%s: %s from %s: %s (it starts \"%s\")", c->what,
                                       e == HPE_INVALID_CONSTANT || e == HPE_INVALID_VERSION || e == HPE_INVALID_STATUS
                                               ? "not an HTTP/1.x response"
                                               : "invalid response head",
                                       c->path, http_errno_description(e), start_text(c, text, sizeof(text)));
        return moat_error_setx(reterr, -EPROTO, "%s: malformed response body from %s: %s", c->what, c->path,
                               http_errno_description(e));
}

/* Parse len bytes of the answer (len 0: the server closed its side).
 * 1 when the response is complete, 0 when more is needed. */
static int parse(struct moat_http_conn *c, const char *data, size_t len, struct moat_error **reterr)
{
        size_t off = 0;

        c->cb_reterr = reterr;
        c->cb_error = 0;
        if (len == 0) {
                (void) http_parser_execute(&c->parser, &parser_settings, NULL, 0);
                if (c->resp.complete) {
                        http_parser_pause(&c->parser, 0);
                        c->resp.keep_alive = false;
                        return 1;
                }
                if (HTTP_PARSER_ERRNO(&c->parser) != HPE_OK && HTTP_PARSER_ERRNO(&c->parser) != HPE_INVALID_EOF_STATE)
                        return parse_error(c, reterr);
                if (c->received == 0)
                        return moat_error_setx(reterr, -ECONNRESET, "%s: %s closed the connection before answering",
                                               c->what, c->path);
                return moat_error_setx(reterr, -ECONNRESET,
                                       "%s: %s closed the connection in the middle of the response%s", c->what,
                                       c->path, c->resp.head_done ? "" : "'s head");
        }
        while (off < len) {
                size_t n = len - off;
                bool head = !c->resp.head_done;
                if (head && n > MOAT_HTTP_HEAD_MAX + 1 - c->head_bytes)
                        n = MOAT_HTTP_HEAD_MAX + 1 - c->head_bytes;
                size_t k = http_parser_execute(&c->parser, &parser_settings, data + off, n);
                off += k;
                if (head)
                        c->head_bytes += k;
                if (HTTP_PARSER_ERRNO(&c->parser) == HPE_PAUSED) {
                        http_parser_pause(&c->parser, 0);
                        if (c->interim_done) {
                                parser_reset(c);
                                c->interim = c->interim_done = false;
                                continue;
                        }
                        break;
                }
                if (HTTP_PARSER_ERRNO(&c->parser) != HPE_OK)
                        return parse_error(c, reterr);
                if (!c->resp.head_done && c->head_bytes > MOAT_HTTP_HEAD_MAX)
                        return moat_error_setx(reterr, -E2BIG, "%s: the response head from %s is larger than %u bytes",
                                               c->what, c->path, MOAT_HTTP_HEAD_MAX);
                if (k < n)
                        return moat_error_setx(reterr, -EPROTO, "%s: the parser stopped at byte %zu of the response",
                                               c->what, off);
        }
        if (!c->resp.complete)
                return 0;
        if (off < len) {
                if (c->resp.upgraded) {
                        c->leftover = malloc(len - off);
                        if (!c->leftover)
                                return moat_error_set(reterr, -ENOMEM, "%s: upgraded stream", c->what);
                        memcpy(c->leftover, data + off, len - off);
                        c->leftover_len = len - off;
                } else
                        c->resp.keep_alive = false;     /* bytes nobody asked for */
        }
        return 1;
}

/* ---- the connection -------------------------------------------------- */

static void conn_close(struct moat_http_conn *c)
{
        c->fd = safe_close(c->fd);
        c->requests_on_fd = 0;
}

int moat_http_conn_new(const char *socket_path, struct moat_http_conn **ret, struct moat_error **reterr)
{
        if (strempty(socket_path) || strlen(socket_path) > 4095)
                return moat_error_setx(reterr, -EINVAL, "unix socket path \"%.64s\": empty or too long",
                                       strempty(socket_path) ? "" : socket_path);
        struct moat_http_conn *c = calloc(1, sizeof(*c));
        if (!c)
                return moat_error_set(reterr, -ENOMEM, "HTTP connection");
        c->fd = -EBADF;
        c->path = strdup(socket_path);
        c->buf = malloc(READ_BUF);
        if (!c->path || !c->buf) {
                free(c->path);
                free(c->buf);
                free(c);
                return moat_error_set(reterr, -ENOMEM, "HTTP connection");
        }
        parser_reset(c);
        *ret = c;
        return 0;
}

void moat_http_conn_free(struct moat_http_conn *c)
{
        if (!c)
                return;
        conn_close(c);
        response_clear(&c->resp);
        free(c->retry);
        free(c->leftover);
        free(c->path);
        free(c->buf);
        free(c);
}

int moat_http_conn_connect(struct moat_http_conn *c, struct moat_error **reterr)
{
        struct sockaddr_un sa = { .sun_family = AF_UNIX };
        _cleanup_close_ int fd = -EBADF, pathfd = -EBADF;

        if (c->fd >= 0) {
                struct pollfd pfd = { .fd = c->fd, .events = POLLIN };
                if (c->state == CONN_IDLE || (c->state == CONN_DONE && c->resp.keep_alive)) {
                        if (poll(&pfd, 1, 0) == 0)
                                return 0;
                }
                conn_close(c);
        }
        if (strlen(c->path) < sizeof(sa.sun_path))
                memcpy(sa.sun_path, c->path, strlen(c->path));
        else {
                pathfd = open(c->path, O_PATH | O_CLOEXEC);
                if (pathfd < 0)
                        return moat_error_set(reterr, -errno, "connect to %s", c->path);
                snprintf(sa.sun_path, sizeof(sa.sun_path), "/proc/self/fd/%d", pathfd);
        }
        fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd < 0)
                return moat_error_set(reterr, -errno, "socket");
        while (connect(fd, (struct sockaddr *) &sa, sizeof(sa)) < 0) {
                if (errno == EINTR)
                        continue;
                if (errno == EISCONN)
                        break;
                return moat_error_set(reterr, -errno, "connect to %s", c->path);
        }
        c->fd = TAKE_FD(fd);
        c->requests_on_fd = 0;
        c->state = CONN_IDLE;
        return 0;
}

/* Write all of buf. 1 when watch is set and the server answered before
 * all was written (the rest is not sent), 0 when all is, -errno. */
static int send_all(struct moat_http_conn *c, const char *buf, size_t len, bool watch)
{
        while (len > 0) {
                ssize_t n = send(c->fd, buf, len, MSG_NOSIGNAL | MSG_DONTWAIT);
                if (n < 0) {
                        if (errno == EINTR)
                                continue;
                        if (errno != EAGAIN)
                                return -errno;
                        struct pollfd pfd = { .fd = c->fd, .events = POLLOUT | (watch ? POLLIN : 0) };
                        if (poll(&pfd, 1, -1) < 0 && errno != EINTR)
                                return -errno;
                        if (watch && (pfd.revents & POLLIN))
                                return 1;
                        continue;
                }
                buf += n;
                len -= (size_t) n;
        }
        return 0;
}

/* After a failed write of a streamed body: has the server answered? */
static bool answer_waiting(struct moat_http_conn *c)
{
        struct pollfd pfd = { .fd = c->fd, .events = POLLIN };
        char b;
        return poll(&pfd, 1, 0) > 0 && recv(c->fd, &b, 1, MSG_PEEK | MSG_DONTWAIT) == 1;
}

static bool token_valid(const char *s, size_t max)
{
        if (strempty(s) || strlen(s) > max)
                return false;
        for (; *s; s++)
                if (!(*s > 0x20 && *s < 0x7f) || strchr("()<>@,;:\\\"/[]?={}", *s))
                        return false;
        return true;
}

static bool field_valid(const char *s)
{
        for (; *s; s++)
                if ((unsigned char) *s < 0x20 && *s != '\t')
                        return false;
        return true;
}

static int validate(const struct moat_http_request *req, struct moat_error **reterr)
{
        if (!token_valid(req->method, 32))
                return moat_error_setx(reterr, -EINVAL, "HTTP method \"%.40s\": not a token", strna(req->method));
        if (strempty(req->target) || req->target[0] != '/' || !field_valid(req->target) || strchr(req->target, ' '))
                return moat_error_setx(reterr, -EINVAL, "request target \"%.80s\": not an absolute path",
                                       strna(req->target));
        if (req->host && (!field_valid(req->host) || strchr(req->host, ' ') || !*req->host))
                return moat_error_setx(reterr, -EINVAL, "Host \"%.80s\": not a host", req->host);
        for (const char *const *h = req->headers; h && *h; h++) {
                const char *colon = strchr(*h, ':');
                _cleanup_free_ char *name = colon ? strndup(*h, (size_t) (colon - *h)) : NULL;
                if (!colon || !name || !token_valid(name, 256) || !field_valid(colon + 1))
                        return moat_error_setx(reterr, -EINVAL, "request header \"%.80s\": not \"Name: value\"", *h);
        }
        if (req->upgrade && !token_valid(req->upgrade, 64))
                return moat_error_setx(reterr, -EINVAL, "Upgrade \"%.80s\": not a protocol name", req->upgrade);
        if (req->source && req->body)
                return moat_error_setx(reterr, -EINVAL, "a request has a body or a body source, not both");
        if (req->source && req->source_length < -1)
                return moat_error_setx(reterr, -EINVAL, "body source length %" PRId64 ": not a length",
                                       req->source_length);
        return 0;
}

/* The request head, and the body when it is in memory. */
static int serialize(const struct moat_http_request *req, char **ret, size_t *ret_len, size_t *ret_head_len,
                     struct moat_error **reterr)
{
        _cleanup_free_ char *out = NULL;
        size_t len = 0;
        FILE *f = open_memstream(&out, &len);

        if (!f)
                return moat_error_set(reterr, -ENOMEM, "request");
        fprintf(f, "%s %s HTTP/1.1\r\nHost: %s\r\n", req->method, req->target, req->host ? req->host : "localhost");
        for (const char *const *h = req->headers; h && *h; h++)
                fprintf(f, "%s\r\n", *h);
        if (req->source) {
                if (req->source_length >= 0)
                        fprintf(f, "Content-Length: %" PRId64 "\r\n", req->source_length);
                else
                        fputs("Transfer-Encoding: chunked\r\n", f);
        } else if (req->body)
                fprintf(f, "Content-Length: %zu\r\n", req->body_len);
        else if (streq(req->method, "POST") || streq(req->method, "PUT") || streq(req->method, "PATCH"))
                fputs("Content-Length: 0\r\n", f);
        if (req->upgrade)
                fprintf(f, "Connection: Upgrade\r\nUpgrade: %s\r\n", req->upgrade);
        fputs("\r\n", f);
        if (fclose(f) != 0 || !out)
                return moat_error_set(reterr, -ENOMEM, "request");
        if (len > MOAT_HTTP_REQUEST_HEAD_MAX)
                return moat_error_setx(reterr, -E2BIG, "%s %.80s: the request head is larger than %u bytes",
                                       req->method, req->target, MOAT_HTTP_REQUEST_HEAD_MAX);
        *ret_head_len = len;
        if (req->body && req->body_len > 0) {
                char *n = realloc(out, len + req->body_len);
                if (!n)
                        return moat_error_set(reterr, -ENOMEM, "request body");
                out = n;
                memcpy(out + len, req->body, req->body_len);
                len += req->body_len;
        }
        *ret_len = len;
        *ret = TAKE_PTR(out);
        return 0;
}

/* Send a streamed body. 1 when the server answered early. */
static int send_source(struct moat_http_conn *c, const struct moat_http_request *req, struct moat_error **reterr)
{
        bool chunked = req->source_length < 0;
        uint64_t left = chunked ? UINT64_MAX : (uint64_t) req->source_length;
        _cleanup_free_ char *buf = malloc(CHUNK_HEAD + READ_BUF + 2);
        int r;

        if (!buf)
                return moat_error_set(reterr, -ENOMEM, "%s: request body", c->what);
        for (;;) {
                size_t want = left < READ_BUF ? (size_t) left : READ_BUF;
                ssize_t n = 0;
                if (want > 0) {
                        n = req->source(buf + CHUNK_HEAD, want, req->source_data);
                        if (n < 0)
                                return moat_error_set(reterr, (int) n, "%s: request body", c->what);
                        if ((size_t) n > want)
                                return moat_error_setx(reterr, -EINVAL, "%s: the body source returned %zd bytes for %zu",
                                                       c->what, n, want);
                }
                if (n == 0 && !chunked && left > 0)
                        return moat_error_setx(reterr, -EPIPE,
                                               "%s: the request body ended %" PRIu64 " bytes short of its length %" PRId64,
                                               c->what, left, req->source_length);
                const char *p = buf + CHUNK_HEAD;
                size_t plen = (size_t) n;
                if (chunked) {
                        char hex[CHUNK_HEAD];
                        int hl = snprintf(hex, sizeof(hex), "%zx\r\n", plen);
                        memcpy(buf + CHUNK_HEAD - hl, hex, (size_t) hl);
                        p -= hl;
                        plen += (size_t) hl;
                        memcpy(buf + CHUNK_HEAD + n, "\r\n", 2);
                        plen += 2;
                }
                if (plen > 0) {
                        r = send_all(c, p, plen, true);
                        if (r == 1 || ((r == -EPIPE || r == -ECONNRESET) && answer_waiting(c)))
                                return 1;
                        if (r < 0)
                                return moat_error_set(reterr, r, "%s: send the request body to %s", c->what, c->path);
                }
                if (n == 0)
                        return 0;
                left -= (uint64_t) n;
                if (!chunked && left == 0)
                        return 0;
        }
}

int moat_http_conn_request(struct moat_http_conn *c, const struct moat_http_request *req,
                           struct moat_error **reterr)
{
        _cleanup_free_ char *msg = NULL;
        size_t len = 0, head_len = 0;
        int r;

        r = validate(req, reterr);
        if (r < 0)
                return r;
        r = serialize(req, &msg, &len, &head_len, reterr);
        if (r < 0)
                return r;

        if (c->state == CONN_WAITING || (c->state == CONN_DONE && !c->resp.keep_alive))
                conn_close(c);
        c->state = CONN_IDLE;
        response_clear(&c->resp);
        parser_reset(c);
        free(c->retry);
        c->retry = NULL;
        c->retry_len = 0;
        free(c->leftover);
        c->leftover = NULL;
        c->leftover_len = 0;
        c->head_request = streq(req->method, "HEAD");
        c->upgrade_request = req->upgrade != NULL;
        c->interim = c->interim_done = c->in_value = c->early_answer = false;
        c->head_bytes = 0;
        c->received = 0;
        c->start_len = 0;
        c->on_body = req->on_body;
        c->userdata = req->userdata;
        snprintf(c->what, sizeof(c->what), "%s %.160s", req->method, req->target);

        for (int attempt = 0;; attempt++) {
                r = moat_http_conn_connect(c, reterr);
                if (r < 0)
                        return r;
                bool reused = c->requests_on_fd > 0;
                c->requests_on_fd++;
                c->state = CONN_WAITING;
                r = send_all(c, msg, req->source ? head_len : len, false);
                if (r >= 0)
                        break;
                conn_close(c);
                c->state = CONN_IDLE;
                if (!(reused && attempt == 0 && (r == -EPIPE || r == -ECONNRESET)))
                        return moat_error_set(reterr, r, "%s: send the request to %s", c->what, c->path);
        }
        c->may_retry = !req->source && c->requests_on_fd > 1;
        if (c->may_retry) {
                c->retry = TAKE_PTR(msg);
                c->retry_len = len;
        }
        if (req->source) {
                r = send_source(c, req, reterr);
                if (r < 0) {
                        conn_close(c);
                        c->state = CONN_IDLE;
                        return r;
                }
                c->early_answer = r == 1;
        }
        return 0;
}

/* The kept-alive connection was closed under the request: send it again
 * on a new one. */
static int resend(struct moat_http_conn *c, struct moat_error **reterr)
{
        int r;

        c->may_retry = false;
        conn_close(c);
        c->state = CONN_IDLE;
        r = moat_http_conn_connect(c, reterr);
        if (r < 0)
                return r;
        c->requests_on_fd = 1;
        c->state = CONN_WAITING;
        r = send_all(c, c->retry, c->retry_len, false);
        if (r < 0) {
                conn_close(c);
                c->state = CONN_IDLE;
                return moat_error_set(reterr, r, "%s: send the request to %s", c->what, c->path);
        }
        return 0;
}

static int finish(struct moat_http_conn *c)
{
        c->state = CONN_DONE;
        free(c->retry);
        c->retry = NULL;
        if (!c->resp.keep_alive && !c->resp.upgraded)
                conn_close(c);
        return 1;
}

static int fail(struct moat_http_conn *c, int r)
{
        conn_close(c);
        c->state = CONN_IDLE;
        return r;
}

/* One read: 1 complete, 0 more to come (or nothing there yet), -errno. */
static int conn_read(struct moat_http_conn *c, bool block, struct moat_error **reterr)
{
        ssize_t n;
        int r;

        if (c->state == CONN_DONE)
                return 1;
        if (c->state != CONN_WAITING || c->fd < 0)
                return moat_error_setx(reterr, -EINVAL, "%s: no response is due on the connection to %s", c->what,
                                       c->path);
        n = recv(c->fd, c->buf, READ_BUF, block ? 0 : MSG_DONTWAIT);
        if (n < 0 && (errno == EINTR || errno == EAGAIN))
                return 0;
        if ((n == 0 || (n < 0 && errno == ECONNRESET)) && c->received == 0 && c->may_retry) {
                r = resend(c, reterr);
                return r < 0 ? r : 0;
        }
        if (n < 0)
                return fail(c, moat_error_set(reterr, -errno, "%s: read the response from %s", c->what, c->path));
        if (c->start_len < sizeof(c->start)) {
                size_t k = sizeof(c->start) - c->start_len < (size_t) n ? sizeof(c->start) - c->start_len : (size_t) n;
                memcpy(c->start + c->start_len, c->buf, k);
                c->start_len += k;
        }
        c->received += (uint64_t) n;
        /* http-parser checks the "HTTP/" of a status line only when built strict */
        if (memcmp(c->start, "HTTP/", c->start_len < 5 ? c->start_len : 5) != 0) {
                char text[sizeof(c->start) * 4 + 1];
                return fail(c, moat_error_setx(reterr, -EPROTO,
                                               "%s: not an HTTP/1.x response from %s (it starts \"%s\")", c->what,
                                               c->path, start_text(c, text, sizeof(text))));
        }
        r = parse(c, c->buf, (size_t) n, reterr);
        if (r < 0)
                return fail(c, r);
        return r > 0 ? finish(c) : 0;
}

int moat_http_conn_fd(const struct moat_http_conn *c)
{
        return c->state == CONN_WAITING ? c->fd : -EBADF;
}

int moat_http_conn_feed(struct moat_http_conn *c, struct moat_error **reterr)
{
        return conn_read(c, false, reterr);
}

static int wait_for(struct moat_http_conn *c, bool head_only, struct moat_error **reterr)
{
        for (;;) {
                if (c->state == CONN_DONE || (head_only && c->resp.head_done))
                        return 1;
                int r = conn_read(c, true, reterr);
                if (r < 0)
                        return r;
        }
}

int moat_http_conn_wait_head(struct moat_http_conn *c, struct moat_error **reterr)
{
        return wait_for(c, true, reterr);
}

int moat_http_conn_wait(struct moat_http_conn *c, struct moat_error **reterr)
{
        return wait_for(c, false, reterr);
}

const struct moat_http_response *moat_http_conn_response(const struct moat_http_conn *c)
{
        return &c->resp;
}

const char *moat_http_response_header(const struct moat_http_response *resp, const char *name)
{
        for (size_t i = 0; i < resp->n_headers; i++)
                if (resp->headers[i].name && strcasecmp(resp->headers[i].name, name) == 0)
                        return resp->headers[i].value;
        return NULL;
}

int moat_http_conn_take(struct moat_http_conn *c, int *ret_fd, char **ret_buf, size_t *ret_len,
                        struct moat_error **reterr)
{
        if (c->state != CONN_DONE || !c->resp.upgraded || c->fd < 0)
                return moat_error_setx(reterr, -EINVAL, "%s: the connection to %s was not upgraded", c->what, c->path);
        *ret_fd = TAKE_FD(c->fd);
        *ret_buf = TAKE_PTR(c->leftover);
        *ret_len = c->leftover_len;
        c->leftover_len = 0;
        c->requests_on_fd = 0;
        c->state = CONN_IDLE;
        return 0;
}
