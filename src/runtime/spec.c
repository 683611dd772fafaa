/* SPDX-License-Identifier: Apache-2.0 */
#include "base/compat.h"

/*
 * The default config.json written by `spec`: the same shape as runc's, so
 * tools and tutorials that start from `runc spec` work unchanged. The
 * rootless variant maps the caller's ids to root in a user namespace and
 * swaps the mounts a user namespace cannot make (sysfs, devpts gid=5).
 * The hardened variant is the default with moat's own default security
 * (runtime/seccomp.h): the engine's defaults, written out for people who
 * drive the runtime directly.
 */

#include <unistd.h>

#include <jansson.h>

#include "runtime/runtime.h"
#include "runtime/seccomp.h"

static json_t *mount_entry(const char *dest, const char *type, const char *source, const char *const *options)
{
        json_t *opts = json_array();
        for (const char *const *o = options; *o; o++)
                json_array_append_new(opts, json_string(*o));
        return json_pack("{s:s, s:s, s:s, s:o}", "destination", dest, "type", type, "source", source, "options",
                         opts);
}

static json_t *string_array(const char *const *v)
{
        json_t *a = json_array();
        for (; *v; v++)
                json_array_append_new(a, json_string(*v));
        return a;
}

static json_t *default_doc(bool rootless)
{
        static const char *const caps[] = { "CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE", NULL };
        static const char *const masked[] = {
                "/proc/acpi",          "/proc/asound",        "/proc/kcore",          "/proc/keys",
                "/proc/latency_stats", "/proc/timer_list",    "/proc/timer_stats",    "/proc/sched_debug",
                "/proc/scsi",          "/sys/firmware",       "/sys/devices/virtual/powercap", NULL,
        };
        static const char *const readonly[] = {
                "/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger", NULL,
        };

        json_t *mounts = json_array();
        json_array_append_new(mounts, mount_entry("/proc", "proc", "proc", (const char *const[]){ NULL }));
        json_array_append_new(mounts, mount_entry("/dev", "tmpfs", "tmpfs",
                                                  (const char *const[]){ "nosuid", "strictatime", "mode=755",
                                                                         "size=65536k", NULL }));
        if (rootless)
                json_array_append_new(mounts, mount_entry("/dev/pts", "devpts", "devpts",
                                                          (const char *const[]){ "nosuid", "noexec", "newinstance",
                                                                                 "ptmxmode=0666", "mode=0620", NULL }));
        else
                json_array_append_new(mounts, mount_entry("/dev/pts", "devpts", "devpts",
                                                          (const char *const[]){ "nosuid", "noexec", "newinstance",
                                                                                 "ptmxmode=0666", "mode=0620", "gid=5",
                                                                                 NULL }));
        json_array_append_new(mounts, mount_entry("/dev/shm", "tmpfs", "shm",
                                                  (const char *const[]){ "nosuid", "noexec", "nodev", "mode=1777",
                                                                         "size=65536k", NULL }));
        json_array_append_new(mounts, mount_entry("/dev/mqueue", "mqueue", "mqueue",
                                                  (const char *const[]){ "nosuid", "noexec", "nodev", NULL }));
        if (rootless)
                json_array_append_new(mounts, mount_entry("/sys", "none", "/sys",
                                                          (const char *const[]){ "rbind", "nosuid", "noexec", "nodev",
                                                                                 "ro", NULL }));
        else {
                json_array_append_new(mounts, mount_entry("/sys", "sysfs", "sysfs",
                                                          (const char *const[]){ "nosuid", "noexec", "nodev", "ro",
                                                                                 NULL }));
                json_array_append_new(mounts, mount_entry("/sys/fs/cgroup", "cgroup", "cgroup",
                                                          (const char *const[]){ "nosuid", "noexec", "nodev",
                                                                                 "relatime", "ro", NULL }));
        }

        json_t *namespaces = json_array();
        static const char *const ns_root[] = { "pid", "network", "ipc", "uts", "mount", "cgroup", NULL };
        static const char *const ns_rootless[] = { "pid", "ipc", "uts", "mount", "cgroup", "user", NULL };
        for (const char *const *n = rootless ? ns_rootless : ns_root; *n; n++)
                json_array_append_new(namespaces, json_pack("{s:s}", "type", *n));

        json_t *linux_ = json_pack("{s:o, s:o, s:o}", "namespaces", namespaces, "maskedPaths", string_array(masked),
                                   "readonlyPaths", string_array(readonly));
        if (rootless) {
                json_object_set_new(linux_, "uidMappings",
                                    json_pack("[{s:i, s:I, s:i}]", "containerID", 0, "hostID",
                                              (json_int_t) geteuid(), "size", 1));
                json_object_set_new(linux_, "gidMappings",
                                    json_pack("[{s:i, s:I, s:i}]", "containerID", 0, "hostID",
                                              (json_int_t) getegid(), "size", 1));
        } else
                json_object_set_new(linux_, "resources",
                                    json_pack("{s:[{s:b, s:s}]}", "devices", "allow", 0, "access", "rwm"));

        json_t *doc = json_pack(
                "{s:s, s:{s:b, s:{s:i, s:i}, s:[s], s:[s, s], s:s, s:{s:o, s:o, s:o}, s:[{s:s, s:i, s:i}], s:b},"
                " s:{s:s, s:b}, s:s, s:o, s:o}",
                "ociVersion", MOAT_OCI_VERSION, "process", "terminal", 1, "user", "uid", 0, "gid", 0, "args", "sh",
                "env", "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "TERM=xterm", "cwd",
                "/", "capabilities", "bounding", string_array(caps), "effective", string_array(caps), "permitted",
                string_array(caps), "rlimits", "type", "RLIMIT_NOFILE", "hard", 1024, "soft", 1024,
                "noNewPrivileges", 1, "root", "path", "rootfs", "readonly", 1, "hostname", "moat", "mounts", mounts,
                "linux", linux_);
        return doc;
}

