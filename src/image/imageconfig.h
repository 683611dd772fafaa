/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

/*
 * From an image config (oci/image-spec.h) and the overrides given at run
 * time to what a container runs with, by docker's rules:
 *
 *  - args: Entrypoint + Cmd. An entrypoint override that is not empty
 *    drops the image's Cmd (only the override's cmd follows it); an empty
 *    entrypoint override (docker's --entrypoint "") drops the image's
 *    Entrypoint but keeps its Cmd unless a cmd is given; a non-empty cmd
 *    override replaces the image's Cmd. Nothing left: -EINVAL,
 *    "no command specified".
 *  - env: PATH (default below), HOSTNAME (when a hostname is given),
 *    TERM=xterm (with a terminal), then the image's Env, then the
 *    override's env replacing same-name entries in place ("NAME" alone
 *    removes NAME, as docker's ReplaceOrAppendEnvValues); HOME from the
 *    user's passwd entry ("/" without one) when still unset, as runc does.
 *  - cwd: the override, else WorkingDir, else "/"; cleaned and required
 *    absolute.
 *  - user: "name", "uid", "name:group", "uid:gid", "name:gid", "uid:group"
 *    resolved in the image's own /etc/passwd and /etc/group (read inside
 *    the root, never the host's). Numeric ids absent from the files are
 *    allowed (gid then 0); unknown names are errors. Without an explicit
 *    group, the groups of /etc/group that list the user become the
 *    additional gids (runc's GetExecUser, which docker uses).
 *  - the rest of the image config, for the engine: exposed ports, volumes,
 *    stop signal (text and number), labels, healthcheck.
 */

#include "base/compat.h"
#include "base/error.h"
#include "oci/image-spec.h"

#include <jansson.h>

#define MOAT_IMAGE_DEFAULT_PATH "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
/* /etc/passwd and /etc/group larger than this are refused. */
#define MOAT_IMAGE_ID_FILE_MAX (1024u * 1024u)

/* Everything optional: NULL / false means "not given". */
struct moat_image_overrides {
        char *const *entrypoint;  /* NULL-terminated; given when has_entrypoint */
        bool has_entrypoint;      /* true with an empty array: docker's --entrypoint "" */
        char *const *cmd;         /* NULL-terminated; an empty array means not given (docker) */
        char *const *env;         /* "NAME=value" to set, "NAME" to remove */
        const char *working_dir;
        const char *user;
        const char *hostname;     /* adds HOSTNAME= */
        bool terminal;            /* adds TERM=xterm */
};

struct moat_image_runtime_config {
        char **args;              /* NULL-terminated, at least one */
        char **env;               /* NULL-terminated */
        char *cwd;
        uint32_t uid;
        uint32_t gid;
        uint32_t *additional_gids;
        size_t n_additional_gids;
        char *user_name;          /* from passwd; NULL when the uid has no entry */
        char *home;               /* from passwd; "/" without an entry */

        char **exposed_ports;     /* NULL-terminated: "80/tcp" */
        char **volumes;           /* NULL-terminated */
        char *stop_signal;        /* as written in the image; NULL when absent */
        int stop_signal_number;   /* SIGTERM when absent; 0 when not recognised */
        struct oci_key_value *labels;
        size_t n_labels;
        json_t *healthcheck;      /* a reference of its own; NULL when absent */
};

/* image may be NULL (no config section) and overrides may be NULL. root_fd
 * is the container's root filesystem; it is only read (etc/passwd and
 * etc/group, when a user needs resolving or HOME needs a value). Errors:
 * -EINVAL (no command, relative cwd, malformed user or env), -ENOENT
 * (unknown user or group name; the message names it and the file), -EFBIG
 * (passwd/group over 1 MiB), other -errno from reading the files. */
MOAT_NODISCARD int moat_image_runtime_config_make(const struct oci_image_config *image, int root_fd,
                                                  const struct moat_image_overrides *overrides,
                                                  struct moat_image_runtime_config **ret,
                                                  struct moat_error **reterr);

void moat_image_runtime_config_free(struct moat_image_runtime_config *c);
static inline void moat_image_runtime_config_freep(struct moat_image_runtime_config **c)
{
        moat_image_runtime_config_free(*c);
        *c = NULL;
}
#define _cleanup_image_runtime_config_ __attribute__((cleanup(moat_image_runtime_config_freep)))

/* Write the process part into an OCI runtime config document (the object
 * holding "process", e.g. `moat-runtime spec --hardened` output): sets
 * process.args, process.env, process.cwd and process.user.{uid,gid,
 * additionalGids}, creating "process" and "process.user" when missing and
 * keeping every other member (capabilities, rlimits, umask...). */
MOAT_NODISCARD int moat_image_runtime_config_to_spec(const struct moat_image_runtime_config *c, json_t *spec,
                                                     struct moat_error **reterr);

/* "SIGTERM", "term", "15", "RTMIN+3" -> number; -EINVAL when not a signal. */
MOAT_NODISCARD int moat_signal_from_string(const char *s, int *ret);
