/* SPDX-License-Identifier: Apache-2.0 */
#include "base/compat.h"

/*
 * Unit tests of image/imageconfig.c: docker's Entrypoint/Cmd table, env
 * merging and defaults, working directories, every user form resolved in a
 * temporary root's own etc/passwd and etc/group, hostile roots (symlinks
 * pointing at the host's files, oversized and non-regular files), the
 * passthrough fields, and the merge into a runtime config document.
 */

#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/cleanup.h"
#include "base/fileio.h"
#include "image/imageconfig.h"
#include "tap.h"

static char tmpdir[] = "/tmp/moat-test-imgcfg-XXXXXX";

static const char PASSWD[] = "root:x:0:0:root:/root:/bin/sh\n"
                             "daemon:x:1:1:daemon:/usr/sbin:/usr/sbin/nologin\n"
                             "# a comment\n"
                             "\n"
                             "broken:x:abc:1::/b:/bin/sh\n"
                             "app:x:1000:1000:App:/home/app:/bin/sh\n"
                             "nohome:x:1001:1001\n";
static const char GROUP[] = "root:x:0:\n"
                            "wheel:x:10:other,app\n"
                            "app:x:1000:\n"
                            "audio:x:29:app\n"
                            "staff:x:50:\n"
                            "video:x:44:other,application\n"
                            "wheel2:x:10:app\n";

