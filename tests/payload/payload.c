/*
 * moat-test-payload: the one program the integration tests run inside a
 * container.  It reports what the process sees (ids, capabilities, limits,
 * namespaces, fds, mounts, terminal) or performs one small action (write a
 * file, wait for a signal, sleep) and prints exactly one JSON object on
 * stdout, so the tests need no shell tools and no libc inside the rootfs.
 *
 * Design:
 *  - built static (tests/meson.build) so any rootfs can run it;
 *  - argv[1] selects a subcommand from the table at the bottom; unknown
 *    subcommands exit 2 with a message on stderr;
 *  - JSON is written by a tiny hand-written emitter (no library: the
 *    binary must stay static and small); control bytes are written as
 *    \u00XX and bytes >= 0x80 pass through (UTF-8 in, UTF-8 out);
 *  - failures of an action are data, not errors: `write` reports
 *    {"ok":false,"errno":N}; only usage errors and `cat` failures exit
 *    non-zero.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/personality.h>
#include <sys/resource.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/sysmacros.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

/* ---- JSON emitter ------------------------------------------------------ */

static int depth;
static bool need_comma[64];

static void j_sep(void)
{
        if (need_comma[depth])
                putchar(',');
        need_comma[depth] = true;
}

static void j_raw_str(const char *s, size_t n)
{
        putchar('"');
        for (size_t i = 0; i < n; i++) {
                unsigned char c = (unsigned char)s[i];
                switch (c) {
                case '"': fputs("\\\"", stdout); break;
                case '\\': fputs("\\\\", stdout); break;
                case '\n': fputs("\\n", stdout); break;
                case '\t': fputs("\\t", stdout); break;
                case '\r': fputs("\\r", stdout); break;
                default:
                        if (c < 0x20 || c == 0x7f) /* bytes >= 0x80 pass: UTF-8 */
                                printf("\\u%04x", c);
                        else
                                putchar(c);
                }
        }
        putchar('"');
}

static void j_open(char c)
{
        j_sep();
        putchar(c);
        depth++;
        need_comma[depth] = false;
}

static void j_close(char c)
{
        putchar(c);
        depth--;
}

static void j_key(const char *k)
{
        j_sep();
        j_raw_str(k, strlen(k));
        putchar(':');
        need_comma[depth] = false; /* the value follows without a comma */
}

static void j_end_value(void)
{
        need_comma[depth] = true;
}

static void j_str(const char *s)
{
        j_sep();
        if (s)
                j_raw_str(s, strlen(s));
        else
                fputs("null", stdout);
}

static void j_strn(const char *s, size_t n)
{
        j_sep();
        j_raw_str(s, n);
}

static void j_int(long long v)
{
        j_sep();
        printf("%lld", v);
}

static void j_bool(bool v)
{
        j_sep();
        fputs(v ? "true" : "false", stdout);
}

static void j_null(void)
{
        j_sep();
        fputs("null", stdout);
}

#define J_OBJ() j_open('{')
#define J_END_OBJ() j_close('}')
#define J_ARR() j_open('[')
#define J_END_ARR() j_close(']')

static void kv_str(const char *k, const char *v) { j_key(k); j_str(v); j_end_value(); }
static void kv_int(const char *k, long long v) { j_key(k); j_int(v); j_end_value(); }
static void kv_bool(const char *k, bool v) { j_key(k); j_bool(v); j_end_value(); }
static void kv_null(const char *k) { j_key(k); j_null(); j_end_value(); }

static void j_done(void)
{
        need_comma[0] = false; /* the next object is a new line, not a list item */
        putchar('\n');
        fflush(stdout);
}

/* ---- helpers ----------------------------------------------------------- */

#define MAX_FILE (4 << 20)

/* Reads a whole (proc) file; returns a malloc'd NUL-terminated buffer or NULL. */
static char *read_file(const char *path, size_t *len)
{
        int fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd < 0)
                return NULL;
        size_t cap = 8192, n = 0;
        char *buf = malloc(cap + 1);
        if (!buf) {
                close(fd);
                return NULL;
        }
        for (;;) {
                if (n == cap) {
                        if (cap >= MAX_FILE)
                                break;
                        cap *= 2;
                        char *nb = realloc(buf, cap + 1);
                        if (!nb)
                                break;
                        buf = nb;
                }
                ssize_t r = read(fd, buf + n, cap - n);
                if (r < 0 && errno == EINTR)
                        continue;
                if (r < 0) {
                        int e = errno;
                        free(buf);
                        close(fd);
                        errno = e;
                        return NULL;
                }
                if (r == 0)
                        break;
                n += (size_t)r;
        }
        close(fd);
        buf[n] = '\0';
        if (len)
                *len = n;
        return buf;
}

