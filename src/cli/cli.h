/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

/*
 * moat's command table. Each verb lives in its own cmd-<verb>.c, parses
 * its own flags (docker's spellings) and returns 0 or -errno with *reterr
 * set; main prints the error once ("moat: ...") and exits 1. A verb that
 * has printed its own errors (rmi with several arguments) returns
 * CLI_FAILED_REPORTED: main exits 1 without printing. Until the
 * daemon exists the image verbs run the image library in-process on the
 * store <root>/images.
 */

#include <jansson.h>
#include <stdio.h>
#include <time.h>

#include "base/compat.h"
#include "base/error.h"
#include "image/images.h"
#include "image/store.h"

struct moat_cli {
        const char *root;   /* --root, default /var/lib/moat */
        bool debug;
};

#define CLI_FAILED_REPORTED (-ECANCELED)

typedef int (*moat_cli_verb_fn)(struct moat_cli *cli, int argc, char **argv, struct moat_error **reterr);

int cmd_load(struct moat_cli *cli, int argc, char **argv, struct moat_error **reterr);
int cmd_images(struct moat_cli *cli, int argc, char **argv, struct moat_error **reterr);
int cmd_tag(struct moat_cli *cli, int argc, char **argv, struct moat_error **reterr);
int cmd_rmi(struct moat_cli *cli, int argc, char **argv, struct moat_error **reterr);
int cmd_inspect(struct moat_cli *cli, int argc, char **argv, struct moat_error **reterr);
int cmd_save(struct moat_cli *cli, int argc, char **argv, struct moat_error **reterr);
int cmd_import(struct moat_cli *cli, int argc, char **argv, struct moat_error **reterr);
int cmd_history(struct moat_cli *cli, int argc, char **argv, struct moat_error **reterr);
int cmd_verify(struct moat_cli *cli, int argc, char **argv, struct moat_error **reterr);
int cmd_prune(struct moat_cli *cli, int argc, char **argv, struct moat_error **reterr);
int cmd_mount(struct moat_cli *cli, int argc, char **argv, struct moat_error **reterr);
int cmd_unmount(struct moat_cli *cli, int argc, char **argv, struct moat_error **reterr);
int cmd_daemon(struct moat_cli *cli, int argc, char **argv, struct moat_error **reterr);

/* Open <root>/images, creating root and store when create is set. */
MOAT_NODISCARD int cli_open_store(const struct moat_cli *cli, bool create, struct moat_store **ret,
                                  struct moat_error **reterr);

/* The familiar form of reference text ("localhost/x:1", "busybox:latest"). */
MOAT_NODISCARD int cli_familiar(const char *reference, char **ret, struct moat_error **reterr);

/* Split a normalised reference into docker's REPOSITORY and TAG columns
 * ("<none>" when there is no tag). */
MOAT_NODISCARD int cli_repo_tag(const char *reference, char **ret_repo, char **ret_tag, struct moat_error **reterr);

/* Sum of the manifest's layer sizes. */
int64_t cli_image_size(const struct moat_image *img);

/* Ask no question: true unless stdin and stdout are a terminal. */
bool cli_no_terminal(void);

/* Docker's human size: decimal units, three significant digits ("1.23MB"). */
void cli_human_size(int64_t size, char *buf, size_t len);

/* docker's stringid.TruncateID: the first 12 hex digits, no "sha256:". */
const char *cli_short_id(const char *digest, char buf[static 13]);

/* An RFC 3339 time ("2024-01-02T03:04:05.123Z", "...+01:00"); -EINVAL when it is not one. */
int cli_parse_time(const char *text, time_t *ret);

/* docker's "2 weeks ago" (go-units HumanDuration + " ago") for an RFC 3339
 * time; "N/A" when absent or unparsable. */
void cli_time_since(const char *rfc3339, char *buf, size_t len);

/* docker's CreatedAt: "2024-01-02 03:04:05 +0000 UTC" in local time; "" when unknown. */
void cli_time_local(const char *rfc3339, char *buf, size_t len);

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
/* True for "table" alone: the verb prints its default columns. */
bool cli_format_is_default_table(const struct cli_format *f);
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

/* Ask on the terminal, docker's way ("... [y/N] "); true for y or yes. */
bool cli_confirm(const char *question);

/* Reject flags a verb does not know; returns -EINVAL with a message. */
MOAT_NODISCARD int cli_bad_option(const char *verb, const char *arg, struct moat_error **reterr);

/* Where image_id (text moat_images_lookup takes) is mounted by `moat
 * mount`: 1 and *ret_path, or 0. */
MOAT_NODISCARD int cli_image_mount_point(struct moat_store *s, const char *image_id, char **ret_path,
                                         struct moat_error **reterr);
/* moat_images_use_fn for rmi and prune (userdata: the store): an image
 * mounted by `moat mount` is in use. */
int cli_image_in_use(const char *image_id, char **ret_user, void *userdata);
