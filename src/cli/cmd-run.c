/* SPDX-License-Identifier: Apache-2.0 */
#include "base/compat.h"

/*
 * moat run [OPTIONS] IMAGE [COMMAND] [ARG...]: docker run, the way
 * docker's cli/command/container/run.go does it: create; unless -d,
 * attach (hijacked, before the container can write anything), the wait
 * request (condition next-exit, or removed with --rm) whose head arrives
 * before the start, then start, resize for -t, pump the streams, and exit
 * with the wait's StatusCode. Daemon and flag errors exit 125, a command
 * that cannot be found 127, one that cannot be run 126, as docker maps
 * them.
 *
 * This file also holds the attached session run shares with start -a,
 * attach and exec (cli_session_run, see cli.h), and the small helpers of
 * the container verbs (resolving a container, per-item errors).
 *
 * Detach keys: on a tty session with stdin the input is watched for the
 * sequence (ctrl-p,ctrl-q or --detach-keys), as docker's CLI does; its
 * bytes are held until the input leaves the sequence, and when it is
 * complete the session ends without waiting, the container left running.
 * The daemon watches for the same keys (detachKeys, DetachKeys).
 */

#include <ctype.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sys/signalfd.h>
#include <termios.h>
#include <unistd.h>

#include "base/cleanup.h"
#include "base/log.h"
#include "cli/cli.h"
#include "cli/client.h"

#define DETACH_KEYS_MAX 16

/* The signals docker's sig-proxy forwards that a terminal user sends. */
static const int proxied[] = { SIGHUP, SIGINT, SIGQUIT, SIGUSR1, SIGUSR2, SIGALRM, SIGTERM };

int cli_run_error_status(const struct moat_error *err)
{
        const char *m = err && err->msg ? err->msg : "";
        if (strstr(m, "executable file not found") || strstr(m, "no such file or directory") ||
            strstr(m, "No such file or directory"))
                return 127;
        if (strstr(m, "permission denied") || strstr(m, "Permission denied") || strstr(m, "is a directory") ||
            strstr(m, "Is a directory"))
                return 126;
        return 125;
}

int cli_container_inspect(struct moat_client *client, const char *name, json_t **ret, struct moat_error **reterr)
{
        _cleanup_free_ char *e = moat_client_escape(name), *target = NULL;
        if (!e || asprintf(&target, "/containers/%s/json", e) < 0)
                return moat_error_set(reterr, -ENOMEM, "inspect");
        int r = moat_client_call(client, "GET", target, NULL, NULL, ret, reterr);
        if (r >= 0 && !json_is_object(*ret)) {
                json_decref(*ret);
                *ret = NULL;
                return moat_error_setx(reterr, -EPROTO, "inspect %s: the daemon's reply is not an object", name);
        }
        return r;
}

int cli_for_each(struct moat_cli *cli, int argc, char **argv, int first, cli_each_fn fn, void *userdata, bool echo,
                 struct moat_error **reterr)
{
        _cleanup_client_ struct moat_client *client = NULL;
        bool failed = false;
        int r = cli_client(cli, &client, reterr);
        if (r < 0)
                return r;
        for (int i = first; i < argc; i++) {
                _cleanup_error_ struct moat_error *err = NULL;
                r = fn(client, argv[i], userdata, &err);
                if (r == -ECONNREFUSED) {
                        *reterr = TAKE_PTR(err);
                        return r;
                }
                if (r < 0) {
                        cli_print_error(err);
                        failed = true;
                } else if (echo)
                        printf("%s\n", argv[i]);
        }
        return failed ? CLI_FAILED_REPORTED : 0;
}

/* ---- the attached session -------------------------------------------------- */

struct session_state {
        struct moat_client *client;
        const struct cli_session *s;
        char *id_escaped;
        bool raw;
        struct termios saved;
};

static void resize(struct session_state *st)
{
        _cleanup_free_ char *target = NULL;
        _cleanup_error_ struct moat_error *err = NULL;
        unsigned rows, cols;

        cli_console_size(STDOUT_FILENO, &rows, &cols);
        if (rows == 0 && cols == 0)
                return;
        if (asprintf(&target, "/%s/%s/resize?h=%u&w=%u", st->s->exec ? "exec" : "containers", st->id_escaped, rows,
                     cols) < 0)
                return;
        /* docker retries while the process is being started */
        for (int i = 0; i < 10; i++) {
                moat_error_free(TAKE_PTR(err));
                if (moat_client_call(st->client, "POST", target, NULL, NULL, NULL, &err) >= 0)
                        return;
                usleep(10000 * (unsigned) (i + 1));
        }
}

