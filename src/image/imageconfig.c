/* SPDX-License-Identifier: Apache-2.0 */
#include "base/compat.h"

/*
 * Image config + run-time overrides -> the process a container runs (see
 * imageconfig.h for docker's rules as implemented here).
 *
 * Users and groups come from the image's own /etc/passwd and /etc/group.
 * getpwnam()/getgrnam() cannot be used: they read the host's files (or
 * NSS modules, LDAP...), never the image's. The files are opened with
 * openat2(root_fd, ..., RESOLVE_IN_ROOT|RESOLVE_NO_MAGICLINKS), so an
 * absolute or ../-laden symlink planted in the image resolves inside the
 * root and can never show the host's entries; first as O_PATH to check it
 * is a regular file (a FIFO or device is never opened for reading), then
 * again O_RDONLY|O_NONBLOCK and checked to be the same inode. They are read
 * whole with a 1 MiB bound and parsed by hand: the format is
 * "name:pw:uid:gid:gecos:home:shell" and "name:pw:gid:user,user"; lines that
 * do not parse are skipped (as runc's parser, the first matching line
 * wins). A file that is absent, or a dangling or looping symlink, counts as
 * empty (runc ignores open errors); one that cannot be read is an error.
 */

#include "image/imageconfig.h"

#include <fcntl.h>
#include <linux/openat2.h>
#include <signal.h>
#include <stdio.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "base/cleanup.h"
#include "base/fileio.h"
#include "base/parse.h"

#define ENV_MAX 65536u
#define ARGS_MAX 65536u
#define GIDS_MAX 65536u
#define ID_MAX 2147483647u /* runc: ids must be in 0..2^31-1 */

/* ---- string arrays ---- */

static size_t strv_len(char *const *v)
{
        size_t n = 0;
        while (v && v[n])
                n++;
        return n;
}

static int strv_dup(char *const *v, char ***ret)
{
        size_t n = strv_len(v);
        _cleanup_strv_free_ char **c = calloc(n + 1, sizeof(char *));
        if (!c)
                return -ENOMEM;
        for (size_t i = 0; i < n; i++) {
                c[i] = strdup(v[i]);
                if (!c[i])
                        return -ENOMEM;
        }
        *ret = TAKE_PTR(c);
        return 0;
}

/* ---- env ---- */

struct envlist {
        char **v; /* NULL-terminated */
        size_t n;
};

static void envlist_done(struct envlist *e)
{
        strv_free(e->v);
        e->v = NULL;
        e->n = 0;
}

static ssize_t envlist_find(const struct envlist *e, const char *key, size_t keylen)
{
        for (size_t i = 0; i < e->n; i++)
                if (strncmp(e->v[i], key, keylen) == 0 && e->v[i][keylen] == '=')
                        return (ssize_t) i;
        return -1;
}

/* docker's ReplaceOrAppendEnvValues for one entry: "K=v" replaces K in
 * place or appends; "K" removes K. */
static int envlist_apply(struct envlist *e, const char *entry, const char *what, size_t idx,
                         struct moat_error **reterr)
{
        const char *eq = strchr(entry, '=');
        size_t keylen = eq ? (size_t) (eq - entry) : strlen(entry);

        if (keylen == 0)
                return moat_error_setx(reterr, -EINVAL, "%s[%zu]: \"%s\": empty variable name", what, idx, entry);

        ssize_t at = envlist_find(e, entry, keylen);
        if (!eq) {
                if (at >= 0) {
                        free(e->v[at]);
                        memmove(e->v + at, e->v + at + 1, (e->n - (size_t) at) * sizeof(char *));
                        e->n--;
                }
                return 0;
        }

        char *copy = strdup(entry);
        if (!copy)
                return -ENOMEM;
        if (at >= 0) {
                free(e->v[at]);
                e->v[at] = copy;
                return 0;
        }
        if (e->n >= ENV_MAX) {
                free(copy);
                return moat_error_setx(reterr, -E2BIG, "%s: more than %u environment variables", what, ENV_MAX);
        }
        char **nv = realloc(e->v, (e->n + 2) * sizeof(char *));
        if (!nv) {
                free(copy);
                return -ENOMEM;
        }
        e->v = nv;
        e->v[e->n++] = copy;
        e->v[e->n] = NULL;
        return 0;
}

