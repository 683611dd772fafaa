/* SPDX-License-Identifier: Apache-2.0 */
#include "base/compat.h"

/*
 * moat create [OPTIONS] IMAGE [COMMAND] [ARG...]: docker create, and the
 * container flags run shares with it (cli_container_opts_parse). The flags
 * become docker's create body (Config, HostConfig, NetworkingConfig) the
 * way docker's cli/command/container/opts.go builds it, with docker's
 * spellings, defaults and unit parsing (RAMInBytes sizes, Go durations,
 * --cpus as NanoCpus, "-e NAME" taken from our environment, seccomp
 * profiles read from a file and sent inline); the daemon validates what
 * the values mean. Prints the new container's ID.
 */

#include <fcntl.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "base/cleanup.h"
#include "base/fileio.h"
#include "base/parse.h"
#include "cli/cli.h"
#include "cli/client.h"

#define ENV_FILE_MAX (1024 * 1024)
#define SECCOMP_FILE_MAX (1024 * 1024)

void cli_container_opts_clear(struct cli_container_opts *o)
{
        json_decref(o->config);
        json_decref(o->host_config);
        o->config = o->host_config = NULL;
}

static int need(struct moat_error **reterr, const char *verb, const char *flag, const char *value, const char *what)
{
        return moat_error_setx(reterr, -EINVAL, "invalid argument \"%s\" for \"%s\" flag: %s", value, flag, what);
}

static int array_add(json_t *obj, const char *key, const char *value)
{
        json_t *a = json_object_get(obj, key);
        if (!a) {
                a = json_array();
                if (!a || json_object_set_new(obj, key, a) < 0)
                        return -ENOMEM;
        }
        return json_array_append_new(a, json_string(value)) < 0 ? -ENOMEM : 0;
}

static int map_set(json_t *obj, const char *key, const char *k, size_t klen, const char *v)
{
        json_t *m = json_object_get(obj, key);
        _cleanup_free_ char *kk = strndup(k, klen);
        if (!m) {
                m = json_object();
                if (!m || json_object_set_new(obj, key, m) < 0)
                        return -ENOMEM;
        }
        if (!kk)
                return -ENOMEM;
        return json_object_set_new(m, kk, json_string(v)) < 0 ? -ENOMEM : 0;
}

/* "-e NAME=value"; "-e NAME" takes NAME from our environment, or nothing. */
static int add_env(json_t *config, const char *e)
{
        _cleanup_free_ char *t = NULL;
        if (!strchr(e, '=')) {
                const char *v = getenv(e);
                if (!v)
                        return 0;
                if (asprintf(&t, "%s=%s", e, v) < 0)
                        return -ENOMEM;
                e = t;
        }
        return array_add(config, "Env", e);
}

static int add_env_file(json_t *config, const char *path, struct moat_error **reterr)
{
        _cleanup_free_ char *text = NULL;
        size_t len = 0;
        int r = read_full_file_at(AT_FDCWD, path, ENV_FILE_MAX, &text, &len);
        if (r < 0)
                return moat_error_set(reterr, r, "open %s", path);
        for (char *line = text, *next; line && *line; line = next) {
                next = strchr(line, '\n');
                if (next)
                        *next++ = 0;
                size_t l = strlen(line);
                if (l && line[l - 1] == '\r')
                        line[--l] = 0;
                while (*line == ' ' || *line == '\t')
                        line++;
                if (!*line || *line == '#')
                        continue;
                if (line[0] == '=')
                        return moat_error_setx(reterr, -EINVAL, "invalid environment variable: %s", line);
                if (add_env(config, line) < 0)
                        return moat_error_set(reterr, -ENOMEM, "env");
        }
        return 0;
}

static int add_label(json_t *config, const char *l)
{
        const char *eq = strchr(l, '=');
        return map_set(config, "Labels", l, eq ? (size_t) (eq - l) : strlen(l), eq ? eq + 1 : "");
}

