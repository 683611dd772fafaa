/* SPDX-License-Identifier: Apache-2.0 */
#include "base/compat.h"

/*
 * moat-monitor: the per-container monitor (docs/monitor.md).
 *
 *   run / exec   set the process up (new session, child subreaper, stdio
 *                pipes or a pty received on a private console socket),
 *                create the container (or exec the process) so that it is
 *                our child, bind the attach and control sockets, write
 *                monitor.pid, then run the loop (loop.c), which answers
 *                the sync fd and stays until the process is gone.
 *   start        (internal) the runtime's start, for --wait-start;
 *   cleanup      (internal) the OOM kill count and a forced delete, after
 *                the init exited. Both are what the loop runs in a forked
 *                child (loop_helper); as verbs they serve the loops of
 *                monitors an older moat started, which exec them.
 *   zygote       (internal) forks a run or exec monitor per request of
 *                the daemon (see zygote() below, zygote.h).
 *
 * An idle monitor must cost little memory (docs/monitor.md): the create
 * runs on a stack of its own, which with the heap it grew is given back
 * (create_on_side_stack; the loop trims once the process has started), so
 * the loop keeps only its own pages.
 *
 * On any failure nothing is left: the runtime undoes a failed create
 * itself, and a failure after it kills and deletes the container before
 * {"error":...} is written.
 */

#include <assert.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <linux/sched.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <jansson.h>
#include <link.h>
#include <malloc.h>
#include <poll.h>
#include <sched.h>
#include <sys/auxv.h>
#include <ucontext.h>
#include <sys/mman.h>

#include "base/cleanup.h"
#include "base/json-seed.h"
#include "base/fileio.h"
#include "base/log.h"
#include "base/parse.h"
#include "monitor/loop.h"
#include "monitor/monitor.h"
#include "monitor/zygote.h"
#include "runtime/runtime.h"

#define SYNC_FD 3

struct opts {
        bool exec;
        const char *id;
        const char *exec_id;
        const char *dir;
        const char *runtime_root;
        const char *process_file;
        const char *log_path;
        uint64_t log_max_size;
        unsigned log_max_file;
        bool tty, open_stdin, stdin_once, wait_start;
        int sync_fd;
};

static void sync_reply_error(int fd, const char *msg)
{
        json_t *doc = json_pack("{s:s}", "error", msg ? msg : "unknown error");
        char *s = doc ? json_dumps(doc, JSON_COMPACT) : NULL;
        if (s && fd >= 0) {
                int r = write_all(fd, s, strlen(s));
                if (r >= 0)
                        r = write_all(fd, "\n", 1);
                (void) r;
        }
        free(s);
        json_decref(doc);
}

static int parse_args(int argc, char **argv, struct opts *o, struct moat_error **reterr)
{
        enum { OPT_ID = 1000, OPT_EXEC_ID, OPT_BUNDLE, OPT_DIR, OPT_ROOT, OPT_PROCESS, OPT_LOG, OPT_MAXSIZE, OPT_MAXFILE, OPT_TTY,
               OPT_STDIN, OPT_ONCE, OPT_WAIT, OPT_SYNC };
        static const struct option options[] = {
                { "id", required_argument, NULL, OPT_ID },
                { "exec-id", required_argument, NULL, OPT_EXEC_ID },
                { "bundle", required_argument, NULL, OPT_BUNDLE },
                { "dir", required_argument, NULL, OPT_DIR },
                { "runtime-root", required_argument, NULL, OPT_ROOT },
                { "process", required_argument, NULL, OPT_PROCESS },
                { "log-path", required_argument, NULL, OPT_LOG },
                { "log-max-size", required_argument, NULL, OPT_MAXSIZE },
                { "log-max-file", required_argument, NULL, OPT_MAXFILE },
                { "tty", no_argument, NULL, OPT_TTY },
                { "stdin", no_argument, NULL, OPT_STDIN },
                { "stdin-once", no_argument, NULL, OPT_ONCE },
                { "wait-start", no_argument, NULL, OPT_WAIT },
                { "sync-fd", required_argument, NULL, OPT_SYNC },
                {},
        };
        int c;
        uint32_t u;

        optind = 1;
        opterr = 0;
        while ((c = getopt_long(argc, argv, "", options, NULL)) != -1) {
                switch (c) {
                case OPT_ID: o->id = optarg; break;
                case OPT_EXEC_ID: o->exec_id = optarg; break;
                case OPT_BUNDLE:
                case OPT_DIR: o->dir = optarg; break;
                case OPT_ROOT: o->runtime_root = optarg; break;
                case OPT_PROCESS: o->process_file = optarg; break;
                case OPT_LOG: o->log_path = optarg; break;
                case OPT_MAXSIZE:
                        if (safe_atou64(optarg, &o->log_max_size) < 0)
                                return moat_error_setx(reterr, -EINVAL, "--log-max-size \"%s\": not a number", optarg);
                        break;
                case OPT_MAXFILE:
                        if (safe_atou32(optarg, &u) < 0 || u == 0 || u > 1000)
                                return moat_error_setx(reterr, -EINVAL, "--log-max-file \"%s\": 1 to 1000", optarg);
                        o->log_max_file = u;
                        break;
                case OPT_TTY: o->tty = true; break;
                case OPT_STDIN: o->open_stdin = true; break;
                case OPT_ONCE: o->stdin_once = true; break;
                case OPT_WAIT: o->wait_start = true; break;
                case OPT_SYNC:
                        if (safe_atoi(optarg, &o->sync_fd) < 0 || o->sync_fd < 0)
                                return moat_error_setx(reterr, -EINVAL, "--sync-fd \"%s\": not an fd", optarg);
                        break;
                default:
                        return moat_error_setx(reterr, -EINVAL, "unknown option '%s'", argv[optind - 1]);
                }
        }
        if (optind != argc)
                return moat_error_setx(reterr, -EINVAL, "unexpected argument '%s'", argv[optind]);
        int r = moat_id_validate(o->id, reterr);
        if (r < 0)
                return moat_error_wrap(reterr, r, "--id");
        if (o->exec_id) {
                r = moat_id_validate(o->exec_id, reterr);
                if (r < 0)
                        return moat_error_wrap(reterr, r, "--exec-id");
        }
        return 0;
}

