/* SPDX-License-Identifier: Apache-2.0 */
#include "base/compat.h"

/*
 * GET/HEAD /_ping, GET /version and GET /info with moby's field names and
 * headers (the docker CLI's version and info templates read them; see
 * shared/research/engine.md 1.1). /info describes this host as it is: the
 * cgroup features are read from the cgroup filesystems each time, the
 * kernel from uname, the distribution from os-release; nothing is
 * claimed that moat does not do (no swarm, no registry configuration,
 * no init binary, security options only for what containers get).
 */

#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <sys/statfs.h>
#include <sys/sysinfo.h>
#include <sys/utsname.h>
#include <time.h>
#include <unistd.h>
#include <linux/magic.h>

#include "api/system.h"
#include "base/cleanup.h"
#include "base/fileio.h"
#include "moat-config.h"
#include "vcs-commit.h"
#include "vcs-time.h"

#define GO_VERSION "n/a (moat is written in C)"

const char *moat_api_go_arch(void)
{
        struct utsname u;
        if (uname(&u) < 0)
                return "unknown";
        static const struct {
                const char *machine, *go;
        } map[] = {
                { "x86_64", "amd64" }, { "aarch64", "arm64" }, { "i686", "386" }, { "i386", "386" },
                { "armv7l", "arm" },   { "ppc64le", "ppc64le" }, { "s390x", "s390x" }, { "riscv64", "riscv64" },
        };
        for (size_t i = 0; i < ELEMENTSOF(map); i++)
                if (streq(u.machine, map[i].machine))
                        return map[i].go;
        return "unknown";
}

static struct moat_http_response *with_ping_headers(struct moat_http_response *resp)
{
        if (resp && (moat_http_response_add_header(resp, "Cache-Control", "no-cache, no-store, must-revalidate") < 0 ||
                     moat_http_response_add_header(resp, "Pragma", "no-cache") < 0 ||
                     moat_http_response_add_header(resp, "Swarm", "inactive") < 0)) {
                moat_http_response_free(resp);
                return NULL;
        }
        return resp;
}

static struct moat_http_response *ping(struct moat_http_request *req, void *userdata)
{
        struct moat_http_response *resp;
        if (streq(moat_http_request_method(req), "HEAD")) {
                resp = moat_http_response_bytes(200, "text/plain; charset=utf-8", NULL, 0);
        } else {
                char *ok = strdup("OK");
                resp = ok ? moat_http_response_bytes(200, "text/plain; charset=utf-8", ok, 2) : NULL;
        }
        return with_ping_headers(resp);
}

static char *kernel_version(void)
{
        struct utsname u;
        if (uname(&u) < 0)
                return strdup("");
        return strdup(u.release);
}

static struct moat_http_response *version(struct moat_http_request *req, void *userdata)
{
        _cleanup_free_ char *kernel = kernel_version();
        const char *arch = moat_api_go_arch();
        json_t *details = json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s}",
                                    "ApiVersion", MOAT_API_VERSION,
                                    "Arch", arch,
                                    "BuildTime", MOAT_BUILD_TIME,
                                    "Experimental", "false",
                                    "GitCommit", MOAT_GIT_COMMIT,
                                    "GoVersion", GO_VERSION,
                                    "KernelVersion", kernel ? kernel : "",
                                    "MinAPIVersion", MOAT_API_MIN_VERSION,
                                    "Os", "linux");
        json_t *body = json_pack("{s:{s:s}, s:[{s:s, s:s, s:o}, {s:s, s:s, s:{s:s}}],"
                                 " s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s}",
                                 "Platform", "Name", "moat",
                                 "Components",
                                 "Name", "Engine", "Version", MOAT_VERSION, "Details", details,
                                 "Name", "moat-runtime", "Version", MOAT_VERSION, "Details",
                                 "GitCommit", MOAT_GIT_COMMIT,
                                 "Version", MOAT_VERSION,
                                 "ApiVersion", MOAT_API_VERSION,
                                 "MinAPIVersion", MOAT_API_MIN_VERSION,
                                 "GitCommit", MOAT_GIT_COMMIT,
                                 "GoVersion", GO_VERSION,
                                 "Os", "linux",
                                 "Arch", arch,
                                 "KernelVersion", kernel ? kernel : "",
                                 "BuildTime", MOAT_BUILD_TIME);
        if (!body)
                return moat_http_response_error(500, "version: out of memory");
        return moat_http_response_json(200, body);
}

/* ---- /info ---- */

static bool exists(const char *path)
{
        return access(path, F_OK) == 0;
}

static bool cgroup2_unified(void)
{
        struct statfs fs;
        return statfs("/sys/fs/cgroup", &fs) == 0 && fs.f_type == CGROUP2_SUPER_MAGIC;
}