static int envlist_set(struct envlist *e, const char *key, const char *value)
{
        _cleanup_free_ char *s = NULL;
        if (asprintf(&s, "%s=%s", key, value) < 0)
                return -ENOMEM;
        return envlist_apply(e, s, "env", 0, NULL);
}

/* ---- paths ---- */

/* Lexical clean of an absolute path (Go's filepath.Clean): no empty, "."
 * or ".." components; ".." at the root stays at the root. */
static int path_clean_absolute(const char *p, char **ret)
{
        size_t len = strlen(p);
        _cleanup_free_ char *out = malloc(len + 2);
        if (!out)
                return -ENOMEM;
        size_t o = 0;

        for (const char *s = p; *s;) {
                while (*s == '/')
                        s++;
                const char *end = strchrnul(s, '/');
                size_t n = (size_t) (end - s);
                if (n == 0 || (n == 1 && s[0] == '.')) {
                        /* nothing */
                } else if (n == 2 && s[0] == '.' && s[1] == '.') {
                        while (o > 0 && out[o - 1] != '/')
                                o--;
                        if (o > 0)
                                o--; /* the slash */
                } else {
                        out[o++] = '/';
                        memcpy(out + o, s, n);
                        o += n;
                }
                s = end;
        }
        if (o == 0)
                out[o++] = '/';
        out[o] = 0;
        *ret = TAKE_PTR(out);
        return 0;
}

/* ---- /etc/passwd and /etc/group ---- */

static int open_in_root(int root_fd, const char *path, int flags)
{
        struct open_how how = {
                .flags = (uint64_t) (flags | O_CLOEXEC),
                .resolve = RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS,
        };

        for (int attempt = 0; attempt < 32; attempt++) {
                long fd = syscall(SYS_openat2, root_fd, path, &how, sizeof(how));
                if (fd >= 0)
                        return (int) fd;
                if (errno != EAGAIN)
                        return negative_errno();
        }
        return -EAGAIN;
}

/* Read path inside the root; *ret = NULL when it is not there. */
static int read_id_file(int root_fd, const char *path, char **ret, struct moat_error **reterr)
{
        _cleanup_close_ int pfd = -EBADF, fd = -EBADF;
        struct stat st1, st2;

        *ret = NULL;
        pfd = open_in_root(root_fd, path, O_PATH);
        if (pfd == -ENOENT || pfd == -ELOOP || pfd == -ENOTDIR)
                return 0;
        if (pfd < 0)
                return moat_error_set(reterr, pfd, "%s of the image", path);
        if (fstat(pfd, &st1) < 0)
                return moat_error_set(reterr, negative_errno(), "%s of the image", path);
        if (!S_ISREG(st1.st_mode))
                return moat_error_setx(reterr, -EINVAL, "%s of the image is not a regular file", path);

        fd = open_in_root(root_fd, path, O_RDONLY | O_NONBLOCK | O_NOCTTY);
        if (fd < 0)
                return moat_error_set(reterr, fd, "%s of the image", path);
        if (fstat(fd, &st2) < 0)
                return moat_error_set(reterr, negative_errno(), "%s of the image", path);
        if (st1.st_dev != st2.st_dev || st1.st_ino != st2.st_ino)
                return moat_error_setx(reterr, -EAGAIN, "%s of the image changed while being opened", path);

        char *buf = NULL;
        size_t size = 0;
        int r = read_full_fd(fd, MOAT_IMAGE_ID_FILE_MAX, &buf, &size);
        if (r == -EFBIG)
                return moat_error_setx(reterr, r, "%s of the image is larger than %u bytes", path,
                                       MOAT_IMAGE_ID_FILE_MAX);
        if (r < 0)
                return moat_error_set(reterr, r, "reading %s of the image", path);
        *ret = buf;
        return 0;
}

