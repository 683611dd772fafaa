/* SPDX-License-Identifier: Apache-2.0 */
#include "base/compat.h"

/*
 * Unit tests of src/runtime/seccomp.c: the default profile generator (its
 * capability-dependent rules, and that data/seccomp/default.json is its
 * output), the JSON-to-filter errors, the unknown-name warning, the cache
 * (hit, corrupt file, validation) and real filters installed in forked
 * children.
 */

#include <fcntl.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <stdio.h>
#include <sys/capability.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <jansson.h>
#include <nettle/sha2.h>

#include "base/cleanup.h"
#include "base/fileio.h"
#include "runtime/seccomp.h"
#include "tap.h"

#define CAPBIT(c) (UINT64_C(1) << (c))

static char tmpdir[] = "/tmp/moat-test-seccomp-XXXXXX";

/* The syscalls[] entries of a profile that name `name`. */
static size_t entries_naming(const json_t *profile, const char *name, json_t **first)
{
        size_t count = 0, i, j;
        json_t *e, *n;
        *first = NULL;
        json_array_foreach(json_object_get(profile, "syscalls"), i, e)
                json_array_foreach(json_object_get(e, "names"), j, n)
                        if (streq(json_string_value(n), name)) {
                                if (!count)
                                        *first = e;
                                count++;
                        }
        return count;
}

static bool allowed_unconditionally(const json_t *profile, const char *name)
{
        size_t i, j;
        json_t *e, *n;
        json_array_foreach(json_object_get(profile, "syscalls"), i, e) {
                if (!streq(json_string_value(json_object_get(e, "action")), "SCMP_ACT_ALLOW") ||
                    json_object_get(e, "args"))
                        continue;
                json_array_foreach(json_object_get(e, "names"), j, n)
                        if (streq(json_string_value(n), name))
                                return true;
        }
        return false;
}

static int warnings;
static void warn_count(const char *m)
{
        warnings++;
        printf("# warning: %s\n", m);
}