struct cgroup_features {
        bool memory, swap, kmem, cfs_period, cfs_quota, shares, cpuset, pids, oom_kill_disable;
};

static bool v2_has_controller(const char *name)
{
        _cleanup_free_ char *s = NULL;
        size_t len;
        if (read_full_file_at(AT_FDCWD, "/sys/fs/cgroup/cgroup.controllers", 4096, &s, &len) < 0)
                return false;
        for (char *save = NULL, *tok = strtok_r(s, " \n", &save); tok; tok = strtok_r(NULL, " \n", &save))
                if (streq(tok, name))
                        return true;
        return false;
}

static void cgroup_features(bool v2, struct cgroup_features *f)
{
        *f = (struct cgroup_features) {};
        if (v2) {
                f->memory = f->swap = v2_has_controller("memory");
                f->cfs_period = f->cfs_quota = f->shares = v2_has_controller("cpu");
                f->cpuset = v2_has_controller("cpuset");
                f->pids = v2_has_controller("pids");
                return;
        }
        f->memory = exists("/sys/fs/cgroup/memory/memory.limit_in_bytes");
        f->swap = exists("/sys/fs/cgroup/memory/memory.memsw.limit_in_bytes");
        f->kmem = exists("/sys/fs/cgroup/memory/memory.kmem.limit_in_bytes");
        f->oom_kill_disable = exists("/sys/fs/cgroup/memory/memory.oom_control");
        f->cfs_period = exists("/sys/fs/cgroup/cpu/cpu.cfs_period_us");
        f->cfs_quota = exists("/sys/fs/cgroup/cpu/cpu.cfs_quota_us");
        f->shares = exists("/sys/fs/cgroup/cpu/cpu.shares");
        f->cpuset = exists("/sys/fs/cgroup/cpuset/cpuset.cpus");
        /* The root of the hierarchy has no pids.max; the controller is mounted or not. */
        f->pids = exists("/sys/fs/cgroup/pids/cgroup.procs");
}

