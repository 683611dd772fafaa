/* SPDX-License-Identifier: Apache-2.0 */
#include "base/compat.h"

/*
 * The daemon process around the API server. Configuration follows dockerd:
 * flags and daemon.json are merged, a key given both ways is an error, an
 * unknown key is an error naming it. Start-up order: subreaper (monitors
 * will be our children), signals blocked into a signalfd before any thread
 * exists (so the server's threads never take them), data and exec roots,
 * the pid file (an OFD lock plus the pid: a second daemon is refused while
 * the first lives), the engine id, the socket's group (created with
 * groupadd -r when missing), the socket itself: bound under a temporary
 * name in the same directory with umask 0117, chowned root:<group>, then
 * renamed over the final name, so no client ever sees a socket with the
 * wrong owner or mode; an existing socket is replaced only when nothing
 * answers on it. Then the loop: SIGTERM/SIGINT stop, SIGHUP re-reads the
 * reloadable keys (debug, log-level), SIGCHLD reaps.
 */

#include <fcntl.h>
#include <grp.h>
#include <signal.h>
#include <spawn.h>
#include <stdarg.h>
#include <stdio.h>
#include <sys/file.h>
#include <sys/prctl.h>
#include <sys/random.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "api/daemon.h"
#include "api/http.h"
#include "api/routes.h"
#include "api/system.h"
#include "engine/engine-images.h"
#include "engine/engine.h"
#include "base/cleanup.h"
#include "base/fileio.h"
#include "base/parse.h"
#include "moat-config.h"

extern char **environ;

static void say(const struct moat_daemon_log *log, enum log_level level, const char *fmt, ...) MOAT_PRINTF(3, 4);
static void say(const struct moat_daemon_log *log, enum log_level level, const char *fmt, ...)
{
        char msg[2048];
        va_list ap;
        if (!log || !log->emit)
                return;
        va_start(ap, fmt);
        vsnprintf(msg, sizeof(msg), fmt, ap);
        va_end(ap);
        log->emit(log->userdata, level, msg);
}

/* ---- configuration ---- */

int moat_daemon_parse_host(const char *host, char **ret_path, struct moat_error **reterr)
{
        if (startswith(host, "tcp://"))
                return moat_error_setx(reterr, -EOPNOTSUPP,
                                       "-H %s: listening on TCP is not supported: it needs mutual TLS, which is not "
                                       "implemented yet", host);
        if (startswith(host, "fd://")) {
                /* socket activation: checked when the daemon starts (activated_socket) */
                for (const char *n = host + strlen("fd://"); *n; n++)
                        if (*n < '0' || *n > '9')
                                return moat_error_setx(reterr, -EINVAL, "-H %s: expected fd:// or fd://<fd number>",
                                                       host);
                *ret_path = strdup(host);
                return *ret_path ? 0 : moat_error_set(reterr, -ENOMEM, "host");
        }
        if (!startswith(host, "unix://"))
                return moat_error_setx(reterr, -EINVAL, "-H %s: invalid host: expected unix:///absolute/path", host);
        const char *path = host + strlen("unix://");
        if (path[0] != '/')
                return moat_error_setx(reterr, -EINVAL, "-H %s: the socket path must be absolute", host);
        if (strlen(path) >= sizeof(((struct sockaddr_un *) NULL)->sun_path) - 16)
                return moat_error_setx(reterr, -ENAMETOOLONG, "-H %s: the socket path is too long for a unix socket",
                                       host);
        *ret_path = strdup(path);
        return *ret_path ? 0 : moat_error_set(reterr, -ENOMEM, "host");
}

/* -H fd:// and fd://N: the socket systemd (or any socket activator) passed
 * as fds 3.. with LISTEN_PID and LISTEN_FDS (sd_listen_fds(3)'s protocol,
 * a few lines that need no libsystemd). One listener: fd:// takes the only
 * one passed, fd://N that fd. It must be a listening unix stream socket
 * (TCP needs mutual TLS, not implemented). The variables are removed and
 * every passed fd made close-on-exec; those not used are closed. */