/* docker reads seccomp=FILE on the client and sends the profile inline. */
static int add_security_opt(json_t *hc, const char *opt, struct moat_error **reterr)
{
        _cleanup_free_ char *t = NULL, *text = NULL;
        const char *sep = strchr(opt, '=');

        if (!sep && !streq(opt, "no-new-privileges") && strchr(opt, ':'))
                sep = strchr(opt, ':');  /* the deprecated key:value form */
        if (!sep) {
                if (!streq(opt, "no-new-privileges"))
                        return moat_error_setx(reterr, -EINVAL, "invalid --security-opt: %s", opt);
                return array_add(hc, "SecurityOpt", opt) < 0 ? moat_error_set(reterr, -ENOMEM, "security-opt") : 0;
        }
        size_t klen = (size_t) (sep - opt);
        const char *v = sep + 1;
        if (klen == 7 && strncmp(opt, "seccomp", 7) == 0 && !streq(v, "unconfined") && !streq(v, "builtin")) {
                size_t len = 0;
                int r = read_full_file_at(AT_FDCWD, v, SECCOMP_FILE_MAX, &text, &len);
                if (r < 0)
                        return moat_error_set(reterr, r, "opening seccomp profile (%s) failed", v);
                json_error_t jerr;
                json_t *j = json_loadb(text, len, 0, &jerr);
                if (!j)
                        return moat_error_setx(reterr, -EINVAL, "compacting json for seccomp profile (%s) failed: %s",
                                               v, jerr.text);
                _cleanup_free_ char *compact = json_dumps(j, JSON_COMPACT);
                json_decref(j);
                if (!compact || asprintf(&t, "seccomp=%s", compact) < 0)
                        return moat_error_set(reterr, -ENOMEM, "security-opt");
        } else if (asprintf(&t, "%.*s=%s", (int) klen, opt, v) < 0)
                return moat_error_set(reterr, -ENOMEM, "security-opt");
        return array_add(hc, "SecurityOpt", t) < 0 ? moat_error_set(reterr, -ENOMEM, "security-opt") : 0;
}

static int add_ulimit(json_t *hc, const char *u, struct moat_error **reterr)
{
        const char *eq = strchr(u, '=');
        int64_t soft, hard;
        char *colon;
        if (!eq || eq == u)
                return need(reterr, "", "--ulimit", u, "invalid ulimit argument");
        _cleanup_free_ char *vals = strdup(eq + 1);
        if (!vals)
                return -ENOMEM;
        colon = strchr(vals, ':');
        if (colon)
                *colon = 0;
        if (safe_atoi64(vals, &soft) < 0 || (colon && safe_atoi64(colon + 1, &hard) < 0))
                return need(reterr, "", "--ulimit", u, "invalid ulimit argument");
        if (!colon)
                hard = soft;
        if (soft > hard)
                return need(reterr, "", "--ulimit", u, "ulimit soft limit must be less than or equal to hard limit");
        json_t *a = json_object_get(hc, "Ulimits");
        if (!a) {
                a = json_array();
                json_object_set_new(hc, "Ulimits", a);
        }
        return json_array_append_new(a, json_pack("{s:s%,s:I,s:I}", "Name", u, (size_t) (eq - u), "Soft",
                                                  (json_int_t) soft, "Hard", (json_int_t) hard));
}

static int add_device(json_t *hc, const char *d, struct moat_error **reterr)
{
        _cleanup_free_ char *t = strdup(d);
        char *parts[3] = {};
        size_t n = 0;
        if (!t)
                return -ENOMEM;
        for (char *p = t, *s; p && n < 3; p = s) {
                s = strchr(p, ':');
                if (s)
                        *s++ = 0;
                parts[n++] = p;
                if (s && n == 3)
                        return need(reterr, "", "--device", d, "too many colons");
        }
        const char *src = parts[0], *dst = parts[0], *perm = "rwm";
        if (n == 2) {
                if (strspn(parts[1], "rwm") == strlen(parts[1]) && parts[1][0] != '/')
                        perm = parts[1];
                else
                        dst = parts[1];
        } else if (n == 3) {
                dst = parts[1];
                perm = parts[2];
        }
        if (strempty(src) || strempty(dst) || strspn(perm, "rwm") != strlen(perm) || !*perm)
                return need(reterr, "", "--device", d, "bad device specification");
        json_t *a = json_object_get(hc, "Devices");
        if (!a) {
                a = json_array();
                json_object_set_new(hc, "Devices", a);
        }
        return json_array_append_new(a, json_pack("{s:s,s:s,s:s}", "PathOnHost", src, "PathInContainer", dst,
                                                  "CgroupPermissions", perm));
}

