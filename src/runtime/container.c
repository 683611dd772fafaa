/* SPDX-License-Identifier: Apache-2.0 */
#include "base/compat.h"

/*
 * The container lifecycle: create, start, state, kill, delete, list, and
 * `run` as create+start+wait. This file owns the order of things and the
 * rule that a failed create leaves nothing behind: every step that made
 * something (state directory, cgroup, init process) is undone on the error
 * path, in reverse order.
 *
 * The init is not a child of later invocations (start, kill, delete run in
 * new processes), so they follow it through a pidfd and check its start
 * time against the one recorded at create.
 */

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <sys/epoll.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "base/cleanup.h"
#include "base/fileio.h"
#include "base/log.h"
#include "base/parse.h"
#include "oci/runtime-spec.h"
#include "runtime/cgroup.h"
#include "runtime/cgroup-control.h"
#include "runtime/cgroup-resources.h"
#include "runtime/foreground.h"
#include "runtime/hooks.h"
#include "runtime/linux.h"
#include "runtime/process.h"
#include "runtime/protect.h"
#include "runtime/seccomp.h"
#include "runtime/runtime.h"
#include "runtime/state.h"
#include "runtime/terminal.h"

int moat_id_validate(const char *id, struct moat_error **reterr)
{
        if (strempty(id))
                return moat_error_setx(reterr, -EINVAL, "container id must not be empty");
        size_t len = strnlen(id, MOAT_ID_MAX + 1);
        if (len > MOAT_ID_MAX)
                return moat_error_setx(reterr, -EINVAL, "container id is longer than %d characters", MOAT_ID_MAX);
        /* Names starting with a dot are the runtime's own (.cache). */
        if (id[0] == '.')
                return moat_error_setx(reterr, -EINVAL, "invalid container id \"%s\": must not start with '.'", id);
        for (const char *p = id; *p; p++) {
                unsigned char ch = (unsigned char) *p;
                if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
                      ch == '_' || ch == '+' || ch == '-' || ch == '.'))
                        return moat_error_setx(reterr, -EINVAL,
                                               "invalid container id \"%s\": only letters, digits, '_', '+', "
                                               "'-' and '.' are allowed",
                                               id);
        }
        return 0;
}

static const struct {
        const char *name;
        int number;
} signal_table[] = {
        { "ABRT", SIGABRT }, { "ALRM", SIGALRM },   { "BUS", SIGBUS },     { "CHLD", SIGCHLD },
        { "CLD", SIGCHLD },  { "CONT", SIGCONT },   { "FPE", SIGFPE },     { "HUP", SIGHUP },
        { "ILL", SIGILL },   { "INT", SIGINT },     { "IO", SIGIO },       { "IOT", SIGIOT },
        { "KILL", SIGKILL }, { "PIPE", SIGPIPE },   { "POLL", SIGPOLL },   { "PROF", SIGPROF },
        { "PWR", SIGPWR },   { "QUIT", SIGQUIT },   { "SEGV", SIGSEGV },   { "STKFLT", SIGSTKFLT },
        { "STOP", SIGSTOP }, { "SYS", SIGSYS },     { "TERM", SIGTERM },   { "TRAP", SIGTRAP },
        { "TSTP", SIGTSTP }, { "TTIN", SIGTTIN },   { "TTOU", SIGTTOU },   { "URG", SIGURG },
        { "USR1", SIGUSR1 }, { "USR2", SIGUSR2 },   { "VTALRM", SIGVTALRM }, { "WINCH", SIGWINCH },
        { "XCPU", SIGXCPU }, { "XFSZ", SIGXFSZ },
};

int moat_signal_parse(const char *s, int *ret)
{
        int n;

        if (strempty(s))
                return -EINVAL;
        if (safe_atoi(s, &n) >= 0) {
                if (n <= 0 || n > SIGRTMAX)
                        return -EINVAL;
                *ret = n;
                return 0;
        }
        const char *name = s;
        if (strncasecmp(name, "SIG", 3) == 0)
                name += 3;
        for (size_t i = 0; i < ELEMENTSOF(signal_table); i++)
                if (strcasecmp(name, signal_table[i].name) == 0) {
                        *ret = signal_table[i].number;
                        return 0;
                }
        /* RTMIN+n / RTMAX-n */
        if (strncasecmp(name, "RTMIN", 5) == 0 || strncasecmp(name, "RTMAX", 5) == 0) {
                bool min = strncasecmp(name, "RTMIN", 5) == 0;
                int off = 0;
                if (name[5] != '\0') {
                        if (name[5] != (min ? '+' : '-') || safe_atoi(name + 6, &off) < 0)
                                return -EINVAL;
                }
                n = min ? SIGRTMIN + off : SIGRTMAX - off;
                if (n < SIGRTMIN || n > SIGRTMAX)
                        return -EINVAL;
                *ret = n;
                return 0;
        }
        return -EINVAL;
}

/* Wait until the process behind pidfd has exited; timeout_ms < 0: forever. */
static int pidfd_wait_exit(int pidfd, int timeout_ms)
{
        struct pollfd p = { .fd = pidfd, .events = POLLIN };
        int r;
        do
                r = poll(&p, 1, timeout_ms);
        while (r < 0 && errno == EINTR);
        if (r < 0)
                return -errno;
        return r == 0 ? -ETIMEDOUT : 0;
}

/* The state's "owner", as runc records it: the name of the effective uid
 * in the host's /etc/passwd, "#uid" without one. The file is read
 * directly, not through getpwuid(): moat-runtime is a static executable
 * and NSS modules cannot be loaded into it. */
#define PASSWD_MAX (4u * 1024u * 1024u)