/* Receive the pty master the runtime sent on the console socket. */
static int receive_pty(int listen_fd, struct moat_error **reterr)
{
        _cleanup_close_ int conn = accept4(listen_fd, NULL, NULL, SOCK_CLOEXEC);
        union {
                struct cmsghdr hdr;
                char buf[CMSG_SPACE(sizeof(int))];
        } control = {};
        char name[PATH_MAX];
        struct iovec iov = { .iov_base = name, .iov_len = sizeof(name) };
        struct msghdr msg = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = control.buf,
                              .msg_controllen = sizeof(control.buf) };

        if (conn < 0)
                return moat_error_set(reterr, errno, "accepting the console socket connection");
        ssize_t n;
        do
                n = recvmsg(conn, &msg, MSG_CMSG_CLOEXEC);
        while (n < 0 && errno == EINTR);
        if (n < 0)
                return moat_error_set(reterr, errno, "receiving the pty master");
        struct cmsghdr *c = CMSG_FIRSTHDR(&msg);
        if (!c || c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS || c->cmsg_len != CMSG_LEN(sizeof(int)))
                return moat_error_setx(reterr, -EPROTO, "the console socket carried no pty master");
        int fd;
        memcpy(&fd, CMSG_DATA(c), sizeof(int));
        return fd;
}

/* A unix stream socket listening at dir/name, 0600. */
static int listen_at(int dir_fd, const char *name, int backlog, struct moat_error **reterr)
{
        struct sockaddr_un sa = { .sun_family = AF_UNIX };
        int n = snprintf(sa.sun_path, sizeof(sa.sun_path), "/proc/self/fd/%d/%s", dir_fd, name);
        if (n < 0 || (size_t) n >= sizeof(sa.sun_path))
                return moat_error_setx(reterr, -ENAMETOOLONG, "socket name '%s' is too long", name);
        _cleanup_close_ int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
        if (fd < 0)
                return moat_error_set(reterr, errno, "socket");
        if (unlinkat(dir_fd, name, 0) < 0 && errno != ENOENT)
                return moat_error_set(reterr, errno, "removing a stale %s", name);
        mode_t old = umask(0177);
        int r = bind(fd, (struct sockaddr *) &sa, sizeof(sa));
        umask(old);
        if (r < 0)
                return moat_error_set(reterr, errno, "binding %s", name);
        if (listen(fd, backlog) < 0)
                return moat_error_set(reterr, errno, "listening on %s", name);
        return TAKE_FD(fd);
}

static void undo(const struct opts *o, const struct moat_runtime *rt, pid_t pid)
{
        if (pid > 0) {
                (void) kill(pid, SIGKILL);
                while (waitpid(pid, NULL, 0) < 0 && errno == EINTR)
                        ;
        }
        if (!o->exec) {
                _cleanup_error_ struct moat_error *ignored = NULL;
                int k = moat_container_delete(rt, o->id, true, &ignored);
                (void) k;
        }
}

/*
 * The create runs on a stack mapped here and unmapped after it, entered
 * with swapcontext() on the one thread: what the runtime touches (that
 * stack, the heap it grows) is released, the heap by the loop once the
 * process has started (off the start's critical path), so an idle monitor
 * keeps only the pages the loop uses, without an execve of a second
 * program (a fresh address space costs 2-3 ms of CPU on this kind of
 * machine). Not a thread: a new thread is woken on another CPU (up to 3 ms
 * of latency on a VM's idle vCPU), and once the address space has run on
 * two CPUs every copy-on-write fault after the init's fork flushes the
 * other CPU's TLB by IPI. The zygote runs with glibc's tcache off
 * (zygote_enter), so the create's small frees go back to the heap that
 * malloc_trim() returns.
 */
#define CREATE_STACK_SIZE (8u << 20)

struct create_job {
        const struct opts *o;
        const char *console_path;
        int dir_fd;                 /* the run directory */
        pid_t pid;
        int r;
        struct moat_error *err;
        uint64_t oom_base;
        bool poststart_hooks, inline_start;
        struct timespec started;
        struct moat_create_leftovers *leftovers;
        /* made by monitor_files() */
        bool files_made;
        int attach_l, ctl_l;
        struct moat_logfile *log;
};

/* job: a struct create_job; for a run, the runtime calls it while the init
 * sets up its root (moat_create_options.while_init_prepares). */
static int monitor_files(void *job, struct moat_error **reterr);

static struct create_job *create_job_running;

/* A network namespace the spare made ahead for its container (spare_warm). */
static int spare_netns_fd = -EBADF;
/* The spare's end of the zygote's pipe (struct spare): held until the
 * container is started, so that the zygote clones the next spare once
 * this start no longer needs both CPUs (moat_monitor_loop_args). */
static int spare_taken_fd = -EBADF;

static void create_entry(void)
{
        struct create_job *job = create_job_running;
        const struct opts *o = job->o;
        struct moat_runtime rt = { .root = o->runtime_root };

        if (o->exec) {
                struct moat_exec_options eo = {
                        .id = o->id,
                        .process_file = o->process_file,
                        .tty = o->tty,
                        .console_socket = job->console_path,
                        .detach = true,
                        .ret_pid = &job->pid,
                };
                job->r = moat_container_exec(&rt, &eo, NULL, &job->err);
        } else {
                struct moat_create_options co = {
                        .id = o->id,
                        .bundle = o->dir,
                        .console_socket = job->console_path,
                        /* started by the loop, after the sync answer */
                        .mode = MOAT_CREATE_ONLY,
                        .ret_pid = &job->pid,
                        .ret_poststart_hooks = &job->poststart_hooks,
                        .ret_leftovers = &job->leftovers,
                        .fresh_netns_fd = spare_netns_fd >= 0 ? &spare_netns_fd : NULL,
                        .while_init_prepares = monitor_files,
                        .while_init_prepares_userdata = job,
                };
                job->r = moat_container_create(&rt, &co, NULL, &job->err);
        }
        clock_gettime(CLOCK_REALTIME, &job->started);
        if (job->r < 0 || o->exec)
                return;
        /* Poststart hooks are the runtime's start's to run. */
        job->inline_start = !job->poststart_hooks;
}

/* The create's stack and, below it, a guard page; NULL if it cannot be had. */
#define CREATE_STACK_MAP_SIZE (CREATE_STACK_SIZE + (size_t) sysconf(_SC_PAGESIZE))

