/* SPDX-License-Identifier: Apache-2.0 */
#include "base/compat.h"

/*
 * Defences of the runtime process itself and of the init's last steps.
 *
 * Self-exe (CVE-2019-5736): a container that can reach /proc/<pid>/exe of
 * a runtime process (the init before it execs, a joining exec process)
 * could open the runtime's binary for writing once the runtime has exited.
 * Before create/run/exec the runtime therefore makes sure that its exe is
 * unwritable: if it already is (a sealed memfd, or a file on a read-only
 * mount: checked, not marked with an environment variable, so a re-exec
 * cannot loop), nothing is done; else it clones the mount holding the
 * binary with open_tree(OPEN_TREE_CLONE), makes the clone read-only while
 * it is still detached and re-executes through that fd. A detached mount
 * never appears in any mount table and is freed with the last process
 * using it, so this costs one exec and no mount churn. Without the
 * privilege to clone mounts (rootless) the binary is copied into a memfd
 * sealed against writes, as runc and crun do.
 *
 * Procfs writes (CVE-2019-16884, -19921, CVE-2023-27561, -28642,
 * CVE-2025-52881): whatever the container put at /proc, the runtime only
 * writes procfs files reached from a procfs root it verified (fstatfs
 * magic and root inode), with "self" resolved by hand and the rest opened
 * with RESOLVE_BENEATH|RESOLVE_NO_SYMLINKS|RESOLVE_NO_XDEV, so no symlink
 * and no mount over a procfs file can redirect the write.
 *
 * LSM labels are written that way to thread-self/attr; whether an LSM is
 * active comes from lsm_list_modules(2) (kernel 6.8+), else from procfs.
 *
 * Landlock is written by hand against the kernel ABI: there is no Debian
 * library for it (the only C helper is a header in the kernel samples).
 */

#include <fcntl.h>
#include <jansson.h>
#include <limits.h>
#include <linux/magic.h>
#include <linux/openat2.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/sendfile.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/statvfs.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "base/cleanup.h"
#include "base/fileio.h"
#include "base/log.h"
#include "runtime/mount.h"
#include "runtime/protect.h"

extern char **environ;

#ifndef MFD_EXEC
#define MFD_EXEC 0x0010U
#endif
#ifndef F_SEAL_FUTURE_WRITE
#define F_SEAL_FUTURE_WRITE 0x0010
#endif
#ifndef __NR_lsm_list_modules
#define __NR_lsm_list_modules 461
#endif
#define LSM_ID_SELINUX 101
#define LSM_ID_APPARMOR 104

#define PROC_ROOT_INO 1
#define LSM_LABEL_MAX 4096

/* ---- self-exe ------------------------------------------------------------ */

bool moat_exe_is_protected(int fd)
{
        int seals = fcntl(fd, F_GET_SEALS);
        if (seals >= 0 && (seals & F_SEAL_SEAL) && (seals & (F_SEAL_WRITE | F_SEAL_FUTURE_WRITE)) &&
            (seals & F_SEAL_GROW) && (seals & F_SEAL_SHRINK))
                return true;

        struct statvfs sv;
        return fstatvfs(fd, &sv) >= 0 && (sv.f_flag & ST_RDONLY);
}

/* A read-only clone of the mount holding the binary, detached. */
static int readonly_clone(int exe_fd)
{
        _cleanup_close_ int tree = open_tree(exe_fd, "", OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC | AT_EMPTY_PATH);
        if (tree < 0)
                return negative_errno();
        struct mount_attr attr = { .attr_set = MOUNT_ATTR_RDONLY };
        if (mount_setattr(tree, "", AT_EMPTY_PATH, &attr, sizeof(attr)) < 0)
                return negative_errno();
        return TAKE_FD(tree);
}

