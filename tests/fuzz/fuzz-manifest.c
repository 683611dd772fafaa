/* SPDX-License-Identifier: Apache-2.0 */
#include "base/compat.h"

/*
 * libFuzzer entry point for the image-spec parser (manifests, indexes,
 * configs): any bytes must parse or fail with an error, never crash or
 * leak. Parsed documents also go through platform selection and ChainIDs.
 * The first byte picks the media type the caller claims, so typed paths
 * (config, Docker types) are reached without a mediaType in the document.
 */

#include "base/cleanup.h"
#include "oci/image-spec.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        static const char *const hints[] = {
                NULL, OCI_MT_MANIFEST, OCI_MT_INDEX, OCI_MT_CONFIG, DOCKER_MT_MANIFEST, DOCKER_MT_MANIFEST_LIST,
                DOCKER_MT_CONFIG,
        };
        struct oci_image_doc *d = NULL;
        struct moat_error *err = NULL;
        const char *hint = NULL;

        if (size > 0 && data[0] < ELEMENTSOF(hints) * 8) {
                hint = hints[data[0] % ELEMENTSOF(hints)];
                data++;
                size--;
        }
        if (oci_image_doc_parse((const char *) data, size, hint, &d, &err) < 0) {
                if (!err || !err->msg || d)
                        __builtin_trap();
                moat_error_free(err);
                return 0;
        }
        if (!d || err)
                __builtin_trap();

        const struct oci_index *x = oci_image_doc_index(d);
        if (x) {
                const struct oci_descriptor *sel = NULL;
                static const char *const arches[] = { NULL, "arm64", "arm", "s390x" };
                for (size_t i = 0; i < ELEMENTSOF(arches); i++) {
                        int r = oci_index_select(x, NULL, arches[i], NULL, &sel, &err);
                        if (r < 0 && (!err || !err->msg))
                                __builtin_trap();
                        moat_error_free(err);
                        err = NULL;
                }
        }
        const struct oci_image_config *c = oci_image_doc_config(d);
        if (c) {
                char **chain = NULL;
                if (oci_chain_ids(c->diff_ids, c->n_diff_ids, &chain, &err) < 0)
                        __builtin_trap(); /* the parser validated them */
                strv_free(chain);
        }
        oci_image_doc_free(d);
        return 0;
}