static bool is_number(const char *s)
{
        if (!*s)
                return false;
        for (; *s; s++)
                if (*s < '0' || *s > '9')
                        return false;
        return true;
}

static int parse_id(const char *s, uint32_t *ret)
{
        uint32_t v;
        if (!is_number(s) || safe_atou32(s, &v) < 0 || v > ID_MAX)
                return -EINVAL;
        *ret = v;
        return 0;
}

/* Split line into at most max ':'-separated fields, in place. */
static size_t split_fields(char *line, char **fields, size_t max)
{
        size_t n = 0;
        char *s = line;
        while (n < max) {
                fields[n++] = s;
                char *c = strchr(s, ':');
                if (!c)
                        break;
                *c = 0;
                s = c + 1;
        }
        return n;
}

/* The next line of a buffer being parsed in place; NULL at the end. */
static char *next_line(char **cursor)
{
        char *s = *cursor;
        if (!s || !*s)
                return NULL;
        char *nl = strchr(s, '\n');
        if (nl) {
                *nl = 0;
                *cursor = nl + 1;
        } else
                *cursor = NULL;
        return s;
}

struct pw_entry {
        const char *name;
        uint32_t uid;
        uint32_t gid;
        const char *home;
};

/* First entry named name (by_uid false) or with uid (by_uid true). Parses
 * buf in place: call once per buffer. */
static bool passwd_find(char *buf, bool by_uid, const char *name, uint32_t uid, struct pw_entry *ret)
{
        char *cursor = buf, *line;

        while ((line = next_line(&cursor))) {
                char *f[7] = {};
                if (line[0] == '#' || line[0] == '+' || line[0] == '-' || !line[0])
                        continue;
                size_t n = split_fields(line, f, 7);
                if (n < 4 || !f[0][0])
                        continue;
                uint32_t u, g;
                if (parse_id(f[2], &u) < 0 || parse_id(f[3], &g) < 0)
                        continue;
                if (by_uid ? u != uid : !streq(f[0], name))
                        continue;
                *ret = (struct pw_entry) {
                        .name = f[0],
                        .uid = u,
                        .gid = g,
                        .home = n >= 6 && f[5][0] ? f[5] : "/",
                };
                return true;
        }
        return false;
}

static bool member_of(char *list, const char *user)
{
        for (char *s = list; s;) {
                char *c = strchr(s, ',');
                size_t len = c ? (size_t) (c - s) : strlen(s);
                if (len == strlen(user) && strncmp(s, user, len) == 0)
                        return true;
                s = c ? c + 1 : NULL;
        }
        return false;
}

/* Explicit group: the first entry named name (by_gid false) or with gid. */
static bool group_find(char *buf, bool by_gid, const char *name, uint32_t gid, uint32_t *ret)
{
        char *cursor = buf, *line;

        while ((line = next_line(&cursor))) {
                char *f[4] = {};
                if (line[0] == '#' || line[0] == '+' || line[0] == '-' || !line[0])
                        continue;
                if (split_fields(line, f, 4) < 3 || !f[0][0])
                        continue;
                uint32_t g;
                if (parse_id(f[2], &g) < 0)
                        continue;
                if (by_gid ? g != gid : !streq(f[0], name))
                        continue;
                *ret = g;
                return true;
        }
        return false;
}

/* The gids of the groups listing user, in file order, without repeats. */
static int group_memberships(char *buf, const char *user, uint32_t **ret, size_t *ret_n,
                             struct moat_error **reterr)
{
        char *cursor = buf, *line;
        _cleanup_free_ uint32_t *gids = NULL;
        size_t n = 0;

