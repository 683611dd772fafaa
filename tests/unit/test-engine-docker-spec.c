/* SPDX-License-Identifier: Apache-2.0 */
#include "base/compat.h"

/*
 * Unit tests of engine/docker-spec.c: docker create bodies -> normalised
 * Config/HostConfig and the OCI runtime config. Each field is checked in
 * the spec member it must produce, each refusal by its message and JSON
 * path; every spec produced is parsed again with moat-runtime's own parser
 * (oci_config_parse). The image is a real image config document and the
 * container root a temporary directory with its own etc/passwd and
 * etc/group; volumes, other containers and groups come from callbacks that
 * record what they were asked.
 */

#include <fcntl.h>
#include <stdio.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "base/cleanup.h"
#include "base/fileio.h"
#include "engine/docker-spec.h"
#include "oci/image-spec.h"
#include "oci/runtime-spec.h"
#include "tap.h"

#define ID "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"

static char tmpdir[] = "/tmp/moat-test-dspec-XXXXXX";
static int root_fd = -1;
static struct oci_image_doc *image;
static char volume_log[4096];
static char path_hostname[512], path_hosts[512], path_resolv[512], path_init[512], path_seccomp[512], path_bind[512];

static int volume_cb(void *userdata, const struct moat_docker_volume_request *req, char **ret_host_path,
                     char **ret_name, struct moat_error **reterr)
{
        static int anon;
        char name[64], p[600];
        (void) userdata;
        if (req->name && streq(req->name, "broken"))
                return moat_error_setx(reterr, -EIO, "volume broken: driver failed");
        if (req->name)
                snprintf(name, sizeof(name), "%s", req->name);
        else
                snprintf(name, sizeof(name), "anon%d", ++anon);
        snprintf(p, sizeof(p), "%s/volumes/%s", tmpdir, name);
        mkdir(p, 0755);
        size_t l = strlen(volume_log);
        snprintf(volume_log + l, sizeof(volume_log) - l, "%s%s@%s%s%s", l ? "|" : "", req->name ? req->name : "-",
                 req->destination, req->nocopy ? ",nocopy" : "", req->read_only ? ",ro" : "");
        *ret_host_path = strdup(p);
        *ret_name = strdup(name);
        return 0;
}

static int pid_cb(void *userdata, const char *ref, pid_t *ret_pid, char **ret_id, struct moat_error **reterr)
{
        (void) userdata;
        if (!streq(ref, "other"))
                return moat_error_setx(reterr, -ENOENT, "No such container: %s", ref);
        *ret_pid = 4242;
        *ret_id = strdup("f00f");
        return 0;
}

static int hostname_cb(void *userdata, const char *ref, char *buf, size_t size, struct moat_error **reterr)
{
        (void) userdata;
        if (!streq(ref, "other"))
                return moat_error_setx(reterr, -ENOENT, "No such container: %s", ref);
        snprintf(buf, size, "donor-name");
        return 0;
}

static int shm_cb(void *userdata, const char *id, char **ret_path, struct moat_error **reterr)
{
        (void) userdata;
        if (!streq(id, "f00f"))
                return moat_error_setx(reterr, -EINVAL, "container %s: non-shareable IPC", id);
        *ret_path = strdup("/data/containers/f00f/shm");
        return 0;
}

static int group_cb(void *userdata, int fd, const char *name, uint32_t *ret_gid, struct moat_error **reterr)
{
        (void) userdata;
        (void) fd;
        if (streq(name, "audio")) {
                *ret_gid = 29;
                return 0;
        }
        return moat_error_setx(reterr, -ENOENT, "unknown group %s in the image's /etc/group", name);
}

static int mkbind_cb(void *userdata, const char *path, struct moat_error **reterr)
{
        (void) userdata;
        if (mkdir(path, 0755) < 0)
                return moat_error_set(reterr, errno, "mkdir %s", path);
        return 0;
}

static struct moat_docker_spec_context base_ctx(void)
{
        return (struct moat_docker_spec_context){
                .id = ID,
                .image = oci_image_doc_config(image),
                .root_fd = root_fd,
                .hostname_path = path_hostname,
                .hosts_path = path_hosts,
                .resolv_conf_path = path_resolv,
                .init_path = path_init,
                .host_hostname = "the-host",
                .volume = volume_cb,
                .container_pid = pid_cb,
                .container_shm = shm_cb,
                .container_hostname = hostname_cb,
                .shm_path = "/data/containers/" ID "/shm",
                .group = group_cb,
                .make_bind_source = mkbind_cb,
        };
}

struct run {
        int r;
        char err[1024];
        struct moat_docker_create *c;
        struct moat_docker_spec *s;
};

static void run_done(struct run *x)
{
        moat_docker_create_free(x->c);
        moat_docker_spec_free(x->s);
}

static struct run run_ctx(const char *body, const struct moat_docker_host *host,
                          const struct moat_docker_spec_context *ctx)
{
        struct run x = {};
        _cleanup_error_ struct moat_error *err = NULL;
        json_error_t jerr;
        json_t *j = json_loads(body, 0, &jerr);
        if (!j) {
                x.r = -EINVAL;
                snprintf(x.err, sizeof(x.err), "test bug: bad JSON: %s", jerr.text);
                return x;
        }
        x.r = moat_docker_create_parse(j, host, &x.c, &err);
        json_decref(j);
        if (x.r >= 0) {
                struct moat_docker_spec_context dc = base_ctx();
                x.r = moat_docker_create_spec(x.c, ctx ? ctx : &dc, &x.s, &err);
        }
        if (x.r < 0)
                snprintf(x.err, sizeof(x.err), "%s", err && err->msg ? err->msg : "(no message)");
        else {
                /* every spec must be accepted by moat-runtime's parser, as
                 * the text the engine writes */
                _cleanup_free_ char *text = json_dumps(x.s->spec, JSON_COMPACT);
                bool volumes_only = ctx && ctx->volumes_only;
                if (!volumes_only && (!x.s->text || strcmp(x.s->text, text) != 0))
                        ok(false, "the spec's text is its JSON as dumped");
                struct oci_config *cfg = NULL;
                _cleanup_error_ struct moat_error *perr = NULL;
                int pr = oci_config_parse(text, strlen(text), &cfg, &perr);
                if (pr < 0) {
                        ok(false, "spec parses with oci_config_parse: %s", perr ? perr->msg : "?");
                        x.r = pr;
                }
                oci_config_free(cfg);
        }
        return x;
}

static struct run run(const char *body)
{
        return run_ctx(body, NULL, NULL);
}

/* A JSON value by a path: "linux.resources.memory.limit", "mounts[2].source". */
static json_t *jget(json_t *root, const char *path)
{
        char buf[256];
        snprintf(buf, sizeof(buf), "%s", path);
        json_t *cur = root;
        for (char *save = NULL, *tok = strtok_r(buf, ".", &save); tok && cur; tok = strtok_r(NULL, ".", &save)) {
                char *br = strchr(tok, '[');
                if (br)
                        *br = '\0';
                if (*tok)
                        cur = json_object_get(cur, tok);
                while (br && cur) {
                        size_t idx = strtoul(br + 1, &br, 10);
                        cur = json_array_get(cur, idx);
                        br = strchr(br, '[');
                }
        }
        return cur;
}

static const char *jstr(json_t *root, const char *path)
{
        return json_string_value(jget(root, path));
}

static long long jint(json_t *root, const char *path)
{
        json_t *v = jget(root, path);
        return v && json_is_integer(v) ? (long long) json_integer_value(v) : -999999;
}

static char *jdump(json_t *v)
{
        static char buf[8192];
        char *s = v ? json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY) : NULL;
        snprintf(buf, sizeof(buf), "%s", s ? s : "(absent)");
        free(s);
        return buf;
}

static json_t *find_mount(json_t *spec, const char *dest)
{
        json_t *m = json_object_get(spec, "mounts");
        for (size_t i = 0; i < json_array_size(m); i++)
                if (streq(json_string_value(json_object_get(json_array_get(m, i), "destination")), dest))
                        return json_array_get(m, i);
        return NULL;
}

static ssize_t mount_index(json_t *spec, const char *dest)
{
        json_t *m = json_object_get(spec, "mounts");
        for (size_t i = 0; i < json_array_size(m); i++)
                if (streq(json_string_value(json_object_get(json_array_get(m, i), "destination")), dest))
                        return (ssize_t) i;
        return -1;
}

static bool has_string(json_t *array, const char *s)
{
        for (size_t i = 0; i < json_array_size(array); i++)
                if (streq(json_string_value(json_array_get(array, i)), s))
                        return true;
        return false;
}

static bool has_namespace(json_t *spec, const char *type, const char **ret_path)
{
        json_t *ns = jget(spec, "linux.namespaces");
        for (size_t i = 0; i < json_array_size(ns); i++)
                if (streq(json_string_value(json_object_get(json_array_get(ns, i), "type")), type)) {
                        if (ret_path)
                                *ret_path = json_string_value(json_object_get(json_array_get(ns, i), "path"));
                        return true;
                }
        return false;
}

static bool seccomp_allows(json_t *spec, const char *name)
{
        json_t *sys = jget(spec, "linux.seccomp.syscalls");
        for (size_t i = 0; i < json_array_size(sys); i++) {
                json_t *e = json_array_get(sys, i);
                if (!streq(json_string_value(json_object_get(e, "action")), "SCMP_ACT_ALLOW") ||
                    json_object_get(e, "args"))
                        continue;
                if (has_string(json_object_get(e, "names"), name))
                        return true;
        }
        return false;
}