static int activated_socket(const char *host, int *ret_fd, struct moat_error **reterr)
{
        const char *pid_s = getenv("LISTEN_PID"), *fds_s = getenv("LISTEN_FDS");
        const char *want_s = host + strlen("fd://");
        unsigned long pid = 0, nfds = 0, want = 0;
        char *end;

        if (pid_s) {
                errno = 0;
                pid = strtoul(pid_s, &end, 10);
                if (errno || *end || end == pid_s)
                        pid = 0;
        }
        if (fds_s) {
                errno = 0;
                nfds = strtoul(fds_s, &end, 10);
                if (errno || *end || end == fds_s || nfds > 64)
                        nfds = 0;
        }
        (void) unsetenv("LISTEN_PID");
        (void) unsetenv("LISTEN_FDS");
        (void) unsetenv("LISTEN_FDNAMES");
        if (pid != (unsigned long) getpid() || nfds == 0)
                return moat_error_setx(reterr, -EBADF,
                                       "-H %s: no socket was passed (LISTEN_PID and LISTEN_FDS, as systemd's socket "
                                       "activation sets them, are missing or name another process)", host);
        for (unsigned long i = 0; i < nfds; i++)
                (void) fcntl((int) (3 + i), F_SETFD, FD_CLOEXEC);
        if (*want_s) {
                want = strtoul(want_s, NULL, 10);
                if (want < 3 || want >= 3 + nfds)
                        return moat_error_setx(reterr, -EBADF, "-H %s: fd %lu was not passed (fds 3-%lu were)", host,
                                               want, 2 + nfds);
        } else if (nfds != 1)
                return moat_error_setx(reterr, -EINVAL,
                                       "-H %s: %lu sockets were passed and moat listens on one: name it, fd://<fd>", host,
                                       nfds);
        else
                want = 3;
        for (unsigned long i = 0; i < nfds; i++)
                if (3 + i != want)
                        (void) close((int) (3 + i));

        int fd = (int) want, type = 0, domain = 0, listening = 0;
        socklen_t len = sizeof(int);
        if (getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &len) < 0)
                return moat_error_set(reterr, errno, "-H %s: fd %d is not a socket", host, fd);
        len = sizeof(int);
        (void) getsockopt(fd, SOL_SOCKET, SO_DOMAIN, &domain, &len);
        len = sizeof(int);
        (void) getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &listening, &len);
        if (domain != AF_UNIX || type != SOCK_STREAM)
                return moat_error_setx(reterr, -EPROTONOSUPPORT,
                                       "-H %s: fd %d is not a unix stream socket (TCP needs mutual TLS, not implemented "
                                       "yet)", host, fd);
        if (!listening)
                return moat_error_setx(reterr, -EINVAL, "-H %s: socket fd %d is not listening", host, fd);
        *ret_fd = fd;
        return 0;
}

int moat_daemon_parse_log_level(const char *s, enum log_level *ret, struct moat_error **reterr)
{
        static const struct {
                const char *name;
                enum log_level level;
        } levels[] = {
                { "debug", LOG_LEVEL_DEBUG }, { "info", LOG_LEVEL_INFO },   { "warn", LOG_LEVEL_WARNING },
                { "warning", LOG_LEVEL_WARNING }, { "error", LOG_LEVEL_ERROR }, { "fatal", LOG_LEVEL_ERROR },
        };
        for (size_t i = 0; i < ELEMENTSOF(levels); i++)
                if (streq(s, levels[i].name)) {
                        *ret = levels[i].level;
                        return 0;
                }
        return moat_error_setx(reterr, -EINVAL, "invalid log level \"%s\": expected debug, info, warn, error or fatal",
                               s);
}

void moat_daemon_config_clear(struct moat_daemon_config *c)
{
        free(c->socket_path);
        free(c->data_root);
        free(c->exec_root);
        free(c->pidfile);
        free(c->config_file);
        free(c->group);
        free(c->log_driver);
        json_decref(c->log_opts);
        json_decref(c->host_config_defaults);
        *c = (struct moat_daemon_config) {};
}

static const char *const config_keys[] = {
        "hosts", "data-root", "exec-root", "pidfile", "group", "debug", "log-level", "log-driver", "log-opts",
        "live-restore", "default-shm-size", "default-ipc-mode", "default-ulimits", "init",
};

/* The flag value for a daemon.json key, NULL when the flag was not given. */
static const char *flag_for_key(const struct moat_daemon_flags *f, const char *key)
{
        if (streq(key, "hosts"))
                return f->host;
        if (streq(key, "data-root"))
                return f->data_root;
        if (streq(key, "exec-root"))
                return f->exec_root;
        if (streq(key, "pidfile"))
                return f->pidfile;
        if (streq(key, "group"))
                return f->group;
        if (streq(key, "log-level"))
                return f->log_level;
        if (streq(key, "debug"))
                return f->debug ? "true" : NULL;
        return NULL;
}

static int json_string_key(json_t *root, const char *key, const char **ret, struct moat_error **reterr)
{
        json_t *v = json_object_get(root, key);
        if (!v)
                return 0;
        if (!json_is_string(v) || json_string_length(v) == 0)
                return moat_error_setx(reterr, -EINVAL, "\"%s\" must be a non-empty string", key);
        *ret = json_string_value(v);
        return 0;
}

static int load_file(const struct moat_daemon_flags *flags, const char *path, bool must_exist, json_t **ret,
                     struct moat_error **reterr)
{
        _cleanup_free_ char *text = NULL;
        size_t len;
        *ret = NULL;
        int r = read_full_file_at(AT_FDCWD, path, MOAT_DAEMON_MAX_CONFIG, &text, &len);
        if (r == -ENOENT && !must_exist)
                return 0;
        if (r < 0)
                return moat_error_set(reterr, r, "unable to configure the moat daemon with file %s", path);
        json_error_t jerr;
        json_t *root = json_loadb(text, len, JSON_REJECT_DUPLICATES, &jerr);
        if (!root)
                return moat_error_setx(reterr, -EINVAL,
                                       "unable to configure the moat daemon with file %s: %s at line %d column %d",
                                       path, jerr.text, jerr.line, jerr.column);
        if (!json_is_object(root)) {
                json_decref(root);
                return moat_error_setx(reterr, -EINVAL,
                                       "unable to configure the moat daemon with file %s: not a JSON object", path);
        }

