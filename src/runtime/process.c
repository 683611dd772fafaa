/* SPDX-License-Identifier: Apache-2.0 */
#include "base/compat.h"

/*
 * The last privileged steps of the container init, after pivot_root and
 * before exec: resource limits, oom_score_adj, personality, credentials and
 * capabilities, and the PATH lookup of args[0].
 *
 * The order is dictated by what each step still needs:
 *
 *   rlimits, oom_score_adj   Raising a hard limit or lowering the OOM score
 *                            below its floor needs CAP_SYS_RESOURCE, so both
 *                            run while the init still holds its capabilities.
 *   personality              Needs nothing; any time before exec.
 *   credentials, in order:
 *     1. PR_SET_KEEPCAPS=1   Without it setresuid() away from uid 0 empties
 *                            the permitted set, and the capabilities asked
 *                            for could not be restored afterwards.
 *     2. bounding set        PR_CAPBSET_DROP needs CAP_SETPCAP in the
 *                            effective set, which setresuid() clears.
 *     2b. securebits         PR_SET_SECUREBITS needs CAP_SETPCAP in the
 *                            effective set: still there (the bounding set
 *                            limits only what exec may gain), gone after
 *                            step 3. The word is written whole, so the
 *                            SECBIT_KEEP_CAPS of step 1 is written with
 *                            it. keep_caps_locked locks that bit as it is
 *                            then: at 1 when capabilities are kept across
 *                            the uid change, and step 7 is skipped (the
 *                            lock would refuse it) because execve clears
 *                            SECBIT_KEEP_CAPS, lock or not, so the program
 *                            starts with it at 0 and locked; at 0
 *                            otherwise. no_cap_ambient_raise would refuse
 *                            step 6, so it is refused with ambient
 *                            capabilities to raise. noroot and
 *                            no_setuid_fixup change nothing before exec.
 *     3. setgroups, setresgid, setresuid
 *                            setgroups and setresgid need CAP_SETGID, which
 *                            is gone (from the effective set) once the uid
 *                            changes, so groups first and the uid last.
 *     4. umask               Default 0022 when absent, as runc.
 *     5. capset (E, P, I)    After the uid change, which cleared E and
 *                            (keepcaps aside) P; P can only shrink, I only
 *                            within the bounding set just applied.
 *     6. ambient             Raising an ambient capability needs it in the
 *                            new P and I, so after the capset; the uid
 *                            change cleared the set anyway.
 *     7. PR_SET_KEEPCAPS=0   Back to the default before exec.
 *     8. no_new_privs        Last: nothing above needs privilege gained by
 *                            exec, and seccomp (loaded after) relies on it.
 *
 * Capability requests are checked against the process's own sets before
 * anything changes, so a capability this host does not grant (root here
 * lacks CAP_SYS_RESOURCE) is reported by name instead of as a bare EPERM
 * from capset, and nothing is half-applied. Capabilities above the
 * kernel's cap_last_cap are skipped: a config written for a newer kernel
 * still runs. moat_process_check_capabilities() names them for the
 * runtime, which warns at create (this code runs in the init and cannot
 * print).
 *
 * Securebits have no OCI field; the annotation "org.moat.securebits"
 * names them, parsed at create (moat_process_securebits) so a typo fails
 * before any process exists.
 */

#include <fcntl.h>
#include <grp.h>
#include <inttypes.h>
#include <limits.h>
#include <linux/securebits.h>
#include <stdio.h>
#include <sys/capability.h>
#include <sys/personality.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/cleanup.h"
#include "base/fileio.h"
#include "base/log.h"
#include "base/parse.h"
#include "runtime/mount.h"
#include "runtime/process.h"
#include "runtime/protect.h"

#define DEFAULT_PATH "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
#define DEFAULT_UMASK 0022

static inline void cap_freep(cap_t *c)
{
        if (*c)
                cap_free(*c);
}
#define _cleanup_cap_ _cleanup_(cap_freep)

/* ---- helpers ---- */

static void format_limit(uint64_t v, char *buf, size_t size)
{
        if (v == (uint64_t) RLIM_INFINITY)
                snprintf(buf, size, "unlimited");
        else
                snprintf(buf, size, "%" PRIu64, v);
}

