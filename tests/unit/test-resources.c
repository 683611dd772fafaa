/* SPDX-License-Identifier: Apache-2.0 */
#include "base/compat.h"

/*
 * Unit tests of linux.resources: parsing and validation (errors name the
 * JSON path), the v1 -> v2 conversions, cpuset and size parsing, the
 * device-rule reduction, and the v2 device program. The program is run
 * here by a small interpreter of the instructions the builder emits and
 * compared with the reduction's own answer; then loaded for real (the
 * verifier must accept it) and, where a cgroup2 tree is mounted, attached
 * to a scratch cgroup with a child process checking what it may open.
 * The last part applies real limits to a scratch cgroup (root only).
 */

#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/wait.h>
#include <linux/magic.h>
#include <unistd.h>

#include "base/cleanup.h"
#include "base/fileio.h"
#include "runtime/bpf-devices.h"
#include "runtime/cgroup-resources.h"
#include "runtime/cgroup.h"
#include "tap.h"

/* Parse text; return the error message (static buffer) or NULL on success. */
static const char *parse_err(const char *text)
{
        static char msg[1024];
        json_error_t jerr;
        json_t *j = json_loads(text, JSON_DECODE_ANY, &jerr);
        struct moat_resources *r = NULL;
        struct moat_error *err = NULL;

        if (!j) {
                snprintf(msg, sizeof(msg), "bad test JSON: %s", jerr.text);
                return msg;
        }
        int k = moat_resources_parse(j, "linux.resources", &r, &err);
        json_decref(j);
        moat_resources_free(r);
        if (k >= 0)
                return NULL;
        snprintf(msg, sizeof(msg), "%s", err ? err->msg : "(no message)");
        moat_error_free(err);
        return msg;
}

static void expect_error(const char *text, const char *needle)
{
        const char *m = parse_err(text);
        ok(m && strstr(m, needle), "refused %s: %s", text, m ? m : "(accepted)");
}

