/* SPDX-License-Identifier: Apache-2.0 */
#include "base/compat.h"

/*
 * Unit tests of the config.json parser: the runtime-spec's own good and bad
 * examples, one inline document per validation rule with the exact message
 * it must produce, and the converted values of a full example.
 */

#include <dirent.h>
#include <fcntl.h>
#include <linux/capability.h>
#include <sched.h>
#include <stdio.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/cleanup.h"
#include "base/fileio.h"
#include "oci/runtime-spec.h"
#include "tap.h"

/* Inline documents are written with ' for " to stay readable. */
#define BASE "'ociVersion': '1.0.0', 'root': {'path': 'rootfs'}"
#define PROC "'process': {'args': ['sh'], 'cwd': '/'"
#define CFG(...) "{" BASE ", " __VA_ARGS__ "}"

static char *unquote(const char *s)
{
        char *d = strdup(s);
        if (!d)
                abort();
        for (char *p = d; *p; p++)
                if (*p == '\'')
                        *p = '"';
        return d;
}

static struct oci_config *parse_ok(const char *doc, const char *what)
{
        _cleanup_free_ char *json = unquote(doc);
        _cleanup_error_ struct moat_error *err = NULL;
        struct oci_config *c = NULL;

        int r = oci_config_parse(json, strlen(json), &c, &err);
        ok(r == 0 && c, "parses: %s", what);
        if (r < 0)
                printf("#   error: %s\n", err ? err->msg : "(none)");
        return c;
}

static void parse_fails(const char *doc, const char *want)
{
        _cleanup_free_ char *json = unquote(doc);
        _cleanup_error_ struct moat_error *err = NULL;
        struct oci_config *c = NULL;

        int r = oci_config_parse(json, strlen(json), &c, &err);
        if (r == 0)
                oci_config_free(c);
        ok(r == -EINVAL && !c, "rejected: %s", want);
        is_str(err ? err->msg : NULL, want, "message: %s", want);
}

/* For messages that list a long enum: check both ends. */
static void parse_fails_like(const char *doc, const char *prefix, const char *suffix)
{
        _cleanup_free_ char *json = unquote(doc);
        _cleanup_error_ struct moat_error *err = NULL;
        struct oci_config *c = NULL;

        int r = oci_config_parse(json, strlen(json), &c, &err);
        if (r == 0)
                oci_config_free(c);
        const char *m = err ? err->msg : "";
        size_t lm = strlen(m), ls = strlen(suffix);
        ok(r == -EINVAL && startswith(m, prefix) && lm >= ls && streq(m + lm - ls, suffix), "rejected: %s...%s", prefix,
           suffix);
        if (r != -EINVAL || !startswith(m, prefix))
                printf("#   got '%s'\n", m);
}

/* ---- the runtime-spec's examples ---- */

static char *find_examples_dir(void)
{
        const char *env = getenv("MOAT_SPEC_DIR");
        const char *root = getenv("MOAT_SOURCE_ROOT");
        char *p = NULL;
        struct stat st;

        if (env && asprintf(&p, "%s/runtime-spec-v1.3.0/test/config", env) >= 0 && stat(p, &st) == 0)
                return p;
        free(p);
        p = NULL;
        if (root && asprintf(&p, "%s/../shared/spec/runtime-spec-v1.3.0/test/config", root) >= 0 && stat(p, &st) == 0)
                return p;
        free(p);
        return NULL;
}

static const struct {
        const char *file;
        const char *msg;
} bad_examples[] = {
        { "invalid-json.json", "invalid-json.json: invalid JSON at line 1, column 2: string or '}' expected near ']'" },
        { "linux-hugepage.json",
          "linux-hugepage.json: linux.resources.hugepageLimits[0].pageSize: must be a page size like \"2MB\", got \"64kB\"" },
        { "linux-netdevice.json", "linux-netdevice.json: linux.netDevices.eth0.name: must be a string" },
        { "linux-rdma.json", "linux-rdma.json: linux.resources.rdma.mlx5_1.hcaHandles: must be an integer" },
};

static void test_examples(const char *dir)
{
        _cleanup_free_ char *good = NULL, *bad = NULL;
        size_t n_good = 0, n_bad = 0;

        if (asprintf(&good, "%s/good", dir) < 0 || asprintf(&bad, "%s/bad", dir) < 0)
                abort();

        _cleanup_closedir_ DIR *d = opendir(good);
        ok(d != NULL, "open %s", good);
        for (struct dirent *de; d && (de = readdir(d));) {
                _cleanup_oci_config_ struct oci_config *c = NULL;
                _cleanup_error_ struct moat_error *err = NULL;

                if (de->d_name[0] == '.')
                        continue;
                int r = oci_config_load_at(dirfd(d), de->d_name, &c, &err);
                ok(r == 0, "good example %s parses", de->d_name);
                if (r < 0)
                        printf("#   error: %s\n", err ? err->msg : "(none)");
                n_good++;
        }
        ok(n_good >= 5, "found %zu good examples", n_good);

        _cleanup_closedir_ DIR *b = opendir(bad);
        ok(b != NULL, "open %s", bad);
        for (struct dirent *de; b && (de = readdir(b));) {
                _cleanup_oci_config_ struct oci_config *c = NULL;
                _cleanup_error_ struct moat_error *err = NULL;
                const char *want = NULL;

                if (de->d_name[0] == '.')
                        continue;
                for (size_t i = 0; i < ELEMENTSOF(bad_examples); i++)
                        if (streq(bad_examples[i].file, de->d_name))
                                want = bad_examples[i].msg;
                int r = oci_config_load_at(dirfd(b), de->d_name, &c, &err);
                ok(r == -EINVAL, "bad example %s is rejected", de->d_name);
                if (want)
                        is_str(err ? err->msg : NULL, want, "bad example %s: reason", de->d_name);
                else
                        printf("# no expected message for %s: %s\n", de->d_name, err ? err->msg : "(none)");
                n_bad++;
        }
        ok(n_bad >= 4, "found %zu bad examples", n_bad);
}