/* ---- the tests ---- */

static void test_minimal(void)
{
        struct run x = run("{\"Image\":\"busybox\"}");
        ok(x.r == 0, "minimal body builds (%s)", x.err);
        if (x.r < 0)
                return;
        json_t *s = x.s->spec;
        is_str(jstr(s, "root.path"), "rootfs", "root.path");
        ok(json_is_false(jget(s, "root.readonly")), "root writable by default");
        is_str(jstr(s, "hostname"), "0123456789ab", "hostname: the first 12 characters of the id");
        is_str(x.s->hostname, "0123456789ab", "result hostname");
        is_str(jdump(jget(s, "process.args")), "[\"/entry\",\"image-cmd\"]", "args from the image");
        ok(json_is_false(jget(s, "process.terminal")), "no terminal");
        ok(json_is_true(jget(s, "process.noNewPrivileges")), "noNewPrivileges by default (moat's hardening)");
        is_int(json_array_size(jget(s, "process.capabilities.bounding")), 11, "11 default capabilities");
        ok(has_string(jget(s, "process.capabilities.effective"), "CAP_CHOWN") &&
                   !has_string(jget(s, "process.capabilities.effective"), "CAP_NET_RAW"),
           "CAP_CHOWN yes, CAP_NET_RAW no");
        is_str(jstr(s, "linux.seccomp.defaultAction"), "SCMP_ACT_ERRNO", "default seccomp profile");
        ok(!seccomp_allows(s, "mount"), "default profile: no mount()");
        is_int(jint(s, "linux.resources.pids.limit"), 2048, "pids limit 2048 by default");
        ok(has_namespace(s, "network", NULL) && has_namespace(s, "pid", NULL) && has_namespace(s, "ipc", NULL) &&
                   has_namespace(s, "uts", NULL) && has_namespace(s, "mount", NULL) && has_namespace(s, "cgroup", NULL),
           "pid, network, ipc, uts, mount, cgroup namespaces");
        is_str(jstr(s, "linux.cgroupsPath"), "/moat/" ID, "cgroupsPath /moat/<id>");
        json_t *shm = find_mount(s, "/dev/shm");
        ok(shm && has_string(json_object_get(shm, "options"), "size=65536k"), "/dev/shm 64 MiB: %s", jdump(shm));
        ok(find_mount(s, "/proc") && find_mount(s, "/dev/pts") && find_mount(s, "/dev/mqueue") && find_mount(s, "/sys") &&
                   find_mount(s, "/sys/fs/cgroup"),
           "docker's default mounts");
        ok(has_string(json_object_get(find_mount(s, "/sys"), "options"), "ro"), "/sys read-only");
        is_str(jstr(find_mount(s, "/etc/hosts"), "source"), path_hosts, "/etc/hosts from the engine's file");
        is_str(jstr(find_mount(s, "/etc/hostname"), "source"), path_hostname, "/etc/hostname");
        is_str(jstr(find_mount(s, "/etc/resolv.conf"), "source"), path_resolv, "/etc/resolv.conf");
        ok(!has_string(json_object_get(find_mount(s, "/etc/hosts"), "options"), "ro"), "/etc/hosts writable");
        ok(json_array_size(jget(s, "linux.maskedPaths")) > 5 && has_string(jget(s, "linux.maskedPaths"), "/proc/kcore"),
           "masked paths");
        ok(has_string(jget(s, "linux.readonlyPaths"), "/proc/sys"), "readonly paths");
        ok(json_object_get(jget(s, "linux.sysctl"), "net.ipv4.ping_group_range") != NULL,
           "ping_group_range kept in moat's own netns");
        is_str(jstr(s, "linux.resources.devices[0].access"), "rwm", "devices: deny all first");
        ok(json_is_false(jget(s, "linux.resources.devices[0].allow")), "devices[0] denies");
        is_int(json_array_size(jget(s, "linux.resources.devices")), 12, "deny + docker's 11 default rules");
        is_str(json_string_value(json_object_get(jget(s, "annotations"), "org.moat.engine.id")), ID, "id annotation");

        /* the normalised documents */
        json_t *hc = x.s->host_config, *cfg = x.s->config;
        is_str(jstr(hc, "NetworkMode"), "none", "HostConfig.NetworkMode none");
        is_str(jdump(jget(hc, "RestartPolicy")), "{\"Name\":\"no\",\"MaximumRetryCount\":0}", "RestartPolicy default");
        is_str(jdump(jget(hc, "LogConfig")), "{\"Type\":\"json-file\",\"Config\":{}}", "LogConfig default");
        is_int(jint(hc, "ShmSize"), 67108864, "ShmSize default");
        is_str(jstr(hc, "IpcMode"), "private", "IpcMode private");
        is_str(jstr(hc, "CgroupnsMode"), "private", "CgroupnsMode private");
        ok(json_is_false(jget(hc, "OomKillDisable")), "OomKillDisable false");
        ok(json_is_null(jget(hc, "PidsLimit")), "PidsLimit null");
        is_str(jdump(jget(hc, "ConsoleSize")), "[0,0]", "ConsoleSize [0,0]");
        ok(json_array_size(jget(hc, "MaskedPaths")) > 0, "HostConfig.MaskedPaths filled");
        is_str(jstr(cfg, "Hostname"), "0123456789ab", "Config.Hostname filled");
        is_str(jdump(jget(cfg, "Cmd")), "[\"image-cmd\"]", "Config.Cmd from the image");
        is_str(jdump(jget(cfg, "Entrypoint")), "[\"/entry\"]", "Config.Entrypoint from the image");
        is_str(jstr(cfg, "Labels.from"), "image", "image labels merged");
        ok(json_object_get(jget(cfg, "ExposedPorts"), "80/tcp") != NULL, "image ExposedPorts merged");
        is_str(jstr(cfg, "WorkingDir"), "/srv", "image WorkingDir");
        ok(has_string(jget(cfg, "Env"), "IMG=1") && !has_string(jget(cfg, "Env"), "HOSTNAME=0123456789ab"),
           "Config.Env merged, without the process's HOSTNAME: %s", jdump(jget(cfg, "Env")));
        is_int(json_array_size(x.s->warnings), 0, "no warnings");
        /* the image's anonymous volume */
        json_t *vol = find_mount(s, "/data");
        ok(vol && strstr(jstr(vol, "source"), "/volumes/anon"), "image volume /data gets an anonymous volume: %s",
           jdump(vol));
        ok(x.c->tty == false && streq(x.c->restart_policy, "no") && streq(x.c->network_mode, "none") &&
                   streq(x.c->log_driver, "json-file") && streq(x.c->image, "busybox"),
           "typed shortcuts");
        run_done(&x);
}

static void test_process(void)
{
        struct run x = run("{\"Image\":\"i\",\"Entrypoint\":[\"/bin/sh\",\"-c\"],\"Cmd\":\"echo hi\","
                           "\"Env\":[\"A=1\",\"IMG\"],\"WorkingDir\":\"/tmp/../work\",\"User\":\"app\","
                           "\"Hostname\":\"web\",\"Domainname\":\"example.org\",\"Tty\":true,"
                           "\"HostConfig\":{\"ConsoleSize\":[30,100],\"GroupAdd\":[\"audio\",\"77\"],"
                           "\"OomScoreAdj\":500}}");
        ok(x.r == 0, "process fields build (%s)", x.err);
        if (x.r < 0)
                return;
        json_t *s = x.s->spec;
        is_str(jdump(jget(s, "process.args")), "[\"/bin/sh\",\"-c\",\"echo hi\"]",
               "Entrypoint override drops the image Cmd; Cmd as a string");
        is_str(jstr(s, "process.cwd"), "/work", "cwd cleaned");
        is_int(jint(s, "process.user.uid"), 1000, "user app -> uid 1000");
        is_int(jint(s, "process.user.gid"), 1000, "gid 1000");
        is_str(jdump(jget(s, "process.user.additionalGids")), "[29,77]", "additionalGids: image groups + GroupAdd");
        json_t *env = jget(s, "process.env");
        ok(has_string(env, "A=1") && !has_string(env, "IMG=1") && has_string(env, "HOSTNAME=web") &&
                   has_string(env, "TERM=xterm") && has_string(env, "HOME=/home/app"),
           "env: %s", jdump(env));
        is_str(jstr(s, "hostname"), "web", "hostname");
        is_str(jstr(s, "domainname"), "example.org", "domainname");
        ok(json_is_true(jget(s, "process.terminal")), "terminal");
        is_int(jint(s, "process.consoleSize.height"), 30, "consoleSize.height");
        is_int(jint(s, "process.consoleSize.width"), 100, "consoleSize.width");
        is_int(jint(s, "process.oomScoreAdj"), 500, "oomScoreAdj");
        is_str(jdump(jget(x.s->config, "Cmd")), "[\"echo hi\"]", "Config.Cmd normalised to an array");
        run_done(&x);

        x = run("{\"Image\":\"i\",\"Entrypoint\":[\"\"],\"Cmd\":[\"ls\",\"-l\"]}");
        is_str(x.r == 0 ? jdump(jget(x.s->spec, "process.args")) : x.err, "[\"ls\",\"-l\"]",
               "Entrypoint [\"\"] drops the image's entrypoint");
        run_done(&x);

        x = run("{\"Image\":\"i\",\"User\":\"nobody-here\"}");
        ok(x.r == -ENOENT && strstr(x.err, "nobody-here"), "unknown user refused: %s", x.err);
        run_done(&x);

        x = run("{\"Image\":\"i\",\"HostConfig\":{\"GroupAdd\":[\"nogroup\"]}}");
        ok(x.r == -ENOENT && strstr(x.err, "HostConfig.GroupAdd[0]") && strstr(x.err, "nogroup"),
           "unknown GroupAdd name: %s", x.err);
        run_done(&x);

        x = run("{\"Image\":\"i\",\"HostConfig\":{\"Init\":true},\"Cmd\":[\"app\"]}");
        ok(x.r == 0, "Init builds (%s)", x.err);
        if (x.r == 0) {
                is_str(jdump(jget(x.s->spec, "process.args")), "[\"/sbin/docker-init\",\"--\",\"/entry\",\"app\"]",
                       "Init: docker-init -- args");
                json_t *m = find_mount(x.s->spec, "/sbin/docker-init");
                ok(m && streq(jstr(m, "source"), path_init) && has_string(json_object_get(m, "options"), "ro"),
                   "Init: tini bound read-only: %s", jdump(m));
                ok(json_is_true(jget(x.s->host_config, "Init")), "HostConfig.Init kept");
        }
        run_done(&x);

        struct moat_docker_spec_context ctx = base_ctx();
        ctx.init_path = NULL;
        x = run_ctx("{\"Image\":\"i\",\"HostConfig\":{\"Init\":true}}", NULL, &ctx);
        ok(x.r == -EOPNOTSUPP && strstr(x.err, "HostConfig.Init"), "Init without tini: %s", x.err);
        run_done(&x);
}

