/* SPDX-License-Identifier: Apache-2.0 */
#include "base/compat.h"

/*
 * libFuzzer entry point for the image reference parser: any bytes must
 * either parse into a reference whose normalised form parses back to the
 * same reference, or fail with an error message; never crash or leak.
 */

#include "base/cleanup.h"
#include "image/reference.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        _cleanup_free_ char *text = NULL, *full = NULL, *full2 = NULL, *fam = NULL;
        struct moat_reference ref = {}, again = {};
        struct moat_error *err = NULL;

        if (size > MOAT_REFERENCE_MAX + 16)
                return 0;
        text = strndup((const char *) data, size);
        if (!text)
                return 0;
        if (moat_reference_parse(text, &ref, &err) < 0) {
                if (!err || !err->msg || ref.domain || ref.path || ref.tag || ref.digest)
                        __builtin_trap();
                moat_error_free(err);
                return 0;
        }
        if (err || !ref.domain || !ref.path || (!ref.tag && !ref.digest))
                __builtin_trap();
        if (moat_reference_format(&ref, &full) < 0 || moat_reference_familiar(&ref, &fam) < 0)
                __builtin_trap();
        /* The normalised form is a fixed point. */
        if (moat_reference_parse(full, &again, NULL) < 0)
                __builtin_trap();
        if (moat_reference_format(&again, &full2) < 0 || !streq(full, full2))
                __builtin_trap();
        moat_reference_clear(&again);
        moat_reference_clear(&ref);
        return 0;
}