static char *owner_name(void)
{
        uid_t uid = geteuid();
        _cleanup_free_ char *text = NULL;
        size_t len = 0;
        char *s = NULL;

        if (read_full_file_at(AT_FDCWD, "/etc/passwd", PASSWD_MAX, &text, &len) >= 0) {
                char *save = NULL;
                for (char *line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
                        char *name_end = strchr(line, ':');
                        char *uid_field = name_end ? strchr(name_end + 1, ':') : NULL;
                        uint32_t entry_uid;
                        if (!uid_field || name_end == line)
                                continue;
                        char *uid_end = strchr(uid_field + 1, ':');
                        if (!uid_end)
                                continue;
                        *uid_end = '\0';
                        if (safe_atou32(uid_field + 1, &entry_uid) < 0 || entry_uid != (uint32_t) uid)
                                continue;
                        return strndup(line, (size_t) (name_end - line));
                }
        }
        if (asprintf(&s, "#%u", (unsigned) uid) < 0)
                return NULL;
        return s;
}

static int absolute_path(const char *path, char **ret)
{
        if (path[0] == '/') {
                *ret = strdup(path);
                return *ret ? 0 : -ENOMEM;
        }
        _cleanup_free_ char *cwd = get_current_dir_name();
        if (!cwd)
                return -errno;
        if (asprintf(ret, "%s/%s", cwd, path) < 0)
                return -ENOMEM;
        return 0;
}

/* ---- create ------------------------------------------------------------- */

/*
 * Rootless (runc's model): the user namespace is what lets an unprivileged
 * caller create the other namespaces, mount and become root, so it is
 * required; cgroups are used only where the user may create them (a
 * delegated cgroup v2 subtree), else the container runs in the caller's
 * cgroup, which is refused only when linux.resources asks for limits.
 */
static int rootless_check(const struct oci_config *config, struct moat_error **reterr)
{
        const struct oci_namespace *userns = oci_config_find_namespace(config, OCI_NS_USER);
        if (!userns)
                return moat_error_setx(reterr, -EPERM,
                                       "rootless container: linux.namespaces must include a user namespace (an "
                                       "unprivileged user can create the other namespaces and mount only inside "
                                       "one; `moat-runtime spec --rootless` writes such a config)");
        if (!userns->path && (config->linux_.n_uid_mappings == 0 || config->linux_.n_gid_mappings == 0))
                return moat_error_setx(reterr, -EINVAL,
                                       "rootless container: linux.uidMappings and linux.gidMappings are required "
                                       "for a new user namespace (at least the caller's own uid %u and gid %u)",
                                       (unsigned) geteuid(), (unsigned) getegid());
        return 0;
}

/* The first member of linux.resources that sets a limit (device rules
 * are not limits: without a cgroup, the user's own access to the host's
 * device nodes is the bound), or NULL. */
static const char *resources_limit(const json_t *resources)
{
        const char *key;
        json_t *v;

        if (!json_is_object(resources))
                return NULL;
        json_object_foreach((json_t *) resources, key, v) {
                if (streq(key, "devices") || json_is_null(v))
                        continue;
                if ((json_is_object(v) && json_object_size(v) == 0) || (json_is_array(v) && json_array_size(v) == 0))
                        continue;
                return key;
        }
        return NULL;
}

/* The host id that container id 0 maps to (0 without a mapping). */
static uid_t host_id_of_root(const struct oci_id_mapping *maps, size_t n)
{
        for (size_t i = 0; i < n; i++)
                if (maps[i].container_id == 0)
                        return maps[i].host_id;
        return 0;
}

struct create_ctx {
        const struct moat_runtime *rt;
        const struct moat_create_options *opts;
        struct oci_config *config;
        struct moat_state state;
        int state_dir_fd;
        /* The cgroup planned before the clone and made after it
         * (ctx_make_cgroup), with what goes in it. */
        struct moat_cgroup *cgroup;
        const struct moat_resources *resources;
        char **cgroup_text;     /* where its serialized form goes (the create's to free) */
};

/* After the clone, while the init starts on another CPU: the cgroup's
 * directories, which its mounts wait for. */
static int ctx_make_cgroup(void *userdata, struct moat_error **reterr)
{
        struct create_ctx *ctx = userdata;
        return moat_cgroup_make(ctx->cgroup, reterr);
}

/* Then, while the init mounts its root: the state that records the
 * directories (before anything else of ours can fail: `delete` of a
 * half-created container then finds them) and the limits, both before
 * the init is moved in. */
static int ctx_cgroup_made(void *userdata, struct moat_error **reterr)
{
        struct create_ctx *ctx = userdata;
        int r = moat_cgroup_serialize(ctx->cgroup, ctx->cgroup_text);
        if (r < 0)
                return r;
        ctx->state.cgroup = *ctx->cgroup_text;
        r = moat_state_save(ctx->state_dir_fd, &ctx->state, reterr);
        if (r < 0)
                return r;
        return moat_resources_apply(ctx->cgroup, ctx->resources, MOAT_RESOURCES_CREATE, reterr);
}

static int ctx_state_json(void *userdata, pid_t pid, const char *status, char **ret)
{
        struct create_ctx *ctx = userdata;
        struct moat_state s = ctx->state;
        s.pid = pid;
        json_t *doc = json_pack("{s:s, s:s, s:s, s:I, s:s, s:O}", "ociVersion", MOAT_OCI_VERSION, "id", s.id,
                                "status", status, "pid", (json_int_t) pid, "bundle", s.bundle, "annotations",
                                s.annotations);
        if (!doc)
                return -ENOMEM;
        *ret = json_dumps(doc, JSON_COMPACT);
        json_decref(doc);
        return *ret ? 0 : -ENOMEM;
}

static int ctx_runtime_hooks(void *userdata, pid_t pid, struct moat_error **reterr)
{
        struct create_ctx *ctx = userdata;
        _cleanup_free_ char *json = NULL;
        int r = ctx_state_json(ctx, pid, "creating", &json);
        if (r < 0)
                return moat_error_set(reterr, r, "encoding state for hooks");
        r = moat_hooks_run(OCI_HOOK_PRESTART, &ctx->config->hooks[OCI_HOOK_PRESTART], json,
                           MOAT_HOOKS_STOP_AT_FIRST_FAILURE, reterr);
        if (r < 0)
                return r;
        return moat_hooks_run(OCI_HOOK_CREATE_RUNTIME, &ctx->config->hooks[OCI_HOOK_CREATE_RUNTIME], json,
                              MOAT_HOOKS_STOP_AT_FIRST_FAILURE, reterr);
}