        _cleanup_free_ char *unknown = NULL, *both = NULL;
        size_t ul = 0, bl = 0;
        FILE *uf = open_memstream(&unknown, &ul), *bf = open_memstream(&both, &bl);
        const char *key;
        json_t *val;
        json_object_foreach(root, key, val) {
                bool known = false;
                for (size_t i = 0; i < ELEMENTSOF(config_keys); i++)
                        known |= streq(key, config_keys[i]);
                if (!known && uf) {
                        fprintf(uf, "%s%s", ftell(uf) ? ", " : "", key);
                        continue;
                }
                const char *fv = flag_for_key(flags, key);
                if (fv && bf) {
                        _cleanup_free_ char *filev = json_dumps(val, JSON_ENCODE_ANY | JSON_COMPACT);
                        fprintf(bf, "%s%s: (from flag: %s, from file: %s)", ftell(bf) ? ", " : "", key, fv,
                                filev ? filev : "?");
                }
        }
        if (uf)
                fclose(uf);
        if (bf)
                fclose(bf);
        if (!uf || !bf) {
                json_decref(root);
                return moat_error_set(reterr, -ENOMEM, "daemon configuration");
        }
        if (!strempty(unknown)) {
                json_decref(root);
                return moat_error_setx(reterr, -EINVAL,
                                       "unable to configure the moat daemon with file %s: the following directives "
                                       "don't match any configuration option: %s", path, unknown);
        }
        if (!strempty(both)) {
                json_decref(root);
                return moat_error_setx(reterr, -EINVAL,
                                       "unable to configure the moat daemon with file %s: the following directives "
                                       "are specified both as a flag and in the configuration file: %s", path, both);
        }
        *ret = root;
        return 0;
}

/*
 * The keys that set defaults for new containers, as HostConfig fields for
 * the engine (moat_engine_config.host_config_defaults): log-driver and
 * log-opts (LogConfig), default-shm-size (ShmSize), default-ipc-mode
 * (IpcMode), init (Init), default-ulimits (Ulimits). NULL when none is set.
 */
static int container_defaults(json_t *root, const char *path, json_t **ret, struct moat_error **reterr)
{
        json_t *d = json_object(), *v;
        int r = 0;

        if (!d)
                return moat_error_set(reterr, -ENOMEM, "daemon configuration");
        *ret = NULL;
        json_t *driver = json_object_get(root, "log-driver"), *opts = json_object_get(root, "log-opts");
        if (driver || opts) {
                json_t *lc = json_pack("{s:s, s:O}", "Type", driver ? json_string_value(driver) : "json-file", "Config",
                                       opts ? opts : json_object());
                if (!lc || json_object_set_new(d, "LogConfig", lc) < 0)
                        r = moat_error_set(reterr, -ENOMEM, "daemon configuration");
        }
        if (r >= 0 && (v = json_object_get(root, "default-shm-size"))) {
                int64_t size;
                if (!json_is_string(v) || parse_ram_in_bytes(json_string_value(v), &size) < 0 || size <= 0)
                        r = moat_error_setx(reterr, -EINVAL, "%s: \"default-shm-size\" must be a size such as \"64M\"",
                                            path);
                else if (json_object_set_new(d, "ShmSize", json_integer(size)) < 0)
                        r = moat_error_set(reterr, -ENOMEM, "daemon configuration");
        }
        if (r >= 0 && (v = json_object_get(root, "default-ipc-mode"))) {
                const char *m = json_string_value(v);
                if (!m || (!streq(m, "private") && !streq(m, "shareable")))
                        r = moat_error_setx(reterr, -EINVAL,
                                            "%s: \"default-ipc-mode\" must be \"private\" or \"shareable\"", path);
                else if (json_object_set(d, "IpcMode", v) < 0)
                        r = moat_error_set(reterr, -ENOMEM, "daemon configuration");
        }
        if (r >= 0 && (v = json_object_get(root, "init"))) {
                if (!json_is_boolean(v))
                        r = moat_error_setx(reterr, -EINVAL, "%s: \"init\" must be true or false", path);
                else if (json_object_set(d, "Init", v) < 0)
                        r = moat_error_set(reterr, -ENOMEM, "daemon configuration");
        }
        if (r >= 0 && (v = json_object_get(root, "default-ulimits"))) {
                /* docker's form: {"nofile": {"Name": "nofile", "Hard": 64000, "Soft": 64000}} */
                json_t *list = json_array(), *u;
                const char *k;
                if (!list || json_object_set_new(d, "Ulimits", list) < 0)
                        r = moat_error_set(reterr, -ENOMEM, "daemon configuration");
                else if (!json_is_object(v))
                        r = moat_error_setx(reterr, -EINVAL, "%s: \"default-ulimits\" must be an object", path);
                json_object_foreach(v, k, u) {
                        if (r < 0)
                                break;
                        json_t *name = json_object_get(u, "Name");
                        if (!json_is_object(u) || (name && (!json_is_string(name) || !streq(json_string_value(name), k))) ||
                            !json_is_integer(json_object_get(u, "Hard")) || !json_is_integer(json_object_get(u, "Soft")))
                                r = moat_error_setx(reterr, -EINVAL,
                                                    "%s: \"default-ulimits\": \"%s\" must be {\"Name\": \"%s\", "
                                                    "\"Hard\": <number>, \"Soft\": <number>}",
                                                    path, k, k);
                        else if (json_array_append_new(list, json_pack("{s:s, s:O, s:O}", "Name", k, "Hard",
                                                                       json_object_get(u, "Hard"), "Soft",
                                                                       json_object_get(u, "Soft"))) < 0)
                                r = moat_error_set(reterr, -ENOMEM, "daemon configuration");
                }
        }
        /* What only create's checks know (log options, ulimit names and
         * ranges) is checked by them now rather than at each create. */
        if (r >= 0 && json_object_size(d) > 0 && (r = moat_engine_defaults_check(d, reterr)) < 0)
                r = moat_error_wrap(reterr, r, "%s: defaults for new containers", path);
        if (r < 0 || json_object_size(d) == 0) {
                json_decref(d);
                return r < 0 ? r : 0;
        }
        *ret = d;
        return 0;
}

