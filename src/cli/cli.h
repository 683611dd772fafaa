/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

/*
 * moat's command table. Each verb lives in its own cmd-<verb>.c, parses
 * its own flags (docker's spellings) and returns 0 or -errno with *reterr
 * set; main prints the error once ("moat: ...") and exits 1. A verb that
 * has printed its own errors (rmi with several arguments) returns
 * CLI_FAILED_REPORTED: main exits 1 without printing. The verbs are
 * clients of the daemon (client.h), found with -H/--host, $MOAT_HOST or
 * unix:///run/moat.sock; only verify, mount and unmount (no Docker API)
 * run the image library on the store <root>/images, in the helper
 * moat-image (image-verbs.h) that moat execs for them.
 * A verb may set exit_code (its success status: the container's for run,
 * start -a, wait, exec) and error_exit (its failure status: docker's 125,
 * 126 and 127 for run and create).
 */

#include <jansson.h>
#include <stdio.h>
#include <time.h>

#include "base/compat.h"
#include "base/error.h"

struct moat_client;

struct moat_cli {
        const char *root;   /* --root, default /var/lib/moat */
        const char *host;   /* -H/--host; NULL: $MOAT_HOST or the default */
        bool debug;
        int exit_code;      /* on success; 0 unless the verb sets it */
        int error_exit;     /* on failure; 1 unless the verb sets it */
};

#define CLI_FAILED_REPORTED (-ECANCELED)

typedef int (*moat_cli_verb_fn)(struct moat_cli *cli, int argc, char **argv, struct moat_error **reterr);

/* A tar of the host path `path` (symlinks archived, never followed), its
 * top entry named `name`, written to out_fd by a thread (cmd-cp.c): cp's
 * upload and load's of an OCI layout directory. out_fd is closed at the
 * end; r and err say how it went. */
struct cli_pack {
        int out_fd;
        const char *path;
        const char *name;
        int r;
        struct moat_error *err;
};
void *cli_pack_thread(void *userdata);

int cmd_load(struct moat_cli *cli, int argc, char **argv, struct moat_error **reterr);
int cmd_images(struct moat_cli *cli, int argc, char **argv, struct moat_error **reterr);
int cmd_tag(struct moat_cli *cli, int argc, char **argv, struct moat_error **reterr);
int cmd_rmi(struct moat_cli *cli, int argc, char **argv, struct moat_error **reterr);
int cmd_save(struct moat_cli *cli, int argc, char **argv, struct moat_error **reterr);
int cmd_import(struct moat_cli *cli, int argc, char **argv, struct moat_error **reterr);
int cmd_history(struct moat_cli *cli, int argc, char **argv, struct moat_error **reterr);
int cmd_prune(struct moat_cli *cli, int argc, char **argv, struct moat_error **reterr);
int cmd_daemon(struct moat_cli *cli, int argc, char **argv, struct moat_error **reterr);
/* verify, mount and unmount: exec moat-image with the verb's argv. */
int cmd_image_helper(struct moat_cli *cli, int argc, char **argv, struct moat_error **reterr);

/* helper.c: exec the libexec helper `name` (beside moat in the build tree
 * when moat is in <builddir>/src/cli and the helper in
 * <builddir>/src/<build_subdir>; <prefix>/libexec/moat beside an installed
 * moat; else the configured libexecdir) with moat's --root and --debug,
 * then argv. Returns only on failure: -ENOENT naming every path looked
 * at when there is no such helper. verb names the caller in messages. */
MOAT_NODISCARD int cli_exec_helper(const struct moat_cli *cli, const char *verb, const char *name,
                                   const char *build_subdir, int argc, char **argv, struct moat_error **reterr);

/* common.c: run a verb with its argv (argv[0] the verb), print its error
 * once ("moat: " first unless plain_errors) and return the exit status. */
int cli_run_verb(struct moat_cli *cli, moat_cli_verb_fn fn, bool plain_errors, int argc, char **argv);