static int run_poststart(struct create_ctx *ctx, pid_t pid, struct moat_error **reterr)
{
        const struct oci_hook_list *l = &ctx->config->hooks[OCI_HOOK_POSTSTART];
        if (l->n_hooks == 0)
                return 0;
        _cleanup_free_ char *json = NULL;
        int r = ctx_state_json(ctx, pid, "running", &json);
        if (r < 0)
                return moat_error_set(reterr, r, "encoding state for hooks");
        return moat_hooks_run(OCI_HOOK_POSTSTART, l, json, MOAT_HOOKS_STOP_AT_FIRST_FAILURE, reterr);
}

/* Undo a failed create. Errors here are not reported: the create's own
 * error is what the user needs, and both steps tolerate what is already
 * gone. */
static int create_cleanup(struct create_ctx *ctx, int root_fd, struct moat_cgroup *cg, int r)
{
        if (cg) {
                _cleanup_error_ struct moat_error *ignored = NULL, *ignored2 = NULL;
                /* A hook's child may outlive the init. */
                int k = moat_cgroup_kill_all(cg, SIGKILL, &ignored2);
                k = moat_cgroup_destroy(cg, &ignored);
                moat_cgroup_free(cg);
                (void) k;
        }
        _cleanup_error_ struct moat_error *ignored = NULL;
        int k = moat_state_remove(root_fd, ctx->opts->id, &ignored);
        (void) k;
        return r;
}

struct moat_create_leftovers {
        struct oci_config *config;
        char *config_text;
        struct moat_resources *resources;
        struct moat_seccomp *seccomp;
        struct moat_cgroup *cgroup;
};

void moat_create_leftovers_free(struct moat_create_leftovers *l)
{
        if (!l)
                return;
        oci_config_free(l->config);
        free(l->config_text);
        moat_resources_free(l->resources);
        moat_seccomp_free(l->seccomp);
        moat_cgroup_free(l->cgroup);
        free(l);
}

