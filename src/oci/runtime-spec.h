/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

/*
 * The OCI runtime-spec configuration (config.json, versions 1.0 to 1.3) as C
 * types, and its parser.
 *
 * The parser reads the whole document, checks every field it knows against
 * the schema's types and the spec's rules, and reports the first problem
 * with its JSON path ("linux.namespaces[2].type: unknown namespace \"foo\"").
 * Unknown fields are ignored, as the spec requires. Sections whose typed
 * form belongs to later work (linux.resources, linux.seccomp) are
 * type-checked here and kept as JSON for their consumers.
 *
 * Ownership: everything hangs off struct oci_config and is released by
 * oci_config_free(). Strings are NUL-terminated and never NULL unless the
 * field is optional and absent. String arrays are NULL-terminated.
 */

#include "base/compat.h"
#include "base/error.h"

#include <jansson.h>

/* Upper bound on config.json size: a generous seccomp profile is ~100 KiB. */
#define OCI_CONFIG_MAX_SIZE (16u * 1024u * 1024u)

enum oci_namespace_type {
        OCI_NS_PID,
        OCI_NS_NETWORK,
        OCI_NS_MOUNT,
        OCI_NS_IPC,
        OCI_NS_UTS,
        OCI_NS_USER,
        OCI_NS_CGROUP,
        OCI_NS_TIME,
        OCI_NS__MAX,
        OCI_NS__INVALID = -EINVAL,
};

/* "pid", "network", ... and back; NULL / OCI_NS__INVALID when unknown. */
const char *oci_namespace_type_to_string(enum oci_namespace_type t);
enum oci_namespace_type oci_namespace_type_from_string(const char *s);
/* CLONE_NEW* flag of a namespace type. */
unsigned long oci_namespace_type_clone_flag(enum oci_namespace_type t);

enum oci_hook_kind {
        OCI_HOOK_PRESTART,
        OCI_HOOK_CREATE_RUNTIME,
        OCI_HOOK_CREATE_CONTAINER,
        OCI_HOOK_START_CONTAINER,
        OCI_HOOK_POSTSTART,
        OCI_HOOK_POSTSTOP,
        OCI_HOOK__MAX,
};
/* The JSON key: "prestart", "createRuntime", ... */
const char *oci_hook_kind_to_string(enum oci_hook_kind k);

struct oci_id_mapping {
        uint32_t container_id;
        uint32_t host_id;
        uint32_t size;
};

struct oci_user {
        uint32_t uid;
        uint32_t gid;
        bool has_umask;
        uint32_t umask;
        uint32_t *additional_gids;
        size_t n_additional_gids;
        char *username; /* optional (Windows) */
};

struct oci_rlimit {
        char *type;    /* "RLIMIT_NOFILE" */
        int resource;  /* RLIMIT_NOFILE */
        uint64_t soft;
        uint64_t hard;
};

/* Capability sets as bitmasks of CAP_* numbers. A name unknown to moat is a
 * parse error; whether the running kernel has a capability is the
 * runtime's business. */
struct oci_capabilities {
        uint64_t bounding;
        uint64_t effective;
        uint64_t inheritable;
        uint64_t permitted;
        uint64_t ambient;
};

struct oci_process {
        bool terminal;
        bool has_console_size;
        uint32_t console_height;
        uint32_t console_width;
        struct oci_user user;
        char **args;          /* at least one element */
        char *command_line;   /* optional (Windows) */
        char **env;           /* may be NULL */
        char *cwd;            /* absolute */
        bool has_capabilities;
        struct oci_capabilities capabilities;
        struct oci_rlimit *rlimits;
        size_t n_rlimits;
        bool no_new_privileges;
        bool has_oom_score_adj;
        int oom_score_adj;
        char *apparmor_profile; /* optional */
        char *selinux_label;    /* optional */
        json_t *scheduler;      /* optional, type-checked, borrowed from the document */
        json_t *io_priority;    /* optional, type-checked */
        json_t *exec_cpu_affinity; /* optional, type-checked */
};

struct oci_root {
        char *path;
        bool readonly;
};

struct oci_mount {
        char *destination;  /* as given; relative means relative to "/" */
        char *type;         /* optional: NULL for a bind mount without type */
        char *source;       /* optional */
        char **options;     /* may be NULL */
        struct oci_id_mapping *uid_mappings;
        size_t n_uid_mappings;
        struct oci_id_mapping *gid_mappings;
        size_t n_gid_mappings;
};