static void test_parse(void)
{
        is_str(parse_err("{}"), NULL, "empty object");
        is_str(parse_err("null"), NULL, "null");
        is_str(parse_err("{\"memory\":{\"limit\":1073741824,\"reservation\":-1,\"swap\":2147483648,\"swappiness\":60,"
                         "\"disableOOMKiller\":false,\"checkBeforeUpdate\":true,\"kernel\":100},"
                         "\"cpu\":{\"shares\":1024,\"quota\":50000,\"period\":100000,\"burst\":0,\"cpus\":\"0\","
                         "\"mems\":\"0\",\"idle\":1},"
                         "\"pids\":{\"limit\":100},"
                         "\"blockIO\":{\"weight\":500,\"weightDevice\":[{\"major\":8,\"minor\":0,\"weight\":100}],"
                         "\"throttleReadBpsDevice\":[{\"major\":8,\"minor\":0,\"rate\":1048576}]},"
                         "\"hugepageLimits\":[{\"pageSize\":\"2MB\",\"limit\":0}],"
                         "\"network\":{\"classID\":1048577,\"priorities\":[{\"name\":\"eth0\",\"priority\":5}]},"
                         "\"rdma\":{\"mlx5_1\":{\"hcaHandles\":3}},"
                         "\"unified\":{\"memory.high\":\"max\",\"io.max\":\"8:0 rbps=max\"},"
                         "\"devices\":[{\"allow\":false,\"access\":\"rwm\"},{\"allow\":true,\"type\":\"c\",\"major\":1,"
                         "\"minor\":3,\"access\":\"rw\"}]}"),
               NULL, "a full LinuxResources object");

        expect_error("[]", "linux.resources: must be an object");
        expect_error("{\"memory\":{\"limit\":-2}}", "linux.resources.memory.limit: -2 is invalid");
        expect_error("{\"memory\":{\"limit\":\"1g\"}}", "linux.resources.memory.limit: must be an integer");
        expect_error("{\"memory\":{\"limit\":1000000,\"swap\":1000}}", "linux.resources.memory.swap: 1000 is less than");
        expect_error("{\"memory\":{\"swappiness\":101}}", "linux.resources.memory.swappiness: 101 is invalid");
        expect_error("{\"cpu\":{\"shares\":1}}", "linux.resources.cpu.shares: 1 is invalid");
        expect_error("{\"cpu\":{\"shares\":262145}}", "linux.resources.cpu.shares: 262145 is too large");
        expect_error("{\"cpu\":{\"quota\":500}}", "linux.resources.cpu.quota: 500 is invalid");
        expect_error("{\"cpu\":{\"quota\":-5}}", "linux.resources.cpu.quota: -5 is invalid");
        expect_error("{\"cpu\":{\"period\":10}}", "linux.resources.cpu.period: 10 is invalid");
        expect_error("{\"cpu\":{\"cpus\":\"0-\"}}", "linux.resources.cpu.cpus: \"0-\" is not a list");
        expect_error("{\"cpu\":{\"cpus\":\"3-1\"}}", "linux.resources.cpu.cpus");
        expect_error("{\"cpu\":{\"cpus\":\"4000\"}}", "not online on this host");
        expect_error("{\"cpu\":{\"mems\":\"7\"}}", "linux.resources.cpu.mems: \"7\" names memory nodes that are not online");
        expect_error("{\"cpu\":{\"idle\":2}}", "linux.resources.cpu.idle: 2 is invalid");
        expect_error("{\"blockIO\":{\"weight\":5}}", "linux.resources.blockIO.weight: 5 is invalid");
        expect_error("{\"blockIO\":{\"weightDevice\":[{\"major\":8,\"weight\":100}]}}",
                     "linux.resources.blockIO.weightDevice[0]: major and minor are required");
        expect_error("{\"blockIO\":{\"throttleWriteIOPSDevice\":[{\"major\":8,\"minor\":0}]}}",
                     "linux.resources.blockIO.throttleWriteIOPSDevice[0].rate: required");
        expect_error("{\"hugepageLimits\":[{\"pageSize\":\"2XB\",\"limit\":1}]}",
                     "linux.resources.hugepageLimits[0].pageSize: \"2XB\" is not a size");
        expect_error("{\"hugepageLimits\":[{\"pageSize\":\"3MB\",\"limit\":1}]}", "this host has no 3MB huge pages");
        expect_error("{\"network\":{\"priorities\":[{\"name\":\"a b\",\"priority\":1}]}}",
                     "linux.resources.network.priorities[0].name");
        expect_error("{\"unified\":{\"memory/../x\":\"1\"}}", "linux.resources.unified: \"memory/../x\" is not a cgroup file");
        expect_error("{\"unified\":{\"nodot\":\"1\"}}", "is not a cgroup file name");
        expect_error("{\"unified\":{\"cgroup.procs\":\"1\"}}", "linux.resources.unified.cgroup.procs: moves or controls");
        expect_error("{\"unified\":{\"memory.max\":5}}", "linux.resources.unified.memory.max: must be a string");
        expect_error("{\"devices\":[{\"access\":\"rwm\"}]}", "linux.resources.devices[0].allow: required");
        expect_error("{\"devices\":[{\"allow\":true,\"type\":\"x\"}]}", "linux.resources.devices[0].type: \"x\" is not");
        expect_error("{\"devices\":[{\"allow\":true,\"access\":\"rwx\"}]}", "linux.resources.devices[0].access");
        expect_error("{\"devices\":[{\"allow\":true,\"access\":\"rr\"}]}", "linux.resources.devices[0].access");
        expect_error("{\"devices\":[{\"allow\":true,\"major\":-3}]}", "linux.resources.devices[0].major: -3 is invalid");
        expect_error("{\"pids\":{\"limit\":true}}", "linux.resources.pids.limit: must be an integer");
        expect_error("{\"rdma\":{\"a b\":{}}}", "linux.resources.rdma: \"a b\" is not a device name");

        /* The prefix is the caller's. */
        json_t *j = json_loads("{\"memory\":{\"limit\":-7}}", 0, NULL);
        struct moat_resources *r = NULL;
        struct moat_error *err = NULL;
        ok(moat_resources_parse(j, "resources", &r, &err) == -EINVAL && err &&
                   startswith(err->msg, "resources.memory.limit"),
           "update's prefix: %s", err ? err->msg : "");
        moat_error_free(err);
        moat_resources_free(r);
        json_decref(j);
}

