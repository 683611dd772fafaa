/* SPDX-License-Identifier: Apache-2.0 */
#include "base/compat.h"

/*
 * Unit tests of the image-spec parser (src/oci/image-spec.c): the spec's
 * and Docker's example documents (the same files seed the fuzzer in
 * tests/fuzz/corpus/manifest/), exact JSON-path error messages for broken
 * documents, platform selection, and ChainIDs against values computed with
 * sha256sum.
 */

#include <stdio.h>

#include "base/cleanup.h"
#include "oci/image-spec.h"
#include "tap.h"

/* tests/fuzz/corpus/manifest/oci-manifest.json */
static const char OCI_MANIFEST[] =
        "{\n"
        "  \"schemaVersion\": 2,\n"
        "  \"mediaType\": \"application/vnd.oci.image.manifest.v1+json\",\n"
        "  \"config\": {\n"
        "    \"mediaType\": \"application/vnd.oci.image.config.v1+json\",\n"
        "    \"digest\": \"sha256:b5b2b2c507a0944348e0303114d8d93aaaa081732b86451d9bce1f432a537bc7\",\n"
        "    \"size\": 7023\n"
        "  },\n"
        "  \"layers\": [\n"
        "    {\n"
        "      \"mediaType\": \"application/vnd.oci.image.layer.v1.tar+gzip\",\n"
        "      \"digest\": \"sha256:9834876dcfb05cb167a5c24953eba58c4ac89b1adf57f28f2f9d09af107ee8f0\",\n"
        "      \"size\": 32654\n"
        "    },\n"
        "    {\n"
        "      \"mediaType\": \"application/vnd.oci.image.layer.v1.tar+gzip\",\n"
        "      \"digest\": \"sha256:3c3a4604a545cdc127456d94e421cd355bca5b528f4a9c1905b15da2eb4a4c6b\",\n"
        "      \"size\": 16724\n"
        "    },\n"
        "    {\n"
        "      \"mediaType\": \"application/vnd.oci.image.layer.v1.tar+gzip\",\n"
        "      \"digest\": \"sha256:ec4b8955958665577945c89419d1af06b5f7636b4ac3da7f12184802ad867736\",\n"
        "      \"size\": 73109\n"
        "    }\n"
        "  ],\n"
        "  \"subject\": {\n"
        "    \"mediaType\": \"application/vnd.oci.image.manifest.v1+json\",\n"
        "    \"digest\": \"sha256:5b0bcabd1ed22e9fb1310cf6c2dec7cdef19f0ad69efa1f392e94a4333501270\",\n"
        "    \"size\": 7682\n"
        "  },\n"
        "  \"annotations\": {\n"
        "    \"com.example.key1\": \"value1\",\n"
        "    \"com.example.key2\": \"value2\"\n"
        "  }\n"
        "}\n";

/* tests/fuzz/corpus/manifest/oci-index.json */
static const char OCI_INDEX[] =
        "{\n"
        "  \"schemaVersion\": 2,\n"
        "  \"mediaType\": \"application/vnd.oci.image.index.v1+json\",\n"
        "  \"manifests\": [\n"
        "    {\n"
        "      \"mediaType\": \"application/vnd.oci.image.manifest.v1+json\",\n"
        "      \"size\": 7143,\n"
        "      \"digest\": \"sha256:e692418e4cbaf90ca69d05a66403747baa33ee08806650b51fab815ad7fc331f\",\n"
        "      \"platform\": {\n"
        "        \"architecture\": \"ppc64le\",\n"
        "        \"os\": \"linux\"\n"
        "      }\n"
        "    },\n"
        "    {\n"
        "      \"mediaType\": \"application/vnd.oci.image.manifest.v1+json\",\n"
        "      \"size\": 7682,\n"
        "      \"digest\": \"sha256:5b0bcabd1ed22e9fb1310cf6c2dec7cdef19f0ad69efa1f392e94a4333501270\",\n"
        "      \"platform\": {\n"
        "        \"architecture\": \"amd64\",\n"
        "        \"os\": \"linux\"\n"
        "      }\n"
        "    }\n"
        "  ],\n"
        "  \"annotations\": {\n"
        "    \"com.example.key1\": \"value1\",\n"
        "    \"com.example.key2\": \"value2\"\n"
        "  }\n"
        "}\n";