        while ((line = next_line(&cursor))) {
                char *f[4] = {};
                if (line[0] == '#' || line[0] == '+' || line[0] == '-' || !line[0])
                        continue;
                if (split_fields(line, f, 4) < 4 || !f[0][0])
                        continue;
                uint32_t g;
                if (parse_id(f[2], &g) < 0 || !member_of(f[3], user))
                        continue;
                bool seen = false;
                for (size_t i = 0; i < n && !seen; i++)
                        seen = gids[i] == g;
                if (seen)
                        continue;
                if (n >= GIDS_MAX)
                        return moat_error_setx(reterr, -E2BIG, "/etc/group of the image: user \"%s\" is in more than %u groups",
                                               user, GIDS_MAX);
                uint32_t *ng = realloc(gids, (n + 1) * sizeof(uint32_t));
                if (!ng)
                        return -ENOMEM;
                gids = ng;
                gids[n++] = g;
        }
        *ret = TAKE_PTR(gids);
        *ret_n = n;
        return 0;
}

/* runc's GetExecUser, on the image's files. */
static int resolve_user(int root_fd, const char *spec, struct moat_image_runtime_config *c, struct moat_error **reterr)
{
        _cleanup_free_ char *copy = strdup(spec ? spec : "");
        _cleanup_free_ char *passwd = NULL, *group = NULL;
        const char *user_arg, *group_arg = NULL;
        uint32_t uid = 0, gid = 0;
        bool user_numeric, group_numeric = false;
        int r;

        if (!copy)
                return -ENOMEM;
        char *colon = strchr(copy, ':');
        if (colon) {
                *colon = 0;
                group_arg = colon + 1;
                if (!copy[0] || !group_arg[0])
                        return moat_error_setx(reterr, -EINVAL, "user \"%s\": empty user or group before/after ':'", spec);
        }
        user_arg = copy;

        if (!user_arg[0]) {
                user_numeric = true; /* no user: uid 0 */
        } else if (is_number(user_arg)) {
                if (parse_id(user_arg, &uid) < 0)
                        return moat_error_setx(reterr, -EINVAL, "user \"%s\": uid out of range 0..%u", spec, ID_MAX);
                user_numeric = true;
        } else
                user_numeric = false;

        if (group_arg && is_number(group_arg)) {
                if (parse_id(group_arg, &gid) < 0)
                        return moat_error_setx(reterr, -EINVAL, "user \"%s\": gid out of range 0..%u", spec, ID_MAX);
                group_numeric = true;
        }

        r = read_id_file(root_fd, "/etc/passwd", &passwd, reterr);
        if (r < 0)
                return r;

        struct pw_entry pw = {};
        bool found = passwd && passwd_find(passwd, user_numeric, user_arg, uid, &pw);
        if (!found && !user_numeric)
                return moat_error_setx(reterr, -ENOENT, "unknown user \"%s\": no such entry in /etc/passwd of the image%s",
                                       user_arg, passwd ? "" : " (the file is absent)");

        if (found) {
                c->uid = pw.uid;
                c->gid = pw.gid;
                c->user_name = strdup(pw.name);
                c->home = strdup(pw.home);
                if (!c->user_name || !c->home)
                        return -ENOMEM;
        } else {
                c->uid = uid;
                c->gid = 0;
                c->home = strdup("/");
                if (!c->home)
                        return -ENOMEM;
        }

        if (!group_arg && !found)
                return 0;

        r = read_id_file(root_fd, "/etc/group", &group, reterr);
        if (r < 0)
                return r;

        if (group_arg) {
                uint32_t g = 0;
                bool gfound = group && group_find(group, group_numeric, group_arg, gid, &g);
                if (!gfound && !group_numeric)
                        return moat_error_setx(reterr, -ENOENT,
                                               "unknown group \"%s\": no such entry in /etc/group of the image%s",
                                               group_arg, group ? "" : " (the file is absent)");
                c->gid = gfound ? g : gid;
                return 0;
        }

        if (!group)
                return 0;
        return group_memberships(group, c->user_name, &c->additional_gids, &c->n_additional_gids, reterr);
}

/* ---- signals ---- */