static void test_profile(void)
{
        uint64_t def = moat_default_capability_mask();
        json_t *p = NULL, *e;

        size_t n_caps = 0;
        for (const char *const *c = moat_default_capabilities; *c; c++) {
                cap_value_t v;
                ok(cap_from_name(*c, &v) == 0 && (def & CAPBIT(v)), "%s is in the default mask", *c);
                n_caps++;
        }
        is_int(n_caps, 11, "11 default capabilities");
        is_int(__builtin_popcountll(def), 11, "the mask has 11 bits");
        ok(!(def & (CAPBIT(CAP_NET_RAW) | CAPBIT(CAP_MKNOD) | CAPBIT(CAP_AUDIT_WRITE) | CAPBIT(CAP_SYS_ADMIN))),
           "no NET_RAW, MKNOD, AUDIT_WRITE or SYS_ADMIN by default");

        ok(moat_seccomp_default_profile(def, &p) == 0, "default profile renders");
        is_str(json_string_value(json_object_get(p, "defaultAction")), "SCMP_ACT_ERRNO", "deny by default");
        is_int(json_integer_value(json_object_get(p, "defaultErrnoRet")), EPERM, "with EPERM");
        ok(allowed_unconditionally(p, "read") && allowed_unconditionally(p, "execve") &&
                   allowed_unconditionally(p, "chroot"),
           "read, execve and chroot (SYS_CHROOT is a default cap) allowed");
        static const char *const denied[] = { "mount", "umount2", "pivot_root", "move_mount", "fsopen", "keyctl",
                                              "add_key", "request_key", "bpf", "perf_event_open", "userfaultfd",
                                              "io_uring_setup", "kexec_load", "init_module", "finit_module",
                                              "delete_module", "open_by_handle_at", "reboot", "swapon", "iopl",
                                              "acct", "settimeofday", "clock_settime", "adjtimex", "setns",
                                              "ptrace", "process_vm_readv", NULL };
        for (const char *const *d = denied; *d; d++)
                is_int(entries_naming(p, *d, &e), 0, "%s is not named (EPERM) with the default caps", *d);

        is_int(entries_naming(p, "clone", &e), 1, "one clone rule");
        json_t *arg = json_array_get(json_object_get(e, "args"), 0);
        ok(arg && streq(json_string_value(json_object_get(arg, "op")), "SCMP_CMP_MASKED_EQ") &&
                   json_integer_value(json_object_get(arg, "value")) == 0x7E020000 &&
                   json_integer_value(json_object_get(arg, "valueTwo")) == 0,
           "clone only without namespace flags");
        is_int(entries_naming(p, "unshare", &e), 1, "one unshare rule");
        arg = json_array_get(json_object_get(e, "args"), 0);
        ok(arg && json_integer_value(json_object_get(arg, "value")) == 0x7E020080,
           "unshare only without namespace flags (time namespace included)");
        is_int(entries_naming(p, "clone3", &e), 1, "one clone3 rule");
        ok(streq(json_string_value(json_object_get(e, "action")), "SCMP_ACT_ERRNO") &&
                   json_integer_value(json_object_get(e, "errnoRet")) == ENOSYS,
           "clone3 answers ENOSYS");
        is_int(entries_naming(p, "personality", &e), 5, "five personality values");
        size_t n_socket = entries_naming(p, "socket", &e);
        ok(n_socket >= 2, "socket has conditional rules");
        size_t i;
        json_t *s;
        bool alg_or_vsock = false;
        json_array_foreach(json_object_get(p, "syscalls"), i, s) {
                json_t *a = json_array_get(json_object_get(s, "args"), 0);
                if (!a || !streq(json_string_value(json_array_get(json_object_get(s, "names"), 0)), "socket"))
                        continue;
                json_int_t v = json_integer_value(json_object_get(a, "value"));
                const char *op = json_string_value(json_object_get(a, "op"));
                if ((streq(op, "SCMP_CMP_EQ") && (v == 38 || v == 40)) || (streq(op, "SCMP_CMP_LT") && v > 38) ||
                    !(streq(op, "SCMP_CMP_EQ") || streq(op, "SCMP_CMP_LT")))
                        alg_or_vsock = true;
        }
        ok(!alg_or_vsock, "no socket rule lets AF_ALG or AF_VSOCK through");
        json_decref(p);

        /* Capabilities open their syscalls. */
        ok(moat_seccomp_default_profile(def | CAPBIT(CAP_SYS_ADMIN), &p) == 0, "profile with SYS_ADMIN");
        ok(allowed_unconditionally(p, "mount") && allowed_unconditionally(p, "setns") &&
                   allowed_unconditionally(p, "unshare") && allowed_unconditionally(p, "clone") &&
                   allowed_unconditionally(p, "clone3") && allowed_unconditionally(p, "bpf"),
           "SYS_ADMIN opens mount, setns, unshare, clone, clone3, bpf");
        is_int(entries_naming(p, "clone", &e), 1, "clone is named once (no conditional rule left)");
        is_int(entries_naming(p, "clone3", &e), 1, "clone3 is named once (no ENOSYS rule left)");
        is_int(entries_naming(p, "bpf", &e), 1, "bpf is named once");
        json_decref(p);

        ok(moat_seccomp_default_profile(def | CAPBIT(CAP_SYS_PTRACE), &p) == 0, "profile with SYS_PTRACE");
        ok(allowed_unconditionally(p, "ptrace") && allowed_unconditionally(p, "process_vm_readv") &&
                   !allowed_unconditionally(p, "mount"),
           "SYS_PTRACE opens ptrace and process_vm_*, not mount");
        json_decref(p);

        ok(moat_seccomp_default_profile(def | CAPBIT(CAP_SYS_TIME) | CAPBIT(CAP_SYS_BOOT) | CAPBIT(CAP_SYS_MODULE),
                                        &p) == 0,
           "profile with SYS_TIME, SYS_BOOT, SYS_MODULE");
        ok(allowed_unconditionally(p, "settimeofday") && allowed_unconditionally(p, "clock_settime") &&
                   allowed_unconditionally(p, "reboot") && allowed_unconditionally(p, "init_module"),
           "they open settimeofday, clock_settime, reboot, init_module");
        is_int(entries_naming(p, "kexec_load", &e), 0, "kexec_load stays closed");
        is_int(entries_naming(p, "io_uring_setup", &e), 0, "io_uring stays closed");
        json_decref(p);

        ok(moat_seccomp_default_profile(CAPBIT(CAP_BPF), &p) == 0, "profile with only BPF");
        ok(allowed_unconditionally(p, "bpf") && !allowed_unconditionally(p, "chroot"),
           "BPF opens bpf; without SYS_CHROOT, chroot is closed");
        json_decref(p);

        /* Every rendering is a valid linux.seccomp object that libseccomp
         * compiles without unknown names. */
        uint64_t sets[] = { 0, def, def | CAPBIT(CAP_SYS_ADMIN), UINT64_C(0xffffffffff) };
        for (size_t k = 0; k < ELEMENTSOF(sets); k++) {
                _cleanup_error_ struct moat_error *err = NULL;
                struct moat_seccomp *sc = NULL;
                warnings = 0;
                ok(moat_seccomp_default_profile(sets[k], &p) == 0 &&
                           moat_seccomp_prepare_json(p, NULL, warn_count, &sc, &err) == 0,
                   "caps %#llx: the profile compiles (%s)", (unsigned long long) sets[k], err ? err->msg : "");
                is_int(warnings, 0, "caps %#llx: no unknown syscall names", (unsigned long long) sets[k]);
                moat_seccomp_free(sc);
                json_decref(p);
        }
}