static const char *cap_name(int cap, char *buf, size_t size)
{
        char *n = cap_to_name(cap);

        if (!n || (*n >= '0' && *n <= '9')) { /* a number: unknown to libcap */
                if (n)
                        cap_free(n);
                snprintf(buf, size, "capability %d", cap);
                return buf;
        }
        snprintf(buf, size, "%s", n);
        cap_free(n);
        for (char *p = buf; *p; p++)
                if (*p >= 'a' && *p <= 'z')
                        *p = (char) (*p - 'a' + 'A');
        return buf;
}

/* Highest capability number the running kernel knows, asked of the kernel
 * itself (PR_CAPBSET_READ fails with EINVAL past the last one): after
 * pivot_root /proc is the container's, and a fake
 * /proc/sys/kernel/cap_last_cap would make the bounding set drop skip
 * capabilities. */
static int cap_last_cap(void)
{
        static int cached = -1;

        if (cached >= 0)
                return cached;
        int lo = 0, hi = 63;
        if (prctl(PR_CAPBSET_READ, 0, 0, 0, 0) < 0)
                return cached = CAP_LAST_CAP;
        while (lo < hi) {
                int mid = (lo + hi + 1) / 2;
                if (prctl(PR_CAPBSET_READ, (unsigned long) mid, 0, 0, 0) >= 0)
                        lo = mid;
                else
                        hi = mid - 1;
        }
        cached = lo;
        return cached;
}

static uint64_t known_caps_mask(void)
{
        int last = cap_last_cap();

        return last >= 63 ? UINT64_MAX : (UINT64_C(1) << (last + 1)) - 1;
}

static bool has_effective_cap(cap_value_t cap)
{
        _cleanup_cap_ cap_t c = cap_get_proc();
        cap_flag_value_t v = CAP_CLEAR;

        if (!c || cap_get_flag(c, cap, CAP_EFFECTIVE, &v) < 0)
                return false;
        return v == CAP_SET;
}

/* ---- rlimits ---- */

static int read_nr_open(uint64_t *ret)
{
        _cleanup_free_ char *s = NULL;
        int r;

        r = read_full_file_at(AT_FDCWD, "/proc/sys/fs/nr_open", 64, &s, NULL);
        if (r < 0)
                return r;
        s[strcspn(s, "\n")] = '\0';
        return safe_atou64(s, ret);
}

int moat_process_apply_rlimits(const struct oci_process *p, struct moat_error **reterr)
{
        bool checked_cap = false, have_sys_resource = false;

        for (size_t i = 0; i < p->n_rlimits; i++) {
                const struct oci_rlimit *r = &p->rlimits[i];
                char name[48], soft[32], hard[32], cur_hard[32];
                struct rlimit cur, want;

                if (r->type)
                        snprintf(name, sizeof(name), "%s", r->type);
                else
                        snprintf(name, sizeof(name), "rlimit %d", r->resource);
                format_limit(r->soft, soft, sizeof(soft));
                format_limit(r->hard, hard, sizeof(hard));

                if (r->soft > r->hard)
                        return moat_error_setx(reterr, -EINVAL,
                                               "process.rlimits[%zu]: %s soft limit %s exceeds its hard limit %s",
                                               i, name, soft, hard);

                if (prlimit(0, (__rlimit_resource_t) r->resource, NULL, &cur) < 0)
                        return moat_error_set(reterr, errno, "process.rlimits[%zu]: %s: getrlimit failed", i, name);
                format_limit(cur.rlim_max, cur_hard, sizeof(cur_hard));

                if (r->hard > (uint64_t) cur.rlim_max) {
                        if (!checked_cap) {
                                have_sys_resource = has_effective_cap(CAP_SYS_RESOURCE);
                                checked_cap = true;
                        }
                        if (!have_sys_resource)
                                return moat_error_setx(reterr, -EPERM,
                                                       "process.rlimits[%zu]: %s hard limit %s exceeds the caller's hard limit %s "
                                                       "and this process lacks CAP_SYS_RESOURCE",
                                                       i, name, hard, cur_hard);
                }

                want.rlim_cur = (rlim_t) r->soft;
                want.rlim_max = (rlim_t) r->hard;
                if (prlimit(0, (__rlimit_resource_t) r->resource, &want, NULL) < 0) {
                        int e = errno;
                        uint64_t nr_open;
                        if (e == EPERM && r->resource == RLIMIT_NOFILE && read_nr_open(&nr_open) >= 0 &&
                            r->hard > nr_open)
                                return moat_error_setx(reterr, e,
                                                       "process.rlimits[%zu]: %s hard limit %s exceeds the kernel's maximum %" PRIu64
                                                       " (/proc/sys/fs/nr_open): %s",
                                                       i, name, hard, nr_open, strerror(e));
                        if (e == EPERM && r->hard > (uint64_t) cur.rlim_max)
                                /* A capability in a user namespace does not count. */
                                return moat_error_setx(reterr, e,
                                                       "process.rlimits[%zu]: %s hard limit %s exceeds the caller's hard limit %s "
                                                       "and setrlimit was refused: %s (raising it needs CAP_SYS_RESOURCE "
                                                       "in the initial user namespace)",
                                                       i, name, hard, cur_hard, strerror(e));
                        return moat_error_set(reterr, e, "process.rlimits[%zu]: %s soft %s hard %s: setrlimit failed",
                                              i, name, soft, hard);
                }
        }
        return 0;
}