/* The container verbs: clients of the daemon. */
int cmd_run(struct moat_cli *cli, int argc, char **argv, struct moat_error **reterr);
int cmd_create(struct moat_cli *cli, int argc, char **argv, struct moat_error **reterr);
int cmd_start(struct moat_cli *cli, int argc, char **argv, struct moat_error **reterr);
int cmd_stop(struct moat_cli *cli, int argc, char **argv, struct moat_error **reterr);
int cmd_restart(struct moat_cli *cli, int argc, char **argv, struct moat_error **reterr);
int cmd_kill(struct moat_cli *cli, int argc, char **argv, struct moat_error **reterr);
int cmd_rm(struct moat_cli *cli, int argc, char **argv, struct moat_error **reterr);
int cmd_ps(struct moat_cli *cli, int argc, char **argv, struct moat_error **reterr);
int cmd_logs(struct moat_cli *cli, int argc, char **argv, struct moat_error **reterr);
int cmd_exec(struct moat_cli *cli, int argc, char **argv, struct moat_error **reterr);
int cmd_attach(struct moat_cli *cli, int argc, char **argv, struct moat_error **reterr);
int cmd_container_inspect(struct moat_cli *cli, int argc, char **argv, struct moat_error **reterr);
int cmd_image_inspect(struct moat_cli *cli, int argc, char **argv, struct moat_error **reterr);
int cmd_top(struct moat_cli *cli, int argc, char **argv, struct moat_error **reterr);
int cmd_diff(struct moat_cli *cli, int argc, char **argv, struct moat_error **reterr);
int cmd_export(struct moat_cli *cli, int argc, char **argv, struct moat_error **reterr);
int cmd_stats(struct moat_cli *cli, int argc, char **argv, struct moat_error **reterr);
int cmd_pause(struct moat_cli *cli, int argc, char **argv, struct moat_error **reterr);
int cmd_unpause(struct moat_cli *cli, int argc, char **argv, struct moat_error **reterr);
int cmd_update(struct moat_cli *cli, int argc, char **argv, struct moat_error **reterr);
int cmd_rename(struct moat_cli *cli, int argc, char **argv, struct moat_error **reterr);
int cmd_wait(struct moat_cli *cli, int argc, char **argv, struct moat_error **reterr);
int cmd_version(struct moat_cli *cli, int argc, char **argv, struct moat_error **reterr);
int cmd_info(struct moat_cli *cli, int argc, char **argv, struct moat_error **reterr);
int cmd_events(struct moat_cli *cli, int argc, char **argv, struct moat_error **reterr);
int cmd_system(struct moat_cli *cli, int argc, char **argv, struct moat_error **reterr);
int cmd_cp(struct moat_cli *cli, int argc, char **argv, struct moat_error **reterr);
int cmd_volume(struct moat_cli *cli, int argc, char **argv, struct moat_error **reterr);

/* POST /images/prune with filters (dangling=false added for all) and
 * docker's report: "Deleted Images:", untagged/deleted lines, the total. */
MOAT_NODISCARD int cli_image_prune_report(struct moat_client *client, json_t *filters, bool all,
                                          struct moat_error **reterr);

/* docker's JSON message stream (load, import): fed to
 * cli_jsonmessage_feed as a moat_client_data_fn; "stream" text printed,
 * "status" progress on a terminal, "error" kept as the verb's error,
 * which cli_jsonmessage_done returns (else r). */
struct cli_jsonmessage {
        char *buf;
        size_t len, size;
        bool tty, in_progress;
        struct moat_error *err;
        int r;
};
void cli_jsonmessage_init(struct cli_jsonmessage *m);
int cli_jsonmessage_feed(const char *data, size_t len, void *userdata);
MOAT_NODISCARD int cli_jsonmessage_done(struct cli_jsonmessage *m, int r, struct moat_error **reterr);
/* A moat_client_read_fn over the fd userdata points to. */
ssize_t cli_read_fd(char *buf, size_t len, void *userdata);
/* --platform "os[/arch[/variant]]" as the API's escaped JSON query value. */
MOAT_NODISCARD int cli_platform_query(const char *text, char **ret);

/* The rows of volume ls (and system df -v) for a /volumes list: docker's
 * fields, sorted by name. */
MOAT_NODISCARD int cli_volume_rows(json_t *volumes, json_t **ret);

/* help.c: whether argv (argv[0] the verb) asks for the --help of verb
 * name ("ps", "volume ls"), and printing it; -ENOENT for no such verb. */
bool cli_help_requested(const char *name, int argc, char **argv);
int cli_help_print(const char *name);

/* A client for -H/--host (or $MOAT_HOST, or the default socket). */
MOAT_NODISCARD int cli_client(const struct moat_cli *cli, struct moat_client **ret, struct moat_error **reterr);

/* docker's "2 weeks ago" for a Unix time. */
void cli_time_since_unix(time_t t, char *buf, size_t len);
/* docker's "Up 5 minutes" duration words (go-units HumanDuration). */
void cli_human_duration(double seconds, char *buf, size_t len);