static void test_conversions(void)
{
        static const uint64_t shares[][2] = {
                { 0, 0 },       { 2, 1 },       { 3, 2 },       { 10, 4 },        { 100, 17 },       { 512, 59 },
                { 1024, 100 },  { 2048, 174 },  { 4096, 303 },  { 10000, 627 },   { 100000, 4340 },  { 262143, 10000 },
                { 262144, 10000 },
        };
        for (size_t i = 0; i < ELEMENTSOF(shares); i++)
                is_int(moat_cpu_shares_to_weight(shares[i][0]), shares[i][1], "cpu.shares %llu -> cpu.weight",
                       (unsigned long long) shares[i][0]);
        uint64_t prev = 0;
        bool monotonic = true;
        for (uint64_t s = 2; s <= 262144; s++) {
                uint64_t w = moat_cpu_shares_to_weight(s);
                monotonic = monotonic && w >= prev && w >= 1 && w <= 10000;
                prev = w;
        }
        ok(monotonic, "shares -> weight is monotonic within 1..10000");

        is_int(moat_blkio_weight_to_io_weight(10), 1, "blkio weight 10 -> io.weight 1");
        is_int(moat_blkio_weight_to_io_weight(1000), 10000, "blkio weight 1000 -> io.weight 10000");
        is_int(moat_blkio_weight_to_io_weight(500), 4950, "blkio weight 500 -> io.weight 4950");
        is_int(moat_blkio_weight_to_io_weight(0), 0, "blkio weight 0 stays unset");

        int64_t v = 0;
        const char *why = NULL;
        ok(moat_swap_to_v2(2 << 20, 1 << 20, &v, &why) == 0 && v == 1 << 20, "swap 2M limit 1M -> swap.max 1M");
        ok(moat_swap_to_v2(1 << 20, 1 << 20, &v, &why) == 0 && v == 0, "swap == limit -> swap.max 0");
        ok(moat_swap_to_v2(-1, 1 << 20, &v, &why) == 0 && v == -1, "swap -1 -> max");
        ok(moat_swap_to_v2(0, -1, &v, &why) == 0 && v == -1, "unlimited memory, swap unset -> max");
        ok(moat_swap_to_v2(100, 0, &v, &why) == -EINVAL && why, "swap without a limit refused");
        ok(moat_swap_to_v2(100, 200, &v, &why) == -EINVAL && why, "swap below limit refused");
}

static void test_cpuset(void)
{
        uint64_t bits[MOAT_CPUSET_WORDS];

        ok(moat_cpuset_parse("0-3,6", bits) == 0 && bits[0] == 0x4f, "\"0-3,6\"");
        ok(moat_cpuset_parse("65", bits) == 0 && bits[0] == 0 && bits[1] == 2, "\"65\"");
        ok(moat_cpuset_parse("0-1\n", bits) == 0 && bits[0] == 3, "a trailing newline (sysfs) is fine");
        ok(moat_cpuset_parse("", bits) == 0 && bits[0] == 0, "empty is the empty set");
        static const char *const bad[] = { ",", "1,", "3-1", "a", "1,,2", "1-", "-1", " 1", "1 ", "1\n2" };
        for (size_t i = 0; i < ELEMENTSOF(bad); i++)
                ok(moat_cpuset_parse(bad[i], bits) == -EINVAL, "bad cpuset %zu refused", i);
        ok(moat_cpuset_parse("0-8192", bits) == -ERANGE, "past MOAT_CPUSET_MAX refused");
}

static void test_sizes(void)
{
        static const struct {
                const char *s;
                int64_t v;
        } good[] = {
                { "100", 100 },           { "100b", 100 },           { "-1", -1 },
                { "512k", 512 << 10 },    { "512m", 512 << 20 },     { "512M", 512 << 20 },
                { "1g", 1 << 30 },        { "1gb", 1 << 30 },        { "2GiB", 2ll << 30 },
                { "1.5g", 3ll << 29 },    { "1 g", 1 << 30 },        { "1t", 1ll << 40 },
        };
        for (size_t i = 0; i < ELEMENTSOF(good); i++) {
                int64_t v = 0;
                ok(moat_parse_size(good[i].s, &v) == 0 && v == good[i].v, "size \"%s\" = %lld", good[i].s,
                   (long long) v);
        }
        static const char *const bad[] = { "", "abc", "1x", "-5", "1.g", "g", "1gg", "99999999999p" };
        for (size_t i = 0; i < ELEMENTSOF(bad); i++) {
                int64_t v;
                ok(moat_parse_size(bad[i], &v) < 0, "size \"%s\" refused", bad[i]);
        }
}