/* ---- converted values ---- */

static void test_spec_example(const char *dir)
{
        _cleanup_free_ char *path = NULL;
        _cleanup_oci_config_ struct oci_config *c = NULL;
        _cleanup_error_ struct moat_error *err = NULL;

        if (asprintf(&path, "%s/good/spec-example.json", dir) < 0)
                abort();
        int r = oci_config_load_at(AT_FDCWD, path, &c, &err);
        ok(r == 0, "spec-example.json parses");
        if (r < 0)
                return;

        is_str(c->oci_version, "0.5.0-dev", "ociVersion");
        is_str(c->root.path, "rootfs", "root.path");
        ok(c->root.readonly, "root.readonly");
        ok(c->has_process && c->process.terminal, "process.terminal");
        is_int(c->process.user.uid, 1, "user.uid");
        is_int(c->process.user.n_additional_gids, 2, "additionalGids count");
        is_int(c->process.user.additional_gids[1], 6, "additionalGids[1]");
        is_str(c->process.args[0], "sh", "args[0]");
        ok(c->process.args[1] == NULL, "args NULL-terminated");
        is_str(c->process.env[1], "TERM=xterm", "env[1]");
        ok(c->process.has_capabilities, "has capabilities");
        is_int(c->process.capabilities.bounding,
               (1ull << CAP_AUDIT_WRITE) | (1ull << CAP_KILL) | (1ull << CAP_NET_BIND_SERVICE), "bounding bits");
        is_int(c->process.capabilities.effective, (1ull << CAP_AUDIT_WRITE) | (1ull << CAP_KILL), "effective bits");
        is_int(c->process.capabilities.ambient, 1ull << CAP_NET_BIND_SERVICE, "ambient bits");
        is_int(c->process.n_rlimits, 2, "two rlimits");
        is_int(c->process.rlimits[0].resource, RLIMIT_CORE, "rlimits[0] is RLIMIT_CORE");
        is_int(c->process.rlimits[1].resource, RLIMIT_NOFILE, "rlimits[1] is RLIMIT_NOFILE");
        is_int(c->process.rlimits[1].hard, 1024, "rlimits[1].hard");
        ok(c->process.no_new_privileges, "noNewPrivileges");
        is_str(c->process.apparmor_profile, "acme_secure_profile", "apparmorProfile");
        is_str(c->hostname, "slartibartfast", "hostname");
        is_int(c->n_mounts, 7, "seven mounts");
        is_str(c->mounts[2].destination, "/dev/pts", "mounts[2].destination");
        is_str(c->mounts[2].options[5], "gid=5", "mounts[2].options[5]");
        ok(c->mounts[0].options == NULL, "mounts[0] has no options");
        is_int(c->hooks[OCI_HOOK_PRESTART].n_hooks, 2, "two prestart hooks");
        is_str(c->hooks[OCI_HOOK_PRESTART].hooks[0].args[2], "arg2", "prestart[0].args[2]");
        ok(!c->hooks[OCI_HOOK_PRESTART].hooks[1].has_timeout, "prestart[1] has no timeout");
        ok(c->hooks[OCI_HOOK_POSTSTART].hooks[0].has_timeout, "poststart[0] has a timeout");
        is_int(c->hooks[OCI_HOOK_POSTSTART].hooks[0].timeout, 5, "poststart[0].timeout");
        is_str(c->hooks[OCI_HOOK_POSTSTOP].hooks[0].path, "/usr/sbin/cleanup.sh", "poststop[0].path");
        is_int(c->linux_.n_namespaces, 8, "eight namespaces");
        is_int(c->linux_.namespaces[0].type, OCI_NS_PID, "namespaces[0] is pid");
        is_int(c->linux_.namespaces[7].type, OCI_NS_TIME, "namespaces[7] is time");
        ok(oci_config_find_namespace(c, OCI_NS_USER) == &c->linux_.namespaces[5], "find user namespace");
        ok(oci_config_find_namespace(c, OCI_NS_USER)->path == NULL, "user namespace is created");
        is_int(c->linux_.n_uid_mappings, 1, "one uid mapping");
        is_int(c->linux_.uid_mappings[0].host_id, 1000, "uidMappings[0].hostID");
        is_int(c->linux_.gid_mappings[0].size, 32000, "gidMappings[0].size");
        is_int(c->linux_.n_devices, 2, "two devices");
        is_int(c->linux_.devices[1].type, 'b', "devices[1].type");
        is_int(c->linux_.devices[1].major, 8, "devices[1].major");
        is_int(c->linux_.devices[0].file_mode, 438, "devices[0].fileMode");
        is_int(c->linux_.n_time_offsets, 2, "two time offsets");
        is_int(c->linux_.n_sysctl, 2, "two sysctls");
        is_str(c->linux_.rootfs_propagation, "slave", "rootfsPropagation");
        is_str(c->linux_.cgroups_path, "/myRuntime/myContainer", "cgroupsPath");
        is_str(c->linux_.masked_paths[3], "/proc/sched_debug", "maskedPaths[3]");
        json_t *jl = json_object_get(c->json, "linux");
        ok(c->linux_.resources == json_object_get(jl, "resources"), "resources is borrowed from the document");
        ok(c->linux_.seccomp == json_object_get(jl, "seccomp"), "seccomp is borrowed from the document");
        ok(c->linux_.intel_rdt == NULL, "no intelRdt");
        is_str(oci_config_annotation(c, "com.example.key2"), "value2", "annotation lookup");
        ok(oci_config_annotation(c, "nope") == NULL, "absent annotation");
}