/* ---- oom_score_adj ---- */

/* Through a procfs verified by moat_procfs_open() (CVE-2019-16884: after
 * pivot_root "/proc" is whatever the container put there). */
int moat_process_apply_oom_score_adj_at(const struct oci_process *p, int proc_fd, struct moat_error **reterr)
{
        _cleanup_close_ int fd = -EBADF;
        char buf[16], cur[16];
        int r, n;

        if (!p->has_oom_score_adj)
                return 0;
        if (p->oom_score_adj < -1000 || p->oom_score_adj > 1000)
                return moat_error_setx(reterr, -EINVAL, "process.oomScoreAdj %d: out of range (-1000 to 1000)",
                                       p->oom_score_adj);

        fd = moat_procfs_open(proc_fd, "self/oom_score_adj", O_RDWR);
        if (fd < 0)
                return moat_error_set(reterr, fd,
                                      "process.oomScoreAdj %d: cannot open oom_score_adj in a verified procfs",
                                      p->oom_score_adj);

        n = snprintf(buf, sizeof(buf), "%d", p->oom_score_adj);
        r = write_all(fd, buf, (size_t) n);
        if (r >= 0)
                return 0;

        if (r == -EACCES || r == -EPERM) {
                int curval;
                ssize_t k = pread(fd, cur, sizeof(cur) - 1, 0);
                if (k > 0) {
                        cur[k] = '\0';
                        cur[strcspn(cur, "\n")] = '\0';
                        if (safe_atoi(cur, &curval) >= 0)
                                return moat_error_setx(reterr, r,
                                                       "process.oomScoreAdj %d: writing /proc/self/oom_score_adj failed: %s "
                                                       "(lowering it below the current value %d needs CAP_SYS_RESOURCE)",
                                                       p->oom_score_adj, strerror(-r), curval);
                }
                return moat_error_setx(reterr, r,
                                       "process.oomScoreAdj %d: writing /proc/self/oom_score_adj failed: %s "
                                       "(lowering it needs CAP_SYS_RESOURCE)",
                                       p->oom_score_adj, strerror(-r));
        }
        return moat_error_set(reterr, r, "process.oomScoreAdj %d: writing /proc/self/oom_score_adj failed",
                              p->oom_score_adj);
}

int moat_process_apply_oom_score_adj(const struct oci_process *p, struct moat_error **reterr)
{
        return moat_process_apply_oom_score_adj_at(p, -EBADF, reterr);
}

/* ---- personality ---- */

int moat_process_apply_personality(const struct oci_config *c, struct moat_error **reterr)
{
        unsigned long persona;

        if (!c->has_linux || !c->linux_.has_personality)
                return 0;
        if (!c->linux_.personality_domain)
                return moat_error_setx(reterr, -EINVAL, "linux.personality.domain: missing");
        if (streq(c->linux_.personality_domain, "LINUX"))
                persona = PER_LINUX;
        else if (streq(c->linux_.personality_domain, "LINUX32"))
                persona = PER_LINUX32;
        else
                return moat_error_setx(reterr, -EINVAL, "linux.personality.domain: unknown domain \"%s\"",
                                       c->linux_.personality_domain);

        if (personality(persona) < 0)
                return moat_error_set(reterr, errno, "linux.personality.domain \"%s\": personality failed",
                                      c->linux_.personality_domain);
        return 0;
}

/* ---- credentials and capabilities ---- */

static int first_cap(uint64_t mask)
{
        return mask ? __builtin_ctzll(mask) : -1;
}

