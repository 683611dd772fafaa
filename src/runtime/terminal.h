/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

/*
 * Terminals for containers with process.terminal: a pty pair allocated
 * inside the container (from its devpts), the slave made the controlling
 * terminal and stdio of the process, the master sent to the manager over
 * --console-socket with SCM_RIGHTS (runc's protocol), or relayed by the
 * runtime itself for a foreground `run` without a console socket.
 */

#include "base/compat.h"
#include "base/error.h"

/* Open a new pty pair through /dev/ptmx of the current mount namespace.
 * Both fds are O_CLOEXEC; *ret_slave_path is the /dev/pts/N name. */
MOAT_NODISCARD int moat_terminal_open_pty(int *ret_master, int *ret_slave, char **ret_slave_path,
                                          struct moat_error **reterr);

/* Set the window size when process.consoleSize is given. */
MOAT_NODISCARD int moat_terminal_set_size(int fd, uint32_t height, uint32_t width, struct moat_error **reterr);

/* Make fd the controlling terminal of a new session and dup it onto 0, 1
 * and 2. */
MOAT_NODISCARD int moat_terminal_setup_slave(int slave_fd, struct moat_error **reterr);

/* Connect to the AF_UNIX socket at path and send fd with SCM_RIGHTS, with
 * the pty's name as payload (as runc does). */
MOAT_NODISCARD int moat_terminal_send_fd(const char *socket_path, int fd, const char *name,
                                         struct moat_error **reterr);

/* Connect to a console socket (before pivot_root, from the host's view);
 * returns the connected socket fd. */
MOAT_NODISCARD int moat_terminal_connect(const char *socket_path, struct moat_error **reterr);

/* Send fd over an already connected socket. */
MOAT_NODISCARD int moat_terminal_send_fd_on(int sock_fd, int fd, const char *name, struct moat_error **reterr);

/*
 * Relay between the runtime's stdin/stdout and a pty master until the
 * master hangs up (the container's side closed) or the stop_fd becomes
 * readable. Puts the runtime's stdin in raw mode while it is a terminal and
 * restores it afterwards; copies the window size on SIGWINCH.
 */
MOAT_NODISCARD int moat_terminal_relay(int master_fd, int stop_fd, struct moat_error **reterr);