static const struct {
        const char *name;
        int number;
} signal_table[] = {
        { "HUP", SIGHUP },       { "INT", SIGINT },       { "QUIT", SIGQUIT },     { "ILL", SIGILL },
        { "TRAP", SIGTRAP },     { "ABRT", SIGABRT },     { "IOT", SIGIOT },       { "BUS", SIGBUS },
        { "FPE", SIGFPE },       { "KILL", SIGKILL },     { "USR1", SIGUSR1 },     { "SEGV", SIGSEGV },
        { "USR2", SIGUSR2 },     { "PIPE", SIGPIPE },     { "ALRM", SIGALRM },     { "TERM", SIGTERM },
        { "STKFLT", SIGSTKFLT }, { "CHLD", SIGCHLD },     { "CLD", SIGCHLD },      { "CONT", SIGCONT },
        { "STOP", SIGSTOP },     { "TSTP", SIGTSTP },     { "TTIN", SIGTTIN },     { "TTOU", SIGTTOU },
        { "URG", SIGURG },       { "XCPU", SIGXCPU },     { "XFSZ", SIGXFSZ },     { "VTALRM", SIGVTALRM },
        { "PROF", SIGPROF },     { "WINCH", SIGWINCH },   { "IO", SIGIO },         { "POLL", SIGPOLL },
        { "PWR", SIGPWR },       { "SYS", SIGSYS },
};

int moat_signal_from_string(const char *s, int *ret)
{
        char up[32];
        size_t len = strlen(s);
        uint32_t v;

        if (len == 0 || len >= sizeof(up))
                return -EINVAL;
        if (is_number(s)) {
                if (safe_atou32(s, &v) < 0 || v == 0 || v > (uint32_t) SIGRTMAX)
                        return -EINVAL;
                *ret = (int) v;
                return 0;
        }
        for (size_t i = 0; i <= len; i++)
                up[i] = (s[i] >= 'a' && s[i] <= 'z') ? (char) (s[i] - 'a' + 'A') : s[i];
        const char *n = startswith(up, "SIG") ? up + 3 : up;

        for (size_t i = 0; i < ELEMENTSOF(signal_table); i++)
                if (streq(n, signal_table[i].name)) {
                        *ret = signal_table[i].number;
                        return 0;
                }

        /* RTMIN, RTMIN+n, RTMAX, RTMAX-n */
        bool min = startswith(n, "RTMIN"), max = startswith(n, "RTMAX");
        if (!min && !max)
                return -EINVAL;
        const char *rest = n + 5;
        int base = min ? SIGRTMIN : SIGRTMAX;
        if (!*rest) {
                *ret = base;
                return 0;
        }
        if (*rest != (min ? '+' : '-') || !is_number(rest + 1) || safe_atou32(rest + 1, &v) < 0 ||
            v > (uint32_t) (SIGRTMAX - SIGRTMIN))
                return -EINVAL;
        *ret = min ? base + (int) v : base - (int) v;
        return 0;
}

/* ---- the whole ---- */

void moat_image_runtime_config_free(struct moat_image_runtime_config *c)
{
        if (!c)
                return;
        strv_free(c->args);
        strv_free(c->env);
        free(c->cwd);
        free(c->additional_gids);
        free(c->user_name);
        free(c->home);
        strv_free(c->exposed_ports);
        strv_free(c->volumes);
        free(c->stop_signal);
        for (size_t i = 0; i < c->n_labels; i++) {
                free(c->labels[i].key);
                free(c->labels[i].value);
        }
        free(c->labels);
        json_decref(c->healthcheck);
        free(c);
}