static void test_capabilities(void)
{
        struct run x = run("{\"Image\":\"i\",\"HostConfig\":{\"CapAdd\":[\"net_raw\",\"CAP_SYS_ADMIN\"],"
                           "\"CapDrop\":[\"chown\"]}}");
        ok(x.r == 0, "CapAdd/CapDrop build (%s)", x.err);
        if (x.r == 0) {
                json_t *e = jget(x.s->spec, "process.capabilities.effective");
                ok(has_string(e, "CAP_NET_RAW") && has_string(e, "CAP_SYS_ADMIN") && !has_string(e, "CAP_CHOWN"),
                   "default - CHOWN + NET_RAW + SYS_ADMIN: %s", jdump(e));
                is_int(json_array_size(e), 12, "12 capabilities");
                ok(seccomp_allows(x.s->spec, "mount") && seccomp_allows(x.s->spec, "unshare") &&
                           seccomp_allows(x.s->spec, "setns"),
                   "CAP_SYS_ADMIN opens mount, unshare, setns in the profile (as docker's)");
        }
        run_done(&x);

        x = run("{\"Image\":\"i\",\"HostConfig\":{\"CapAdd\":[\"ALL\"],\"CapDrop\":[\"NET_RAW\",\"cap_mknod\"]}}");
        ok(x.r == 0, "CapAdd ALL then CapDrop (%s)", x.err);
        if (x.r == 0) {
                json_t *e = jget(x.s->spec, "process.capabilities.bounding");
                ok(json_array_size(e) > 30 && !has_string(e, "CAP_NET_RAW") && !has_string(e, "CAP_MKNOD") &&
                           has_string(e, "CAP_SYS_MODULE"),
                   "all but NET_RAW and MKNOD (%zu)", json_array_size(e));
                ok(json_is_object(jget(x.s->spec, "linux.seccomp")), "still confined by seccomp");
                ok(seccomp_allows(x.s->spec, "ptrace") && seccomp_allows(x.s->spec, "init_module"),
                   "profile opens ptrace and init_module for the granted capabilities");
        }
        run_done(&x);

        x = run("{\"Image\":\"i\",\"HostConfig\":{\"CapDrop\":[\"all\"],\"CapAdd\":[\"Kill\"]}}");
        is_str(x.r == 0 ? jdump(jget(x.s->spec, "process.capabilities.permitted")) : x.err, "[\"CAP_KILL\"]",
               "CapDrop ALL keeps only CapAdd");
        run_done(&x);

        x = run("{\"Image\":\"i\",\"HostConfig\":{\"CapAdd\":[\"CAP_FLY\"]}}");
        is_str(x.err, "HostConfig.CapAdd: unknown capability: \"CAP_FLY\"", "unknown capability");
        run_done(&x);

        uint64_t m;
        ok(moat_docker_capabilities(1, 7, NULL, NULL, true, &m, NULL) == 0 && m == 7, "privileged -> all");
}

static void test_privileged(void)
{
        struct run x = run("{\"Image\":\"i\",\"HostConfig\":{\"Privileged\":true,"
                           "\"SecurityOpt\":[\"seccomp=/nonexistent\"]}}");
        ok(x.r == 0, "privileged builds (%s)", x.err);
        if (x.r < 0)
                return;
        json_t *s = x.s->spec;
        ok(json_array_size(jget(s, "process.capabilities.bounding")) >= 38, "all capabilities (%zu)",
           json_array_size(jget(s, "process.capabilities.bounding")));
        ok(!jget(s, "linux.seccomp"), "no seccomp (even with a profile given, as docker)");
        ok(json_is_false(jget(s, "process.noNewPrivileges")), "no noNewPrivileges");
        is_int(json_array_size(jget(s, "linux.maskedPaths")), 0, "no masked paths");
        is_int(json_array_size(jget(s, "linux.readonlyPaths")), 0, "no readonly paths");
        json_t *sys = json_object_get(find_mount(s, "/sys"), "options");
        ok(!has_string(sys, "ro") && has_string(sys, "rw"), "/sys rw: %s", jdump(sys));
        ok(!has_string(json_object_get(find_mount(s, "/sys/fs/cgroup"), "options"), "ro"), "cgroup rw");
        ok(json_is_true(jget(s, "linux.resources.devices[0].allow")) &&
                   streq(jstr(s, "linux.resources.devices[0].access"), "rwm") &&
                   !jget(s, "linux.resources.devices[0].type"),
           "all devices allowed");
        bool has_null = false;
        json_t *devs = jget(s, "linux.devices");
        for (size_t i = 0; i < json_array_size(devs); i++)
                if (streq(jstr(json_array_get(devs, i), "path"), "/dev/null") &&
                    jint(json_array_get(devs, i), "major") == 1 && jint(json_array_get(devs, i), "minor") == 3)
                        has_null = true;
        ok(has_null, "host devices listed (/dev/null 1:3 among %zu)", json_array_size(devs));
        run_done(&x);
}

