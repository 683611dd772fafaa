/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

/*
 * Placement of a container's processes in cgroups, on every layout a host
 * can have: cgroup v2 unified, cgroup v1, and hybrid (v1 controllers plus a
 * cgroup2 mount at /sys/fs/cgroup/unified that may hold some controllers).
 *
 * This part (runtime core) owns: working out the container's cgroup path
 * from linux.cgroupsPath, creating it (and missing parents) in every mounted
 * hierarchy, moving a pid into it, recording what was created so that
 * delete removes exactly that, and removing it (waiting for it to empty).
 * Limits, stats, freeze and kill-all belong to the cgroups work and build
 * on struct moat_cgroup.
 */

#include "base/compat.h"
#include "base/error.h"

enum moat_cgroup_layout {
        MOAT_CGROUP_LAYOUT_UNIFIED,  /* /sys/fs/cgroup is cgroup2 */
        MOAT_CGROUP_LAYOUT_LEGACY,   /* v1 only */
        MOAT_CGROUP_LAYOUT_HYBRID,   /* v1 plus a cgroup2 mount at /sys/fs/cgroup/unified */
};

struct moat_cgroup;

/* A cgroup or cgroup2 filesystem mounted under /sys/fs/cgroup. */
struct moat_cgroup_mount {
        char *mountpoint; /* "/sys/fs/cgroup/cpu,cpuacct" */
        char *root;       /* the hierarchy's directory mounted there: "/" unless a subtree is */
        char *options;    /* superblock options as mountinfo shows them: "rw,cpu,cpuacct" */
        dev_t dev;        /* the same for every mount of one hierarchy */
        bool v2;
};

/* The visible cgroup mounts, in mount order: a later mount on a mountpoint
 * replaces the one it hides. At most 64. */
struct moat_cgroup_mounts {
        struct moat_cgroup_mount *m;
        size_t n;
};

/*
 * Read the cgroup mounts under /sys/fs/cgroup of the caller's mount
 * namespace (an empty list when there are none). A create reads them once
 * in the parent and the container init uses that list (it is a fork):
 * moat_cgroup_mounts() hands it on.
 */
MOAT_NODISCARD int moat_cgroup_mounts_read(struct moat_cgroup_mounts **ret, struct moat_error **reterr);
void moat_cgroup_mounts_free(struct moat_cgroup_mounts *ms);
static inline void moat_cgroup_mounts_freep(struct moat_cgroup_mounts **ms)
{
        moat_cgroup_mounts_free(*ms);
        *ms = NULL;
}

/* The mounts moat_cgroup_create() found; NULL for a deserialized cgroup. */
const struct moat_cgroup_mounts *moat_cgroup_mounts(const struct moat_cgroup *cg);

/* Detect the host's layout (cached after the first call). */
MOAT_NODISCARD int moat_cgroup_detect_layout(enum moat_cgroup_layout *ret, struct moat_error **reterr);

/*
 * Resolve the container's cgroup from cgroups_path (NULL or "" means the
 * default, "/<id>"; a relative path is relative to the calling process's own
 * cgroup in each hierarchy) and create it in every hierarchy. A path of the
 * systemd form "slice:prefix:name" is refused with -EOPNOTSUPP (the systemd
 * driver is not supported yet).
 */
MOAT_NODISCARD int moat_cgroup_create(const char *cgroups_path, const char *id, struct moat_cgroup **ret,
                                      struct moat_error **reterr);

/* moat_cgroup_create() in two steps: plan resolves the paths (no side
 * effect; the list of mounts is read), make creates the directories
 * (removing what it made if one fails). Between the two a create clones
 * the init, whose set-up then overlaps the mkdirs. */
MOAT_NODISCARD int moat_cgroup_plan(const char *cgroups_path, const char *id, struct moat_cgroup **ret,
                                    struct moat_error **reterr);
MOAT_NODISCARD int moat_cgroup_make(struct moat_cgroup *cg, struct moat_error **reterr);

/* Move pid into the container's cgroup in every hierarchy (v2_only: in the
 * cgroup2 one only). The first move after a quiet spell waits out an RCU
 * grace period (the kernel's global threadgroup lock): see
 * moat_cgroup_join_self() for a create's way around it. */
MOAT_NODISCARD int moat_cgroup_enter(struct moat_cgroup *cg, pid_t pid, bool v2_only, struct moat_error **reterr);

/*
 * How a create's init joins its cgroup without that wait. In cgroup2 it is
 * cloned into its directory (clone3's CLONE_INTO_CGROUP, which takes the
 * lock for reading only): moat_cgroup_make_v2() makes that directory ahead
 * of the other hierarchies and returns an fd for the clone, owned by cg
 * (-ENOENT: no cgroup2 hierarchy). In each v1 hierarchy the init writes "0"
 * to "tasks" itself, which moves only the writing thread and so skips the
 * lock: moat_cgroup_join_open() opens those files (before the init leaves
 * the host's mounts), moat_cgroup_join_self() writes them and closes them.
 */