static void test_values(void)
{
        struct oci_config *c;

        c = parse_ok(CFG(PROC ", 'rlimits': [{'type': 'RLIMIT_CORE', 'soft': 18446744073709551615, "
                             "'hard': 18446744073709551615}]}, 'annotations': {'n': '18446744073709551615'}, "
                             "'linux': {'resources': {'memory': {'swappiness': 18446744073709551615}}}"),
                     "uint64 above INT64_MAX");
        if (c) {
                uint64_t u = 0;
                is_int(c->process.rlimits[0].hard == UINT64_MAX, 1, "hard limit is 2^64-1");
                is_int(c->process.rlimits[0].soft == UINT64_MAX, 1, "soft limit is 2^64-1");
                is_str(oci_config_annotation(c, "n"), "18446744073709551615", "big number inside a string untouched");
                json_t *sw = json_object_get(json_object_get(c->linux_.resources, "memory"), "swappiness");
                ok(oci_json_uint64(sw, &u) == 0 && u == UINT64_MAX, "oci_json_uint64 reads 2^64-1 back");
                oci_config_free(c);
        }

        c = parse_ok(CFG("'hostname': null, 'linux': {'seccomp': null, 'namespaces': [{'type': 'user'}, "
                         "{'type': 'network', 'path': ''}]}"),
                     "null means absent, empty namespace path means create");
        if (c) {
                ok(c->hostname == NULL && c->linux_.seccomp == NULL, "null members are absent");
                ok(c->linux_.namespaces[1].path == NULL, "empty namespace path is NULL");
                ok(c->linux_.n_uid_mappings == 0, "user namespace without mappings allowed");
                oci_config_free(c);
        }

        c = parse_ok(CFG("'linux': {'namespaces': [{'type': 'network', 'path': '/proc/1/ns/net'}, {'type': 'ipc'}, "
                         "{'type': 'time'}], 'sysctl': {'net.ipv4.ip_forward': '1', 'kernel/shmmax': '1000', "
                         "'kernel.sem': '1'}, 'timeOffsets': {'monotonic': {'secs': -5, 'nanosecs': 7}}, "
                         "'devices': [{'path': '/dev/fifo', 'type': 'p'}], 'rootfsPropagation': 'rprivate', "
                         "'personality': {'domain': 'LINUX32'}, 'uidMappings': []}, 'mounts': [{'destination': "
                         "'relative/dir', 'uidMappings': [{'containerID': 0, 'hostID': 100000, 'size': 65536}]}]"),
                     "joined namespaces, sysctls, time offsets, fifo device, mount idmap");
        if (c) {
                is_str(c->linux_.namespaces[0].path, "/proc/1/ns/net", "namespace path kept");
                is_int(c->linux_.time_offsets[0].clock, OCI_CLOCK_MONOTONIC, "time offset clock");
                is_int(c->linux_.time_offsets[0].secs, -5, "time offset secs");
                is_int(c->linux_.time_offsets[0].nanosecs, 7, "time offset nanosecs");
                ok(!c->linux_.devices[0].has_major_minor, "fifo without major/minor");
                is_str(c->linux_.personality_domain, "LINUX32", "personality domain");
                is_int(c->mounts[0].uid_mappings[0].host_id, 100000, "mount uidMappings[0].hostID");
                ok(c->mounts[0].type == NULL && c->mounts[0].source == NULL, "mount without type/source");
                oci_config_free(c);
        }

        c = parse_ok(CFG(PROC ", 'user': {'uid': 4294967295, 'umask': 18}, 'oomScoreAdj': -1000, "
                             "'consoleSize': {'height': 25, 'width': 80}, 'scheduler': {'policy': 'SCHED_FIFO', "
                             "'priority': 10}, 'ioPriority': {'class': 'IOPRIO_CLASS_BE', 'priority': 4}, "
                             "'execCPUAffinity': {'initial': '0-3, 7'}, 'capabilities': {'bounding': "
                             "['CAP_CHECKPOINT_RESTORE', 'CAP_CHOWN']}}"),
                     "process details");
        if (c) {
                is_int(c->process.user.uid, 4294967295u, "uid max");
                ok(c->process.user.has_umask && c->process.user.umask == 18, "umask");
                is_int(c->process.oom_score_adj, -1000, "oomScoreAdj");
                ok(c->process.has_console_size && c->process.console_width == 80, "consoleSize");
                is_int(c->process.capabilities.bounding, (1ull << 40) | 1ull, "CAP_CHECKPOINT_RESTORE is bit 40");
                ok(c->process.scheduler && c->process.io_priority && c->process.exec_cpu_affinity,
                   "scheduler, ioPriority, execCPUAffinity kept");
                oci_config_free(c);
        }
}