static void test_security_opts(void)
{
        struct run x = run("{\"Image\":\"i\",\"HostConfig\":{\"SecurityOpt\":[\"seccomp=unconfined\","
                           "\"no-new-privileges=false\",\"apparmor=unconfined\",\"label=disable\","
                           "\"systempaths=unconfined\"]}}");
        ok(x.r == 0, "security options (%s)", x.err);
        if (x.r == 0) {
                ok(!jget(x.s->spec, "linux.seccomp"), "seccomp=unconfined");
                ok(json_is_false(jget(x.s->spec, "process.noNewPrivileges")), "no-new-privileges=false");
                is_int(json_array_size(jget(x.s->spec, "linux.maskedPaths")), 0, "systempaths=unconfined: none masked");
                is_int(json_array_size(jget(x.s->spec, "linux.readonlyPaths")), 0, "... none read-only");
        }
        run_done(&x);

        x = run("{\"Image\":\"i\",\"HostConfig\":{\"MaskedPaths\":[\"/proc/x\"],\"ReadonlyPaths\":[]}}");
        ok(x.r == 0 && streq(jdump(jget(x.s->spec, "linux.maskedPaths")), "[\"/proc/x\"]") &&
                   json_array_size(jget(x.s->spec, "linux.readonlyPaths")) == 0,
           "MaskedPaths/ReadonlyPaths given (the CLI's systempaths=unconfined form) (%s)", x.err);
        run_done(&x);

        /* docker's profile format, inline as the CLI sends it */
        const char *profile = "{\\\"defaultAction\\\":\\\"SCMP_ACT_ERRNO\\\",\\\"archMap\\\":[{\\\"architecture\\\":"
                              "\\\"SCMP_ARCH_X86_64\\\",\\\"subArchitectures\\\":[\\\"SCMP_ARCH_X86\\\"]}],"
                              "\\\"syscalls\\\":[{\\\"names\\\":[\\\"read\\\",\\\"write\\\",\\\"exit_group\\\"],"
                              "\\\"action\\\":\\\"SCMP_ACT_ALLOW\\\"},{\\\"name\\\":\\\"mount\\\",\\\"action\\\":"
                              "\\\"SCMP_ACT_ALLOW\\\",\\\"includes\\\":{\\\"caps\\\":[\\\"CAP_SYS_ADMIN\\\"]}},"
                              "{\\\"names\\\":[\\\"chroot\\\"],\\\"action\\\":\\\"SCMP_ACT_ALLOW\\\",\\\"excludes\\\":"
                              "{\\\"caps\\\":[\\\"CAP_SYS_CHROOT\\\"]},\\\"comment\\\":\\\"x\\\"}]}";
        char body[4096];
        snprintf(body, sizeof(body), "{\"Image\":\"i\",\"HostConfig\":{\"SecurityOpt\":[\"seccomp=%s\"]}}", profile);
        x = run(body);
        ok(x.r == 0, "inline docker-format profile (%s)", x.err);
        if (x.r == 0) {
                json_t *sc = jget(x.s->spec, "linux.seccomp");
                is_int(json_array_size(json_object_get(sc, "syscalls")), 1,
                       "includes (SYS_ADMIN not granted) and excludes (SYS_CHROOT granted) filtered");
                ok(!json_object_get(json_array_get(json_object_get(sc, "syscalls"), 0), "comment"), "comment dropped");
#if defined(__x86_64__)
                is_str(jdump(json_object_get(sc, "architectures")), "[\"SCMP_ARCH_X86_64\",\"SCMP_ARCH_X86\"]",
                       "archMap -> native architectures");
#endif
        }
        run_done(&x);
        snprintf(body, sizeof(body),
                 "{\"Image\":\"i\",\"HostConfig\":{\"CapAdd\":[\"SYS_ADMIN\"],\"SecurityOpt\":[\"seccomp=%s\"]}}",
                 profile);
        x = run(body);
        ok(x.r == 0 && json_array_size(jget(x.s->spec, "linux.seccomp.syscalls")) == 2 &&
                   streq(jdump(jget(x.s->spec, "linux.seccomp.syscalls[1].names")), "[\"mount\"]"),
           "includes.caps met: the rule is kept with name -> names (%s)", x.err);
        run_done(&x);

        snprintf(body, sizeof(body), "{\"Image\":\"i\",\"HostConfig\":{\"SecurityOpt\":[\"seccomp=%s\"]}}",
                 path_seccomp);
        x = run(body);
        ok(x.r == 0 && streq(jstr(x.s->spec, "linux.seccomp.defaultAction"), "SCMP_ACT_LOG"),
           "seccomp profile from a file (%s)", x.err);
        run_done(&x);

        x = run("{\"Image\":\"i\",\"HostConfig\":{\"SecurityOpt\":[\"seccomp={\\\"defaultAction\\\":\\\"BOGUS\\\"}\"]}}");
        ok(x.r < 0 && strstr(x.err, "HostConfig.SecurityOpt: seccomp profile"), "bad profile refused: %s", x.err);
        run_done(&x);
        x = run("{\"Image\":\"i\",\"HostConfig\":{\"SecurityOpt\":[\"seccomp=/nonexistent/p.json\"]}}");
        ok(x.r == -ENOENT && strstr(x.err, "/nonexistent/p.json"), "missing profile file: %s", x.err);
        run_done(&x);
}

static void test_mounts(void)
{
        char body[4096];
        snprintf(body, sizeof(body),
                 "{\"Image\":\"i\",\"Volumes\":{\"/anon\":{}},\"HostConfig\":{"
                 "\"Binds\":[\"%s:/data/sub:ro,rshared\",\"named:/named:nocopy\",\"%s/newdir:/newdir\"],"
                 "\"Mounts\":[{\"Type\":\"bind\",\"Source\":\"%s\",\"Target\":\"/m/bind\",\"ReadOnly\":true,"
                 "\"BindOptions\":{\"Propagation\":\"rslave\",\"ReadOnlyNonRecursive\":true}},"
                 "{\"Type\":\"volume\",\"Source\":\"vol2\",\"Target\":\"/m/vol\",\"VolumeOptions\":{\"NoCopy\":true}},"
                 "{\"Type\":\"tmpfs\",\"Target\":\"/m/tmp\",\"TmpfsOptions\":{\"SizeBytes\":1048576,\"Mode\":448}}],"
                 "\"Tmpfs\":{\"/run\":\"size=2m,exec\"}}}",
                 path_bind, tmpdir, path_bind);
        volume_log[0] = 0;
        struct run x = run(body);
        ok(x.r == 0, "binds, mounts, tmpfs (%s)", x.err);
        if (x.r < 0)
                return;
        json_t *s = x.s->spec;
        json_t *m = find_mount(s, "/data/sub");
        is_str(jdump(json_object_get(m, "options")), "[\"rbind\",\"rshared\",\"rro\"]", "Binds ro,rshared");
        is_str(jstr(m, "source"), path_bind, "bind source");
        is_str(jstr(m, "type"), "bind", "bind type");
        m = find_mount(s, "/m/bind");
        is_str(jdump(json_object_get(m, "options")), "[\"rbind\",\"rslave\",\"ro\"]",
               "Mounts bind rslave, ReadOnlyNonRecursive -> ro");
        m = find_mount(s, "/m/tmp");
        ok(m && streq(jstr(m, "type"), "tmpfs") && has_string(json_object_get(m, "options"), "size=1m") &&
                   has_string(json_object_get(m, "options"), "mode=700"),
           "TmpfsOptions SizeBytes/Mode: %s", jdump(m));
        m = find_mount(s, "/run");
        ok(m && has_string(json_object_get(m, "options"), "exec") && !has_string(json_object_get(m, "options"), "noexec") &&
                   has_string(json_object_get(m, "options"), "size=2m") &&
                   has_string(json_object_get(m, "options"), "nosuid"),
           "Tmpfs map: exec overrides noexec: %s", jdump(m));
        ok(strstr(jstr(find_mount(s, "/named"), "source"), "/volumes/named") != NULL, "named volume resolved");
        is_str(volume_log, "named@/named,nocopy|vol2@/m/vol,nocopy|-@/anon|-@/data",
               "volume requests: named, Mounts volume, Config.Volumes, image Volumes");
        struct stat st;
        char nd[600];
        snprintf(nd, sizeof(nd), "%s/newdir", tmpdir);
        ok(stat(nd, &st) == 0 && S_ISDIR(st.st_mode), "missing Binds source created through the callback");
        ok(mount_index(s, "/data/sub") > mount_index(s, "/named") && mount_index(s, "/m/tmp") > mount_index(s, "/run"),
           "parents mounted before deeper destinations");
        ok(mount_index(s, "/etc/hosts") < mount_index(s, "/named"), "engine files before user mounts");
        json_t *im = x.s->mounts;
        ok(json_array_size(im) == 9, "inspect Mounts: %zu", json_array_size(im));
        bool found = false;
        for (size_t i = 0; i < json_array_size(im); i++) {
                json_t *e = json_array_get(im, i);
                if (streq(jstr(e, "Destination"), "/data/sub"))
                        found = streq(jstr(e, "Type"), "bind") && json_is_false(jget(e, "RW")) &&
                                streq(jstr(e, "Mode"), "ro,rshared") && streq(jstr(e, "Propagation"), "rshared");
        }
        ok(found, "inspect Mounts entry for the bind");
        run_done(&x);

        /* a bind over a default destination replaces it */
        snprintf(body, sizeof(body), "{\"Image\":\"i\",\"HostConfig\":{\"Binds\":[\"%s:/dev/shm\"],\"ShmSize\":1048576}}",
                 path_bind);
        x = run(body);
        ok(x.r == 0 && streq(jstr(find_mount(x.s->spec, "/dev/shm"), "type"), "bind"), "user /dev/shm replaces the default");
        run_done(&x);

        x = run("{\"Image\":\"i\",\"HostConfig\":{\"ShmSize\":1048576}}");
        ok(x.r == 0 && has_string(json_object_get(find_mount(x.s->spec, "/dev/shm"), "options"), "size=1024k"),
           "ShmSize -> /dev/shm size");
        run_done(&x);

        x = run("{\"Image\":\"i\",\"HostConfig\":{\"ReadonlyRootfs\":true}}");
        ok(x.r == 0 && json_is_true(jget(x.s->spec, "root.readonly")) &&
                   has_string(json_object_get(find_mount(x.s->spec, "/etc/hosts"), "options"), "ro"),
           "ReadonlyRootfs: root and the engine's files read-only");
        run_done(&x);

        x = run("{\"Image\":\"i\",\"HostConfig\":{\"Mounts\":[{\"Type\":\"bind\",\"Source\":\"/nonexistent-src\","
                "\"Target\":\"/x\"}]}}");
        is_str(x.err,
               "HostConfig.Mounts[0]: invalid mount config for type \"bind\": bind source path does not exist: "
               "/nonexistent-src",
               "missing Mounts bind source");
        run_done(&x);

        x = run("{\"Image\":\"i\",\"HostConfig\":{\"Binds\":[\"broken:/b\"]}}");
        ok(x.r == -EIO && strstr(x.err, "HostConfig.Binds[0]") && strstr(x.err, "driver failed"),
           "volume callback error wrapped: %s", x.err);
        run_done(&x);
}