/* A copy of the binary in a memfd sealed against any change. */
static int sealed_copy(int exe_fd)
{
        struct stat st;
        _cleanup_close_ int mfd = memfd_create("moat-runtime", MFD_CLOEXEC | MFD_ALLOW_SEALING | MFD_EXEC);
        if (mfd < 0 && errno == EINVAL)
                mfd = memfd_create("moat-runtime", MFD_CLOEXEC | MFD_ALLOW_SEALING);
        if (mfd < 0)
                return negative_errno();
        if (fstat(exe_fd, &st) < 0)
                return negative_errno();
        off_t off = 0;
        while (off < st.st_size) {
                ssize_t n = sendfile(mfd, exe_fd, &off, (size_t) (st.st_size - off));
                if (n < 0 && errno == EINTR)
                        continue;
                if (n < 0)
                        return negative_errno();
                if (n == 0)
                        return -EIO;
        }
        if (fcntl(mfd, F_ADD_SEALS, F_SEAL_SEAL | F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE) < 0)
                return negative_errno();
        return TAKE_FD(mfd);
}

int moat_protect_self_exe(int argc, char **argv, struct moat_error **reterr)
{
        _cleanup_close_ int exe = -EBADF, target = -EBADF;
        const char *how;
        int r;

        if (argc < 1 || !argv || argv[argc])
                return moat_error_setx(reterr, -EINVAL, "protecting the runtime binary: bad argument vector");

        exe = open("/proc/self/exe", O_RDONLY | O_CLOEXEC);
        if (exe < 0)
                return moat_error_set(reterr, errno, "protecting the runtime binary: opening /proc/self/exe");
        if (moat_exe_is_protected(exe))
                return 0;

        how = "read-only clone";
        target = readonly_clone(exe);
        if (target < 0) {
                log_debug("read-only clone of the runtime binary: %s; using a sealed memfd", strerror(-target));
                how = "sealed copy";
                target = sealed_copy(exe);
                if (target < 0)
                        return moat_error_set(reterr, target,
                                              "protecting the runtime binary (CVE-2019-5736): no read-only clone "
                                              "and no sealed copy");
        }
        exe = safe_close(exe);

        execveat(target, "", argv, environ, AT_EMPTY_PATH);
        r = -errno;
        return moat_error_set(reterr, r, "protecting the runtime binary: re-executing its %s", how);
}

/* ---- procfs -------------------------------------------------------------- */

int moat_procfs_verify(int dir_fd)
{
        struct statfs sfs;
        struct stat st;

        if (fstatfs(dir_fd, &sfs) < 0 || fstat(dir_fd, &st) < 0)
                return negative_errno();
        if (sfs.f_type != PROC_SUPER_MAGIC)
                return -EXDEV;
        if (!S_ISDIR(st.st_mode) || st.st_ino != PROC_ROOT_INO)
                return -ENOTDIR;
        return 0;
}

/* "self"/"thread-self" as the procfs names them: digits and "/task/". */
static bool valid_self_link(const char *s)
{
        if (!*s)
                return false;
        for (const char *p = s; *p; p++)
                if (!((*p >= '0' && *p <= '9') || *p == '/' || strchr("task", *p)))
                        return false;
        return !strstr(s, "..") && s[0] != '/';
}