/* --mount type=bind,source=/a,target=/b,readonly,... */
static int add_mount(json_t *hc, const char *spec, struct moat_error **reterr)
{
        _cleanup_free_ char *t = strdup(spec);
        json_t *m = json_object(), *bind = NULL, *tmpfs = NULL, *vol = NULL;
        int r = 0;

        if (!t || !m) {
                json_decref(m);
                return -ENOMEM;
        }
        json_object_set_new(m, "Type", json_string("volume"));
        for (char *p = t, *s; p && r >= 0; p = s) {
                s = strchr(p, ',');
                if (s)
                        *s++ = 0;
                char *eq = strchr(p, '=');
                const char *v = eq ? eq + 1 : NULL;
                if (eq)
                        *eq = 0;
                bool on = !v || streq(v, "1") || streq(v, "true");
                if (streq(p, "type") && v)
                        json_object_set_new(m, "Type", json_string(v));
                else if ((streq(p, "source") || streq(p, "src")) && v)
                        json_object_set_new(m, "Source", json_string(v));
                else if ((streq(p, "target") || streq(p, "destination") || streq(p, "dst")) && v)
                        json_object_set_new(m, "Target", json_string(v));
                else if (streq(p, "readonly") || streq(p, "ro"))
                        json_object_set_new(m, "ReadOnly", json_boolean(on));
                else if (streq(p, "consistency") && v)
                        json_object_set_new(m, "Consistency", json_string(v));
                else if (streq(p, "bind-propagation") && v) {
                        bind = bind ? bind : json_object();
                        json_object_set_new(bind, "Propagation", json_string(v));
                } else if (streq(p, "bind-recursive") && v) {
                        bind = bind ? bind : json_object();
                        if (streq(v, "disabled"))
                                json_object_set_new(bind, "NonRecursive", json_true());
                        else if (streq(v, "readonly"))
                                json_object_set_new(bind, "ReadOnlyForceRecursive", json_true());
                } else if (streq(p, "tmpfs-size") && v) {
                        int64_t size;
                        if (parse_ram_in_bytes(v, &size) < 0)
                                r = need(reterr, "", "--mount", spec, "invalid tmpfs-size");
                        tmpfs = tmpfs ? tmpfs : json_object();
                        json_object_set_new(tmpfs, "SizeBytes", json_integer(size));
                } else if (streq(p, "tmpfs-mode") && v) {
                        char *end;
                        long mode = strtol(v, &end, 8);
                        if (*end || mode < 0 || mode > 07777)
                                r = need(reterr, "", "--mount", spec, "invalid tmpfs-mode");
                        tmpfs = tmpfs ? tmpfs : json_object();
                        json_object_set_new(tmpfs, "Mode", json_integer(mode));
                } else if (streq(p, "volume-nocopy")) {
                        vol = vol ? vol : json_object();
                        json_object_set_new(vol, "NoCopy", json_boolean(on));
                } else
                        r = need(reterr, "", "--mount", spec, "unexpected key or value");
        }
        if (bind)
                json_object_set_new(m, "BindOptions", bind);
        if (tmpfs)
                json_object_set_new(m, "TmpfsOptions", tmpfs);
        if (vol)
                json_object_set_new(m, "VolumeOptions", vol);
        if (r >= 0 && !json_object_get(m, "Target"))
                r = need(reterr, "", "--mount", spec, "target is required");
        if (r < 0) {
                json_decref(m);
                return r;
        }
        json_t *a = json_object_get(hc, "Mounts");
        if (!a) {
                a = json_array();
                json_object_set_new(hc, "Mounts", a);
        }
        return json_array_append_new(a, m);
}

static int set_restart(json_t *hc, const char *v, struct moat_error **reterr)
{
        const char *colon = strchr(v, ':');
        size_t nl = colon ? (size_t) (colon - v) : strlen(v);
        int retries = 0;
        if (colon && safe_atoi(colon + 1, &retries) < 0)
                return need(reterr, "", "--restart", v, "maximum retry count must be an integer");
        json_t *p = json_pack("{s:s%,s:i}", "Name", v, nl, "MaximumRetryCount", retries);
        return json_object_set_new(hc, "RestartPolicy", p);
}

static int set_duration(json_t *obj, const char *key, const char *flag, const char *v, struct moat_error **reterr)
{
        int64_t ns;
        if (cli_parse_duration(v, &ns) < 0)
                return need(reterr, "", flag, v, "time: invalid duration");
        return json_object_set_new(obj, key, json_integer(ns));
}

static int set_ram(json_t *obj, const char *key, const char *flag, const char *v, bool minus_one,
                   struct moat_error **reterr)
{
        int64_t b;
        if (minus_one && streq(v, "-1"))
                b = -1;
        else if (parse_ram_in_bytes(v, &b) < 0)
                return need(reterr, "", flag, v, "invalid size");
        return json_object_set_new(obj, key, json_integer(b));
}

void cli_console_size(int fd, unsigned *rows, unsigned *cols)
{
        struct winsize ws = {};
        *rows = *cols = 0;
        if (ioctl(fd, TIOCGWINSZ, &ws) == 0) {
                *rows = ws.ws_row;
                *cols = ws.ws_col;
        }
}