static void kv_file(const char *k, const char *path)
{
        size_t n = 0;
        char *c = read_file(path, &n);
        j_key(k);
        if (c)
                j_strn(c, n);
        else
                j_null();
        j_end_value();
        free(c);
}

/* The value of "Name:\t..." in /proc/self/status, trimmed. */
static void kv_status(const char *status, const char *key, const char *name)
{
        char pat[64];
        snprintf(pat, sizeof(pat), "\n%s:", name);
        const char *p = strstr(status, pat);
        if (!p) {
                kv_null(key);
                return;
        }
        p += strlen(pat);
        while (*p == ' ' || *p == '\t')
                p++;
        size_t n = strcspn(p, "\n");
        j_key(key);
        j_strn(p, n);
        j_end_value();
}

static void kv_readlink(const char *k, const char *path)
{
        char buf[4096];
        ssize_t n = readlink(path, buf, sizeof(buf) - 1);
        j_key(k);
        if (n < 0)
                j_null();
        else
                j_strn(buf, (size_t)n);
        j_end_value();
}

static const char *type_name(mode_t m)
{
        switch (m & S_IFMT) {
        case S_IFREG: return "file";
        case S_IFDIR: return "dir";
        case S_IFLNK: return "symlink";
        case S_IFCHR: return "char";
        case S_IFBLK: return "block";
        case S_IFIFO: return "fifo";
        case S_IFSOCK: return "socket";
        default: return "unknown";
        }
}

static void usage_fail(const char *msg)
{
        fprintf(stderr, "payload: %s\n", msg);
        exit(2);
}

static long parse_long(const char *s)
{
        char *end;
        errno = 0;
        long v = strtol(s, &end, 10);
        if (errno || end == s || *end)
                usage_fail("bad number");
        return v;
}

/* ---- info -------------------------------------------------------------- */

static const struct {
        const char *name;
        int res;
} rlimits[] = {
        { "RLIMIT_CPU", RLIMIT_CPU },       { "RLIMIT_FSIZE", RLIMIT_FSIZE },
        { "RLIMIT_DATA", RLIMIT_DATA },     { "RLIMIT_STACK", RLIMIT_STACK },
        { "RLIMIT_CORE", RLIMIT_CORE },     { "RLIMIT_RSS", RLIMIT_RSS },
        { "RLIMIT_NPROC", RLIMIT_NPROC },   { "RLIMIT_NOFILE", RLIMIT_NOFILE },
        { "RLIMIT_MEMLOCK", RLIMIT_MEMLOCK }, { "RLIMIT_AS", RLIMIT_AS },
        { "RLIMIT_LOCKS", RLIMIT_LOCKS },   { "RLIMIT_SIGPENDING", RLIMIT_SIGPENDING },
        { "RLIMIT_MSGQUEUE", RLIMIT_MSGQUEUE }, { "RLIMIT_NICE", RLIMIT_NICE },
        { "RLIMIT_RTPRIO", RLIMIT_RTPRIO }, { "RLIMIT_RTTIME", RLIMIT_RTTIME },
};

static void emit_fds(void)
{
        DIR *d = opendir("/proc/self/fd");
        int self = d ? dirfd(d) : -1;
        j_key("fds");
        J_OBJ();
        struct dirent *de;
        while (d && (de = readdir(d))) {
                if (de->d_name[0] == '.')
                        continue;
                if (atoi(de->d_name) == self)
                        continue;
                char p[300];
                snprintf(p, sizeof(p), "/proc/self/fd/%s", de->d_name);
                kv_readlink(de->d_name, p);
        }
        J_END_OBJ();
        j_end_value();
        if (d)
                closedir(d);
}