int moat_procfs_open(int proc_fd, const char *path, int flags)
{
        _cleanup_close_ int own = -EBADF;
        char expanded[PATH_MAX];
        int r;

        if (!path || path[0] == '/')
                return -EINVAL;
        for (const char *p = path; *p;) {
                size_t seg = strcspn(p, "/");
                if (seg == 2 && p[0] == '.' && p[1] == '.')
                        return -EINVAL;
                p += seg;
                p += strspn(p, "/");
        }
        if (proc_fd < 0) {
                own = open("/proc", O_PATH | O_DIRECTORY | O_CLOEXEC);
                if (own < 0)
                        return negative_errno();
                proc_fd = own;
        }
        r = moat_procfs_verify(proc_fd);
        if (r < 0)
                return r;

        const char *rest = NULL, *link = NULL;
        if (startswith(path, "self/") || streq(path, "self"))
                link = "self", rest = path + 4;
        else if (startswith(path, "thread-self/") || streq(path, "thread-self"))
                link = "thread-self", rest = path + 11;
        if (link) {
                char target[64];
                ssize_t n = readlinkat(proc_fd, link, target, sizeof(target) - 1);
                if (n < 0)
                        return negative_errno();
                target[n] = '\0';
                if (!valid_self_link(target))
                        return -EXDEV;
                n = snprintf(expanded, sizeof(expanded), "%s%s", target, rest);
                if (n < 0 || (size_t) n >= sizeof(expanded))
                        return -ENAMETOOLONG;
                path = expanded;
        }

        struct open_how how = {
                /* openat2 refuses O_NOCTTY next to O_PATH */
                .flags = (uint64_t) (flags | O_CLOEXEC | ((flags & O_PATH) ? 0 : O_NOCTTY)),
                .resolve = RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS | RESOLVE_NO_XDEV,
        };
        _cleanup_close_ int fd = moat_openat2(proc_fd, path, &how);
        if (fd < 0)
                return fd;

        struct statfs sfs;
        if (fstatfs(fd, &sfs) < 0)
                return negative_errno();
        if (sfs.f_type != PROC_SUPER_MAGIC)
                return -EXDEV;
        return TAKE_FD(fd);
}

/* ---- LSM labels ---------------------------------------------------------- */

static const char *lsm_name(enum moat_lsm lsm)
{
        return lsm == MOAT_LSM_APPARMOR ? "AppArmor" : "SELinux";
}

static bool annotation_true(const struct oci_config *c, const char *key)
{
        const char *v = oci_config_annotation(c, key);
        return v && streq(v, "true");
}

static bool procfs_attr_readable(int proc_fd, const char *path)
{
        _cleanup_close_ int fd = moat_procfs_open(proc_fd, path, O_RDONLY);
        char buf[256];

        if (fd < 0)
                return false;
        return read(fd, buf, sizeof(buf)) >= 0;
}

bool moat_lsm_is_active(enum moat_lsm lsm, int proc_fd)
{
        uint64_t ids[64];
        uint32_t size = sizeof(ids);
        long n = syscall(__NR_lsm_list_modules, ids, &size, 0);

        if (n >= 0) {
                uint64_t want = lsm == MOAT_LSM_APPARMOR ? LSM_ID_APPARMOR : LSM_ID_SELINUX;
                for (long i = 0; i < n && i < (long) ELEMENTSOF(ids); i++)
                        if (ids[i] == want)
                                return true;
                return false;
        }

        /* Before 6.8: an inactive LSM's attr files fail with EINVAL. */
        bool apparmor = procfs_attr_readable(proc_fd, "thread-self/attr/apparmor/current");
        if (lsm == MOAT_LSM_APPARMOR)
                return apparmor;
        return !apparmor && procfs_attr_readable(proc_fd, "thread-self/attr/current");
}

static int check_label(enum moat_lsm lsm, const char *label, struct moat_error **reterr)
{
        size_t len = strlen(label);
        if (len == 0 || len > LSM_LABEL_MAX || strpbrk(label, "\n\r"))
                return moat_error_setx(reterr, -EINVAL, "%s label \"%.64s\": empty, too long or multi-line",
                                       lsm_name(lsm), label);
        return 0;
}

static int open_attr_file(int attr_fd, const char *name)
{
        struct open_how how = {
                .flags = O_WRONLY | O_CLOEXEC | O_NOCTTY,
                .resolve = RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS | RESOLVE_NO_XDEV,
        };
        long fd = syscall(SYS_openat2, attr_fd, name, &how, sizeof(how));
        return fd < 0 ? negative_errno() : (int) fd;
}