static void *create_stack_map(void)
{
        void *map = mmap(NULL, CREATE_STACK_MAP_SIZE, PROT_READ | PROT_WRITE,
                         MAP_PRIVATE | MAP_ANONYMOUS | MAP_STACK | MAP_NORESERVE, -1, 0);
        if (map == MAP_FAILED)
                return NULL;
        if (mprotect(map, (size_t) sysconf(_SC_PAGESIZE), PROT_NONE) < 0) {
                (void) munmap(map, CREATE_STACK_MAP_SIZE);
                return NULL;
        }
        return map;
}

/* Mapped (and its top faulted in) by a spare before its request came. */
static void *side_stack_ready;

static void *side_stack_get(void)
{
        void *map = side_stack_ready;
        side_stack_ready = NULL;
        return map ? map : create_stack_map();
}

static int create_on_side_stack(struct create_job *job, struct moat_error **reterr)
{
        ucontext_t caller, side;

        /* One arena: everything lands in the main heap, whose top
         * malloc_trim() can give back. */
        (void) mallopt(M_ARENA_MAX, 1);
        void *volatile map = side_stack_get();
        if (!map)
                return moat_error_set(reterr, errno, "mapping the create's stack");
        if (getcontext(&side) < 0) {
                int r = moat_error_set(reterr, errno, "the create's stack");
                (void) munmap(map, CREATE_STACK_MAP_SIZE);
                return r;
        }
        side.uc_stack.ss_sp = (char *) map + (CREATE_STACK_MAP_SIZE - CREATE_STACK_SIZE);
        side.uc_stack.ss_size = CREATE_STACK_SIZE;
        side.uc_link = &caller;
        makecontext(&side, create_entry, 0);
        create_job_running = job;
        int r = swapcontext(&caller, &side) < 0 ? -errno : 0;
        create_job_running = NULL;
        (void) munmap(map, CREATE_STACK_MAP_SIZE);
        if (r < 0)
                return moat_error_set(reterr, r, "switching to the create's stack");
        return 0;
}

/* The loop's helper verbs, run in a forked child with stdout on a pipe. */
static int loop_helper(const char *verb, const char *id, const char *runtime_root);
static int loop_cleanup(const char *id, const char *runtime_root, uint64_t *ret_oom_kills);

/*
 * What the monitor must have before it answers: the attach and control
 * sockets, its pid file and, for a run, the container's log and the OOM
 * kills counted so far. For a run they are made while the init sets up the
 * container's root, which takes the init milliseconds on another CPU; an
 * exec makes them after its process exists.
 */
static int monitor_files(void *userdata, struct moat_error **reterr)
{
        struct create_job *job = userdata;
        const struct opts *o = job->o;
        char name[1100];
        int r;

        r = moat_monitor_file_name(o->exec ? o->exec_id : NULL, MOAT_MONITOR_ATTACH_SOCK, name, sizeof(name));
        job->attach_l = r < 0 ? r : listen_at(job->dir_fd, name, 16, reterr);
        if (job->attach_l >= 0) {
                r = moat_monitor_file_name(o->exec ? o->exec_id : NULL, MOAT_MONITOR_CTL_SOCK, name, sizeof(name));
                job->ctl_l = r < 0 ? r : listen_at(job->dir_fd, name, 16, reterr);
        }
        if (job->attach_l < 0 || job->ctl_l < 0)
                return moat_error_set(reterr, job->attach_l < 0 ? job->attach_l : job->ctl_l, "monitor sockets");

        char text[32];
        int n = snprintf(text, sizeof(text), "%d\n", (int) getpid());
        r = moat_monitor_file_name(o->exec ? o->exec_id : NULL, MOAT_MONITOR_PID_FILE, name, sizeof(name));
        if (r >= 0)
                r = write_file_replace_at(job->dir_fd, name, text, (size_t) n, 0644);
        if (r < 0)
                return moat_error_set(reterr, r, "writing %s", name);

        if (o->log_path) {
                r = moat_logfile_open(o->log_path, o->log_max_size, o->log_max_file ? o->log_max_file : 1, &job->log,
                                      reterr);
                if (r < 0)
                        return r;
        }
        /* The OOM kills its cgroup counted before it: what the exit's count is
         * compared with (the cgroup and the state exist by now). */
        if (!o->exec) {
                struct moat_runtime rt = { .root = o->runtime_root };
                _cleanup_error_ struct moat_error *ignored = NULL;
                if (moat_container_oom_kills(&rt, o->id, &job->oom_base, &ignored) < 0)
                        job->oom_base = 0;
        }
        job->files_made = true;
        return 0;
}