static void forward_signal(struct session_state *st, int sig)
{
        _cleanup_free_ char *target = NULL;
        _cleanup_error_ struct moat_error *err = NULL;
        const char *name = sigabbrev_np(sig);

        if (!name || asprintf(&target, "/containers/%s/kill?signal=%s", st->id_escaped, name) < 0)
                return;
        if (moat_client_call(st->client, "POST", target, NULL, NULL, NULL, &err) < 0)
                log_debug("forward signal %s: %s", name, err && err->msg ? err->msg : "failed");
}

static void term_restore(struct session_state *st)
{
        if (st->raw) {
                (void) tcsetattr(STDIN_FILENO, TCSADRAIN, &st->saved);
                st->raw = false;
        }
}

static int term_raw(struct session_state *st)
{
        struct termios t;
        if (!isatty(STDIN_FILENO))
                return 0;
        if (tcgetattr(STDIN_FILENO, &st->saved) < 0)
                return -errno;
        t = st->saved;
        cfmakeraw(&t);
        t.c_oflag = st->saved.c_oflag; /* docker keeps output processing */
        if (tcsetattr(STDIN_FILENO, TCSADRAIN, &t) < 0)
                return -errno;
        st->raw = true;
        return 0;
}

/* docker's term.ToBytes: single characters or ctrl-X (X in @, a-z, [, \,
 * ], ^, _), comma-separated. */
static int detach_keys_parse(const char *spec, uint8_t *keys, size_t *ret_n)
{
        static const char ctrl[] = "@abcdefghijklmnopqrstuvwxyz[\\]^_";
        size_t n = 0;

        for (const char *p = spec;;) {
                size_t len = strcspn(p, ",");
                const char *c;
                if (n == DETACH_KEYS_MAX)
                        return -EINVAL;
                if (len == 1)
                        keys[n++] = (uint8_t) p[0];
                else if (len == 6 && strncasecmp(p, "ctrl-", 5) == 0 && (c = strchr(ctrl, tolower((unsigned char) p[5]))))
                        keys[n++] = (uint8_t) (c - ctrl);
                else
                        return -EINVAL;
                p += len;
                if (*p == '\0')
                        break;
                p++;
        }
        *ret_n = n;
        return 0;
}

struct escape {
        uint8_t keys[DETACH_KEYS_MAX];
        size_t n, matched;
};

/* Send the input on, holding back what may begin the sequence; true when
 * the sequence is complete (none of it is sent). */
static bool escape_send(struct escape *esc, struct moat_client_hijack *h, const uint8_t *buf, size_t len,
                        bool *failed)
{
        size_t from = 0;

        for (size_t i = 0; i < len && esc->n > 0; i++) {
                if (buf[i] == esc->keys[esc->matched]) {
                        if (esc->matched == 0 && i > from && moat_client_hijack_write(h, buf + from, i - from) < 0)
                                *failed = true;
                        if (++esc->matched == esc->n)
                                return true;
                        from = i + 1;
                        continue;
                }
                if (esc->matched > 0) {
                        if (moat_client_hijack_write(h, esc->keys, esc->matched) < 0)
                                *failed = true;
                        esc->matched = 0;
                        from = i;
                        if (buf[i] == esc->keys[0]) {
                                esc->matched = 1;
                                from = i + 1;
                                if (esc->n == 1)
                                        return true;
                        }
                }
        }
        if (esc->matched == 0 && from < len && moat_client_hijack_write(h, buf + from, len - from) < 0)
                *failed = true;
        return false;
}

static int deliver(const struct cli_session *s, struct moat_demux *dm, const char *buf, size_t n)
{
        if (s->tty)
                return moat_write_all(STDOUT_FILENO, buf, n);
        return moat_demux_feed(dm, buf, n, STDOUT_FILENO, STDERR_FILENO);
}

int cli_session_run(struct moat_client *client, const struct cli_session *s, int *ret_status,
                    struct moat_error **reterr)
{
        return cli_session_run_keys(client, s, NULL, ret_status, NULL, reterr);
}

