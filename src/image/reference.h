/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

/*
 * Image references in the docker grammar (distribution/reference), with
 * docker's normalisation: "busybox" is docker.io/library/busybox:latest,
 * "localhost:5000/x@sha256:..." keeps its registry and digest.
 */

#include "base/compat.h"
#include "base/error.h"

#define MOAT_REFERENCE_MAX 4096

struct moat_reference {
        char *domain;   /* "docker.io", "localhost:5000" */
        char *path;     /* "library/busybox" */
        char *tag;      /* "latest" when neither tag nor digest was given; NULL with a digest only */
        char *digest;   /* "sha256:..." or NULL */
};

/* Parse and normalise; errors say what is wrong with the text. */
MOAT_NODISCARD int moat_reference_parse(const char *text, struct moat_reference *ret, struct moat_error **reterr);
void moat_reference_clear(struct moat_reference *r);

/* The full normalised form: "docker.io/library/busybox:latest",
 * "docker.io/library/busybox@sha256:...", or both tag and digest. */
MOAT_NODISCARD int moat_reference_format(const struct moat_reference *r, char **ret);

/* The familiar short form docker prints ("busybox:latest",
 * "localhost:5000/x:1"). */
MOAT_NODISCARD int moat_reference_familiar(const struct moat_reference *r, char **ret);