/* A Go duration ("1m30s", "500ms", "2h") in nanoseconds; -EINVAL otherwise. */
MOAT_NODISCARD int cli_parse_duration(const char *text, int64_t *ret);
/* docker's --since/--until values: RFC 3339 times, Unix seconds or
 * durations before now ("10m"), as the API's "<seconds>.<nanoseconds>". */
MOAT_NODISCARD int cli_parse_timestamp(const char *text, char *buf, size_t len);

/* Per-item errors of a verb on several containers (docker's stop, rm,
 * kill, ...): each printed on stderr; the verb returns
 * CLI_FAILED_REPORTED when any failed. */
void cli_print_error(const struct moat_error *err);

/* Docker's human size: decimal units, three significant digits ("1.23MB"). */
void cli_human_size(int64_t size, char *buf, size_t len);

/* docker's stringid.TruncateID: the first 12 hex digits, no "sha256:". */
const char *cli_short_id(const char *digest, char buf[static 13]);

/* An RFC 3339 time ("2024-01-02T03:04:05.123Z", "...+01:00"); -EINVAL when it is not one. */
int cli_parse_time(const char *text, time_t *ret);

/* Docker's units.HumanSize (four significant digits, decimal units: "Total reclaimed space"). */
void cli_human_size4(uint64_t size, char *buf, size_t len);

/* JSON text of v as Go's encoder writes it (<, > and & escaped as \u003c...);
 * flags as for json_dumps. NULL on failure. */
char *cli_json_dumps(const json_t *v, size_t flags);

/*
 * docker's --format: "table" (the verb's default columns), "table TEMPLATE"
 * (a header line and columns aligned like docker's tabwriter), "json" or
 * "{{json .}}" (one JSON object a line), or TEMPLATE: literal text with
 * {{.Field}}, {{.A.B}} and {{json .Field}} placeholders (spaces inside the
 * braces allowed) and docker's \t and \n escapes. Values come from a JSON
 * object per item: strings as they are, arrays as "[a b]", objects as
 * "map[k:v]", null as "<nil>" (Go's template printing). Anything else
 * inside {{ }} is refused: this is not Go's template language.
 */
struct cli_format;
/* known: NULL-terminated field names the verb offers (checked at parse:
 * unknown ones are an error naming them), or NULL to check at render. */
MOAT_NODISCARD int cli_format_parse(const char *verb, const char *text, const char *const *known,
                                    struct cli_format **ret, struct moat_error **reterr);
void cli_format_free(struct cli_format *f);
static inline void cli_format_freep(struct cli_format **f)
{
        cli_format_free(*f);
        *f = NULL;
}
#define _cleanup_format_ __attribute__((cleanup(cli_format_freep)))
bool cli_format_is_table(const struct cli_format *f);
bool cli_format_is_json(const struct cli_format *f);
/* One item; *ret without a trailing newline. */
MOAT_NODISCARD int cli_format_render(const struct cli_format *f, const char *verb, json_t *item, char **ret,
                                     struct moat_error **reterr);
/* The table header: each placeholder replaced by headers[i] for known[i]
 * (the upper-cased field name when not listed). */
MOAT_NODISCARD int cli_format_header(const struct cli_format *f, const char *const *known,
                                     const char *const *headers, char **ret);

/* Lines of tab-separated cells printed like Go's tabwriter with docker's
 * settings (minimum width 10, padding 3): every cell but a line's last is
 * padded to its column's width. */
struct cli_table;
struct cli_table *cli_table_new(void);
MOAT_NODISCARD int cli_table_add(struct cli_table *t, const char *line);
void cli_table_print(struct cli_table *t, FILE *f);
void cli_table_free(struct cli_table *t);
static inline void cli_table_freep(struct cli_table **t)
{
        cli_table_free(*t);
        *t = NULL;
}
#define _cleanup_table_ __attribute__((cleanup(cli_table_freep)))

/* --filter K=V: appended to filters ({"K": ["V", ...]}), bounded. */
MOAT_NODISCARD int cli_filter_add(json_t *filters, const char *verb, const char *text, struct moat_error **reterr);
/* The options the prune verbs share: -a/--all, -f/--force, --filter (into
 * filters), and with volumes non-NULL system prune's --volumes; no
 * arguments after them ("moat <verb>" in the message). */
struct cli_prune_opts {
        bool all, force, volumes;
};
MOAT_NODISCARD int cli_prune_opts_parse(const char *verb, int argc, char **argv, bool with_volumes, json_t *filters,
                                        struct cli_prune_opts *ret, struct moat_error **reterr);