/* tests/fuzz/corpus/manifest/oci-config.json */
static const char OCI_CONFIG[] =
        "{\n"
        "    \"created\": \"2015-10-31T22:22:56.015925234Z\",\n"
        "    \"author\": \"Alyssa P. Hacker <alyspdev@example.com>\",\n"
        "    \"architecture\": \"amd64\",\n"
        "    \"os\": \"linux\",\n"
        "    \"config\": {\n"
        "        \"User\": \"alice\",\n"
        "        \"ExposedPorts\": {\n"
        "            \"8080/tcp\": {}\n"
        "        },\n"
        "        \"Env\": [\n"
        "            \"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin\",\n"
        "            \"FOO=oci_is_a\",\n"
        "            \"BAR=well_written_spec\"\n"
        "        ],\n"
        "        \"Entrypoint\": [\n"
        "            \"/bin/my-app-binary\"\n"
        "        ],\n"
        "        \"Cmd\": [\n"
        "            \"--foreground\",\n"
        "            \"--config\",\n"
        "            \"/etc/my-app.d/default.cfg\"\n"
        "        ],\n"
        "        \"Volumes\": {\n"
        "            \"/var/job-result-data\": {},\n"
        "            \"/var/log/my-app-logs\": {}\n"
        "        },\n"
        "        \"WorkingDir\": \"/home/alice\",\n"
        "        \"Labels\": {\n"
        "            \"com.example.project.git.url\": \"https://example.com/project.git\",\n"
        "            \"com.example.project.git.commit\": \"45a939b2999782a3f005621a8d0f29aa387e1d6b\"\n"
        "        }\n"
        "    },\n"
        "    \"rootfs\": {\n"
        "      \"diff_ids\": [\n"
        "        \"sha256:c6f988f4874bb0add23a778f753c65efe992244e148a1d2ec2a8b664fb66bbd1\",\n"
        "        \"sha256:5f70bf18a086007016e948b04aed3b82103a36bea41755b6cddfaf10ace3c6ef\"\n"
        "      ],\n"
        "      \"type\": \"layers\"\n"
        "    },\n"
        "    \"history\": [\n"
        "      {\n"
        "        \"created\": \"2015-10-31T22:22:54.690851953Z\",\n"
        "        \"created_by\": \"/bin/sh -c #(nop) ADD file:a3bc1e842b69636f9df5256c49c5374fb4eef1e281fe3f282c65fb853ee171c5 in /\"\n"
        "      },\n"
        "      {\n"
        "        \"created\": \"2015-10-31T22:22:55.613815829Z\",\n"
        "        \"created_by\": \"/bin/sh -c #(nop) CMD [\\\"sh\\\"]\",\n"
        "        \"empty_layer\": true\n"
        "      },\n"
        "      {\n"
        "        \"created\": \"2015-10-31T22:22:56.329850019Z\",\n"
        "        \"created_by\": \"/bin/sh -c apk add curl\"\n"
        "      }\n"
        "    ]\n"
        "}\n";

/* tests/fuzz/corpus/manifest/docker-manifest.json */
static const char DOCKER_MANIFEST[] =
        "{\n"
        "    \"schemaVersion\": 2,\n"
        "    \"mediaType\": \"application/vnd.docker.distribution.manifest.v2+json\",\n"
        "    \"config\": {\n"
        "        \"mediaType\": \"application/vnd.docker.container.image.v1+json\",\n"
        "        \"size\": 7023,\n"
        "        \"digest\": \"sha256:b5b2b2c507a0944348e0303114d8d93aaaa081732b86451d9bce1f432a537bc7\"\n"
        "    },\n"
        "    \"layers\": [\n"
        "        {\n"
        "            \"mediaType\": \"application/vnd.docker.image.rootfs.diff.tar.gzip\",\n"
        "            \"size\": 32654,\n"
        "            \"digest\": \"sha256:e692418e4cbaf90ca69d05a66403747baa33ee08806650b51fab815ad7fc331f\"\n"
        "        },\n"
        "        {\n"
        "            \"mediaType\": \"application/vnd.docker.image.rootfs.diff.tar.gzip\",\n"
        "            \"size\": 16724,\n"
        "            \"digest\": \"sha256:3c3a4604a545cdc127456d94e421cd355bca5b528f4a9c1905b15da2eb4a4c6b\"\n"
        "        },\n"
        "        {\n"
        "            \"mediaType\": \"application/vnd.docker.image.rootfs.diff.tar.gzip\",\n"
        "            \"size\": 73109,\n"
        "            \"digest\": \"sha256:ec4b8955958665577945c89419d1af06b5f7636b4ac3da7f12184802ad867736\"\n"
        "        }\n"
        "    ]\n"
        "}\n";

/* tests/fuzz/corpus/manifest/docker-manifest-list.json */
static const char DOCKER_LIST[] =
        "{\n"
        "  \"schemaVersion\": 2,\n"
        "  \"mediaType\": \"application/vnd.docker.distribution.manifest.list.v2+json\",\n"
        "  \"manifests\": [\n"
        "    {\n"
        "      \"mediaType\": \"application/vnd.docker.distribution.manifest.v2+json\",\n"
        "      \"digest\": \"sha256:e692418e4cbaf90ca69d05a66403747baa33ee08806650b51fab815ad7fc331f\",\n"
        "      \"size\": 7143,\n"
        "      \"platform\": {\n"
        "        \"architecture\": \"ppc64le\",\n"
        "        \"os\": \"linux\"\n"
        "      }\n"
        "    },\n"
        "    {\n"
        "      \"mediaType\": \"application/vnd.docker.distribution.manifest.v2+json\",\n"
        "      \"digest\": \"sha256:5b0bcabd1ed22e9fb1310cf6c2dec7cdef19f0ad69efa1f392e94a4333501270\",\n"
        "      \"size\": 7682,\n"
        "      \"platform\": {\n"
        "        \"architecture\": \"amd64\",\n"
        "        \"os\": \"linux\",\n"
        "        \"features\": [\n"
        "          \"sse4\"\n"
        "        ]\n"
        "      }\n"
        "    }\n"
        "  ]\n"
        "}\n";