static int setup(struct opts *o)
{
        _cleanup_error_ struct moat_error *err = NULL;
        _cleanup_close_ int dir_fd = -EBADF, devnull = -EBADF, console_l = -EBADF, pty = -EBADF, attach_l = -EBADF,
                            ctl_l = -EBADF, fifo_fd = -EBADF, state_fd = -EBADF;
        int out_pipe[2] = { -EBADF, -EBADF }, err_pipe[2] = { -EBADF, -EBADF }, in_pipe[2] = { -EBADF, -EBADF };
        char name[1100], console_path[1200];
        struct moat_runtime rt = { .root = o->runtime_root };
        struct create_job job = { .o = o, .dir_fd = -EBADF, .attach_l = -EBADF, .ctl_l = -EBADF };
        pid_t pid = 0;
        int r;

        if (!o->dir || !o->runtime_root || (o->exec && !o->process_file) || (!o->exec && o->process_file) ||
            (o->exec && o->log_path)) {
                r = moat_error_setx(&err, -EINVAL,
                                    o->exec ? "exec needs --dir, --runtime-root and --process (and no --log-path)"
                                            : "run needs --bundle and --runtime-root");
                goto fail;
        }
        /* Our own stdio is /dev/null; the container's is set up below. */
        devnull = open("/dev/null", O_RDWR | O_CLOEXEC);
        if (devnull < 0) {
                r = moat_error_set(&err, errno, "/dev/null");
                goto fail;
        }
        (void) setsid();
        (void) prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0);
        signal(SIGCHLD, SIG_DFL);
        signal(SIGPIPE, SIG_DFL);

        dir_fd = open(o->dir, O_PATH | O_DIRECTORY | O_CLOEXEC);
        if (dir_fd < 0) {
                r = moat_error_set(&err, errno, "%s '%s'", o->exec ? "--dir" : "--bundle", o->dir);
                goto fail;
        }
        job.dir_fd = dir_fd;

        if (o->tty) {
                r = moat_monitor_file_name(o->exec ? o->exec_id : NULL, "console.sock", name, sizeof(name));
                if (r >= 0)
                        console_l = listen_at(dir_fd, name, 1, &err);
                if (r < 0 || console_l < 0) {
                        r = r < 0 ? moat_error_set(&err, r, "console socket") : console_l;
                        goto fail;
                }
                /* Blocking accept once the runtime has connected. */
                (void) fcntl(console_l, F_SETFL, 0);
                snprintf(console_path, sizeof(console_path), "/proc/self/fd/%d/%s", dir_fd, name);
                job.console_path = console_path;
        } else if (pipe2(out_pipe, O_CLOEXEC) < 0 || pipe2(err_pipe, O_CLOEXEC) < 0) {
                r = moat_error_set(&err, errno, "pipe");
                goto fail;
        }
        if (o->open_stdin && !o->tty && pipe2(in_pipe, O_CLOEXEC) < 0) {
                r = moat_error_set(&err, errno, "pipe");
                goto fail;
        }
        /* The container inherits 0, 1 and 2. */
        if (dup2(in_pipe[0] >= 0 ? in_pipe[0] : devnull, 0) < 0 || dup2(out_pipe[1] >= 0 ? out_pipe[1] : devnull, 1) < 0 ||
            dup2(err_pipe[1] >= 0 ? err_pipe[1] : devnull, 2) < 0) {
                r = moat_error_set(&err, errno, "dup2");
                goto fail;
        }

        r = create_on_side_stack(&job, &err);
        /* Used or not, it is the init's alone now. */
        spare_netns_fd = safe_close(spare_netns_fd);
        attach_l = job.attach_l;
        ctl_l = job.ctl_l;
        if (r >= 0) {
                r = job.r;
                if (r < 0)
                        err = TAKE_PTR(job.err);
                pid = job.pid;
        }
        /* The container's ends must not stay open here: EOF on the pipes
         * is how the loop learns that the output is complete. */
        (void) dup2(devnull, 0);
        (void) dup2(devnull, 1);
        (void) dup2(devnull, 2);
        safe_close(out_pipe[1]);
        safe_close(err_pipe[1]);
        safe_close(in_pipe[0]);
        out_pipe[1] = err_pipe[1] = in_pipe[0] = -EBADF;
        /* The run directory is the monitor's working directory: with its
         * comm, that is how a restarted daemon recognises it (the command
         * line is the zygote's). */
        if (fchdir(dir_fd) < 0 && chdir("/") < 0) {
                /* create entered the bundle; nothing depends on the cwd */
        }
        if (r < 0) {
                pid = 0;
                goto fail_unlink;
        }

        if (o->tty) {
                pty = receive_pty(console_l, &err);
                if (pty < 0) {
                        r = pty;
                        goto fail_undo;
                }
        }
        console_l = safe_close(console_l);
        if (o->tty)
                (void) unlinkat(dir_fd, name, 0);

        if (!job.files_made) {
                r = monitor_files(&job, &err);
                attach_l = job.attach_l;
                ctl_l = job.ctl_l;
                if (r < 0)
                        goto fail_undo;
        }

        /* The start without a helper process (loop.c start_inline) for a
         * container whose config has no poststart hooks. */
        if (job.inline_start) {
                char state[PATH_MAX];
                snprintf(state, sizeof(state), "%s/%s", o->runtime_root, o->id);
                state_fd = open(state, O_PATH | O_DIRECTORY | O_CLOEXEC);
                fifo_fd = state_fd >= 0 ? openat(state_fd, "exec.fifo", O_PATH | O_NOFOLLOW | O_CLOEXEC) : -EBADF;
                if (fifo_fd < 0) {
                        state_fd = safe_close(state_fd);
                        fifo_fd = -EBADF;
                }
        }

        struct moat_monitor_loop_args la = {
                .exec = o->exec,
                .id = o->id,
                .exec_id = o->exec ? o->exec_id : NULL,
                .runtime_root = o->runtime_root,
                .helper = loop_helper,
                .cleanup = loop_cleanup,
                .pid = pid,
                .dir_fd = TAKE_FD(dir_fd),
                .out_fd = out_pipe[0],
                .err_fd = err_pipe[0],
                .pty_fd = TAKE_FD(pty),
                .in_fd = in_pipe[1],
                .stdin_to_pty = o->tty && o->open_stdin,
                .attach_l = TAKE_FD(attach_l),
                .ctl_l = TAKE_FD(ctl_l),
                .sync_fd = o->sync_fd,
                .log = TAKE_PTR(job.log),
                .log_path = o->log_path,
                .log_max_size = o->log_max_size,
                .log_max_file = o->log_max_file ? o->log_max_file : 1,
                .oom_base = job.oom_base,
                .started_at = o->exec && !o->wait_start ? &job.started : NULL,
                .stdin_once = o->stdin_once,
                .wait_start = o->wait_start || !o->exec,
                .start_after_sync = !o->exec && !o->wait_start,
                .leftovers = TAKE_PTR(job.leftovers),
                .fifo_path_fd = TAKE_FD(fifo_fd),
                .state_dir_fd = TAKE_FD(state_fd),
                .started_fd = TAKE_FD(spare_taken_fd),
        };
        return moat_monitor_loop(&la);

fail_undo:
        undo(o, &rt, pid);
fail_unlink:
        if (dir_fd >= 0) {
                static const char *const names[] = { MOAT_MONITOR_ATTACH_SOCK, MOAT_MONITOR_CTL_SOCK,
                                                     MOAT_MONITOR_PID_FILE, "console.sock" };
                for (size_t i = 0; i < ELEMENTSOF(names); i++)
                        if (moat_monitor_file_name(o->exec ? o->exec_id : NULL, names[i], name, sizeof(name)) >= 0)
                                (void) unlinkat(dir_fd, name, 0);
        }