static int read_proc_caps(uint64_t *ret_permitted, uint64_t *ret_inheritable, uint64_t *ret_bounding)
{
        _cleanup_cap_ cap_t c = cap_get_proc();
        uint64_t prm = 0, inh = 0, bnd = 0;
        int last = cap_last_cap();

        if (!c)
                return negative_errno();
        for (int i = 0; i <= last; i++) {
                cap_flag_value_t v;
                if (cap_get_flag(c, (cap_value_t) i, CAP_PERMITTED, &v) >= 0 && v == CAP_SET)
                        prm |= UINT64_C(1) << i;
                if (cap_get_flag(c, (cap_value_t) i, CAP_INHERITABLE, &v) >= 0 && v == CAP_SET)
                        inh |= UINT64_C(1) << i;
                if (cap_get_bound((cap_value_t) i) > 0)
                        bnd |= UINT64_C(1) << i;
        }
        *ret_permitted = prm;
        *ret_inheritable = inh;
        *ret_bounding = bnd;
        return 0;
}

/* Reject requests the kernel would refuse with a bare EPERM, naming the
 * capability and the rule, before anything has changed. */
static int check_capabilities(const struct oci_capabilities *want, struct moat_error **reterr)
{
        uint64_t prm, inh, bnd, bad;
        char name[64];
        int r;

        r = read_proc_caps(&prm, &inh, &bnd);
        if (r < 0)
                return moat_error_set(reterr, r, "process.capabilities: cannot read the current capabilities");

        bad = want->permitted & ~prm;
        if (bad)
                return moat_error_setx(reterr, -EPERM,
                                       "process.capabilities.permitted: %s is not in the runtime's permitted set "
                                       "(this host does not grant it)",
                                       cap_name(first_cap(bad), name, sizeof(name)));
        bad = want->effective & ~want->permitted;
        if (bad)
                return moat_error_setx(reterr, -EPERM,
                                       "process.capabilities.effective: %s is not in process.capabilities.permitted",
                                       cap_name(first_cap(bad), name, sizeof(name)));
        bad = want->inheritable & ~(inh | prm);
        if (bad)
                return moat_error_setx(reterr, -EPERM,
                                       "process.capabilities.inheritable: %s is not in the runtime's permitted set "
                                       "(this host does not grant it)",
                                       cap_name(first_cap(bad), name, sizeof(name)));
        bad = want->inheritable & ~(inh | (want->bounding & bnd));
        if (bad)
                return moat_error_setx(reterr, -EPERM,
                                       "process.capabilities.inheritable: %s is not in the bounding set",
                                       cap_name(first_cap(bad), name, sizeof(name)));
        /* The kernel keeps an ambient capability only while it is both
         * permitted and inheritable; runc's default spec lists ambient
         * capabilities without inheritable ones and runc runs it, so those
         * are left out rather than refused. */
        bad = want->ambient & ~(want->permitted & want->inheritable);
        if (bad)
                log_debug("process.capabilities.ambient: %s is not both permitted and inheritable, left out",
                          cap_name(first_cap(bad), name, sizeof(name)));
        bad = want->bounding & ~bnd;
        if (bad)
                log_debug("process.capabilities.bounding: %s not in the runtime's bounding set, left out",
                          cap_name(first_cap(bad), name, sizeof(name)));
        return 0;
}

static int drop_bounding(uint64_t keep, struct moat_error **reterr)
{
        int last = cap_last_cap();
        char name[64];

        for (int i = 0; i <= last; i++) {
                if (keep & (UINT64_C(1) << i))
                        continue;
                int have = cap_get_bound((cap_value_t) i);
                if (have == 0)
                        continue; /* already gone: no CAP_SETPCAP needed */
                if (cap_drop_bound((cap_value_t) i) < 0)
                        return moat_error_set(reterr, errno, "process.capabilities.bounding: dropping %s failed",
                                              cap_name(i, name, sizeof(name)));
        }
        return 0;
}

/* Whether the supplementary groups may be set is asked of the kernel, not
 * read from /proc/self/setgroups: after pivot_root that file is the
 * container's, and a fake "deny" would leave the runtime's own groups to
 * the container. setgroups() fails with EPERM despite CAP_SETGID only
 * when the user namespace denies it. */