/* tests/fuzz/corpus/manifest/multiarch-index.json */
static const char MULTIARCH_INDEX[] =
        "{\n"
        "  \"schemaVersion\": 2,\n"
        "  \"mediaType\": \"application/vnd.oci.image.index.v1+json\",\n"
        "  \"manifests\": [\n"
        "    {\"mediaType\": \"application/vnd.oci.image.manifest.v1+json\", \"size\": 1, \"digest\": \"sha256:1111111111111111111111111111111111111111111111111111111111111111\", \"platform\": {\"architecture\": \"amd64\", \"os\": \"linux\"}},\n"
        "    {\"mediaType\": \"application/vnd.oci.image.manifest.v1+json\", \"size\": 2, \"digest\": \"sha256:2222222222222222222222222222222222222222222222222222222222222222\", \"platform\": {\"architecture\": \"arm\", \"os\": \"linux\", \"variant\": \"v6\"}},\n"
        "    {\"mediaType\": \"application/vnd.oci.image.manifest.v1+json\", \"size\": 3, \"digest\": \"sha256:3333333333333333333333333333333333333333333333333333333333333333\", \"platform\": {\"architecture\": \"arm\", \"os\": \"linux\", \"variant\": \"v7\"}},\n"
        "    {\"mediaType\": \"application/vnd.oci.image.manifest.v1+json\", \"size\": 4, \"digest\": \"sha256:4444444444444444444444444444444444444444444444444444444444444444\", \"platform\": {\"architecture\": \"arm64\", \"os\": \"linux\", \"variant\": \"v8\"}},\n"
        "    {\"mediaType\": \"application/vnd.oci.image.manifest.v1+json\", \"size\": 5, \"digest\": \"sha256:5555555555555555555555555555555555555555555555555555555555555555\", \"platform\": {\"architecture\": \"amd64\", \"os\": \"windows\", \"os.version\": \"10.0.17763.1879\"}},\n"
        "    {\"mediaType\": \"application/vnd.oci.image.manifest.v1+json\", \"size\": 6, \"digest\": \"sha256:6666666666666666666666666666666666666666666666666666666666666666\", \"platform\": {\"architecture\": \"unknown\", \"os\": \"unknown\"}, \"annotations\": {\"vnd.docker.reference.type\": \"attestation-manifest\"}}\n"
        "  ]\n"
        "}\n";

/* The OCI v1.1 artifact example (manifest.md, "Example showing an artifact
 * manifest"), config is the empty descriptor. */
static const char ARTIFACT_MANIFEST[] =
        "{\n"
        "  \"schemaVersion\": 2,\n"
        "  \"mediaType\": \"application/vnd.oci.image.manifest.v1+json\",\n"
        "  \"artifactType\": \"application/vnd.example+type\",\n"
        "  \"config\": {\n"
        "    \"mediaType\": \"application/vnd.oci.empty.v1+json\",\n"
        "    \"digest\": \"sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a\",\n"
        "    \"size\": 2,\n"
        "    \"data\": \"e30=\"\n"
        "  },\n"
        "  \"layers\": [\n"
        "    {\n"
        "      \"mediaType\": \"application/vnd.example+type\",\n"
        "      \"digest\": \"sha256:e258d248fda94c63753607f7c4494ee0fcbe92f1a76bfdac795c9d84101eb317\",\n"
        "      \"size\": 1234\n"
        "    }\n"
        "  ]\n"
        "}\n";

#define D1 "sha256:c6f988f4874bb0add23a778f753c65efe992244e148a1d2ec2a8b664fb66bbd1"
#define D2 "sha256:5f70bf18a086007016e948b04aed3b82103a36bea41755b6cddfaf10ace3c6ef"
/* printf '%s' 'D1 D2' | sha256sum */
#define CHAIN2 "sha256:c3191d32a37d7159b2e30830937d2e30268ad6c375a773a8994911a3aba9b93f"

/* s with the first occurrence of from replaced by to (from must occur). */
static char *replace(const char *s, const char *from, const char *to)
{
        const char *p = strstr(s, from);
        if (!p) {
                fprintf(stderr, "test bug: %s not found\n", from);
                abort();
        }
        size_t n = strlen(s) - strlen(from) + strlen(to) + 1;
        char *out = malloc(n);
        if (!out)
                abort();
        snprintf(out, n, "%.*s%s%s", (int) (p - s), s, to, p + strlen(from));
        return out;
}

