/* SPDX-License-Identifier: Apache-2.0 */
#include "base/compat.h"

/*
 * Containers as Docker's JSON: inspect (GET /containers/{id}/json) and
 * the list (GET /containers/json) with docker ps's filters. Every member
 * the docker CLI dereferences is always present (State, Config,
 * HostConfig, NetworkSettings.Ports), as research/engine.md §1.5 notes.
 */

#include "engine/engine-internal.h"

#include <fcntl.h>
#include <fnmatch.h>
#include <regex.h>
#include <stdio.h>
#include <string.h>

#include "base/cleanup.h"
#include "engine/engine-images.h"

#define MAX_FILTER_VALUES 64

static const char *status_word(const struct container *c)
{
        return moat_container_state_to_string(c->st.state);
}

static json_t *network_settings(const struct container *c)
{
        const char *mode = json_string_value(json_object_get(c->host_config, "NetworkMode"));
        json_t *networks = json_object();

        if (!mode || !*mode)
                mode = "none";
        if (!startswith(mode, "container:"))
                json_object_set_new(networks, mode,
                                    json_pack("{s:n, s:n, s:n, s:s, s:s, s:s, s:s, s:i, s:s, s:s, s:i, s:s, s:n}",
                                              "IPAMConfig", "Links", "Aliases", "NetworkID", "", "EndpointID", "",
                                              "Gateway", "", "IPAddress", "", "IPPrefixLen", 0, "IPv6Gateway", "",
                                              "GlobalIPv6Address", "", "GlobalIPv6PrefixLen", 0, "MacAddress", "",
                                              "DriverOpts"));
        return json_pack("{s:s, s:s, s:s, s:o, s:o, s:s, s:s, s:s, s:i, s:s, s:s, s:i, s:s, s:o}", "Bridge", "",
                         "SandboxID", "", "SandboxKey", "", "Ports", json_object(), "Networks", networks,
                         "EndpointID", "", "Gateway", "", "IPAddress", "", "IPPrefixLen", 0, "IPv6Gateway", "",
                         "GlobalIPv6Address", "", "GlobalIPv6PrefixLen", 0, "MacAddress", "", "SecondaryIPAddresses",
                         json_null());
}

/* docker's ExecIDs: the exec instances not ended yet (created or running);
 * null when there are none. */
static json_t *exec_ids(struct moat_engine *e, const struct container *c)
{
        struct moat_db_exec *v = NULL;
        size_t n = 0;
        json_t *ids = NULL;

        if (moat_db_exec_list(e->db, c->id, &v, &n, NULL) < 0)
                return json_null();
        for (size_t i = 0; i < n; i++) {
                if (v[i].exit_code >= 0)
                        continue;
                if (!ids)
                        ids = json_array();
                if (ids)
                        json_array_append_new(ids, json_string(v[i].id));
        }
        moat_db_execs_free(v, n);
        return ids ? ids : json_null();
}

