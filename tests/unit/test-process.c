/* SPDX-License-Identifier: Apache-2.0 */
#include "base/compat.h"

/*
 * Unit tests for src/runtime/process.c. Every step that changes the
 * credentials, limits or personality runs in a forked child, which reports
 * what it sees over a pipe, so this process keeps root and its limits.
 * Must run as root.
 */

#include <fcntl.h>
#include <grp.h>
#include <inttypes.h>
#include <limits.h>
#include <linux/securebits.h>
#include <sched.h>
#include <stdarg.h>
#include <stdio.h>
#include <sys/capability.h>
#include <sys/personality.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "base/cleanup.h"
#include "base/fileio.h"
#include "runtime/process.h"
#include "tap.h"

#define BIT(c) (UINT64_C(1) << (c))

typedef int (*child_fn)(void *arg, int out_fd);

/* Run fn in a child; its output goes to buf; returns its exit status, or
 * 128+signal. */
static int run_child(child_fn fn, void *arg, char *buf, size_t size)
{
        int pipefd[2];
        size_t len = 0;
        int status = 0;
        pid_t pid;

        if (pipe2(pipefd, O_CLOEXEC) < 0)
                return -1;
        fflush(stdout);
        pid = fork();
        if (pid < 0)
                return -1;
        if (pid == 0) {
                close(pipefd[0]);
                _exit(fn(arg, pipefd[1]) & 0xff);
        }
        close(pipefd[1]);
        for (;;) {
                ssize_t n = read(pipefd[0], buf + len, size - 1 - len);
                if (n < 0 && errno == EINTR)
                        continue;
                if (n <= 0)
                        break;
                len += (size_t) n;
                if (len == size - 1)
                        break;
        }
        buf[len] = '\0';
        close(pipefd[0]);
        if (waitpid(pid, &status, 0) < 0)
                return -1;
        if (WIFSIGNALED(status))
                return 128 + WTERMSIG(status);
        return WEXITSTATUS(status);
}

static int report_error(int out_fd, int r, struct moat_error *err)
{
        dprintf(out_fd, "error %d: %s", -r, err ? err->msg : "(no message)");
        return 1;
}

static int status_field(const char *field, char *ret, size_t size)
{
        _cleanup_free_ char *s = NULL;
        char key[32];
        int r;

        r = read_full_file_at(AT_FDCWD, "/proc/self/status", 1 << 16, &s, NULL);
        if (r < 0)
                return r;
        snprintf(key, sizeof(key), "\n%s:\t", field);
        const char *p = strstr(s, key);
        if (!p)
                return -ENOENT;
        p += strlen(key);
        snprintf(ret, size, "%.*s", (int) strcspn(p, "\n"), p);
        return 0;
}

static void print_state(int out_fd)
{
        char inh[32] = "", prm[32] = "", eff[32] = "", bnd[32] = "", amb[32] = "";
        uid_t ru, eu, su;
        gid_t rg, eg, sg;
        gid_t groups[64];
        int n;
        mode_t old = umask(0);

        umask(old);
        status_field("CapInh", inh, sizeof(inh));
        status_field("CapPrm", prm, sizeof(prm));
        status_field("CapEff", eff, sizeof(eff));
        status_field("CapBnd", bnd, sizeof(bnd));
        status_field("CapAmb", amb, sizeof(amb));
        getresuid(&ru, &eu, &su);
        getresgid(&rg, &eg, &sg);
        dprintf(out_fd, "uid=%u,%u,%u gid=%u,%u,%u groups=", ru, eu, su, rg, eg, sg);
        n = getgroups((int) ELEMENTSOF(groups), groups);
        for (int i = 0; i < n; i++)
                dprintf(out_fd, "%s%u", i ? "," : "", groups[i]);
        dprintf(out_fd, " umask=%04o inh=%s prm=%s eff=%s bnd=%s amb=%s nnp=%d", (unsigned) old, inh, prm, eff, bnd, amb,
                prctl(PR_GET_NO_NEW_PRIVS, 0, 0, 0, 0));
}

static int child_credentials(void *arg, int out_fd)
{
        struct moat_error *err = NULL;
        int r = moat_process_apply_credentials(arg, &err);

        if (r < 0)
                return report_error(out_fd, r, err);
        print_state(out_fd);
        return 0;
}

static uint64_t host_mask(const char *field)
{
        char v[32];

        if (status_field(field, v, sizeof(v)) < 0)
                return 0;
        return strtoull(v, NULL, 16);
}