fail:
        moat_logfile_close(job.log);
        moat_error_free(job.err);
        sync_reply_error(o->sync_fd, err ? err->msg : strerror(-r));
        return 1;
}

/* After the init exited: its OOM count (*ret_oom_kills, when it can be
 * read), then the forced delete. */
static int cleanup(const struct moat_runtime *rt, const char *id, uint64_t *ret_oom_kills,
                   struct moat_error **reterr)
{
        uint64_t ooms = 0;
        _cleanup_error_ struct moat_error *ignored = NULL;
        if (moat_container_oom_kills(rt, id, &ooms, &ignored) >= 0)
                *ret_oom_kills = ooms;
        int r = moat_container_delete(rt, id, true, reterr);
        return r == -ENOENT ? 0 : r;
}

static int loop_cleanup(const char *id, const char *runtime_root, uint64_t *ret_oom_kills)
{
        struct moat_runtime rt = { .root = runtime_root };
        _cleanup_error_ struct moat_error *err = NULL;
        int r = cleanup(&rt, id, ret_oom_kills, &err);
        if (r < 0)
                log_debug("cleanup of %s: %s", id, err ? err->msg : strerror(-r));
        return r;
}

/* The helpers the loop runs (and `moat-monitor start|cleanup`, which
 * loops of an older moat exec): one JSON line on stdout. */
static int loop_helper(const char *verb, const char *id, const char *runtime_root)
{
        _cleanup_error_ struct moat_error *err = NULL;
        struct moat_runtime rt = { .root = runtime_root };
        int r;

        if (streq(verb, "start")) {
                r = moat_container_start(&rt, id, &err);
                if (r < 0) {
                        sync_reply_error(STDOUT_FILENO, err ? err->msg : strerror(-r));
                        return 1;
                }
                printf("{}\n");
                fflush(stdout);
                return 0;
        }
        uint64_t ooms = UINT64_MAX;
        r = cleanup(&rt, id, &ooms, &err);
        if (r < 0) {
                sync_reply_error(STDOUT_FILENO, err ? err->msg : strerror(-r));
                return 1;
        }
        if (ooms != UINT64_MAX)
                printf("{\"oom_kills\":%" PRIu64 "}\n", ooms);
        else
                printf("{}\n");
        fflush(stdout);
        return 0;
}

static int run_verb(int argc, char **argv)
{
        struct opts o = { .sync_fd = -1 };
        _cleanup_error_ struct moat_error *err = NULL;

        const char *verb = argv[1];
        o.exec = streq(verb, "exec");
        if (!streq(verb, "run") && !streq(verb, "exec") && !streq(verb, "start") && !streq(verb, "cleanup")) {
                fprintf(stderr, "moat-monitor: unknown verb '%s'\n", verb);
                return 2;
        }
        int r = parse_args(argc - 1, argv + 1, &o, &err);
        if (r < 0) {
                if (streq(verb, "run") || streq(verb, "exec"))
                        sync_reply_error(o.sync_fd, err->msg);
                fprintf(stderr, "moat-monitor: %s\n", err->msg);
                return 1;
        }
        if (streq(verb, "start") || streq(verb, "cleanup")) {
                if (!o.runtime_root) {
                        fprintf(stderr, "moat-monitor: %s needs --runtime-root\n", verb);
                        return 2;
                }
                return loop_helper(verb, o.id, o.runtime_root);
        }
        if (o.sync_fd < 0 || fcntl(o.sync_fd, F_GETFD) < 0) {
                fprintf(stderr, "moat-monitor: --sync-fd is required and must be open\n");
                return 1;
        }
        (void) fcntl(o.sync_fd, F_SETFD, FD_CLOEXEC);
        return setup(&o);
}

/*
 * The zygote (protocol in zygote.h): started once by the daemon with its
 * socket as fd 3. Each request is served by a child cloned with
 * CLONE_PARENT, so the monitor is the daemon's child exactly as if it had
 * been spawned, and the answer is {pid, errno} with the child's pidfd. The
 * child puts the sync pipe on fd 3, closes everything above, and runs the
 * verb as main() would. What this saves is the execve of this binary for
 * every container (loading it and faulting its pages in: 1.5-3 ms of CPU
 * on this kind of machine). The zygote holds nothing but its socket and
 * its spare: the child's memory is a copy of a process that has done
 * nothing yet. It exits when the daemon closes its end.
 *
 * The child is cloned one request ahead (the spare, spare_main): between
 * two requests it takes the copy-on-write and first-touch faults a create
 * would take on its way (1 to 2 ms here, where a fault costs 7-15 us),
 * and the clone itself is off the start's path too. The spare's socket
 * and pidfd go to the daemon with its announcement, and the daemon sends
 * the request to the spare itself: the start wakes one process, not the
 * zygote and then the spare (0.2-0.6 ms here). The zygote keeps a pipe
 * the spare holds open until it has started its container, and clones the
 * next at its end: a warm-up on the other CPU while the init is cloned
 * would make the init wait for it (docs/monitor.md). Where there is no spare (it died, or the clone failed), the
 * daemon asks the zygote, which clones the monitor for the request.
 */
struct spare {
        pid_t pid;
        /* The read end of a pipe whose write end only the spare holds: at
         * its end the spare has started its container (the monitor's loop
         * closes it) or is gone, and the next one is cloned. */
        int taken;
};

/* An answer, or an announcement with the spare's socket and pidfd. */
static void zygote_answer(int sock, pid_t pid, int error, const int *fds, size_t n_fds, pid_t next_spare)
{
        struct moat_zygote_reply rep = { .pid = pid, .error = error, .next_spare = next_spare };
        struct iovec iov = { .iov_base = &rep, .iov_len = sizeof(rep) };
        union {
                struct cmsghdr h;
                char buf[CMSG_SPACE(2 * sizeof(int))];
        } ctl = {};
        struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1 };

        assert(n_fds <= 2);
        if (n_fds > 0) {
                mh.msg_control = ctl.buf;
                mh.msg_controllen = CMSG_SPACE(n_fds * sizeof(int));
                struct cmsghdr *c = CMSG_FIRSTHDR(&mh);
                c->cmsg_level = SOL_SOCKET;
                c->cmsg_type = SCM_RIGHTS;
                c->cmsg_len = CMSG_LEN(n_fds * sizeof(int));
                memcpy(CMSG_DATA(c), fds, n_fds * sizeof(int));
        }
        while (sendmsg(sock, &mh, MSG_NOSIGNAL) < 0 && errno == EINTR)
                ;
}