MOAT_NODISCARD int moat_cgroup_make_v2(struct moat_cgroup *cg, int *ret_fd, struct moat_error **reterr);

struct moat_cgroup_join {
        int fd[32];
        size_t hierarchy[32];
        size_t n;
};
MOAT_NODISCARD int moat_cgroup_join_open(struct moat_cgroup *cg, struct moat_cgroup_join *ret,
                                         struct moat_error **reterr);
MOAT_NODISCARD int moat_cgroup_join_self(struct moat_cgroup *cg, struct moat_cgroup_join *join,
                                         struct moat_error **reterr);
void moat_cgroup_join_close(struct moat_cgroup_join *join);

/*
 * Serialize what was created (one line per hierarchy: "<mountpoint>\t<path
 * relative to the mountpoint>\t<created>") for the state directory, and
 * load it back for delete. <created> counts the trailing components of the
 * path that create made: 0 when the cgroup existed, 1 for the leaf only,
 * more when missing parents were made too (destroy removes exactly those).
 */
MOAT_NODISCARD int moat_cgroup_serialize(const struct moat_cgroup *cg, char **ret);
MOAT_NODISCARD int moat_cgroup_deserialize(const char *text, struct moat_cgroup **ret, struct moat_error **reterr);

/* The container's path as the state and `list` show it ("/abc"). */
const char *moat_cgroup_path(const struct moat_cgroup *cg);

/* Pids currently in the container's cgroup (the first hierarchy that has
 * cgroup.procs, preferring pids, then memory, then the unified tree). */
MOAT_NODISCARD int moat_cgroup_pids(struct moat_cgroup *cg, pid_t **ret, size_t *ret_n, struct moat_error **reterr);

/*
 * Open the container's cgroup directory (O_DIRECTORY|O_CLOEXEC) in the
 * hierarchy that holds a controller: a v1 hierarchy whose mount is named
 * after it (co-mounts like "cpu,cpuacct" count for each; "name=systemd" is
 * "systemd"), else the cgroup2 tree when the controller is listed in the
 * container's cgroup.controllers there. The pseudo-controllers "freezer" and
 * "kill" on a cgroup2 tree mean its core files (cgroup.freeze, cgroup.kill).
 * *ret_v2 says which kind of hierarchy answered. -ENOENT: none has it.
 */
MOAT_NODISCARD int moat_cgroup_open_controller(struct moat_cgroup *cg, const char *controller, int *ret_fd,
                                               bool *ret_v2, struct moat_error **reterr);

/* Whether the host is pure cgroup v2 (one cgroup2 tree at /sys/fs/cgroup). */
bool moat_cgroup_is_unified(const struct moat_cgroup *cg);

/* Whether a cgroup2 hierarchy (pure or hybrid) is among the container's. */
bool moat_cgroup_has_v2(const struct moat_cgroup *cg);

/* Open the container's directory in the cgroup2 hierarchy (the whole tree
 * on a unified host, /sys/fs/cgroup/unified on a hybrid one). -ENOENT when
 * no cgroup2 hierarchy is mounted. */
MOAT_NODISCARD int moat_cgroup_open_v2(struct moat_cgroup *cg, int *ret_fd, struct moat_error **reterr);

/* Make a controller of the cgroup2 hierarchy usable in the container's
 * directory: "+<controller>" in cgroup.subtree_control of every ancestor
 * from the hierarchy's root down to the container's parent (levels that
 * have it already are left alone). -ENOENT when the hierarchy's root does
 * not offer the controller (on hybrid hosts most are bound to v1). */
MOAT_NODISCARD int moat_cgroup_v2_enable(struct moat_cgroup *cg, const char *controller,
                                         struct moat_error **reterr);

/* Number of hierarchies and, for each, whether it is cgroup2 and its
 * directory's absolute path (for callers that walk them all). */
size_t moat_cgroup_n_hierarchies(const struct moat_cgroup *cg);
MOAT_NODISCARD int moat_cgroup_hierarchy_dir(const struct moat_cgroup *cg, size_t i, char **ret_path, bool *ret_v2);

/* The container's directory (absolute) in the hierarchy mounted by m, one
 * of the mounts moat_cgroup_create() found: -ENOENT for a deserialized
 * cgroup or a hierarchy it did not place the container in. Lets the init
 * bind its cgroup directories before it has been moved into them. */
MOAT_NODISCARD int moat_cgroup_dir_of_mount(const struct moat_cgroup *cg, const struct moat_cgroup_mount *m,
                                            char **ret_path);

/* Remove the directories this container created, deepest first; for each,
 * retry briefly on EBUSY while exiting processes leave. Directories that
 * existed before create are left alone. Missing directories are fine. */
MOAT_NODISCARD int moat_cgroup_destroy(struct moat_cgroup *cg, struct moat_error **reterr);

void moat_cgroup_free(struct moat_cgroup *cg);
static inline void moat_cgroup_freep(struct moat_cgroup **cg)
{
        moat_cgroup_free(*cg);
        *cg = NULL;
}
#define _cleanup_cgroup_ __attribute__((cleanup(moat_cgroup_freep)))