int moat_lsm_write_exec_label(int attr_fd, enum moat_lsm lsm, const char *label, struct moat_error **reterr)
{
        _cleanup_free_ char *text = NULL;
        _cleanup_close_ int fd = -EBADF;
        const char *file;
        int r;

        r = check_label(lsm, label, reterr);
        if (r < 0)
                return r;
        if (lsm == MOAT_LSM_APPARMOR) {
                if (asprintf(&text, "exec %s", label) < 0)
                        return moat_error_set(reterr, -ENOMEM, "AppArmor profile");
                file = "apparmor/exec";
                fd = open_attr_file(attr_fd, file);
                if (fd == -ENOENT) {
                        file = "exec";
                        fd = open_attr_file(attr_fd, file);
                }
        } else {
                text = strdup(label);
                if (!text)
                        return moat_error_set(reterr, -ENOMEM, "SELinux label");
                file = "exec";
                fd = open_attr_file(attr_fd, file);
        }
        if (fd < 0)
                return moat_error_set(reterr, fd, "%s: opening attr/%s", lsm_name(lsm), file);
        /* The kernel takes a label in one write. */
        ssize_t n = write(fd, text, strlen(text));
        if (n < 0)
                return moat_error_set(reterr, errno, "%s: writing \"%s\" to attr/%s", lsm_name(lsm), text, file);
        if ((size_t) n != strlen(text))
                return moat_error_setx(reterr, -EIO, "%s: short write to attr/%s", lsm_name(lsm), file);
        return 0;
}

int moat_lsm_apply_exec_label(const struct oci_config *c, const struct oci_process *p, int proc_fd,
                              struct moat_error **reterr)
{
        const struct {
                enum moat_lsm lsm;
                const char *field;
                const char *label;
        } want[] = {
                { MOAT_LSM_APPARMOR, "process.apparmorProfile", p->apparmor_profile },
                { MOAT_LSM_SELINUX, "process.selinuxLabel", p->selinux_label },
        };
        bool ignore = annotation_true(c, MOAT_ANNOTATION_LSM_IGNORE_INACTIVE);

        for (size_t i = 0; i < ELEMENTSOF(want); i++) {
                if (strempty(want[i].label))
                        continue;
                if (!moat_lsm_is_active(want[i].lsm, proc_fd)) {
                        if (ignore) {
                                log_debug("%s \"%s\": %s is not enabled, ignored", want[i].field, want[i].label,
                                          lsm_name(want[i].lsm));
                                continue;
                        }
                        return moat_error_setx(reterr, -EOPNOTSUPP,
                                               "%s \"%s\": %s is not enabled on this host (the annotation "
                                               "\"%s\": \"true\" runs the container without it)",
                                               want[i].field, want[i].label, lsm_name(want[i].lsm),
                                               MOAT_ANNOTATION_LSM_IGNORE_INACTIVE);
                }
                _cleanup_close_ int attr = moat_procfs_open(proc_fd, "thread-self/attr", O_PATH | O_DIRECTORY);
                if (attr < 0)
                        return moat_error_set(reterr, attr, "%s \"%s\": opening a verified procfs attr directory",
                                              want[i].field, want[i].label);
                int r = moat_lsm_write_exec_label(attr, want[i].lsm, want[i].label, reterr);
                if (r < 0)
                        return moat_error_wrap(reterr, r, "%s", want[i].field);
        }
        return 0;
}

int moat_lsm_mount_label_data(const struct oci_config *c, const char *data, char **ret, struct moat_error **reterr)
{
        const char *label = c->has_linux ? c->linux_.mount_label : NULL;
        int r;

        *ret = NULL;
        if (strempty(label))
                return 0;
        if (!moat_lsm_is_active(MOAT_LSM_SELINUX, -EBADF)) {
                if (annotation_true(c, MOAT_ANNOTATION_LSM_IGNORE_INACTIVE))
                        return 0;
                return moat_error_setx(reterr, -EOPNOTSUPP,
                                       "linux.mountLabel \"%s\": SELinux is not enabled on this host (the "
                                       "annotation \"%s\": \"true\" runs the container without it)",
                                       label, MOAT_ANNOTATION_LSM_IGNORE_INACTIVE);
        }
        r = check_label(MOAT_LSM_SELINUX, label, reterr);
        if (r < 0)
                return moat_error_wrap(reterr, r, "linux.mountLabel");
        if (strchr(label, '"'))
                return moat_error_setx(reterr, -EINVAL, "linux.mountLabel \"%s\": a label cannot contain '\"'", label);
        if (asprintf(ret, "%s%scontext=\"%s\"", strempty(data) ? "" : data, strempty(data) ? "" : ",", label) < 0)
                return moat_error_set(reterr, -ENOMEM, "linux.mountLabel");
        return 0;
}