static void test_default_json(void)
{
#if defined(__x86_64__)
        const char *src = getenv("MOAT_SOURCE_ROOT");
        char path[4096];
        snprintf(path, sizeof(path), "%s/data/seccomp/default.json", src ? src : ".");
        json_error_t jerr;
        json_t *file = json_load_file(path, 0, &jerr);
        json_t *p = NULL;
        ok(file != NULL, "data/seccomp/default.json parses (%s)", file ? "" : jerr.text);
        ok(moat_seccomp_default_profile(moat_default_capability_mask(), &p) == 0 && json_equal(file, p),
           "data/seccomp/default.json is the generator's output for the default caps");
        json_decref(file);
        json_decref(p);
#else
        printf("ok %d # SKIP data/seccomp/default.json is the x86_64 rendering\n", ++tap_count);
#endif
}

static const char *warned;
static int n_warned;
static void warn_keep(const char *m)
{
        free((char *) warned);
        warned = strdup(m);
        n_warned++;
}

/* prepare_json on a JSON text (single quotes for double); returns the
 * error message or NULL on success. */
static char *prepare_err(const char *text)
{
        char buf[4096];
        snprintf(buf, sizeof(buf), "%s", text);
        for (char *c = buf; *c; c++)
                if (*c == '\'')
                        *c = '"';
        json_error_t jerr;
        json_t *j = json_loads(buf, 0, &jerr);
        if (!j)
                return strdup("(test bug: bad JSON)");
        _cleanup_error_ struct moat_error *err = NULL;
        struct moat_seccomp *s = NULL;
        int r = moat_seccomp_prepare_json(j, NULL, warn_keep, &s, &err);
        json_decref(j);
        moat_seccomp_free(s);
        if (r >= 0)
                return NULL;
        return strdup(err ? err->msg : "(no message)");
}

static void fails_with(const char *text, const char *want)
{
        _cleanup_free_ char *msg = prepare_err(text);
        ok(msg && strstr(msg, want), "error \"%s\"", want);
        if (!msg || !strstr(msg, want))
                printf("#   got: %s\n", msg ? msg : "(success)");
}