static int cmd_info(int argc, char **argv)
{
        char *status = read_file("/proc/self/status", NULL);
        char *st = NULL;
        if (status && asprintf(&st, "\n%s", status) < 0)
                st = NULL;

        J_OBJ();
        kv_int("pid", getpid());
        kv_int("ppid", getppid());
        uid_t r, e, s;
        gid_t gr, ge, gs;
        getresuid(&r, &e, &s);
        getresgid(&gr, &ge, &gs);
        kv_int("uid", r);
        kv_int("euid", e);
        kv_int("suid", s);
        kv_int("gid", gr);
        kv_int("egid", ge);
        kv_int("sgid", gs);

        gid_t groups[1024];
        int ng = getgroups(1024, groups);
        j_key("groups");
        J_ARR();
        for (int i = 0; i < ng; i++)
                j_int(groups[i]);
        J_END_ARR();
        j_end_value();

        const char *st_keys[][2] = {
                { "CapInh", "CapInh" }, { "CapPrm", "CapPrm" }, { "CapEff", "CapEff" },
                { "CapBnd", "CapBnd" }, { "CapAmb", "CapAmb" }, { "NoNewPrivs", "NoNewPrivs" },
                { "Seccomp", "Seccomp" }, { "Umask", "Umask" }, { "SigBlk", "SigBlk" },
                { "SigIgn", "SigIgn" },
        };
        for (size_t i = 0; i < sizeof(st_keys) / sizeof(st_keys[0]); i++) {
                if (st)
                        kv_status(st, st_keys[i][0], st_keys[i][1]);
                else
                        kv_null(st_keys[i][0]);
        }

        char cwd[4096];
        if (getcwd(cwd, sizeof(cwd)))
                kv_str("cwd", cwd);
        else
                kv_null("cwd");

        struct utsname u;
        if (uname(&u) == 0) {
                kv_str("hostname", u.nodename);
                kv_str("domainname", u.domainname);
        }

        j_key("argv");
        J_ARR();
        for (int i = 0; i < argc; i++)
                j_str(argv[i]);
        J_END_ARR();
        j_end_value();

        j_key("env");
        J_ARR();
        for (char **ep = environ; ep && *ep; ep++)
                j_str(*ep);
        J_END_ARR();
        j_end_value();

        j_key("rlimits");
        J_OBJ();
        for (size_t i = 0; i < sizeof(rlimits) / sizeof(rlimits[0]); i++) {
                struct rlimit rl;
                if (getrlimit(rlimits[i].res, &rl) < 0)
                        continue;
                j_key(rlimits[i].name);
                J_OBJ();
                kv_int("soft", rl.rlim_cur == RLIM_INFINITY ? -1 : (long long)rl.rlim_cur);
                kv_int("hard", rl.rlim_max == RLIM_INFINITY ? -1 : (long long)rl.rlim_max);
                J_END_OBJ();
                j_end_value();
        }
        J_END_OBJ();
        j_end_value();

        emit_fds();

        static const char *nss[] = { "pid", "net", "ipc", "uts", "mnt", "user", "cgroup", "time" };
        j_key("ns");
        J_OBJ();
        for (size_t i = 0; i < sizeof(nss) / sizeof(nss[0]); i++) {
                char p[64];
                snprintf(p, sizeof(p), "/proc/self/ns/%s", nss[i]);
                kv_readlink(nss[i], p);
        }
        J_END_OBJ();
        j_end_value();

        char *oom = read_file("/proc/self/oom_score_adj", NULL);
        if (oom)
                kv_int("oom_score_adj", atoll(oom));
        else
                kv_null("oom_score_adj");
        free(oom);

        kv_int("personality", personality(0xffffffff));

        j_key("tty");
        J_OBJ();
        kv_bool("stdin", isatty(0));
        kv_bool("stdout", isatty(1));
        kv_bool("stderr", isatty(2));
        char *tn = ttyname(0);
        if (tn)
                kv_str("name", tn);
        else
                kv_null("name");
        struct winsize ws;
        if (ioctl(0, TIOCGWINSZ, &ws) == 0) {
                kv_int("rows", ws.ws_row);
                kv_int("cols", ws.ws_col);
        }
        J_END_OBJ();
        j_end_value();

        kv_file("cgroup", "/proc/self/cgroup");
        kv_file("mountinfo", "/proc/self/mountinfo");
        kv_file("uid_map", "/proc/self/uid_map");
        kv_file("gid_map", "/proc/self/gid_map");
        kv_file("setgroups", "/proc/self/setgroups");
        J_END_OBJ();
        j_done();
        free(status);
        free(st);
        return 0;
}