static void test_user_no_caps(void)
{
        uint32_t gids[] = { 1001, 1002 };
        struct oci_process p = {
                .user = { .uid = 1000, .gid = 1000, .additional_gids = gids, .n_additional_gids = 2 },
        };
        char buf[1024];
        int st;

        st = run_child(child_credentials, &p, buf, sizeof(buf));
        is_int(st, 0, "uid 1000 gid 1000 with additionalGids, no capabilities: applied");
        is_str(buf,
               "uid=1000,1000,1000 gid=1000,1000,1000 groups=1001,1002 umask=0022 "
               "inh=0000000000000000 prm=0000000000000000 eff=0000000000000000 "
               "bnd=0000000000000000 amb=0000000000000000 nnp=0",
               "  ids, groups, default umask, all capability sets empty");

        /* Root with no capabilities at all, groups cleared. */
        struct oci_process root = { .user = { .uid = 0, .gid = 0, .has_umask = true, .umask = 027 } };
        st = run_child(child_credentials, &root, buf, sizeof(buf));
        is_int(st, 0, "uid 0 without process.capabilities: applied");
        is_str(buf,
               "uid=0,0,0 gid=0,0,0 groups= umask=0027 "
               "inh=0000000000000000 prm=0000000000000000 eff=0000000000000000 "
               "bnd=0000000000000000 amb=0000000000000000 nnp=0",
               "  root keeps no capability and no supplementary group");
}

static void test_capabilities(void)
{
        struct oci_process p = {
                .user = { .uid = 1000, .gid = 1000, .has_umask = true, .umask = 0077 },
                .has_capabilities = true,
                .capabilities = {
                        .bounding = BIT(CAP_CHOWN) | BIT(CAP_DAC_OVERRIDE) | BIT(CAP_KILL) |
                                    BIT(CAP_NET_BIND_SERVICE) | BIT(CAP_SETPCAP),
                        .effective = BIT(CAP_CHOWN) | BIT(CAP_KILL) | BIT(CAP_NET_BIND_SERVICE),
                        .permitted = BIT(CAP_CHOWN) | BIT(CAP_KILL) | BIT(CAP_NET_BIND_SERVICE),
                        .inheritable = BIT(CAP_KILL) | BIT(CAP_NET_BIND_SERVICE),
                        .ambient = BIT(CAP_NET_BIND_SERVICE),
                },
                .no_new_privileges = true,
        };
        char buf[1024], want[1024];
        int st;

        snprintf(want, sizeof(want),
                 "uid=1000,1000,1000 gid=1000,1000,1000 groups= umask=0077 "
                 "inh=%016" PRIx64 " prm=%016" PRIx64 " eff=%016" PRIx64 " bnd=%016" PRIx64 " amb=%016" PRIx64 " nnp=1",
                 p.capabilities.inheritable, p.capabilities.permitted, p.capabilities.effective,
                 p.capabilities.bounding, p.capabilities.ambient);
        st = run_child(child_credentials, &p, buf, sizeof(buf));
        is_int(st, 0, "uid 1000 with five capability sets and noNewPrivileges: applied");
        is_str(buf, want, "  CapInh/CapPrm/CapEff/CapBnd/CapAmb and no_new_privs as asked");

        /* Root keeps exactly what it asks for. */
        struct oci_process r0 = p;
        r0.user = (struct oci_user) { .uid = 0, .gid = 0 };
        r0.no_new_privileges = false;
        snprintf(want, sizeof(want),
                 "uid=0,0,0 gid=0,0,0 groups= umask=0022 "
                 "inh=%016" PRIx64 " prm=%016" PRIx64 " eff=%016" PRIx64 " bnd=%016" PRIx64 " amb=%016" PRIx64 " nnp=0",
                 p.capabilities.inheritable, p.capabilities.permitted, p.capabilities.effective,
                 p.capabilities.bounding, p.capabilities.ambient);
        st = run_child(child_credentials, &r0, buf, sizeof(buf));
        is_int(st, 0, "uid 0 with a capability subset: applied");
        is_str(buf, want, "  root's sets are the subset");

        /* Capabilities the kernel does not know are skipped. */
        struct oci_process unknown = p;
        unknown.capabilities.bounding |= BIT(63);
        unknown.capabilities.permitted |= BIT(63);
        unknown.capabilities.effective |= BIT(63);
        st = run_child(child_credentials, &unknown, buf, sizeof(buf));
        is_int(st, 0, "a capability above cap_last_cap is skipped silently");

        /* An ambient capability that is not inheritable is left out, as
         * runc does with its own default spec. */
        struct oci_process bad = p;
        bad.capabilities.ambient |= BIT(CAP_CHOWN);
        snprintf(want, sizeof(want),
                 "uid=0,0,0 gid=0,0,0 groups= umask=0022 "
                 "inh=%016" PRIx64 " prm=%016" PRIx64 " eff=%016" PRIx64 " bnd=%016" PRIx64 " amb=%016" PRIx64 " nnp=0",
                 p.capabilities.inheritable, p.capabilities.permitted, p.capabilities.effective,
                 p.capabilities.bounding, p.capabilities.ambient);
        struct oci_process amb_root = bad;
        amb_root.user = (struct oci_user) { .uid = 0, .gid = 0 };
        amb_root.no_new_privileges = false;
        st = run_child(child_credentials, &amb_root, buf, sizeof(buf));
        is_int(st, 0, "ambient capability outside the inheritable set: accepted");
        is_str(buf, want, "  and left out of the ambient set");

        /* Requests the kernel would refuse are named. */
        bad = p;
        bad.capabilities.effective |= BIT(CAP_SYS_ADMIN);
        st = run_child(child_credentials, &bad, buf, sizeof(buf));
        is_int(st, 1, "effective capability outside the permitted set: refused");
        is_str(buf, "error 1: process.capabilities.effective: CAP_SYS_ADMIN is not in process.capabilities.permitted",
               "  the error names the capability");

        bad = p;
        bad.capabilities.inheritable |= BIT(CAP_SYS_ADMIN);
        bad.capabilities.permitted |= BIT(CAP_SYS_ADMIN);
        st = run_child(child_credentials, &bad, buf, sizeof(buf));
        is_int(st, 1, "inheritable capability outside the bounding set: refused");
        is_str(buf, "error 1: process.capabilities.inheritable: CAP_SYS_ADMIN is not in the bounding set",
               "  the error names the capability");

        if (host_mask("CapPrm") & BIT(CAP_SYS_RESOURCE)) {
                ok(true, "# SKIP this host grants CAP_SYS_RESOURCE");
                ok(true, "# SKIP this host grants CAP_SYS_RESOURCE");
        } else {
                bad = p;
                bad.capabilities.permitted |= BIT(CAP_SYS_RESOURCE);
                bad.capabilities.bounding |= BIT(CAP_SYS_RESOURCE);
                st = run_child(child_credentials, &bad, buf, sizeof(buf));
                is_int(st, 1, "a capability the host does not grant: refused");
                is_str(buf,
                       "error 1: process.capabilities.permitted: CAP_SYS_RESOURCE is not in the runtime's permitted set "
                       "(this host does not grant it)",
                       "  the error names the capability");
        }

        bad = p;
        bad.user.umask = 01000;
        st = run_child(child_credentials, &bad, buf, sizeof(buf));
        is_int(st, 1, "umask above 0777: refused");
        is_str(buf, "error 22: process.user.umask 01000: not a file mode mask (at most 0777)", "  the error names the value");
}