/* ---- Landlock ------------------------------------------------------------ */

/* The kernel's ABI (include/uapi/linux/landlock.h), spelled out because
 * the installed headers predate the rights added after 6.1. */
#ifndef __NR_landlock_create_ruleset
#define __NR_landlock_create_ruleset 444
#define __NR_landlock_add_rule 445
#define __NR_landlock_restrict_self 446
#endif
#define LL_CREATE_RULESET_VERSION (1U << 0)
#define LL_RULE_PATH_BENEATH 1

#define LL_EXECUTE (1ULL << 0)
#define LL_WRITE_FILE (1ULL << 1)
#define LL_READ_FILE (1ULL << 2)
#define LL_READ_DIR (1ULL << 3)
#define LL_REMOVE_DIR (1ULL << 4)
#define LL_REMOVE_FILE (1ULL << 5)
#define LL_MAKE_CHAR (1ULL << 6)
#define LL_MAKE_DIR (1ULL << 7)
#define LL_MAKE_REG (1ULL << 8)
#define LL_MAKE_SOCK (1ULL << 9)
#define LL_MAKE_FIFO (1ULL << 10)
#define LL_MAKE_BLOCK (1ULL << 11)
#define LL_MAKE_SYM (1ULL << 12)
#define LL_REFER (1ULL << 13)    /* ABI 2 */
#define LL_TRUNCATE (1ULL << 14) /* ABI 3 */
#define LL_IOCTL_DEV (1ULL << 15) /* ABI 5 */

#define LL_ABI1_ALL ((1ULL << 13) - 1)
#define LL_FILE_RIGHTS (LL_EXECUTE | LL_WRITE_FILE | LL_READ_FILE | LL_TRUNCATE | LL_IOCTL_DEV)

#define LANDLOCK_TEXT_MAX (64u * 1024u)
#define LANDLOCK_RULES_MAX 256u

struct ll_ruleset_attr {
        uint64_t handled_access_fs;
};

struct ll_path_beneath_attr {
        uint64_t allowed_access;
        int32_t parent_fd;
} __attribute__((packed));

int moat_landlock_abi(void)
{
        long v = syscall(__NR_landlock_create_ruleset, NULL, 0, LL_CREATE_RULESET_VERSION);
        return v < 0 ? negative_errno() : (int) v;
}

static uint64_t handled_for_abi(int abi)
{
        uint64_t h = LL_ABI1_ALL;
        if (abi >= 2)
                h |= LL_REFER;
        if (abi >= 3)
                h |= LL_TRUNCATE;
        if (abi >= 5)
                h |= LL_IOCTL_DEV;
        return h;
}

static uint64_t rights_of(unsigned access)
{
        uint64_t r = 0;
        if (access & (MOAT_LANDLOCK_READ | MOAT_LANDLOCK_WRITE | MOAT_LANDLOCK_EXECUTE))
                r |= LL_READ_FILE | LL_READ_DIR;
        if (access & MOAT_LANDLOCK_WRITE)
                r |= LL_WRITE_FILE | LL_REMOVE_DIR | LL_REMOVE_FILE | LL_MAKE_CHAR | LL_MAKE_DIR | LL_MAKE_REG |
                     LL_MAKE_SOCK | LL_MAKE_FIFO | LL_MAKE_BLOCK | LL_MAKE_SYM | LL_REFER | LL_TRUNCATE |
                     LL_IOCTL_DEV;
        if (access & MOAT_LANDLOCK_EXECUTE)
                r |= LL_EXECUTE;
        return r;
}