static json_t *inspect_locked(struct moat_engine *e, const struct container *c)
{
        char created[40], started[40], finished[40];
        _cleanup_free_ char *dir = NULL;
        char name[MOAT_DB_NAME_MAX + 2];
        bool running = container_is_running(c); /* docker: a restarting container is Running too */

        engine_format_time(c->created_ns, created);
        engine_format_time(c->st.started_ns, started);
        engine_format_time(c->st.finished_ns, finished);
        snprintf(name, sizeof(name), "/%s", c->name);
        _cleanup_free_ char *run_dir = NULL;
        if (asprintf(&dir, "%s/containers/%s", e->data_root, c->id) < 0 || engine_run_dir_path(e, c->id, &run_dir, NULL) < 0)
                return NULL;
        json_t *state = json_pack("{s:s, s:b, s:b, s:b, s:b, s:b, s:b, s:i, s:i, s:s, s:s, s:s}", "Status",
                                  status_word(c), "Running", running, "Paused",
                                  c->st.state == MOAT_CONTAINER_PAUSED, "Restarting",
                                  c->st.state == MOAT_CONTAINER_RESTARTING, "OOMKilled", c->st.oom_killed, "Dead",
                                  c->st.state == MOAT_CONTAINER_DEAD, "RemovalInProgress",
                                  c->st.state == MOAT_CONTAINER_REMOVING, "Pid", running ? (json_int_t) c->st.pid : 0,
                                  "ExitCode", (json_int_t) c->st.exit_code, "Error",
                                  c->st.error ? c->st.error : "", "StartedAt", started, "FinishedAt", finished);
        if (c->health)
                json_object_set(state, "Health", c->health);
        json_t *graph = json_pack("{s:{s:s+, s:s+, s:s+}, s:s}", "Data", "UpperDir", dir, "/upper", "WorkDir", dir,
                                  "/work", "MergedDir", dir, "/rootfs", "Name", "overlay");
        json_t *doc = json_object();
        json_object_set_new(doc, "Id", json_string(c->id));
        json_object_set_new(doc, "Created", json_string(created));
        json_object_set_new(doc, "Path", json_string(c->path ? c->path : ""));
        json_object_set_new(doc, "Args", c->args ? json_incref(c->args) : json_array());
        json_object_set_new(doc, "State", state);
        json_object_set_new(doc, "Image", json_string(c->image_id));
        json_object_set_new(doc, "ResolvConfPath", json_pack("s+", run_dir, "/resolv.conf"));
        json_object_set_new(doc, "HostnamePath", json_pack("s+", run_dir, "/hostname"));
        json_object_set_new(doc, "HostsPath", json_pack("s+", run_dir, "/hosts"));
        json_object_set_new(doc, "LogPath", json_pack("s+++", dir, "/", c->id, "-json.log"));
        json_object_set_new(doc, "Name", json_string(name));
        json_object_set_new(doc, "RestartCount", json_integer(c->st.restart_count));
        json_object_set_new(doc, "Driver", json_string("overlay"));
        json_object_set_new(doc, "Platform", json_string("linux"));
        json_object_set_new(doc, "MountLabel", json_string(""));
        json_object_set_new(doc, "ProcessLabel", json_string(""));
        json_object_set_new(doc, "AppArmorProfile", json_string(""));
        json_object_set_new(doc, "ExecIDs", exec_ids(e, c));
        json_object_set_new(doc, "HostConfig", json_incref(c->host_config));
        json_object_set_new(doc, "GraphDriver", graph);
        json_object_set_new(doc, "Mounts", c->mounts ? json_incref(c->mounts) : json_array());
        json_object_set_new(doc, "Config", json_incref(c->config));
        json_object_set_new(doc, "NetworkSettings", network_settings(c));
        return doc;
}

int moat_engine_inspect(struct moat_engine *e, const char *ref, json_t **ret, struct moat_error **reterr)
{
        struct container *c;
        int r;

        pthread_mutex_lock(&e->lock);
        r = container_find_locked(e, ref, &c, reterr);
        if (r >= 0 && !(*ret = inspect_locked(e, c)))
                r = moat_error_set(reterr, -ENOMEM, "inspect %s", ref);
        pthread_mutex_unlock(&e->lock);
        return r;
}

/* docker's SizeRw is directory.Size of the writable layer (overlay2's
 * diff dir, here upper/): whiteouts are 0-byte devices and opaque marks
 * are xattrs, so neither counts. SizeRootFs adds the image's Size as
 * GET /images/json reports it. The walk runs without the lock; a
 * container removed meanwhile is -ENOENT. */
int moat_engine_container_size(struct moat_engine *e, const char *ref, int64_t *ret_rw, int64_t *ret_rootfs,
                               struct moat_error **reterr)
{
        _cleanup_free_ char *id = NULL, *image_id = NULL;
        _cleanup_image_ struct moat_image *img = NULL;
        _cleanup_close_ int dir_fd = -EBADF;
        struct container *c;
        int64_t rw = 0, image_size = 0;
        int r;