/* ---- one document per rule ---- */

static void test_errors(void)
{
        _cleanup_free_ char *many = NULL;

        /* the document itself */
        parse_fails("{]", "invalid JSON at line 1, column 2: string or '}' expected near ']'");
        parse_fails("['ociVersion']", "invalid config: the top level must be a JSON object");
        parse_fails("{'root': {'path': 'r'}}", "ociVersion: required");
        parse_fails("{'ociVersion': 1, 'root': {'path': 'r'}}", "ociVersion: must be a string");
        parse_fails("{'ociVersion': '1.0', 'root': {'path': 'r'}}", "ociVersion: must be a version like \"1.0.0\", got \"1.0\"");
        parse_fails("{'ociVersion': '1.0.0-', 'root': {'path': 'r'}}",
                    "ociVersion: must be a version like \"1.0.0\", got \"1.0.0-\"");
        parse_fails("{'ociVersion': '2.0.0', 'root': {'path': 'r'}}",
                    "ociVersion: unsupported version \"2.0.0\" (this runtime supports 1.x)");
        parse_fails("{'ociVersion': '1.2.0'}", "root: required");
        parse_fails("{'ociVersion': '1.2.0', 'root': {}}", "root.path: required");
        parse_fails("{'ociVersion': '1.2.0', 'root': {'path': ''}}", "root.path: must not be empty");
        parse_fails("{'ociVersion': '1.2.0', 'root': {'path': 'r', 'readonly': 'yes'}}", "root.readonly: must be a boolean");

        /* process */
        parse_fails(CFG("'process': {'cwd': '/'}"), "process.args: required when process is present");
        parse_fails(CFG("'process': {'cwd': '/', 'args': []}"), "process.args: must not be empty");
        parse_fails(CFG("'process': {'cwd': '/', 'args': ['a', 3]}"), "process.args[1]: must be a string");
        parse_fails(CFG("'process': {'args': ['sh']}"), "process.cwd: required");
        parse_fails(CFG("'process': {'args': ['sh'], 'cwd': 'tmp'}"), "process.cwd: must be an absolute path, got \"tmp\"");
        parse_fails(CFG(PROC ", 'env': ['A=1', 'FOO']}"), "process.env[1]: must be of the form KEY=VALUE, got \"FOO\"");
        parse_fails(CFG(PROC ", 'user': {'uid': -1}}"), "process.user.uid: must be between 0 and 4294967295, got -1");
        parse_fails(CFG(PROC ", 'user': {'gid': 4294967296}}"),
                    "process.user.gid: must be between 0 and 4294967295, got 4294967296");
        parse_fails(CFG(PROC ", 'user': {'additionalGids': [1, 'x']}}"), "process.user.additionalGids[1]: must be an integer");
        parse_fails(CFG(PROC ", 'consoleSize': {'height': -1, 'width': 80}}"),
                    "process.consoleSize.height: must be between 0 and 4294967295, got -1");
        parse_fails(CFG(PROC ", 'consoleSize': {'height': 1}}"), "process.consoleSize.width: required");
        parse_fails(CFG(PROC ", 'capabilities': {'bounding': ['CAP_FOO']}}"),
                    "process.capabilities.bounding[0]: unknown capability \"CAP_FOO\"");
        parse_fails(CFG(PROC ", 'capabilities': {'effective': ['CAP_KILL', 'kill']}}"),
                    "process.capabilities.effective[1]: must start with \"CAP_\", got \"kill\"");
        parse_fails(CFG(PROC ", 'capabilities': {'ambient': ['CAP_KILL,CAP_CHOWN']}}"),
                    "process.capabilities.ambient[0]: unknown capability \"CAP_KILL,CAP_CHOWN\"");
        parse_fails(CFG(PROC ", 'capabilities': {'permitted': 'CAP_KILL'}}"), "process.capabilities.permitted: must be an array");
        parse_fails(CFG(PROC ", 'rlimits': [{'type': 'RLIMIT_NOFILE', 'soft': 1, 'hard': 2}, "
                            "{'type': 'RLIMIT_BAR', 'soft': 1, 'hard': 2}]}"),
                    "process.rlimits[1].type: unknown rlimit \"RLIMIT_BAR\"");
        parse_fails(CFG(PROC ", 'rlimits': [{'type': 'RLIMIT_NOFILE', 'soft': 1, 'hard': 2}, "
                            "{'type': 'RLIMIT_NOFILE', 'soft': 1, 'hard': 2}]}"),
                    "process.rlimits[1]: duplicate rlimit \"RLIMIT_NOFILE\"");
        parse_fails(CFG(PROC ", 'rlimits': [{'type': 'RLIMIT_NOFILE', 'soft': 2048, 'hard': 1024}]}"),
                    "process.rlimits[0]: soft limit 2048 is above hard limit 1024");
        parse_fails(CFG(PROC ", 'rlimits': [{'type': 'RLIMIT_NOFILE', 'soft': -1, 'hard': 1024}]}"),
                    "process.rlimits[0].soft: must not be negative, got -1");
        parse_fails(CFG(PROC ", 'rlimits': [{'type': 'RLIMIT_NOFILE', 'soft': 1}]}"), "process.rlimits[0].hard: required");
        parse_fails(CFG(PROC ", 'oomScoreAdj': 1001}"), "process.oomScoreAdj: must be between -1000 and 1000, got 1001");
        parse_fails_like(CFG(PROC ", 'scheduler': {'policy': 'SCHED_FAST'}}"),
                         "process.scheduler.policy: must be one of SCHED_OTHER, ", "got \"SCHED_FAST\"");
        parse_fails(CFG(PROC ", 'scheduler': {'nice': 1}}"), "process.scheduler.policy: required");
        parse_fails(CFG(PROC ", 'ioPriority': {'class': 'IOPRIO_CLASS_BE', 'priority': 2147483648}}"),
                    "process.ioPriority.priority: must be between -2147483648 and 2147483647, got 2147483648");
        parse_fails(CFG(PROC ", 'execCPUAffinity': {'final': 'all'}}"),
                    "process.execCPUAffinity.final: must be a CPU list like \"0-3,7\", got \"all\"");

        /* mounts and hooks */
        parse_fails(CFG("'mounts': [{'destination': '/proc'}, {'destination': 5}]"), "mounts[1].destination: must be a string");
        parse_fails(CFG("'mounts': [{'type': 'tmpfs'}]"), "mounts[0].destination: required");
        parse_fails(CFG("'mounts': [{'destination': ''}]"), "mounts[0].destination: must not be empty");
        parse_fails(CFG("'mounts': [{'destination': '/a', 'gidMappings': [{'containerID': 0, 'hostID': 0, 'size': 0}]}]"),
                    "mounts[0].gidMappings[0].size: must be > 0");
        parse_fails(CFG("'hooks': {'prestart': [{'args': ['x']}]}"), "hooks.prestart[0].path: required");
        parse_fails(CFG("'hooks': {'createRuntime': [{'path': 'bin/hook'}]}"),
                    "hooks.createRuntime[0].path: must be an absolute path, got \"bin/hook\"");
        parse_fails(CFG("'hooks': {'poststart': [{'path': '/bin/true', 'timeout': 0}]}"),
                    "hooks.poststart[0].timeout: must be >= 1, got 0");
        parse_fails(CFG("'hooks': {'poststop': [{'path': '/bin/true', 'timeout': 1.5}]}"),
                    "hooks.poststop[0].timeout: must be an integer");
        parse_fails(CFG("'annotations': {'a': 1}"), "annotations.a: must be a string");
        parse_fails(CFG("'annotations': {'': 'x'}"), "annotations: keys must not be empty");

        /* namespaces and id mappings */
        parse_fails(CFG("'linux': {'namespaces': [{'type': 'pid'}, {'type': 'ipc'}, {'type': 'foo'}]}"),
                    "linux.namespaces[2].type: unknown namespace \"foo\"");
        parse_fails(CFG("'linux': {'namespaces': [{'type': 'pid'}, {'type': 'ipc'}, {'type': 'uts'}, {'type': 'pid'}]}"),
                    "linux.namespaces[3]: duplicate namespace \"pid\"");
        parse_fails(CFG("'linux': {'namespaces': [{'type': 'network', 'path': 'proc/1/ns/net'}]}"),
                    "linux.namespaces[0].path: must be an absolute path, got \"proc/1/ns/net\"");
        parse_fails(CFG("'linux': {'namespaces': [{'path': '/x'}]}"), "linux.namespaces[0].type: required");
        parse_fails(CFG("'linux': {'namespaces': [{'type': 'user'}], 'uidMappings': [{'containerID': 0, 'hostID': 0, 'size': 0}]}"),
                    "linux.uidMappings[0].size: must be > 0");
        parse_fails(CFG("'linux': {'namespaces': [{'type': 'user'}], 'uidMappings': [{'containerID': 4294967295, "
                        "'hostID': 0, 'size': 2}]}"),
                    "linux.uidMappings[0]: containerID 4294967295 + size 2 goes beyond 4294967295");
        parse_fails(CFG("'linux': {'namespaces': [{'type': 'user'}], 'gidMappings': [{'containerID': 0, "
                        "'hostID': 4294967000, 'size': 1000}]}"),
                    "linux.gidMappings[0]: hostID 4294967000 + size 1000 goes beyond 4294967295");
        parse_fails(CFG("'linux': {'namespaces': [{'type': 'user'}], 'uidMappings': [{'containerID': 0, 'hostID': 1000, "
                        "'size': 10}, {'containerID': 5, 'hostID': 5000, 'size': 10}]}"),
                    "linux.uidMappings[1]: container IDs overlap with uidMappings[0]");
        parse_fails(CFG("'linux': {'namespaces': [{'type': 'user'}], 'uidMappings': [{'containerID': 0, 'hostID': 1000, "
                        "'size': 10}, {'containerID': 10, 'hostID': 1009, 'size': 10}]}"),
                    "linux.uidMappings[1]: host IDs overlap with uidMappings[0]");
        parse_fails(CFG("'linux': {'namespaces': [{'type': 'user'}], 'uidMappings': [{'containerID': -1, 'hostID': 0, 'size': 1}]}"),
                    "linux.uidMappings[0].containerID: must be between 0 and 4294967295, got -1");
        parse_fails(CFG("'linux': {'uidMappings': [{'containerID': 0, 'hostID': 1000, 'size': 1}]}"),
                    "linux.uidMappings: needs a user namespace");
        parse_fails(CFG("'linux': {'namespaces': [{'type': 'pid'}], 'gidMappings': [{'containerID': 0, 'hostID': 1000, 'size': 1}]}"),
                    "linux.gidMappings: needs a user namespace");

        /* 341 mappings: one more than the kernel takes */
        size_t len = 0;
        FILE *f = open_memstream(&many, &len);
        if (!f)
                abort();
        fputs("{" BASE ", 'linux': {'namespaces': [{'type': 'user'}], 'uidMappings': [", f);
        for (int i = 0; i < 341; i++)
                fprintf(f, "%s{'containerID': %d, 'hostID': %d, 'size': 1}", i ? ", " : "", i, 1000 + i);
        fputs("]}}", f);
        fclose(f);
        parse_fails(many, "linux.uidMappings: too many entries (341, the kernel allows 340)");

        /* time, sysctl, hostname */
        parse_fails(CFG("'linux': {'namespaces': [{'type': 'time'}], 'timeOffsets': {'realtime': {'secs': 1}}}"),
                    "linux.timeOffsets: unknown clock \"realtime\" (expected \"monotonic\" or \"boottime\")");
        parse_fails(CFG("'linux': {'timeOffsets': {'boottime': {'secs': 1}}}"), "linux.timeOffsets: needs a time namespace");
        parse_fails(CFG("'linux': {'namespaces': [{'type': 'time'}], 'timeOffsets': {'boottime': {'nanosecs': 1000000000}}}"),
                    "linux.timeOffsets.boottime.nanosecs: must be below 1000000000, got 1000000000");
        parse_fails(CFG("'linux': {'sysctl': {'net.ipv4.ip_forward': '1'}}"),
                    "linux.sysctl: \"net.ipv4.ip_forward\" needs a network namespace");
        parse_fails(CFG("'linux': {'namespaces': [{'type': 'network'}], 'sysctl': {'kernel.shmmax': '1'}}"),
                    "linux.sysctl: \"kernel.shmmax\" needs an ipc namespace");
        parse_fails(CFG("'linux': {'sysctl': {'fs.mqueue.msg_max': '1'}}"),
                    "linux.sysctl: \"fs.mqueue.msg_max\" needs an ipc namespace");
        parse_fails(CFG("'linux': {'sysctl': {'kernel.hostname': 'x'}}"), "linux.sysctl: \"kernel.hostname\" needs a uts namespace");
        parse_fails(CFG("'linux': {'namespaces': [{'type': 'ipc'}, {'type': 'network'}], 'sysctl': {'kernel.core_pattern': '|/x'}}"),
                    "linux.sysctl: \"kernel.core_pattern\" is not in a separate kernel namespace: setting it would change the host");
        parse_fails(CFG("'linux': {'namespaces': [{'type': 'ipc'}], 'sysctl': {'kernel.msgfoo': '1'}}"),
                    "linux.sysctl: \"kernel.msgfoo\" is not in a separate kernel namespace: setting it would change the host");
        parse_fails(CFG("'linux': {'namespaces': [{'type': 'network'}], 'sysctl': {'net.core.somaxconn': 256}}"),
                    "linux.sysctl[\"net.core.somaxconn\"]: must be a string");
        parse_fails(CFG("'linux': {'sysctl': {'': '1'}}"), "linux.sysctl: keys must not be empty");
        parse_fails(CFG("'hostname': 'box'"), "hostname: needs a uts namespace");
        parse_fails(CFG("'domainname': 'example.org', 'linux': {'namespaces': [{'type': 'pid'}]}"),
                    "domainname: needs a uts namespace");

        /* devices, propagation, personality */
        parse_fails(CFG("'linux': {'devices': [{'path': '/dev/x', 'type': 'x'}]}"),
                    "linux.devices[0].type: must be one of \"c\", \"b\", \"u\", \"p\", got \"x\"");
        parse_fails(CFG("'linux': {'devices': [{'path': '/dev/null', 'type': 'c', 'minor': 3}]}"),
                    "linux.devices[0].major: required for type \"c\"");
        parse_fails(CFG("'linux': {'devices': [{'path': 'dev/null', 'type': 'c', 'major': 1, 'minor': 3}]}"),
                    "linux.devices[0].path: must be an absolute path, got \"dev/null\"");
        parse_fails(CFG("'linux': {'devices': [{'path': '/dev/null', 'type': 'c', 'major': 1, 'minor': 3, 'fileMode': 4096}]}"),
                    "linux.devices[0].fileMode: must be between 0 and 511, got 4096");
        parse_fails(CFG("'linux': {'rootfsPropagation': 'bogus'}"),
                    "linux.rootfsPropagation: must be one of private, rprivate, shared, rshared, slave, rslave, "
                    "unbindable, runbindable, got \"bogus\"");
        parse_fails(CFG("'linux': {'personality': {'domain': 'LINUX64'}}"),
                    "linux.personality.domain: must be one of LINUX, LINUX32, got \"LINUX64\"");

        /* sections kept as JSON */
        parse_fails_like(CFG("'linux': {'seccomp': {'defaultAction': 'SCMP_ACT_FOO'}}"),
                         "linux.seccomp.defaultAction: must be one of SCMP_ACT_KILL, ", "got \"SCMP_ACT_FOO\"");
        parse_fails(CFG("'linux': {'seccomp': {'syscalls': []}}"), "linux.seccomp.defaultAction: required");
        parse_fails(CFG("'linux': {'seccomp': {'defaultAction': 'SCMP_ACT_ALLOW', 'syscalls': [{'names': [], "
                        "'action': 'SCMP_ACT_ERRNO'}]}}"),
                    "linux.seccomp.syscalls[0].names: must not be empty");
        parse_fails_like(CFG("'linux': {'seccomp': {'defaultAction': 'SCMP_ACT_ALLOW', 'syscalls': [{'names': ['read'], "
                             "'action': 'SCMP_ACT_ERRNO', 'args': [{'index': 0, 'value': 1, 'op': 'EQ'}]}]}}"),
                         "linux.seccomp.syscalls[0].args[0].op: must be one of SCMP_CMP_NE, ", "got \"EQ\"");
        parse_fails(CFG("'linux': {'resources': {'devices': [{'allow': 'yes'}]}}"),
                    "linux.resources.devices[0].allow: must be a boolean");
        parse_fails(CFG("'linux': {'resources': {'devices': [{'access': 'rwm'}]}}"), "linux.resources.devices[0].allow: required");
        parse_fails(CFG("'linux': {'resources': {'devices': [{'allow': true, 'access': 'rwx'}]}}"),
                    "linux.resources.devices[0].access: must be made of the letters r, w and m, got \"rwx\"");
        parse_fails(CFG("'linux': {'resources': {'memory': {'limit': '1G'}}}"), "linux.resources.memory.limit: must be an integer");
        parse_fails(CFG("'linux': {'resources': {'memory': {'limit': 18446744073709551615}}}"),
                    "linux.resources.memory.limit: must be between -9223372036854775808 and 9223372036854775807, got "
                    "18446744073709551615");
        parse_fails(CFG("'linux': {'resources': {'pids': {}}}"), "linux.resources.pids.limit: required");
        parse_fails(CFG("'linux': {'resources': {'blockIO': {'weight': 65536}}}"),
                    "linux.resources.blockIO.weight: must be between 0 and 65535, got 65536");
        parse_fails(CFG("'linux': {'resources': {'unified': {'memory.max': 5}}}"),
                    "linux.resources.unified[\"memory.max\"]: must be a string");
        parse_fails(CFG("'linux': {'resources': []}"), "linux.resources: must be an object");
        parse_fails(CFG("'linux': {'intelRdt': {'memBwSchema': 'L3:0=ff'}}"),
                    "linux.intelRdt.memBwSchema: must be a line starting with \"MB:\", got \"L3:0=ff\"");
        parse_fails(CFG("'linux': {'memoryPolicy': {'flags': ['MPOL_F_NOPE']}}"),
                    "linux.memoryPolicy.flags[0]: must be one of MPOL_F_NUMA_BALANCING, MPOL_F_RELATIVE_NODES, "
                    "MPOL_F_STATIC_NODES, got \"MPOL_F_NOPE\"");
        parse_fails(CFG("'linux': {'netDevices': {'eth0': []}}"), "linux.netDevices.eth0: must be an object");
        parse_fails(CFG(PROC ", 'rlimits': [{'type': 'RLIMIT_CORE', 'soft': 18446744073709551616, 'hard': 1}]}"),
                    "invalid JSON at line 1, column 156: too big integer near '18446744073709551616'");
        parse_fails(CFG(PROC ", 'rlimits': [{'type': 'RLIMIT_CORE', 'soft': 1e30, 'hard': 1}]}"),
                    "process.rlimits[0].soft: must be at most 18446744073709551615");
        parse_fails(CFG(PROC ", 'rlimits': [{'type': 'RLIMIT_CORE', 'soft': 5.0, 'hard': 6}]}"),
                    "process.rlimits[0].soft: must be an integer");
        parse_fails(CFG("'process': 5"), "process: must be an object");
        parse_fails(CFG("'linux': {'maskedPaths': ['/a', null]}"), "linux.maskedPaths[1]: must be a string");
}