static int set_str(char **dst, const char *v, struct moat_error **reterr)
{
        free(*dst);
        *dst = strdup(v);
        return *dst ? 0 : moat_error_set(reterr, -ENOMEM, "daemon configuration");
}

int moat_daemon_config_load(const struct moat_daemon_flags *flags, const char *default_data_root,
                            struct moat_daemon_config *ret, struct moat_error **reterr)
{
        struct moat_daemon_config c = { .level = LOG_LEVEL_INFO };
        json_t *root = NULL;
        const char *path = flags->config_file ? flags->config_file : MOAT_DAEMON_DEFAULT_CONFIG;
        int r = load_file(flags, path, flags->config_file != NULL, &root, reterr);
        if (r < 0)
                return r;

        const char *host = flags->host, *data_root = flags->data_root, *exec_root = flags->exec_root;
        const char *pidfile = flags->pidfile, *group = flags->group, *level = flags->log_level;
        const char *log_driver = NULL;
        bool debug = flags->debug;
        if (root) {
                json_t *v;
                if ((v = json_object_get(root, "hosts"))) {
                        if (!json_is_array(v) || json_array_size(v) != 1 || !json_is_string(json_array_get(v, 0))) {
                                r = moat_error_setx(reterr, -EINVAL, "%s: \"hosts\" must be an array of one "
                                                    "string (moat listens on one socket)", path);
                                goto out;
                        }
                        host = json_string_value(json_array_get(v, 0));
                }
                if ((r = json_string_key(root, "data-root", &data_root, reterr)) < 0 ||
                    (r = json_string_key(root, "exec-root", &exec_root, reterr)) < 0 ||
                    (r = json_string_key(root, "pidfile", &pidfile, reterr)) < 0 ||
                    (r = json_string_key(root, "group", &group, reterr)) < 0 ||
                    (r = json_string_key(root, "log-level", &level, reterr)) < 0 ||
                    (r = json_string_key(root, "log-driver", &log_driver, reterr)) < 0) {
                        r = moat_error_wrap(reterr, r, "%s", path);
                        goto out;
                }
                if ((v = json_object_get(root, "debug"))) {
                        if (!json_is_boolean(v)) {
                                r = moat_error_setx(reterr, -EINVAL, "%s: \"debug\" must be true or false", path);
                                goto out;
                        }
                        debug = json_is_true(v);
                }
                if ((v = json_object_get(root, "live-restore"))) {
                        if (!json_is_boolean(v) || !json_is_true(v)) {
                                r = moat_error_setx(reterr, -EINVAL,
                                                    "%s: \"live-restore\" cannot be turned off: moat's containers "
                                                    "always outlive the daemon", path);
                                goto out;
                        }
                }
                if ((v = json_object_get(root, "log-opts"))) {
                        const char *k;
                        json_t *ov;
                        if (!json_is_object(v)) {
                                r = moat_error_setx(reterr, -EINVAL, "%s: \"log-opts\" must be an object", path);
                                goto out;
                        }
                        json_object_foreach(v, k, ov) {
                                if (!json_is_string(ov)) {
                                        r = moat_error_setx(reterr, -EINVAL,
                                                            "%s: \"log-opts\": \"%s\" must be a string", path, k);
                                        goto out;
                                }
                        }
                        c.log_opts = json_incref(v);
                }
                if ((r = container_defaults(root, path, &c.host_config_defaults, reterr)) < 0)
                        goto out;
        }

        if ((r = moat_daemon_parse_host(host ? host : MOAT_DAEMON_DEFAULT_HOST, &c.socket_path, reterr)) < 0)
                goto out;
        if (level && (r = moat_daemon_parse_log_level(level, &c.level, reterr)) < 0)
                goto out;
        if (debug)
                c.level = LOG_LEVEL_DEBUG;
        c.debug = debug;
        const char *dirs[] = { data_root ? data_root : default_data_root, exec_root ? exec_root : MOAT_DAEMON_DEFAULT_EXEC_ROOT,
                               pidfile ? pidfile : MOAT_DAEMON_DEFAULT_PIDFILE };
        const char *names[] = { "data-root", "exec-root", "pidfile" };
        for (size_t i = 0; i < ELEMENTSOF(dirs); i++)
                if (dirs[i][0] != '/') {
                        r = moat_error_setx(reterr, -EINVAL, "%s \"%s\" must be an absolute path", names[i], dirs[i]);
                        goto out;
                }
        if ((r = set_str(&c.data_root, dirs[0], reterr)) < 0 || (r = set_str(&c.exec_root, dirs[1], reterr)) < 0 ||
            (r = set_str(&c.pidfile, dirs[2], reterr)) < 0 || (r = set_str(&c.config_file, path, reterr)) < 0 ||
            (r = set_str(&c.group, group ? group : MOAT_DAEMON_DEFAULT_GROUP, reterr)) < 0 ||
            (log_driver && (r = set_str(&c.log_driver, log_driver, reterr)) < 0))
                goto out;
        *ret = c;
        c = (struct moat_daemon_config) {};
        r = 0;
out:
        moat_daemon_config_clear(&c);
        json_decref(root);
        return r;
}