int moat_container_create(const struct moat_runtime *rt, const struct moat_create_options *opts,
                          int *ret_exit_status, struct moat_error **reterr)
{
        _cleanup_oci_config_ struct oci_config *config = NULL;
        _cleanup_free_ char *config_text = NULL;
        size_t config_len = 0;
        _cleanup_close_ int root_fd = -EBADF, dir_fd = -EBADF, bundle_fd = -EBADF, fifo_fd = -EBADF;
        _cleanup_cgroup_ struct moat_cgroup *cg = NULL;
        _cleanup_free_ char *bundle = NULL, *rootfs = NULL, *console = NULL, *created = NULL, *owner = NULL,
                            *cgroup_text = NULL;
        _cleanup_close_ int sync_fd = -EBADF, pty_master = -EBADF, console_fd = -EBADF;
        _cleanup_free_ char *pid_file = NULL;
        struct sigaction saved_sigchld;
        _cleanup_resources_ struct moat_resources *resources = NULL;
        _cleanup_seccomp_ struct moat_seccomp *seccomp = NULL;
        struct create_ctx ctx = { .rt = rt, .opts = opts };
        sigset_t forwarded, saved_mask;
        json_t *annotations = NULL;
        int r;

        r = moat_id_validate(opts->id, reterr);
        if (r < 0)
                return r;
        if (rt->systemd_cgroup)
                return moat_error_setx(reterr, -EOPNOTSUPP,
                                       "--systemd-cgroup: the systemd cgroup driver is not supported yet");

        bundle = realpath(opts->bundle ? opts->bundle : ".", NULL);
        if (!bundle)
                return moat_error_set(reterr, errno, "bundle '%s'", opts->bundle ? opts->bundle : ".");
        /* Relative paths given on the command line are relative to the
         * caller's directory; resolve them before entering the bundle. */
        if (opts->pid_file) {
                r = absolute_path(opts->pid_file, &pid_file);
                if (r < 0)
                        return moat_error_set(reterr, r, "--pid-file");
        }
        if (opts->console_socket) {
                r = absolute_path(opts->console_socket, &console);
                if (r < 0)
                        return moat_error_set(reterr, r, "--console-socket");
        }
        bundle_fd = open(bundle, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (bundle_fd < 0)
                return moat_error_set(reterr, errno, "bundle '%s'", bundle);
        /* The text is kept: it is what the state directory keeps as the
         * config as created (a dump of the parsed document would cost a
         * fresh process as much as the parse). */
        r = read_full_file_at(bundle_fd, "config.json", OCI_CONFIG_MAX_SIZE, &config_text, &config_len);
        if (r == -EFBIG)
                return moat_error_setx(reterr, r, "%s/config.json: larger than %u bytes", bundle, OCI_CONFIG_MAX_SIZE);
        if (r < 0)
                return moat_error_set(reterr, r, "reading %s/config.json", bundle);
        r = oci_config_parse(config_text, config_len, &config, reterr);
        if (r < 0)
                return moat_error_wrap(reterr, r, "%s/config.json", bundle);
        if (opts->ret_poststart_hooks)
                *opts->ret_poststart_hooks = config->hooks[OCI_HOOK_POSTSTART].n_hooks > 0;
        if (!config->has_process)
                return moat_error_setx(reterr, -EINVAL, "%s/config.json: process: required to create a container",
                                       bundle);
        if (config->process.terminal && !console && opts->mode != MOAT_CREATE_RUN_FOREGROUND)
                return moat_error_setx(reterr, -EINVAL,
                                       "process.terminal is true: --console-socket is required unless `run` "
                                       "stays in the foreground");
        if (!config->process.terminal && console)
                return moat_error_setx(reterr, -EINVAL,
                                       "--console-socket given but process.terminal is false");

        /*
         * CVE-2019-5736: a container process that can open /proc/<pid>/exe
         * of a process running this binary could overwrite it. With a new
         * pid namespace nothing in the container runs before the init has
         * exec'd the container's program, and the init is non-dumpable
         * until then, so only host-privileged processes could reach the
         * binary. Sharing or joining a pid namespace puts the runtime next
         * to the container's processes: then re-execute from a read-only
         * clone or sealed copy first (nothing has been made yet).
         */
        const struct oci_namespace *pidns = oci_config_find_namespace(config, OCI_NS_PID);
        if ((!pidns || pidns->path) && rt->argv) {
                r = moat_protect_self_exe(rt->argc, rt->argv, reterr);
                if (r < 0)
                        return r;
        }

        /* Everything that can be checked without side effects is checked
         * before anything is made. */
        const bool rootless = moat_rootless();
        if (rootless) {
                r = rootless_check(config, reterr);
                if (r < 0)
                        return moat_error_wrap(reterr, r, "%s/config.json", bundle);
        }
        {
                /* A rootless container's device rules are not applied:
                 * neither a v1 devices cgroup nor a v2 device program can be
                 * set up without privilege. */
                json_t *res = config->linux_.resources;
                json_t *copy = NULL;
                if (rootless && json_is_object(res) && json_object_get(res, "devices")) {
                        copy = json_copy(res);
                        if (!copy)
                                return -ENOMEM;
                        json_object_del(copy, "devices");
                        res = copy;
                        log_debug("rootless: linux.resources.devices is not applied");
                }
                r = moat_resources_parse(res, "linux.resources", &resources, reterr);
                json_decref(copy);
        }
        if (r < 0)
                return moat_error_wrap(reterr, r, "%s/config.json", bundle);
        moat_resources_set_warn(resources, rt->warn);
        r = moat_landlock_validate(config, reterr);
        if (r < 0)
                return moat_error_wrap(reterr, r, "%s/config.json", bundle);
        unsigned securebits;
        r = moat_process_securebits(config, &securebits, reterr);
        if (r < 0)
                return moat_error_wrap(reterr, r, "%s/config.json", bundle);
        /* Capabilities this kernel does not know are skipped, as runc and
         * crun do; the user hears about it. */
        if (rt->warn) {
                _cleanup_free_ char *unknown_caps = NULL;
                if (moat_process_check_capabilities(&config->process, &unknown_caps) < 0)
                        return moat_error_set(reterr, -ENOMEM, "process.capabilities");
                if (unknown_caps)
                        rt->warn(unknown_caps);
        }

        r = moat_seccomp_prepare(config, rt->root ? rt->root : MOAT_RUNTIME_DEFAULT_ROOT, rt->warn, &seccomp, reterr);
        if (r < 0)
                return moat_error_wrap(reterr, r, "%s/config.json", bundle);

        /* Relative paths in the config (root.path, bind sources) are
         * relative to the bundle, as for runc. */
        if (fchdir(bundle_fd) < 0)
                return moat_error_set(reterr, errno, "entering bundle '%s'", bundle);
        if (config->root.path[0] == '/')
                rootfs = realpath(config->root.path, NULL);
        else {
                _cleanup_free_ char *joined = NULL;
                if (asprintf(&joined, "%s/%s", bundle, config->root.path) < 0)
                        return -ENOMEM;
                rootfs = realpath(joined, NULL);
        }
        if (!rootfs)
                return moat_error_set(reterr, errno, "root.path '%s'", config->root.path);
        struct stat st;
        if (stat(rootfs, &st) < 0 || !S_ISDIR(st.st_mode))
                return moat_error_setx(reterr, -ENOTDIR, "root.path '%s': not a directory", config->root.path);

        const char *listen = secure_getenv("LISTEN_FDS");
        unsigned listen_fds = 0;
        if (listen) {
                uint32_t v;
                if (safe_atou32(listen, &v) >= 0 && v < 1024)
                        listen_fds = v;
        }

        /* The fds handed to the container must really be the caller's:
         * a number not open here would be taken by one of the runtime's
         * own directory fds, which must never reach the container. */
        unsigned passed_end = 3 + listen_fds + opts->preserve_fds;
        if (passed_end > 3 && rt->inherited_fds_end > 0 && passed_end > (unsigned) rt->inherited_fds_end)
                return moat_error_setx(reterr, -EBADF,
                                       "LISTEN_FDS=%u and --preserve-fds %u pass fds 3-%u, but fd %d is not open",
                                       listen_fds, opts->preserve_fds, passed_end - 1, rt->inherited_fds_end);

        /* The console socket is connected here, outside any user namespace
         * the container gets (managers keep it in a 0700 directory). */
        if (console) {
                console_fd = moat_terminal_connect(console, reterr);
                if (console_fd < 0)
                        return console_fd;
        }

        r = moat_state_root_open(rt, true, &root_fd, reterr);
        if (r < 0)
                return r;
        if (mkdirat(root_fd, opts->id, 0711) < 0) {
                if (errno == EEXIST)
                        return moat_error_setx(reterr, -EEXIST, "container \"%s\" already exists", opts->id);
                return moat_error_set(reterr, errno, "creating state directory for \"%s\"", opts->id);
        }
        /* From here on, failures undo what was made. */
        ctx.config = config;
        dir_fd = openat(root_fd, opts->id, O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW);
        if (dir_fd < 0) {
                r = moat_error_set(reterr, errno, "opening state directory for \"%s\"", opts->id);
                return create_cleanup(&ctx, root_fd, NULL, r);
        }
        if (moat_now_rfc3339(&created) < 0 || !(owner = owner_name()))
                return create_cleanup(&ctx, root_fd, NULL, -ENOMEM);

        annotations = json_object();
        for (size_t i = 0; i < config->n_annotations; i++)
                json_object_set_new(annotations, config->annotations[i].key,
                                    json_string(config->annotations[i].value));
        ctx.state = (struct moat_state){
                .id = (char *) opts->id,
                .bundle = bundle,
                .rootfs = rootfs,
                .created = created,
                .owner = owner,
                .annotations = annotations,
                .has_poststop_hooks = config->hooks[OCI_HOOK_POSTSTOP].n_hooks > 0 ||
                                      config->hooks[OCI_HOOK_POSTSTART].n_hooks > 0,
        };
        ctx.state_dir_fd = dir_fd;
        _cleanup_error_ struct moat_error *cg_err = NULL;

        /* The config as created: start's poststart hooks, exec's process
         * defaults and delete's poststop hooks read it, never the bundle's
         * (which may have changed since). */
        {
                r = write_file_replace_at(dir_fd, MOAT_STATE_CONFIG, config_text, config_len, 0600);
                if (r < 0) {
                        r = moat_error_set(reterr, r, "saving the configuration");
                        goto fail;
                }
        }

        if (opts->mode == MOAT_CREATE_ONLY) {
                if (mkfifoat(dir_fd, MOAT_STATE_FIFO, 0622) < 0) {
                        r = moat_error_set(reterr, errno, "creating exec.fifo");
                        goto fail;
                }
                /* Writable by whoever the init becomes (the umask took the
                 * bits away), owned by the container's root as with runc. */
                /* A rootless caller cannot give it away; 0622 lets any
                 * container root write it anyway. */
                if (fchmodat(dir_fd, MOAT_STATE_FIFO, 0622, 0) < 0 ||
                    (fchownat(dir_fd, MOAT_STATE_FIFO, host_id_of_root(config->linux_.uid_mappings,
                                                                       config->linux_.n_uid_mappings),
                              host_id_of_root(config->linux_.gid_mappings, config->linux_.n_gid_mappings),
                              AT_SYMLINK_NOFOLLOW) < 0 &&
                     !(rootless && errno == EPERM))) {
                        r = moat_error_set(reterr, errno, "preparing exec.fifo");
                        goto fail;
                }
                fifo_fd = openat(dir_fd, MOAT_STATE_FIFO, O_PATH | O_CLOEXEC);
                if (fifo_fd < 0) {
                        r = moat_error_set(reterr, errno, "opening exec.fifo");
                        goto fail;
                }
        }

        /* Rootless without a cgroupsPath: below the caller's own cgroup,
         * the only place a delegated subtree can be. */
        const char *cgroups_path = config->linux_.cgroups_path;
        if (rootless && strempty(cgroups_path))
                cgroups_path = opts->id;
        /* Made after the clone (ctx_make_cgroup) where a failure to make
         * it fails the create; rootless, where it may be done without, now. */
        const bool cgroup_after_clone = !rootless;
        if (cgroup_after_clone)
                r = moat_cgroup_plan(cgroups_path, opts->id, &cg, reterr);
        else
                r = moat_cgroup_create(cgroups_path, opts->id, &cg, rootless ? &cg_err : reterr);
        if (r < 0) {
                cg = NULL;
                if (!rootless)
                        goto fail;
                if (r != -EACCES && r != -EPERM && r != -EROFS) {
                        if (reterr && !*reterr)
                                *reterr = TAKE_PTR(cg_err);
                        goto fail;
                }
                const char *limit = resources_limit(config->linux_.resources);
                if (limit) {
                        r = moat_error_setx(reterr, r,
                                            "rootless container: linux.resources.%s needs a cgroup this user may "
                                            "create (a delegated cgroup v2 subtree), and none could be made: %s",
                                            limit, cg_err ? cg_err->msg : "permission denied");
                        goto fail;
                }
                log_debug("rootless: running without a cgroup: %s", cg_err ? cg_err->msg : "permission denied");
        }
        if (cg && !cgroup_after_clone) {
                r = moat_cgroup_serialize(cg, &cgroup_text);
                if (r < 0)
                        goto fail;
                ctx.state.cgroup = cgroup_text;
        }
        /* Recorded before anything else can fail or the runtime be killed:
         * `delete` of a half-created container then finds its cgroup (or,
         * made after the clone, records it again then). */
        r = moat_state_save(dir_fd, &ctx.state, reterr);
        if (r < 0)
                goto fail;
        /* Rootless: only what the config sets (no default device program,
         * which needs privilege). */
        if (cg && !cgroup_after_clone) {
                r = moat_resources_apply(cg, resources, MOAT_RESOURCES_UPDATE, reterr);
                if (r < 0)
                        goto fail;
        }
        ctx.cgroup = cg;
        ctx.resources = resources;
        ctx.cgroup_text = &cgroup_text;

        /* Signals meant for the container are held from before the clone, so
         * none is lost between the init's birth and the wait loop. */
        moat_foreground_signals(&forwarded);
        if (opts->mode == MOAT_CREATE_RUN_FOREGROUND) {
                /* The init is reaped here: an inherited SIG_IGN for SIGCHLD
                 * would let the kernel reap it and lose its status. */
                struct sigaction dfl = { .sa_handler = SIG_DFL };
                sigaction(SIGCHLD, &dfl, &saved_sigchld);
                sigprocmask(SIG_BLOCK, &forwarded, &saved_mask);
        }

        struct moat_spawn sp = {
                .config = config,
                .id = opts->id,
                .bundle = bundle,
                .rootfs = rootfs,
                .fifo_fd = fifo_fd,
                .console_fd = console_fd,
                .relay_terminal = config->process.terminal && !console,
                .no_pivot = opts->no_pivot,
                .no_new_keyring = opts->no_new_keyring,
                .preserve_fds = opts->preserve_fds,
                .listen_fds = listen_fds,
                .cgroup = cg,
                .seccomp = seccomp,
                .runtime_fds = { root_fd, dir_fd, bundle_fd },
                .fresh_netns_fd = opts->fresh_netns_fd ? *opts->fresh_netns_fd : -EBADF,
                .after_clone = cg && cgroup_after_clone ? ctx_make_cgroup : NULL,
                .after_cgroup_made = cg && cgroup_after_clone ? ctx_cgroup_made : NULL,
                .while_init_prepares = opts->while_init_prepares,
                .while_init_prepares_userdata = opts->while_init_prepares_userdata,
                .runtime_hooks = ctx_runtime_hooks,
                .state_json = ctx_state_json,
                .userdata = &ctx,
        };
        struct moat_spawn_result res = { .pid = 0, .sync_fd = -EBADF, .pty_master = -EBADF };
        r = moat_linux_spawn(&sp, &res, reterr);
        if (r < 0)
                goto fail_unmask;
        sync_fd = res.sync_fd;
        pty_master = res.pty_master;

        ctx.state.pid = res.pid;
        if (opts->ret_pid)
                *opts->ret_pid = res.pid;
        r = moat_process_start_time(res.pid, &ctx.state.pid_start_time, NULL);
        if (r >= 0)
                r = moat_state_save(dir_fd, &ctx.state, reterr);
        console_fd = safe_close(console_fd);
        if (r >= 0 && pid_file)
                r = moat_write_pid_file(pid_file, res.pid, reterr);
        if (r < 0) {
                (void) kill(res.pid, SIGKILL);
                while (waitpid(res.pid, NULL, 0) < 0 && errno == EINTR)
                        ;
                goto fail_unmask;
        }

        if (opts->mode == MOAT_CREATE_ONLY) {
                json_decref(annotations);
                if (opts->ret_leftovers) {
                        struct moat_create_leftovers *l = calloc(1, sizeof(*l));
                        if (l) {
                                l->config = TAKE_PTR(config);
                                l->config_text = TAKE_PTR(config_text);
                                l->resources = TAKE_PTR(resources);
                                l->seccomp = TAKE_PTR(seccomp);
                                l->cgroup = TAKE_PTR(cg);
                        }
                        *opts->ret_leftovers = l;
                }
                return 0;
        }

        r = moat_linux_send_start(sync_fd, reterr);
        /* poststart hooks run once the program has been exec'd. */
        if (r >= 0 && config->hooks[OCI_HOOK_POSTSTART].n_hooks > 0 && moat_linux_wait_exec(sync_fd) < 0 && rt->warn)
                rt->warn("waiting for the container's program to start");
        sync_fd = safe_close(sync_fd);
        if (r >= 0) {
                _cleanup_error_ struct moat_error *hook_err = NULL;
                /* Spec: a poststart failure is a warning; the container
                 * keeps running. */
                if (run_poststart(&ctx, res.pid, &hook_err) < 0 && rt->warn)
                        rt->warn(hook_err->msg);
        }

        if (opts->mode == MOAT_CREATE_RUN_DETACHED) {
                json_decref(annotations);
                return r;
        }

        int status = 255;
        if (r >= 0)
                r = moat_foreground_wait(res.pid, pty_master, &forwarded, &status, reterr);
        json_decref(annotations);
        annotations = NULL;
        if (r < 0) {
                (void) kill(res.pid, SIGKILL);
                while (waitpid(res.pid, NULL, 0) < 0 && errno == EINTR)
                        ;
        }
        if (!opts->keep) {
                _cleanup_error_ struct moat_error *derr = NULL;
                int dr = moat_container_delete(rt, opts->id, true, r < 0 ? &derr : reterr);
                if (r >= 0 && dr < 0)
                        r = dr;
        }
        moat_foreground_drain_signals(&forwarded);
        sigprocmask(SIG_SETMASK, &saved_mask, NULL);
        sigaction(SIGCHLD, &saved_sigchld, NULL);
        if (ret_exit_status)
                *ret_exit_status = status;
        return r;

fail_unmask:
        if (opts->mode == MOAT_CREATE_RUN_FOREGROUND) {
                moat_foreground_drain_signals(&forwarded);
                sigprocmask(SIG_SETMASK, &saved_mask, NULL);
                sigaction(SIGCHLD, &saved_sigchld, NULL);
        }
fail:
        json_decref(annotations);
        return create_cleanup(&ctx, root_fd, TAKE_PTR(cg), r);
}

/* ---- start, state, kill, delete, list ----------------------------------- */

int moat_container_start(const struct moat_runtime *rt, const char *id, struct moat_error **reterr)
{
        _cleanup_close_ int root_fd = -EBADF, dir_fd = -EBADF, fifo = -EBADF, pidfd = -EBADF;
        _cleanup_state_ struct moat_state *s = NULL;
        int r;

        r = moat_state_root_open(rt, false, &root_fd, reterr);
        if (r < 0)
                return r == -ENOENT ? moat_error_setx(reterr, -ENOENT, "container \"%s\" does not exist", id) : r;
        r = moat_state_load(root_fd, id, &s, &dir_fd, reterr);
        if (r < 0)
                return r;
        enum moat_status st = moat_state_status(s, dir_fd);
        if (st == MOAT_STATUS_STOPPED)
                return moat_error_setx(reterr, -EINVAL, "cannot start a container that has stopped");
        if (st != MOAT_STATUS_CREATED)
                return moat_error_setx(reterr, -EINVAL, "cannot start an already running container");

        /* The pidfd first: once the fifo is open the init may run its
         * program, exit and be reaped before we look, and a short-lived
         * container must still start cleanly. */
        r = moat_state_pidfd(s, &pidfd);
        if (r < 0)
                return moat_error_setx(reterr, -ESRCH, "container \"%s\": container not running", id);
        fifo = openat(dir_fd, MOAT_STATE_FIFO, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
        if (fifo < 0)
                return moat_error_set(reterr, errno, "opening exec.fifo of container \"%s\"", id);

        /* Wait for the init's byte; if the init dies instead, its pidfd
         * becomes readable and start fails rather than hanging. */
        struct pollfd p[2] = { { .fd = fifo, .events = POLLIN }, { .fd = pidfd, .events = POLLIN } };
        for (;;) {
                r = poll(p, 2, -1);
                if (r < 0 && errno == EINTR)
                        continue;
                if (r < 0)
                        return moat_error_set(reterr, errno, "waiting for container \"%s\"", id);
                if (p[0].revents & (POLLIN | POLLHUP)) {
                        char b;
                        ssize_t n = read(fifo, &b, 1);
                        if (n == 1)
                                break;
                        if (n == 0)
                                /* The init wrote its byte to another start. */
                                return moat_error_setx(reterr, -EBUSY,
                                                       "cannot start an already running container");
                }
                if (p[1].revents)
                        return moat_error_setx(reterr, -ESRCH,
                                               "cannot start container \"%s\": its init exited (container not running)",
                                               id);
        }
        if (unlinkat(dir_fd, MOAT_STATE_FIFO, 0) < 0 && errno != ENOENT)
                return moat_error_set(reterr, errno, "removing exec.fifo");

        if (!s->has_poststop_hooks)
                return 0;
        _cleanup_free_ char *text = NULL, *json = NULL;
        _cleanup_oci_config_ struct oci_config *config = NULL;
        size_t len;
        if (read_full_file_at(dir_fd, MOAT_STATE_CONFIG, OCI_CONFIG_MAX_SIZE, &text, &len) < 0 ||
            oci_config_parse(text, len, &config, NULL) < 0)
                return moat_error_setx(reterr, -EINVAL, "container \"%s\": saved configuration unreadable", id);
        if (config->hooks[OCI_HOOK_POSTSTART].n_hooks > 0) {
                /* poststart hooks run once the program has been exec'd: the
                 * init's end of the fifo closes then. */
                if (moat_linux_wait_exec(fifo) < 0 && rt->warn)
                        rt->warn("waiting for the container's program to start");
                if (moat_state_to_oci_json(s, MOAT_STATUS_RUNNING, &json) < 0)
                        return -ENOMEM;
                _cleanup_error_ struct moat_error *hook_err = NULL;
                if (moat_hooks_run(OCI_HOOK_POSTSTART, &config->hooks[OCI_HOOK_POSTSTART], json,
                                   MOAT_HOOKS_STOP_AT_FIRST_FAILURE, &hook_err) < 0 && rt->warn)
                        rt->warn(hook_err->msg);
        }
        return 0;
}

int moat_container_state(const struct moat_runtime *rt, const char *id, char **ret_json, struct moat_error **reterr)
{
        _cleanup_close_ int root_fd = -EBADF, dir_fd = -EBADF;
        _cleanup_state_ struct moat_state *s = NULL;
        int r;

        r = moat_state_root_open(rt, false, &root_fd, reterr);
        if (r < 0)
                return r == -ENOENT ? moat_error_setx(reterr, -ENOENT, "container \"%s\" does not exist", id) : r;
        r = moat_state_load(root_fd, id, &s, &dir_fd, reterr);
        if (r < 0)
                return r;
        r = moat_state_to_oci_json(s, moat_state_status(s, dir_fd), ret_json);
        if (r < 0)
                return moat_error_set(reterr, r, "encoding state");
        return 0;
}

int moat_container_kill(const struct moat_runtime *rt, const char *id, int sig, bool all, struct moat_error **reterr)
{
        _cleanup_close_ int root_fd = -EBADF, dir_fd = -EBADF, pidfd = -EBADF;
        _cleanup_state_ struct moat_state *s = NULL;
        int r;

        r = moat_state_root_open(rt, false, &root_fd, reterr);
        if (r < 0)
                return r == -ENOENT ? moat_error_setx(reterr, -ENOENT, "container \"%s\" does not exist", id) : r;
        r = moat_state_load(root_fd, id, &s, &dir_fd, reterr);
        if (r < 0)
                return r;
        if (moat_state_status(s, dir_fd) == MOAT_STATUS_STOPPED && !all)
                return moat_error_setx(reterr, -ESRCH, "container \"%s\": container not running", id);

        if (all && !strempty(s->cgroup)) {
                _cleanup_cgroup_ struct moat_cgroup *cg = NULL;
                r = moat_cgroup_deserialize(s->cgroup, &cg, reterr);
                if (r < 0)
                        return r;
                return moat_cgroup_kill_all(cg, sig, reterr);
        }
        r = moat_state_pidfd(s, &pidfd);
        if (r < 0)
                return moat_error_setx(reterr, -ESRCH, "container \"%s\": container not running", id);
        if (syscall(SYS_pidfd_send_signal, pidfd, sig, NULL, 0) < 0) {
                if (errno == ESRCH)
                        return moat_error_setx(reterr, -ESRCH, "container \"%s\": container not running", id);
                return moat_error_set(reterr, errno, "sending signal %d to container \"%s\"", sig, id);
        }
        /* A frozen init only dies once it runs again (v1 freezer), as runc
         * knows: SIGKILL thaws a paused container. */
        if (sig == SIGKILL && !strempty(s->cgroup) && moat_state_status(s, dir_fd) == MOAT_STATUS_PAUSED) {
                _cleanup_cgroup_ struct moat_cgroup *cg = NULL;
                r = moat_cgroup_deserialize(s->cgroup, &cg, reterr);
                if (r >= 0)
                        r = moat_cgroup_freeze(cg, false, reterr);
                if (r < 0)
                        return moat_error_wrap(reterr, r, "container \"%s\": thawing after SIGKILL", id);
        }
        return 0;
}

static int run_poststop(int dir_fd, struct moat_state *s, struct moat_error **reterr)
{
        _cleanup_free_ char *text = NULL, *json = NULL;
        _cleanup_oci_config_ struct oci_config *config = NULL;
        size_t len;
        int r;

        if (!s->has_poststop_hooks)
                return 0;
        r = read_full_file_at(dir_fd, MOAT_STATE_CONFIG, OCI_CONFIG_MAX_SIZE, &text, &len);
        if (r < 0)
                return moat_error_set(reterr, r, "reading the saved configuration for poststop hooks");
        r = oci_config_parse(text, len, &config, reterr);
        if (r < 0)
                return r;
        r = moat_state_to_oci_json(s, MOAT_STATUS_STOPPED, &json);
        if (r < 0)
                return r;
        return moat_hooks_run(OCI_HOOK_POSTSTOP, &config->hooks[OCI_HOOK_POSTSTOP], json, MOAT_HOOKS_RUN_ALL,
                              reterr);
}

/* Whether the container's cgroup was made by its create in every
 * hierarchy (each state line ends in the number of path components create
 * made): only then may delete kill what is in it. A cgroupsPath naming an
 * existing cgroup must never cost its other processes their lives. */
static bool cgroup_owned(const char *text)
{
        bool any = false;
        for (const char *line = text; line && *line;) {
                const char *nl = strchr(line, '\n');
                size_t len = nl ? (size_t) (nl - line) : strlen(line);
                const char *tab = memrchr(line, '\t', len);
                if (len > 0) {
                        if (!tab || tab + 1 >= line + len || tab[1] == '0')
                                return false;
                        any = true;
                }
                line = nl ? nl + 1 : NULL;
        }
        return any;
}

int moat_container_delete(const struct moat_runtime *rt, const char *id, bool force, struct moat_error **reterr)
{
        _cleanup_close_ int root_fd = -EBADF, dir_fd = -EBADF;
        _cleanup_state_ struct moat_state *s = NULL;
        _cleanup_cgroup_ struct moat_cgroup *cg = NULL;
        int r;

        r = moat_state_root_open(rt, false, &root_fd, reterr);
        if (r < 0)
                return r == -ENOENT ? moat_error_setx(reterr, -ENOENT, "container \"%s\" does not exist", id) : r;
        _cleanup_error_ struct moat_error *load_err = NULL;
        r = moat_state_load(root_fd, id, &s, &dir_fd, &load_err);
        if (r == -ENOENT && force && faccessat(root_fd, id, F_OK, AT_SYMLINK_NOFOLLOW) == 0)
                /* A create killed before it recorded anything: only its
                 * directory is left. */
                return moat_state_remove(root_fd, id, reterr);
        if (r < 0) {
                if (reterr && !*reterr)
                        *reterr = TAKE_PTR(load_err);
                return r;
        }
        if (!strempty(s->cgroup)) {
                r = moat_cgroup_deserialize(s->cgroup, &cg, reterr);
                if (r < 0)
                        return r;
        }

        enum moat_status st = moat_state_status(s, dir_fd);
        if (st == MOAT_STATUS_RUNNING || st == MOAT_STATUS_PAUSED) {
                if (!force)
                        return moat_error_setx(reterr, -EBUSY,
                                               "cannot delete container \"%s\" that is not stopped: %s", id,
                                               moat_status_to_string(st));
        }
        if (st != MOAT_STATUS_STOPPED) {
                /* A created container is deleted like runc does: its init,
                 * still waiting on exec.fifo, is killed. */
                _cleanup_close_ int pidfd = -EBADF;
                if (moat_state_pidfd(s, &pidfd) >= 0) {
                        if (cg && st == MOAT_STATUS_PAUSED) {
                                _cleanup_error_ struct moat_error *ignored = NULL;
                                int k = moat_cgroup_kill_all(cg, SIGKILL, &ignored);
                                (void) k;
                        }
                        (void) syscall(SYS_pidfd_send_signal, pidfd, SIGKILL, NULL, 0);
                        if (pidfd_wait_exit(pidfd, 10000) < 0)
                                return moat_error_setx(reterr, -ETIMEDOUT,
                                                       "container \"%s\": init did not exit after SIGKILL", id);
                }
        }
        if (cg) {
                /* What outlived the init (no pid namespace of its own, a
                 * joined one, a hook's child) goes with the cgroup. */
                if (cgroup_owned(s->cgroup)) {
                        _cleanup_error_ struct moat_error *ignored = NULL;
                        int k = moat_cgroup_kill_all(cg, SIGKILL, &ignored);
                        (void) k;
                }
                r = moat_cgroup_destroy(cg, reterr);
                if (r < 0)
                        return r;
        }

        /* Spec: poststop failures are warnings; every hook runs. */
        _cleanup_error_ struct moat_error *hook_err = NULL;
        if (run_poststop(dir_fd, s, &hook_err) < 0 && rt->warn)
                rt->warn(hook_err ? hook_err->msg : "poststop hook failed");

        return moat_state_remove(root_fd, id, reterr);
}

void moat_container_info_free(struct moat_container_info *v, size_t n)
{
        for (size_t i = 0; i < n; i++) {
                free(v[i].id);
                free(v[i].status);
                free(v[i].bundle);
                free(v[i].created);
                free(v[i].owner);
        }
        free(v);
}

int moat_container_list(const struct moat_runtime *rt, struct moat_container_info **ret, size_t *ret_n,
                        struct moat_error **reterr)
{
        _cleanup_close_ int root_fd = -EBADF;
        struct moat_container_info *v = NULL;
        size_t n = 0;
        int r;

        r = moat_state_root_open(rt, false, &root_fd, NULL);
        if (r == -ENOENT) {
                *ret = NULL;
                *ret_n = 0;
                return 0;
        }
        if (r < 0)
                return moat_error_set(reterr, r, "opening state root");
        int dfd = fcntl(root_fd, F_DUPFD_CLOEXEC, 3);
        DIR *d = dfd >= 0 ? fdopendir(dfd) : NULL;
        if (!d) {
                safe_close(dfd);
                return moat_error_set(reterr, errno, "listing state root");
        }
        struct dirent *de;
        while ((de = readdir(d))) {
                if (de->d_name[0] == '.' || moat_id_validate(de->d_name, NULL) < 0)
                        continue;
                _cleanup_state_ struct moat_state *s = NULL;
                _cleanup_close_ int dir_fd = -EBADF;
                if (moat_state_load(root_fd, de->d_name, &s, &dir_fd, NULL) < 0)
                        continue;
                struct moat_container_info *nv = realloc(v, (n + 1) * sizeof(*v));
                if (!nv) {
                        r = -ENOMEM;
                        break;
                }
                v = nv;
                enum moat_status st = moat_state_status(s, dir_fd);
                v[n] = (struct moat_container_info){
                        .id = strdup(s->id),
                        .pid = st == MOAT_STATUS_STOPPED ? 0 : s->pid,
                        .status = strdup(moat_status_to_string(st)),
                        .bundle = strdup(s->bundle ? s->bundle : ""),
                        .created = strdup(s->created ? s->created : ""),
                        .owner = strdup(s->owner ? s->owner : ""),
                };
                n++;
        }
        closedir(d);
        if (r < 0) {
                moat_container_info_free(v, n);
                return moat_error_set(reterr, r, "listing containers");
        }
        *ret = v;
        *ret_n = n;
        return 0;
}