/* ---- device rules and the program ------------------------------------------ */

static struct moat_dev_rule rule(bool allow, char type, int64_t major, int64_t minor, const char *acc)
{
        unsigned a = 0;
        for (; *acc; acc++)
                a |= *acc == 'r' ? MOAT_DEV_READ : *acc == 'w' ? MOAT_DEV_WRITE : MOAT_DEV_MKNOD;
        return (struct moat_dev_rule){ allow, type, major, minor, a };
}

static void state_from(struct moat_dev_state *s, const struct moat_dev_rule *rules, size_t n, bool defaults)
{
        moat_dev_state_init(s);
        for (size_t i = 0; i < n; i++)
                if (moat_dev_state_apply(s, &rules[i]) < 0)
                        abort();
        if (defaults) {
                size_t nd;
                const struct moat_dev_rule *d = moat_dev_default_rules(&nd);
                for (size_t i = 0; i < nd; i++)
                        if (moat_dev_state_apply(s, &d[i]) < 0)
                                abort();
        }
}

/* Runs the subset of eBPF the builder emits; -1 on anything else. */
static int interpret(const struct bpf_insn *p, size_t n, uint32_t access_type, uint32_t major, uint32_t minor)
{
        struct bpf_cgroup_dev_ctx ctx = { access_type, major, minor };
        uint64_t reg[11] = { 0 };
        size_t pc = 0, steps = 0;

        reg[1] = (uint64_t) (uintptr_t) &ctx;
        while (pc < n && steps++ < 100000) {
                const struct bpf_insn *i = &p[pc++];
                uint8_t cls = BPF_CLASS(i->code);
                if (i->code == (BPF_LDX | BPF_W | BPF_MEM)) {
                        if (reg[i->src_reg] != (uint64_t) (uintptr_t) &ctx || i->off < 0 || i->off > 8 || i->off % 4)
                                return -1;
                        uint32_t w;
                        memcpy(&w, (const char *) &ctx + i->off, 4);
                        reg[i->dst_reg] = w;
                } else if (cls == BPF_ALU) {
                        uint32_t d = (uint32_t) reg[i->dst_reg];
                        uint32_t s = BPF_SRC(i->code) == BPF_X ? (uint32_t) reg[i->src_reg] : (uint32_t) i->imm;
                        switch (BPF_OP(i->code)) {
                        case BPF_AND: d &= s; break;
                        case BPF_RSH: d >>= s; break;
                        case BPF_MOV: d = s; break;
                        default: return -1;
                        }
                        reg[i->dst_reg] = d;
                } else if (cls == BPF_ALU64 && BPF_OP(i->code) == BPF_MOV && BPF_SRC(i->code) == BPF_K) {
                        reg[i->dst_reg] = (uint64_t) (int64_t) i->imm;
                } else if (cls == BPF_JMP32) {
                        uint32_t d = (uint32_t) reg[i->dst_reg];
                        uint32_t s = BPF_SRC(i->code) == BPF_X ? (uint32_t) reg[i->src_reg] : (uint32_t) i->imm;
                        bool jump;
                        switch (BPF_OP(i->code)) {
                        case BPF_JNE: jump = d != s; break;
                        case BPF_JEQ: jump = d == s; break;
                        default: return -1;
                        }
                        if (jump)
                                pc += (size_t) i->off;
                } else if (i->code == (BPF_JMP | BPF_EXIT)) {
                        return (int) reg[0];
                } else
                        return -1;
        }
        return -1;
}

/* Every combination of a few devices and access sets: the program and the
 * reduction agree. */
