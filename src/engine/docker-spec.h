/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

/*
 * `POST /containers/create` bodies (what the docker CLI 28 and
 * python3-docker send: Config fields at the top level, HostConfig,
 * NetworkingConfig) to an OCI runtime config.json for moat-runtime.
 *
 * Two steps, so the engine can resolve the image between them:
 *
 *  1. moat_docker_create_parse(): checks every field docker knows (types,
 *     bounds, moby's own rules and messages, e.g. "HostConfig.Memory:
 *     Minimum memory limit allowed is 6MB") and gives back the Config and
 *     HostConfig with docker's defaults filled in (what `docker inspect`
 *     shows) plus docker's Warnings. Unknown fields are ignored, as docker
 *     ignores them. No I/O.
 *
 *  2. moat_docker_create_spec(): from moat's hardened spec
 *     (moat_spec_hardened()), the image config, the parsed body and what
 *     the engine knows (the context below), the config.json, the Config
 *     merged with the image (inspect's Config), inspect's Mounts[] and the
 *     final Warnings. I/O: stat() of bind sources and added devices, the
 *     host's /dev for privileged containers, a seccomp profile file named
 *     by SecurityOpt, and the image's /etc/passwd and /etc/group through
 *     root_fd; the engine's own work (volumes, other containers, groups)
 *     goes through the callbacks.
 *
 * Defaults that differ from docker's, on purpose (moat is hardened):
 * noNewPrivileges is on unless SecurityOpt says no-new-privileges=false;
 * the pids limit is 2048 unless PidsLimit is given; 11 capabilities
 * (Podman's) instead of docker's 14; the network is `none` until bridge
 * networking exists ("default" and "" mean none, "bridge" is refused).
 */

#include "base/compat.h"
#include "base/error.h"
#include "oci/image-spec.h"

#include <jansson.h>

/* Bounds on what a client controls. */
#define MOAT_DOCKER_ARRAY_MAX 4096u       /* elements of any array or map */
#define MOAT_DOCKER_STRING_MAX 65536u     /* bytes of any string */
#define MOAT_DOCKER_SECCOMP_MAX (1024u * 1024u) /* a seccomp profile, inline or in a file */

/* What the host can do (zero-initialised: everything). Drives docker's
 * "Your kernel does not support ..." warnings. */
struct moat_docker_host {
        unsigned ncpus;             /* online CPUs; 0: sysconf(_SC_NPROCESSORS_ONLN) */
        bool no_swap_limit;         /* memory+swap limits unavailable */
        bool no_memory_swappiness;  /* cgroup v2 */
        bool no_oom_kill_disable;   /* cgroup v2 */
        bool no_blkio_weight_device; /* no blkio/io weight per device */
};

struct moat_docker_create {
        /* Normalised documents, each owned (inspect's form). */
        json_t *config;             /* Config fields, defaults filled, not merged with the image */
        json_t *host_config;        /* HostConfig, defaults filled */
        json_t *networking_config;  /* NetworkingConfig as given ({"EndpointsConfig":{}} when absent) */
        json_t *warnings;           /* array of strings */

        /* Shortcuts into the documents (borrowed, valid while they are). */
        const char *image;          /* Config.Image, never empty */
        bool tty, open_stdin, stdin_once, attach_stdin, attach_stdout, attach_stderr;
        bool auto_remove;
        const char *restart_policy; /* "no", "always", "unless-stopped", "on-failure" */
        int64_t restart_max_retries;
        bool has_stop_timeout;
        int64_t stop_timeout;       /* seconds */
        const char *network_mode;   /* "none", "host" or "container:<ref>" */
        const char *log_driver;     /* "json-file", "local" or "none" */
};

/* body is the request's JSON object. host may be NULL. Errors: -EINVAL
 * with the field's JSON path and docker's message; -E2BIG for bounds;
 * -EOPNOTSUPP for what moat does not do yet (bridge networking, published
 * ports, AppArmor/SELinux profiles, ...). */
MOAT_NODISCARD int moat_docker_create_parse(const json_t *body, const struct moat_docker_host *host,
                                            struct moat_docker_create **ret, struct moat_error **reterr);
void moat_docker_create_free(struct moat_docker_create *c);
static inline void moat_docker_create_freep(struct moat_docker_create **c)
{
        moat_docker_create_free(*c);
        *c = NULL;
}
#define _cleanup_docker_create_ __attribute__((cleanup(moat_docker_create_freep)))

/* A volume the engine must provide (a named one from Binds or Mounts, or
 * an anonymous one from Config.Volumes, the image's Volumes or a Binds
 * entry without a source). */
struct moat_docker_volume_request {
        const char *name;           /* NULL: anonymous, the engine names and creates it */
        const char *destination;    /* absolute, inside the container */
        const char *driver;         /* VolumeOptions.DriverConfig.Name; NULL: local */
        const json_t *driver_options; /* VolumeOptions.DriverConfig.Options; may be NULL */
        const json_t *labels;       /* VolumeOptions.Labels; may be NULL */
        const char *subpath;        /* VolumeOptions.Subpath; NULL when absent */
        bool nocopy;                /* do not copy the image's content at destination into a new volume */
        bool read_only;
};