static int make_args(const struct oci_image_exec_config *img, const struct moat_image_overrides *ov,
                     char ***ret, struct moat_error **reterr)
{
        char *const *entrypoint = img ? img->entrypoint : NULL;
        char *const *cmd = img ? img->cmd : NULL;

        if (ov && ov->has_entrypoint) {
                entrypoint = ov->entrypoint;
                /* docker's --entrypoint "" arrives as [""]: no entrypoint */
                if (strv_len(entrypoint) == 1 && !entrypoint[0][0])
                        entrypoint = NULL;
                if (strv_len(entrypoint) > 0)
                        cmd = NULL;
        }
        if (ov && strv_len(ov->cmd) > 0)
                cmd = ov->cmd;

        size_t ne = strv_len(entrypoint), nc = strv_len(cmd);
        if (ne + nc == 0)
                return moat_error_setx(reterr, -EINVAL, "no command specified: no Entrypoint or Cmd, neither in the image nor given at run time");
        if (ne + nc > ARGS_MAX)
                return moat_error_setx(reterr, -E2BIG, "more than %u arguments", ARGS_MAX);

        _cleanup_strv_free_ char **args = calloc(ne + nc + 1, sizeof(char *));
        if (!args)
                return -ENOMEM;
        for (size_t i = 0; i < ne + nc; i++) {
                args[i] = strdup(i < ne ? entrypoint[i] : cmd[i - ne]);
                if (!args[i])
                        return -ENOMEM;
        }
        if (!args[0][0])
                return moat_error_setx(reterr, -EINVAL, "no command specified: the program (args[0]) is empty");
        *ret = TAKE_PTR(args);
        return 0;
}

static bool env_names(char *const *env, const char *entry)
{
        size_t keylen = strcspn(entry, "=");
        for (size_t i = 0; env && env[i]; i++)
                if (strncmp(env[i], entry, keylen) == 0 && (env[i][keylen] == '=' || env[i][keylen] == '\0'))
                        return true;
        return false;
}

static int make_env(const struct oci_image_exec_config *img, const struct moat_image_overrides *ov, const char *home,
                    char ***ret, struct moat_error **reterr)
{
        _cleanup_(envlist_done) struct envlist e = {};
        int r;

        r = envlist_set(&e, "PATH", MOAT_IMAGE_DEFAULT_PATH);
        if (r < 0)
                return r;
        if (ov && ov->hostname) {
                r = envlist_set(&e, "HOSTNAME", ov->hostname);
                if (r < 0)
                        return r;
        }
        if (ov && ov->terminal) {
                r = envlist_set(&e, "TERM", "xterm");
                if (r < 0)
                        return r;
        }
        /* moby's order: the run-time variables, then the image's that
         * they do not name (a bare "KEY" at run time drops the image's) */
        for (size_t i = 0; ov && ov->env && ov->env[i]; i++) {
                r = envlist_apply(&e, ov->env[i], "env", i, reterr);
                if (r < 0)
                        return r;
        }
        for (size_t i = 0; img && img->env && img->env[i]; i++) {
                if (env_names(ov ? ov->env : NULL, img->env[i]))
                        continue;
                r = envlist_apply(&e, img->env[i], "image Env", i, reterr);
                if (r < 0)
                        return r;
        }
        if (envlist_find(&e, "HOME", 4) < 0) {
                r = envlist_set(&e, "HOME", home);
                if (r < 0)
                        return r;
        }
        if (!e.v) {
                e.v = calloc(1, sizeof(char *));
                if (!e.v)
                        return -ENOMEM;
        }
        *ret = TAKE_PTR(e.v);
        e.n = 0;
        return 0;
}

int moat_image_runtime_config_make(const struct oci_image_config *image, int root_fd,
                                   const struct moat_image_overrides *ov, struct moat_image_runtime_config **ret,
                                   struct moat_error **reterr)
{
        const struct oci_image_exec_config *img = image && image->has_config ? &image->config : NULL;
        _cleanup_image_runtime_config_ struct moat_image_runtime_config *c = calloc(1, sizeof(*c));
        int r;

        if (!c)
                return -ENOMEM;

        r = make_args(img, ov, &c->args, reterr);
        if (r < 0)
                return r;

        const char *wd = ov && !strempty(ov->working_dir) ? ov->working_dir
                         : img && !strempty(img->working_dir) ? img->working_dir
                                                               : "/";
        if (wd[0] != '/')
                return moat_error_setx(reterr, -EINVAL, "working directory \"%s\" is not an absolute path", wd);
        r = path_clean_absolute(wd, &c->cwd);
        if (r < 0)
                return r;