/* "filters=<escaped JSON>" for a query string, "" when there is none. */
MOAT_NODISCARD int cli_filters_query(json_t *filters, char **ret);
/* rows (objects with the fields) through --format: NULL or "table" is
 * default_table; a table gets its header line and docker's alignment. */
MOAT_NODISCARD int cli_print_list(const char *verb, const char *format, const char *default_table,
                                  const char *const *fields, const char *const *headers, json_t *rows,
                                  struct moat_error **reterr);

/* Ask on the terminal, docker's way ("... [y/N] "); true for y or yes. */
bool cli_confirm(const char *question);

/* Reject flags a verb does not know; returns -EINVAL with a message. */
MOAT_NODISCARD int cli_bad_option(const char *verb, const char *arg, struct moat_error **reterr);

/* ---- the container verbs' shared parts ---- */

/* docker's container flags (create, run): the create body's Config and
 * HostConfig, and what the client itself does with them. */
struct cli_container_opts {
        json_t *config;
        json_t *host_config;
        const char *image;
        const char *name;
        const char *platform;
        const char *detach_keys;    /* run's --detach-keys; NULL: docker's default */
        bool detach, interactive, tty, rm, sig_proxy;
};
/* argv[0] is the verb; flags stop at IMAGE, what follows is the command. */
MOAT_NODISCARD int cli_container_opts_parse(const char *verb, bool run, int argc, char **argv,
                                            struct cli_container_opts *o, struct moat_error **reterr);
void cli_container_opts_clear(struct cli_container_opts *o);
/* POST /containers/create; prints the daemon's warnings on stderr. With
 * start, asks moat's daemon to start it too (`start=1`, docs/api.md);
 * *ret_started says whether it did (another daemon ignores the ask). */
MOAT_NODISCARD int cli_container_create(struct moat_client *client, const struct cli_container_opts *o, bool start,
                                        char **ret_id, bool *ret_started, struct moat_error **reterr);
/* The terminal's rows and columns (0 when fd is not one). */
void cli_console_size(int fd, unsigned *rows, unsigned *cols);

/*
 * An attached session (cmd-run.c): run, start -a, attach and exec share
 * it. The hijacked stream is pumped between our stdio and the container
 * (demultiplexed without a tty; stdin half-closed at its EOF), the local
 * terminal is raw while a tty is attached, resizes follow SIGWINCH, and
 * with sig_proxy the signals we get are sent to the container. For run
 * and start -a, the wait request (condition) is made before the start,
 * as docker does, and its StatusCode is *ret_status.
 */
struct cli_session {
        const char *id;             /* container (or exec instance) ID */
        bool exec;                  /* an exec instance: /exec/{id}/start */
        bool tty, in, out, err;
        bool sig_proxy;
        bool start;                 /* POST /containers/{id}/start after attaching */
        const char *wait_condition; /* NULL: no wait request */
        bool logs;                  /* attach with logs=1 (start -a of a stopped container) */
};
MOAT_NODISCARD int cli_session_run(struct moat_client *client, const struct cli_session *s, int *ret_status,
                                   struct moat_error **reterr);
/* cli_session_run with docker's --detach-keys (NULL: ctrl-p,ctrl-q);
 * *ret_detached (may be NULL) says the user detached. An invalid spec is
 * the daemon's to refuse. */
MOAT_NODISCARD int cli_session_run_keys(struct moat_client *client, const struct cli_session *s,
                                        const char *detach_keys, int *ret_status, bool *ret_detached,
                                        struct moat_error **reterr);
/* docker's toStatusError: 127 for a command not found, 126 for one that
 * cannot be run, else 125. */
int cli_run_error_status(const struct moat_error *err);
/* Resolve a name or ID prefix to the container's inspect JSON. */
MOAT_NODISCARD int cli_container_inspect(struct moat_client *client, const char *name, json_t **ret,
                                         struct moat_error **reterr);
/* For the verbs that take several containers: call fn for each, print
 * what it prints on success (the argument, as docker does) and each error
 * on stderr; CLI_FAILED_REPORTED when any failed. */
typedef int (*cli_each_fn)(struct moat_client *client, const char *name, void *userdata, struct moat_error **reterr);
MOAT_NODISCARD int cli_for_each(struct moat_cli *cli, int argc, char **argv, int first, cli_each_fn fn,
                                void *userdata, bool echo, struct moat_error **reterr);
/* stop and restart: [-t SECONDS] [-s SIGNAL] CONTAINER... */
MOAT_NODISCARD int cli_stop_like(struct moat_cli *cli, const char *verb, int argc, char **argv,
                                 struct moat_error **reterr);