static bool program_matches_state(const struct moat_dev_state *s, const struct bpf_insn *p, size_t n)
{
        static const uint32_t majors[] = { 1, 5, 7, 10, 136, 4095, 0x80000001u };
        static const uint32_t minors[] = { 0, 3, 5, 7, 200, 0xfffffu };
        for (int t = 0; t < 2; t++)
                for (size_t a = 0; a < ELEMENTSOF(majors); a++)
                        for (size_t b = 0; b < ELEMENTSOF(minors); b++)
                                for (unsigned acc = 1; acc <= 7; acc++) {
                                        char type = t ? 'b' : 'c';
                                        uint32_t at = (acc << 16) | (t ? BPF_DEVCG_DEV_BLOCK : BPF_DEVCG_DEV_CHAR);
                                        int got = interpret(p, n, at, majors[a], minors[b]);
                                        bool want = moat_dev_state_allows(s, type, majors[a], minors[b], acc);
                                        if (got != (want ? 1 : 0)) {
                                                printf("#   %c %u:%u acc %u: program %d, rules %d\n", type, majors[a],
                                                       minors[b], acc, got, want);
                                                return false;
                                        }
                                }
        return true;
}

static void test_device_rules(void)
{
        struct moat_dev_state s;

        /* The default configuration: deny all, then the default list. */
        struct moat_dev_rule deny_all = rule(false, 'a', -1, -1, "rwm");
        state_from(&s, &deny_all, 1, true);
        ok(!s.default_allow, "deny-all default");
        ok(moat_dev_state_allows(&s, 'c', 1, 3, MOAT_DEV_READ | MOAT_DEV_WRITE), "c 1:3 rw allowed (null)");
        ok(moat_dev_state_allows(&s, 'c', 136, 9, MOAT_DEV_READ | MOAT_DEV_WRITE), "c 136:9 allowed (pts)");
        ok(moat_dev_state_allows(&s, 'b', 7, 0, MOAT_DEV_MKNOD), "b 7:0 mknod allowed");
        ok(!moat_dev_state_allows(&s, 'b', 7, 0, MOAT_DEV_READ), "b 7:0 read denied");
        ok(!moat_dev_state_allows(&s, 'c', 1, 1, MOAT_DEV_READ), "c 1:1 (mem) read denied");
        char buf[64];
        moat_dev_rule_format(&s.ex[s.n_ex - 2], buf, sizeof(buf));
        is_str(buf, "c 136:* rwm", "v1 format with a wildcard");
        moat_dev_state_done(&s);

        /* Exceptions merge and shrink like the v1 controller's. */
        struct moat_dev_rule seq[] = {
                rule(false, 'a', -1, -1, "rwm"), rule(true, 'c', 1, 5, "r"),  rule(true, 'c', 1, 5, "w"),
                rule(true, 'b', 8, -1, "rw"),    rule(false, 'c', 1, 5, "r"), rule(false, 'b', 8, -1, "rw"),
        };
        state_from(&s, seq, ELEMENTSOF(seq), false);
        is_int(s.n_ex, 1, "one exception left");
        ok(s.n_ex == 1 && s.ex[0].access == MOAT_DEV_WRITE, "c 1:5 keeps only w");
        moat_dev_state_done(&s);

        /* Allow-all with a deny: a deny exception matches any requested bit
         * (the default list, appended last, re-allows only its own devices). */
        struct moat_dev_rule priv[] = { rule(true, 'a', -1, -1, "rwm"), rule(false, 'c', 1, 1, "w"),
                                        rule(false, 'c', 1, 3, "w") };
        state_from(&s, priv, ELEMENTSOF(priv), true);
        ok(s.default_allow, "allow-all default");
        ok(moat_dev_state_allows(&s, 'c', 1, 1, MOAT_DEV_READ), "c 1:1 r allowed");
        ok(!moat_dev_state_allows(&s, 'c', 1, 1, MOAT_DEV_READ | MOAT_DEV_WRITE), "c 1:1 rw denied");
        ok(moat_dev_state_allows(&s, 'c', 1, 3, MOAT_DEV_WRITE), "c 1:3 w re-allowed by the default list");
        ok(moat_dev_state_allows(&s, 'b', 7, 0, MOAT_DEV_READ), "b 7:0 allowed");
        moat_dev_state_done(&s);

        /* The program computes the same as the reduction, and loads. */
        struct {
                const char *name;
                struct moat_dev_rule rules[6];
                size_t n;
                bool defaults;
        } cases[] = {
                { "default", { rule(false, 'a', -1, -1, "rwm") }, 1, true },
                { "empty deny-all", { rule(false, 'a', -1, -1, "rwm") }, 1, false },
                { "allow-all", { rule(true, 'a', -1, -1, "rwm") }, 1, false },
                { "allow-all minus partial denies",
                  { rule(true, 'a', -1, -1, "rwm"), rule(false, 'c', 1, 3, "w"), rule(false, 'b', -1, 0, "m"),
                    rule(false, 'c', 5, -1, "r") },
                  4, true },
                { "partial allows",
                  { rule(false, 'a', -1, -1, "rwm"), rule(true, 'c', 1, 5, "r"), rule(true, 'b', 7, -1, "rm"),
                    rule(true, 'c', -1, 7, "w"), rule(true, 'c', 0x80000001, 3, "rwm") },
                  5, true },
        };
        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                _cleanup_free_ struct bpf_insn *p = NULL;
                size_t n = 0;
                state_from(&s, cases[i].rules, cases[i].n, cases[i].defaults);
                ok(moat_bpf_devices_build(&s, &p, &n) == 0 && n > 0, "%s: program built (%zu insns)", cases[i].name, n);
                ok(p && program_matches_state(&s, p, n), "%s: program agrees with the rules", cases[i].name);
                if (geteuid() == 0) {
                        struct moat_error *err = NULL;
                        int fd = -1;
                        int k = moat_bpf_devices_load(p, n, &fd, &err);
                        ok(k == 0 && fd >= 0, "%s: the verifier accepts it%s%s", cases[i].name, err ? ": " : "",
                           err ? err->msg : "");
                        moat_error_free(err);
                        if (fd >= 0)
                                close(fd);
                }
                moat_dev_state_done(&s);
        }
}

