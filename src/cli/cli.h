/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

/*
 * moat's command table. Each verb lives in its own cmd-<verb>.c, parses
 * its own flags (docker's spellings) and returns 0 or -errno with *reterr
 * set; main prints the error once ("moat: ...") and exits 1. Until the
 * daemon exists the image verbs run the image library in-process on the
 * store <root>/images.
 */

#include "base/compat.h"
#include "base/error.h"
#include "image/images.h"
#include "image/store.h"

struct moat_cli {
        const char *root;   /* --root, default /var/lib/moat */
        bool debug;
};

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

/* Docker's human size: decimal units, three significant digits ("1.23MB"). */
void cli_human_size(int64_t size, char *buf, size_t len);

/* Reject flags a verb does not know; returns -EINVAL with a message. */
MOAT_NODISCARD int cli_bad_option(const char *verb, const char *arg, struct moat_error **reterr);
