/* SPDX-License-Identifier: Apache-2.0 */
#pragma once
/*
 * The monitor zygote's protocol (monitor/main.c serves it, engine/
 * monitor-spawn.c uses it). The socket is SOCK_SEQPACKET. A request is
 * one message: `run` or `exec` and its options, each NUL-terminated
 * (argv[0] first), with the sync pipe as the one SCM_RIGHTS fd. The
 * answer is one struct moat_zygote_reply with the new monitor's pidfd as
 * SCM_RIGHTS when error is 0.
 */
#include <stdint.h>

#define MOAT_ZYGOTE_REQUEST_MAX 65536u
#define MOAT_ZYGOTE_MAX_ARGS 32

struct moat_zygote_reply {
        int32_t pid;
        int32_t error;      /* an errno value; 0: the pidfd is attached */
};