/* ---- the program attached to a real cgroup2 directory ---------------------- */

static bool is_cgroup2(const char *path)
{
        struct statfs sfs;
        return statfs(path, &sfs) == 0 && sfs.f_type == CGROUP2_SUPER_MAGIC;
}

/* In a child moved into dir: bit i set when opening paths[i] with flags[i] fails with EPERM. */
static int child_eperm_mask(const char *dir)
{
        static const char *const paths[] = { "/dev/null", "/dev/zero", "/dev/zero", "/dev/full" };
        static const int oflags[] = { O_RDWR, O_RDONLY, O_WRONLY, O_RDONLY };
        char procs[PATH_MAX];

        snprintf(procs, sizeof(procs), "%s/cgroup.procs", dir);
        pid_t pid = fork();
        if (pid < 0)
                return -1;
        if (pid == 0) {
                int mask = 0;
                if (write_string_file_at(AT_FDCWD, procs, "0") < 0)
                        _exit(255);
                for (size_t i = 0; i < ELEMENTSOF(paths); i++) {
                        int fd = open(paths[i], oflags[i] | O_CLOEXEC);
                        if (fd < 0 && errno == EPERM)
                                mask |= 1 << i;
                        if (fd >= 0)
                                close(fd);
                }
                _exit(mask);
        }
        int status;
        if (waitpid(pid, &status, 0) != pid || !WIFEXITED(status))
                return -1;
        return WEXITSTATUS(status);
}

void moat_test_v2_devices(const char *cgroup2_root);

/* Callable on any host with a cgroup2 tree (the v2 VM lane runs it on a
 * unified host; here it runs on the hybrid host's /sys/fs/cgroup/unified). */