void moat_landlock_ruleset_done(struct moat_landlock_ruleset *rs)
{
        for (size_t i = 0; i < rs->n_rules; i++)
                free(rs->rules[i].path);
        free(rs->rules);
        rs->rules = NULL;
        rs->n_rules = 0;
}

static int add_rule(struct moat_landlock_ruleset *rs, const char *path, size_t len, unsigned access,
                    const char *where, struct moat_error **reterr)
{
        if (len == 0 || path[0] != '/')
                return moat_error_setx(reterr, -EINVAL, "%s: \"%.*s\" is not an absolute path", where, (int) len,
                                       path);
        if (len >= PATH_MAX)
                return moat_error_setx(reterr, -ENAMETOOLONG, "%s: path too long", where);
        for (size_t i = 0; i < len; i++)
                if (path[i] == '\0' || path[i] == '\n')
                        return moat_error_setx(reterr, -EINVAL, "%s: \"%.*s\": control character in path", where,
                                               (int) len, path);
        for (const char *p = path; p < path + len;) {
                size_t seg = strcspn(p, "/");
                if (p + seg > path + len)
                        seg = (size_t) (path + len - p);
                if (seg == 2 && p[0] == '.' && p[1] == '.')
                        return moat_error_setx(reterr, -EINVAL, "%s: \"%.*s\": \"..\" is not allowed", where,
                                               (int) len, path);
                p += seg + 1;
        }
        for (size_t i = 0; i < rs->n_rules; i++)
                if (strlen(rs->rules[i].path) == len && strncmp(rs->rules[i].path, path, len) == 0) {
                        rs->rules[i].access |= access;
                        return 0;
                }
        if (rs->n_rules >= LANDLOCK_RULES_MAX)
                return moat_error_setx(reterr, -E2BIG, "%s: more than %u paths", where, LANDLOCK_RULES_MAX);
        struct moat_landlock_rule *n = realloc(rs->rules, (rs->n_rules + 1) * sizeof(*n));
        if (!n)
                return moat_error_set(reterr, -ENOMEM, "%s", where);
        rs->rules = n;
        char *copy = strndup(path, len);
        if (!copy)
                return moat_error_set(reterr, -ENOMEM, "%s", where);
        rs->rules[rs->n_rules++] = (struct moat_landlock_rule) { .path = copy, .access = access };
        return 0;
}

static int access_of_key(const char *key, size_t len, unsigned *ret)
{
        static const struct {
                const char *name;
                unsigned access;
        } keys[] = {
                { "read", MOAT_LANDLOCK_READ },     { "ro", MOAT_LANDLOCK_READ },
                { "write", MOAT_LANDLOCK_WRITE },   { "rw", MOAT_LANDLOCK_WRITE },
                { "execute", MOAT_LANDLOCK_EXECUTE }, { "rx", MOAT_LANDLOCK_EXECUTE },
        };
        for (size_t i = 0; i < ELEMENTSOF(keys); i++)
                if (strlen(keys[i].name) == len && strncmp(keys[i].name, key, len) == 0) {
                        *ret = keys[i].access;
                        return 0;
                }
        return -EINVAL;
}