/* One message and at most one fd; -errno, 0 at the end of the socket. */
static ssize_t receive_request(int sock, char *buf, int *ret_fd, bool *ret_malformed)
{
        union {
                struct cmsghdr h;
                char buf[CMSG_SPACE(sizeof(int))];
        } ctl;
        struct iovec iov = { .iov_base = buf, .iov_len = MOAT_ZYGOTE_REQUEST_MAX };
        struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = ctl.buf,
                             .msg_controllen = sizeof(ctl.buf) };
        ssize_t n;
        int fd = -1;

        do
                n = recvmsg(sock, &mh, MSG_CMSG_CLOEXEC);
        while (n < 0 && errno == EINTR);
        if (n <= 0)
                return n < 0 ? -errno : 0;
        /* Exactly one fd is taken; any other that came along is closed. */
        bool extra_fds = false;
        for (struct cmsghdr *c = CMSG_FIRSTHDR(&mh); c; c = CMSG_NXTHDR(&mh, c)) {
                if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS)
                        continue;
                size_t n_fds = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
                for (size_t i = 0; i < n_fds; i++) {
                        int got;
                        memcpy(&got, CMSG_DATA(c) + i * sizeof(int), sizeof(int));
                        if (fd < 0)
                                fd = got;
                        else {
                                close(got);
                                extra_fds = true;
                        }
                }
        }
        *ret_fd = fd;
        *ret_malformed = fd < 0 || extra_fds || (mh.msg_flags & (MSG_TRUNC | MSG_CTRUNC)) || buf[n - 1] != '\0';
        return n;
}

/* The request's NUL-separated words as argv; false if it is not one the zygote serves. */
static bool split_request(char *buf, size_t n, char **args, int *ret_argc)
{
        int argc = 0;

        for (char *p = buf; p < buf + n && argc <= MOAT_ZYGOTE_MAX_ARGS; p += strlen(p) + 1)
                args[argc++] = p;
        args[argc] = NULL;
        *ret_argc = argc;
        return argc >= 2 && argc <= MOAT_ZYGOTE_MAX_ARGS && (streq(args[1], "run") || streq(args[1], "exec"));
}

/* Moved above fd 3 if it is there, which the sync pipe takes. */
static int keep_above_sync_fd(int fd)
{
        if (fd != SYNC_FD)
                return fd;
        int moved = fcntl(fd, F_DUPFD_CLOEXEC, SYNC_FD + 1);
        close(fd);
        return moved;
}

/* In the child that serves a request: the sync pipe on fd 3, nothing above
 * it but what the spare made for it (its network namespace, its end of the
 * zygote's pipe). */
static _Noreturn void become_monitor(int sync_fd, int argc, char **args)
{
        (void) prctl(PR_SET_NAME, "moat-monitor", 0, 0, 0);
        moat_json_seed();
        if (spare_netns_fd >= 0)
                spare_netns_fd = keep_above_sync_fd(spare_netns_fd);
        if (spare_taken_fd >= 0)
                spare_taken_fd = keep_above_sync_fd(spare_taken_fd);
        if (sync_fd != SYNC_FD && (dup2(sync_fd, SYNC_FD) < 0 || close(sync_fd) < 0))
                _exit(1);
        (void) fcntl(SYNC_FD, F_SETFD, 0);
        int keep[2] = { spare_netns_fd, spare_taken_fd };
        if (keep[0] > keep[1]) {
                int t = keep[0];
                keep[0] = keep[1];
                keep[1] = t;
        }
        unsigned from = SYNC_FD + 1;
        for (size_t i = 0; i < ELEMENTSOF(keep); i++) {
                if (keep[i] < (int) from)
                        continue;
                if ((unsigned) keep[i] > from)
                        (void) close_range(from, (unsigned) keep[i] - 1, 0);
                from = (unsigned) keep[i] + 1;
        }
        (void) close_range(from, ~0U, 0);
        _exit(run_verb(argc, args));
}

/*
 * What a create writes, faulted in ahead: the pages of the program's data
 * and bss that the zygote shares, the heap the create grows (kept by a
 * raised trim threshold until the loop's trim), the top of the side stack,
 * and the page tables of the program's text and read-only data (shared
 * pages: mapping them costs no memory, and the loop's trim unmaps the
 * text again).
 * MADV_POPULATE_* needs Linux 5.14; where it fails, the faults come later
 * as they used to.
 */
#ifndef MADV_POPULATE_READ
#define MADV_POPULATE_READ 22
#define MADV_POPULATE_WRITE 23
#endif
#define SPARE_HEAP_WARM (192u << 10)
#define SPARE_HEAP_CHUNK (8u << 10)
#define SPARE_SIDE_STACK_WARM (64u << 10)

/* Only the pages the zygote has (which a write would copy): one it never
 * touched costs nothing until the monitor does, and may never be. */
static void populate_resident(uintptr_t start, uintptr_t end, uintptr_t page)
{
        unsigned char resident[64];

        while (start < end) {
                size_t n = (size_t) ((end - start) / page);
                if (n > sizeof(resident))
                        n = sizeof(resident);
                if (mincore((void *) start, n * page, resident) < 0)
                        return;
                for (size_t i = 0; i < n; i++)
                        if (resident[i] & 1)
                                (void) madvise((void *) (start + i * page), page, MADV_POPULATE_WRITE);
                start += n * page;
        }
}

static int warm_segment(struct dl_phdr_info *info, size_t size, void *userdata)
{
        uintptr_t page = (uintptr_t) sysconf(_SC_PAGESIZE), relro_end = 0;

        if (info->dlpi_name && info->dlpi_name[0])
                return 0; /* only the program itself (static) */
        for (int i = 0; i < info->dlpi_phnum; i++)
                if (info->dlpi_phdr[i].p_type == PT_GNU_RELRO)
                        relro_end = (info->dlpi_addr + info->dlpi_phdr[i].p_vaddr + info->dlpi_phdr[i].p_memsz) &
                                    ~(page - 1);
        for (int i = 0; i < info->dlpi_phnum; i++) {
                const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
                if (ph->p_type != PT_LOAD)
                        continue;
                uintptr_t start = (info->dlpi_addr + ph->p_vaddr) & ~(page - 1);
                uintptr_t end = (info->dlpi_addr + ph->p_vaddr + ph->p_memsz + page - 1) & ~(page - 1);
                if (!(ph->p_flags & PF_W)) {
                        (void) madvise((void *) start, end - start, MADV_POPULATE_READ);
                        continue;
                }
                /* The RELRO part is read-only by now, and already ours. */
                if (relro_end > start)
                        start = relro_end;
                populate_resident(start, end, page);
        }
        return 1;
}

