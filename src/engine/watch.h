/* SPDX-License-Identifier: Apache-2.0 */
#pragma once
/*
 * Learning that monitors exited: one thread waits (epoll) on the pidfds
 * of every watched monitor and calls back when one becomes readable (the
 * process has exited). A monitor that is the daemon's child is reaped
 * there; one inherited from an earlier daemon is reaped by whoever is its
 * parent now. The callback runs on the watcher thread.
 */
#include "base/compat.h"
#include "base/error.h"

#include <sys/types.h>

struct moat_watch;

typedef void (*moat_watch_fn)(const char *key, void *userdata);

MOAT_NODISCARD int moat_watch_new(moat_watch_fn fn, void *userdata, struct moat_watch **ret,
                                  struct moat_error **reterr);
/* Stop the thread and close every pidfd. */
void moat_watch_free(struct moat_watch *w);
/* Watch pidfd (ownership passes to the watcher, also on error) under key
 * (copied; e.g. a container id or "<container>/<exec id>"). */
MOAT_NODISCARD int moat_watch_add(struct moat_watch *w, const char *key, int pidfd, struct moat_error **reterr);