/* ---- start-up pieces ---- */

static int mkdir_p(const char *path, mode_t mode, struct moat_error **reterr)
{
        _cleanup_free_ char *p = strdup(path);
        if (!p)
                return moat_error_set(reterr, -ENOMEM, "mkdir %s", path);
        for (char *s = p + 1;; s++) {
                if (*s != '/' && *s != '\0')
                        continue;
                char saved = *s;
                *s = '\0';
                if (mkdir(p, saved ? 0755 : mode) < 0 && errno != EEXIST)
                        return moat_error_set(reterr, errno, "create directory %s", p);
                *s = saved;
                if (!saved)
                        break;
        }
        struct stat st;
        if (stat(path, &st) < 0 || !S_ISDIR(st.st_mode))
                return moat_error_setx(reterr, -ENOTDIR, "%s is not a directory", path);
        return 0;
}

static int parent_dir(const char *path, char **ret)
{
        const char *slash = strrchr(path, '/');
        *ret = strndup(path, slash == path ? 1 : (size_t) (slash - path));
        return *ret ? 0 : -ENOMEM;
}

static bool pid_alive(pid_t pid)
{
        return pid > 0 && (kill(pid, 0) == 0 || errno == EPERM);
}

/* The pid file, locked for as long as the daemon runs. */
static int pidfile_take(const char *path, int *ret_fd, struct moat_error **reterr)
{
        _cleanup_free_ char *dir = NULL;
        if (parent_dir(path, &dir) < 0)
                return moat_error_set(reterr, -ENOMEM, "pid file");
        int r = mkdir_p(dir, 0755, reterr);
        if (r < 0)
                return r;
        _cleanup_close_ int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0644);
        if (fd < 0)
                return moat_error_set(reterr, errno, "open pid file %s", path);
        char buf[32] = "";
        ssize_t n = pread(fd, buf, sizeof(buf) - 1, 0);
        if (n > 0)
                buf[n] = '\0';
        buf[strcspn(buf, "\n")] = '\0';
        int32_t old = 0;
        bool have_old = n > 0 && safe_atoi(buf, &old) >= 0 && old > 0;
        struct flock lk = { .l_type = F_WRLCK, .l_whence = SEEK_SET };
        if (fcntl(fd, F_OFD_SETLK, &lk) < 0) {
                if (errno == EAGAIN || errno == EACCES)
                        return have_old ? moat_error_setx(reterr, -EBUSY, "moat daemon is already running as pid %d "
                                                          "(pid file %s)", (int) old, path)
                                        : moat_error_setx(reterr, -EBUSY, "moat daemon is already running "
                                                          "(pid file %s is locked)", path);
                return moat_error_set(reterr, errno, "lock pid file %s", path);
        }
        if (have_old && old != getpid() && pid_alive(old))
                return moat_error_setx(reterr, -EBUSY, "moat daemon is already running as pid %d (pid file %s)",
                                       (int) old, path);
        char pid[32];
        int len = snprintf(pid, sizeof(pid), "%d\n", (int) getpid());
        if (ftruncate(fd, 0) < 0 || pwrite(fd, pid, (size_t) len, 0) != len)
                return moat_error_set(reterr, errno, "write pid file %s", path);
        *ret_fd = TAKE_FD(fd);
        return 0;
}

static int engine_id(const char *data_root, char **ret, struct moat_error **reterr)
{
        _cleanup_close_ int dfd = open(data_root, O_DIRECTORY | O_CLOEXEC | O_RDONLY);
        if (dfd < 0)
                return moat_error_set(reterr, errno, "open %s", data_root);
        _cleanup_free_ char *s = NULL;
        size_t len;
        int r = read_full_file_at(dfd, "engine-id", 128, &s, &len);
        if (r >= 0) {
                s[strcspn(s, "\n")] = '\0';
                if (strlen(s) == 36) {
                        *ret = TAKE_PTR(s);
                        return 0;
                }
        } else if (r != -ENOENT)
                return moat_error_set(reterr, r, "read %s/engine-id", data_root);

        uint8_t b[16];
        if (getrandom(b, sizeof(b), 0) != sizeof(b))
                return moat_error_set(reterr, errno, "random engine id");
        b[6] = (b[6] & 0x0f) | 0x40;
        b[8] = (b[8] & 0x3f) | 0x80;
        char id[40];
        snprintf(id, sizeof(id), "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x", b[0], b[1],
                 b[2], b[3], b[4], b[5], b[6], b[7], b[8], b[9], b[10], b[11], b[12], b[13], b[14], b[15]);
        char line[42];
        snprintf(line, sizeof(line), "%s\n", id);
        r = write_file_atomic_at(dfd, "engine-id", line, strlen(line), 0600);
        if (r < 0)
                return moat_error_set(reterr, r, "write %s/engine-id", data_root);
        *ret = strdup(id);
        return *ret ? 0 : moat_error_set(reterr, -ENOMEM, "engine id");
}