static void test_errors(void)
{
        fails_with("{'defaultAction': 'SCMP_ACT_ALLOW', 'syscalls': [{'names': ['read'], 'action': 'SCMP_ACT_ALLOW'},"
                   "{'names': ['read'], 'action': 'SCMP_ACT_ALLOW'}, {'names': ['read'], 'action': 'SCMP_ACT_ALLOW'},"
                   "{'names': ['getpid'], 'action': 'X'}]}",
                   "linux.seccomp.syscalls[3].action: unknown action \"X\"");
        fails_with("{'defaultAction': 'SCMP_ACT_NOPE'}", "linux.seccomp.defaultAction: unknown action \"SCMP_ACT_NOPE\"");
        fails_with("{}", "linux.seccomp.defaultAction: required");
        fails_with("{'defaultAction': 'SCMP_ACT_ALLOW', 'architectures': ['SCMP_ARCH_X86_64', 'SCMP_ARCH_Z80']}",
                   "linux.seccomp.architectures[1]: unknown architecture \"SCMP_ARCH_Z80\"");
        fails_with("{'defaultAction': 'SCMP_ACT_ALLOW', 'flags': ['SECCOMP_FILTER_FLAG_BOGUS']}",
                   "linux.seccomp.flags[0]: unknown flag \"SECCOMP_FILTER_FLAG_BOGUS\"");
        fails_with("{'defaultAction': 'SCMP_ACT_ALLOW', 'syscalls': [{'names': ['read'], 'action': 'SCMP_ACT_ERRNO',"
                   "'args': [{'index': 0, 'value': 1, 'op': 'SCMP_CMP_EQ'}, {'index': 1, 'value': 1, 'op': 'EQ'}]}]}",
                   "linux.seccomp.syscalls[0].args[1].op: unknown operator \"EQ\"");
        fails_with("{'defaultAction': 'SCMP_ACT_ALLOW', 'syscalls': [{'names': ['read'], 'action': 'SCMP_ACT_ERRNO',"
                   "'args': [{'index': 6, 'value': 1, 'op': 'SCMP_CMP_EQ'}]}]}",
                   "linux.seccomp.syscalls[0].args[0].index: 6 is out of range");
        fails_with("{'defaultAction': 'SCMP_ACT_ALLOW', 'syscalls': [{'names': ['read'], 'action': 'SCMP_ACT_ERRNO',"
                   "'args': [{'index': 0, 'op': 'SCMP_CMP_EQ'}]}]}",
                   "linux.seccomp.syscalls[0].args[0].value: required");
        fails_with("{'defaultAction': 'SCMP_ACT_ALLOW', 'syscalls': [{'names': ['read'], 'action': 'SCMP_ACT_KILL',"
                   "'errnoRet': 5}]}",
                   "linux.seccomp.syscalls[0].errnoRet: only SCMP_ACT_ERRNO and SCMP_ACT_TRACE return an errno");
        fails_with("{'defaultAction': 'SCMP_ACT_ALLOW', 'defaultErrnoRet': 5}",
                   "linux.seccomp.defaultErrnoRet: only SCMP_ACT_ERRNO and SCMP_ACT_TRACE");
        fails_with("{'defaultAction': 'SCMP_ACT_ERRNO', 'defaultErrnoRet': 70000}",
                   "linux.seccomp.defaultErrnoRet: 70000 is not an errno");
        fails_with("{'defaultAction': 'SCMP_ACT_ALLOW', 'syscalls': [{'names': [], 'action': 'SCMP_ACT_KILL'}]}",
                   "linux.seccomp.syscalls[0].names: must be a non-empty array");
        fails_with("{'defaultAction': 'SCMP_ACT_ALLOW', 'syscalls': [{'names': ['read', 7], 'action': 'SCMP_ACT_KILL'}]}",
                   "linux.seccomp.syscalls[0].names[1]: must be a syscall name");
        fails_with("{'defaultAction': 'SCMP_ACT_ALLOW', 'syscalls': {}}", "linux.seccomp.syscalls: must be an array");
        fails_with("{'defaultAction': 'SCMP_ACT_ALLOW', 'listenerMetadata': 'x'}",
                   "linux.seccomp.listenerMetadata: set without listenerPath");
        fails_with("{'defaultAction': 'SCMP_ACT_ALLOW', 'syscalls': [{'names': ['mkdir'], 'action': 'SCMP_ACT_NOTIFY'}]}",
                   "linux.seccomp.listenerPath: required with SCMP_ACT_NOTIFY");
        fails_with("{'defaultAction': 'SCMP_ACT_ALLOW', 'listenerPath': 'rel/sock', "
                   "'syscalls': [{'names': ['mkdir'], 'action': 'SCMP_ACT_NOTIFY'}]}",
                   "linux.seccomp.listenerPath: \"rel/sock\" is not an absolute path");
        fails_with("{'defaultAction': 'SCMP_ACT_ALLOW', 'listenerPath': '/nonexistent/moat.sock', "
                   "'syscalls': [{'names': ['mkdir'], 'action': 'SCMP_ACT_NOTIFY'}]}",
                   "linux.seccomp.listenerPath: connecting to \"/nonexistent/moat.sock\"");
        fails_with("{'defaultAction': 'SCMP_ACT_ALLOW', 'flags': ['SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV']}",
                   "linux.seccomp.flags: SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV needs an SCMP_ACT_NOTIFY rule");

        /* Unknown names: one warning for all of them, and success. */
        n_warned = 0;
        _cleanup_free_ char *msg = prepare_err(
                "{'defaultAction': 'SCMP_ACT_ALLOW', 'syscalls': [{'names': ['read', 'moat_nosuch1', 'moat_nosuch2'], "
                "'action': 'SCMP_ACT_ERRNO'}, {'names': ['moat_nosuch1', 'write'], 'action': 'SCMP_ACT_KILL'}]}");
        ok(msg == NULL, "unknown syscall names do not fail the filter");
        is_int(n_warned, 1, "one warning");
        ok(warned && strstr(warned, "2 syscall names unknown") && strstr(warned, "\"moat_nosuch1\"") &&
                   strstr(warned, "\"moat_nosuch2\""),
           "it lists both names once: %s", warned ? warned : "(none)");

        /* Big uint64 values (rewritten to reals by the oci parser) work. */
        json_t *j = json_pack("{s:s, s:[{s:[s], s:s, s:[{s:i, s:f, s:s}]}]}", "defaultAction", "SCMP_ACT_ALLOW",
                              "syscalls", "names", "getpid", "action", "SCMP_ACT_ERRNO", "args", "index", 0, "value",
                              18446744073709551616.0, "op", "SCMP_CMP_EQ");
        _cleanup_error_ struct moat_error *err = NULL;
        struct moat_seccomp *s = NULL;
        ok(moat_seccomp_prepare_json(j, NULL, NULL, &s, &err) == 0, "value 2^64-1 is accepted");
        moat_seccomp_free(s);
        json_decref(j);
}

