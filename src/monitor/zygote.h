/* SPDX-License-Identifier: Apache-2.0 */
#pragma once
/*
 * The monitor zygote's protocol (monitor/main.c serves it, engine/
 * monitor-spawn.c uses it). The socket is SOCK_SEQPACKET. A request is
 * one message: `run` or `exec` and its options, each NUL-terminated
 * (argv[0] first), with the sync pipe as the one SCM_RIGHTS fd. The
 * answer is one struct moat_zygote_reply with the new monitor's pidfd as
 * SCM_RIGHTS when error is 0.
 *
 * The monitor that serves a request is usually a spare: a child the
 * zygote forked (with CLONE_PARENT, so the daemon's child like every
 * monitor) ahead of the request, which has faulted in the pages a create
 * writes and waits for its request on a socket of its own. The zygote
 * announces each spare in a message of its own ({0, 0, next_spare}) with
 * two SCM_RIGHTS fds: the other end of the spare's socket and its pidfd.
 * It keeps neither. The daemon sends the spare a request exactly as it
 * would the zygote (same message, same fd); the spare answers nothing, it
 * becomes the monitor, whose pid and pidfd the daemon already has. The
 * daemon reads announcements when it needs a monitor and past them while
 * it waits for an answer. There is one spare at a time: the zygote clones
 * the next once the last has started its container (or is gone). At the end of
 * its socket the zygote waits for its spare to go (the daemon closes the
 * spare's socket and reaps it), then exits.
 */
#include <stdint.h>

#define MOAT_ZYGOTE_REQUEST_MAX 65536u
#define MOAT_ZYGOTE_MAX_ARGS 32

struct moat_zygote_reply {
        int32_t pid;
        int32_t error;      /* an errno value; 0: the pidfd is attached */
        int32_t next_spare; /* in an announcement: the new spare's pid; else 0 */
};