static bool valid_group_name(const char *s)
{
        size_t l = strlen(s);
        if (l == 0 || l > 32 || !(s[0] == '_' || (s[0] >= 'a' && s[0] <= 'z')))
                return false;
        for (size_t i = 0; i < l; i++)
                if (!(s[i] == '_' || s[i] == '-' || (s[i] >= 'a' && s[i] <= 'z') || (s[i] >= '0' && s[i] <= '9')))
                        return false;
        return true;
}

static int lookup_group(const char *name, gid_t *ret)
{
        struct group gr, *res = NULL;
        char buf[16384];
        int r = getgrnam_r(name, &gr, buf, sizeof(buf), &res);
        if (r != 0)
                return -r;
        if (!res)
                return -ENOENT;
        *ret = res->gr_gid;
        return 0;
}

static int ensure_group(const char *name, gid_t *ret, const struct moat_daemon_log *log, struct moat_error **reterr)
{
        int r = lookup_group(name, ret);
        if (r != -ENOENT)
                return r < 0 ? moat_error_set(reterr, r, "look up group \"%s\"", name) : 0;
        if (!valid_group_name(name))
                return moat_error_setx(reterr, -EINVAL, "group \"%s\" does not exist and is not a valid group name",
                                       name);
        char *argv[] = { (char *) "groupadd", (char *) "-r", (char *) name, NULL };
        pid_t pid;
        r = posix_spawnp(&pid, "groupadd", NULL, NULL, argv, environ);
        if (r != 0)
                return moat_error_set(reterr, r, "group \"%s\" does not exist and groupadd cannot be run", name);
        int status;
        while (waitpid(pid, &status, 0) < 0)
                if (errno != EINTR)
                        return moat_error_set(reterr, errno, "wait for groupadd");
        if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
                return moat_error_setx(reterr, -EIO, "groupadd -r %s failed (status %d)", name, status);
        r = lookup_group(name, ret);
        if (r < 0)
                return moat_error_set(reterr, r, "group \"%s\" after groupadd", name);
        say(log, LOG_LEVEL_INFO, "created system group %s (gid %u) for the API socket", name, (unsigned) *ret);
        return 0;
}

static int make_socket(const char *path, gid_t gid, int *ret_fd, struct moat_error **reterr)
{
        struct sockaddr_un sa = { .sun_family = AF_UNIX };
        struct stat st;
        _cleanup_free_ char *dir = NULL, *tmp = NULL;

        if (lstat(path, &st) == 0) {
                if (!S_ISSOCK(st.st_mode))
                        return moat_error_setx(reterr, -EEXIST, "%s exists and is not a socket", path);
                _cleanup_close_ int probe = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
                if (probe < 0)
                        return moat_error_set(reterr, errno, "socket");
                strcpy(sa.sun_path, path);
                if (connect(probe, (struct sockaddr *) &sa, sizeof(sa)) == 0)
                        return moat_error_setx(reterr, -EADDRINUSE, "another daemon is listening on %s", path);
                if (errno != ECONNREFUSED && errno != ENOENT)
                        return moat_error_set(reterr, errno, "probe the existing socket %s", path);
        } else if (errno != ENOENT)
                return moat_error_set(reterr, errno, "stat %s", path);

        if (parent_dir(path, &dir) < 0 || asprintf(&tmp, "%s/.moat-%d.sock", strcmp(dir, "/") ? dir : "",
                                                   (int) getpid()) < 0)
                return moat_error_set(reterr, -ENOMEM, "socket path");
        int r = mkdir_p(dir, 0755, reterr);
        if (r < 0)
                return r;
        if (strlen(tmp) >= sizeof(sa.sun_path))
                return moat_error_setx(reterr, -ENAMETOOLONG, "socket path %s is too long", tmp);

        _cleanup_close_ int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd < 0)
                return moat_error_set(reterr, errno, "socket");
        (void) unlink(tmp);
        memset(sa.sun_path, 0, sizeof(sa.sun_path));
        strcpy(sa.sun_path, tmp);
        mode_t old = umask(0117);
        r = bind(fd, (struct sockaddr *) &sa, sizeof(sa));
        umask(old);
        if (r < 0)
                return moat_error_set(reterr, errno, "bind %s", tmp);
        if (lchown(tmp, 0, gid) < 0 || listen(fd, 128) < 0 || rename(tmp, path) < 0) {
                r = moat_error_set(reterr, errno, "set up the socket %s", path);
                (void) unlink(tmp);
                return r;
        }
        *ret_fd = TAKE_FD(fd);
        return 0;
}

/* moat-runtime: in the build tree (src/runtime-cli/), next to an
 * installed moat (<prefix>/bin, two levels above libexec/moat). */
static char *runtime_path(void)
{
        static const char *const candidates[] = { "../runtime-cli/moat-runtime", "../../bin/moat-runtime",
                                                  "moat-runtime" };
        char self[4096];
        ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
        if (n > 0) {
                self[n] = '\0';
                char *slash = strrchr(self, '/');
                for (size_t i = 0; slash && i < ELEMENTSOF(candidates); i++) {
                        char *p = NULL;
                        if (asprintf(&p, "%.*s/%s", (int) (slash - self), self, candidates[i]) < 0)
                                continue;
                        if (access(p, X_OK) == 0)
                                return p;
                        free(p);
                }
        }
        /* Looked up in PATH when the engine runs it, as dockerd does with "runc". */
        return strdup("moat-runtime");
}