/* Run fn in a child with the filter of text installed; returns what fn
 * returned (written to a pipe: sanitizer runtimes make the exit status
 * unreliable under a filter), or 128 + the signal that killed the child. */
static int in_filtered_child(const char *text, int (*fn)(void))
{
        _cleanup_free_ char *buf = strdup(text);
        for (char *c = buf; *c; c++)
                if (*c == '\'')
                        *c = '"';
        json_t *j = json_loads(buf, 0, NULL);
        struct moat_seccomp *s = NULL;
        _cleanup_error_ struct moat_error *err = NULL;
        if (!j || moat_seccomp_prepare_json(j, NULL, NULL, &s, &err) < 0) {
                printf("# prepare: %s\n", err ? err->msg : "bad JSON");
                json_decref(j);
                return -1;
        }
        json_decref(j);
        int p[2];
        if (pipe2(p, O_CLOEXEC) < 0)
                return -1;
        fflush(stdout);
        pid_t pid = fork();
        if (pid == 0) {
                if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0 || moat_seccomp_install(s, NULL, NULL) < 0)
                        _exit(200);
                int v = fn();
                if (write(p[1], &v, sizeof(v)) != sizeof(v))
                        _exit(201);
                _exit(0);
        }
        close(p[1]);
        moat_seccomp_free(s);
        int v = -1, status;
        ssize_t n = read(p[0], &v, sizeof(v));
        close(p[0]);
        if (pid < 0 || waitpid(pid, &status, 0) < 0)
                return -1;
        if (n == sizeof(v))
                return v;
        return WIFSIGNALED(status) ? 128 + WTERMSIG(status) : -1;
}

static int errno_of_getppid_arg(void)
{
        long r = syscall(SYS_getppid);
        return r < 0 ? errno : 0;
}

static int errno_of_getcwd(void)
{
        char b[64];
        long r = syscall(SYS_getcwd, b, sizeof(b));
        return r < 0 ? errno : 0;
}

static int errno_of_dup_42(void)
{
        long r = syscall(SYS_dup, 42);
        return r < 0 ? errno : 0;
}

static int errno_of_dup_43(void)
{
        long r = syscall(SYS_dup, 43);
        return r < 0 ? errno : 0;
}

static int errno_of_above_max(void)
{
        long r = syscall(440 /* above exit_group, the highest one named */);
        return r < 0 ? errno : 0;
}

