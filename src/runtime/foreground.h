/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

/*
 * Waiting in the foreground for a container process (`run`, `exec`):
 * signals for the process are blocked before it is born and forwarded to
 * it, its terminal is relayed, and its exit status is returned the way a
 * shell reports it. Internal to the runtime library.
 */

#include <signal.h>

#include "base/compat.h"
#include "base/error.h"

/* The signals a foreground runtime forwards (all but the synchronous
 * faults and the terminal stop signals). Block them before the process
 * exists, so none is lost. */
void moat_foreground_signals(sigset_t *ret);

/*
 * Forward signals to pid and relay pty_master (-EBADF: none) until pid,
 * a child of the caller, exits; *ret_status is its exit code or
 * 128+signal. Output still in flight through the pty when it exits is
 * relayed too (bounded).
 */
MOAT_NODISCARD int moat_foreground_wait(pid_t pid, int pty_master, const sigset_t *forwarded, int *ret_status,
                                        struct moat_error **reterr);

/* Throw away pending signals of set, so that unblocking them does not
 * kill the runtime after the process is gone. */
void moat_foreground_drain_signals(const sigset_t *set);