enum {
        OPT_RM = 256, OPT_NAME, OPT_ENV_FILE, OPT_MOUNT, OPT_TMPFS, OPT_ENTRYPOINT, OPT_INIT, OPT_RESTART,
        OPT_MEMORY_SWAP, OPT_CPUS, OPT_PIDS_LIMIT, OPT_CAP_ADD, OPT_CAP_DROP, OPT_PRIVILEGED, OPT_SECURITY_OPT,
        OPT_READ_ONLY, OPT_NETWORK, OPT_STOP_SIGNAL, OPT_STOP_TIMEOUT, OPT_ULIMIT, OPT_DEVICE, OPT_SYSCTL,
        OPT_SHM_SIZE, OPT_GROUP_ADD, OPT_HEALTH_CMD, OPT_HEALTH_INTERVAL, OPT_HEALTH_RETRIES, OPT_HEALTH_TIMEOUT,
        OPT_HEALTH_START_PERIOD, OPT_NO_HEALTHCHECK, OPT_LOG_OPT, OPT_LOG_DRIVER, OPT_PLATFORM, OPT_SIG_PROXY,
        OPT_DETACH_KEYS, OPT_PULL, OPT_CPUSET_CPUS, OPT_CPUSET_MEMS, OPT_CPU_PERIOD, OPT_CPU_QUOTA, OPT_BLKIO_WEIGHT,
        OPT_OOM_SCORE_ADJ, OPT_OOM_KILL_DISABLE, OPT_DOMAINNAME, OPT_PID, OPT_IPC, OPT_UTS, OPT_CGROUPNS,
        OPT_VOLUMES_FROM, OPT_MEMORY_RESERVATION, OPT_MEMORY_SWAPPINESS, OPT_ADD_HOST, OPT_DNS, OPT_DNS_SEARCH,
        OPT_DNS_OPTION, OPT_DEVICE_CGROUP_RULE,
};

int cli_container_opts_parse(const char *verb, bool run, int argc, char **argv, struct cli_container_opts *o,
                             struct moat_error **reterr)
{
        static const struct option options[] = {
                { "detach", no_argument, NULL, 'd' },
                { "interactive", no_argument, NULL, 'i' },
                { "tty", no_argument, NULL, 't' },
                { "rm", no_argument, NULL, OPT_RM },
                { "name", required_argument, NULL, OPT_NAME },
                { "env", required_argument, NULL, 'e' },
                { "env-file", required_argument, NULL, OPT_ENV_FILE },
                { "volume", required_argument, NULL, 'v' },
                { "mount", required_argument, NULL, OPT_MOUNT },
                { "tmpfs", required_argument, NULL, OPT_TMPFS },
                { "workdir", required_argument, NULL, 'w' },
                { "user", required_argument, NULL, 'u' },
                { "entrypoint", required_argument, NULL, OPT_ENTRYPOINT },
                { "init", no_argument, NULL, OPT_INIT },
                { "restart", required_argument, NULL, OPT_RESTART },
                { "memory", required_argument, NULL, 'm' },
                { "memory-swap", required_argument, NULL, OPT_MEMORY_SWAP },
                { "cpus", required_argument, NULL, OPT_CPUS },
                { "cpu-shares", required_argument, NULL, 'c' },
                { "pids-limit", required_argument, NULL, OPT_PIDS_LIMIT },
                { "cpuset-cpus", required_argument, NULL, OPT_CPUSET_CPUS },
                { "cpuset-mems", required_argument, NULL, OPT_CPUSET_MEMS },
                { "cpu-period", required_argument, NULL, OPT_CPU_PERIOD },
                { "cpu-quota", required_argument, NULL, OPT_CPU_QUOTA },
                { "blkio-weight", required_argument, NULL, OPT_BLKIO_WEIGHT },
                { "oom-score-adj", required_argument, NULL, OPT_OOM_SCORE_ADJ },
                { "oom-kill-disable", no_argument, NULL, OPT_OOM_KILL_DISABLE },
                { "domainname", required_argument, NULL, OPT_DOMAINNAME },
                { "pid", required_argument, NULL, OPT_PID },
                { "ipc", required_argument, NULL, OPT_IPC },
                { "uts", required_argument, NULL, OPT_UTS },
                { "cgroupns", required_argument, NULL, OPT_CGROUPNS },
                { "volumes-from", required_argument, NULL, OPT_VOLUMES_FROM },
                { "memory-reservation", required_argument, NULL, OPT_MEMORY_RESERVATION },
                { "memory-swappiness", required_argument, NULL, OPT_MEMORY_SWAPPINESS },
                { "add-host", required_argument, NULL, OPT_ADD_HOST },
                { "dns", required_argument, NULL, OPT_DNS },
                { "dns-search", required_argument, NULL, OPT_DNS_SEARCH },
                { "dns-option", required_argument, NULL, OPT_DNS_OPTION },
                { "device-cgroup-rule", required_argument, NULL, OPT_DEVICE_CGROUP_RULE },
                { "cap-add", required_argument, NULL, OPT_CAP_ADD },
                { "cap-drop", required_argument, NULL, OPT_CAP_DROP },
                { "privileged", no_argument, NULL, OPT_PRIVILEGED },
                { "security-opt", required_argument, NULL, OPT_SECURITY_OPT },
                { "read-only", no_argument, NULL, OPT_READ_ONLY },
                { "network", required_argument, NULL, OPT_NETWORK },
                { "net", required_argument, NULL, OPT_NETWORK },
                { "hostname", required_argument, NULL, 'h' },
                { "label", required_argument, NULL, 'l' },
                { "stop-signal", required_argument, NULL, OPT_STOP_SIGNAL },
                { "stop-timeout", required_argument, NULL, OPT_STOP_TIMEOUT },
                { "ulimit", required_argument, NULL, OPT_ULIMIT },
                { "device", required_argument, NULL, OPT_DEVICE },
                { "sysctl", required_argument, NULL, OPT_SYSCTL },
                { "shm-size", required_argument, NULL, OPT_SHM_SIZE },
                { "group-add", required_argument, NULL, OPT_GROUP_ADD },
                { "health-cmd", required_argument, NULL, OPT_HEALTH_CMD },
                { "health-interval", required_argument, NULL, OPT_HEALTH_INTERVAL },
                { "health-retries", required_argument, NULL, OPT_HEALTH_RETRIES },
                { "health-timeout", required_argument, NULL, OPT_HEALTH_TIMEOUT },
                { "health-start-period", required_argument, NULL, OPT_HEALTH_START_PERIOD },
                { "no-healthcheck", no_argument, NULL, OPT_NO_HEALTHCHECK },
                { "log-opt", required_argument, NULL, OPT_LOG_OPT },
                { "log-driver", required_argument, NULL, OPT_LOG_DRIVER },
                { "platform", required_argument, NULL, OPT_PLATFORM },
                { "sig-proxy", optional_argument, NULL, OPT_SIG_PROXY },
                { "detach-keys", required_argument, NULL, OPT_DETACH_KEYS },
                { "pull", required_argument, NULL, OPT_PULL },
                {},
        };
        json_t *cfg = json_object(), *hc = json_object(), *health = NULL;
        bool entrypoint_set = false, no_health = false;
        const char *entrypoint = NULL;
        int c, r = 0;