/* A helper binary: in the build tree (src/<dir>/<name>), next to an
 * installed moat-daemon (<prefix>/libexec/moat), or in the configured
 * libexecdir. */
static char *helper_path(const char *build_dir, const char *name)
{
        char self[4096];
        ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
        char *p = NULL;

        if (n > 0) {
                self[n] = '\0';
                char *slash = strrchr(self, '/');
                if (slash) {
                        *slash = '\0';
                        if (asprintf(&p, "%s/../%s/%s", self, build_dir, name) >= 0 && access(p, X_OK) == 0)
                                return p;
                        free(p);
                        p = NULL;
                        if (asprintf(&p, "%s/%s", self, name) >= 0 && access(p, X_OK) == 0)
                                return p;
                        free(p);
                        p = NULL;
                }
        }
        if (asprintf(&p, "%s/%s", MOAT_LIBEXECDIR, name) < 0)
                return NULL;
        return p;
}

/* The init bound into containers run with --init, as docker-init is:
 * a static one first, since the image's libc is unknown. */
static const char *init_path(void)
{
        static const char *const candidates[] = { "/usr/bin/tini-static", "/usr/bin/catatonit", "/usr/bin/tini" };
        for (size_t i = 0; i < sizeof(candidates) / sizeof(candidates[0]); i++)
                if (access(candidates[i], X_OK) == 0)
                        return candidates[i];
        return NULL;
}

static const struct moat_daemon_log *engine_log_target;

/* The engine's levels are syslog's. */
static void engine_log_emit(int level, const char *msg)
{
        enum log_level l = level <= 3 ? LOG_LEVEL_ERROR : level == 4 ? LOG_LEVEL_WARNING
                         : level <= 6 ? LOG_LEVEL_INFO : LOG_LEVEL_DEBUG;
        say(engine_log_target, l, "%s", msg);
}

static int engine_counts(void *userdata, struct moat_api_counts *ret, struct moat_error **reterr)
{
        json_t *list = NULL;
        int r = moat_engine_list(userdata, true, -1, NULL, &list, reterr);
        if (r < 0)
                return r;
        *ret = (struct moat_api_counts) {};
        size_t i;
        json_t *c;
        json_array_foreach(list, i, c) {
                const char *state = json_string_value(json_object_get(c, "State"));
                ret->containers++;
                if (state && streq(state, "running"))
                        ret->running++;
                else if (state && streq(state, "paused"))
                        ret->paused++;
                else
                        ret->stopped++;
        }
        json_decref(list);
        return moat_engine_images_count(userdata, &ret->images, reterr);
}

/* ---- the loop ---- */

static void reload(const struct moat_daemon_flags *flags, const struct moat_daemon_config *cfg,
                   struct moat_api_system *sys, const struct moat_daemon_log *log)
{
        _cleanup_error_ struct moat_error *err = NULL;
        struct moat_daemon_config nc = {};
        struct moat_daemon_flags f = *flags;
        f.config_file = cfg->config_file;
        if (moat_daemon_config_load(&f, cfg->data_root, &nc, &err) < 0) {
                say(log, LOG_LEVEL_ERROR, "reload: %s; keeping the running configuration", err->msg);
                return;
        }
        if (!streq(nc.socket_path, cfg->socket_path) || !streq(nc.data_root, cfg->data_root) ||
            !streq(nc.exec_root, cfg->exec_root) || !streq(nc.pidfile, cfg->pidfile) || !streq(nc.group, cfg->group))
                say(log, LOG_LEVEL_WARNING, "reload: only debug and log-level are reloadable; restart the daemon "
                                             "for hosts, data-root, exec-root, pidfile and group");
        atomic_store(&sys->debug, nc.debug);
        if (log && log->set_level)
                log->set_level(log->userdata, nc.level);
        say(log, LOG_LEVEL_INFO, "configuration reloaded from %s: debug=%s", cfg->config_file,
            nc.debug ? "true" : "false");
        moat_daemon_config_clear(&nc);
}