/*
 * A new network namespace costs 0.7-0.8 ms to make here (every pernet
 * subsystem's init), most of the init's clone. The spare makes one and
 * steps back into its own; the runtime's init enters it where the config
 * asks for a new one (moat_create_options.fresh_netns_fd). Unused (a
 * container on the host's network, an exec), it is closed and goes.
 */
static void spare_make_netns(void)
{
        _cleanup_close_ int own = open("/proc/self/ns/net", O_RDONLY | O_CLOEXEC);

        if (own < 0 || unshare(CLONE_NEWNET) < 0)
                return;
        /* its loopback up, which the init would otherwise do on its way */
        (void) !moat_loopback_up();
        int fresh = open("/proc/self/ns/net", O_RDONLY | O_CLOEXEC);
        if (setns(own, CLONE_NEWNET) < 0)
                _exit(1); /* a monitor must not run in it: the zygote clones another */
        spare_netns_fd = fresh;
}

static bool request_waiting(int sock)
{
        struct pollfd p = { .fd = sock, .events = POLLIN };
        return poll(&p, 1, 0) > 0;
}

/* Step by step, the most useful first; a request that comes meanwhile
 * ends it (what is left comes as faults, or is made by the create), so
 * the warm-up never stands between the request and the start. */
static void spare_warm(int sock)
{
        void *chunks[SPARE_HEAP_WARM / SPARE_HEAP_CHUNK];
        size_t n = 0;

        (void) mallopt(M_ARENA_MAX, 1);
        (void) mallopt(M_TRIM_THRESHOLD, (int) (2 * SPARE_HEAP_WARM));
        spare_make_netns();
        if (request_waiting(sock))
                return;
        for (; n < ELEMENTSOF(chunks); n++) {
                chunks[n] = malloc(SPARE_HEAP_CHUNK);
                if (!chunks[n])
                        break;
                memset(chunks[n], 0, SPARE_HEAP_CHUNK);
        }
        while (n > 0)
                free(chunks[--n]);
        if (request_waiting(sock))
                return;
        (void) dl_iterate_phdr(warm_segment, NULL);
        if (request_waiting(sock))
                return;
        side_stack_ready = create_stack_map();
        if (side_stack_ready)
                (void) madvise((char *) side_stack_ready + CREATE_STACK_MAP_SIZE - SPARE_SIDE_STACK_WARM,
                               SPARE_SIDE_STACK_WARM, MADV_POPULATE_WRITE);
}

/*
 * The spare's clone and warm-up run at SCHED_IDLE, so that they take only
 * a CPU nothing else wants, not the one the request before is using; it
 * is back at SCHED_OTHER before it waits for its request (what it starts
 * inherits its policy). Used only where going back was seen to work.
 */
static bool spare_idle_ok;

static void sched_policy(int policy)
{
        struct sched_param none = { .sched_priority = 0 };
        (void) sched_setscheduler(0, policy, &none);
}

static void spare_idle_probe(void)
{
        struct sched_param none = { .sched_priority = 0 };
        if (sched_getscheduler(0) != SCHED_OTHER || sched_setscheduler(0, SCHED_IDLE, &none) < 0)
                return;
        spare_idle_ok = sched_setscheduler(0, SCHED_OTHER, &none) == 0;
        if (!spare_idle_ok)
                _exit(1); /* cannot happen: stuck at SCHED_IDLE, start afresh */
}

/* buf: the zygote's request buffer, ours now (a copy). sock: the end of
 * the socket the daemon is given; taken: see struct spare. */
static _Noreturn void spare_main(int sock, int taken, char *buf)
{
        char *args[MOAT_ZYGOTE_MAX_ARGS + 2];
        bool malformed = true;
        int argc = 0, sync_fd = -1;

        (void) prctl(PR_SET_NAME, "moat-spare", 0, 0, 0);
        spare_warm(sock);
        /* Woken at SCHED_IDLE, it would wait for the CPU the request
         * before is using. */
        if (spare_idle_ok) {
                sched_policy(SCHED_OTHER);
                if (sched_getscheduler(0) != SCHED_OTHER)
                        _exit(1);
        }
        /* The request comes from the daemon, which holds the other end; it
         * is checked here as the zygote checks its own. */
        ssize_t n = receive_request(sock, buf, &sync_fd, &malformed);
        if (n <= 0 || malformed || !split_request(buf, (size_t) n, args, &argc))
                _exit(n == 0 ? 0 : 1);
        spare_taken_fd = taken;
        become_monitor(sync_fd, argc, args);
}

/* Clones the spare and hands the daemon its socket and pidfd; the zygote
 * keeps only the pipe that tells it the spare was taken. */
static void spare_fork(int daemon_sock, char *buf, struct spare *s)
{
        int sv[2], taken[2], pidfd = -1;

        *s = (struct spare){ .pid = 0, .taken = -1 };
        if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0)
                return;
        if (pipe2(taken, O_CLOEXEC) < 0) {
                close(sv[0]);
                close(sv[1]);
                return;
        }
        struct clone_args ca = { .flags = CLONE_PARENT | CLONE_PIDFD, .pidfd = (uint64_t) (uintptr_t) &pidfd };
        if (spare_idle_ok)
                sched_policy(SCHED_IDLE);
        long pid = syscall(SYS_clone3, &ca, sizeof(ca));
        if (pid != 0 && spare_idle_ok)
                sched_policy(SCHED_OTHER);
        if (pid == 0) {
                close(daemon_sock);
                close(sv[0]);
                close(taken[0]);
                spare_main(sv[1], taken[1], buf);
        }
        close(sv[1]);
        close(taken[1]);
        if (pid < 0) {
                close(sv[0]);
                close(taken[0]);
                return;
        }
        int fds[2] = { sv[0], pidfd };
        zygote_answer(daemon_sock, 0, 0, fds, 2, (pid_t) pid);
        close(sv[0]);
        close(pidfd);
        *s = (struct spare){ .pid = (pid_t) pid, .taken = taken[0] };
}