static void test_resources(void)
{
        struct run x = run("{\"Image\":\"i\",\"HostConfig\":{\"Memory\":104857600,\"MemoryReservation\":52428800,"
                           "\"MemorySwappiness\":10,\"OomKillDisable\":true,\"NanoCpus\":1500000000,\"CpuShares\":512,"
                           "\"CpusetCpus\":\"0\",\"CpusetMems\":\"0\",\"PidsLimit\":100,\"BlkioWeight\":300,"
                           "\"Ulimits\":[{\"Name\":\"nofile\",\"Soft\":1000,\"Hard\":2000},"
                           "{\"Name\":\"core\",\"Soft\":-1,\"Hard\":-1}],"
                           "\"Devices\":[{\"PathOnHost\":\"/dev/null\",\"PathInContainer\":\"/dev/mynull\","
                           "\"CgroupPermissions\":\"rw\"}],\"DeviceCgroupRules\":[\"c 42:* rmw\"],"
                           "\"Sysctls\":{\"net.ipv4.ip_forward\":\"1\",\"kernel.shmmax\":\"100000\"},"
                           "\"CgroupParent\":\"/mygroup\",\"Annotations\":{\"a.b\":\"c\"}}}");
        ok(x.r == 0, "resources build (%s)", x.err);
        if (x.r < 0)
                return;
        json_t *s = x.s->spec;
        is_int(jint(s, "linux.resources.memory.limit"), 104857600, "memory.limit");
        is_int(jint(s, "linux.resources.memory.reservation"), 52428800, "memory.reservation");
        is_int(jint(s, "linux.resources.memory.swap"), 209715200, "memory.swap defaults to twice Memory");
        is_int(jint(x.s->host_config, "MemorySwap"), 209715200, "HostConfig.MemorySwap filled");
        is_int(jint(s, "linux.resources.memory.swappiness"), 10, "memory.swappiness");
        ok(json_is_true(jget(s, "linux.resources.memory.disableOOMKiller")), "disableOOMKiller");
        is_int(jint(s, "linux.resources.cpu.period"), 100000, "NanoCpus -> period 100000");
        is_int(jint(s, "linux.resources.cpu.quota"), 150000, "NanoCpus -> quota 150000");
        is_int(jint(s, "linux.resources.cpu.shares"), 512, "cpu.shares");
        is_str(jstr(s, "linux.resources.cpu.cpus"), "0", "cpu.cpus");
        is_str(jstr(s, "linux.resources.cpu.mems"), "0", "cpu.mems");
        is_int(jint(s, "linux.resources.pids.limit"), 100, "pids.limit");
        is_int(jint(s, "linux.resources.blockIO.weight"), 300, "blockIO.weight");
        json_t *rl = jget(s, "process.rlimits");
        bool nofile = false, core = false;
        for (size_t i = 0; i < json_array_size(rl); i++) {
                json_t *e = json_array_get(rl, i);
                if (streq(jstr(e, "type"), "RLIMIT_NOFILE"))
                        nofile = jint(e, "soft") == 1000 && jint(e, "hard") == 2000;
                if (streq(jstr(e, "type"), "RLIMIT_CORE"))
                        core = json_is_real(jget(e, "soft")) && json_real_value(jget(e, "hard")) > 1.8e19;
        }
        ok(nofile, "nofile ulimit replaces the default: %s", jdump(rl));
        ok(core, "-1 ulimit -> RLIM_INFINITY");
        json_t *devs = jget(s, "linux.devices");
        ok(json_array_size(devs) == 1 && streq(jstr(devs, "[0].path"), "/dev/mynull") && jint(devs, "[0].major") == 1 &&
                   jint(devs, "[0].minor") == 3 && streq(jstr(devs, "[0].type"), "c"),
           "Devices -> linux.devices: %s", jdump(devs));
        json_t *rules = jget(s, "linux.resources.devices");
        size_t n = json_array_size(rules);
        ok(n == 14 && streq(jstr(rules, "[12].access"), "rw") && jint(rules, "[12].major") == 1 &&
                   streq(jstr(rules, "[13].access"), "rmw") && jint(rules, "[13].major") == 42 &&
                   !jget(rules, "[13].minor"),
           "device rules: deny, defaults, the device, the cgroup rule: %s", jdump(rules));
        json_t *sysctl = jget(s, "linux.sysctl");
        ok(streq(json_string_value(json_object_get(sysctl, "net.ipv4.ip_forward")), "1") &&
                   streq(json_string_value(json_object_get(sysctl, "kernel.shmmax")), "100000"),
           "sysctls: %s", jdump(sysctl));
        is_str(jstr(s, "linux.cgroupsPath"), "/mygroup/moat-" ID, "CgroupParent");
        is_str(json_string_value(json_object_get(jget(s, "annotations"), "a.b")), "c", "HostConfig.Annotations");
        ok(json_array_size(x.s->warnings) == 0, "no warnings: %s", jdump(x.s->warnings));
        run_done(&x);

        x = run("{\"Image\":\"i\",\"HostConfig\":{\"PidsLimit\":0}}");
        is_int(x.r == 0 ? jint(x.s->spec, "linux.resources.pids.limit") : 0, -1, "PidsLimit 0 -> unlimited (-1)");
        run_done(&x);
        x = run("{\"Image\":\"i\",\"HostConfig\":{\"PidsLimit\":-1}}");
        is_int(x.r == 0 ? jint(x.s->spec, "linux.resources.pids.limit") : 0, -1, "PidsLimit -1 -> unlimited");
        run_done(&x);
        x = run("{\"Image\":\"i\",\"HostConfig\":{\"CpuPeriod\":50000,\"CpuQuota\":25000,\"MemorySwap\":-1,"
                "\"Memory\":10000000}}");
        ok(x.r == 0 && jint(x.s->spec, "linux.resources.cpu.period") == 50000 &&
                   jint(x.s->spec, "linux.resources.cpu.quota") == 25000 &&
                   jint(x.s->spec, "linux.resources.memory.swap") == -1,
           "CpuPeriod/CpuQuota, MemorySwap -1 (%s)", x.err);
        run_done(&x);

        /* warnings */
        struct moat_docker_host host = { .ncpus = 2, .no_swap_limit = true };
        x = run_ctx("{\"Image\":\"i\",\"HostConfig\":{\"Memory\":10000000}}", &host, NULL);
        ok(x.r == 0 && json_array_size(x.s->warnings) == 1 &&
                   strstr(jstr(x.s->warnings, "[0]"), "does not support swap limit") &&
                   jint(x.s->spec, "linux.resources.memory.swap") == -1,
           "no swap limit: warning, swap unlimited (%s)", x.r ? x.err : jdump(x.s->warnings));
        run_done(&x);
        x = run("{\"Image\":\"i\",\"HostConfig\":{\"OomKillDisable\":true}}");
        ok(x.r == 0 && json_array_size(x.s->warnings) == 1 && strstr(jstr(x.s->warnings, "[0]"), "OOM killer is disabled"),
           "OomKillDisable without Memory warns");
        run_done(&x);
}

static void test_namespaces(void)
{
        struct run x = run("{\"Image\":\"i\",\"HostConfig\":{\"NetworkMode\":\"host\",\"PidMode\":\"host\","
                           "\"IpcMode\":\"host\",\"UTSMode\":\"host\",\"CgroupnsMode\":\"host\"}}");
        ok(x.r == 0, "host namespaces (%s)", x.err);
        if (x.r == 0) {
                json_t *s = x.s->spec;
                ok(!has_namespace(s, "network", NULL) && !has_namespace(s, "pid", NULL) &&
                           !has_namespace(s, "ipc", NULL) && !has_namespace(s, "uts", NULL) &&
                           !has_namespace(s, "cgroup", NULL) && has_namespace(s, "mount", NULL),
                   "only the mount namespace is new");
                ok(!jget(s, "hostname"), "no hostname set in the host's UTS namespace");
                is_str(x.s->hostname, "the-host", "hostname: the host's");
                ok(!jget(s, "linux.sysctl"), "no ping_group_range on the host's network");
                is_str(jstr(find_mount(s, "/dev/shm"), "source"), "/dev/shm", "IpcMode host: the host's /dev/shm");
                is_str(jstr(x.s->host_config, "NetworkMode"), "host", "NetworkMode host kept");
        }
        run_done(&x);

        x = run("{\"Image\":\"i\",\"HostConfig\":{\"NetworkMode\":\"container:other\",\"PidMode\":\"container:other\","
                "\"IpcMode\":\"container:other\"}}");
        ok(x.r == 0, "container: namespaces (%s)", x.err);
        if (x.r == 0) {
                const char *p = NULL;
                ok(has_namespace(x.s->spec, "network", &p) && p && streq(p, "/proc/4242/ns/net"), "netns path %s",
                   p ? p : "-");
                ok(has_namespace(x.s->spec, "pid", &p) && p && streq(p, "/proc/4242/ns/pid"), "pidns path");
                ok(has_namespace(x.s->spec, "ipc", &p) && p && streq(p, "/proc/4242/ns/ipc"), "ipcns path");
                is_str(jstr(find_mount(x.s->spec, "/dev/shm"), "source"), "/data/containers/f00f/shm",
                       "IpcMode container: its shareable /dev/shm, bound from the host");
        }
        run_done(&x);

        x = run("{\"Image\":\"i\",\"HostConfig\":{\"UTSMode\":\"container:other\"}}");
        ok(x.r == 0, "UTSMode container: (%s)", x.err);
        if (x.r == 0) {
                const char *p = NULL;
                ok(has_namespace(x.s->spec, "uts", &p) && p && streq(p, "/proc/4242/ns/uts"), "utsns path %s",
                   p ? p : "-");
                ok(!jget(x.s->spec, "hostname"), "no hostname set in the other's UTS namespace");
                is_str(x.s->hostname, "donor-name", "hostname: the other container's");
                is_str(jstr(x.s->config, "Hostname"), "", "not kept as the container's own");
        }
        run_done(&x);

        x = run("{\"Image\":\"i\",\"HostConfig\":{\"IpcMode\":\"shareable\"}}");
        ok(x.r == 0 && streq(jstr(find_mount(x.s->spec, "/dev/shm"), "type"), "bind") &&
                   streq(jstr(find_mount(x.s->spec, "/dev/shm"), "source"), "/data/containers/" ID "/shm"),
           "IpcMode shareable: /dev/shm bound from the engine's tmpfs (%s)", x.err);
        run_done(&x);

        x = run("{\"Image\":\"i\",\"HostConfig\":{\"NetworkMode\":\"container:ghost\"}}");
        ok(x.r == -ENOENT && strstr(x.err, "HostConfig.NetworkMode") && strstr(x.err, "No such container: ghost"),
           "unknown container: %s", x.err);
        run_done(&x);

        x = run("{\"Image\":\"i\",\"HostConfig\":{\"NetworkMode\":\"default\"},\"NetworkingConfig\":{"
                "\"EndpointsConfig\":{\"default\":{}}}}");
        ok(x.r == 0 && streq(x.c->network_mode, "none") && has_namespace(x.s->spec, "network", NULL),
           "docker CLI's \"default\" -> none, a new netns (%s)", x.err);
        run_done(&x);
}