static int child_setgroups_deny(void *arg, int out_fd)
{
        struct oci_process *p = arg;
        struct moat_error *err = NULL;
        int r;

        if (unshare(CLONE_NEWUSER) < 0 ||
            write_string_file_at(AT_FDCWD, "/proc/self/setgroups", "deny") < 0 ||
            write_string_file_at(AT_FDCWD, "/proc/self/uid_map", "0 0 1") < 0 ||
            write_string_file_at(AT_FDCWD, "/proc/self/gid_map", "0 0 1") < 0) {
                dprintf(out_fd, "setup failed: %m");
                return 2;
        }
        r = moat_process_apply_credentials(p, &err);
        if (r < 0)
                return report_error(out_fd, r, err);
        dprintf(out_fd, "applied");
        return 0;
}

static void test_setgroups_deny(void)
{
        uint32_t gids[] = { 0 };
        struct oci_process p = { .user = { .uid = 0, .gid = 0, .additional_gids = gids, .n_additional_gids = 1 } };
        char buf[1024];
        int st;

        st = run_child(child_setgroups_deny, &p, buf, sizeof(buf));
        is_int(st, 1, "additionalGids where setgroups is denied: refused");
        is_str(buf,
               "error 1: process.user.additionalGids: setgroups is denied in this user namespace "
               "(/proc/self/setgroups is \"deny\")",
               "  the error says why");

        p.user.n_additional_gids = 0;
        st = run_child(child_setgroups_deny, &p, buf, sizeof(buf));
        is_int(st, 0, "no additionalGids where setgroups is denied: setgroups skipped");
        is_str(buf, "applied", "  applied");
}

static int child_rlimits(void *arg, int out_fd)
{
        struct oci_process *p = arg;
        struct moat_error *err = NULL;
        struct rlimit rl;
        int r;

        r = moat_process_apply_rlimits(p, &err);
        if (r < 0)
                return report_error(out_fd, r, err);
        getrlimit(RLIMIT_NOFILE, &rl);
        dprintf(out_fd, "nofile=%llu/%llu", (unsigned long long) rl.rlim_cur, (unsigned long long) rl.rlim_max);
        return 0;
}

static int child_rlimits_userns(void *arg, int out_fd)
{
        if (unshare(CLONE_NEWUSER) < 0 ||
            write_string_file_at(AT_FDCWD, "/proc/self/setgroups", "deny") < 0 ||
            write_string_file_at(AT_FDCWD, "/proc/self/uid_map", "0 0 1") < 0 ||
            write_string_file_at(AT_FDCWD, "/proc/self/gid_map", "0 0 1") < 0) {
                dprintf(out_fd, "setup failed: %m");
                return 2;
        }
        return child_rlimits(arg, out_fd);
}