        const char *user = ov && !strempty(ov->user) ? ov->user : img ? img->user : NULL;
        r = resolve_user(root_fd, user, c, reterr);
        if (r < 0)
                return r;

        r = make_env(img, ov, c->home, &c->env, reterr);
        if (r < 0)
                return r;

        r = strv_dup(img ? img->exposed_ports : NULL, &c->exposed_ports);
        if (r < 0)
                return r;
        r = strv_dup(img ? img->volumes : NULL, &c->volumes);
        if (r < 0)
                return r;

        c->stop_signal_number = SIGTERM;
        if (img && img->stop_signal) {
                c->stop_signal = strdup(img->stop_signal);
                if (!c->stop_signal)
                        return -ENOMEM;
                if (moat_signal_from_string(img->stop_signal, &c->stop_signal_number) < 0)
                        c->stop_signal_number = 0;
        }

        if (img && img->n_labels > 0) {
                c->labels = calloc(img->n_labels, sizeof(struct oci_key_value));
                if (!c->labels)
                        return -ENOMEM;
                for (size_t i = 0; i < img->n_labels; i++) {
                        c->labels[i].key = strdup(img->labels[i].key);
                        c->labels[i].value = strdup(img->labels[i].value ? img->labels[i].value : "");
                        c->n_labels++;
                        if (!c->labels[i].key || !c->labels[i].value)
                                return -ENOMEM;
                }
        }
        if (img && img->healthcheck)
                c->healthcheck = json_incref(img->healthcheck);

        *ret = TAKE_PTR(c);
        return 0;
}

static json_t *strv_to_json(char *const *v)
{
        json_t *a = json_array();
        if (!a)
                return NULL;
        for (size_t i = 0; v && v[i]; i++)
                if (json_array_append_new(a, json_string(v[i])) < 0) {
                        json_decref(a);
                        return NULL;
                }
        return a;
}

static json_t *object_member(json_t *parent, const char *key, const char *path, int *r, struct moat_error **reterr)
{
        json_t *o = json_object_get(parent, key);
        if (o) {
                if (!json_is_object(o)) {
                        *r = moat_error_setx(reterr, -EINVAL, "%s: not an object", path);
                        return NULL;
                }
                return o;
        }
        o = json_object();
        if (!o || json_object_set_new(parent, key, o) < 0) {
                *r = -ENOMEM;
                return NULL;
        }
        return o;
}

int moat_image_runtime_config_to_spec(const struct moat_image_runtime_config *c, json_t *spec,
                                      struct moat_error **reterr)
{
        int r = 0;

        if (!json_is_object(spec))
                return moat_error_setx(reterr, -EINVAL, "runtime config: not a JSON object");
        json_t *process = object_member(spec, "process", "process", &r, reterr);
        if (!process)
                return r;
        json_t *user = object_member(process, "user", "process.user", &r, reterr);
        if (!user)
                return r;

        json_t *gids = json_array();
        if (!gids)
                return -ENOMEM;
        for (size_t i = 0; i < c->n_additional_gids; i++)
                if (json_array_append_new(gids, json_integer(c->additional_gids[i])) < 0) {
                        json_decref(gids);
                        return -ENOMEM;
                }

        if (json_object_set_new(process, "args", strv_to_json(c->args)) < 0 ||
            json_object_set_new(process, "env", strv_to_json(c->env)) < 0 ||
            json_object_set_new(process, "cwd", json_string(c->cwd)) < 0 ||
            json_object_set_new(user, "uid", json_integer(c->uid)) < 0 ||
            json_object_set_new(user, "gid", json_integer(c->gid)) < 0) {
                json_decref(gids);
                return -ENOMEM;
        }
        if (c->n_additional_gids > 0) {
                if (json_object_set_new(user, "additionalGids", gids) < 0)
                        return -ENOMEM;
        } else {
                json_decref(gids);
                if (json_object_get(user, "additionalGids") && json_object_del(user, "additionalGids") < 0)
                        return -ENOMEM;
        }
        return 0;
}
