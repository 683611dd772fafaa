/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

/*
 * moat-image (image-main.c): the verbs that run the image library on the
 * store <root>/images rather than asking the daemon (verify, mount,
 * unmount: no Docker API), in a helper moat execs (helper.c) so that moat
 * itself does not link the library. Only moat-image includes this.
 */

#include "cli/cli.h"
#include "image/images.h"
#include "image/store.h"
#include "oci/image-spec.h"

int cmd_verify(struct moat_cli *cli, int argc, char **argv, struct moat_error **reterr);
int cmd_mount(struct moat_cli *cli, int argc, char **argv, struct moat_error **reterr);
int cmd_unmount(struct moat_cli *cli, int argc, char **argv, struct moat_error **reterr);

/* Open <root>/images, creating root and store when create is set. */
MOAT_NODISCARD int cli_open_store(const struct moat_cli *cli, bool create, struct moat_store **ret,
                                  struct moat_error **reterr);

/* Where image_id (text moat_images_lookup takes) is mounted by `moat
 * mount`: 1 and *ret_path, or 0. */
MOAT_NODISCARD int cli_image_mount_point(struct moat_store *s, const char *image_id, char **ret_path,
                                         struct moat_error **reterr);

/* --platform "os/arch[/variant]" for the verbs that pick an image of an
 * index: parsed into *ret (cli_platform_clear frees it); NULL text leaves
 * *ret empty (the lookups then take their default, linux/amd64). */
MOAT_NODISCARD int cli_platform(const char *text, struct oci_platform *ret, struct moat_error **reterr);
void cli_platform_clear(struct oci_platform *p);
/* The image resolved for a --platform must be of that platform (an image
 * that is not an index is what it is): docker's error otherwise. */
MOAT_NODISCARD int cli_platform_check(const struct moat_image *img, const struct oci_platform *want, const char *ref,
                                      struct moat_error **reterr);