static struct oci_image_doc *parse_ok(const char *text, const char *hint, const char *what)
{
        struct oci_image_doc *d = NULL;
        struct moat_error *err = NULL;
        int r = oci_image_doc_parse(text, strlen(text), hint, &d, &err);
        is_int(r, 0, "%s parses", what);
        if (err)
                printf("#   %s\n", err->msg);
        moat_error_free(err);
        return r < 0 ? NULL : d;
}

/* Parse must fail with r and exactly msg. */
static void parse_fails(const char *text, const char *hint, int want_r, const char *msg)
{
        struct oci_image_doc *d = NULL;
        _cleanup_error_ struct moat_error *err = NULL;
        int r = oci_image_doc_parse(text, strlen(text), hint, &d, &err);
        is_int(r, want_r, "refused: %s", msg);
        is_str(err ? err->msg : NULL, msg, "message: %s", msg);
        ok(!d, "no document returned");
        oci_image_doc_free(d);
}

static void test_oci_manifest(void)
{
        _cleanup_oci_image_doc_ struct oci_image_doc *d = parse_ok(OCI_MANIFEST, NULL, "OCI manifest example");
        const struct oci_manifest *m = oci_image_doc_manifest(d);
        ok(m != NULL, "it is a manifest");
        if (!m)
                return;
        ok(!oci_image_doc_index(d) && !oci_image_doc_config(d), "and nothing else");
        is_str(d->media_type, OCI_MT_MANIFEST, "media type");
        ok(!m->docker && !m->artifact, "OCI image manifest");
        is_str(m->config.media_type, OCI_MT_CONFIG, "config media type");
        is_str(m->config.digest, "sha256:b5b2b2c507a0944348e0303114d8d93aaaa081732b86451d9bce1f432a537bc7",
               "config digest");
        is_int(m->config.size, 7023, "config size");
        is_int(m->n_layers, 3, "three layers");
        is_int(m->layers[2].size, 73109, "layers[2].size");
        is_str(m->layers[1].digest, "sha256:3c3a4604a545cdc127456d94e421cd355bca5b528f4a9c1905b15da2eb4a4c6b",
               "layers[1].digest");
        enum oci_compression c = OCI_COMPRESSION_NONE;
        bool nd = true;
        is_int(oci_layer_media_type(m->layers[0].media_type, &c, &nd), 0, "layer media type known");
        ok(c == OCI_COMPRESSION_GZIP && !nd, "gzip, distributable");
        ok(m->subject != NULL, "subject present");
        if (m->subject)
                is_int(m->subject->size, 7682, "subject size");
        is_str(oci_key_value_find(m->annotations, m->n_annotations, "com.example.key2"), "value2", "annotation");
        ok(oci_key_value_find(m->annotations, m->n_annotations, "nope") == NULL, "absent annotation");

        _cleanup_oci_image_doc_ struct oci_image_doc *d2 = parse_ok(OCI_MANIFEST, OCI_MT_MANIFEST, "with matching hint");
        ok(d2 && d2->kind == OCI_DOC_MANIFEST, "hint agrees");

        enum oci_compression cz;
        is_int(oci_layer_media_type(OCI_MT_LAYER_ND_TAR_ZSTD, &cz, &nd), 0, "nondistributable zstd known");
        ok(cz == OCI_COMPRESSION_ZSTD && nd, "zstd, nondistributable");
        is_int(oci_layer_media_type(OCI_MT_LAYER_TAR, &cz, &nd), 0, "plain tar known");
        ok(cz == OCI_COMPRESSION_NONE && !nd, "uncompressed");
        is_int(oci_layer_media_type("application/x-tar", NULL, NULL), -EINVAL, "unknown layer type refused");
}

static void test_artifact(void)
{
        _cleanup_oci_image_doc_ struct oci_image_doc *d = parse_ok(ARTIFACT_MANIFEST, NULL, "artifact example");
        const struct oci_manifest *m = oci_image_doc_manifest(d);
        ok(m && m->artifact, "artifact manifest: layers not checked as image layers");
        if (m) {
                is_str(m->artifact_type, "application/vnd.example+type", "artifactType");
                is_str(m->config.media_type, OCI_MT_EMPTY, "empty config");
        }
}