static int parse_json_rules(const char *text, struct moat_landlock_ruleset *rs, struct moat_error **reterr)
{
        json_error_t jerr;
        json_t *root = json_loads(text, JSON_REJECT_DUPLICATES, &jerr);
        const char *key;
        json_t *value;
        int r = 0;

        if (!root)
                return moat_error_setx(reterr, -EINVAL, "%s: invalid JSON: %s", MOAT_ANNOTATION_LANDLOCK, jerr.text);
        if (!json_is_object(root)) {
                json_decref(root);
                return moat_error_setx(reterr, -EINVAL, "%s: must be a JSON object", MOAT_ANNOTATION_LANDLOCK);
        }
        json_object_foreach(root, key, value) {
                unsigned access;
                char where[128];
                snprintf(where, sizeof(where), "%s: \"%.32s\"", MOAT_ANNOTATION_LANDLOCK, key);
                if (access_of_key(key, strlen(key), &access) < 0) {
                        r = moat_error_setx(reterr, -EINVAL,
                                            "%s: unknown key (known: \"read\", \"write\", \"execute\")", where);
                        break;
                }
                if (!json_is_array(value)) {
                        r = moat_error_setx(reterr, -EINVAL, "%s: must be an array of paths", where);
                        break;
                }
                size_t i;
                json_t *item;
                json_array_foreach(value, i, item) {
                        if (!json_is_string(item)) {
                                r = moat_error_setx(reterr, -EINVAL, "%s[%zu]: must be a string", where, i);
                                break;
                        }
                        r = add_rule(rs, json_string_value(item), json_string_length(item), access, where, reterr);
                        if (r < 0)
                                break;
                }
                if (r < 0)
                        break;
        }
        json_decref(root);
        return r;
}

/* "ro:/usr,/etc;rw:/tmp;rx:/bin" */
static int parse_compact_rules(const char *text, struct moat_landlock_ruleset *rs, struct moat_error **reterr)
{
        for (const char *p = text; *p;) {
                size_t glen = strcspn(p, ";");
                const char *g = p, *gend = p + glen;
                p = *gend ? gend + 1 : gend;
                while (g < gend && (*g == ' ' || *g == '\t'))
                        g++;
                if (g == gend)
                        continue;
                const char *colon = memchr(g, ':', (size_t) (gend - g));
                unsigned access;
                if (!colon || access_of_key(g, (size_t) (colon - g), &access) < 0)
                        return moat_error_setx(reterr, -EINVAL,
                                               "%s: \"%.*s\": expected ro:, rw: or rx: followed by paths "
                                               "separated by ','",
                                               MOAT_ANNOTATION_LANDLOCK, (int) (gend - g), g);
                char where[128];
                snprintf(where, sizeof(where), "%s: \"%.*s\"", MOAT_ANNOTATION_LANDLOCK, (int) (colon - g), g);
                for (const char *q = colon + 1; q < gend;) {
                        const char *comma = memchr(q, ',', (size_t) (gend - q));
                        const char *end = comma ? comma : gend;
                        const char *s = q, *e = end;
                        while (s < e && (*s == ' ' || *s == '\t'))
                                s++;
                        while (e > s && (e[-1] == ' ' || e[-1] == '\t'))
                                e--;
                        int r = add_rule(rs, s, (size_t) (e - s), access, where, reterr);
                        if (r < 0)
                                return r;
                        q = comma ? comma + 1 : gend;
                }
        }
        return 0;
}

int moat_landlock_parse(const char *text, struct moat_landlock_ruleset *ret, struct moat_error **reterr)
{
        struct moat_landlock_ruleset rs = {};
        int r;

        if (!text || strnlen(text, LANDLOCK_TEXT_MAX + 1) > LANDLOCK_TEXT_MAX)
                return moat_error_setx(reterr, -E2BIG, "%s: longer than %u bytes", MOAT_ANNOTATION_LANDLOCK,
                                       LANDLOCK_TEXT_MAX);
        const char *t = text + strspn(text, " \t\n");
        r = (*t == '{' || *t == '[') ? parse_json_rules(t, &rs, reterr) : parse_compact_rules(t, &rs, reterr);
        if (r >= 0 && rs.n_rules == 0)
                r = moat_error_setx(reterr, -EINVAL, "%s: no paths given (everything would be denied)",
                                    MOAT_ANNOTATION_LANDLOCK);
        if (r < 0) {
                moat_landlock_ruleset_done(&rs);
                return r;
        }
        *ret = rs;
        return 0;
}

