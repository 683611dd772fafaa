/* SPDX-License-Identifier: Apache-2.0 */
#include "base/compat.h"

/*
 * The OCI mount option table (the names runc and crun accept) and the
 * split of a mount's options[] into mount(2) flags, mount_setattr()
 * attributes, propagation and filesystem data. The table is a sorted
 * static array searched with bsearch(); the unit test asserts the order.
 * Anything the table does not know is filesystem data, as runc does.
 */

#include <sys/mount.h>

#include "base/cleanup.h"
#include "runtime/mount.h"

#define MAX_OPTIONS 4096
#define MAX_DATA (64u * 1024u)

enum option_kind {
        OPT_SET,        /* MS_* flag set */
        OPT_CLEAR,      /* MS_* flag cleared */
        OPT_PROPAGATION,
        OPT_REC_SET,    /* MOUNT_ATTR_* set recursively */
        OPT_REC_CLEAR,
        OPT_TMPCOPYUP,
        OPT_IDMAP,
        OPT_RIDMAP,
};

struct mount_option {
        const char *name;
        enum option_kind kind;
        uint64_t value;
};

/* Sorted by strcmp(); keep it so. */
static const struct mount_option option_table[] = {
        { "acl",            OPT_SET,         MS_POSIXACL },
        { "async",          OPT_CLEAR,       MS_SYNCHRONOUS },
        { "atime",          OPT_CLEAR,       MS_NOATIME },
        { "bind",           OPT_SET,         MS_BIND },
        { "defaults",       OPT_SET,         0 },
        { "dev",            OPT_CLEAR,       MS_NODEV },
        { "diratime",       OPT_CLEAR,       MS_NODIRATIME },
        { "dirsync",        OPT_SET,         MS_DIRSYNC },
        { "exec",           OPT_CLEAR,       MS_NOEXEC },
        { "idmap",          OPT_IDMAP,       0 },
        { "iversion",       OPT_SET,         MS_I_VERSION },
        { "lazytime",       OPT_SET,         MS_LAZYTIME },
        { "loud",           OPT_CLEAR,       MS_SILENT },
        { "mand",           OPT_SET,         MS_MANDLOCK },
        { "noacl",          OPT_CLEAR,       MS_POSIXACL },
        { "noatime",        OPT_SET,         MS_NOATIME },
        { "nodev",          OPT_SET,         MS_NODEV },
        { "nodiratime",     OPT_SET,         MS_NODIRATIME },
        { "noexec",         OPT_SET,         MS_NOEXEC },
        { "noiversion",     OPT_CLEAR,       MS_I_VERSION },
        { "nolazytime",     OPT_CLEAR,       MS_LAZYTIME },
        { "nomand",         OPT_CLEAR,       MS_MANDLOCK },
        { "norelatime",     OPT_CLEAR,       MS_RELATIME },
        { "nostrictatime",  OPT_CLEAR,       MS_STRICTATIME },
        { "nosuid",         OPT_SET,         MS_NOSUID },
        { "nosymfollow",    OPT_SET,         MS_NOSYMFOLLOW },
        { "private",        OPT_PROPAGATION, MS_PRIVATE },
        { "ratime",         OPT_REC_CLEAR,   MOUNT_ATTR_NOATIME },
        { "rbind",          OPT_SET,         MS_BIND | MS_REC },
        { "rdev",           OPT_REC_CLEAR,   MOUNT_ATTR_NODEV },
        { "rdiratime",      OPT_REC_CLEAR,   MOUNT_ATTR_NODIRATIME },
        { "relatime",       OPT_SET,         MS_RELATIME },
        { "remount",        OPT_SET,         MS_REMOUNT },
        { "rexec",          OPT_REC_CLEAR,   MOUNT_ATTR_NOEXEC },
        { "ridmap",         OPT_RIDMAP,      0 },
        { "rnoatime",       OPT_REC_SET,     MOUNT_ATTR_NOATIME },
        { "rnodev",         OPT_REC_SET,     MOUNT_ATTR_NODEV },
        { "rnodiratime",    OPT_REC_SET,     MOUNT_ATTR_NODIRATIME },
        { "rnoexec",        OPT_REC_SET,     MOUNT_ATTR_NOEXEC },
        { "rnorelatime",    OPT_REC_CLEAR,   MOUNT_ATTR_RELATIME },
        { "rnostrictatime", OPT_REC_CLEAR,   MOUNT_ATTR_STRICTATIME },
        { "rnosuid",        OPT_REC_SET,     MOUNT_ATTR_NOSUID },
        { "rnosymfollow",   OPT_REC_SET,     MOUNT_ATTR_NOSYMFOLLOW },
        { "ro",             OPT_SET,         MS_RDONLY },
        { "rprivate",       OPT_PROPAGATION, MS_PRIVATE | MS_REC },
        { "rrelatime",      OPT_REC_SET,     MOUNT_ATTR_RELATIME },
        { "rro",            OPT_REC_SET,     MOUNT_ATTR_RDONLY },
        { "rrw",            OPT_REC_CLEAR,   MOUNT_ATTR_RDONLY },
        { "rshared",        OPT_PROPAGATION, MS_SHARED | MS_REC },
        { "rslave",         OPT_PROPAGATION, MS_SLAVE | MS_REC },
        { "rstrictatime",   OPT_REC_SET,     MOUNT_ATTR_STRICTATIME },
        { "rsuid",          OPT_REC_CLEAR,   MOUNT_ATTR_NOSUID },
        { "rsymfollow",     OPT_REC_CLEAR,   MOUNT_ATTR_NOSYMFOLLOW },
        { "runbindable",    OPT_PROPAGATION, MS_UNBINDABLE | MS_REC },
        { "rw",             OPT_CLEAR,       MS_RDONLY },
        { "shared",         OPT_PROPAGATION, MS_SHARED },
        { "silent",         OPT_SET,         MS_SILENT },
        { "slave",          OPT_PROPAGATION, MS_SLAVE },
        { "strictatime",    OPT_SET,         MS_STRICTATIME },
        { "suid",           OPT_CLEAR,       MS_NOSUID },
        { "symfollow",      OPT_CLEAR,       MS_NOSYMFOLLOW },
        { "sync",           OPT_SET,         MS_SYNCHRONOUS },
        { "tmpcopyup",      OPT_TMPCOPYUP,   0 },
        { "unbindable",     OPT_PROPAGATION, MS_UNBINDABLE },
};

