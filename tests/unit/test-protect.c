/* SPDX-License-Identifier: Apache-2.0 */
#include "base/compat.h"

/*
 * Unit tests for src/runtime/protect.c: the self-exe protection (run in a
 * re-executed copy of this program, so the re-exec is real), the procfs
 * checks against fake and redirected procfs paths, the LSM attr writes
 * against a plain directory, the mount label, and the Landlock annotation
 * parser and its enforcement (in forked children: restrictions cannot be
 * undone). Must run as root.
 */

#include <fcntl.h>
#include <limits.h>
#include <sched.h>
#include <stdio.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "base/cleanup.h"
#include "base/fileio.h"
#include "runtime/protect.h"
#include "tap.h"

#define CAP_SYS_ADMIN_BIT 21

static char tmpdir[] = "/tmp/moat-test-protect-XXXXXX";

static int write_file(const char *dir, const char *name, const char *content)
{
        char p[PATH_MAX];
        snprintf(p, sizeof(p), "%s/%s", dir, name);
        _cleanup_close_ int fd = open(p, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
        if (fd < 0)
                return -errno;
        return write_all(fd, content, strlen(content));
}

static char *read_file(const char *dir, const char *name)
{
        char p[PATH_MAX];
        char *s = NULL;
        snprintf(p, sizeof(p), "%s/%s", dir, name);
        if (read_full_file_at(AT_FDCWD, p, 4096, &s, NULL) < 0)
                return NULL;
        return s;
}

/* ---- self-exe: this program re-executed ---------------------------------- */

static int self_exe_child(int argc, char **argv)
{
        _cleanup_error_ struct moat_error *err = NULL;
        char link[PATH_MAX];

        int r = moat_protect_self_exe(argc, argv, &err);
        if (r < 0) {
                printf("error=%s\n", err ? err->msg : strerror(-r));
                return 1;
        }
        _cleanup_close_ int exe = open("/proc/self/exe", O_RDONLY | O_CLOEXEC);
        ssize_t n = readlink("/proc/self/exe", link, sizeof(link) - 1);
        link[n > 0 ? n : 0] = '\0';
        errno = 0;
        _cleanup_close_ int w = open("/proc/self/exe", O_WRONLY | O_CLOEXEC);
        int werr = w < 0 ? errno : 0;
        if (w >= 0 && write(w, "x", 1) < 0)
                werr = errno;
        printf("protected=%d memfd=%d write_errno=%d\n", exe >= 0 && moat_exe_is_protected(exe),
               startswith(link, "/memfd:"), werr);
        return 0;
}

static void run_self_exe(const char *mode, char *out, size_t size)
{
        int pfd[2];
        out[0] = '\0';
        if (pipe2(pfd, O_CLOEXEC) < 0)
                return;
        pid_t pid = fork();
        if (pid == 0) {
                dup2(pfd[1], STDOUT_FILENO);
                if (streq(mode, "nocap"))
                        /* Without CAP_SYS_ADMIN after exec: no mount clone. */
                        (void) prctl(PR_CAPBSET_DROP, CAP_SYS_ADMIN_BIT, 0, 0, 0);
                execl("/proc/self/exe", "test-protect", "--self-exe-child", mode, (char *) NULL);
                _exit(127);
        }
        close(pfd[1]);
        size_t len = 0;
        ssize_t n;
        while (len + 1 < size && (n = read(pfd[0], out + len, size - 1 - len)) > 0)
                len += (size_t) n;
        while (len > 0 && out[len - 1] == '\n')
                len--;  /* one TAP line */
        out[len] = '\0';
        close(pfd[0]);
        waitpid(pid, NULL, 0);
}

static void test_self_exe(void)
{
        char out[1024];

        /* This test binary lives in the build tree, on a writable mount. */
        _cleanup_close_ int me = open("/proc/self/exe", O_RDONLY | O_CLOEXEC);
        ok(me >= 0 && !moat_exe_is_protected(me), "the unprotected test binary is seen as unprotected");

        run_self_exe("clone", out, sizeof(out));
        ok(strstr(out, "protected=1 memfd=0 ") != NULL && !strstr(out, "write_errno=0"),
           "with CAP_SYS_ADMIN: re-executed from a read-only clone, writes refused (%s)", out);

        run_self_exe("nocap", out, sizeof(out));
        ok(strstr(out, "protected=1 memfd=1") != NULL && !strstr(out, "write_errno=0"),
           "without CAP_SYS_ADMIN: re-executed from a sealed memfd, writes refused (%s)", out);
}

static void test_exe_is_protected(void)
{
        char path[PATH_MAX];
        snprintf(path, sizeof(path), "%s/exe", tmpdir);
        ok(write_file(tmpdir, "exe", "binary") >= 0, "made a file");

        _cleanup_close_ int f = open(path, O_RDONLY | O_CLOEXEC);
        ok(!moat_exe_is_protected(f), "a file on a writable mount is not protected");

        _cleanup_close_ int tree = open_tree(AT_FDCWD, path, OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC);
        ok(tree >= 0 && !moat_exe_is_protected(tree), "a writable clone of its mount is not protected");
        struct mount_attr attr = { .attr_set = MOUNT_ATTR_RDONLY };
        ok(mount_setattr(tree, "", AT_EMPTY_PATH, &attr, sizeof(attr)) == 0 && moat_exe_is_protected(tree),
           "a read-only clone is protected");

        _cleanup_close_ int m = memfd_create("t", MFD_CLOEXEC | MFD_ALLOW_SEALING);
        ok(m >= 0 && !moat_exe_is_protected(m), "an unsealed memfd is not protected");
        ok(fcntl(m, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW) == 0 && !moat_exe_is_protected(m),
           "a memfd sealed against resizing only is not protected");
        ok(fcntl(m, F_ADD_SEALS, F_SEAL_WRITE | F_SEAL_SEAL) == 0 && moat_exe_is_protected(m),
           "a memfd sealed against writes is protected");
}

/* ---- procfs ------------------------------------------------------------- */

static void test_procfs(void)
{
        _cleanup_close_ int proc = open("/proc", O_PATH | O_DIRECTORY | O_CLOEXEC);
        _cleanup_close_ int tmp = open(tmpdir, O_PATH | O_DIRECTORY | O_CLOEXEC);
        _cleanup_close_ int self = open("/proc/self", O_PATH | O_DIRECTORY | O_CLOEXEC);

        is_int(moat_procfs_verify(proc), 0, "/proc is a procfs root");
        is_int(moat_procfs_verify(tmp), -EXDEV, "a plain directory is not a procfs");
        is_int(moat_procfs_verify(self), -ENOTDIR, "/proc/self is procfs but not its root");

        int fd = moat_procfs_open(proc, "self/status", O_RDONLY);
        ok(fd >= 0, "self/status opens");
        char *s = NULL;
        if (fd >= 0) {
                if (read_full_fd(fd, 65536, &s, NULL) >= 0) {
                        char want[64];
                        snprintf(want, sizeof(want), "\nPid:\t%d\n", (int) getpid());
                        ok(strstr(s, want) != NULL, "self/ was resolved to this process");
                        free(s);
                }
                close(fd);
        }
        fd = moat_procfs_open(-EBADF, "thread-self/attr", O_PATH | O_DIRECTORY);
        ok(fd >= 0, "thread-self/attr through the caller's /proc");
        safe_close(fd);

        is_int(moat_procfs_open(proc, "mounts", O_RDONLY), -ELOOP, "the /proc/mounts symlink is not followed");
        is_int(moat_procfs_open(proc, "self/root/etc/passwd", O_RDONLY), -ELOOP,
               "a magic link out of procfs is not followed");
        is_int(moat_procfs_open(proc, "self/../1/status", O_RDONLY), -EINVAL, "\"..\" is refused");
        is_int(moat_procfs_open(proc, "/etc/passwd", O_RDONLY), -EINVAL, "absolute paths are refused");

        /* A fake /proc: a directory with a self symlink to a writable file. */
        char fake[PATH_MAX], target[PATH_MAX], link[PATH_MAX];
        snprintf(fake, sizeof(fake), "%s/fakeproc", tmpdir);
        snprintf(target, sizeof(target), "%s/fakeproc/1", tmpdir);
        snprintf(link, sizeof(link), "%s/fakeproc/self", tmpdir);
        ok(mkdir(fake, 0755) == 0 && mkdir(target, 0755) == 0 && symlink("1", link) == 0 &&
                   write_file(target, "oom_score_adj", "0") >= 0,
           "built a fake procfs");
        _cleanup_close_ int fakefd = open(fake, O_PATH | O_DIRECTORY | O_CLOEXEC);
        is_int(moat_procfs_open(fakefd, "self/oom_score_adj", O_WRONLY), -EXDEV, "a fake procfs is refused");

        /* A procfs file with a tmpfs mounted over a directory on the way
         * (what a racing container does to redirect writes). */
        pid_t pid = fork();
        if (pid == 0) {
                if (unshare(CLONE_NEWNS) < 0 || mount(NULL, "/", NULL, MS_SLAVE | MS_REC, NULL) < 0)
                        _exit(2);
                if (mount("tmpfs", "/proc/sys", "tmpfs", 0, NULL) < 0)
                        _exit(3);
                int p = open("/proc", O_PATH | O_DIRECTORY | O_CLOEXEC);
                int r = moat_procfs_open(p, "sys/kernel/hostname", O_RDONLY);
                _exit(r == -EXDEV ? 0 : 1);
        }
        int st = 0;
        waitpid(pid, &st, 0);
        ok(WIFEXITED(st) && WEXITSTATUS(st) == 0, "a mount over a procfs directory is not crossed (%d)",
           WEXITSTATUS(st));
}

/* ---- LSM ------------------------------------------------------------------ */

static void test_lsm_write(void)
{
        _cleanup_error_ struct moat_error *err = NULL;
        char dir[PATH_MAX], sub[PATH_MAX];
        snprintf(dir, sizeof(dir), "%s/attr", tmpdir);
        snprintf(sub, sizeof(sub), "%s/attr/apparmor", tmpdir);
        ok(mkdir(dir, 0755) == 0 && write_file(dir, "exec", "") >= 0, "fake attr directory");
        _cleanup_close_ int dfd = open(dir, O_PATH | O_DIRECTORY | O_CLOEXEC);

        is_int(moat_lsm_write_exec_label(dfd, MOAT_LSM_APPARMOR, "my-profile", &err), 0,
               "AppArmor label without attr/apparmor");
        _cleanup_free_ char *s1 = read_file(dir, "exec");
        is_str(s1, "exec my-profile", "AppArmor writes \"exec <profile>\" to attr/exec");

        ok(mkdir(sub, 0755) == 0 && write_file(sub, "exec", "") >= 0 && write_file(dir, "exec", "") >= 0,
           "attr/apparmor/exec");
        is_int(moat_lsm_write_exec_label(dfd, MOAT_LSM_APPARMOR, "other", &err), 0, "AppArmor label");
        _cleanup_free_ char *s2 = read_file(sub, "exec");
        _cleanup_free_ char *s3 = read_file(dir, "exec");
        is_str(s2, "exec other", "AppArmor prefers attr/apparmor/exec");
        is_str(s3, "", "and leaves attr/exec alone");

        is_int(moat_lsm_write_exec_label(dfd, MOAT_LSM_SELINUX, "system_u:system_r:container_t:s0:c1,c2", &err), 0,
               "SELinux label");
        _cleanup_free_ char *s4 = read_file(dir, "exec");
        is_str(s4, "system_u:system_r:container_t:s0:c1,c2", "SELinux writes the label to attr/exec");

        int r = moat_lsm_write_exec_label(dfd, MOAT_LSM_SELINUX, "a\nb", &err);
        ok(r == -EINVAL && err && strstr(err->msg, "multi-line"), "a label with a newline is refused");
        moat_error_free(err);
        err = NULL;

        char victim[PATH_MAX];
        snprintf(victim, sizeof(victim), "%s/victim", tmpdir);
        ok(write_file(tmpdir, "victim", "untouched") >= 0 && unlinkat(dfd, "exec", 0) == 0 &&
                   symlinkat(victim, dfd, "exec") == 0,
           "attr/exec replaced by a symlink to another file");
        r = moat_lsm_write_exec_label(dfd, MOAT_LSM_SELINUX, "label", &err);
        ok(r < 0 && err && strstr(err->msg, "attr/exec"), "a symlinked attr file is not written through: %s",
           err ? err->msg : "");
        _cleanup_free_ char *v = read_file(tmpdir, "victim");
        is_str(v, "untouched", "the symlink target is unchanged");
}

static void test_lsm_inactive(void)
{
        struct oci_key_value ann = { .key = (char *) MOAT_ANNOTATION_LSM_IGNORE_INACTIVE, .value = (char *) "true" };
        struct oci_config c = { .has_linux = true };
        struct oci_process p = { .apparmor_profile = (char *) "docker-default" };
        _cleanup_error_ struct moat_error *err = NULL;

        if (moat_lsm_is_active(MOAT_LSM_APPARMOR, -EBADF) || moat_lsm_is_active(MOAT_LSM_SELINUX, -EBADF)) {
                ok(true, "# SKIP an LSM is active on this host");
                return;
        }
        int r = moat_lsm_apply_exec_label(&c, &p, -EBADF, &err);
        ok(r == -EOPNOTSUPP && err &&
                   strstr(err->msg, "process.apparmorProfile \"docker-default\": AppArmor is not enabled on this host"),
           "inactive AppArmor: %s", err ? err->msg : "(no error)");
        moat_error_free(err);
        err = NULL;

        p = (struct oci_process) { .selinux_label = (char *) "system_u:system_r:container_t:s0" };
        r = moat_lsm_apply_exec_label(&c, &p, -EBADF, &err);
        ok(r == -EOPNOTSUPP && err && strstr(err->msg, "process.selinuxLabel") && strstr(err->msg, "SELinux is not enabled"),
           "inactive SELinux: %s", err ? err->msg : "(no error)");
        moat_error_free(err);
        err = NULL;

        c.linux_.mount_label = (char *) "system_u:object_r:container_file_t:s0";
        char *data = NULL;
        r = moat_lsm_mount_label_data(&c, "mode=755", &data, &err);
        ok(r == -EOPNOTSUPP && !data && err && strstr(err->msg, "linux.mountLabel"), "inactive SELinux, mountLabel: %s",
           err ? err->msg : "(no error)");
        moat_error_free(err);
        err = NULL;

        c.annotations = &ann;
        c.n_annotations = 1;
        is_int(moat_lsm_apply_exec_label(&c, &p, -EBADF, &err), 0, "ignored with the annotation");
        is_int(moat_lsm_mount_label_data(&c, "mode=755", &data, &err), 0, "mountLabel ignored with the annotation");
        ok(data == NULL, "no context= option then");
        ann.value = (char *) "yes";
        ok(moat_lsm_apply_exec_label(&c, &p, -EBADF, &err) < 0, "only \"true\" ignores");

        c.linux_.mount_label = NULL;
        is_int(moat_lsm_mount_label_data(&c, "mode=755", &data, &err), 0, "no mountLabel: nothing to add");
        ok(data == NULL, "no mountLabel: data unchanged");
}

/* ---- Landlock ------------------------------------------------------------- */

static void test_landlock_parse(void)
{
        struct moat_landlock_ruleset rs = {};
        _cleanup_error_ struct moat_error *err = NULL;

        is_int(moat_landlock_parse("{\"read\":[\"/usr\",\"/etc\"],\"write\":[\"/tmp\"],\"execute\":[\"/bin\",\"/usr\"]}",
                                   &rs, &err),
               0, "JSON form");
        is_int(rs.n_rules, 4, "four distinct paths");
        ok(rs.n_rules == 4 && streq(rs.rules[0].path, "/usr") &&
                   rs.rules[0].access == (MOAT_LANDLOCK_READ | MOAT_LANDLOCK_EXECUTE),
           "a path listed twice gets both accesses");
        ok(rs.n_rules == 4 && streq(rs.rules[2].path, "/tmp") && rs.rules[2].access == MOAT_LANDLOCK_WRITE,
           "write rule");
        moat_landlock_ruleset_done(&rs);

        is_int(moat_landlock_parse(" ro: /usr , /etc ; rw:/tmp;rx:/bin;", &rs, &err), 0, "compact form");
        ok(rs.n_rules == 4 && streq(rs.rules[1].path, "/etc") && rs.rules[1].access == MOAT_LANDLOCK_READ &&
                   streq(rs.rules[3].path, "/bin") && rs.rules[3].access == MOAT_LANDLOCK_EXECUTE,
           "compact form rules, spaces trimmed");
        moat_landlock_ruleset_done(&rs);

        static const struct {
                const char *text;
                const char *msg;
        } bad[] = {
                { "{\"read\":[\"usr\"]}", "is not an absolute path" },
                { "{\"read\":[\"/usr/../etc\"]}", "\"..\" is not allowed" },
                { "{\"list\":[\"/usr\"]}", "unknown key" },
                { "{\"read\":\"/usr\"}", "must be an array" },
                { "{\"read\":[1]}", "must be a string" },
                { "{\"read\":[]}", "no paths given" },
                { "[\"/usr\"]", "must be a JSON object" },
                { "{\"read\":", "invalid JSON" },
                { "rox:/usr", "expected ro:, rw: or rx:" },
                { "/usr", "expected ro:, rw: or rx:" },
                { "ro:/usr,,/etc", "is not an absolute path" },
                { "", "no paths given" },
        };
        for (size_t i = 0; i < ELEMENTSOF(bad); i++) {
                int r = moat_landlock_parse(bad[i].text, &rs, &err);
                ok(r < 0 && err && strstr(err->msg, bad[i].msg) && strstr(err->msg, MOAT_ANNOTATION_LANDLOCK),
                   "refused %s: %s", bad[i].text, err ? err->msg : "(accepted)");
                moat_error_free(err);
                err = NULL;
        }

        /* Bounds: more than 256 paths. */
        _cleanup_free_ char *many = malloc(300 * 12 + 8);
        strcpy(many, "ro:");
        for (int i = 0; i < 300; i++)
                sprintf(many + strlen(many), "%s/p%d", i ? "," : "", i);
        int r = moat_landlock_parse(many, &rs, &err);
        ok(r == -E2BIG && err && strstr(err->msg, "more than 256"), "at most 256 paths");
}

/* In a child: apply rules with "/" as the container root and report what
 * the kernel then allows. */
static void test_landlock_apply(void)
{
        if (moat_landlock_abi() < 1) {
                ok(true, "# SKIP Landlock is not available");
                return;
        }
        char allowed[PATH_MAX], denied[PATH_MAX], rules[3 * PATH_MAX];
        snprintf(allowed, sizeof(allowed), "%s/allowed", tmpdir);
        snprintf(denied, sizeof(denied), "%s/denied", tmpdir);
        ok(mkdir(allowed, 0755) == 0 && mkdir(denied, 0755) == 0 && write_file(denied, "secret", "s") >= 0,
           "landlock directories");
        snprintf(rules, sizeof(rules), "{\"read\":[\"/proc\", \"/usr\", \"/does/not/exist\"],\"write\":[\"%s\"]}",
                 allowed);
        struct oci_key_value ann = { .key = (char *) MOAT_ANNOTATION_LANDLOCK, .value = rules };
        struct oci_config c = { .annotations = &ann, .n_annotations = 1 };

        int pfd[2];
        if (pipe2(pfd, O_CLOEXEC) < 0)
                return;
        pid_t pid = fork();
        if (pid == 0) {
                _cleanup_error_ struct moat_error *err = NULL;
                char res[256], p[PATH_MAX + 16];
                int r = moat_landlock_apply(&c, &err);
                snprintf(p, sizeof(p), "%s/new", allowed);
                int w1 = open(p, O_WRONLY | O_CREAT | O_CLOEXEC, 0644) >= 0 ? 0 : errno;
                snprintf(p, sizeof(p), "%s/new", denied);
                int w2 = open(p, O_WRONLY | O_CREAT | O_CLOEXEC, 0644) >= 0 ? 0 : errno;
                snprintf(p, sizeof(p), "%s/secret", denied);
                int r1 = open(p, O_RDONLY | O_CLOEXEC) >= 0 ? 0 : errno;
                int r2 = open("/usr/include/stdio.h", O_RDONLY | O_CLOEXEC) >= 0 ? 0 : errno;
                int nnp = prctl(PR_GET_NO_NEW_PRIVS, 0, 0, 0, 0);
                snprintf(res, sizeof(res), "apply=%d write_allowed=%d write_denied=%d read_denied=%d read_usr=%d nnp=%d",
                         r, w1, w2, r1, r2, nnp);
                if (write(pfd[1], res, strlen(res)) < 0)
                        _exit(1);
                _exit(0);
        }
        close(pfd[1]);
        char out[256] = "";
        ssize_t n = read(pfd[0], out, sizeof(out) - 1);
        out[n > 0 ? n : 0] = '\0';
        close(pfd[0]);
        waitpid(pid, NULL, 0);
        is_str(out, "apply=0 write_allowed=0 write_denied=13 read_denied=13 read_usr=0 nnp=1",
               "Landlock: write only where allowed, read only what is listed, no_new_privs set");

        /* Validation at create. */
        _cleanup_error_ struct moat_error *err = NULL;
        is_int(moat_landlock_validate(&c, &err), 0, "a good annotation validates");
        ann.value = (char *) "rw:tmp";
        ok(moat_landlock_validate(&c, &err) == -EINVAL && err && strstr(err->msg, "\"tmp\" is not an absolute path"),
           "a bad annotation fails validation: %s", err ? err->msg : "");
        struct oci_config none = {};
        is_int(moat_landlock_validate(&none, &err), 0, "no annotation: nothing to validate");
        is_int(moat_landlock_apply(&none, &err), 0, "no annotation: nothing to apply");
}

static void cleanup_tmp(void)
{
        char cmd[PATH_MAX + 16];
        snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpdir);
        if (system(cmd) != 0)
                fprintf(stderr, "could not remove %s\n", tmpdir);
}

int main(int argc, char **argv)
{
        if (argc >= 2 && streq(argv[1], "--self-exe-child"))
                return self_exe_child(argc, argv);
        if (geteuid() != 0) {
                printf("1..0 # SKIP must run as root\n");
                return 0;
        }
        if (!mkdtemp(tmpdir)) {
                printf("Bail out! mkdtemp: %s\n", strerror(errno));
                return 1;
        }
        test_self_exe();
        test_exe_is_protected();
        test_procfs();
        test_lsm_write();
        test_lsm_inactive();
        test_landlock_parse();
        test_landlock_apply();
        cleanup_tmp();
        return tap_done();
}