        *o = (struct cli_container_opts) { .config = cfg, .host_config = hc, .sig_proxy = true };
        if (!cfg || !hc)
                return moat_error_set(reterr, -ENOMEM, "%s", verb);
        while (r >= 0 && (c = getopt_long(argc, argv, run ? "+:dite:v:w:u:m:c:h:l:" : "+:ite:v:w:u:m:c:h:l:", options,
                                          NULL)) != -1) {
                switch (c) {
                case 'd':
                        if (!run)
                                return cli_bad_option(verb, argv[optind - 1], reterr);
                        o->detach = true;
                        break;
                case 'i':
                        o->interactive = true;
                        break;
                case 't':
                        o->tty = true;
                        break;
                case OPT_RM:
                        o->rm = true;
                        break;
                case OPT_NAME:
                        o->name = optarg;
                        break;
                case 'e':
                        r = add_env(cfg, optarg);
                        break;
                case OPT_ENV_FILE:
                        r = add_env_file(cfg, optarg, reterr);
                        break;
                case 'v':
                        r = array_add(hc, "Binds", optarg);
                        break;
                case OPT_MOUNT:
                        r = add_mount(hc, optarg, reterr);
                        break;
                case OPT_TMPFS: {
                        const char *colon = strchr(optarg, ':');
                        r = map_set(hc, "Tmpfs", optarg, colon ? (size_t) (colon - optarg) : strlen(optarg),
                                    colon ? colon + 1 : "");
                        break;
                }
                case 'w':
                        r = json_object_set_new(cfg, "WorkingDir", json_string(optarg));
                        break;
                case 'u':
                        r = json_object_set_new(cfg, "User", json_string(optarg));
                        break;
                case OPT_ENTRYPOINT:
                        entrypoint_set = true;
                        entrypoint = optarg;
                        break;
                case OPT_INIT:
                        r = json_object_set_new(hc, "Init", json_true());
                        break;
                case OPT_RESTART:
                        r = set_restart(hc, optarg, reterr);
                        break;
                case 'm':
                        r = set_ram(hc, "Memory", "--memory", optarg, false, reterr);
                        break;
                case OPT_MEMORY_SWAP:
                        r = set_ram(hc, "MemorySwap", "--memory-swap", optarg, true, reterr);
                        break;
                case OPT_CPUS: {
                        char *end;
                        double v = strtod(optarg, &end);
                        if (end == optarg || *end || v < 0 || v > 1e6)
                                r = need(reterr, verb, "--cpus", optarg, "failed to parse as a rational number");
                        else
                                r = json_object_set_new(hc, "NanoCpus", json_integer((json_int_t) (v * 1e9 + 0.5)));
                        break;
                }
                case 'c': {
                        int64_t v;
                        if (safe_atoi64(optarg, &v) < 0)
                                r = need(reterr, verb, "--cpu-shares", optarg, "invalid syntax");
                        else
                                r = json_object_set_new(hc, "CpuShares", json_integer(v));
                        break;
                }
                case OPT_PIDS_LIMIT: {
                        int64_t v;
                        if (safe_atoi64(optarg, &v) < 0)
                                r = need(reterr, verb, "--pids-limit", optarg, "invalid syntax");
                        else
                                r = json_object_set_new(hc, "PidsLimit", json_integer(v));
                        break;
                }
                case OPT_CPUSET_CPUS:
                case OPT_CPUSET_MEMS:
                        /* the daemon checks the list against the host's */
                        r = json_object_set_new(hc, c == OPT_CPUSET_CPUS ? "CpusetCpus" : "CpusetMems",
                                                json_string(optarg));
                        break;
                case OPT_CPU_PERIOD:
                case OPT_CPU_QUOTA:
                case OPT_BLKIO_WEIGHT:
                case OPT_OOM_SCORE_ADJ: {
                        static const char *const keys[] = { "CpuPeriod", "CpuQuota", "BlkioWeight", "OomScoreAdj" };
                        static const char *const flags[] = { "--cpu-period", "--cpu-quota", "--blkio-weight",
                                                             "--oom-score-adj" };
                        size_t k = (size_t) (c - OPT_CPU_PERIOD);
                        int64_t v;
                        if (safe_atoi64(optarg, &v) < 0)
                                r = need(reterr, verb, flags[k], optarg, "invalid syntax");
                        else
                                r = json_object_set_new(hc, keys[k], json_integer(v));
                        break;
                }
                case OPT_OOM_KILL_DISABLE:
                        r = json_object_set_new(hc, "OomKillDisable", json_true());
                        break;
                case OPT_DOMAINNAME:
                        r = json_object_set_new(cfg, "Domainname", json_string(optarg));
                        break;
                /* The modes and lists go as given: the daemon checks them
                 * and names the field in its error. */
                case OPT_PID:
                        r = json_object_set_new(hc, "PidMode", json_string(optarg));
                        break;
                case OPT_IPC:
                        r = json_object_set_new(hc, "IpcMode", json_string(optarg));
                        break;
                case OPT_UTS:
                        r = json_object_set_new(hc, "UTSMode", json_string(optarg));
                        break;
                case OPT_CGROUPNS:
                        r = json_object_set_new(hc, "CgroupnsMode", json_string(optarg));
                        break;
                case OPT_VOLUMES_FROM:
                        r = array_add(hc, "VolumesFrom", optarg);
                        break;
                case OPT_MEMORY_RESERVATION:
                        r = set_ram(hc, "MemoryReservation", "--memory-reservation", optarg, false, reterr);
                        break;
                case OPT_MEMORY_SWAPPINESS: {
                        int64_t v;
                        if (safe_atoi64(optarg, &v) < 0 || v < -1 || v > 100)
                                r = need(reterr, verb, "--memory-swappiness", optarg,
                                         "invalid value: valid memory swappiness range is 0-100");
                        else
                                r = json_object_set_new(hc, "MemorySwappiness", json_integer(v));
                        break;
                }
                case OPT_ADD_HOST:
                        r = array_add(hc, "ExtraHosts", optarg);
                        break;
                case OPT_DNS:
                        r = array_add(hc, "Dns", optarg);
                        break;
                case OPT_DNS_SEARCH:
                        r = array_add(hc, "DnsSearch", optarg);
                        break;
                case OPT_DNS_OPTION:
                        r = array_add(hc, "DnsOptions", optarg);
                        break;
                case OPT_DEVICE_CGROUP_RULE:
                        r = array_add(hc, "DeviceCgroupRules", optarg);
                        break;
                case OPT_CAP_ADD:
                        r = array_add(hc, "CapAdd", optarg);
                        break;
                case OPT_CAP_DROP:
                        r = array_add(hc, "CapDrop", optarg);
                        break;
                case OPT_PRIVILEGED:
                        r = json_object_set_new(hc, "Privileged", json_true());
                        break;
                case OPT_SECURITY_OPT:
                        r = add_security_opt(hc, optarg, reterr);
                        break;
                case OPT_READ_ONLY:
                        r = json_object_set_new(hc, "ReadonlyRootfs", json_true());
                        break;
                case OPT_NETWORK:
                        if (!streq(optarg, "none") && !streq(optarg, "host") && !startswith(optarg, "container:") &&
                            !streq(optarg, "default") && !streq(optarg, "bridge"))
                                r = moat_error_setx(reterr, -EOPNOTSUPP,
                                                    "--network %s: not supported (moat has none, host and "
                                                    "container:<name|id>)",
                                                    optarg);
                        else
                                r = json_object_set_new(hc, "NetworkMode", json_string(optarg));
                        break;
                case 'h':
                        r = json_object_set_new(cfg, "Hostname", json_string(optarg));
                        break;
                case 'l':
                        r = add_label(cfg, optarg);
                        break;
                case OPT_STOP_SIGNAL:
                        r = json_object_set_new(cfg, "StopSignal", json_string(optarg));
                        break;
                case OPT_STOP_TIMEOUT: {
                        int v;
                        if (safe_atoi(optarg, &v) < 0)
                                r = need(reterr, verb, "--stop-timeout", optarg, "invalid syntax");
                        else
                                r = json_object_set_new(cfg, "StopTimeout", json_integer(v));
                        break;
                }
                case OPT_ULIMIT:
                        r = add_ulimit(hc, optarg, reterr);
                        break;
                case OPT_DEVICE:
                        r = add_device(hc, optarg, reterr);
                        break;
                case OPT_SYSCTL: {
                        const char *eq = strchr(optarg, '=');
                        if (!eq)
                                r = need(reterr, verb, "--sysctl", optarg, "sysctl must be in the format KEY=VALUE");
                        else
                                r = map_set(hc, "Sysctls", optarg, (size_t) (eq - optarg), eq + 1);
                        break;
                }
                case OPT_SHM_SIZE:
                        r = set_ram(hc, "ShmSize", "--shm-size", optarg, false, reterr);
                        break;
                case OPT_GROUP_ADD:
                        r = array_add(hc, "GroupAdd", optarg);
                        break;
                case OPT_HEALTH_CMD:
                        health = health ? health : json_object();
                        r = json_object_set_new(health, "Test", json_pack("[s,s]", "CMD-SHELL", optarg));
                        break;
                case OPT_HEALTH_INTERVAL:
                case OPT_HEALTH_TIMEOUT:
                case OPT_HEALTH_START_PERIOD:
                        health = health ? health : json_object();
                        r = set_duration(health,
                                         c == OPT_HEALTH_INTERVAL  ? "Interval"
                                         : c == OPT_HEALTH_TIMEOUT ? "Timeout"
                                                                   : "StartPeriod",
                                         argv[optind - 1], optarg, reterr);
                        break;
                case OPT_HEALTH_RETRIES: {
                        int v;
                        health = health ? health : json_object();
                        if (safe_atoi(optarg, &v) < 0)
                                r = need(reterr, verb, "--health-retries", optarg, "invalid syntax");
                        else
                                r = json_object_set_new(health, "Retries", json_integer(v));
                        break;
                }
                case OPT_NO_HEALTHCHECK:
                        no_health = true;
                        break;
                case OPT_LOG_OPT: {
                        const char *eq = strchr(optarg, '=');
                        json_t *lc = json_object_get(hc, "LogConfig");
                        if (!eq) {
                                r = need(reterr, verb, "--log-opt", optarg, "invalid key-value pair");
                                break;
                        }
                        if (!lc) {
                                lc = json_pack("{s:s,s:{}}", "Type", "", "Config");
                                json_object_set_new(hc, "LogConfig", lc);
                        }
                        r = map_set(lc, "Config", optarg, (size_t) (eq - optarg), eq + 1);
                        break;
                }
                case OPT_LOG_DRIVER: {
                        json_t *lc = json_object_get(hc, "LogConfig");
                        if (!lc) {
                                lc = json_pack("{s:s,s:{}}", "Type", "", "Config");
                                json_object_set_new(hc, "LogConfig", lc);
                        }
                        r = json_object_set_new(lc, "Type", json_string(optarg));
                        break;
                }
                case OPT_PLATFORM:
                        o->platform = optarg;
                        break;
                case OPT_SIG_PROXY:
                        if (!run)
                                return cli_bad_option(verb, argv[optind - 1], reterr);
                        o->sig_proxy = !optarg || streq(optarg, "true") || streq(optarg, "1");
                        break;
                case OPT_DETACH_KEYS:
                        o->detach_keys = optarg;
                        break;
                case OPT_PULL:
                        if (!streq(optarg, "never") && !streq(optarg, "missing"))
                                r = moat_error_setx(reterr, -EOPNOTSUPP, "--pull %s: moat does not pull images yet",
                                                    optarg);
                        break;
                case ':':
                        return moat_error_setx(reterr, -EINVAL, "flag needs an argument: %s", argv[optind - 1]);
                default:
                        return moat_error_setx(reterr, -EINVAL, "unknown flag: %s (moat %s)",
                                               argv[optind - 1], verb);
                }
        }
        if (r < 0) /* json_* calls fail only without memory and set no message */
                return *reterr ? r : moat_error_set(reterr, -ENOMEM, "%s", verb);
        if (optind >= argc)
                return moat_error_setx(reterr, -EINVAL, "'moat %s' requires at least 1 argument.", verb);
        if (no_health) {
                if (health)
                        return moat_error_setx(reterr, -EINVAL, "--no-healthcheck conflicts with --health-* options");
                health = json_pack("{s:[s]}", "Test", "NONE");
        }
        if (health)
                json_object_set_new(cfg, "Healthcheck", health);
        o->image = argv[optind];
        json_object_set_new(cfg, "Image", json_string(o->image));
        if (optind + 1 < argc) {
                json_t *cmd = json_array();
                for (int i = optind + 1; i < argc; i++)
                        json_array_append_new(cmd, json_string(argv[i]));
                json_object_set_new(cfg, "Cmd", cmd);
        }
        if (entrypoint_set)
                json_object_set_new(cfg, "Entrypoint", json_pack("[s]", entrypoint));

