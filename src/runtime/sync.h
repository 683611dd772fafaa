/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

/*
 * Messages between the runtime and a process it is setting up (the
 * container init in linux.c, an exec'd process in exec.c), over a
 * SOCK_SEQPACKET socketpair: a small header (type, errno), an optional
 * bounded text payload, and optionally one fd passed with SCM_RIGHTS.
 * Each user defines its own message types. Internal to the runtime.
 */

#include "base/compat.h"

/* Upper bound of one payload (an error text or a state JSON). */
#define MOAT_SYNC_MSG_MAX (64u * 1024u)

struct moat_sync_header {
        uint32_t type;
        int32_t errnum;
};

/* Send one message; payload (may be NULL) is cut at MOAT_SYNC_MSG_MAX, so
 * callers that need it whole check its length first. pass_fd < 0: none. */
MOAT_NODISCARD int moat_sync_send(int fd, uint32_t type, int errnum, const char *payload, int pass_fd);

/* Receive one message. *ret_payload (if asked for) is NUL-terminated; a
 * passed fd lands in *ret_fd (closed when ret_fd is NULL). The peer
 * closing its end gives -EPIPE; a truncated message -EBADMSG. */
MOAT_NODISCARD int moat_sync_recv(int fd, struct moat_sync_header *ret_h, char **ret_payload, int *ret_fd);