int cli_session_run_keys(struct moat_client *client, const struct cli_session *s, const char *detach_keys,
                         int *ret_status, bool *ret_detached, struct moat_error **reterr)
{
        struct moat_client_hijack *h = NULL;
        struct moat_client_pending *wait = NULL;
        struct session_state st = { .client = client, .s = s };
        struct moat_demux dm = {};
        _cleanup_close_ int sfd = -EBADF;
        _cleanup_json_ json_t *wait_reply = NULL;
        sigset_t mask, old;
        bool attach = s->in || s->out || s->err, out_open, in_open, wait_done = false, detached = false;
        struct escape esc = { .keys = { 0x10, 0x11 }, .n = 2 }; /* ctrl-p,ctrl-q */
        _cleanup_free_ char *keys_q = NULL;
        char buf[32 * 1024];
        int r;

        if (ret_detached)
                *ret_detached = false;
        if (!strempty(detach_keys)) {
                _cleanup_free_ char *e = moat_client_escape(detach_keys);
                if (!e || asprintf(&keys_q, "&detachKeys=%s", e) < 0)
                        return moat_error_set(reterr, -ENOMEM, "attach");
                /* docker's CLI: an invalid spec is the daemon's to refuse,
                 * the terminal watches for the default meanwhile. */
                if (detach_keys_parse(detach_keys, esc.keys, &esc.n) < 0) {
                        esc.keys[0] = 0x10;
                        esc.keys[1] = 0x11;
                        esc.n = 2;
                }
        }
        if (!s->tty || !s->in)
                esc.n = 0;

        st.id_escaped = moat_client_escape(s->id);
        if (!st.id_escaped)
                return moat_error_set(reterr, -ENOMEM, "attach");

        sigemptyset(&mask);
        if (s->sig_proxy)
                for (size_t i = 0; i < ELEMENTSOF(proxied); i++)
                        sigaddset(&mask, proxied[i]);
        if (s->tty)
                sigaddset(&mask, SIGWINCH);
        (void) signal(SIGPIPE, SIG_IGN);
        sigprocmask(SIG_BLOCK, &mask, &old);
        sfd = signalfd(-1, &mask, SFD_CLOEXEC | SFD_NONBLOCK);
        if (sfd < 0) {
                r = moat_error_set(reterr, errno, "signalfd");
                goto finish;
        }

        if (attach) {
                _cleanup_free_ char *target = NULL;
                _cleanup_json_ json_t *body = NULL;
                if (s->exec) {
                        unsigned rows, cols;
                        cli_console_size(STDOUT_FILENO, &rows, &cols);
                        body = json_pack("{s:b,s:b}", "Detach", 0, "Tty", s->tty);
                        if (body && s->tty)
                                json_object_set_new(body, "ConsoleSize", json_pack("[i,i]", (int) rows, (int) cols));
                        r = asprintf(&target, "/exec/%s/start", st.id_escaped);
                } else
                        r = asprintf(&target, "/containers/%s/attach?stream=1&stdin=%d&stdout=%d&stderr=%d%s%s",
                                     st.id_escaped, s->in, s->out, s->err, s->logs ? "&logs=1" : "",
                                     keys_q ? keys_q : "");
                if (r < 0 || (s->exec && !body)) {
                        r = moat_error_set(reterr, -ENOMEM, "attach");
                        goto finish;
                }
                r = moat_client_hijack(client, target, body, &h, reterr);
                if (r < 0)
                        goto finish;
        }
        if (s->wait_condition) {
                _cleanup_free_ char *target = NULL;
                if (asprintf(&target, "/containers/%s/wait%s%s", st.id_escaped, *s->wait_condition ? "?condition=" : "",
                             s->wait_condition) < 0) {
                        r = moat_error_set(reterr, -ENOMEM, "wait");
                        goto finish;
                }
                r = moat_client_pending_start(client, "POST", target, NULL, &wait, reterr);
                if (r < 0)
                        goto finish;
        }
        if (s->start) {
                _cleanup_free_ char *target = NULL;
                if (asprintf(&target, "/containers/%s/start", st.id_escaped) < 0) {
                        r = moat_error_set(reterr, -ENOMEM, "start");
                        goto finish;
                }
                r = moat_client_call(client, "POST", target, NULL, NULL, NULL, reterr);
                if (r < 0)
                        goto finish;
        }
        if (s->tty && attach) {
                if (s->in) {
                        r = term_raw(&st);
                        if (r < 0) {
                                r = moat_error_set(reterr, r, "set the terminal to raw mode");
                                goto finish;
                        }
                }
                resize(&st);
        }

        out_open = h != NULL;
        in_open = h && s->in;
        while (out_open || (wait && !wait_done)) {
                struct pollfd pf[3];
                int n = 0, i_sock = -1, i_in = -1, i_sig;

                while (out_open) {
                        ssize_t k = moat_client_hijack_read(h, buf, sizeof(buf));
                        if (k == -EAGAIN)
                                break;
                        if (k <= 0) {
                                out_open = false;
                                break;
                        }
                        r = deliver(s, &dm, buf, (size_t) k);
                        if (r == -EPROTO) {
                                r = moat_error_setx(reterr, r, "the daemon's stream is not multiplexed as expected");
                                goto finish;
                        }
                        if (r < 0) /* our stdout is gone: keep the session, as docker does */
                                continue;
                }
                if (!out_open && !(wait && !wait_done))
                        break;
                if (out_open) {
                        i_sock = n;
                        pf[n++] = (struct pollfd) { .fd = moat_client_hijack_fd(h), .events = POLLIN };
                }
                if (in_open && out_open) {
                        i_in = n;
                        pf[n++] = (struct pollfd) { .fd = STDIN_FILENO, .events = POLLIN };
                }
                i_sig = n;
                pf[n++] = (struct pollfd) { .fd = sfd, .events = POLLIN };
                if (wait && !wait_done) {
                        r = moat_client_pending_poll(wait, pf, (unsigned) n, -1, reterr);
                        if (r < 0)
                                goto finish;
                        wait_done = r > 0;
                } else if (poll(pf, (nfds_t) n, -1) < 0 && errno != EINTR) {
                        r = moat_error_set(reterr, errno, "poll");
                        goto finish;
                }
                (void) i_sock;
                if (i_in >= 0 && pf[i_in].revents) {
                        ssize_t k = read(STDIN_FILENO, buf, sizeof(buf));
                        if (k < 0 && (errno == EINTR || errno == EAGAIN))
                                ;
                        else if (k <= 0) {
                                if (esc.matched > 0)
                                        (void) !moat_client_hijack_write(h, esc.keys, esc.matched);
                                in_open = false;
                                (void) moat_client_hijack_close_write(h);
                        } else {
                                bool failed = false;
                                if (escape_send(&esc, h, (const uint8_t *) buf, (size_t) k, &failed)) {
                                        detached = true;
                                        break;
                                }
                                if (failed)
                                        in_open = false;
                        }
                }
                if (pf[i_sig].revents) {
                        struct signalfd_siginfo si;
                        while (read(sfd, &si, sizeof(si)) == sizeof(si)) {
                                if ((int) si.ssi_signo == SIGWINCH)
                                        resize(&st);
                                else if (s->sig_proxy && !s->exec)
                                        forward_signal(&st, (int) si.ssi_signo);
                        }
                }
        }
        term_restore(&st);
        if (detached) {
                /* As docker: the container keeps running; status 0. */
                if (ret_detached)
                        *ret_detached = true;
                *ret_status = 0;
                r = 0;
                goto finish;
        }
        if (dm.error) {
                r = moat_error_setx(reterr, -EIO, "Error: %s", dm.error);
                goto finish;
        }
        if (wait) {
                r = moat_client_pending_result(wait, &wait_reply, reterr);
                if (r < 0)
                        goto finish;
                const char *msg = json_string_value(json_object_get(json_object_get(wait_reply, "Error"), "Message"));
                if (!strempty(msg)) {
                        r = moat_error_setx(reterr, -EIO, "%s", msg);
                        goto finish;
                }
                *ret_status = (int) json_integer_value(json_object_get(wait_reply, "StatusCode"));
        }
        r = 0;
finish:
        term_restore(&st);
        moat_demux_done(&dm);
        moat_client_hijack_free(h);
        moat_client_pending_free(wait);
        sigprocmask(SIG_SETMASK, &old, NULL);
        free(st.id_escaped);
        return r;
}