int moat_daemon_run(const struct moat_daemon_flags *flags, const struct moat_daemon_config *cfg,
                    const struct moat_daemon_log *log, struct moat_error **reterr)
{
        _cleanup_close_ int sfd = -EBADF, pidfd = -EBADF;
        _cleanup_free_ char *id = NULL, *rt = NULL, *monitor = NULL;
        struct moat_http_router *router = NULL;
        struct moat_engine *engine = NULL;
        struct moat_http_server *server = NULL;
        bool socket_made = false;
        int r;

        if (prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) < 0)
                return moat_error_set(reterr, errno, "become a child subreaper");

        sigset_t mask;
        sigemptyset(&mask);
        sigaddset(&mask, SIGTERM);
        sigaddset(&mask, SIGINT);
        sigaddset(&mask, SIGHUP);
        sigaddset(&mask, SIGCHLD);
        if (sigprocmask(SIG_BLOCK, &mask, NULL) < 0)
                return moat_error_set(reterr, errno, "block signals");
        signal(SIGPIPE, SIG_IGN);
        sfd = signalfd(-1, &mask, SFD_CLOEXEC);
        if (sfd < 0)
                return moat_error_set(reterr, errno, "signalfd");

        if ((r = mkdir_p(cfg->data_root, 0700, reterr)) < 0 || (r = mkdir_p(cfg->exec_root, 0700, reterr)) < 0)
                return r;
        if ((r = pidfile_take(cfg->pidfile, &pidfd, reterr)) < 0)
                return r;

        gid_t gid;
        _cleanup_close_ int lfd = -EBADF;
        bool activated = startswith(cfg->socket_path, "fd://");
        if ((r = engine_id(cfg->data_root, &id, reterr)) < 0 ||
            (!activated && (r = ensure_group(cfg->group, &gid, log, reterr)) < 0) ||
            (r = activated ? activated_socket(cfg->socket_path, &lfd, reterr)
                           : make_socket(cfg->socket_path, gid, &lfd, reterr)) < 0)
                goto out;
        socket_made = !activated;
        rt = runtime_path();
        if (!rt) {
                r = moat_error_set(reterr, -ENOMEM, "runtime path");
                goto out;
        }

        struct moat_api_system sys = { .data_root = cfg->data_root, .engine_id = id, .runtime_path = rt };
        atomic_store(&sys.debug, cfg->debug);
        if ((r = moat_http_router_new(&router)) < 0) {
                r = moat_error_set(reterr, r, "router");
                goto out;
        }
        monitor = helper_path("monitor", "moat-monitor");
        if (!monitor) {
                r = moat_error_set(reterr, -ENOMEM, "monitor path");
                goto out;
        }
        engine_log_target = log;
        struct moat_engine_config ecfg = {
                .data_root = cfg->data_root,
                .exec_root = cfg->exec_root,
                .monitor_path = monitor,
                .init_path = init_path(),
                .host_config_defaults = cfg->host_config_defaults,
                .log = engine_log_emit,
        };
        if ((r = moat_engine_open(&ecfg, &engine, reterr)) < 0)
                goto out;
        sys.ops = (struct moat_api_engine_ops) { .counts = engine_counts, .userdata = engine };
        if ((r = moat_api_register_system(router, &sys, reterr)) < 0 ||
            (r = moat_api_register_containers(router, engine, reterr)) < 0 ||
            (r = moat_api_register_exec(router, engine, reterr)) < 0 ||
            (r = moat_api_register_events(router, engine, reterr)) < 0 ||
            (r = moat_api_register_volumes(router, engine, reterr)) < 0 ||
            (r = moat_api_register_archive(router, engine, reterr)) < 0 ||
            (r = moat_api_register_logs(router, engine, reterr)) < 0 ||
            (r = moat_api_register_changes(router, engine, reterr)) < 0 ||
            (r = moat_api_register_images(router, engine, reterr)) < 0)
                goto out;
        char server_header[64];
        snprintf(server_header, sizeof(server_header), "Moat/%s (linux)", MOAT_VERSION);
        struct moat_http_server_config scfg = { .listen_fd = TAKE_FD(lfd), .server_header = server_header };
        if ((r = moat_http_server_start(&scfg, router, &server, reterr)) < 0)
                goto out;
        say(log, LOG_LEVEL_INFO, "API listen on %s (group %s, pid %d, data-root %s, exec-root %s)",
            cfg->socket_path, cfg->group, (int) getpid(), cfg->data_root, cfg->exec_root);

        for (;;) {
                struct signalfd_siginfo si;
                ssize_t n = read(sfd, &si, sizeof(si));
                if (n < 0 && errno == EINTR)
                        continue;
                if (n != sizeof(si)) {
                        r = moat_error_set(reterr, n < 0 ? errno : EIO, "read signalfd");
                        goto out;
                }
                if (si.ssi_signo == SIGTERM || si.ssi_signo == SIGINT) {
                        say(log, LOG_LEVEL_INFO, "received %s from pid %u: stopping",
                            si.ssi_signo == SIGTERM ? "SIGTERM" : "SIGINT", si.ssi_pid);
                        break;
                }
                if (si.ssi_signo == SIGHUP) {
                        reload(flags, cfg, &sys, log);
                        continue;
                }
                if (si.ssi_signo == SIGCHLD) {
                        int status;
                        pid_t pid;
                        while ((pid = waitpid(-1, &status, WNOHANG)) > 0)
                                say(log, LOG_LEVEL_DEBUG, "reaped pid %d (status %d)", (int) pid, status);
                }
        }
        r = 0;
out:
        moat_http_server_stop(server, MOAT_DAEMON_STOP_GRACE_MS);
        moat_http_router_free(router);
        /* Containers keep running (live restore). */
        moat_engine_free(engine);
        if (socket_made && unlink(cfg->socket_path) < 0 && errno != ENOENT && r == 0)
                r = moat_error_set(reterr, errno, "remove %s", cfg->socket_path);
        if (pidfd >= 0 && unlink(cfg->pidfile) < 0 && errno != ENOENT && r == 0)
                r = moat_error_set(reterr, errno, "remove %s", cfg->pidfile);
        if (r == 0)
                say(log, LOG_LEVEL_INFO, "stopped");
        return r;
}