static void test_install(void)
{
        is_int(in_filtered_child("{'defaultAction': 'SCMP_ACT_ALLOW', 'syscalls': [{'names': ['getcwd'], "
                                 "'action': 'SCMP_ACT_ERRNO', 'errnoRet': 77}]}",
                                 errno_of_getcwd),
               77, "getcwd answers the configured errno");
        is_int(in_filtered_child("{'defaultAction': 'SCMP_ACT_ALLOW', 'syscalls': [{'names': ['getcwd'], "
                                 "'action': 'SCMP_ACT_ERRNO', 'errnoRet': 77}]}",
                                 errno_of_getppid_arg),
               0, "getppid is untouched");
        /* Same index twice: each condition is a rule (OR). */
        const char *or_rules = "{'defaultAction': 'SCMP_ACT_ALLOW', 'syscalls': [{'names': ['dup'], "
                               "'action': 'SCMP_ACT_ERRNO', 'errnoRet': 33, 'args': ["
                               "{'index': 0, 'value': 42, 'op': 'SCMP_CMP_EQ'}, "
                               "{'index': 0, 'value': 7, 'op': 'SCMP_CMP_EQ'}]}]}";
        is_int(in_filtered_child(or_rules, errno_of_dup_42), 33, "dup(42) matches a repeated-index condition");
        is_int(in_filtered_child(or_rules, errno_of_dup_43), EBADF, "dup(43) does not (the kernel answers EBADF)");
        is_int(in_filtered_child("{'defaultAction': 'SCMP_ACT_ERRNO', 'syscalls': [{'names': ['exit_group', "
                                 "'exit', 'getcwd', 'write'], 'action': 'SCMP_ACT_ALLOW'}]}",
                                 errno_of_getppid_arg),
               EPERM, "deny by default: getppid (below getcwd) gets EPERM");
        is_int(in_filtered_child("{'defaultAction': 'SCMP_ACT_ERRNO', 'syscalls': [{'names': ['exit_group', "
                                 "'exit', 'getcwd', 'write'], 'action': 'SCMP_ACT_ALLOW'}]}",
                                 errno_of_above_max),
               ENOSYS, "a syscall above every named one gets ENOSYS");
        is_int(in_filtered_child("{'defaultAction': 'SCMP_ACT_ALLOW', 'syscalls': [{'names': ['getcwd'], "
                                 "'action': 'SCMP_ACT_KILL_PROCESS'}]}",
                                 errno_of_getcwd),
               128 + SIGSYS, "SCMP_ACT_KILL_PROCESS kills with SIGSYS");

        json_t *p = NULL;
        struct moat_seccomp *s = NULL;
        ok(moat_seccomp_default_profile(moat_default_capability_mask(), &p) == 0 &&
                   moat_seccomp_prepare_json(p, NULL, NULL, &s, NULL) == 0,
           "the default profile prepares");
        char *text = json_dumps(p, JSON_COMPACT);
        is_int(in_filtered_child(text, errno_of_getcwd), 0, "default profile: getcwd works");
        free(text);
        moat_seccomp_free(s);
        json_decref(p);
}