static void test_rlimits(void)
{
        struct oci_rlimit rl = { .type = (char *) "RLIMIT_NOFILE", .resource = RLIMIT_NOFILE, .soft = 512, .hard = 1024 };
        struct oci_process p = { .rlimits = &rl, .n_rlimits = 1 };
        struct rlimit cur;
        char buf[1024], want[512];
        int st;

        st = run_child(child_rlimits, &p, buf, sizeof(buf));
        is_int(st, 0, "RLIMIT_NOFILE 512/1024: applied");
        is_str(buf, "nofile=512/1024", "  getrlimit reads it back");

        getrlimit(RLIMIT_NOFILE, &cur);
        if (host_mask("CapEff") & BIT(CAP_SYS_RESOURCE)) {
                ok(true, "# SKIP this host grants CAP_SYS_RESOURCE");
                ok(true, "# SKIP this host grants CAP_SYS_RESOURCE");
        } else {
                rl.soft = 1024;
                rl.hard = (uint64_t) cur.rlim_max + 10000;
                snprintf(want, sizeof(want),
                         "error 1: process.rlimits[0]: RLIMIT_NOFILE hard limit %" PRIu64
                         " exceeds the caller's hard limit %llu and this process lacks CAP_SYS_RESOURCE",
                         rl.hard, (unsigned long long) cur.rlim_max);
                st = run_child(child_rlimits, &p, buf, sizeof(buf));
                is_int(st, 1, "RLIMIT_NOFILE hard limit above the caller's: refused");
                is_str(buf, want, "  the error names the rlimit, both limits and the capability");
        }

        /* In a user namespace the process holds CAP_SYS_RESOURCE there, which
         * does not count: the kernel's EPERM is still explained. */
        rl.soft = 1024;
        rl.hard = (uint64_t) cur.rlim_max + 10000;
        snprintf(want, sizeof(want),
                 "error 1: process.rlimits[0]: RLIMIT_NOFILE hard limit %" PRIu64
                 " exceeds the caller's hard limit %llu and setrlimit was refused: Operation not permitted "
                 "(raising it needs CAP_SYS_RESOURCE in the initial user namespace)",
                 rl.hard, (unsigned long long) cur.rlim_max);
        st = run_child(child_rlimits_userns, &p, buf, sizeof(buf));
        is_int(st, 1, "raising a hard limit inside a user namespace: refused");
        is_str(buf, want, "  the error explains which capability counts");

        _cleanup_free_ char *nr_open = NULL;
        if (read_full_file_at(AT_FDCWD, "/proc/sys/fs/nr_open", 64, &nr_open, NULL) >= 0) {
                nr_open[strcspn(nr_open, "\n")] = '\0';
                rl.hard = strtoull(nr_open, NULL, 10) + 1;
                snprintf(want, sizeof(want),
                         "error 1: process.rlimits[0]: RLIMIT_NOFILE hard limit %" PRIu64
                         " exceeds the kernel's maximum %s (/proc/sys/fs/nr_open): Operation not permitted",
                         rl.hard, nr_open);
                st = run_child(child_rlimits_userns, &p, buf, sizeof(buf));
                is_str(buf, want, "RLIMIT_NOFILE above fs.nr_open: the error names the kernel's maximum");
        }

        rl.soft = 2048;
        rl.hard = 1024;
        st = run_child(child_rlimits, &p, buf, sizeof(buf));
        is_int(st, 1, "soft limit above hard limit: refused");
        is_str(buf, "error 22: process.rlimits[0]: RLIMIT_NOFILE soft limit 2048 exceeds its hard limit 1024",
               "  the error names both");
}

static int child_oom(void *arg, int out_fd)
{
        struct oci_process *p = arg;
        struct moat_error *err = NULL;
        _cleanup_free_ char *s = NULL;
        int r;

        r = moat_process_apply_oom_score_adj(p, &err);
        if (r < 0)
                return report_error(out_fd, r, err);
        if (read_full_file_at(AT_FDCWD, "/proc/self/oom_score_adj", 64, &s, NULL) < 0)
                return 2;
        s[strcspn(s, "\n")] = '\0';
        dprintf(out_fd, "%s", s);
        return 0;
}

static void test_oom_score_adj(void)
{
        struct oci_process p = { .has_oom_score_adj = true, .oom_score_adj = 500 };
        char buf[1024];
        int st;

        st = run_child(child_oom, &p, buf, sizeof(buf));
        is_int(st, 0, "oomScoreAdj 500: applied");
        is_str(buf, "500", "  /proc/self/oom_score_adj reads it back");

        p.oom_score_adj = -1000;
        st = run_child(child_oom, &p, buf, sizeof(buf));
        ok((st == 0 && streq(buf, "-1000")) || (st == 1 && strstr(buf, "process.oomScoreAdj -1000: ") &&
                                                strstr(buf, "needs CAP_SYS_RESOURCE")),
           "oomScoreAdj -1000: applied, or refused naming the value and CAP_SYS_RESOURCE (%s)", buf);

        p.oom_score_adj = 1001;
        st = run_child(child_oom, &p, buf, sizeof(buf));
        is_int(st, 1, "oomScoreAdj 1001: refused");
        is_str(buf, "error 22: process.oomScoreAdj 1001: out of range (-1000 to 1000)", "  the error names the value");
}

static int child_personality(void *arg, int out_fd)
{
        struct moat_error *err = NULL;
        int r;

        r = moat_process_apply_personality(arg, &err);
        if (r < 0)
                return report_error(out_fd, r, err);
        dprintf(out_fd, "%#x", (unsigned) personality(0xffffffff));
        return 0;
}