struct oci_hook {
        char *path;     /* absolute */
        char **args;    /* may be NULL */
        char **env;     /* may be NULL */
        bool has_timeout;
        int timeout;    /* seconds, > 0 */
};

struct oci_hook_list {
        struct oci_hook *hooks;
        size_t n_hooks;
};

struct oci_namespace {
        enum oci_namespace_type type;
        char *path; /* optional: join this namespace instead of creating one */
};

struct oci_device {
        char *path;     /* absolute, inside the container */
        char type;      /* 'c', 'b', 'u' or 'p' */
        bool has_major_minor;
        int64_t major;
        int64_t minor;
        bool has_file_mode;
        uint32_t file_mode;
        bool has_uid;
        uint32_t uid;
        bool has_gid;
        uint32_t gid;
};

enum oci_time_clock {
        OCI_CLOCK_MONOTONIC,
        OCI_CLOCK_BOOTTIME,
};

struct oci_time_offset {
        enum oci_time_clock clock;
        int64_t secs;
        uint32_t nanosecs;
};

struct oci_key_value {
        char *key;
        char *value;
};

struct oci_linux {
        struct oci_namespace *namespaces;
        size_t n_namespaces;
        struct oci_id_mapping *uid_mappings;
        size_t n_uid_mappings;
        struct oci_id_mapping *gid_mappings;
        size_t n_gid_mappings;
        struct oci_time_offset *time_offsets;
        size_t n_time_offsets;
        struct oci_device *devices;
        size_t n_devices;
        char *cgroups_path;        /* optional */
        char *rootfs_propagation;  /* optional: "private", "shared", "slave", "unbindable" (r-prefixed forms accepted) */
        char **masked_paths;       /* may be NULL */
        char **readonly_paths;     /* may be NULL */
        char *mount_label;         /* optional */
        struct oci_key_value *sysctl;
        size_t n_sysctl;
        bool has_personality;
        char *personality_domain;  /* "LINUX" or "LINUX32" */
        json_t *resources;         /* optional, type-checked; the cgroups code parses it */
        json_t *seccomp;           /* optional, type-checked; the seccomp code parses it */
        json_t *intel_rdt;         /* optional */
        json_t *net_devices;       /* optional */
        json_t *memory_policy;     /* optional */
};

struct oci_config {
        char *oci_version;
        struct oci_root root;       /* root.path is required on Linux */
        bool has_process;
        struct oci_process process;
        char *hostname;             /* optional */
        char *domainname;           /* optional */
        struct oci_mount *mounts;
        size_t n_mounts;
        struct oci_hook_list hooks[OCI_HOOK__MAX];
        struct oci_key_value *annotations;
        size_t n_annotations;
        bool has_linux;
        struct oci_linux linux_;
        json_t *json;               /* the whole document, owned */
};

/* Parse and validate a config.json held in memory. On failure returns
 * -EINVAL (or -ENOMEM) and sets *reterr to a message naming the JSON path. */
MOAT_NODISCARD int oci_config_parse(const char *buf, size_t len, struct oci_config **ret, struct moat_error **reterr);

/* Open dir_fd/path (bounded by OCI_CONFIG_MAX_SIZE) and parse it. */
MOAT_NODISCARD int oci_config_load_at(int dir_fd, const char *path, struct oci_config **ret, struct moat_error **reterr);

void oci_config_free(struct oci_config *c);
static inline void oci_config_freep(struct oci_config **c)
{
        oci_config_free(*c);
        *c = NULL;
}
#define _cleanup_oci_config_ __attribute__((cleanup(oci_config_freep)))

/* Returns the namespace entry of the given type, or NULL. */
const struct oci_namespace *oci_config_find_namespace(const struct oci_config *c, enum oci_namespace_type t);

/* Annotation lookup; NULL when absent. */
const char *oci_config_annotation(const struct oci_config *c, const char *key);

/* A schema "uint64" value from the document (for the sections kept as
 * json_t). jansson holds integers only up to INT64_MAX, so the parser turns
 * larger literals (e.g. 18446744073709551615, RLIM_INFINITY) into reals;
 * this reads both forms. Returns 0, -ERANGE (negative or too large) or
 * -EINVAL (not an integer). Values between INT64_MAX and 2^64-1 (exclusive)
 * may come back rounded; 2^64-1 itself is exact. */
MOAT_NODISCARD int oci_json_uint64(const json_t *v, uint64_t *ret);