static int apply_user(const struct oci_user *u, struct moat_error **reterr)
{
        _cleanup_free_ gid_t *gids = NULL;

        if (u->n_additional_gids > NGROUPS_MAX)
                return moat_error_setx(reterr, -EINVAL, "process.user.additionalGids: %zu groups, at most %d allowed",
                                       u->n_additional_gids, NGROUPS_MAX);

        if (u->n_additional_gids > 0) {
                gids = calloc(u->n_additional_gids, sizeof(gid_t));
                if (!gids)
                        return moat_error_set(reterr, -ENOMEM, "process.user.additionalGids");
                for (size_t i = 0; i < u->n_additional_gids; i++)
                        gids[i] = (gid_t) u->additional_gids[i];
        }
        if (setgroups(u->n_additional_gids, gids) < 0) {
                int e = errno;
                bool denied = e == EPERM && has_effective_cap(CAP_SETGID);
                if (denied && u->n_additional_gids > 0)
                        return moat_error_setx(reterr, -EPERM,
                                               "process.user.additionalGids: setgroups is denied in this user namespace "
                                               "(/proc/self/setgroups is \"deny\")");
                if (!denied) {
                        if (u->n_additional_gids == 0)
                                return moat_error_set(reterr, e,
                                                      "process.user.additionalGids: clearing the supplementary groups failed");
                        return moat_error_set(reterr, e, "process.user.additionalGids: setgroups failed");
                }
        }

        if (setresgid((gid_t) u->gid, (gid_t) u->gid, (gid_t) u->gid) < 0)
                return moat_error_set(reterr, errno, "process.user.gid %" PRIu32 ": setresgid failed", u->gid);
        if (setresuid((uid_t) u->uid, (uid_t) u->uid, (uid_t) u->uid) < 0)
                return moat_error_set(reterr, errno, "process.user.uid %" PRIu32 ": setresuid failed", u->uid);
        return 0;
}

static int set_cap_flags(cap_t c, cap_flag_t flag, uint64_t mask)
{
        for (int i = 0; i < 64; i++) {
                if (!(mask & (UINT64_C(1) << i)))
                        continue;
                cap_value_t v = (cap_value_t) i;
                if (cap_set_flag(c, flag, 1, &v, CAP_SET) < 0)
                        return negative_errno();
        }
        return 0;
}

static int apply_capsets(const struct oci_capabilities *want, struct moat_error **reterr)
{
        _cleanup_cap_ cap_t c = cap_init();
        char name[64];
        int r;

        if (!c)
                return moat_error_set(reterr, errno, "process.capabilities: cap_init failed");
        if ((r = set_cap_flags(c, CAP_EFFECTIVE, want->effective)) < 0 ||
            (r = set_cap_flags(c, CAP_PERMITTED, want->permitted)) < 0 ||
            (r = set_cap_flags(c, CAP_INHERITABLE, want->inheritable)) < 0)
                return moat_error_set(reterr, r, "process.capabilities: building the capability sets failed");
        if (cap_set_proc(c) < 0)
                return moat_error_set(reterr, errno,
                                      "process.capabilities: setting the effective, permitted and inheritable sets failed");

        if (cap_reset_ambient() < 0 && errno != EINVAL)
                return moat_error_set(reterr, errno, "process.capabilities.ambient: clearing the ambient set failed");
        for (int i = 0; i < 64; i++) {
                if (!(want->ambient & (UINT64_C(1) << i)))
                        continue;
                if (cap_set_ambient((cap_value_t) i, CAP_SET) < 0)
                        return moat_error_set(reterr, errno, "process.capabilities.ambient: raising %s failed",
                                              cap_name(i, name, sizeof(name)));
        }
        return 0;
}

/* ---- securebits ---- */

#define SECUREBITS_MAX_LEN 1024

static const struct {
        const char *name;
        unsigned bit;
} securebit_names[] = {
        { "noroot", SECBIT_NOROOT },
        { "noroot_locked", SECBIT_NOROOT_LOCKED },
        { "no_setuid_fixup", SECBIT_NO_SETUID_FIXUP },
        { "no_setuid_fixup_locked", SECBIT_NO_SETUID_FIXUP_LOCKED },
        { "keep_caps_locked", SECBIT_KEEP_CAPS_LOCKED },
        { "no_cap_ambient_raise", SECBIT_NO_CAP_AMBIENT_RAISE },
        { "no_cap_ambient_raise_locked", SECBIT_NO_CAP_AMBIENT_RAISE_LOCKED },
};

static bool is_blank(char c)
{
        return c == ' ' || c == '\t';
}

