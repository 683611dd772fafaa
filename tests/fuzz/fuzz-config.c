/* SPDX-License-Identifier: Apache-2.0 */
#include "base/compat.h"

/*
 * libFuzzer entry point for the config.json parser: any bytes must either
 * parse into a config or fail with an error, never crash or leak.
 */

#include "oci/runtime-spec.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        struct oci_config *c = NULL;
        struct moat_error *err = NULL;

        if (oci_config_parse((const char *) data, size, &c, &err) < 0) {
                if (!err || !err->msg)
                        __builtin_trap();
                moat_error_free(err);
                return 0;
        }
        if (!c || err)
                __builtin_trap();
        oci_config_free(c);
        return 0;
}