static void test_personality(void)
{
        struct oci_config c = { .has_linux = true };
        char buf[1024], want[32];
        int st;

        c.linux_.has_personality = true;
        c.linux_.personality_domain = (char *) "LINUX32";
        snprintf(want, sizeof(want), "%#x", (unsigned) PER_LINUX32);
        st = run_child(child_personality, &c, buf, sizeof(buf));
        is_int(st, 0, "personality LINUX32: applied");
        is_str(buf, want, "  personality() reads PER_LINUX32");

        c.linux_.personality_domain = (char *) "LINUX";
        st = run_child(child_personality, &c, buf, sizeof(buf));
        is_int(st, 0, "personality LINUX: applied");
        is_str(buf, "0", "  personality() reads PER_LINUX");

        c.linux_.personality_domain = (char *) "FOO";
        st = run_child(child_personality, &c, buf, sizeof(buf));
        is_int(st, 1, "personality FOO: refused");
        is_str(buf, "error 22: linux.personality.domain: unknown domain \"FOO\"", "  the error names the domain");
}

static void make_file(const char *dir, const char *name, mode_t mode)
{
        char path[PATH_MAX];
        int fd;

        snprintf(path, sizeof(path), "%s/%s", dir, name);
        fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
        if (fd >= 0) {
                if (write(fd, "#!/bin/sh\n", 10) < 0)
                        perror("write");
                close(fd);
        }
        chmod(path, mode);
}

static int find(char **env, const char *name, char **ret, char *msg, size_t msg_size)
{
        char *args[] = { (char *) name, NULL };
        struct oci_process p = { .args = args, .env = env };
        struct moat_error *err = NULL;
        int r;

        *ret = NULL;
        msg[0] = '\0';
        r = moat_process_find_executable(&p, ret, &err);
        if (r < 0)
                snprintf(msg, msg_size, "%s", err ? err->msg : "(no message)");
        moat_error_free(err);
        return r;
}

static void test_find_executable(void)
{
        char tmp[] = "/tmp/moat-test-process-XXXXXX";
        char bin1[256], bin2[256], sub[256], path_env[1024], want[512];
        char msg[2048];
        char *res = NULL;
        int r;

        if (!mkdtemp(tmp)) {
                ok(false, "mkdtemp: %m");
                return;
        }
        snprintf(bin1, sizeof(bin1), "%s/bin1", tmp);
        snprintf(bin2, sizeof(bin2), "%s/bin2", tmp);
        snprintf(sub, sizeof(sub), "%s/bin1/sub", tmp);
        mkdir(bin1, 0755);
        mkdir(bin2, 0755);
        mkdir(sub, 0755);
        make_file(bin1, "plain", 0644);
        make_file(bin2, "plain", 0755);
        make_file(bin1, "prog", 0755);
        make_file(bin2, "prog", 0755);
        make_file(bin2, "prog2", 0700);

        snprintf(path_env, sizeof(path_env), "PATH=%s/missing:%s:%s", tmp, bin1, bin2);
        char *env[] = { (char *) "PATH=/nonexistent", (char *) "HOME=/root", path_env, NULL };

        r = find(env, "prog", &res, msg, sizeof(msg));
        snprintf(want, sizeof(want), "%s/prog", bin1);
        is_int(r, 0, "find prog on the container's PATH");
        is_str(res, want, "  first PATH directory that has it wins, the last PATH= entry counts");
        free(res);

        r = find(env, "prog2", &res, msg, sizeof(msg));
        snprintf(want, sizeof(want), "%s/prog2", bin2);
        is_str(res, want, "find prog2 in the second directory");
        free(res);

        r = find(env, "plain", &res, msg, sizeof(msg));
        snprintf(want, sizeof(want), "%s/plain", bin2);
        is_str(res, want, "a non-executable file is passed over");
        free(res);

        r = find(env, "sub", &res, msg, sizeof(msg));
        is_int(r, -ENOENT, "a directory on PATH is not a program");
        free(res);

        r = find(env, "nosuch", &res, msg, sizeof(msg));
        is_int(r, -ENOENT, "missing program: -ENOENT");
        is_str(msg, "exec: \"nosuch\": executable file not found in $PATH", "  runc's wording");

        snprintf(want, sizeof(want), "%s/prog", bin2);
        r = find(env, want, &res, msg, sizeof(msg));
        is_int(r, 0, "absolute path");
        is_str(res, want, "  used as it is");
        free(res);

        snprintf(want, sizeof(want), "%s/none", bin2);
        r = find(env, want, &res, msg, sizeof(msg));
        is_int(r, -ENOENT, "absolute path that does not exist: -ENOENT");
        char want_msg[2048];
        snprintf(want_msg, sizeof(want_msg), "exec: \"%s\": stat %s: no such file or directory", want, want);
        is_str(msg, want_msg, "  runc's wording");

        r = find(env, sub, &res, msg, sizeof(msg));
        is_int(r, -EACCES, "absolute path of a directory: -EACCES");
        snprintf(want_msg, sizeof(want_msg), "exec: \"%s\": is a directory", sub);
        is_str(msg, want_msg, "  says so");

        snprintf(want, sizeof(want), "%s/plain", bin1);
        r = find(env, want, &res, msg, sizeof(msg));
        is_int(r, -EACCES, "absolute path without execute permission: -EACCES");
        snprintf(want_msg, sizeof(want_msg), "exec: \"%s\": permission denied", want);
        is_str(msg, want_msg, "  says so");

        /* Empty PATH component: the current directory. */
        int cwd = open(".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (chdir(bin2) < 0)
                perror("chdir");
        char *env_cwd[] = { (char *) "PATH=/nonexistent::", NULL };
        r = find(env_cwd, "prog2", &res, msg, sizeof(msg));
        is_int(r, 0, "empty PATH component: the current directory");
        is_str(res, "./prog2", "  found as ./prog2");
        free(res);
        if (cwd >= 0) {
                if (fchdir(cwd) < 0)
                        perror("fchdir");
                close(cwd);
        }

        /* No PATH in the environment: the default one. */
        r = find(NULL, "sh", &res, msg, sizeof(msg));
        ok(r == 0 && res && res[0] == '/' && strlen(res) > 3 && streq(res + strlen(res) - 3, "/sh"),
           "no PATH: the default PATH finds sh (%s)", res ? res : msg);
        free(res);

        char *env_empty[] = { (char *) "PATH=", NULL };
        r = find(env_empty, "sh", &res, msg, sizeof(msg));
        is_int(r, -ENOENT, "an empty PATH only searches the current directory");
        free(res);

        char *noargs[] = { NULL };
        struct oci_process np = { .args = noargs };
        struct moat_error *err = NULL;
        r = moat_process_find_executable(&np, &res, &err);
        is_int(r, -EINVAL, "no args: -EINVAL");
        moat_error_free(err);

        char cmd[PATH_MAX + 16];
        snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmp);
        if (system(cmd) != 0)
                printf("# cleanup of %s failed\n", tmp);
}