static int dump_doc(json_t *doc, char **ret_json, struct moat_error **reterr)
{
        *ret_json = json_dumps(doc, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
        json_decref(doc);
        if (!*ret_json)
                return moat_error_set(reterr, ENOMEM, "encoding the default configuration");
        size_t len = strlen(*ret_json);
        char *with_nl = realloc(*ret_json, len + 2);
        if (!with_nl)
                return -ENOMEM;
        with_nl[len] = '\n';
        with_nl[len + 1] = '\0';
        *ret_json = with_nl;
        return 0;
}

int moat_spec_default(bool rootless, char **ret_json, struct moat_error **reterr)
{
        json_t *doc = default_doc(rootless);
        if (!doc)
                return moat_error_set(reterr, ENOMEM, "building the default configuration");
        return dump_doc(doc, ret_json, reterr);
}

int moat_spec_hardened(char **ret_json, struct moat_error **reterr)
{
        json_t *doc = default_doc(false);
        json_t *profile = NULL;
        if (!doc || moat_seccomp_default_profile(moat_default_capability_mask(), &profile) < 0) {
                json_decref(doc);
                return moat_error_set(reterr, ENOMEM, "building the hardened configuration");
        }

        json_t *process = json_object_get(doc, "process");
        json_object_set_new(process, "terminal", json_false());
        json_object_set_new(process, "capabilities",
                            json_pack("{s:o, s:o, s:o}", "bounding", string_array(moat_default_capabilities),
                                      "effective", string_array(moat_default_capabilities), "permitted",
                                      string_array(moat_default_capabilities)));
        json_object_set_new(process, "noNewPrivileges", json_true());

        /* ping without CAP_NET_RAW (ICMP datagram sockets): the container
         * has its own network namespace, so the range is its own. */
        json_t *linux_ = json_object_get(doc, "linux");
        json_object_set_new(linux_, "sysctl", json_pack("{s:s}", "net.ipv4.ping_group_range", "0 2147483647"));
        json_object_set_new(json_object_get(linux_, "resources"), "pids", json_pack("{s:i}", "limit", 2048));
        json_object_set_new(linux_, "seccomp", profile);
        return dump_doc(doc, ret_json, reterr);
}