struct bad {
        const char *body;
        const char *want;
};

static void test_errors(void)
{
        static const struct bad cases[] = {
                { "[]", "request body: must be a JSON object" },
                { "{}", "Config.Image: no image given" },
                { "{\"Image\":1}", "Image: must be a string, not an integer" },
                { "{\"Image\":\"i\",\"Tty\":\"yes\"}", "Tty: must be a boolean, not a string" },
                { "{\"Image\":\"i\",\"Env\":[1]}", "Env[0]: must be a string, not an integer" },
                { "{\"Image\":\"i\",\"Env\":[\"=x\"]}", "Config.Env[0]: invalid environment variable: =x" },
                { "{\"Image\":\"i\",\"HostConfig\":[]}", "HostConfig: must be an object, not an array" },
                { "{\"Image\":\"i\",\"HostConfig\":{\"Memory\":\"1g\"}}",
                  "HostConfig.Memory: must be an integer, not a string" },
                { "{\"Image\":\"i\",\"HostConfig\":{\"Memory\":1000}}",
                  "HostConfig.Memory: Minimum memory limit allowed is 6MB" },
                { "{\"Image\":\"i\",\"HostConfig\":{\"Memory\":10000000,\"MemorySwap\":9000000}}",
                  "HostConfig.MemorySwap: Minimum memoryswap limit should be larger than memory limit, see usage" },
                { "{\"Image\":\"i\",\"HostConfig\":{\"MemorySwap\":9000000}}",
                  "HostConfig.MemorySwap: You should always set the Memory limit when using Memoryswap limit, see usage" },
                { "{\"Image\":\"i\",\"HostConfig\":{\"MemoryReservation\":1000}}",
                  "HostConfig.MemoryReservation: Minimum memory reservation allowed is 6MB" },
                { "{\"Image\":\"i\",\"HostConfig\":{\"Memory\":10000000,\"MemoryReservation\":20000000}}",
                  "HostConfig.MemoryReservation: Minimum memory limit can not be less than memory reservation limit, "
                  "see usage" },
                { "{\"Image\":\"i\",\"HostConfig\":{\"MemorySwappiness\":101}}",
                  "HostConfig.MemorySwappiness: Invalid value: 101, valid memory swappiness range is 0-100" },
                { "{\"Image\":\"i\",\"HostConfig\":{\"NanoCpus\":1000000000,\"CpuPeriod\":100000}}",
                  "HostConfig.NanoCpus: Conflicting options: Nano CPUs and CPU Period cannot both be set" },
                { "{\"Image\":\"i\",\"HostConfig\":{\"NanoCpus\":1000000000,\"CpuQuota\":100000}}",
                  "HostConfig.NanoCpus: Conflicting options: Nano CPUs and CPU Quota cannot both be set" },
                { "{\"Image\":\"i\",\"HostConfig\":{\"NanoCpus\":-1}}",
                  "HostConfig.NanoCpus: Range of CPUs is from 0.01 to 2.00, as there are only 2 CPUs available" },
                { "{\"Image\":\"i\",\"HostConfig\":{\"CpuPeriod\":10}}",
                  "HostConfig.CpuPeriod: CPU cfs period can not be less than 1ms (i.e. 1000) or larger than 1s (i.e. "
                  "1000000)" },
                { "{\"Image\":\"i\",\"HostConfig\":{\"CpuQuota\":10}}",
                  "HostConfig.CpuQuota: CPU cfs quota can not be less than 1ms (i.e. 1000)" },
                { "{\"Image\":\"i\",\"HostConfig\":{\"CpuShares\":-2}}", "HostConfig.CpuShares: shares: invalid argument" },
                { "{\"Image\":\"i\",\"HostConfig\":{\"CpusetCpus\":\"0-x\"}}",
                  "HostConfig.CpusetCpus: Invalid value 0-x for cpuset cpus" },
                { "{\"Image\":\"i\",\"HostConfig\":{\"CpusetCpus\":\"7\"}}",
                  "HostConfig.CpusetCpus: Requested CPUs are not available - requested 7, available: 0-1" },
                { "{\"Image\":\"i\",\"HostConfig\":{\"BlkioWeight\":5}}",
                  "HostConfig.BlkioWeight: Range of blkio weight is from 10 to 1000" },
                { "{\"Image\":\"i\",\"HostConfig\":{\"BlkioDeviceReadBps\":[{\"Path\":\"dev/sda\",\"Rate\":1}]}}",
                  "HostConfig.BlkioDeviceReadBps[0].Path: must be an absolute device path" },
                { "{\"Image\":\"i\",\"HostConfig\":{\"BlkioDeviceWriteIOps\":[{\"Path\":\"/dev/sda\",\"Rate\":-1}]}}",
                  "HostConfig.BlkioDeviceWriteIOps[0].Rate: must be a number >= 0" },
                { "{\"Image\":\"i\",\"HostConfig\":{\"BlkioWeightDevice\":[{\"Path\":\"/dev/sda\",\"Weight\":5}]}}",
                  "HostConfig.BlkioWeightDevice[0].Weight: Range of blkio weight is from 10 to 1000" },
                { "{\"Image\":\"i\",\"HostConfig\":{\"ShmSize\":-1}}", "HostConfig.ShmSize: SHM size can not be less than 0" },
                { "{\"Image\":\"i\",\"HostConfig\":{\"OomScoreAdj\":1001}}",
                  "HostConfig.OomScoreAdj: Invalid value 1001, range for oom score adj is [-1000, 1000]" },
                { "{\"Image\":\"i\",\"HostConfig\":{\"RestartPolicy\":{\"Name\":\"sometimes\"}}}",
                  "HostConfig.RestartPolicy: invalid restart policy: unknown policy 'sometimes'; use one of 'no', "
                  "'always', 'on-failure', or 'unless-stopped'" },
                { "{\"Image\":\"i\",\"HostConfig\":{\"RestartPolicy\":{\"Name\":\"always\",\"MaximumRetryCount\":3}}}",
                  "HostConfig.RestartPolicy: invalid restart policy: maximum retry count can only be used with "
                  "'on-failure'" },
                { "{\"Image\":\"i\",\"HostConfig\":{\"RestartPolicy\":{\"Name\":\"on-failure\",\"MaximumRetryCount\":-1}}}",
                  "HostConfig.RestartPolicy: invalid restart policy: maximum retry count cannot be negative" },
                { "{\"Image\":\"i\",\"HostConfig\":{\"AutoRemove\":true,\"RestartPolicy\":{\"Name\":\"always\"}}}",
                  "HostConfig.AutoRemove: can't create 'AutoRemove' container with restart policy" },
                { "{\"Image\":\"i\",\"HostConfig\":{\"NetworkMode\":\"bridge\"}}",
                  "HostConfig.NetworkMode: bridge networking is not supported yet" },
                { "{\"Image\":\"i\",\"HostConfig\":{\"NetworkMode\":\"mynet\"}}",
                  "HostConfig.NetworkMode: network mynet not found (user-defined networks are not supported yet)" },
                { "{\"Image\":\"i\",\"HostConfig\":{\"PortBindings\":{\"80/tcp\":[{\"HostPort\":\"8080\"}]}}}",
                  "HostConfig.PortBindings: port publishing is not supported yet" },
                { "{\"Image\":\"i\",\"Hostname\":\"h\",\"HostConfig\":{\"NetworkMode\":\"container:other\"}}",
                  "Config.Hostname: conflicting options: hostname and the network mode" },
                { "{\"Image\":\"i\",\"HostConfig\":{\"SecurityOpt\":[\"apparmor=docker-default\"]}}",
                  "HostConfig.SecurityOpt[0]: \"apparmor=docker-default\": AppArmor is not active on this host; only "
                  "apparmor=unconfined is accepted" },
                { "{\"Image\":\"i\",\"HostConfig\":{\"SecurityOpt\":[\"label=type:svirt_t\"]}}",
                  "HostConfig.SecurityOpt[0]: \"label=type:svirt_t\": SELinux is not active on this host; only "
                  "label=disable is accepted" },
                { "{\"Image\":\"i\",\"HostConfig\":{\"SecurityOpt\":[\"no-new-privileges=maybe\"]}}",
                  "HostConfig.SecurityOpt[0]: invalid --security-opt 2: \"no-new-privileges=maybe\"" },
                { "{\"Image\":\"i\",\"HostConfig\":{\"SecurityOpt\":[\"bogus\"]}}",
                  "HostConfig.SecurityOpt[0]: invalid --security-opt 1: \"bogus\"" },
                { "{\"Image\":\"i\",\"HostConfig\":{\"Ulimits\":[{\"Name\":\"files\",\"Soft\":1,\"Hard\":1}]}}",
                  "HostConfig.Ulimits[0].Name: invalid ulimit type: files" },
                { "{\"Image\":\"i\",\"HostConfig\":{\"Ulimits\":[{\"Name\":\"nofile\",\"Soft\":10,\"Hard\":1}]}}",
                  "HostConfig.Ulimits[0]: ulimit soft limit must be less than or equal to hard limit: 10 > 1" },
                { "{\"Image\":\"i\",\"HostConfig\":{\"Devices\":[{\"PathOnHost\":\"/dev/null\",\"CgroupPermissions\":\"rx\"}]}}",
                  "HostConfig.Devices[0].CgroupPermissions: invalid device mode: rx" },
                { "{\"Image\":\"i\",\"HostConfig\":{\"Devices\":[{\"PathOnHost\":\"/etc/passwd\"}]}}",
                  "HostConfig.Devices[0]: error gathering device information while adding custom device \"/etc/passwd\": "
                  "not a device node" },
                { "{\"Image\":\"i\",\"HostConfig\":{\"DeviceCgroupRules\":[\"x 1:2 r\"]}}",
                  "HostConfig.DeviceCgroupRules[0]: invalid device cgroup rule format: 'x 1:2 r'" },
                { "{\"Image\":\"i\",\"HostConfig\":{\"Sysctls\":{\"kernel.core_pattern\":\"|/x\"}}}",
                  "HostConfig.Sysctls: sysctl 'kernel.core_pattern' is not allowed" },
                { "{\"Image\":\"i\",\"HostConfig\":{\"NetworkMode\":\"host\",\"Sysctls\":{\"net.ipv4.ip_forward\":\"1\"}}}",
                  "HostConfig.Sysctls: sysctl 'net.ipv4.ip_forward' not allowed in host network namespace" },
                { "{\"Image\":\"i\",\"HostConfig\":{\"IpcMode\":\"host\",\"Sysctls\":{\"kernel.shmmax\":\"1\"}}}",
                  "HostConfig.Sysctls: sysctl 'kernel.shmmax' is not allowed in the host's or another container's IPC "
                  "namespace" },
                { "{\"Image\":\"i\",\"HostConfig\":{\"PidMode\":\"weird\"}}", "HostConfig.PidMode: invalid PID mode: weird" },
                { "{\"Image\":\"i\",\"HostConfig\":{\"IpcMode\":\"weird\"}}", "HostConfig.IpcMode: invalid IPC mode: weird" },
                { "{\"Image\":\"i\",\"HostConfig\":{\"UTSMode\":\"weird\"}}",
                  "HostConfig.UTSMode: invalid UTS mode: weird" },
                { "{\"Image\":\"i\",\"Hostname\":\"h\",\"HostConfig\":{\"UTSMode\":\"container:x\"}}",
                  "Config.Hostname: conflicting options: hostname and the UTS mode" },
                { "{\"Image\":\"i\",\"HostConfig\":{\"Isolation\":\"hyperv\"}}",
                  "HostConfig.Isolation: invalid isolation: \"hyperv\" - linux only supports 'default'" },
                { "{\"Image\":\"i\",\"HostConfig\":{\"LogConfig\":{\"Type\":\"syslog\"}}}",
                  "HostConfig.LogConfig.Type: logger: no log driver named 'syslog' is registered" },
                { "{\"Image\":\"i\",\"HostConfig\":{\"Binds\":[\"a:b:c:d\"]}}",
                  "HostConfig.Binds[0]: invalid volume specification: 'a:b:c:d'" },
                { "{\"Image\":\"i\",\"HostConfig\":{\"Binds\":[\"/src:rel\"]}}",
                  "HostConfig.Binds[0]: invalid mount config for type \"bind\": invalid mount path: 'rel' mount path "
                  "must be absolute" },
                { "{\"Image\":\"i\",\"HostConfig\":{\"Binds\":[\"/src:/\"]}}",
                  "HostConfig.Binds[0]: invalid specification: destination can't be '/'" },
                { "{\"Image\":\"i\",\"HostConfig\":{\"Binds\":[\"/src:/dst:rx\"]}}", "HostConfig.Binds[0]: invalid mode: rx" },
                { "{\"Image\":\"i\",\"HostConfig\":{\"Binds\":[\"/src:/dst:ro,rw\"]}}",
                  "HostConfig.Binds[0]: invalid mode: ro,rw" },
                { "{\"Image\":\"i\",\"HostConfig\":{\"Binds\":[\"vol:/dst:rshared\"]}}",
                  "HostConfig.Binds[0]: invalid mode: rshared" },
                { "{\"Image\":\"i\",\"HostConfig\":{\"Binds\":[\"a$b:/dst\"]}}",
                  "HostConfig.Binds[0]: \"a$b\" includes invalid characters for a local volume name, only "
                  "\"[a-zA-Z0-9][a-zA-Z0-9_.-]\" are allowed. If you intended to pass a host directory, use absolute path" },
                { "{\"Image\":\"i\",\"HostConfig\":{\"Binds\":[\"/a:/x\",\"/b:/x/\"]}}",
                  "HostConfig.Binds[1]: Duplicate mount point: /x" },
                { "{\"Image\":\"i\",\"HostConfig\":{\"Mounts\":[{\"Type\":\"bind\",\"Target\":\"/x\"}]}}",
                  "HostConfig.Mounts[0]: invalid mount config for type \"bind\": field Source must not be empty" },
                { "{\"Image\":\"i\",\"HostConfig\":{\"Mounts\":[{\"Type\":\"tmpfs\",\"Source\":\"/s\",\"Target\":\"/x\"}]}}",
                  "HostConfig.Mounts[0]: invalid mount config for type \"tmpfs\": field Source must not be specified" },
                { "{\"Image\":\"i\",\"HostConfig\":{\"Mounts\":[{\"Type\":\"volume\",\"Target\":\"/x\",\"BindOptions\":{}}]}}",
                  "HostConfig.Mounts[0]: invalid mount config for type \"volume\": field BindOptions must not be "
                  "specified" },
                { "{\"Image\":\"i\",\"HostConfig\":{\"Mounts\":[{\"Type\":\"fuse\",\"Target\":\"/x\"}]}}",
                  "HostConfig.Mounts[0]: invalid mount config for type \"fuse\": mount type unknown" },
                { "{\"Image\":\"i\",\"HostConfig\":{\"Mounts\":[{\"Type\":\"tmpfs\"}]}}",
                  "HostConfig.Mounts[0]: invalid mount config for type \"tmpfs\": field Target must not be empty" },
                { "{\"Image\":\"i\",\"HostConfig\":{\"Mounts\":[{\"Type\":\"bind\",\"Source\":\"/s\",\"Target\":\"/x\","
                  "\"BindOptions\":{\"Propagation\":\"sideways\"}}]}}",
                  "HostConfig.Mounts[0].BindOptions.Propagation: invalid propagation mode: sideways" },
                { "{\"Image\":\"i\",\"HostConfig\":{\"Tmpfs\":{\"/t\":\"rbind\"}}}",
                  "HostConfig.Tmpfs[\"/t\"]: unknown tmpfs option \"rbind\"" },
                { "{\"Image\":\"i\",\"HostConfig\":{\"Tmpfs\":{\"t\":\"\"}}}",
                  "HostConfig.Tmpfs[\"t\"]: invalid mount config for type \"tmpfs\": invalid mount path: 't' mount path "
                  "must be absolute" },
                { "{\"Image\":\"i\",\"Healthcheck\":{\"Test\":[\"CMD\",\"true\"],\"Interval\":10}}",
                  "Healthcheck.Interval: Interval in Healthcheck cannot be less than 1ms" },
                { "{\"Image\":\"i\",\"Healthcheck\":{\"Retries\":-1}}",
                  "Healthcheck.Retries: Retries in Healthcheck cannot be negative" },
                { "{\"Image\":\"i\",\"Healthcheck\":{\"Test\":[\"RUN\",\"x\"]}}",
                  "Healthcheck.Test[0]: must be NONE, CMD or CMD-SHELL, not \"RUN\"" },
                { "{\"Image\":\"i\",\"StopSignal\":\"SIGFOO\"}", "Config.StopSignal: Invalid signal: SIGFOO" },
                { "{\"Image\":\"i\",\"WorkingDir\":\"rel\"}",
                  "Config.WorkingDir: the working directory 'rel' is invalid, it needs to be an absolute path" },
                { "{\"Image\":\"i\",\"Hostname\":\"a/b\"}", "Config.Hostname: invalid hostname (a/b)" },
                { "{\"Image\":\"i\",\"ExposedPorts\":{\"80/xtp\":{}}}", "Config.ExposedPorts[\"80/xtp\"]: invalid port \"80/xtp\"" },
                { "{\"Image\":\"i\",\"ConsoleSize\":[1]}", NULL },
                { "{\"Image\":\"i\",\"HostConfig\":{\"ConsoleSize\":[1]}}",
                  "HostConfig.ConsoleSize: must be an array of two integers [height, width]" },
                { "{\"Image\":\"i\",\"HostConfig\":{\"VolumesFrom\":[\"x:rx\"]}}",
                  "HostConfig.VolumesFrom[0]: invalid mode: rx (ro or rw)" },
                { "{\"Image\":\"i\",\"HostConfig\":{\"VolumesFrom\":[\":ro\"]}}",
                  "HostConfig.VolumesFrom[0]: a container name or id is needed" },
                { "{\"Image\":\"i\",\"HostConfig\":{\"UsernsMode\":\"private\"}}",
                  "HostConfig.UsernsMode: user namespaces are not supported yet" },
                { "{\"Image\":\"i\",\"HostConfig\":{\"CgroupParent\":\"../escape\"}}",
                  "HostConfig.CgroupParent: \"../escape\" is not a valid cgroup path" },
                { "{\"Image\":\"i\",\"HostConfig\":{\"Runtime\":\"kata\"}}",
                  "HostConfig.Runtime: unknown or invalid runtime name: kata" },
                { "{\"Image\":\"i\",\"HostConfig\":{\"Annotations\":{\"org.moat.x\":\"y\"}}}",
                  "HostConfig.Annotations[\"org.moat.x\"]: the org.moat. prefix is reserved" },
                { "{\"Image\":\"i\",\"HostConfig\":{\"CpuRealtimeRuntime\":5}}",
                  "HostConfig.CpuRealtimePeriod: real-time CPU scheduling limits are not supported" },
                { "{\"Image\":\"i\",\"NetworkingConfig\":{\"EndpointsConfig\":{\"a\":{},\"b\":{}}}}",
                  "NetworkingConfig.EndpointsConfig: Container cannot be connected to network endpoints of more than one "
                  "network" },
        };
        struct moat_docker_host host = { .ncpus = 2 };
        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                struct run x = run_ctx(cases[i].body, &host, NULL);
                if (!cases[i].want)
                        ok(x.r == 0, "accepted: %s (%s)", cases[i].body, x.err);
                else
                        is_str(x.r < 0 ? x.err : "(accepted)", cases[i].want, "refused: %.80s", cases[i].body);
                run_done(&x);
        }

        /* bounds */
        size_t n = MOAT_DOCKER_ARRAY_MAX + 1;
        char *big = malloc(n * 4 + 64);
        strcpy(big, "{\"Image\":\"i\",\"Env\":[");
        for (size_t i = 0; i < n; i++)
                strcat(big + strlen(big) - 0, i ? ",\"\"" : "\"\"");
        strcat(big, "]}");
        struct run x = run(big);
        ok(x.r == -E2BIG && strstr(x.err, "Env: more than 4096 entries"), "array bound: %s", x.err);
        run_done(&x);
        free(big);
        big = malloc(MOAT_DOCKER_STRING_MAX + 64);
        strcpy(big, "{\"Image\":\"");
        memset(big + strlen(big), 'a', MOAT_DOCKER_STRING_MAX + 1);
        strcpy(big + 10 + MOAT_DOCKER_STRING_MAX + 1, "\"}");
        x = run(big);
        ok(x.r == -E2BIG && strstr(x.err, "Image: longer than"), "string bound: %s", x.err);
        run_done(&x);
        free(big);

        /* unknown fields are ignored, as docker does */
        x = run("{\"Image\":\"i\",\"Bogus\":[1,2],\"HostConfig\":{\"Nope\":{}}}");
        ok(x.r == 0 && !json_object_get(x.s->host_config, "Nope"), "unknown fields ignored and dropped");
        run_done(&x);
}