static void test_cache(void)
{
        const char *text = "{\"defaultAction\": \"SCMP_ACT_ALLOW\", \"syscalls\": [{\"names\": [\"getcwd\"], "
                           "\"action\": \"SCMP_ACT_ERRNO\"}]}";
        json_t *j = json_loads(text, 0, NULL);
        struct moat_seccomp *a = NULL, *b = NULL, *c = NULL;
        _cleanup_error_ struct moat_error *err = NULL;

        ok(moat_seccomp_prepare_json(j, tmpdir, NULL, &a, &err) == 0 && !moat_seccomp_from_cache(a),
           "first prepare compiles");
        ok(moat_seccomp_cache_name(a) && strlen(moat_seccomp_cache_name(a)) == 64, "cache name is a sha256");
        char path[512];
        snprintf(path, sizeof(path), "%s/.cache/seccomp/%s", tmpdir, moat_seccomp_cache_name(a));
        struct stat st;
        ok(stat(path, &st) == 0 && S_ISREG(st.st_mode) && (st.st_mode & 0777) == 0600, "cache file written (0600)");
        ok(moat_seccomp_prepare_json(j, tmpdir, NULL, &b, &err) == 0 && moat_seccomp_from_cache(b),
           "second prepare comes from the cache");
        is_int(moat_seccomp_instructions(b), moat_seccomp_instructions(a), "same program length");

        /* Key order does not matter (canonical JSON). */
        json_t *j2 = json_loads("{\"syscalls\": [{\"action\": \"SCMP_ACT_ERRNO\", \"names\": [\"getcwd\"]}], "
                                "\"defaultAction\": \"SCMP_ACT_ALLOW\"}",
                                0, NULL);
        struct moat_seccomp *d = NULL;
        ok(moat_seccomp_prepare_json(j2, tmpdir, NULL, &d, &err) == 0 && moat_seccomp_from_cache(d),
           "the same object with other key order hits the cache");
        moat_seccomp_free(d);
        json_decref(j2);

        /* A corrupt file is ignored and replaced. */
        int fd = open(path, O_WRONLY | O_TRUNC | O_CLOEXEC);
        ok(fd >= 0 && write_all(fd, "garbage!", 8) == 0 && close(fd) == 0, "cache file corrupted");
        ok(moat_seccomp_prepare_json(j, tmpdir, NULL, &c, &err) == 0 && !moat_seccomp_from_cache(c),
           "corrupt cache file is ignored (compiled again)");
        _cleanup_free_ char *buf = NULL;
        size_t size = 0;
        ok(read_full_file_at(AT_FDCWD, path, 1 << 20, &buf, &size) == 0 && moat_seccomp_cache_check(buf, size) == 0,
           "and replaced with a valid file");

        /* Validation of cache contents. */
        is_int(moat_seccomp_cache_check(buf, size - 1), -EBADMSG, "size not a multiple of an instruction");
        is_int(moat_seccomp_cache_check(buf, 40), -EBADMSG, "header only");
        _cleanup_free_ char *copy = malloc(size);
        memcpy(copy, buf, size);
        copy[0] ^= 1;
        is_int(moat_seccomp_cache_check(copy, size), -EBADMSG, "bad magic");
        memcpy(copy, buf, size);
        copy[size - 8] ^= 1;
        is_int(moat_seccomp_cache_check(copy, size), -EBADMSG, "digest mismatch (flipped program bit)");
        is_int(moat_seccomp_cache_check(buf, 40 + (BPF_MAXINSNS + 1) * 8), -EFBIG, "more than BPF_MAXINSNS");
        /* A program with a valid digest that does not end in RET. */
        struct sock_filter bad[2] = { BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
                                      BPF_STMT(BPF_LD | BPF_W | BPF_ABS, 0) };
        uint8_t file[40 + sizeof(bad)];
        memcpy(file, "moatbpf1", 8);
        memcpy(file + 40, bad, sizeof(bad));
        struct sha256_ctx h;
        sha256_init(&h);
        sha256_update(&h, sizeof(bad), (const uint8_t *) bad);
        sha256_digest(&h, 32, file + 8);
        is_int(moat_seccomp_cache_check(file, sizeof(file)), -EBADMSG, "program not ending in RET");
        memcpy(file + 40, &bad[1], 8);
        memcpy(file + 48, &bad[0], 8);
        sha256_init(&h);
        sha256_update(&h, sizeof(bad), file + 40);
        sha256_digest(&h, 32, file + 8);
        is_int(moat_seccomp_cache_check(file, sizeof(file)), 0, "well-formed file accepted");

        /* No state root yet: compiled, nothing written. */
        char missing[512];
        snprintf(missing, sizeof(missing), "%s/not-yet", tmpdir);
        struct moat_seccomp *e = NULL;
        ok(moat_seccomp_prepare_json(j, missing, NULL, &e, &err) == 0 && access(missing, F_OK) < 0,
           "a missing state root is not created");
        moat_seccomp_free(e);

        moat_seccomp_free(a);
        moat_seccomp_free(b);
        moat_seccomp_free(c);
        json_decref(j);
}

static void test_features(void)
{
        json_t *f = NULL;
        ok(moat_seccomp_features(&f) == 0, "features render");
        ok(json_is_true(json_object_get(f, "enabled")), "enabled");
        is_int(json_array_size(json_object_get(f, "actions")), 9, "9 actions");
        is_int(json_array_size(json_object_get(f, "operators")), 7, "7 operators");
        is_int(json_array_size(json_object_get(f, "knownFlags")), 4, "4 known flags");
        ok(json_array_size(json_object_get(f, "supportedFlags")) >= 1, "the kernel supports some flags");
        ok(json_array_size(json_object_get(f, "archs")) >= 3, "archs listed");
        json_decref(f);
}

int main(void)
{
        if (!mkdtemp(tmpdir)) {
                printf("Bail out! mkdtemp\n");
                return 1;
        }
        test_profile();
        test_default_json();
        test_errors();
        test_install();
        test_cache();
        test_features();
        char cmd[128];
        snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpdir);
        if (system(cmd) != 0)
                printf("# could not remove %s\n", tmpdir);
        free((char *) warned);
        return tap_done();
}