/* ---- small actions ----------------------------------------------------- */

static int cmd_cat(int argc, char **argv)
{
        if (argc < 3)
                usage_fail("cat PATH");
        int fd = open(argv[2], O_RDONLY | O_CLOEXEC);
        if (fd < 0) {
                fprintf(stderr, "payload: cat %s: %s\n", argv[2], strerror(errno));
                return 1;
        }
        char buf[65536];
        for (;;) {
                ssize_t n = read(fd, buf, sizeof(buf));
                if (n < 0 && errno == EINTR)
                        continue;
                if (n < 0) {
                        fprintf(stderr, "payload: cat %s: %s\n", argv[2], strerror(errno));
                        return 1;
                }
                if (n == 0)
                        break;
                if (fwrite(buf, 1, (size_t)n, stdout) != (size_t)n)
                        return 1;
        }
        fflush(stdout);
        close(fd);
        return 0;
}

static int cmd_ls(int argc, char **argv)
{
        if (argc < 3)
                usage_fail("ls PATH");
        DIR *d = opendir(argv[2]);
        J_OBJ();
        if (!d) {
                kv_bool("ok", false);
                kv_int("errno", errno);
                J_END_OBJ();
                j_done();
                return 0;
        }
        kv_bool("ok", true);
        j_key("entries");
        J_OBJ();
        struct dirent *de;
        while ((de = readdir(d))) {
                if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
                        continue;
                struct stat sb;
                const char *t = "unknown";
                if (fstatat(dirfd(d), de->d_name, &sb, AT_SYMLINK_NOFOLLOW) == 0)
                        t = type_name(sb.st_mode);
                kv_str(de->d_name, t);
        }
        J_END_OBJ();
        j_end_value();
        J_END_OBJ();
        j_done();
        closedir(d);
        return 0;
}

static int cmd_stat(int argc, char **argv)
{
        if (argc < 3)
                usage_fail("stat PATH");
        struct stat sb;
        J_OBJ();
        kv_str("path", argv[2]);
        if (lstat(argv[2], &sb) < 0) {
                kv_bool("exists", errno != ENOENT);
                kv_int("errno", errno);
                J_END_OBJ();
                j_done();
                return 0;
        }
        kv_bool("exists", true);
        kv_str("type", type_name(sb.st_mode));
        kv_int("mode", sb.st_mode & 07777);
        kv_int("uid", sb.st_uid);
        kv_int("gid", sb.st_gid);
        kv_int("size", sb.st_size);
        kv_int("major", major(sb.st_rdev));
        kv_int("minor", minor(sb.st_rdev));
        kv_int("dev_major", major(sb.st_dev));
        kv_int("dev_minor", minor(sb.st_dev));
        kv_int("ino", (long long)sb.st_ino);
        if (S_ISLNK(sb.st_mode))
                kv_readlink("target", argv[2]);
        struct statvfs vfs;
        if (statvfs(argv[2], &vfs) == 0)
                kv_bool("readonly", vfs.f_flag & ST_RDONLY);
        J_END_OBJ();
        j_done();
        return 0;
}

static void report_result(int rc, int err)
{
        J_OBJ();
        kv_bool("ok", rc == 0);
        kv_int("errno", rc == 0 ? 0 : err);
        kv_str("error", rc == 0 ? "" : strerror(err));
        J_END_OBJ();
        j_done();
}