        bool attach = run && !o->detach;
        json_object_set_new(cfg, "AttachStdin", json_boolean(attach && o->interactive));
        json_object_set_new(cfg, "AttachStdout", json_boolean(!run || attach));
        json_object_set_new(cfg, "AttachStderr", json_boolean(!run || attach));
        json_object_set_new(cfg, "Tty", json_boolean(o->tty));
        json_object_set_new(cfg, "OpenStdin", json_boolean(o->interactive));
        json_object_set_new(cfg, "StdinOnce", json_boolean(attach && o->interactive));
        if (!json_object_get(hc, "NetworkMode"))
                json_object_set_new(hc, "NetworkMode", json_string("default"));
        json_object_set_new(hc, "AutoRemove", json_boolean(o->rm));
        if (o->tty) {
                unsigned rows, cols;
                cli_console_size(STDOUT_FILENO, &rows, &cols);
                json_object_set_new(hc, "ConsoleSize", json_pack("[i,i]", (int) rows, (int) cols));
        }
        return 0;
}

int cli_container_create(struct moat_client *client, const struct cli_container_opts *o, bool start, char **ret_id,
                         bool *ret_started, struct moat_error **reterr)
{
        _cleanup_free_ char *target = NULL, *name = NULL, *platform = NULL;
        _cleanup_json_ json_t *body = json_deep_copy(o->config), *reply = NULL;
        json_t *warnings;
        size_t i;
        int r;

        if (!body || (o->name && !(name = moat_client_escape(o->name))) ||
            (o->platform && !(platform = moat_client_escape(o->platform))))
                return moat_error_set(reterr, -ENOMEM, "create");
        json_object_set(body, "HostConfig", o->host_config);
        const char *mode = json_string_value(json_object_get(o->host_config, "NetworkMode"));
        json_object_set_new(body, "NetworkingConfig",
                            json_pack("{s:{s:{}}}", "EndpointsConfig", mode && !startswith(mode, "container:") ? mode
                                                                                                             : "default"));
        if (ret_started)
                *ret_started = false;
        if (asprintf(&target, "/containers/create?name=%s%s%s%s", name ? name : "", platform ? "&platform=" : "",
                     platform ? platform : "", start ? "&start=1" : "") < 0)
                return moat_error_set(reterr, -ENOMEM, "create");
        r = moat_client_call(client, "POST", target, body, NULL, &reply, reterr);
        if (r < 0)
                return r;
        const char *id = json_string_value(json_object_get(reply, "Id"));
        if (!id)
                return moat_error_setx(reterr, -EPROTO, "create: the daemon's reply has no Id");
        json_t *w;
        warnings = json_object_get(reply, "Warnings");
        json_array_foreach(warnings, i, w)
                if (json_is_string(w))
                        fprintf(stderr, "WARNING: %s\n", json_string_value(w));
        if (ret_started)
                *ret_started = start && json_is_true(json_object_get(reply, "Started"));
        *ret_id = strdup(id);
        return *ret_id ? 0 : moat_error_set(reterr, -ENOMEM, "create");
}

int cmd_create(struct moat_cli *cli, int argc, char **argv, struct moat_error **reterr)
{
        _cleanup_(cli_container_opts_clear) struct cli_container_opts o = {};
        _cleanup_client_ struct moat_client *client = NULL;
        _cleanup_free_ char *id = NULL;
        int r;

        cli->error_exit = 125;
        r = cli_container_opts_parse("create", false, argc, argv, &o, reterr);
        if (r < 0)
                return r;
        r = cli_client(cli, &client, reterr);
        if (r < 0)
                return r;
        r = cli_container_create(client, &o, false, &id, NULL, reterr);
        if (r < 0)
                return r;
        printf("%s\n", id);
        return 0;
}