static void test_normalised(void)
{
        struct run x = run("{\"Image\":\"i\",\"Tty\":true,\"OpenStdin\":true,\"StdinOnce\":true,\"AttachStdin\":true,"
                           "\"StopTimeout\":5,\"StopSignal\":\"SIGUSR1\",\"Labels\":{\"k\":\"v\",\"from\":\"body\"},"
                           "\"HostConfig\":{\"AutoRemove\":true,\"RestartPolicy\":{\"Name\":\"\",\"MaximumRetryCount\":0},"
                           "\"LogConfig\":{\"Type\":\"local\",\"Config\":{\"max-size\":\"10m\"}},\"MemorySwappiness\":-1}}");
        ok(x.r == 0, "normalised (%s)", x.err);
        if (x.r < 0)
                return;
        ok(x.c->tty && x.c->open_stdin && x.c->stdin_once && x.c->attach_stdin && !x.c->attach_stdout && x.c->auto_remove,
           "stdio and AutoRemove shortcuts");
        ok(x.c->has_stop_timeout && x.c->stop_timeout == 5, "StopTimeout");
        is_str(x.c->log_driver, "local", "log driver");
        is_str(jdump(jget(x.s->host_config, "LogConfig.Config")), "{\"max-size\":\"10m\"}", "LogConfig.Config kept");
        is_str(jstr(x.s->host_config, "RestartPolicy.Name"), "no", "empty restart policy name -> no");
        ok(json_is_null(jget(x.s->host_config, "MemorySwappiness")), "MemorySwappiness -1 -> null (docker's unset)");
        is_str(jstr(x.s->config, "StopSignal"), "SIGUSR1", "StopSignal kept");
        is_str(jstr(x.s->config, "Labels.from"), "body", "body labels win over the image's");
        is_str(jstr(x.s->config, "Labels.k"), "v", "body label");
        run_done(&x);
}

