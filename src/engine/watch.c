/* SPDX-License-Identifier: Apache-2.0 */
#include "base/compat.h"

/* The monitor watcher (watch.h). Entries live in a list guarded by a
 * mutex; epoll's data holds the entry so the thread finds its key without
 * a lookup. An eventfd wakes the thread to stop. */

#include "engine/watch.h"

#include <pthread.h>
#include <signal.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/wait.h>
#include <unistd.h>

#include "base/cleanup.h"

struct entry {
        struct entry *next;
        int pidfd;
        char *key;
};

struct moat_watch {
        pthread_t thread;
        bool started;
        int epfd;
        int stopfd;
        pthread_mutex_t lock;
        struct entry *entries;
        moat_watch_fn fn;
        void *userdata;
};

static void entry_remove(struct moat_watch *w, struct entry *e)
{
        pthread_mutex_lock(&w->lock);
        for (struct entry **p = &w->entries; *p; p = &(*p)->next)
                if (*p == e) {
                        *p = e->next;
                        break;
                }
        pthread_mutex_unlock(&w->lock);
        (void) epoll_ctl(w->epfd, EPOLL_CTL_DEL, e->pidfd, NULL);
        close(e->pidfd);
        free(e->key);
        free(e);
}

static void *watch_thread(void *arg)
{
        struct moat_watch *w = arg;

        for (;;) {
                struct epoll_event ev[16];
                int n = epoll_wait(w->epfd, ev, 16, -1);
                if (n < 0) {
                        if (errno == EINTR)
                                continue;
                        return NULL;
                }
                for (int i = 0; i < n; i++) {
                        struct entry *e = ev[i].data.ptr;
                        siginfo_t si = {};

                        if (!e)
                                return NULL;   /* the stop eventfd */
                        /* Reap our own child; ECHILD for an inherited monitor. */
                        (void) waitid(P_PIDFD, (id_t) e->pidfd, &si, WEXITED | WNOHANG);
                        w->fn(e->key, w->userdata);
                        entry_remove(w, e);
                }
        }
}

int moat_watch_new(moat_watch_fn fn, void *userdata, struct moat_watch **ret, struct moat_error **reterr)
{
        struct moat_watch *w = calloc(1, sizeof(*w));
        struct epoll_event ev = { .events = EPOLLIN, .data.ptr = NULL };
        sigset_t all, old;
        int r;

        if (!w)
                return moat_error_set(reterr, -ENOMEM, "watcher");
        w->fn = fn;
        w->userdata = userdata;
        w->epfd = epoll_create1(EPOLL_CLOEXEC);
        w->stopfd = eventfd(0, EFD_CLOEXEC);
        pthread_mutex_init(&w->lock, NULL);
        if (w->epfd < 0 || w->stopfd < 0 || epoll_ctl(w->epfd, EPOLL_CTL_ADD, w->stopfd, &ev) < 0) {
                r = moat_error_set(reterr, errno, "watcher epoll");
                moat_watch_free(w);
                return r;
        }
        sigfillset(&all);
        pthread_sigmask(SIG_BLOCK, &all, &old);
        r = -pthread_create(&w->thread, NULL, watch_thread, w);
        pthread_sigmask(SIG_SETMASK, &old, NULL);
        if (r < 0) {
                moat_error_set(reterr, r, "watcher thread");
                moat_watch_free(w);
                return r;
        }
        w->started = true;
        *ret = w;
        return 0;
}

void moat_watch_free(struct moat_watch *w)
{
        if (!w)
                return;
        if (w->started) {
                uint64_t one = 1;
                (void) !write(w->stopfd, &one, sizeof(one));
                pthread_join(w->thread, NULL);
        }
        for (struct entry *e = w->entries, *next; e; e = next) {
                next = e->next;
                close(e->pidfd);
                free(e->key);
                free(e);
        }
        if (w->epfd >= 0)
                close(w->epfd);
        if (w->stopfd >= 0)
                close(w->stopfd);
        pthread_mutex_destroy(&w->lock);
        free(w);
}

int moat_watch_add(struct moat_watch *w, const char *key, int pidfd, struct moat_error **reterr)
{
        struct entry *e = calloc(1, sizeof(*e));
        struct epoll_event ev = { .events = EPOLLIN };

        if (!e || !(e->key = strdup(key))) {
                free(e);
                close(pidfd);
                return moat_error_set(reterr, -ENOMEM, "watch %s", key);
        }
        e->pidfd = pidfd;
        ev.data.ptr = e;
        pthread_mutex_lock(&w->lock);
        e->next = w->entries;
        w->entries = e;
        pthread_mutex_unlock(&w->lock);
        if (epoll_ctl(w->epfd, EPOLL_CTL_ADD, pidfd, &ev) < 0) {
                int r = moat_error_set(reterr, errno, "watch %s", key);
                entry_remove(w, e);
                return r;
        }
        return 0;
}