static char *os_pretty_name(void)
{
        _cleanup_free_ char *s = NULL;
        size_t len;
        if (read_full_file_at(AT_FDCWD, "/etc/os-release", 64 * 1024, &s, &len) < 0 &&
            read_full_file_at(AT_FDCWD, "/usr/lib/os-release", 64 * 1024, &s, &len) < 0)
                return strdup("Linux");
        for (char *save = NULL, *line = strtok_r(s, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
                if (!startswith(line, "PRETTY_NAME="))
                        continue;
                char *v = line + strlen("PRETTY_NAME=");
                size_t l = strlen(v);
                if (l >= 2 && (v[0] == '"' || v[0] == '\'') && v[l - 1] == v[0]) {
                        v[l - 1] = '\0';
                        v++;
                }
                return strdup(v);
        }
        return strdup("Linux");
}

static const char *fs_name(const char *path)
{
        struct statfs fs;
        if (statfs(path, &fs) < 0)
                return "unknown";
        switch ((unsigned long) fs.f_type) {
        case EXT4_SUPER_MAGIC:
                return "extfs";
        case XFS_SUPER_MAGIC:
                return "xfs";
        case BTRFS_SUPER_MAGIC:
                return "btrfs";
        case TMPFS_MAGIC:
                return "tmpfs";
        case OVERLAYFS_SUPER_MAGIC:
                return "overlayfs";
        case 0x2fc12fc1: /* ZFS */
                return "zfs";
        default:
                return "unknown";
        }
}

static int64_t count_dir(const char *path)
{
        _cleanup_closedir_ DIR *d = opendir(path);
        int64_t n = 0;
        if (!d)
                return -1;
        for (struct dirent *de; (de = readdir(d));)
                if (de->d_name[0] != '.')
                        n++;
        return n;
}

static int64_t thread_count(void)
{
        return count_dir("/proc/self/task");
}

static bool seccomp_available(void)
{
        _cleanup_free_ char *s = NULL;
        size_t len;
        return read_full_file_at(AT_FDCWD, "/proc/self/status", 64 * 1024, &s, &len) >= 0 && strstr(s, "\nSeccomp:");
}

static struct moat_http_response *info(struct moat_http_request *req, void *userdata)
{
        struct moat_api_system *sys = userdata;
        struct moat_api_counts counts = {};
        _cleanup_error_ struct moat_error *err = NULL;

        if (sys->ops.counts) {
                int r = sys->ops.counts(sys->ops.userdata, &counts, &err);
                if (r < 0)
                        return moat_http_response_from_error(r, err);
        }

        bool v2 = cgroup2_unified();
        struct cgroup_features cg;
        cgroup_features(v2, &cg);
        _cleanup_free_ char *kernel = kernel_version();
        _cleanup_free_ char *os = os_pretty_name();
        char host[256] = "";
        if (gethostname(host, sizeof(host) - 1) < 0)
                host[0] = '\0';
        struct utsname uts;
        struct sysinfo si = {};
        (void) sysinfo(&si);
        struct timespec ts;
        struct tm tm;
        char when[80];
        clock_gettime(CLOCK_REALTIME, &ts);
        gmtime_r(&ts.tv_sec, &tm);
        size_t wl = strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%S", &tm);
        snprintf(when + wl, sizeof(when) - wl, ".%09ldZ", ts.tv_nsec);

        json_t *warnings = json_array();
        if (!cg.memory)
                json_array_append_new(warnings, json_string("WARNING: No memory limit support"));
        if (!cg.swap)
                json_array_append_new(warnings, json_string("WARNING: No swap limit support"));
        if (!cg.cfs_quota || !cg.cfs_period)
                json_array_append_new(warnings, json_string("WARNING: No cpu cfs quota/period support"));
        if (!cg.shares)
                json_array_append_new(warnings, json_string("WARNING: No cpu shares support"));
        if (!cg.cpuset)
                json_array_append_new(warnings, json_string("WARNING: No cpuset support"));
        if (!cg.pids)
                json_array_append_new(warnings, json_string("WARNING: No pids limit support"));

        json_t *secopts = json_array();
        if (seccomp_available())
                json_array_append_new(secopts, json_string("name=seccomp,profile=default"));

        json_t *runtimes = json_pack("{s:{s:s}}", "moat-runtime", "path", sys->runtime_path);

        json_t *body = json_object();
        if (!body || !warnings || !secopts || !runtimes) {
                json_decref(body);
                json_decref(warnings);
                json_decref(secopts);
                json_decref(runtimes);
                return moat_http_response_error(500, "info: out of memory");
        }
        /* Grouped as moby's system.Info is. */
        int r = 0;
        r |= json_object_set_new(body, "ID", json_string(sys->engine_id));
        r |= json_object_set_new(body, "Containers", json_integer(counts.containers));
        r |= json_object_set_new(body, "ContainersRunning", json_integer(counts.running));
        r |= json_object_set_new(body, "ContainersPaused", json_integer(counts.paused));
        r |= json_object_set_new(body, "ContainersStopped", json_integer(counts.stopped));
        r |= json_object_set_new(body, "Images", json_integer(counts.images));
        r |= json_object_set_new(body, "Driver", json_string("overlay"));
        r |= json_object_set_new(body, "DriverStatus",
                                 json_pack("[[s,s]]", "Backing Filesystem", fs_name(sys->data_root)));
        r |= json_object_set_new(body, "Plugins",
                                 json_pack("{s:[s], s:[s,s], s:n, s:[]}", "Volume", "local", "Network", "host",
                                           "none", "Authorization", "Log"));
        r |= json_object_set_new(body, "MemoryLimit", json_boolean(cg.memory));
        r |= json_object_set_new(body, "SwapLimit", json_boolean(cg.swap));
        r |= json_object_set_new(body, "KernelMemory", json_boolean(cg.kmem));
        r |= json_object_set_new(body, "KernelMemoryTCP", json_false());
        r |= json_object_set_new(body, "CpuCfsPeriod", json_boolean(cg.cfs_period));
        r |= json_object_set_new(body, "CpuCfsQuota", json_boolean(cg.cfs_quota));
        r |= json_object_set_new(body, "CPUShares", json_boolean(cg.shares));
        r |= json_object_set_new(body, "CPUSet", json_boolean(cg.cpuset));
        r |= json_object_set_new(body, "PidsLimit", json_boolean(cg.pids));
        r |= json_object_set_new(body, "IPv4Forwarding", json_false());
        r |= json_object_set_new(body, "OomKillDisable", json_boolean(cg.oom_kill_disable));
        r |= json_object_set_new(body, "Debug", json_boolean(atomic_load(&sys->debug)));
        r |= json_object_set_new(body, "NFd", json_integer(count_dir("/proc/self/fd")));
        /* moat has threads, not goroutines: the daemon's thread count. */
        r |= json_object_set_new(body, "NGoroutines", json_integer(thread_count()));
        r |= json_object_set_new(body, "SystemTime", json_string(when));
        r |= json_object_set_new(body, "NEventsListener", json_integer(0));
        r |= json_object_set_new(body, "KernelVersion", json_string(kernel ? kernel : ""));
        r |= json_object_set_new(body, "OperatingSystem", json_string(os ? os : "Linux"));
        r |= json_object_set_new(body, "OSVersion", json_string(""));
        r |= json_object_set_new(body, "OSType", json_string("linux"));
        r |= json_object_set_new(body, "Architecture", json_string(uname(&uts) == 0 ? uts.machine : ""));
        r |= json_object_set_new(body, "NCPU", json_integer(sysconf(_SC_NPROCESSORS_ONLN)));
        r |= json_object_set_new(body, "MemTotal", json_integer((json_int_t) si.totalram * si.mem_unit));
        r |= json_object_set_new(body, "IndexServerAddress", json_string("https://index.docker.io/v1/"));
        r |= json_object_set_new(body, "GenericResources", json_null());
        r |= json_object_set_new(body, "DockerRootDir", json_string(sys->data_root));
        r |= json_object_set_new(body, "HttpProxy", json_string(""));
        r |= json_object_set_new(body, "HttpsProxy", json_string(""));
        r |= json_object_set_new(body, "NoProxy", json_string(""));
        r |= json_object_set_new(body, "Name", json_string(host));
        r |= json_object_set_new(body, "Labels", json_array());
        r |= json_object_set_new(body, "ExperimentalBuild", json_false());
        r |= json_object_set_new(body, "ServerVersion", json_string(MOAT_VERSION));
        r |= json_object_set_new(body, "Runtimes", runtimes);
        r |= json_object_set_new(body, "DefaultRuntime", json_string("moat-runtime"));
        r |= json_object_set_new(body, "Swarm",
                                 json_pack("{s:s, s:s, s:s, s:b, s:s, s:n}", "NodeID", "", "NodeAddr", "",
                                           "LocalNodeState", "inactive", "ControlAvailable", 0, "Error", "",
                                           "RemoteManagers"));
        r |= json_object_set_new(body, "LiveRestoreEnabled", json_true());
        r |= json_object_set_new(body, "Isolation", json_string(""));
        r |= json_object_set_new(body, "InitBinary", json_string(""));
        r |= json_object_set_new(body, "ContainerdCommit", json_pack("{s:s}", "ID", ""));
        r |= json_object_set_new(body, "RuncCommit", json_pack("{s:s}", "ID", MOAT_GIT_COMMIT));
        r |= json_object_set_new(body, "InitCommit", json_pack("{s:s}", "ID", ""));
        r |= json_object_set_new(body, "SecurityOptions", secopts);
        r |= json_object_set_new(body, "CgroupDriver", json_string("cgroupfs"));
        r |= json_object_set_new(body, "CgroupVersion", json_string(v2 ? "2" : "1"));
        r |= json_object_set_new(body, "CDISpecDirs", json_array());
        r |= json_object_set_new(body, "Warnings", warnings);
        if (r != 0) {
                json_decref(body);
                return moat_http_response_error(500, "info: out of memory");
        }
        return moat_http_response_json(200, body);
}

/* The prunes of what moat does not have yet: user-defined networks (the
 * networking issue) and a build cache (moat has no builder). Each deletes
 * nothing because there is nothing, which is what `docker system prune`
 * must hear (it calls both). A malformed filters parameter is still a 400. */
static struct moat_http_response *prune_nothing(struct moat_http_request *req, void *userdata)
{
        const char *text = moat_http_request_query(req, "filters");
        json_error_t jerr;

        if (text && *text) {
                json_t *filters = json_loads(text, 0, &jerr);
                bool ok = json_is_object(filters);
                json_decref(filters);
                if (!ok)
                        return moat_http_response_error(400, "invalid filters: %s", jerr.text);
        }
        if (streq((const char *) userdata, "networks"))
                return moat_http_response_json(200, json_pack("{s:[]}", "NetworksDeleted"));
        return moat_http_response_json(200, json_pack("{s:[], s:i}", "CachesDeleted", "SpaceReclaimed", 0));
}

int moat_api_register_system(struct moat_http_router *r, struct moat_api_system *sys, struct moat_error **reterr)
{
        int k;
        if ((k = moat_http_router_add(r, "GET", "/_ping", ping, sys, NULL, reterr)) < 0 ||
            (k = moat_http_router_add(r, "HEAD", "/_ping", ping, sys, NULL, reterr)) < 0 ||
            (k = moat_http_router_add(r, "GET", "/version", version, sys, NULL, reterr)) < 0 ||
            (k = moat_http_router_add(r, "GET", "/info", info, sys, NULL, reterr)) < 0 ||
            (k = moat_http_router_add(r, "POST", "/networks/prune", prune_nothing, (void *) "networks", NULL,
                                      reterr)) < 0 ||
            (k = moat_http_router_add(r, "POST", "/build/prune", prune_nothing, (void *) "build", NULL, reterr)) < 0)
                return k;
        return 0;
}