/* ---- securebits ---- */

static struct oci_key_value secbits_kv;

static struct oci_config secbits_config(const char *value, const struct oci_process *p)
{
        struct oci_config c = { .annotations = &secbits_kv, .n_annotations = value ? 1 : 0 };

        secbits_kv = (struct oci_key_value) { .key = (char *) MOAT_SECUREBITS_ANNOTATION, .value = (char *) value };
        if (p) {
                c.has_process = true;
                c.process = *p;
        }
        return c;
}

static int parse_securebits(const char *value, const struct oci_process *p, unsigned *bits, char *msg, size_t size)
{
        struct oci_config c = secbits_config(value, p);
        struct moat_error *err = NULL;
        int r;

        *bits = 0xdead;
        msg[0] = '\0';
        r = moat_process_securebits(&c, bits, &err);
        if (err)
                snprintf(msg, size, "%s", err->msg);
        moat_error_free(err);
        return r;
}

static void test_securebits_parse(void)
{
        struct oci_process amb = {
                .has_capabilities = true,
                .capabilities = { .bounding = BIT(CAP_KILL), .permitted = BIT(CAP_KILL),
                                  .inheritable = BIT(CAP_KILL), .ambient = BIT(CAP_KILL) },
        };
        char msg[512];
        unsigned bits;
        int r;

        r = parse_securebits(NULL, NULL, &bits, msg, sizeof(msg));
        ok(r == 0 && bits == 0, "securebits: no annotation, no bits");

        r = parse_securebits("noroot, noroot_locked,no_setuid_fixup,no_setuid_fixup_locked,"
                             "keep_caps_locked,no_cap_ambient_raise,no_cap_ambient_raise_locked",
                             NULL, &bits, msg, sizeof(msg));
        is_int(r, 0, "securebits: all seven names accepted (%s)", msg);
        is_int(bits, SECBIT_NOROOT | SECBIT_NOROOT_LOCKED | SECBIT_NO_SETUID_FIXUP | SECBIT_NO_SETUID_FIXUP_LOCKED |
                             SECBIT_KEEP_CAPS_LOCKED | SECBIT_NO_CAP_AMBIENT_RAISE | SECBIT_NO_CAP_AMBIENT_RAISE_LOCKED,
               "  each name maps to its SECBIT_ bit");

        r = parse_securebits("noroot,bogus", NULL, &bits, msg, sizeof(msg));
        is_int(r, -EINVAL, "securebits: unknown name refused");
        ok(strstr(msg, "annotation \"org.moat.securebits\"") && strstr(msg, "unknown securebit \"bogus\""),
           "  the error names the annotation and the value: %s", msg);

        r = parse_securebits("keep_caps", NULL, &bits, msg, sizeof(msg));
        ok(r == -EINVAL && strstr(msg, "\"keep_caps\""), "securebits: keep_caps (the runtime's own) refused: %s", msg);

        r = parse_securebits("noroot,,noroot_locked", NULL, &bits, msg, sizeof(msg));
        ok(r == -EINVAL && strstr(msg, "empty securebit name") && strstr(msg, "org.moat.securebits"),
           "securebits: empty item refused: %s", msg);
        r = parse_securebits("", NULL, &bits, msg, sizeof(msg));
        is_int(r, -EINVAL, "securebits: empty annotation refused");

        r = parse_securebits("no_cap_ambient_raise", &amb, &bits, msg, sizeof(msg));
        ok(r == -EINVAL && strstr(msg, "process.capabilities.ambient") && strstr(msg, "CAP_KILL"),
           "securebits: no_cap_ambient_raise with an ambient capability refused: %s", msg);
        amb.capabilities.ambient = 0;
        r = parse_securebits("no_cap_ambient_raise", &amb, &bits, msg, sizeof(msg));
        ok(r == 0 && bits == SECBIT_NO_CAP_AMBIENT_RAISE, "securebits: no_cap_ambient_raise without ambient accepted");
}