struct moat_docker_spec_context {
        const char *id;             /* the container id (64 hex); hostname default and cgroupsPath */
        const struct oci_image_config *image; /* may be NULL */
        int root_fd;                /* the container's root filesystem: users and groups */
        const char *root_path;      /* root.path; NULL: "rootfs" (relative to the bundle) */

        /* Host files the engine writes, bind-mounted at /etc/hostname,
         * /etc/hosts and /etc/resolv.conf; NULL: not mounted. */
        const char *hostname_path;
        const char *hosts_path;
        const char *resolv_conf_path;

        /* The host directory the engine mounts a tmpfs on for IpcMode
         * shareable, bound at /dev/shm; NULL: shareable is private. */
        const char *shm_path;
        const char *init_path;      /* host path of docker-init (tini); NULL: Init=true is refused */
        const char *host_dev_dir;   /* host devices of privileged containers; NULL: "/dev" */
        const char *host_hostname;  /* NetworkMode host without Hostname; NULL: gethostname() */
        uint64_t all_capabilities;  /* what privileged and "ALL" grant; 0: every one the kernel has */

        /* Resolve a volume to a host directory (creating it when needed);
         * *ret_name: the volume's name (allocated; the generated one for
         * anonymous volumes). NULL: volumes are refused. */
        int (*volume)(void *userdata, const struct moat_docker_volume_request *req, char **ret_host_path,
                      char **ret_name, struct moat_error **reterr);
        /* The pid of another container's init and its full id, for
         * container:<ref> modes. NULL: those modes are refused. */
        int (*container_pid)(void *userdata, const char *ref, pid_t *ret_pid, char **ret_id,
                             struct moat_error **reterr);
        /* Another container's host name (its Hostname, else its short
         * id), for UTSMode container:<ref>. NULL: the container's own. */
        int (*container_hostname)(void *userdata, const char *ref, char *buf, size_t size, struct moat_error **reterr);
        /* The host directory of another container's shareable /dev/shm
         * (by full id), for IpcMode container:<ref>; an error naming the
         * container when it has none. NULL: those modes are refused. */
        int (*container_shm)(void *userdata, const char *id, char **ret_path, struct moat_error **reterr);
        /* Another container's Mounts (inspect's form) and its full id, for
         * HostConfig.VolumesFrom. NULL: VolumesFrom is refused. */
        int (*container_mounts)(void *userdata, const char *ref, json_t **ret_mounts, char **ret_id,
                                struct moat_error **reterr);
        /* A group name of HostConfig.GroupAdd in the image's /etc/group.
         * NULL: only numeric groups are accepted. */
        int (*group)(void *userdata, int root_fd, const char *name, uint32_t *ret_gid, struct moat_error **reterr);
        /* Create a missing Binds source directory (docker does, for Binds
         * only). NULL: a missing source is an error. */
        int (*make_bind_source)(void *userdata, const char *path, struct moat_error **reterr);
        void *userdata;

        /* The create-time pass: only the volumes (and Mounts) are wanted,
         * so other containers' namespaces are not looked up (they need
         * not run before start). */
        bool volumes_only;
};

struct moat_docker_spec {
        json_t *spec;               /* the OCI runtime config.json; its linux.seccomp (moat's default
                                     * profile) may be shared with other specs and other threads:
                                     * replace or remove it, never modify it in place */
        json_t *config;             /* inspect's Config: merged with the image, Hostname filled */
        json_t *host_config;        /* inspect's HostConfig */
        json_t *mounts;             /* inspect's Mounts[] (Type, Name, Source, Destination, Driver, Mode, RW, Propagation) */
        json_t *warnings;           /* docker's Warnings (the parse's and this step's) */
        char *hostname;
        char *text;                 /* spec dumped: config.json as is; NULL in the volumes-only pass */
};

/* Build the runtime config. Errors as moat_docker_create_parse(), plus
 * what the callbacks, the image (no command, unknown user) and the host
 * (missing bind source, device) report. */
MOAT_NODISCARD int moat_docker_create_spec(const struct moat_docker_create *c,
                                           const struct moat_docker_spec_context *ctx, struct moat_docker_spec **ret,
                                           struct moat_error **reterr);
void moat_docker_spec_free(struct moat_docker_spec *s);
static inline void moat_docker_spec_freep(struct moat_docker_spec **s)
{
        moat_docker_spec_free(*s);
        *s = NULL;
}
#define _cleanup_docker_spec_ __attribute__((cleanup(moat_docker_spec_freep)))

/* The capability list after docker's rules (TweakCapabilities): privileged
 * -> all; CapAdd containing ALL -> all but CapDrop; CapDrop containing ALL
 * -> CapAdd; else default - CapDrop + CapAdd. Names with or without CAP_,
 * any case. base and all are masks (bit N = capability N). add/drop are
 * JSON arrays of strings (may be NULL); path names them in errors. */
MOAT_NODISCARD int moat_docker_capabilities(uint64_t base, uint64_t all, const json_t *add, const json_t *drop,
                                            bool privileged, uint64_t *ret, struct moat_error **reterr);

/* What "all capabilities" means (privileged containers and execs): those
 * the kernel knows that the daemon holds in its bounding and permitted
 * sets, as moby grants its own bounding set. Read at the first call. */
uint64_t moat_docker_all_capabilities(void);
/* A capability mask as OCI names ("CAP_CHOWN", ...); NULL on no memory. */
json_t *moat_docker_capabilities_json(uint64_t mask);