static void test_docker_manifest(void)
{
        _cleanup_oci_image_doc_ struct oci_image_doc *d = parse_ok(DOCKER_MANIFEST, NULL, "Docker schema 2 example");
        const struct oci_manifest *m = oci_image_doc_manifest(d);
        ok(m && m->docker, "docker manifest");
        if (!m)
                return;
        is_str(d->media_type, DOCKER_MT_MANIFEST, "media type");
        is_str(m->config.media_type, DOCKER_MT_CONFIG, "config media type");
        is_int(m->n_layers, 3, "three layers");
        enum oci_compression c = OCI_COMPRESSION_NONE;
        is_int(oci_layer_media_type(m->layers[0].media_type, &c, NULL), 0, "docker layer type known");
        ok(c == OCI_COMPRESSION_GZIP, "docker layer is gzip");

        _cleanup_free_ char *s1 = replace(DOCKER_MANIFEST, "\"schemaVersion\": 2", "\"schemaVersion\": 1");
        parse_fails(s1, NULL, -EPROTONOSUPPORT, "schemaVersion: must be 2, got 1");
        parse_fails("{\"schemaVersion\": 1, \"mediaType\": \"application/vnd.docker.distribution.manifest.v1+prettyjws\"}",
                    NULL, -EPROTONOSUPPORT,
                    "Docker schema 1 manifests (\"application/vnd.docker.distribution.manifest.v1+prettyjws\") are not supported");
}

static void test_index(void)
{
        const struct oci_descriptor *sel = NULL;
        _cleanup_error_ struct moat_error *err = NULL;

        _cleanup_oci_image_doc_ struct oci_image_doc *d = parse_ok(OCI_INDEX, NULL, "OCI index example");
        const struct oci_index *x = oci_image_doc_index(d);
        ok(x && !x->docker, "OCI index");
        if (!x)
                return;
        is_int(x->n_manifests, 2, "two manifests");
        is_str(x->manifests[0].platform.architecture, "ppc64le", "manifests[0] platform");
        is_int(x->manifests[1].size, 7682, "manifests[1].size");
        is_int(oci_index_select(x, NULL, NULL, NULL, &sel, &err), 0, "default platform found");
        is_str(sel ? sel->digest : NULL, "sha256:5b0bcabd1ed22e9fb1310cf6c2dec7cdef19f0ad69efa1f392e94a4333501270",
               "linux/amd64 picked");
        is_int(oci_index_select(x, "linux", "s390x", NULL, &sel, &err), -ENOENT, "s390x not there");
        is_str(err ? err->msg : NULL,
               "no manifest for platform linux/s390x in the index; available: linux/ppc64le, linux/amd64",
               "error lists the platforms");

        _cleanup_oci_image_doc_ struct oci_image_doc *dl = parse_ok(DOCKER_LIST, NULL, "Docker manifest list example");
        const struct oci_index *l = oci_image_doc_index(dl);
        ok(l && l->docker, "docker list");
        if (l) {
                is_int(oci_index_select(l, "linux", "x86_64", NULL, &sel, NULL), 0, "x86_64 found");
                is_int(sel->size, 7682, "amd64 entry picked for x86_64");
                is_int(oci_index_select(l, "linux", "ppc64le", NULL, &sel, NULL), 0, "ppc64le found");
                is_int(sel->size, 7143, "ppc64le entry");
        }
}

static void expect_select(const struct oci_index *x, const char *os, const char *arch, const char *variant,
                          int64_t want_size)
{
        const struct oci_descriptor *sel = NULL;
        _cleanup_error_ struct moat_error *err = NULL;
        int r = oci_index_select(x, os, arch, variant, &sel, &err);
        if (want_size < 0) {
                is_int(r, -ENOENT, "%s/%s/%s: no match", os, arch, variant ? variant : "");
                return;
        }
        is_int(r, 0, "%s/%s/%s: found", os, arch, variant ? variant : "");
        if (err)
                printf("#   %s\n", err->msg);
        is_int(sel ? sel->size : -1, want_size, "%s/%s/%s: right entry", os, arch, variant ? variant : "");
}

