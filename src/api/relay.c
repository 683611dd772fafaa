/* SPDX-License-Identifier: Apache-2.0 */
#include "base/compat.h"

/*
 * The byte relay of attach and exec (routes.h): between a hijacked client
 * connection and the monitor's stream, which is already in docker's
 * framing. The client's half-close becomes the monitor's, which closes
 * the process's stdin (StdinOnce); the end of the monitor's stream ends
 * the relay.
 */

#include "api/routes.h"

#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "base/cleanup.h"
#include "base/fileio.h"

#define RELAY_BUFFER 65536

void moat_api_relay(struct moat_http_hijack *h, int fd, bool forward_stdin)
{
        _cleanup_free_ char *buf = malloc(RELAY_BUFFER);
        bool client_eof = false;

        if (!buf)
                return;
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
                                client_eof = true;
                                (void) shutdown(fd, SHUT_WR);
                        } else if (forward_stdin && write_all(fd, buf, (size_t) n) < 0)
                                break;
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