static int cmd_write(int argc, char **argv)
{
        if (argc < 4)
                usage_fail("write PATH TEXT");
        int fd = open(argv[2], O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
        int rc = -1, err = errno;
        if (fd >= 0) {
                size_t n = strlen(argv[3]);
                ssize_t w = write(fd, argv[3], n);
                err = errno;
                rc = (w == (ssize_t)n) ? 0 : -1;
                if (close(fd) < 0 && rc == 0) {
                        rc = -1;
                        err = errno;
                }
        }
        report_result(rc, err);
        return 0;
}

static int cmd_mkdir(int argc, char **argv)
{
        if (argc < 3)
                usage_fail("mkdir PATH");
        int rc = mkdir(argv[2], 0755);
        report_result(rc, errno);
        return 0;
}

static int cmd_touch(int argc, char **argv)
{
        if (argc < 3)
                usage_fail("touch PATH");
        int fd = open(argv[2], O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
        int err = errno;
        if (fd >= 0)
                close(fd);
        report_result(fd >= 0 ? 0 : -1, err);
        return 0;
}

static int cmd_open(int argc, char **argv)
{
        if (argc < 3)
                usage_fail("open PATH [r|w]");
        int flags = (argc > 3 && argv[3][0] == 'w') ? O_WRONLY : O_RDONLY;
        int fd = open(argv[2], flags | O_CLOEXEC | O_NONBLOCK | O_NOCTTY);
        int err = errno;
        if (fd >= 0)
                close(fd);
        report_result(fd >= 0 ? 0 : -1, err);
        return 0;
}

static int cmd_mknod(int argc, char **argv)
{
        if (argc < 3)
                usage_fail("mknod-test PATH [MAJOR MINOR]");
        unsigned maj = argc > 4 ? (unsigned)parse_long(argv[3]) : 1;
        unsigned min = argc > 4 ? (unsigned)parse_long(argv[4]) : 3;
        int rc = mknod(argv[2], S_IFCHR | 0600, makedev(maj, min));
        int err = errno;
        if (rc == 0)
                unlink(argv[2]);
        report_result(rc, err);
        return 0;
}

static void sleep_seconds(double secs)
{
        struct timespec ts = { (time_t)secs, (long)((secs - (double)(time_t)secs) * 1e9) };
        while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
                ;
}

static int cmd_sleep(int argc, char **argv)
{
        if (argc < 3)
                usage_fail("sleep SECONDS");
        sleep_seconds(strtod(argv[2], NULL));
        return 0;
}

static int cmd_exit(int argc, char **argv)
{
        if (argc < 3)
                usage_fail("exit CODE");
        return (int)parse_long(argv[2]);
}

static int cmd_true(int argc, char **argv)
{
        return 0;
}

static int cmd_print(int argc, char **argv)
{
        for (int i = 2; i < argc; i++)
                printf("%s%s", argv[i], i + 1 < argc ? " " : "");
        putchar('\n');
        fflush(stdout);
        return 0;
}

/* Prints {"ready":true} once every signal is blocked, then the first signal. */
static int cmd_sigwait(int argc, char **argv)
{
        sigset_t all;
        sigfillset(&all);
        sigprocmask(SIG_BLOCK, &all, NULL);
        J_OBJ();
        kv_bool("ready", true);
        J_END_OBJ();
        j_done();
        siginfo_t si;
        int sig;
        while ((sig = sigwaitinfo(&all, &si)) < 0 && errno == EINTR)
                ;
        J_OBJ();
        kv_int("signal", sig);
        kv_int("sender_pid", si.si_pid);
        J_END_OBJ();
        j_done();
        return 0;
}

static int cmd_ignore_term(int argc, char **argv)
{
        signal(SIGTERM, SIG_IGN);
        signal(SIGINT, SIG_IGN);
        J_OBJ();
        kv_bool("ready", true);
        J_END_OBJ();
        j_done();
        sleep_seconds(argc > 2 ? strtod(argv[2], NULL) : 3600);
        return 0;
}

static int cmd_fork_sleep(int argc, char **argv)
{
        if (argc < 4)
                usage_fail("fork-sleep N SECONDS");
        long n = parse_long(argv[2]);
        double secs = strtod(argv[3], NULL);
        J_OBJ();
        j_key("children");
        J_ARR();
        for (long i = 0; i < n && i < 64; i++) {
                pid_t p = fork();
                if (p == 0) {
                        sleep_seconds(secs);
                        _exit(0);
                }
                j_int(p);
        }
        J_END_ARR();
        j_end_value();
        J_END_OBJ();
        j_done();
        sleep_seconds(secs);
        while (wait(NULL) > 0 || errno == EINTR)
                ;
        return 0;
}

static int cmd_env(int argc, char **argv)
{
        J_OBJ();
        j_key("env");
        J_ARR();
        for (char **ep = environ; ep && *ep; ep++)
                j_str(*ep);
        J_END_ARR();
        j_end_value();
        J_END_OBJ();
        j_done();
        return 0;
}

static int cmd_getfd(int argc, char **argv)
{
        if (argc < 3)
                usage_fail("getfd N");
        int fd = (int)parse_long(argv[2]);
        int fl = fcntl(fd, F_GETFD);
        J_OBJ();
        kv_int("fd", fd);
        kv_bool("open", fl >= 0);
        if (fl >= 0) {
                char p[64];
                snprintf(p, sizeof(p), "/proc/self/fd/%d", fd);
                kv_readlink("target", p);
                kv_bool("cloexec", fl & FD_CLOEXEC);
        }
        J_END_OBJ();
        j_done();
        return 0;
}

static int cmd_fds(int argc, char **argv)
{
        J_OBJ();
        emit_fds();
        J_END_OBJ();
        j_done();
        return 0;
}

static double clock_secs(clockid_t c)
{
        struct timespec ts;
        if (clock_gettime(c, &ts) < 0)
                return -1;
        return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int cmd_clock(int argc, char **argv)
{
        J_OBJ();
        j_key("monotonic");
        j_sep();
        printf("%.6f", clock_secs(CLOCK_MONOTONIC));
        j_end_value();
        j_key("boottime");
        j_sep();
        printf("%.6f", clock_secs(CLOCK_BOOTTIME));
        j_end_value();
        J_END_OBJ();
        j_done();
        return 0;
}

static int cmd_sysctl(int argc, char **argv)
{
        if (argc < 3)
                usage_fail("sysctl NAME");
        char path[512];
        int n = snprintf(path, sizeof(path), "/proc/sys/%s", argv[2]);
        if (n < 0 || (size_t)n >= sizeof(path))
                usage_fail("name too long");
        for (char *p = path + strlen("/proc/sys/"); *p; p++)
                if (*p == '.')
                        *p = '/';
        size_t len = 0;
        char *v = read_file(path, &len);
        J_OBJ();
        kv_str("name", argv[2]);
        if (v) {
                while (len && (v[len - 1] == '\n'))
                        len--;
                j_key("value");
                j_strn(v, len);
                j_end_value();
        } else {
                kv_null("value");
                kv_int("errno", errno);
        }
        J_END_OBJ();
        j_done();
        free(v);
        return 0;
}

static int cmd_readlink(int argc, char **argv)
{
        if (argc < 3)
                usage_fail("readlink PATH");
        J_OBJ();
        kv_readlink("target", argv[2]);
        J_END_OBJ();
        j_done();
        return 0;
}

/* securebits: {"securebits": N} from PR_GET_SECUREBITS (no /proc field shows them). */
static int cmd_securebits(int argc, char **argv)
{
        int bits = prctl(PR_GET_SECUREBITS, 0, 0, 0, 0);
        J_OBJ();
        j_key("securebits");
        j_sep();
        printf("%d", bits);
        j_end_value();
        J_END_OBJ();
        j_done();
        return 0;
}

static const struct {
        const char *name;
        int (*fn)(int, char **);
} commands[] = {
        { "securebits", cmd_securebits },
        { "info", cmd_info },
        { "cat", cmd_cat },
        { "ls", cmd_ls },
        { "stat", cmd_stat },
        { "write", cmd_write },
        { "mkdir", cmd_mkdir },
        { "touch", cmd_touch },
        { "open", cmd_open },
        { "mknod-test", cmd_mknod },
        { "sleep", cmd_sleep },
        { "exit", cmd_exit },
        { "true", cmd_true },
        { "print", cmd_print },
        { "sigwait", cmd_sigwait },
        { "ignore-term", cmd_ignore_term },
        { "fork-sleep", cmd_fork_sleep },
        { "env", cmd_env },
        { "getfd", cmd_getfd },
        { "fds", cmd_fds },
        { "clock", cmd_clock },
        { "sysctl", cmd_sysctl },
        { "readlink", cmd_readlink },
};

int main(int argc, char **argv)
{
        if (argc < 2)
                usage_fail("usage: payload SUBCOMMAND [ARGS...]");
        for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
                if (!strcmp(argv[1], commands[i].name))
                        return commands[i].fn(argc, argv);
        fprintf(stderr, "payload: unknown subcommand '%s'\n", argv[1]);
        return 2;
}