static void test_select(void)
{
        _cleanup_oci_image_doc_ struct oci_image_doc *d = parse_ok(MULTIARCH_INDEX, NULL, "multi-arch index");
        const struct oci_index *x = oci_image_doc_index(d);
        if (!x)
                return;
        expect_select(x, NULL, NULL, NULL, 1);
        expect_select(x, "linux", "amd64", NULL, 1);
        expect_select(x, "linux", "arm64", NULL, 4);
        expect_select(x, "linux", "arm64", "v8", 4);
        expect_select(x, "linux", "aarch64", NULL, 4);
        expect_select(x, "linux", "arm", NULL, 3);
        expect_select(x, "linux", "arm", "v7", 3);
        expect_select(x, "linux", "armhf", NULL, 3);
        expect_select(x, "linux", "arm", "v6", 2);
        expect_select(x, "linux", "arm", "v5", -1);
        expect_select(x, "linux", "arm", "v8", 3);
        expect_select(x, "windows", "amd64", NULL, 5);
        expect_select(x, "linux", "riscv64", NULL, -1);
        expect_select(x, "darwin", "amd64", NULL, -1);

        /* arm64 without an arm64 image runs the best 32-bit arm one */
        _cleanup_free_ char *noarm64 = replace(MULTIARCH_INDEX, "\"arm64\"", "\"s390x\"");
        _cleanup_oci_image_doc_ struct oci_image_doc *d2 = parse_ok(noarm64, NULL, "index without arm64");
        const struct oci_index *x2 = oci_image_doc_index(d2);
        if (x2) {
                expect_select(x2, "linux", "arm64", NULL, 3);
                expect_select(x2, "linux", "s390x", NULL, -1); /* s390x entry has variant v8 */
        }

        /* arm64 with variant-less entry (as most registries publish) */
        _cleanup_free_ char *novariant = replace(MULTIARCH_INDEX, ", \"variant\": \"v8\"", "");
        _cleanup_oci_image_doc_ struct oci_image_doc *d3 = parse_ok(novariant, NULL, "arm64 without variant");
        const struct oci_index *x3 = oci_image_doc_index(d3);
        if (x3) {
                expect_select(x3, "linux", "arm64", NULL, 4);
                expect_select(x3, "linux", "arm64", "v8", 4);
        }

        const struct oci_descriptor *sel = NULL;
        _cleanup_error_ struct moat_error *err = NULL;
        is_int(oci_index_select(x, "linux", "mips64", NULL, &sel, &err), -ENOENT, "mips64 absent");
        is_str(err ? err->msg : NULL,
               "no manifest for platform linux/mips64 in the index; available: linux/amd64, linux/arm/v6, "
               "linux/arm/v7, linux/arm64/v8, windows/amd64, unknown/unknown",
               "error lists all platforms");
}

static void test_config(void)
{
        _cleanup_oci_image_doc_ struct oci_image_doc *d = parse_ok(OCI_CONFIG, OCI_MT_CONFIG, "OCI config example");
        const struct oci_image_config *c = oci_image_doc_config(d);
        ok(c != NULL, "it is a config");
        if (!c)
                return;
        is_str(c->architecture, "amd64", "architecture");
        is_str(c->os, "linux", "os");
        is_str(c->created, "2015-10-31T22:22:56.015925234Z", "created");
        is_str(c->author, "Alyssa P. Hacker <alyspdev@example.com>", "author");
        ok(c->has_config, "has config");
        is_str(c->config.user, "alice", "User");
        is_str(c->config.exposed_ports ? c->config.exposed_ports[0] : NULL, "8080/tcp", "ExposedPorts");
        is_str(c->config.env ? c->config.env[2] : NULL, "BAR=well_written_spec", "Env[2]");
        ok(c->config.has_entrypoint && c->config.entrypoint && !c->config.entrypoint[1], "one Entrypoint");
        is_str(c->config.cmd ? c->config.cmd[2] : NULL, "/etc/my-app.d/default.cfg", "Cmd[2]");
        ok(c->config.volumes && c->config.volumes[0] && c->config.volumes[1] && !c->config.volumes[2],
           "two Volumes");
        is_str(c->config.working_dir, "/home/alice", "WorkingDir");
        is_str(oci_key_value_find(c->config.labels, c->config.n_labels, "com.example.project.git.url"),
               "https://example.com/project.git", "Labels");
        is_int(c->n_diff_ids, 2, "two diff_ids");
        is_str(c->diff_ids[1], D2, "diff_ids[1]");
        is_int(c->n_history, 3, "three history entries");
        ok(c->history && c->history[1].empty_layer && !c->history[0].empty_layer, "empty_layer");
        is_str(c->history ? c->history[2].created_by : NULL, "/bin/sh -c apk add curl", "created_by");

        _cleanup_oci_image_doc_ struct oci_image_doc *d2 = parse_ok(OCI_CONFIG, NULL, "config found by shape");
        ok(d2 && d2->kind == OCI_DOC_CONFIG, "config without a hint");

        /* Docker's config: nulls for unset fields, Healthcheck, ArgsEscaped */
        static const char docker_config[] =
                "{\"architecture\":\"arm64\",\"variant\":\"v8\",\"os\":\"linux\",\"config\":{\"Env\":null,"
                "\"Cmd\":[\"sh\"],\"Labels\":null,\"ArgsEscaped\":true,\"StopSignal\":\"SIGQUIT\","
                "\"Healthcheck\":{\"Test\":[\"CMD\",\"true\"],\"Interval\":30000000000}},"
                "\"container_config\":{\"Hostname\":\"x\"},"
                "\"rootfs\":{\"type\":\"layers\",\"diff_ids\":[\"" D1 "\"]}}";
        _cleanup_oci_image_doc_ struct oci_image_doc *d3 = parse_ok(docker_config, DOCKER_MT_CONFIG, "docker config");
        const struct oci_image_config *c3 = oci_image_doc_config(d3);
        if (c3) {
                ok(c3->config.env == NULL && c3->config.n_labels == 0, "nulls read as absent");
                ok(c3->config.args_escaped, "ArgsEscaped");
                is_str(c3->config.stop_signal, "SIGQUIT", "StopSignal");
                ok(json_is_object(c3->config.healthcheck), "Healthcheck kept as JSON");
                ok(!c3->config.has_entrypoint && c3->config.has_cmd, "Cmd without Entrypoint");
                is_str(c3->variant, "v8", "variant");
        }
}