/* The ambient capabilities apply_credentials would raise. */
static uint64_t ambient_to_raise(const struct oci_capabilities *c)
{
        return c->ambient & c->permitted & c->inheritable & known_caps_mask();
}

int moat_process_securebits(const struct oci_config *c, unsigned *ret, struct moat_error **reterr)
{
        const char *v = oci_config_annotation(c, MOAT_SECUREBITS_ANNOTATION);
        unsigned bits = 0;
        char name[64];

        *ret = 0;
        if (!v)
                return 0;
        if (strlen(v) > SECUREBITS_MAX_LEN)
                return moat_error_setx(reterr, -EINVAL, "annotation \"%s\": longer than %d bytes",
                                       MOAT_SECUREBITS_ANNOTATION, SECUREBITS_MAX_LEN);

        for (const char *s = v;;) {
                size_t len = strcspn(s, ",");
                const char *b = s;
                size_t n = len;
                bool found = false;

                while (n > 0 && is_blank(*b))
                        b++, n--;
                while (n > 0 && is_blank(b[n - 1]))
                        n--;
                if (n == 0)
                        return moat_error_setx(reterr, -EINVAL, "annotation \"%s\": empty securebit name in \"%s\"",
                                               MOAT_SECUREBITS_ANNOTATION, v);
                for (size_t i = 0; i < ELEMENTSOF(securebit_names); i++)
                        if (strlen(securebit_names[i].name) == n && strncmp(b, securebit_names[i].name, n) == 0) {
                                bits |= securebit_names[i].bit;
                                found = true;
                        }
                if (!found) {
                        snprintf(name, sizeof(name), "%.*s", (int) (n < sizeof(name) - 1 ? n : sizeof(name) - 1), b);
                        return moat_error_setx(reterr, -EINVAL,
                                               "annotation \"%s\": unknown securebit \"%s\" (known: noroot, noroot_locked, "
                                               "no_setuid_fixup, no_setuid_fixup_locked, keep_caps_locked, "
                                               "no_cap_ambient_raise, no_cap_ambient_raise_locked)",
                                               MOAT_SECUREBITS_ANNOTATION, name);
                }
                if (s[len] == '\0')
                        break;
                s += len + 1;
        }

        if ((bits & SECBIT_NO_CAP_AMBIENT_RAISE) && c->has_process && c->process.has_capabilities) {
                uint64_t amb = ambient_to_raise(&c->process.capabilities);
                if (amb)
                        return moat_error_setx(reterr, -EINVAL,
                                               "annotation \"%s\": no_cap_ambient_raise conflicts with "
                                               "process.capabilities.ambient (%s would be raised)",
                                               MOAT_SECUREBITS_ANNOTATION, cap_name(first_cap(amb), name, sizeof(name)));
        }
        *ret = bits;
        return 0;
}

int moat_process_apply_securebits(unsigned bits, struct moat_error **reterr)
{
        if (prctl(PR_SET_SECUREBITS, (unsigned long) bits, 0, 0, 0) >= 0)
                return 0;
        int e = errno;
        if (e == EPERM && !has_effective_cap(CAP_SETPCAP))
                return moat_error_setx(reterr, -EPERM,
                                       "annotation \"%s\": setting securebits %#x failed: %s (needs CAP_SETPCAP)",
                                       MOAT_SECUREBITS_ANNOTATION, bits, strerror(e));
        if (e == EPERM)
                return moat_error_setx(reterr, -EPERM,
                                       "annotation \"%s\": setting securebits %#x failed: %s "
                                       "(a bit already locked, current securebits %#x)",
                                       MOAT_SECUREBITS_ANNOTATION, bits, strerror(e),
                                       (unsigned) prctl(PR_GET_SECUREBITS, 0, 0, 0, 0));
        return moat_error_set(reterr, e, "annotation \"%s\": setting securebits %#x failed",
                              MOAT_SECUREBITS_ANNOTATION, bits);
}

/* ---- capabilities unknown to the kernel ---- */