int moat_landlock_validate(const struct oci_config *c, struct moat_error **reterr)
{
        struct moat_landlock_ruleset rs = {};
        const char *text = oci_config_annotation(c, MOAT_ANNOTATION_LANDLOCK);
        int r;

        if (!text)
                return 0;
        r = moat_landlock_parse(text, &rs, reterr);
        if (r < 0)
                return r;
        moat_landlock_ruleset_done(&rs);
        r = moat_landlock_abi();
        if (r < 0)
                return moat_error_set(reterr, r, "%s: Landlock is not available on this kernel",
                                      MOAT_ANNOTATION_LANDLOCK);
        return 0;
}

int moat_landlock_apply(const struct oci_config *c, struct moat_error **reterr)
{
        struct moat_landlock_ruleset rs = {};
        _cleanup_close_ int ruleset = -EBADF, root = -EBADF;
        const char *text = oci_config_annotation(c, MOAT_ANNOTATION_LANDLOCK);
        int abi, r;

        if (!text)
                return 0;
        abi = moat_landlock_abi();
        if (abi < 0)
                return moat_error_set(reterr, abi, "%s: Landlock is not available on this kernel",
                                      MOAT_ANNOTATION_LANDLOCK);
        r = moat_landlock_parse(text, &rs, reterr);
        if (r < 0)
                return r;

        uint64_t handled = handled_for_abi(abi);
        struct ll_ruleset_attr attr = { .handled_access_fs = handled };
        ruleset = (int) syscall(__NR_landlock_create_ruleset, &attr, sizeof(attr), 0);
        if (ruleset < 0) {
                r = moat_error_set(reterr, errno, "%s: landlock_create_ruleset", MOAT_ANNOTATION_LANDLOCK);
                goto out;
        }
        root = open("/", O_PATH | O_DIRECTORY | O_CLOEXEC);
        if (root < 0) {
                r = moat_error_set(reterr, errno, "%s: opening the container's root", MOAT_ANNOTATION_LANDLOCK);
                goto out;
        }
        for (size_t i = 0; i < rs.n_rules; i++) {
                _cleanup_close_ int fd = moat_open_in_root(root, rs.rules[i].path, O_PATH, 0);
                struct stat st;
                if (fd == -ENOENT) {
                        log_debug("%s: \"%s\" does not exist in the container, skipped", MOAT_ANNOTATION_LANDLOCK,
                                  rs.rules[i].path);
                        continue;
                }
                if (fd < 0 || fstat(fd, &st) < 0) {
                        r = moat_error_set(reterr, fd < 0 ? fd : -errno, "%s: \"%s\"", MOAT_ANNOTATION_LANDLOCK,
                                           rs.rules[i].path);
                        goto out;
                }
                uint64_t allowed = rights_of(rs.rules[i].access) & handled;
                if (!S_ISDIR(st.st_mode))
                        allowed &= LL_FILE_RIGHTS;
                struct ll_path_beneath_attr pb = { .allowed_access = allowed, .parent_fd = fd };
                if (allowed && syscall(__NR_landlock_add_rule, ruleset, LL_RULE_PATH_BENEATH, &pb, 0) < 0) {
                        r = moat_error_set(reterr, errno, "%s: adding \"%s\"", MOAT_ANNOTATION_LANDLOCK,
                                           rs.rules[i].path);
                        goto out;
                }
        }
        /* Landlock needs no_new_privs (or CAP_SYS_ADMIN, which we may not
         * keep): a Landlock request implies it. */
        if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0) {
                r = moat_error_set(reterr, errno, "%s: setting no_new_privs", MOAT_ANNOTATION_LANDLOCK);
                goto out;
        }
        if (syscall(__NR_landlock_restrict_self, ruleset, 0) < 0) {
                r = moat_error_set(reterr, errno, "%s: landlock_restrict_self", MOAT_ANNOTATION_LANDLOCK);
                goto out;
        }
        r = 0;
out:
        moat_landlock_ruleset_done(&rs);
        return r;
}