struct secbits_arg {
        const struct oci_process *p;
        unsigned bits;
        bool exec_report; /* after applying, exec a program that prints the bits */
};

static int child_securebits(void *arg, int out_fd)
{
        const struct secbits_arg *a = arg;
        struct moat_error *err = NULL;
        int r = moat_process_apply_credentials_ex(a->p, a->bits, &err);

        if (r < 0)
                return report_error(out_fd, r, err);
        dprintf(out_fd, "secbits=%#x keepcaps=%d ", (unsigned) prctl(PR_GET_SECUREBITS, 0, 0, 0, 0),
                prctl(PR_GET_KEEPCAPS, 0, 0, 0, 0));
        print_state(out_fd);
        if (a->exec_report) {
                /* What the next program starts with: execve clears
                 * SECBIT_KEEP_CAPS even when it is locked. */
                dprintf(out_fd, " exec:");
                if (dup2(out_fd, STDOUT_FILENO) < 0)
                        return 1;
                execl("/usr/bin/python3", "python3", "-c",
                      "import ctypes; print('%#x' % ctypes.CDLL(None).prctl(27, 0, 0, 0, 0), end='')", (char *) NULL);
                return 1;
        }
        return 0;
}

static int child_securebits_no_setpcap(void *arg, int out_fd)
{
        struct moat_error *err = NULL;
        cap_t c = cap_get_proc();
        cap_value_t v = CAP_SETPCAP;
        int r;

        (void) arg;
        if (!c || cap_set_flag(c, CAP_EFFECTIVE, 1, &v, CAP_CLEAR) < 0 || cap_set_proc(c) < 0)
                return 2;
        cap_free(c);
        r = moat_process_apply_securebits(SECBIT_NOROOT, &err);
        if (r < 0)
                return report_error(out_fd, r, err);
        return 0;
}

static void test_securebits_apply(void)
{
        const unsigned locked_all = SECBIT_NOROOT | SECBIT_NOROOT_LOCKED | SECBIT_NO_SETUID_FIXUP |
                                    SECBIT_NO_SETUID_FIXUP_LOCKED | SECBIT_NO_CAP_AMBIENT_RAISE |
                                    SECBIT_NO_CAP_AMBIENT_RAISE_LOCKED;
        struct oci_process p = {
                .user = { .uid = 1000, .gid = 1000 },
                .has_capabilities = true,
                .capabilities = { .bounding = BIT(CAP_KILL) | BIT(CAP_CHOWN), .effective = BIT(CAP_KILL),
                                  .permitted = BIT(CAP_KILL) },
        };
        struct secbits_arg a = { .p = &p, .bits = locked_all };
        char buf[1024], want[128];
        int st;

        st = run_child(child_securebits, &a, buf, sizeof(buf));
        is_int(st, 0, "securebits: uid 1000 keeping CAP_KILL with six bits: applied (%s)", buf);
        snprintf(want, sizeof(want), "secbits=%#x keepcaps=0 uid=1000,1000,1000", locked_all);
        ok(startswith(buf, want), "  PR_GET_SECUREBITS reads back exactly the bits, keep_caps cleared: %s", buf);
        ok(strstr(buf, " prm=0000000000000020 eff=0000000000000020 "),
           "  the capabilities kept across the uid change are in place");

        /* keep_caps_locked while capabilities are kept: the bit stays set
         * (locked) until execve, which clears it. */
        a = (struct secbits_arg) { .p = &p, .bits = SECBIT_KEEP_CAPS_LOCKED, .exec_report = false };
        st = run_child(child_securebits, &a, buf, sizeof(buf));
        is_int(st, 0, "securebits: keep_caps_locked with kept capabilities: applied (%s)", buf);
        snprintf(want, sizeof(want), "secbits=%#x keepcaps=1 uid=1000,1000,1000", SECBIT_KEEP_CAPS_LOCKED | SECBIT_KEEP_CAPS);
        ok(startswith(buf, want), "  keep_caps locked on until exec: %s", buf);

        struct oci_process r0 = p;
        r0.user = (struct oci_user) { .uid = 0, .gid = 0 };
        a = (struct secbits_arg) { .p = &r0, .bits = SECBIT_KEEP_CAPS_LOCKED | SECBIT_NOROOT, .exec_report = true };
        st = run_child(child_securebits, &a, buf, sizeof(buf));
        snprintf(want, sizeof(want), " exec:%#x", SECBIT_KEEP_CAPS_LOCKED | SECBIT_NOROOT);
        ok(st == 0 && strstr(buf, want), "  after execve keep_caps is 0 and still locked: %s", buf);

        /* Without capabilities kept, keep_caps is locked at 0. */
        struct oci_process none = { .user = { .uid = 1000, .gid = 1000 } };
        a = (struct secbits_arg) { .p = &none, .bits = SECBIT_KEEP_CAPS_LOCKED };
        st = run_child(child_securebits, &a, buf, sizeof(buf));
        snprintf(want, sizeof(want), "secbits=%#x keepcaps=0 uid=1000,1000,1000", SECBIT_KEEP_CAPS_LOCKED);
        ok(st == 0 && startswith(buf, want), "securebits: keep_caps_locked without capabilities locks it at 0: %s", buf);

        /* no_cap_ambient_raise refused when an ambient capability is to be raised. */
        struct oci_process amb = p;
        amb.capabilities.inheritable = BIT(CAP_KILL);
        amb.capabilities.ambient = BIT(CAP_KILL);
        a = (struct secbits_arg) { .p = &amb, .bits = SECBIT_NO_CAP_AMBIENT_RAISE };
        st = run_child(child_securebits, &a, buf, sizeof(buf));
        ok(st == 1 && strstr(buf, "error 22:") && strstr(buf, "no_cap_ambient_raise") && strstr(buf, "CAP_KILL"),
           "securebits: no_cap_ambient_raise with ambient CAP_KILL refused: %s", buf);

        /* The old entry point leaves the securebits alone. */
        a = (struct secbits_arg) { .p = &p, .bits = 0 };
        st = run_child(child_securebits, &a, buf, sizeof(buf));
        ok(st == 0 && startswith(buf, "secbits=0 keepcaps=0 "), "securebits: 0 sets none: %s", buf);

        st = run_child(child_securebits_no_setpcap, NULL, buf, sizeof(buf));
        ok(st == 1 && strstr(buf, "error 1:") && strstr(buf, "needs CAP_SETPCAP") && strstr(buf, "org.moat.securebits"),
           "securebits: without CAP_SETPCAP the error says so: %s", buf);
}