        pthread_mutex_lock(&e->lock);
        r = container_find_locked(e, ref, &c, reterr);
        if (r >= 0) {
                id = strdup(c->id);
                image_id = strdup(c->image_id);
                if (!id || !image_id)
                        r = moat_error_set(reterr, -ENOMEM, "size of %s", ref);
        }
        pthread_mutex_unlock(&e->lock);
        if (r < 0)
                return r;
        dir_fd = openat(e->containers_fd, id, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (dir_fd < 0)
                return moat_error_set(reterr, errno, "opening containers/%s", id);
        r = moat_engine_tree_size(dir_fd, "upper", &rw);
        if (r == -E2BIG || r == -ELOOP)
                return moat_error_setx(reterr, r, "size of containers/%s/upper: more than %u entries or %u levels",
                                       id, MOAT_ENGINE_TREE_WALK_MAX_ENTRIES, MOAT_ENGINE_TREE_WALK_MAX_DEPTH);
        if (r < 0)
                return moat_error_set(reterr, r, "size of containers/%s/upper", id);
        /* An image removed under a stopped container (rmi -f) leaves SizeRw. */
        if (moat_images_lookup(e->store, image_id, NULL, &img, NULL) >= 0)
                for (size_t i = 0; i < img->manifest->n_layers; i++)
                        if (img->manifest->layers[i].size > 0)
                                image_size += img->manifest->layers[i].size;
        *ret_rw = rw;
        *ret_rootfs = rw + image_size;
        return 0;
}

/* "Up 5 seconds", "Exited (0) 3 minutes ago", "Created": docker's
 * units.HumanDuration. */
static void human_duration(int64_t ns, char *buf, size_t len)
{
        int64_t s = ns / 1000000000;

        if (s < 1)
                snprintf(buf, len, "Less than a second");
        else if (s == 1)
                snprintf(buf, len, "1 second");
        else if (s < 60)
                snprintf(buf, len, "%lld seconds", (long long) s);
        else if (s / 60 == 1)
                snprintf(buf, len, "About a minute");
        else if (s < 3600)
                snprintf(buf, len, "%lld minutes", (long long) (s / 60));
        else if (s / 3600 == 1)
                snprintf(buf, len, "About an hour");
        else if (s < 48 * 3600)
                snprintf(buf, len, "%lld hours", (long long) (s / 3600));
        else if (s < 7 * 24 * 3600 * 2)
                snprintf(buf, len, "%lld days", (long long) (s / 86400));
        else if (s < 30 * 24 * 3600 * 3)
                snprintf(buf, len, "%lld weeks", (long long) (s / (7 * 86400)));
        else if (s < 365 * 24 * 3600 * 2)
                snprintf(buf, len, "%lld months", (long long) (s / (30 * 86400)));
        else
                snprintf(buf, len, "%lld years", (long long) (s / (365 * 86400)));
}

static void status_text(const struct container *c, char *buf, size_t len)
{
        char d[64];
        int64_t now = engine_now_ns();

        switch (c->st.state) {
        case MOAT_CONTAINER_RUNNING:
        case MOAT_CONTAINER_PAUSED: {
                const char *health = json_string_value(json_object_get(c->health, "Status"));
                char h[32] = "";
                if (health)
                        snprintf(h, sizeof(h), streq(health, "starting") ? " (health: %s)" : " (%s)", health);
                human_duration(now - c->st.started_ns, d, sizeof(d));
                snprintf(buf, len, "Up %s%s%s", d, c->st.state == MOAT_CONTAINER_PAUSED ? " (Paused)" : "", h);
                break;
        }
        case MOAT_CONTAINER_RESTARTING:
                human_duration(now - c->st.finished_ns, d, sizeof(d));
                snprintf(buf, len, "Restarting (%d) %s ago", c->st.exit_code, d);
                break;
        case MOAT_CONTAINER_EXITED:
                human_duration(now - c->st.finished_ns, d, sizeof(d));
                snprintf(buf, len, "Exited (%d) %s ago", c->st.exit_code, d);
                break;
        case MOAT_CONTAINER_REMOVING:
                snprintf(buf, len, "Removal In Progress");
                break;
        case MOAT_CONTAINER_DEAD:
                snprintf(buf, len, "Dead");
                break;
        default:
                snprintf(buf, len, "Created");
        }
}

static json_t *summary_locked(const struct container *c)
{
        char status[128];
        _cleanup_free_ char *command = NULL;
        size_t size = 0;
        FILE *f = open_memstream(&command, &size);
        size_t i;
        json_t *a;

        if (!f)
                return NULL;
        fputs(c->path ? c->path : "", f);
        json_array_foreach(c->args, i, a)
                if (json_is_string(a))
                        fprintf(f, " %s", json_string_value(a));
        if (fclose(f) != 0)
                return NULL;
        status_text(c, status, sizeof(status));
        const char *mode = json_string_value(json_object_get(c->host_config, "NetworkMode"));
        json_t *labels = json_object_get(c->config, "Labels");
        return json_pack("{s:s, s:[s++], s:s, s:s, s:s, s:I, s:[], s:O, s:s, s:s, s:{s:s}, s:{s:o}, s:O}", "Id", c->id,
                         "Names", "/", c->name, "", "Image", c->image, "ImageID", c->image_id, "Command", command,
                         "Created", (json_int_t) (c->created_ns / 1000000000), "Ports", "Labels",
                         json_is_object(labels) ? labels : json_object(), "State", status_word(c), "Status", status,
                         "HostConfig", "NetworkMode", mode ? mode : "none", "NetworkSettings", "Networks",
                         json_object(), "Mounts", c->mounts ? c->mounts : json_array());
}

/* Docker's filters come as {"key":{"value":true}} or, from old clients,
 * {"key":["value"]}; this collects the values of key. */
static size_t filter_values(const json_t *filters, const char *key, const char *out[MAX_FILTER_VALUES])
{
        json_t *v = json_object_get(filters, key);
        size_t n = 0;

        if (json_is_object(v)) {
                const char *k;
                json_t *x;
                json_object_foreach(v, k, x)
                        if (n < MAX_FILTER_VALUES && json_is_true(x))
                                out[n++] = k;
        } else if (json_is_array(v)) {
                size_t i;
                json_t *x;
                json_array_foreach(v, i, x)
                        if (n < MAX_FILTER_VALUES && json_is_string(x))
                                out[n++] = json_string_value(x);
        }
        return n;
}

/* docker ps --filter name=: a regular expression matched against the name
 * with and without its leading "/"; a malformed one matches as text. */
static bool name_matches(const char *name, const char *pattern)
{
        char slashed[MOAT_DB_NAME_MAX + 2];
        regex_t re;

        snprintf(slashed, sizeof(slashed), "/%s", name);
        if (strlen(pattern) > 1024)
                return false;
        if (regcomp(&re, pattern, REG_EXTENDED | REG_NOSUB) != 0)
                return strstr(slashed, pattern) != NULL;
        bool m = regexec(&re, slashed, 0, NULL, 0) == 0 || regexec(&re, name, 0, NULL, 0) == 0;
        regfree(&re);
        return m;
}

static bool label_matches(const struct container *c, const char *want)
{
        json_t *labels = json_object_get(c->config, "Labels");
        const char *eq = strchr(want, '=');
        _cleanup_free_ char *key = eq ? strndup(want, (size_t) (eq - want)) : strdup(want);

        if (!key)
                return false;
        json_t *v = json_object_get(labels, key);
        if (!json_is_string(v))
                return false;
        return !eq || streq(json_string_value(v), eq + 1);
}

static bool matches(const struct container *c, const json_t *filters)
{
        const char *v[MAX_FILTER_VALUES];
        size_t n;
        bool any;

        if (!filters)
                return true;
#define ANY(key, expr)                                  \
        n = filter_values(filters, key, v);             \
        any = n == 0;                                   \
        for (size_t i = 0; i < n && !any; i++)          \
                any = (expr);                           \
        if (!any)                                       \
                return false;
        ANY("id", startswith(c->id, v[i]));
        ANY("name", name_matches(c->name, v[i]));
        ANY("status", streq(status_word(c), v[i]));
        ANY("exited", c->st.state == MOAT_CONTAINER_EXITED && atoi(v[i]) == c->st.exit_code);
        ANY("health", json_object_get(c->health, "Status") ? streq(json_string_value(json_object_get(c->health, "Status")), v[i])
                                                          : streq(v[i], "none"));
        ANY("ancestor", streq(c->image, v[i]) || startswith(c->image_id, v[i]) ||
                                startswith(c->image_id + strlen("sha256:"), v[i]));
#undef ANY
        n = filter_values(filters, "label", v);
        for (size_t i = 0; i < n; i++)
                if (!label_matches(c, v[i]))
                        return false;
        return true;
}

int moat_engine_list(struct moat_engine *e, bool all, int limit, const json_t *filters, json_t **ret,
                     struct moat_error **reterr)
{
        static const char *const known[] = { "id", "name", "status", "exited", "ancestor", "label", "health" };
        json_t *list = json_array();
        const char *key;
        json_t *v;
        int r = 0;

        json_object_foreach((json_t *) filters, key, v) {
                bool ok = false;
                for (size_t i = 0; i < sizeof(known) / sizeof(known[0]); i++)
                        ok = ok || streq(key, known[i]);
                if (!ok) {
                        json_decref(list);
                        return moat_error_setx(reterr, -EINVAL, "invalid filter '%s'", key);
                }
        }
        pthread_mutex_lock(&e->lock);
        for (struct container *c = e->containers; c; c = c->next) {
                bool shown = all || c->st.state == MOAT_CONTAINER_RUNNING || c->st.state == MOAT_CONTAINER_PAUSED ||
                             c->st.state == MOAT_CONTAINER_RESTARTING ||
                             (filters && json_object_get(filters, "status"));
                if (!shown || !matches(c, filters))
                        continue;
                if (limit > 0 && json_array_size(list) >= (size_t) limit)
                        break;
                json_t *s = summary_locked(c);
                if (!s) {
                        r = moat_error_set(reterr, -ENOMEM, "container list");
                        break;
                }
                json_array_append_new(list, s);
        }
        pthread_mutex_unlock(&e->lock);
        if (r < 0) {
                json_decref(list);
                return r;
        }
        *ret = list;
        return 0;
}