static int option_compare(const void *key, const void *member)
{
        return strcmp(key, ((const struct mount_option *) member)->name);
}

static const struct mount_option *option_lookup(const char *name)
{
        return bsearch(name, option_table, ELEMENTSOF(option_table), sizeof(option_table[0]), option_compare);
}

const char *const *moat_mount_known_options(void)
{
        static const char *names[ELEMENTSOF(option_table) + 1];

        for (size_t i = 0; i < ELEMENTSOF(option_table); i++)
                names[i] = option_table[i].name;
        names[ELEMENTSOF(option_table)] = NULL;
        return names;
}

/* The atime attributes are one field in mount_setattr(): changing any of
 * them means clearing the whole field and naming the new value; ratime and
 * rnostrictatime fall back to relatime, rnorelatime to strictatime. */
static void rec_atime(struct moat_mount_options *o, uint64_t value)
{
        o->rec_clr |= MOUNT_ATTR__ATIME;
        o->rec_set = (o->rec_set & ~(uint64_t) MOUNT_ATTR__ATIME) | value;
}

static int data_append(char **data, size_t *len, const char *opt)
{
        size_t n = strlen(opt);

        if (*len + n + 2 > MAX_DATA)
                return -E2BIG;
        char *p = realloc(*data, *len + n + 2);
        if (!p)
                return -ENOMEM;
        if (*len > 0)
                p[(*len)++] = ',';
        memcpy(p + *len, opt, n + 1);
        *len += n;
        *data = p;
        return 0;
}

int moat_mount_options_parse(char *const *options, struct moat_mount_options *ret, struct moat_error **reterr)
{
        struct moat_mount_options o = {};
        _cleanup_free_ char *data = NULL;
        size_t data_len = 0;
        size_t i = 0;
        int r;

        for (; options && options[i]; i++) {
                const char *name = options[i];

                if (i >= MAX_OPTIONS)
                        return moat_error_setx(reterr, -E2BIG, "options: more than %d entries", MAX_OPTIONS);

                const struct mount_option *opt = option_lookup(name);
                if (!opt) {
                        if (strempty(name))
                                continue;
                        r = data_append(&data, &data_len, name);
                        if (r < 0)
                                return moat_error_set(reterr, r, "options[%zu] \"%s\"", i, name);
                        continue;
                }

                switch (opt->kind) {
                case OPT_SET:
                        o.flags |= opt->value;
                        o.clear &= ~opt->value;
                        break;
                case OPT_CLEAR:
                        o.flags &= ~opt->value;
                        o.clear |= opt->value;
                        break;
                case OPT_PROPAGATION:
                        o.propagation = opt->value;
                        break;
                case OPT_REC_SET:
                        if (opt->value & MOUNT_ATTR__ATIME || opt->value == MOUNT_ATTR_RELATIME) {
                                rec_atime(&o, opt->value);
                                break;
                        }
                        o.rec_set |= opt->value;
                        o.rec_clr &= ~opt->value;
                        break;
                case OPT_REC_CLEAR:
                        if (opt->value & MOUNT_ATTR__ATIME || opt->value == MOUNT_ATTR_RELATIME) {
                                rec_atime(&o, opt->value == MOUNT_ATTR_RELATIME ? MOUNT_ATTR_STRICTATIME
                                                                                : MOUNT_ATTR_RELATIME);
                                break;
                        }
                        o.rec_clr |= opt->value;
                        o.rec_set &= ~opt->value;
                        break;
                case OPT_TMPCOPYUP:
                        o.tmpcopyup = true;
                        break;
                case OPT_IDMAP:
                        o.idmap = true;
                        break;
                case OPT_RIDMAP:
                        o.ridmap = true;
                        break;
                }
        }

        o.data = TAKE_PTR(data);
        *ret = o;
        return 0;
}

void moat_mount_options_done(struct moat_mount_options *o)
{
        if (!o)
                return;
        free(o->data);
        o->data = NULL;
}