int moat_process_check_capabilities(const struct oci_process *p, char **ret_warning)
{
        const struct oci_capabilities *c = p ? &p->capabilities : NULL;
        uint64_t unknown;
        char buf[4096], name[64];
        size_t len = 0;
        int last = cap_last_cap();

        *ret_warning = NULL;
        if (!p || !p->has_capabilities)
                return 0;
        unknown = (c->bounding | c->effective | c->inheritable | c->permitted | c->ambient) & ~known_caps_mask();
        if (!unknown)
                return 0;

        /* At most 63 names of at most 63 bytes: always fits. */
        len += (size_t) snprintf(buf + len, sizeof(buf) - len, "process.capabilities: ");
        for (int i = 0; i < 64 && len < sizeof(buf); i++)
                if (unknown & (UINT64_C(1) << i))
                        len += (size_t) snprintf(buf + len, sizeof(buf) - len, "%s%s",
                                                 unknown & ((UINT64_C(1) << i) - 1) ? ", " : "",
                                                 cap_name(i, name, sizeof(name)));
        if (len < sizeof(buf))
                snprintf(buf + len, sizeof(buf) - len,
                         " unknown to the running kernel (its last capability is %s), skipped",
                         cap_name(last, name, sizeof(name)));

        *ret_warning = strdup(buf);
        return *ret_warning ? 0 : -ENOMEM;
}

/* ---- credentials ---- */

int moat_process_apply_credentials(const struct oci_process *p, struct moat_error **reterr)
{
        return moat_process_apply_credentials_ex(p, 0, reterr);
}