/* ---- capabilities unknown to the kernel ---- */

static int kernel_last_cap(void)
{
        _cleanup_free_ char *s = NULL;

        if (read_full_file_at(AT_FDCWD, "/proc/sys/kernel/cap_last_cap", 64, &s, NULL) < 0)
                return -1;
        return atoi(s);
}

static void test_check_capabilities(void)
{
        int last = kernel_last_cap();
        struct oci_process p = {
                .has_capabilities = true,
                .capabilities = { .bounding = BIT(CAP_KILL), .effective = BIT(CAP_KILL), .permitted = BIT(CAP_KILL) },
        };
        char *w = (char *) 1;
        char buf[1024];
        int r, st;

        ok(last > 0 && last < 62, "cap_last_cap of this kernel: %d", last);
        if (last <= 0 || last >= 62)
                return;

        r = moat_process_check_capabilities(&p, &w);
        ok(r == 0 && w == NULL, "check_capabilities: known capabilities, no warning");
        struct oci_process none = {};
        r = moat_process_check_capabilities(&none, &w);
        ok(r == 0 && w == NULL, "check_capabilities: no process.capabilities, no warning");

        p.capabilities.bounding |= BIT(last + 1) | BIT(63);
        p.capabilities.ambient |= BIT(last + 1);
        r = moat_process_check_capabilities(&p, &w);
        ok(r == 0 && w, "check_capabilities: capabilities %d and 63 give a warning: %s", last + 1, w ? w : "(null)");
        if (w) {
                char n1[32], n2[32];
                snprintf(n1, sizeof(n1), "capability %d", last + 1);
                snprintf(n2, sizeof(n2), "capability 63");
                ok(startswith(w, "process.capabilities: ") && strstr(w, n1) && strstr(w, n2) &&
                           strstr(w, "unknown to the running kernel") && strstr(w, "skipped") && !strstr(w, "CAP_KILL"),
                   "  it names each unknown capability once and not the known ones");
                ok(last != 40 || strstr(w, "its last capability is CAP_CHECKPOINT_RESTORE"),
                   "  and the kernel's last capability");
                free(w);
        }

        /* The same config still runs: unknown capabilities are skipped. */
        p.user = (struct oci_user) { .uid = 0, .gid = 0 };
        p.capabilities.ambient = 0;
        st = run_child(child_credentials, &p, buf, sizeof(buf));
        ok(st == 0 && strstr(buf, " bnd=0000000000000020 "), "check_capabilities: apply skips them: %s", buf);
}

int main(void)
{
        if (geteuid() != 0) {
                printf("1..0 # SKIP must run as root\n");
                return 0;
        }
        alarm(120);

        test_user_no_caps();
        test_capabilities();
        test_setgroups_deny();
        test_rlimits();
        test_oom_score_adj();
        test_personality();
        test_find_executable();
        test_securebits_parse();
        test_securebits_apply();
        test_check_capabilities();

        return tap_done();
}