int cmd_run(struct moat_cli *cli, int argc, char **argv, struct moat_error **reterr)
{
        _cleanup_(cli_container_opts_clear) struct cli_container_opts o = {};
        _cleanup_client_ struct moat_client *client = NULL;
        _cleanup_free_ char *id = NULL;
        int status = 0, r;

        cli->error_exit = 125;
        r = cli_container_opts_parse("run", true, argc, argv, &o, reterr);
        if (r < 0)
                return r;
        if (o.tty && o.interactive && !o.detach && !isatty(STDIN_FILENO))
                return moat_error_setx(reterr, -ENOTTY, "the input device is not a TTY");
        r = cli_client(cli, &client, reterr);
        if (r < 0)
                return r;
        /* Detached, nothing is attached first: moat's daemon starts it with
         * the create (cli_container_create); another daemon leaves the
         * start to us. */
        bool started = false;
        r = cli_container_create(client, &o, o.detach, &id, &started, reterr);
        if (r < 0)
                goto fail;
        if (o.detach) {
                if (!started) {
                        struct cli_session s = { .id = id, .start = true };
                        r = cli_session_run(client, &s, &status, reterr);
                        if (r < 0)
                                goto fail;
                }
                printf("%s\n", id);
                return 0;
        }
        struct cli_session s = {
                .id = id,
                .tty = o.tty,
                .in = o.interactive,
                .out = true,
                .err = true,
                .sig_proxy = o.sig_proxy,
                .start = true,
                .wait_condition = o.rm ? "removed" : "next-exit",
        };
        r = cli_session_run_keys(client, &s, o.detach_keys, &status, NULL, reterr);
        if (r < 0)
                goto fail;
        cli->exit_code = status;
        return 0;
fail:
        cli->error_exit = cli_run_error_status(*reterr);
        return r;
}