/* The daemon holds the spare's socket and reaps it; the zygote waits for
 * it to be gone (or serving) before it goes itself. */
static void spare_drop(struct spare *s)
{
        if (s->taken < 0)
                return;
        struct pollfd p = { .fd = s->taken, .events = POLLIN };
        while (poll(&p, 1, 2000) < 0 && errno == EINTR)
                ;
        close(s->taken);
        *s = (struct spare){ .pid = 0, .taken = -1 };
}

static int zygote(int sock)
{
        _cleanup_free_ char *buf = malloc(MOAT_ZYGOTE_REQUEST_MAX + 1);
        struct spare spare = { .pid = 0, .taken = -1 };
        bool want_spare = true;
        int ret = 0;

        if (!buf)
                return 1;
        spare_idle_probe();
        for (;;) {
                /* One spare at a time: the next is cloned once the last
                 * was taken. A failed clone is tried again at the next
                 * request rather than in a loop. A request (or the end)
                 * waiting on the socket comes first: at the end, a spare
                 * cloned would only keep the zygote waiting for it. */
                if (want_spare && spare.taken < 0 && !request_waiting(sock)) {
                        spare_fork(sock, buf, &spare);
                        want_spare = false;
                }
                struct pollfd p[2] = { { .fd = sock, .events = POLLIN }, { .fd = spare.taken, .events = POLLIN } };
                if (poll(p, spare.taken >= 0 ? 2 : 1, -1) < 0) {
                        if (errno == EINTR)
                                continue;
                        ret = 1;
                        break;
                }
                if (spare.taken >= 0 && p[1].revents) {
                        spare.taken = safe_close(spare.taken);
                        want_spare = true;
                }
                if (!p[0].revents)
                        continue;

                char *args[MOAT_ZYGOTE_MAX_ARGS + 2];
                int argc = 0, sync_fd = -1, pidfd = -1;
                bool malformed;

                ssize_t n = receive_request(sock, buf, &sync_fd, &malformed);
                if (n <= 0) {
                        ret = n < 0 ? 1 : 0;
                        break;
                }
                want_spare = true;
                if (malformed) {
                        if (sync_fd >= 0)
                                close(sync_fd);
                        zygote_answer(sock, 0, EBADMSG, NULL, 0, 0);
                        continue;
                }
                if (!split_request(buf, (size_t) n, args, &argc)) {
                        close(sync_fd);
                        zygote_answer(sock, 0, EINVAL, NULL, 0, 0);
                        continue;
                }

                /* The daemon had no spare at hand (it sends to the spare
                 * itself when it has one). With CLONE_PARENT the exit
                 * signal is the zygote's own (SIGCHLD); clone3 refuses to
                 * be given one. */
                struct clone_args ca = {
                        .flags = CLONE_PARENT | CLONE_PIDFD,
                        .pidfd = (uint64_t) (uintptr_t) &pidfd,
                };
                long pid = syscall(SYS_clone3, &ca, sizeof(ca));
                if (pid == 0) {
                        close(sock);
                        become_monitor(sync_fd, argc, args);
                }
                int error = pid < 0 ? errno : 0;
                close(sync_fd);
                zygote_answer(sock, pid > 0 ? (pid_t) pid : 0, error, pidfd >= 0 ? &pidfd : NULL, pidfd >= 0 ? 1 : 0,
                              0);
                if (pidfd >= 0)
                        close(pidfd);
        }
        spare_drop(&spare);
        return ret;
}

/*
 * glibc reads its tunables once, at startup: the zygote executes itself
 * again, once, with the thread cache off (see create_on_side_stack), and
 * then restores the variable as it was, so that nothing it starts inherits
 * the change. Tunables the operator set are kept; where exec fails, the
 * zygote runs with the cache (idle monitors then keep ~50 KiB more).
 */
#define ZYGOTE_TUNABLE "glibc.malloc.tcache_count=0"

static void zygote_enter(char **argv)
{
        const char *was = getenv("GLIBC_TUNABLES");
        size_t wl = was ? strlen(was) : 0, tl = strlen(ZYGOTE_TUNABLE);

        if (was && wl >= tl && streq(was + wl - tl, ZYGOTE_TUNABLE)) {
                /* The second start: put the operator's value back. */
                if (wl == tl)
                        (void) unsetenv("GLIBC_TUNABLES");
                else {
                        _cleanup_free_ char *orig = strndup(was, wl - tl - 1);
                        if (orig)
                                (void) setenv("GLIBC_TUNABLES", orig, 1);
                }
                return;
        }
        if ((was && strstr(was, "tcache_count")) || getauxval(AT_SECURE))
                return;
        _cleanup_free_ char *value = NULL;
        if (asprintf(&value, "%s%s" ZYGOTE_TUNABLE, was ?: "", was ? ":" : "") < 0)
                return;
        _cleanup_free_ char *saved = was ? strdup(was) : NULL;
        if ((was && !saved) || setenv("GLIBC_TUNABLES", value, 1) < 0)
                return;
        (void) execv("/proc/self/exe", argv);
        if (saved)
                (void) setenv("GLIBC_TUNABLES", saved, 1);
        else
                (void) unsetenv("GLIBC_TUNABLES");
}

int main(int argc, char **argv)
{
        if (argc < 2) {
                fprintf(stderr, "usage: moat-monitor run|exec OPTIONS (see docs/monitor.md)\n");
                return 2;
        }
        if (streq(argv[1], "zygote")) {
                if (argc != 2 || fcntl(SYNC_FD, F_GETFD) < 0) {
                        fprintf(stderr, "moat-monitor: zygote takes no arguments and needs its socket as fd 3\n");
                        return 2;
                }
                zygote_enter(argv);
                (void) fcntl(SYNC_FD, F_SETFD, FD_CLOEXEC);
                /* Told apart from the monitors it forks, which share its
                 * command line. */
                (void) prctl(PR_SET_NAME, "moat-zygote", 0, 0, 0);
                return zygote(SYNC_FD);
        }
        return run_verb(argc, argv);
}