void moat_test_v2_devices(const char *cgroup2_root)
{
        char dir[PATH_MAX];
        struct moat_dev_state s;
        struct moat_error *err = NULL;
        size_t count = 0;

        snprintf(dir, sizeof(dir), "%s/moat-test-resources-%d", cgroup2_root, (int) getpid());
        if (mkdir(dir, 0755) < 0) {
                ok(false, "mkdir %s: %s", dir, strerror(errno));
                return;
        }
        int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);

        /* null rw, zero read only, nothing else */
        struct moat_dev_rule first[] = { rule(false, 'a', -1, -1, "rwm"), rule(true, 'c', 1, 3, "rwm"),
                                         rule(true, 'c', 1, 5, "r") };
        state_from(&s, first, ELEMENTSOF(first), false);
        int k = moat_bpf_devices_install(fd, &s, &err);
        ok(k == 0, "program attached to %s%s%s", dir, err ? ": " : "", err ? err->msg : "");
        moat_error_free(err);
        err = NULL;
        moat_dev_state_done(&s);
        is_int(child_eperm_mask(dir), 0x4 | 0x8, "attached: /dev/zero write and /dev/full refused, the rest allowed");

        /* An update replaces it: now the defaults (full allowed). */
        state_from(&s, first, 1, true);
        k = moat_bpf_devices_install(fd, &s, &err);
        ok(k == 0, "program replaced%s%s", err ? ": " : "", err ? err->msg : "");
        moat_error_free(err);
        err = NULL;
        moat_dev_state_done(&s);
        ok(moat_bpf_devices_count(fd, &count, NULL) == 0 && count == 1, "exactly one moat program attached (%zu)",
           count);
        is_int(child_eperm_mask(dir), 0, "after the update every default device opens");

        close(fd);
        ok(rmdir(dir) == 0, "scratch cgroup removed");
}

/* ---- limits on a real cgroup ------------------------------------------------- */

static bool read_cg(const char *mount, const char *name, const char *file, char *buf, size_t size)
{
        char path[PATH_MAX];
        _cleanup_free_ char *s = NULL;

        snprintf(path, sizeof(path), "/sys/fs/cgroup/%s/%s/%s", mount, name, file);
        if (read_full_file_at(AT_FDCWD, path, 4096, &s, NULL) < 0)
                return false;
        s[strcspn(s, "\n")] = '\0';
        snprintf(buf, size, "%s", s);
        return true;
}

static int apply_text(struct moat_cgroup *cg, const char *text, enum moat_resources_mode mode, char *msg, size_t size)
{
        json_t *j = json_loads(text, 0, NULL);
        struct moat_resources *r = NULL;
        struct moat_error *err = NULL;
        int k = moat_resources_parse(j, "linux.resources", &r, &err);

        if (k >= 0)
                k = moat_resources_apply(cg, r, mode, &err);
        snprintf(msg, size, "%s", err ? err->msg : "");
        moat_error_free(err);
        moat_resources_free(r);
        json_decref(j);
        return k;
}