/* ---- set-up ---- */

#define IMAGE_CONFIG                                                                                           \
        "{\"architecture\":\"amd64\",\"os\":\"linux\",\"rootfs\":{\"type\":\"layers\",\"diff_ids\":[]},"      \
        "\"config\":{\"Entrypoint\":[\"/entry\"],\"Cmd\":[\"image-cmd\"],\"Env\":[\"PATH=/bin\",\"IMG=1\"],"   \
        "\"WorkingDir\":\"/srv\",\"Labels\":{\"from\":\"image\"},\"ExposedPorts\":{\"80/tcp\":{}},"            \
        "\"Volumes\":{\"/data\":{}}}}"

static int setup(void)
{
        char p[600];
        if (!mkdtemp(tmpdir))
                return -1;
        snprintf(p, sizeof(p), "%s/root", tmpdir);
        if (mkdir(p, 0755) < 0)
                return -1;
        root_fd = open(p, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (root_fd < 0 || mkdirat(root_fd, "etc", 0755) < 0)
                return -1;
        _cleanup_close_ int etc = openat(root_fd, "etc", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        static const char passwd[] = "root:x:0:0:root:/root:/bin/sh\napp:x:1000:1000::/home/app:/bin/sh\n";
        static const char group[] = "root:x:0:\napp:x:1000:\naudio:x:29:app\n";
        if (etc < 0 || write_file_replace_at(etc, "passwd", passwd, strlen(passwd), 0644) < 0 ||
            write_file_replace_at(etc, "group", group, strlen(group), 0644) < 0)
                return -1;
        snprintf(p, sizeof(p), "%s/volumes", tmpdir);
        if (mkdir(p, 0755) < 0)
                return -1;
        snprintf(path_bind, sizeof(path_bind), "%s/bindsrc", tmpdir);
        if (mkdir(path_bind, 0755) < 0)
                return -1;
        struct {
                char *path;
                const char *name;
                const char *content;
        } files[] = {
                { path_hostname, "hostname", "h\n" },
                { path_hosts, "hosts", "127.0.0.1 localhost\n" },
                { path_resolv, "resolv.conf", "" },
                { path_init, "tini", "#!/bin/true\n" },
                { path_seccomp, "profile.json", "{\"defaultAction\":\"SCMP_ACT_LOG\",\"syscalls\":[]}" },
        };
        _cleanup_close_ int dir = open(tmpdir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        for (size_t i = 0; i < ELEMENTSOF(files); i++) {
                snprintf(files[i].path, 512, "%s/%s", tmpdir, files[i].name);
                if (write_file_replace_at(dir, files[i].name, files[i].content, strlen(files[i].content), 0644) < 0)
                        return -1;
        }
        _cleanup_error_ struct moat_error *err = NULL;
        if (oci_image_doc_parse(IMAGE_CONFIG, strlen(IMAGE_CONFIG), OCI_MT_CONFIG, &image, &err) < 0) {
                printf("# image config: %s\n", err ? err->msg : "?");
                return -1;
        }
        return 0;
}

static void cleanup(void)
{
        char cmd[600];
        if (root_fd >= 0)
                close(root_fd);
        oci_image_doc_free(image);
        if (strncmp(tmpdir, "/tmp/moat-test-dspec-", 21) == 0 && !strstr(tmpdir, "XXXXXX")) {
                snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpdir);
                if (system(cmd) != 0)
                        printf("# could not remove %s\n", tmpdir);
        }
}

int main(void)
{
        if (setup() < 0) {
                printf("Bail out! set-up failed: %m\n");
                cleanup();
                return 1;
        }
        test_minimal();
        test_process();
        test_capabilities();
        test_privileged();
        test_security_opts();
        test_mounts();
        test_resources();
        test_namespaces();
        test_errors();
        test_normalised();
        cleanup();
        return tap_done();
}