int moat_process_apply_credentials_ex(const struct oci_process *p, unsigned securebits, struct moat_error **reterr)
{
        struct oci_capabilities want = {};
        uint64_t known = known_caps_mask();
        int r;

        if (p->user.has_umask && p->user.umask > 0777)
                return moat_error_setx(reterr, -EINVAL, "process.user.umask %#" PRIo32 ": not a file mode mask (at most 0777)",
                                       p->user.umask);

        if (p->has_capabilities) {
                want = p->capabilities;
                if ((want.bounding | want.effective | want.inheritable | want.permitted | want.ambient) & ~known)
                        log_debug("process.capabilities: capabilities above %d are unknown to this kernel, skipped",
                                  cap_last_cap());
                want.bounding &= known;
                want.effective &= known;
                want.inheritable &= known;
                want.permitted &= known;
                want.ambient &= known & want.permitted & want.inheritable;
                r = check_capabilities(&want, reterr);
                if (r < 0)
                        return r;
        }
        if ((securebits & SECBIT_NO_CAP_AMBIENT_RAISE) && want.ambient) {
                char name[64];
                return moat_error_setx(reterr, -EINVAL,
                                       "annotation \"%s\": no_cap_ambient_raise conflicts with "
                                       "process.capabilities.ambient (%s would be raised)",
                                       MOAT_SECUREBITS_ANNOTATION, cap_name(first_cap(want.ambient), name, sizeof(name)));
        }

        bool keep = want.effective | want.permitted | want.inheritable | want.ambient;

        /* 1 */
        if (keep && prctl(PR_SET_KEEPCAPS, 1, 0, 0, 0) < 0)
                return moat_error_set(reterr, errno, "process.capabilities: PR_SET_KEEPCAPS failed");

        /* 2 */
        r = drop_bounding(want.bounding, reterr);
        if (r < 0)
                return r;

        /* 2b */
        if (securebits) {
                r = moat_process_apply_securebits(securebits | (keep ? SECBIT_KEEP_CAPS : 0), reterr);
                if (r < 0)
                        return r;
        }

        /* 3 */
        r = apply_user(&p->user, reterr);
        if (r < 0)
                return r;

        /* 4 */
        umask(p->user.has_umask ? (mode_t) p->user.umask : DEFAULT_UMASK);

        /* 5, 6 */
        r = apply_capsets(&want, reterr);
        if (r < 0)
                return r;

        /* 7 */
        if (keep && !(securebits & SECBIT_KEEP_CAPS_LOCKED) && prctl(PR_SET_KEEPCAPS, 0, 0, 0, 0) < 0)
                return moat_error_set(reterr, errno, "process.capabilities: clearing PR_SET_KEEPCAPS failed");

        /* 8 */
        if (p->no_new_privileges && prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
                return moat_error_set(reterr, errno, "process.noNewPrivileges: PR_SET_NO_NEW_PRIVS failed");

        return 0;
}

/* ---- executable lookup ---- */

static const char *env_path(char **env)
{
        const char *path = NULL;

        for (char **e = env; e && *e; e++)
                if (startswith(*e, "PATH="))
                        path = *e + 5;
        return path ? path : DEFAULT_PATH;
}

static bool is_executable_file(const char *path)
{
        struct stat st;

        if (stat(path, &st) < 0 || !S_ISREG(st.st_mode))
                return false;
        return faccessat(AT_FDCWD, path, X_OK, AT_EACCESS) >= 0;
}

/* strerror() in the spelling Go's syscall package uses (lower case). */
static const char *go_strerror(int errnum)
{
        switch (errnum) {
        case ENOENT:
                return "no such file or directory";
        case EACCES:
                return "permission denied";
        case ENOTDIR:
                return "not a directory";
        case ELOOP:
                return "too many levels of symbolic links";
        default:
                return strerror(errnum);
        }
}

int moat_process_find_executable(const struct oci_process *p, char **ret, struct moat_error **reterr)
{
        const char *name = p->args ? p->args[0] : NULL;
        const char *path;
        char *res;
        struct stat st;

        if (strempty(name))
                return moat_error_setx(reterr, -EINVAL, "process.args: no program to run");
        if (strlen(name) >= PATH_MAX)
                return moat_error_setx(reterr, -ENAMETOOLONG, "process.args[0]: longer than %d bytes", PATH_MAX - 1);

        if (strchr(name, '/')) {
                if (stat(name, &st) < 0)
                        /* Go's lower-case wording, as runc prints it: the
                         * docker CLI maps "no such file or directory" to
                         * exit status 127 by matching this text. */
                        return moat_error_setx(reterr, -errno, "exec: \"%s\": stat %s: %s", name, name,
                                               go_strerror(errno));
                if (S_ISDIR(st.st_mode))
                        return moat_error_setx(reterr, -EACCES, "exec: \"%s\": is a directory", name);
                if (faccessat(AT_FDCWD, name, X_OK, AT_EACCESS) < 0)
                        return moat_error_setx(reterr, -EACCES, "exec: \"%s\": permission denied", name);
                res = strdup(name);
                if (!res)
                        return moat_error_set(reterr, -ENOMEM, "exec: \"%s\"", name);
                *ret = res;
                return 0;
        }

        path = env_path(p->env);
        for (const char *dir = path;;) {
                size_t len = strcspn(dir, ":");
                _cleanup_free_ char *cand = NULL;

                /* An empty component means the current directory, as for execvp. */
                if (len < PATH_MAX) {
                        int n = len == 0 ? asprintf(&cand, "./%s", name)
                                         : asprintf(&cand, "%.*s/%s", (int) len, dir, name);
                        if (n < 0)
                                return moat_error_set(reterr, -ENOMEM, "exec: \"%s\"", name);
                        if (n < PATH_MAX && is_executable_file(cand)) {
                                *ret = TAKE_PTR(cand);
                                return 0;
                        }
                }
                if (dir[len] == '\0')
                        break;
                dir += len + 1;
        }
        return moat_error_setx(reterr, -ENOENT, "exec: \"%s\": executable file not found in $PATH", name);
}

/* ---- cwd ---- */

int moat_process_make_cwd(const struct oci_process *p, struct moat_error **reterr)
{
        _cleanup_close_ int root = open("/", O_PATH | O_DIRECTORY | O_CLOEXEC);
        if (root < 0)
                return moat_error_set(reterr, errno, "process.cwd: opening \"/\"");
        int fd = moat_mkdir_p_in_root(root, p->cwd);
        if (fd < 0)
                return moat_error_set(reterr, fd, "process.cwd \"%s\": creating it inside the container", p->cwd);
        safe_close(fd);
        return 0;
}

int moat_process_chdir(const struct oci_process *p, struct moat_error **reterr)
{
        _cleanup_close_ int root = -EBADF, fd = -EBADF;
        char buf[PATH_MAX];

        root = open("/", O_PATH | O_DIRECTORY | O_CLOEXEC);
        if (root < 0)
                return moat_error_set(reterr, errno, "process.cwd: opening \"/\"");
        fd = moat_open_in_root(root, p->cwd, O_PATH | O_DIRECTORY, 0);
        if (fd < 0)
                return moat_error_set(reterr, fd, "process.cwd \"%s\"", p->cwd);
        if (fchdir(fd) < 0)
                return moat_error_set(reterr, errno, "process.cwd \"%s\"", p->cwd);
        /* A directory outside the root shows as "(unreachable)/..." or
         * fails with ENOENT. */
        if (!getcwd(buf, sizeof(buf)) || buf[0] != '/')
                return moat_error_setx(reterr, -EPERM, "process.cwd \"%s\": the directory is outside the container's root",
                                       p->cwd);
        return 0;
}
