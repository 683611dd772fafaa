/* SPDX-License-Identifier: Apache-2.0 */
#include "base/compat.h"

/*
 * moat-bench-unpack: the "moat" contender of bench/unpack.py. From a cold
 * start, what `moat mount` will do before mounting: open (create) a store,
 * load an OCI layout directory into it, tag its first image, resolve it
 * and unpack every layer into <store>/layers/<ChainID>, through the image
 * library's public calls. Prints one JSON line on stdout: the ChainIDs
 * (lowest first) and the wall time of each phase in ms, so the harness can
 * check the trees and show where the time goes. Errors go to stderr, exit 1.
 *
 * A C driver rather than the moat CLI because no verb unpacks without
 * also mounting (the `mount` verb is being written; the harness must not
 * depend on it).
 *
 *   moat-bench-unpack --store DIR --layout DIR [--ref REF] [--no-owner]
 */

#include <fcntl.h>
#include <getopt.h>
#include <stdio.h>
#include <time.h>
#include <unistd.h>

#include "base/cleanup.h"
#include "image/image-archive.h"
#include "image/images.h"
#include "image/store.h"

static double now_ms(void)
{
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (double) ts.tv_sec * 1e3 + (double) ts.tv_nsec / 1e6;
}

static int run(const char *store_path, const char *layout, const char *ref, bool owner, struct moat_error **reterr)
{
        _cleanup_store_ struct moat_store *s = NULL;
        _cleanup_archive_result_ struct moat_archive_result *res = NULL;
        _cleanup_image_ struct moat_image *img = NULL;
        _cleanup_strv_free_ char **chain = NULL;
        _cleanup_close_ int dir_fd = -EBADF;
        struct moat_layer_options opts = { .allow_devices = owner, .keep_ownership = owner };
        double t[6];
        int r;

        t[0] = now_ms();
        r = moat_store_open(store_path, true, &s, reterr);
        if (r < 0)
                return r;
        t[1] = now_ms();
        dir_fd = open(layout, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (dir_fd < 0)
                return moat_error_set(reterr, errno, "opening %s", layout);
        r = moat_archive_load_layout_dir(s, dir_fd, &res, reterr);
        if (r < 0)
                return moat_error_wrap(reterr, r, "loading %s", layout);
        if (res->n_images == 0)
                return moat_error_setx(reterr, -ENOENT, "%s holds no image", layout);
        t[2] = now_ms();
        struct oci_descriptor d = {
                .media_type = res->images[0].media_type,
                .digest = res->images[0].digest,
                .size = res->images[0].size,
        };
        r = moat_images_tag(s, ref, &d, reterr);
        if (r < 0)
                return r;
        t[3] = now_ms();
        r = moat_images_resolve(s, ref, NULL, &img, reterr);
        if (r < 0)
                return r;
        t[4] = now_ms();
        r = moat_images_unpack(s, img, &opts, &chain, reterr);
        if (r < 0)
                return r;
        t[5] = now_ms();

        printf("{\"chain_ids\":[");
        for (size_t i = 0; chain[i]; i++)
                printf("%s\"%s\"", i ? "," : "", chain[i]);
        printf("],\"ms\":{\"open\":%.3f,\"load\":%.3f,\"tag\":%.3f,\"resolve\":%.3f,\"unpack\":%.3f,\"total\":%.3f}}\n",
               t[1] - t[0], t[2] - t[1], t[3] - t[2], t[4] - t[3], t[5] - t[4], t[5] - t[0]);
        return fflush(stdout) == 0 ? 0 : moat_error_set(reterr, errno, "writing stdout");
}

int main(int argc, char **argv)
{
        static const struct option options[] = {
                { "store", required_argument, NULL, 's' },
                { "layout", required_argument, NULL, 'l' },
                { "ref", required_argument, NULL, 'r' },
                { "no-owner", no_argument, NULL, 'n' },
                {},
        };
        _cleanup_error_ struct moat_error *err = NULL;
        const char *store = NULL, *layout = NULL, *ref = "localhost/bench:latest";
        bool owner = geteuid() == 0;
        int c;

        while ((c = getopt_long(argc, argv, "", options, NULL)) != -1) {
                switch (c) {
                case 's':
                        store = optarg;
                        break;
                case 'l':
                        layout = optarg;
                        break;
                case 'r':
                        ref = optarg;
                        break;
                case 'n':
                        owner = false;
                        break;
                default:
                        return 2;
                }
        }
        if (!store || !layout || optind != argc) {
                fprintf(stderr, "usage: %s --store DIR --layout DIR [--ref REF] [--no-owner]\n", argv[0]);
                return 2;
        }
        if (run(store, layout, ref, owner, &err) < 0) {
                fprintf(stderr, "moat-bench-unpack: %s\n", err ? err->msg : "failed");
                return 1;
        }
        return 0;
}