static void test_names(void)
{
        for (int t = 0; t < OCI_NS__MAX; t++)
                ok(oci_namespace_type_from_string(oci_namespace_type_to_string(t)) == t, "namespace %s round-trips",
                   oci_namespace_type_to_string(t));
        is_int(oci_namespace_type_from_string("net"), OCI_NS__INVALID, "\"net\" is not a namespace name");
        ok(oci_namespace_type_to_string(OCI_NS__MAX) == NULL, "no name past the end");
        is_int(oci_namespace_type_clone_flag(OCI_NS_MOUNT), CLONE_NEWNS, "mount clone flag");
        is_int(oci_namespace_type_clone_flag(OCI_NS_TIME), 0x80, "time clone flag");
        is_int(oci_namespace_type_clone_flag(OCI_NS_NETWORK), CLONE_NEWNET, "network clone flag");
        is_str(oci_hook_kind_to_string(OCI_HOOK_CREATE_CONTAINER), "createContainer", "hook kind name");
        is_str(oci_hook_kind_to_string(OCI_HOOK_POSTSTOP), "poststop", "hook kind name");
        ok(oci_hook_kind_to_string(OCI_HOOK__MAX) == NULL, "no hook kind past the end");
}

static void test_load(void)
{
        char dir[] = "/tmp/test-oci.XXXXXX";
        static const char good[] = "{\"ociVersion\": \"1.1.0\", \"root\": {\"path\": \"/r\"}}";
        static const char bad[] = "{\"ociVersion\": \"1.1.0\",\n \"root\": {\"path\": 5}}";

        if (!mkdtemp(dir)) {
                ok(0, "mkdtemp");
                return;
        }
        _cleanup_close_ int dfd = open(dir, O_DIRECTORY | O_RDONLY | O_CLOEXEC);
        ok(dfd >= 0, "open temp dir");
        is_int(write_file_atomic_at(dfd, "config.json", good, strlen(good), 0600), 0, "write config.json");
        is_int(write_file_atomic_at(dfd, "bad.json", bad, strlen(bad), 0600), 0, "write bad.json");

        {
                _cleanup_oci_config_ struct oci_config *c = NULL;
                _cleanup_error_ struct moat_error *err = NULL;
                is_int(oci_config_load_at(dfd, "config.json", &c, &err), 0, "load_at good file");
                is_str(c ? c->root.path : NULL, "/r", "load_at root.path");
                ok(c && !c->has_process && !c->has_linux, "no process, no linux");
        }
        {
                _cleanup_oci_config_ struct oci_config *c = NULL;
                _cleanup_error_ struct moat_error *err = NULL;
                is_int(oci_config_load_at(dfd, "bad.json", &c, &err), -EINVAL, "load_at bad file");
                is_str(err ? err->msg : NULL, "bad.json: root.path: must be a string", "load_at names the file");
        }
        {
                _cleanup_oci_config_ struct oci_config *c = NULL;
                _cleanup_error_ struct moat_error *err = NULL;
                is_int(oci_config_load_at(dfd, "missing.json", &c, &err), -ENOENT, "load_at missing file");
                is_str(err ? err->msg : NULL, "reading missing.json: No such file or directory", "missing file message");
        }
        {
                _cleanup_oci_config_ struct oci_config *c = NULL;
                _cleanup_error_ struct moat_error *err = NULL;
                _cleanup_close_ int fd = openat(dfd, "huge.json", O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
                int r = fd >= 0 ? ftruncate(fd, OCI_CONFIG_MAX_SIZE + 1) : -1;
                is_int(r, 0, "make a file one byte too large");
                is_int(oci_config_load_at(dfd, "huge.json", &c, &err), -EFBIG, "load_at refuses a huge file");
                is_str(err ? err->msg : NULL, "huge.json: larger than 16777216 bytes", "huge file message");
        }
        {
                _cleanup_oci_config_ struct oci_config *c = NULL;
                _cleanup_error_ struct moat_error *err = NULL;
                is_int(oci_config_parse("{}", OCI_CONFIG_MAX_SIZE + 1u, &c, &err), -EFBIG, "parse refuses a huge buffer");
        }

        if (unlinkat(dfd, "config.json", 0) < 0 || unlinkat(dfd, "bad.json", 0) < 0 || unlinkat(dfd, "huge.json", 0) < 0 ||
            rmdir(dir) < 0)
                ok(0, "clean up %s", dir);
}

int main(void)
{
        _cleanup_free_ char *dir = find_examples_dir();

        if (!dir) {
                printf("1..0 # SKIP no spec dir\n");
                return 0;
        }
        test_examples(dir);
        test_spec_example(dir);
        test_values();
        test_errors();
        test_names();
        test_load();
        return tap_done();
}