static void test_errors(void)
{
        _cleanup_free_ char *bad_digest = replace(OCI_MANIFEST,
                "sha256:3c3a4604a545cdc127456d94e421cd355bca5b528f4a9c1905b15da2eb4a4c6b",
                "sha256:3C3A4604a545cdc127456d94e421cd355bca5b528f4a9c1905b15da2eb4a4c6b");
        parse_fails(bad_digest, NULL, -EINVAL,
                    "layers[1].digest: invalid digest \"sha256:3C3A4604a545cdc127456d94e421cd355bca5b528f4a9c1905b15da2eb4a4c6b\": "
                    "sha256 needs 64 lowercase hex digits");

        _cleanup_free_ char *short_digest = replace(OCI_MANIFEST,
                "sha256:b5b2b2c507a0944348e0303114d8d93aaaa081732b86451d9bce1f432a537bc7", "sha256:b5b2");
        parse_fails(short_digest, NULL, -EINVAL,
                    "config.digest: invalid digest \"sha256:b5b2\": sha256 needs 64 lowercase hex digits");

        _cleanup_free_ char *sha512 = replace(OCI_MANIFEST,
                "sha256:5b0bcabd1ed22e9fb1310cf6c2dec7cdef19f0ad69efa1f392e94a4333501270", "sha512:abcd");
        parse_fails(sha512, NULL, -EINVAL,
                    "subject.digest: unsupported digest algorithm \"sha512\" in \"sha512:abcd\" (only sha256 is supported)");

        _cleanup_free_ char *nocolon = replace(OCI_INDEX,
                "sha256:5b0bcabd1ed22e9fb1310cf6c2dec7cdef19f0ad69efa1f392e94a4333501270", "5b0b");
        parse_fails(nocolon, NULL, -EINVAL,
                    "manifests[1].digest: invalid digest \"5b0b\": must be \"sha256:\" followed by 64 hex digits");

        _cleanup_free_ char *neg = replace(OCI_MANIFEST, "\"size\": 32654", "\"size\": -1");
        parse_fails(neg, NULL, -EINVAL, "layers[0].size: must not be negative, got -1");

        _cleanup_free_ char *strsize = replace(OCI_MANIFEST, "\"size\": 7023", "\"size\": \"7023\"");
        parse_fails(strsize, NULL, -EINVAL, "config.size: must be an integer");

        _cleanup_free_ char *unknown = replace(OCI_MANIFEST,
                "\"application/vnd.oci.image.layer.v1.tar+gzip\",\n      \"digest\": \"sha256:ec4b",
                "\"application/x-foo\",\n      \"digest\": \"sha256:ec4b");
        parse_fails(unknown, NULL, -EINVAL, "layers[2].mediaType: unknown layer media type \"application/x-foo\"");

        _cleanup_free_ char *badmt = replace(OCI_MANIFEST, "application/vnd.oci.image.config.v1+json",
                                             "not a media type");
        parse_fails(badmt, NULL, -EINVAL, "config.mediaType: invalid media type \"not a media type\"");

        static const char no_config[] =
                "{\"schemaVersion\":2,\"mediaType\":\"application/vnd.oci.image.manifest.v1+json\",\"layers\":[]}";
        parse_fails(no_config, NULL, -EINVAL, "config: missing");

        _cleanup_free_ char *no_layers = replace(OCI_MANIFEST, "\"layers\"", "\"layerz\"");
        parse_fails(no_layers, NULL, -EINVAL, "layers: missing");

        _cleanup_free_ char *arch = replace(OCI_INDEX, "\"architecture\": \"amd64\"", "\"architecture\": 42");
        parse_fails(arch, NULL, -EINVAL, "manifests[1].platform.architecture: must be a string");

        _cleanup_free_ char *conflict = strdup(OCI_MANIFEST);
        parse_fails(conflict, OCI_MT_INDEX, -EINVAL,
                    "mediaType: is \"application/vnd.oci.image.manifest.v1+json\" but the document was referred "
                    "to as \"application/vnd.oci.image.index.v1+json\"");

        _cleanup_free_ char *bad_diff = replace(OCI_CONFIG, D2, "sha256:zz");
        parse_fails(bad_diff, OCI_MT_CONFIG, -EINVAL,
                    "rootfs.diff_ids[1]: invalid digest \"sha256:zz\": sha256 needs 64 lowercase hex digits");

        _cleanup_free_ char *rootfs_type = replace(OCI_CONFIG, "\"type\": \"layers\"", "\"type\": \"tarball\"");
        parse_fails(rootfs_type, OCI_MT_CONFIG, -EINVAL, "rootfs.type: must be \"layers\", got \"tarball\"");

        _cleanup_free_ char *hist = replace(OCI_CONFIG, "\"empty_layer\": true", "\"empty_layer\": \"yes\"");
        parse_fails(hist, OCI_MT_CONFIG, -EINVAL, "history[1].empty_layer: must be a boolean");

        _cleanup_free_ char *label = replace(OCI_CONFIG, "\"https://example.com/project.git\"", "7");
        parse_fails(label, OCI_MT_CONFIG, -EINVAL, "config.Labels.com.example.project.git.url: must be a string");

        parse_fails("[1]", NULL, -EINVAL, "the top level must be a JSON object");
        parse_fails("{\"schemaVersion\": 2, ", NULL, -EINVAL,
                    "invalid JSON at line 1, column 21: string or '}' expected near end of file");
        parse_fails("{\"foo\": 1}", NULL, -EINVAL, "unknown document: no mediaType, manifests, layers or rootfs");
        parse_fails("{\"mediaType\": \"application/vnd.oci.image.layer.v1.tar\"}", NULL, -EPROTONOSUPPORT,
                    "mediaType: unsupported media type \"application/vnd.oci.image.layer.v1.tar\"");

        /* too many layers: 1025 */
        const char *layer = "{\"mediaType\":\"application/vnd.oci.image.layer.v1.tar\",\"size\":1,\"digest\":\"" D1 "\"}";
        size_t cap = 1025 * (strlen(layer) + 1) + 1024;
        _cleanup_free_ char *many = malloc(cap);
        if (!many)
                abort();
        size_t o = (size_t) snprintf(many, cap,
                                     "{\"schemaVersion\":2,\"mediaType\":\"" OCI_MT_MANIFEST "\",\"config\":{\"mediaType\":\"" OCI_MT_CONFIG
                                     "\",\"size\":1,\"digest\":\"" D2 "\"},\"layers\":[");
        for (size_t i = 0; i < 1025; i++)
                o += (size_t) snprintf(many + o, cap - o, "%s%s", i ? "," : "", layer);
        snprintf(many + o, cap - o, "]}");
        parse_fails(many, NULL, -E2BIG, "layers: too many entries (1025, at most 1024)");
        /* exactly 1024 is fine */
        char *last = strrchr(many, '{');
        snprintf(last - 1, cap - (size_t) (last - 1 - many), "]}");
        _cleanup_oci_image_doc_ struct oci_image_doc *d = parse_ok(many, NULL, "1024 layers");
        ok(d && d->manifest.n_layers == 1024, "1024 layers kept");

        /* documents over 4 MiB are refused before parsing */
        size_t big = OCI_IMAGE_DOC_MAX_SIZE + 1;
        _cleanup_free_ char *huge = malloc(big);
        if (!huge)
                abort();
        memset(huge, ' ', big);
        struct oci_image_doc *hd = NULL;
        _cleanup_error_ struct moat_error *err = NULL;
        is_int(oci_image_doc_parse(huge, big, NULL, &hd, &err), -EFBIG, "4 MiB + 1 refused");
        is_str(err ? err->msg : NULL, "document is too large (4194305 bytes, at most 4194304)", "size message");
}