static void test_apply_v1(void)
{
        enum moat_cgroup_layout layout;
        struct moat_cgroup *cg = NULL;
        char name[64], buf[256], msg[1024];

        if (moat_cgroup_detect_layout(&layout, NULL) < 0 || layout == MOAT_CGROUP_LAYOUT_UNIFIED ||
            access("/sys/fs/cgroup/memory", F_OK) < 0 || access("/sys/fs/cgroup/pids", F_OK) < 0) {
                printf("# skipping the v1 apply checks: not a v1 or hybrid host with memory and pids\n");
                return;
        }
        snprintf(name, sizeof(name), "moat-test-res-%d", (int) getpid());
        if (moat_cgroup_create(NULL, name, &cg, NULL) < 0) {
                ok(false, "creating cgroup %s", name);
                return;
        }
        int k = apply_text(cg, "{\"memory\":{\"limit\":67108864,\"swap\":134217728,\"reservation\":33554432},"
                               "\"pids\":{\"limit\":17},\"cpu\":{\"shares\":512,\"quota\":50000,\"period\":100000}}",
                           MOAT_RESOURCES_CREATE, msg, sizeof(msg));
        ok(k == 0, "limits applied %s", msg);
        ok(read_cg("memory", name, "memory.limit_in_bytes", buf, sizeof(buf)) && streq(buf, "67108864"),
           "memory.limit_in_bytes = %s", buf);
        ok(read_cg("memory", name, "memory.soft_limit_in_bytes", buf, sizeof(buf)) && streq(buf, "33554432"),
           "memory.soft_limit_in_bytes = %s", buf);
        if (read_cg("memory", name, "memory.memsw.limit_in_bytes", buf, sizeof(buf)))
                is_str(buf, "134217728", "memory.memsw.limit_in_bytes");
        ok(read_cg("pids", name, "pids.max", buf, sizeof(buf)) && streq(buf, "17"), "pids.max = %s", buf);
        ok(read_cg("cpu", name, "cpu.cfs_quota_us", buf, sizeof(buf)) && streq(buf, "50000"), "cpu.cfs_quota_us = %s",
           buf);
        ok(read_cg("cpu", name, "cpu.shares", buf, sizeof(buf)) && streq(buf, "512"), "cpu.shares = %s", buf);
        ok(read_cg("devices", name, "devices.list", buf, sizeof(buf)) && startswith(buf, "c *:* m"),
           "default device rules installed: %s...", buf);

        /* Raising both: memsw must go first (else EINVAL); lowering: limit first. */
        k = apply_text(cg, "{\"memory\":{\"limit\":268435456,\"swap\":536870912}}", MOAT_RESOURCES_UPDATE, msg,
                       sizeof(msg));
        ok(k == 0 && read_cg("memory", name, "memory.limit_in_bytes", buf, sizeof(buf)) && streq(buf, "268435456"),
           "raised memory and swap together %s", msg);
        k = apply_text(cg, "{\"memory\":{\"limit\":16777216,\"swap\":33554432}}", MOAT_RESOURCES_UPDATE, msg,
                       sizeof(msg));
        ok(k == 0 && read_cg("memory", name, "memory.limit_in_bytes", buf, sizeof(buf)) && streq(buf, "16777216"),
           "lowered memory and swap together %s", msg);
        k = apply_text(cg, "{\"memory\":{\"limit\":-1}}", MOAT_RESOURCES_UPDATE, msg, sizeof(msg));
        ok(k == 0 && read_cg("memory", name, "memory.limit_in_bytes", buf, sizeof(buf)) && strlen(buf) > 12,
           "limit -1 lifts memory and swap %s (%s)", msg, buf);
        k = apply_text(cg, "{\"pids\":{\"limit\":0}}", MOAT_RESOURCES_UPDATE, msg, sizeof(msg));
        ok(k == 0 && read_cg("pids", name, "pids.max", buf, sizeof(buf)) && streq(buf, "max"), "pids 0 -> max");

        /* Not available here: clear errors naming the path. */
        k = apply_text(cg, "{\"network\":{\"classID\":1}}", MOAT_RESOURCES_UPDATE, msg, sizeof(msg));
        if (access("/sys/fs/cgroup/net_cls", F_OK) < 0)
                ok(k == -EOPNOTSUPP && strstr(msg, "linux.resources.network.classID: not supported"), "%s", msg);
        k = apply_text(cg, "{\"unified\":{\"memory.high\":\"max\"}}", MOAT_RESOURCES_UPDATE, msg, sizeof(msg));
        ok(k < 0 && strstr(msg, "linux.resources.unified.memory.high"), "%s", msg);
        if (layout == MOAT_CGROUP_LAYOUT_HYBRID && access("/sys/kernel/mm/hugepages/hugepages-2048kB", F_OK) == 0) {
                k = apply_text(cg, "{\"hugepageLimits\":[{\"pageSize\":\"2MB\",\"limit\":4194304}]}",
                               MOAT_RESOURCES_UPDATE, msg, sizeof(msg));
                bool in_v1 = access("/sys/fs/cgroup/hugetlb", F_OK) == 0;
                ok(k == 0 && read_cg(in_v1 ? "hugetlb" : "unified", name,
                                     in_v1 ? "hugetlb.2MB.limit_in_bytes" : "hugetlb.2MB.max", buf, sizeof(buf)) &&
                           streq(buf, "4194304"),
                   "hugetlb limit where the host has hugetlb %s", msg);
        }

        _cleanup_error_ struct moat_error *err = NULL;
        ok(moat_cgroup_destroy(cg, &err) == 0, "scratch cgroup removed %s", err ? err->msg : "");
        moat_cgroup_free(cg);
}

int main(void)
{
        test_parse();
        test_conversions();
        test_cpuset();
        test_sizes();
        test_device_rules();
        if (geteuid() == 0) {
                if (is_cgroup2("/sys/fs/cgroup"))
                        moat_test_v2_devices("/sys/fs/cgroup");
                else if (is_cgroup2("/sys/fs/cgroup/unified"))
                        moat_test_v2_devices("/sys/fs/cgroup/unified");
                test_apply_v1();
        }
        return tap_done();
}
