/* SPDX-License-Identifier: Apache-2.0 */
#include "base/compat.h"

/*
 * The byte relay of attach and exec (routes.h): between a hijacked client
 * connection and the monitor's stream, which is already in docker's
 * framing. The client's half-close becomes the monitor's, which closes
 * the process's stdin (StdinOnce); the end of the monitor's stream ends
 * the relay.
 *
 * Detach keys (docker's ctrl-p,ctrl-q on tty sessions, --detach-keys):
 * the client's input is watched for the sequence byte by byte; bytes that
 * could begin it are held back, and sent on (with what follows) as soon as
 * the input leaves the sequence. The whole sequence is never sent: the
 * relay stops and the monitor's connection is dropped without a
 * half-close, so the process keeps running and its stdin stays open.
 */

#include "api/routes.h"

#include <ctype.h>
#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include "base/cleanup.h"
#include "base/error.h"
#include "base/fileio.h"

#define RELAY_BUFFER 65536

/* docker's term.ToBytes: comma-separated single characters, or ctrl-X
 * for X in @, a-z, [, \, ], ^, _ (case-insensitive). */
int moat_api_detach_keys_parse(const char *spec, uint8_t *keys, size_t size, size_t *ret_n,
                               struct moat_error **reterr)
{
        static const char ctrl[] = "@abcdefghijklmnopqrstuvwxyz[\\]^_";
        size_t n = 0;

        if (strlen(spec) > MOAT_API_DETACH_SPEC_MAX)
                return moat_error_setx(reterr, -EINVAL, "Invalid detach keys (%.32s...) provided: longer than %d bytes",
                                       spec, MOAT_API_DETACH_SPEC_MAX);
        for (const char *p = spec;;) {
                size_t len = strcspn(p, ",");
                uint8_t code;
                if (len == 1)
                        code = (uint8_t) p[0];
                else if (len == 6 && strncasecmp(p, "ctrl-", 5) == 0 && p[5] != '\0' &&
                         strchr(ctrl, tolower((unsigned char) p[5])))
                        code = (uint8_t) (strchr(ctrl, tolower((unsigned char) p[5])) - ctrl);
                else
                        return moat_error_setx(reterr, -EINVAL, "Invalid detach keys (%s) provided: unknown character '%.*s'",
                                               spec, (int) len, p);
                if (n == size)
                        return moat_error_setx(reterr, -EINVAL, "Invalid detach keys (%s) provided: more than %zu keys",
                                               spec, size);
                keys[n++] = code;
                p += len;
                if (*p == '\0')
                        break;
                p++;
        }
        *ret_n = n;
        return 0;
}

/* Pass the client's bytes on, holding back a prefix of the detach
 * sequence (*matched bytes of it); true when the sequence is complete. */
static bool relay_input(int fd, const uint8_t *buf, size_t len, const uint8_t *keys, size_t n_keys,
                        size_t *matched, bool *failed)
{
        size_t from = 0;

        for (size_t i = 0; i < len && n_keys > 0; i++) {
                if (buf[i] == keys[*matched]) {
                        if (*matched == 0 && i > from && write_all(fd, buf + from, i - from) < 0)
                                *failed = true;
                        if (++*matched == n_keys)
                                return true;
                        from = i + 1;
                        continue;
                }
                if (*matched > 0) {
                        /* Not the sequence after all: what was held goes on. */
                        if (write_all(fd, keys, *matched) < 0)
                                *failed = true;
                        *matched = 0;
                        from = i;
                        if (buf[i] == keys[0]) {
                                *matched = 1;
                                from = i + 1;
                                if (n_keys == 1)
                                        return true;
                        }
                }
        }
        if (*matched == 0 && from < len && write_all(fd, buf + from, len - from) < 0)
                *failed = true;
        return false;
}

bool moat_api_relay_detach(struct moat_http_hijack *h, int fd, bool forward_stdin, const uint8_t *keys,
                           size_t n_keys)
{
        _cleanup_free_ char *buf = malloc(RELAY_BUFFER);
        bool client_eof = false, detached = false;
        size_t matched = 0;

        if (!buf)
                return false;
        if (!forward_stdin)
                n_keys = 0;
        for (;;) {
                int w;
                if (client_eof) {
                        struct pollfd p = { .fd = fd, .events = POLLIN };
                        int n = poll(&p, 1, -1);
                        if (n < 0 && errno == EINTR)
                                continue;
                        w = n > 0 ? 1 : -1;
                } else
                        w = moat_http_hijack_wait(h, fd, POLLIN, -1);
                if (w < 0)
                        break;
                if (w == 2) {
                        ssize_t n = moat_http_hijack_read(h, buf, RELAY_BUFFER);
                        if (n <= 0) {
                                if (matched > 0)
                                        (void) !write_all(fd, keys, matched);
                                matched = 0;
                                client_eof = true;
                                (void) shutdown(fd, SHUT_WR);
                        } else if (forward_stdin) {
                                bool failed = false;
                                if (relay_input(fd, (const uint8_t *) buf, (size_t) n, keys, n_keys, &matched,
                                                &failed)) {
                                        detached = true;
                                        break;
                                }
                                if (failed)
                                        break;
                        }
                } else if (w == 1) {
                        ssize_t n = read(fd, buf, RELAY_BUFFER);
                        if (n < 0 && errno == EINTR)
                                continue;
                        if (n <= 0)
                                break;
                        if (moat_http_hijack_write(h, buf, (size_t) n) < 0)
                                break;
                }
        }
        (void) !moat_http_hijack_close_write(h);
        return detached;
}

void moat_api_relay(struct moat_http_hijack *h, int fd, bool forward_stdin)
{
        (void) moat_api_relay_detach(h, fd, forward_stdin, NULL, 0);
}

void moat_api_stream_message(struct moat_http_hijack *h, bool tty, uint8_t stream, const char *msg)
{
        size_t len = strlen(msg);
        uint8_t hdr[8] = { stream, 0, 0, 0, (uint8_t) (len >> 24), (uint8_t) (len >> 16), (uint8_t) (len >> 8),
                           (uint8_t) len };

        if (tty || moat_http_hijack_write(h, hdr, sizeof(hdr)) >= 0)
                (void) !moat_http_hijack_write(h, msg, len);
        (void) !moat_http_hijack_close_write(h);
}