static void test_chain_ids(void)
{
        char *diff[] = { (char *) D1, (char *) D2, NULL };
        _cleanup_strv_free_ char **chain = NULL;
        _cleanup_error_ struct moat_error *err = NULL;

        is_int(oci_chain_ids(diff, 2, &chain, &err), 0, "chain ids computed");
        if (!chain)
                return;
        is_str(chain[0], D1, "ChainID(L0) = DiffID(L0)");
        is_str(chain[1], CHAIN2, "ChainID(L1) = sha256(ChainID(L0) + \" \" + DiffID(L1)), as sha256sum says");
        ok(chain[2] == NULL, "NULL-terminated");

        _cleanup_strv_free_ char **one = NULL;
        is_int(oci_chain_ids(diff, 1, &one, NULL), 0, "one layer");
        is_str(one ? one[0] : NULL, D1, "single layer chain is its diff id");

        char *bad[] = { (char *) D1, (char *) "md5:abc", NULL };
        _cleanup_strv_free_ char **none = NULL;
        is_int(oci_chain_ids(bad, 2, &none, &err), -EINVAL, "bad diff id refused");
        is_str(err ? err->msg : NULL,
               "diff_ids[1]: unsupported digest algorithm \"md5\" in \"md5:abc\" (only sha256 is supported)",
               "chain error message");
        ok(none == NULL, "nothing returned");
}

int main(void)
{
        test_oci_manifest();
        test_artifact();
        test_docker_manifest();
        test_index();
        test_select();
        test_config();
        test_errors();
        test_chain_ids();
        return tap_done();
}