static int make_root(const char *name, const char *passwd, const char *group)
{
        char p[512];
        snprintf(p, sizeof(p), "%s/%s", tmpdir, name);
        if (mkdir(p, 0755) < 0)
                return -1;
        int fd = open(p, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (fd < 0)
                return -1;
        if (passwd || group) {
                if (mkdirat(fd, "etc", 0755) < 0)
                        return -1;
                _cleanup_close_ int etc = openat(fd, "etc", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
                if (etc < 0)
                        return -1;
                if (passwd && write_file_replace_at(etc, "passwd", passwd, strlen(passwd), 0644) < 0)
                        return -1;
                if (group && write_file_replace_at(etc, "group", group, strlen(group), 0644) < 0)
                        return -1;
        }
        return fd;
}

static struct oci_image_doc *config(const char *json)
{
        struct oci_image_doc *d = NULL;
        _cleanup_error_ struct moat_error *err = NULL;
        if (oci_image_doc_parse(json, strlen(json), OCI_MT_CONFIG, &d, &err) < 0) {
                printf("# config parse: %s\n", err ? err->msg : "?");
                return NULL;
        }
        return d;
}

#define CFG_HEAD "{\"architecture\":\"amd64\",\"os\":\"linux\",\"rootfs\":{\"type\":\"layers\",\"diff_ids\":[]},\"config\":"
#define CFG(x) CFG_HEAD x "}"

static char *join(char **v)
{
        static char buf[4096];
        buf[0] = 0;
        for (size_t i = 0; v && v[i]; i++) {
                if (i)
                        strcat(buf, "|");
                strncat(buf, v[i], sizeof(buf) - strlen(buf) - 2);
        }
        return buf;
}

static int make(const struct oci_image_doc *d, int root_fd, const struct moat_image_overrides *ov,
                struct moat_image_runtime_config **ret, struct moat_error **err)
{
        return moat_image_runtime_config_make(d ? oci_image_doc_config(d) : NULL, root_fd, ov, ret, err);
}

/* ---- Entrypoint / Cmd: docker's table ---- */

static void check_args(const char *cfg, const struct moat_image_overrides *ov, int root_fd, const char *want,
                       const char *what)
{
        _cleanup_oci_image_doc_ struct oci_image_doc *d = config(cfg);
        _cleanup_image_runtime_config_ struct moat_image_runtime_config *c = NULL;
        _cleanup_error_ struct moat_error *err = NULL;
        int r = d ? make(d, root_fd, ov, &c, &err) : -EINVAL;
        if (!want) {
                ok(r == -EINVAL && err && strstr(err->msg, "no command specified"), "%s: refused (%s)", what,
                   err ? err->msg : "no error");
                return;
        }
        is_str(r >= 0 ? join(c->args) : (err ? err->msg : "?"), want, "%s", what);
}

static void test_args(int root_fd)
{
        char *new_ep[] = { "/new", NULL };
        char *empty_ep[] = { "", NULL };
        char *none[] = { NULL };
        char *x[] = { "x", NULL };
        char *y[] = { "y", "z", NULL };
        const char *both = CFG("{\"Entrypoint\":[\"/ep\",\"a\"],\"Cmd\":[\"c1\",\"c2\"]}");
        const char *shell = CFG("{\"Entrypoint\":[\"/bin/sh\",\"-c\",\"exec_entry p1_entry\"],"
                                "\"Cmd\":[\"exec_cmd\",\"p1_cmd\"]}");
        const char *cmd_only = CFG("{\"Cmd\":[\"exec_cmd\",\"p1_cmd\"]}");
        const char *ep_only = CFG("{\"Entrypoint\":[\"exec_entry\",\"p1_entry\"]}");
        const char *neither = CFG("{\"Env\":[\"A=1\"]}");

        /* the image alone: the Dockerfile reference's table */
        check_args(neither, NULL, root_fd, NULL, "no ENTRYPOINT, no CMD");
        check_args(ep_only, NULL, root_fd, "exec_entry|p1_entry", "ENTRYPOINT only");
        check_args(cmd_only, NULL, root_fd, "exec_cmd|p1_cmd", "CMD only");
        check_args(both, NULL, root_fd, "/ep|a|c1|c2", "ENTRYPOINT + CMD concatenated");
        check_args(shell, NULL, root_fd, "/bin/sh|-c|exec_entry p1_entry|exec_cmd|p1_cmd",
                   "shell-form ENTRYPOINT + CMD");
        check_args(CFG_HEAD "null}", NULL, root_fd, NULL, "config null: no command");

        /* run-time overrides */
        struct moat_image_overrides o = { .cmd = x };
        check_args(both, &o, root_fd, "/ep|a|x", "cmd override replaces Cmd, keeps Entrypoint");
        check_args(neither, &o, root_fd, "x", "cmd override on an image without command");
        o = (struct moat_image_overrides) { .cmd = none };
        check_args(both, &o, root_fd, "/ep|a|c1|c2", "empty cmd override means none given");
        o = (struct moat_image_overrides) { .entrypoint = new_ep, .has_entrypoint = true };
        check_args(both, &o, root_fd, "/new", "entrypoint override clears the image Cmd");
        o.cmd = y;
        check_args(both, &o, root_fd, "/new|y|z", "entrypoint + cmd overrides");
        o = (struct moat_image_overrides) { .entrypoint = empty_ep, .has_entrypoint = true };
        check_args(both, &o, root_fd, "c1|c2", "--entrypoint \"\" keeps the image Cmd alone");
        check_args(ep_only, &o, root_fd, NULL, "--entrypoint \"\" on an Entrypoint-only image");
        o = (struct moat_image_overrides) { .entrypoint = none, .has_entrypoint = true, .cmd = y };
        check_args(both, &o, root_fd, "y|z", "empty entrypoint + cmd");
        check_args(CFG("{\"Entrypoint\":[\"\"]}"), NULL, root_fd, NULL, "empty program refused");
}

/* ---- env ---- */

static void test_env(int root_fd)
{
        _cleanup_oci_image_doc_ struct oci_image_doc *d =
                config(CFG("{\"Cmd\":[\"sh\"],\"Env\":[\"PATH=/img/bin\",\"FOO=1\",\"BAR=2\"]}"));
        _cleanup_oci_image_doc_ struct oci_image_doc *nopath = config(CFG("{\"Cmd\":[\"sh\"],\"Env\":[\"A=b=c\"]}"));
        char *ovenv[] = { "FOO=9", "NEW=x", "BAR", "GONE", NULL };
        struct moat_image_overrides o = { .env = ovenv, .hostname = "h1", .terminal = true };
        _cleanup_error_ struct moat_error *err = NULL;
        struct moat_image_runtime_config *c = NULL;

        ok(make(d, root_fd, &o, &c, &err) == 0, "env: made");
        is_str(c ? join(c->env) : "", "PATH=/img/bin|HOSTNAME=h1|TERM=xterm|FOO=9|NEW=x|HOME=/root",
               "image Env replaces PATH in place, overrides replace/append/remove, HOME from passwd");
        moat_image_runtime_config_free(c);
        c = NULL;

        ok(make(nopath, root_fd, NULL, &c, &err) == 0, "env: made without PATH");
        is_str(c ? join(c->env) : "",
               "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin|A=b=c|HOME=/root",
               "PATH default when the image has none; value with '=' kept whole");
        moat_image_runtime_config_free(c);
        c = NULL;

        char *home[] = { "HOME=/elsewhere", NULL };
        o = (struct moat_image_overrides) { .env = home, .user = "app" };
        ok(make(nopath, root_fd, &o, &c, &err) == 0, "env: made with HOME");
        is_str(c ? join(c->env) : "", "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin|HOME=/elsewhere|A=b=c",
               "HOME given is not replaced by the passwd home; run-time variables before the image's, as moby");
        moat_image_runtime_config_free(c);
        c = NULL;

        char *bad[] = { "=x", NULL };
        o = (struct moat_image_overrides) { .env = bad };
        int r = make(nopath, root_fd, &o, &c, &err);
        ok(r == -EINVAL && err && strstr(err->msg, "\"=x\""), "env without a name refused (%s)",
           err ? err->msg : "");
}

/* ---- working directory ---- */

static void check_cwd(const char *image_wd, const char *override, const char *want, int root_fd)
{
        char buf[512];
        snprintf(buf, sizeof(buf), CFG("{\"Cmd\":[\"sh\"]%s%s%s}"), image_wd ? ",\"WorkingDir\":\"" : "",
                 image_wd ? image_wd : "", image_wd ? "\"" : "");
        _cleanup_oci_image_doc_ struct oci_image_doc *d = config(buf);
        _cleanup_image_runtime_config_ struct moat_image_runtime_config *c = NULL;
        _cleanup_error_ struct moat_error *err = NULL;
        struct moat_image_overrides o = { .working_dir = override };
        int r = d ? make(d, root_fd, &o, &c, &err) : -999;
        const char *wd = override ? override : image_wd;
        if (!want)
                ok(r == -EINVAL && err && strstr(err->msg, "not an absolute path") && strstr(err->msg, wd),
                   "working dir %s refused (%s)", wd, err ? err->msg : "");
        else
                is_str(r == 0 ? c->cwd : (err ? err->msg : "?"), want, "working dir %s/%s", image_wd ? image_wd : "-",
                       override ? override : "-");
}

static void test_cwd(int root_fd)
{
        check_cwd(NULL, NULL, "/", root_fd);
        check_cwd("/srv/app", NULL, "/srv/app", root_fd);
        check_cwd("/a/./b//../c/", NULL, "/a/c", root_fd);
        check_cwd("/..", NULL, "/", root_fd);
        check_cwd("/srv", "/override", "/override", root_fd);
        check_cwd("relative/dir", NULL, NULL, root_fd);
        check_cwd("/srv", "work", NULL, root_fd);
}

/* ---- users ---- */

struct user_case {
        const char *spec;
        int r;
        uint32_t uid, gid;
        const char *gids; /* additional, comma-joined */
        const char *name, *home;
        const char *msg1, *msg2; /* substrings of the error */
};

static void check_user(int root_fd, const struct user_case *t, const char *label)
{
        _cleanup_oci_image_doc_ struct oci_image_doc *d = config(CFG("{\"Cmd\":[\"sh\"]}"));
        _cleanup_image_runtime_config_ struct moat_image_runtime_config *c = NULL;
        _cleanup_error_ struct moat_error *err = NULL;
        struct moat_image_overrides o = { .user = t->spec };
        int r = make(d, root_fd, &o, &c, &err);

        if (t->r < 0) {
                ok(r == t->r && err && strstr(err->msg, t->msg1) && (!t->msg2 || strstr(err->msg, t->msg2)),
                   "%s user \"%s\" refused: %d (%s)", label, t->spec ? t->spec : "(none)", r, err ? err->msg : "");
                return;
        }
        if (r < 0) {
                ok(false, "%s user \"%s\": %s", label, t->spec ? t->spec : "(none)", err ? err->msg : "?");
                return;
        }
        char g[256] = "";
        for (size_t i = 0; i < c->n_additional_gids; i++)
                snprintf(g + strlen(g), sizeof(g) - strlen(g), "%s%u", i ? "," : "", c->additional_gids[i]);
        char hm[256];
        snprintf(hm, sizeof(hm), "HOME=%s", t->home);
        bool home_env = false;
        for (size_t i = 0; c->env[i]; i++)
                home_env = home_env || streq(c->env[i], hm);
        ok(c->uid == t->uid && c->gid == t->gid && streq(g, t->gids) &&
                   (t->name ? c->user_name && streq(c->user_name, t->name) : !c->user_name) &&
                   streq(c->home, t->home) && home_env,
           "%s user \"%s\" -> %u:%u [%s] %s %s", label, t->spec ? t->spec : "(none)", c->uid, c->gid, g,
           c->user_name ? c->user_name : "(none)", c->home);
}

static void test_users(int root_fd)
{
        static const struct user_case cases[] = {
                { NULL, 0, 0, 0, "", "root", "/root", NULL, NULL },
                { "", 0, 0, 0, "", "root", "/root", NULL, NULL },
                { "app", 0, 1000, 1000, "10,29", "app", "/home/app", NULL, NULL },
                { "1000", 0, 1000, 1000, "10,29", "app", "/home/app", NULL, NULL },
                { "daemon", 0, 1, 1, "", "daemon", "/usr/sbin", NULL, NULL },
                { "nohome", 0, 1001, 1001, "", "nohome", "/", NULL, NULL },
                { "app:staff", 0, 1000, 50, "", "app", "/home/app", NULL, NULL },
                { "1000:50", 0, 1000, 50, "", "app", "/home/app", NULL, NULL },
                { "app:50", 0, 1000, 50, "", "app", "/home/app", NULL, NULL },
                { "1000:staff", 0, 1000, 50, "", "app", "/home/app", NULL, NULL },
                { "app:777", 0, 1000, 777, "", "app", "/home/app", NULL, NULL },
                { "4242", 0, 4242, 0, "", NULL, "/", NULL, NULL },
                { "4242:777", 0, 4242, 777, "", NULL, "/", NULL, NULL },
                { "4242:staff", 0, 4242, 50, "", NULL, "/", NULL, NULL },
                { "nobody", -ENOENT, 0, 0, NULL, NULL, NULL, "\"nobody\"", "/etc/passwd" },
                { "broken", -ENOENT, 0, 0, NULL, NULL, NULL, "\"broken\"", "/etc/passwd" },
                { "app:nogroup", -ENOENT, 0, 0, NULL, NULL, NULL, "\"nogroup\"", "/etc/group" },
                { "4242:nogroup", -ENOENT, 0, 0, NULL, NULL, NULL, "\"nogroup\"", "/etc/group" },
                { ":staff", -EINVAL, 0, 0, NULL, NULL, NULL, "\":staff\"", NULL },
                { "app:", -EINVAL, 0, 0, NULL, NULL, NULL, "\"app:\"", NULL },
                { "4294967296", -EINVAL, 0, 0, NULL, NULL, NULL, "out of range", NULL },
                { "2147483648", -EINVAL, 0, 0, NULL, NULL, NULL, "out of range", NULL },
                { "1:2147483648", -EINVAL, 0, 0, NULL, NULL, NULL, "out of range", NULL },
        };
        for (size_t i = 0; i < ELEMENTSOF(cases); i++)
                check_user(root_fd, &cases[i], "passwd+group:");

        /* the image's User is used unless overridden */
        _cleanup_oci_image_doc_ struct oci_image_doc *d = config(CFG("{\"Cmd\":[\"sh\"],\"User\":\"app:staff\"}"));
        _cleanup_error_ struct moat_error *err = NULL;
        struct moat_image_runtime_config *c = NULL;
        ok(make(d, root_fd, NULL, &c, &err) == 0 && c->uid == 1000 && c->gid == 50, "image User used");
        moat_image_runtime_config_free(c);
        c = NULL;
        struct moat_image_overrides o = { .user = "daemon" };
        ok(make(d, root_fd, &o, &c, &err) == 0 && c->uid == 1 && c->gid == 1, "override user wins over image User");
        moat_image_runtime_config_free(c);
}

static void test_hostile(void)
{
        char p[600], outside[256];
        _cleanup_error_ struct moat_error *err = NULL;

        /* a file outside every root, with an entry a leak would show */
        snprintf(outside, sizeof(outside), "%s/outside", tmpdir);
        int ofd = make_root("outside", "evil:x:4000:4000::/evil:/bin/sh\n", "evilg:x:4000:app\n");
        ok(ofd >= 0, "outside files written");
        close(ofd);

        /* no etc at all: numeric users work, names are unknown */
        int none = make_root("empty", NULL, NULL);
        const struct user_case absent[] = {
                { NULL, 0, 0, 0, "", NULL, "/", NULL, NULL },
                { "5:6", 0, 5, 6, "", NULL, "/", NULL, NULL },
                { "root", -ENOENT, 0, 0, NULL, NULL, NULL, "\"root\"", "absent" },
                { "5:wheel", -ENOENT, 0, 0, NULL, NULL, NULL, "\"wheel\"", "/etc/group" },
        };
        for (size_t i = 0; i < ELEMENTSOF(absent); i++)
                check_user(none, &absent[i], "no /etc:");
        close(none);

        /* etc/passwd -> /etc/passwd (the host's path): resolves to itself
         * inside the root, never the host's root/daemon entries */
        int loop = make_root("loop", NULL, NULL);
        ok(loop >= 0 && mkdirat(loop, "etc", 0755) == 0 && symlinkat("/etc/passwd", loop, "etc/passwd") == 0 &&
                   symlinkat("/etc/group", loop, "etc/group") == 0,
           "etc/passwd -> /etc/passwd planted");
        const struct user_case loopc[] = {
                { "daemon", -ENOENT, 0, 0, NULL, NULL, NULL, "unknown user \"daemon\"", "/etc/passwd" },
                { "root", -ENOENT, 0, 0, NULL, NULL, NULL, "unknown user \"root\"", "/etc/passwd" },
                { NULL, 0, 0, 0, "", NULL, "/", NULL, NULL },
        };
        for (size_t i = 0; i < ELEMENTSOF(loopc); i++)
                check_user(loop, &loopc[i], "symlink to host /etc/passwd:");
        close(loop);

        /* absolute and ../ symlinks to a real file outside the root */
        int abs = make_root("abs", NULL, NULL);
        snprintf(p, sizeof(p), "%s/etc/passwd", outside);
        ok(abs >= 0 && mkdirat(abs, "etc", 0755) == 0 && symlinkat(p, abs, "etc/passwd") == 0,
           "etc/passwd -> %s planted", p);
        const struct user_case outc = { "evil", -ENOENT, 0, 0, NULL, NULL, NULL, "unknown user \"evil\"", NULL };
        check_user(abs, &outc, "absolute symlink out:");
        close(abs);

        int rel = make_root("rel", NULL, NULL);
        ok(rel >= 0 && symlinkat("../../../../../../../../../../../../../../outside/etc", rel, "etc") == 0,
           "etc -> ../../outside/etc planted");
        check_user(rel, &outc, "relative symlink out:");
        close(rel);

        /* a 2 MiB passwd is refused, not read */
        int big = make_root("big", NULL, NULL);
        size_t n = 2u * 1024u * 1024u;
        char *buf = malloc(n);
        ok(buf && big >= 0 && mkdirat(big, "etc", 0755) == 0, "big root prepared");
        if (buf) {
                memset(buf, '#', n);
                buf[n - 1] = '\n';
                _cleanup_close_ int etc = openat(big, "etc", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
                ok(etc >= 0 && write_file_replace_at(etc, "passwd", buf, n, 0644) == 0, "2 MiB passwd written");
                free(buf);
        }
        _cleanup_oci_image_doc_ struct oci_image_doc *d = config(CFG("{\"Cmd\":[\"sh\"]}"));
        struct moat_image_runtime_config *c = NULL;
        int r = make(d, big, NULL, &c, &err);
        ok(r == -EFBIG && err && strstr(err->msg, "/etc/passwd") && strstr(err->msg, "1048576"),
           "2 MiB passwd refused (%s)", err ? err->msg : "");
        moat_image_runtime_config_free(c);
        c = NULL;
        close(big);

        /* a FIFO is not opened (it would block) */
        moat_error_free(err);
        err = NULL;
        int fifo = make_root("fifo", NULL, NULL);
        ok(fifo >= 0 && mkdirat(fifo, "etc", 0755) == 0 && mkfifoat(fifo, "etc/passwd", 0644) == 0,
           "etc/passwd FIFO planted");
        r = make(d, fifo, NULL, &c, &err);
        ok(r == -EINVAL && err && strstr(err->msg, "not a regular file"), "FIFO passwd refused (%s)",
           err ? err->msg : "");
        moat_image_runtime_config_free(c);
        close(fifo);
}

/* ---- passthrough fields ---- */

static void test_passthrough(int root_fd)
{
        _cleanup_oci_image_doc_ struct oci_image_doc *d =
                config(CFG("{\"Cmd\":[\"sh\"],\"ExposedPorts\":{\"80/tcp\":{},\"53/udp\":{}},"
                           "\"Volumes\":{\"/data\":{},\"/var/log\":{}},\"Labels\":{\"a\":\"1\",\"b\":\"two\"},"
                           "\"StopSignal\":\"SIGQUIT\",\"Healthcheck\":{\"Test\":[\"CMD\",\"true\"],\"Retries\":3}}"));
        _cleanup_error_ struct moat_error *err = NULL;
        _cleanup_image_runtime_config_ struct moat_image_runtime_config *c = NULL;

        if (!d || make(d, root_fd, NULL, &c, &err) < 0) {
                ok(false, "passthrough config: %s", err ? err->msg : "parse failed");
                return;
        }
        char *ports = join(c->exposed_ports);
        ok(strlen(ports) == strlen("80/tcp|53/udp") && strstr(ports, "80/tcp") && strstr(ports, "53/udp"),
           "exposed ports: %s", ports);
        char *vols = join(c->volumes);
        ok(strlen(vols) == strlen("/data|/var/log") && strstr(vols, "/data") && strstr(vols, "/var/log"),
           "volumes: %s", vols);
        is_int(c->n_labels, 2, "two labels");
        const char *a = oci_key_value_find(c->labels, c->n_labels, "a");
        const char *b = oci_key_value_find(c->labels, c->n_labels, "b");
        ok(a && b && streq(a, "1") && streq(b, "two"), "labels a=1 b=two");
        is_str(c->stop_signal, "SIGQUIT", "stop signal text");
        is_int(c->stop_signal_number, SIGQUIT, "stop signal number");
        ok(json_is_object(c->healthcheck) &&
                   json_integer_value(json_object_get(c->healthcheck, "Retries")) == 3,
           "healthcheck passed through");

        /* the healthcheck outlives the document */
        json_t *hc = json_incref(c->healthcheck);
        oci_image_doc_free(d);
        d = NULL;
        ok(json_is_array(json_object_get(hc, "Test")), "healthcheck kept after the document is freed");
        json_decref(hc);

        _cleanup_oci_image_doc_ struct oci_image_doc *plain = config(CFG("{\"Cmd\":[\"sh\"],\"StopSignal\":\"SIGBOGUS\"}"));
        _cleanup_image_runtime_config_ struct moat_image_runtime_config *p = NULL;
        ok(plain && make(plain, root_fd, NULL, &p, &err) == 0, "plain config made");
        if (p)
                ok(p->exposed_ports && !p->exposed_ports[0] && p->volumes && !p->volumes[0] && p->n_labels == 0 &&
                           !p->healthcheck && streq(p->stop_signal, "SIGBOGUS") && p->stop_signal_number == 0,
                   "absent fields empty; unknown stop signal kept as text with number 0");

        struct moat_image_runtime_config *q = NULL;
        ok(make(NULL, root_fd, &(struct moat_image_overrides) { .cmd = (char *[]) { "x", NULL } }, &q, &err) == 0 &&
                   !q->stop_signal && q->stop_signal_number == SIGTERM,
           "no image config: SIGTERM default");
        moat_image_runtime_config_free(q);

        static const struct {
                const char *s;
                int n;
        } sigs[] = {
                { "SIGKILL", SIGKILL }, { "term", SIGTERM }, { "9", 9 },   { "SIGRTMIN", 34 }, { "RTMIN+3", 37 },
                { "SIGRTMAX-1", 63 },   { "sigwinch", SIGWINCH }, { "0", -EINVAL }, { "65", -EINVAL },
                { "FOO", -EINVAL },     { "SIGRTMIN-1", -EINVAL },  { "RTMAX+1", -EINVAL }, { "", -EINVAL },
                { "-9", -EINVAL },      { "RTMIN+31", -EINVAL },
        };
        for (size_t i = 0; i < ELEMENTSOF(sigs); i++) {
                int n = 0;
                int r = moat_signal_from_string(sigs[i].s, &n);
                is_int(r < 0 ? r : n, sigs[i].n, "signal \"%s\"", sigs[i].s);
        }
}

/* ---- into a runtime config ---- */

static void test_spec(int root_fd)
{
        _cleanup_oci_image_doc_ struct oci_image_doc *d =
                config(CFG("{\"Entrypoint\":[\"/bin/app\"],\"Cmd\":[\"--serve\"],\"Env\":[\"X=1\"],"
                           "\"WorkingDir\":\"/srv\",\"User\":\"app\"}"));
        _cleanup_error_ struct moat_error *err = NULL;
        _cleanup_image_runtime_config_ struct moat_image_runtime_config *c = NULL;
        json_error_t je;
        json_t *spec = json_loads("{\"ociVersion\":\"1.0.2\",\"process\":{\"terminal\":false,"
                                  "\"user\":{\"uid\":5,\"gid\":5,\"umask\":18,\"additionalGids\":[99]},"
                                  "\"args\":[\"sh\"],\"capabilities\":{\"bounding\":[]},\"noNewPrivileges\":true},"
                                  "\"root\":{\"path\":\"rootfs\"}}",
                                  0, &je);

        if (!d || !spec || make(d, root_fd, NULL, &c, &err) < 0) {
                ok(false, "spec: setup (%s)", err ? err->msg : "");
                json_decref(spec);
                return;
        }
        ok(moat_image_runtime_config_to_spec(c, spec, &err) == 0, "process written into the spec");
        json_t *p = json_object_get(spec, "process");
        json_t *u = json_object_get(p, "user");
        char *s = json_dumps(json_object_get(p, "args"), JSON_COMPACT);
        is_str(s, "[\"/bin/app\",\"--serve\"]", "process.args");
        free(s);
        s = json_dumps(json_object_get(p, "env"), JSON_COMPACT);
        is_str(s, "[\"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin\",\"X=1\",\"HOME=/home/app\"]",
               "process.env");
        free(s);
        is_str(json_string_value(json_object_get(p, "cwd")), "/srv", "process.cwd");
        is_int(json_integer_value(json_object_get(u, "uid")), 1000, "process.user.uid");
        is_int(json_integer_value(json_object_get(u, "gid")), 1000, "process.user.gid");
        s = json_dumps(json_object_get(u, "additionalGids"), JSON_COMPACT);
        is_str(s, "[10,29]", "process.user.additionalGids replaced");
        free(s);
        ok(json_integer_value(json_object_get(u, "umask")) == 18 && json_object_get(p, "capabilities") &&
                   json_is_true(json_object_get(p, "noNewPrivileges")) && json_object_get(spec, "root"),
           "other members kept");
        json_decref(spec);

        /* a user without groups drops a stale additionalGids; missing objects are created */
        _cleanup_image_runtime_config_ struct moat_image_runtime_config *c2 = NULL;
        struct moat_image_overrides o = { .user = "daemon" };
        spec = json_loads("{\"process\":{\"user\":{\"uid\":0,\"gid\":0,\"additionalGids\":[1]}}}", 0, &je);
        ok(make(d, root_fd, &o, &c2, &err) == 0 && moat_image_runtime_config_to_spec(c2, spec, &err) == 0 &&
                   !json_object_get(json_object_get(json_object_get(spec, "process"), "user"), "additionalGids"),
           "additionalGids removed when the user has none");
        json_decref(spec);
        spec = json_object();
        ok(moat_image_runtime_config_to_spec(c2, spec, &err) == 0 &&
                   json_integer_value(json_object_get(json_object_get(json_object_get(spec, "process"), "user"), "uid")) == 1,
           "process and user created when absent");
        json_decref(spec);
        spec = json_loads("{\"process\":\"no\"}", 0, &je);
        int r = moat_image_runtime_config_to_spec(c2, spec, &err);
        ok(r == -EINVAL && err && strstr(err->msg, "process"), "non-object process refused (%s)", err ? err->msg : "");
        json_decref(spec);
}

int main(void)
{
        if (!mkdtemp(tmpdir)) {
                printf("Bail out! mkdtemp: %m\n");
                return 1;
        }
        int root_fd = make_root("root", PASSWD, GROUP);
        if (root_fd < 0) {
                printf("Bail out! root: %m\n");
                return 1;
        }

        test_args(root_fd);
        test_env(root_fd);
        test_cwd(root_fd);
        test_users(root_fd);
        test_hostile();
        test_passthrough(root_fd);
        test_spec(root_fd);
        close(root_fd);

        char cmd[600];
        snprintf(cmd, sizeof(cmd), "rm -rf -- '%s'", tmpdir);
        if (system(cmd) != 0) {
                printf("Bail out! cleanup of %s failed\n", tmpdir);
                return 1;
        }
        return tap_done();
}
