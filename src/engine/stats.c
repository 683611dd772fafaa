/* SPDX-License-Identifier: Apache-2.0 */
#include "base/compat.h"

/*
 * docker stats (engine.h): the runtime reads the cgroup files (runc's
 * events --stats shape, on v1 and v2); this file renames them into
 * Docker's StatsResponse and adds what Docker adds: the host's total CPU
 * time (system_cpu_usage, from /proc/stat, so the CLI can compute a CPU
 * percentage), online CPUs, and a memory limit capped to the host's RAM.
 */

#include "engine/engine-internal.h"

#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "base/cleanup.h"
#include "base/fileio.h"
#include "runtime/runtime.h"

static json_int_t u64(const json_t *obj, const char *key)
{
        json_t *v = json_object_get(obj, key);
        return json_is_integer(v) ? json_integer_value(v) : 0;
}

/* All CPUs' time in ns, as Docker's getSystemCPUUsage. */
static json_int_t system_cpu_usage(void)
{
        _cleanup_free_ char *text = NULL;
        size_t len;
        unsigned long long f[8] = {};
        long tick = sysconf(_SC_CLK_TCK);

        if (read_full_file_at(AT_FDCWD, "/proc/stat", 1 << 20, &text, &len) < 0 || tick <= 0)
                return 0;
        if (sscanf(text, "cpu %llu %llu %llu %llu %llu %llu %llu %llu", &f[0], &f[1], &f[2], &f[3], &f[4], &f[5],
                   &f[6], &f[7]) != 8)
                return 0;
        unsigned long long total = 0;
        for (size_t i = 0; i < 8; i++)
                total += f[i];
        return (json_int_t) (total * (1000000000ull / (unsigned long long) tick));
}

static json_int_t host_memory(void)
{
        long pages = sysconf(_SC_PHYS_PAGES), size = sysconf(_SC_PAGESIZE);
        return pages > 0 && size > 0 ? (json_int_t) pages * size : 0;
}

/* moby's StatsResponse{Name, ID} as Go encodes it: the zero structs are
 * there, the zero fields tagged omitempty (system_cpu_usage, online_cpus,
 * the memory and pids numbers) are not. */
static json_t *empty_stats(const char *name, const char *id)
{
        return json_pack("{s:s, s:s, s:s, s:s, s:{}, s:{s:n, s:n, s:n, s:n, s:n, s:n, s:n, s:n}, s:i, s:{}, "
                         "s:{s:{s:i, s:i, s:i}, s:{s:i, s:i, s:i}}, s:{s:{s:i, s:i, s:i}, s:{s:i, s:i, s:i}}, s:{}}",
                         "name", name, "id", id, "read", "0001-01-01T00:00:00Z", "preread", "0001-01-01T00:00:00Z",
                         "pids_stats", "blkio_stats", "io_service_bytes_recursive", "io_serviced_recursive",
                         "io_queue_recursive", "io_service_time_recursive", "io_wait_time_recursive",
                         "io_merged_recursive", "io_time_recursive", "sectors_recursive", "num_procs", 0,
                         "storage_stats", "cpu_stats", "cpu_usage", "total_usage", 0, "usage_in_kernelmode", 0,
                         "usage_in_usermode", 0, "throttling_data", "periods", 0, "throttled_periods", 0,
                         "throttled_time", 0, "precpu_stats", "cpu_usage", "total_usage", 0, "usage_in_kernelmode", 0,
                         "usage_in_usermode", 0, "throttling_data", "periods", 0, "throttled_periods", 0,
                         "throttled_time", 0, "memory_stats");
}

static json_t *blkio_entries(const json_t *list)
{
        json_t *out = json_array();
        size_t i;
        json_t *v;

        json_array_foreach(list, i, v) {
                const char *op = json_string_value(json_object_get(v, "op"));
                json_array_append_new(out, json_pack("{s:I, s:I, s:s, s:I}", "major", u64(v, "major"), "minor",
                                                     u64(v, "minor"), "op", op ? op : "", "value", u64(v, "value")));
        }
        return out;
}

int moat_engine_stats(struct moat_engine *e, const char *ref, const json_t *prev, json_t **ret,
                      struct moat_error **reterr)
{
        struct moat_runtime rt = { .root = e->runtime_root };
        _cleanup_free_ char *id = NULL, *name = NULL, *text = NULL;
        struct container *c;
        bool running;
        char now[40];
        json_error_t jerr;
        int r;

        pthread_mutex_lock(&e->lock);
        r = container_find_locked(e, ref, &c, reterr);
        if (r >= 0) {
                id = strdup(c->id);
                if (asprintf(&name, "/%s", c->name) < 0)
                        name = NULL;
                running = c->st.state == MOAT_CONTAINER_RUNNING || c->st.state == MOAT_CONTAINER_PAUSED;
        }
        pthread_mutex_unlock(&e->lock);
        if (r < 0)
                return r;
        if (!id || !name)
                return moat_error_set(reterr, -ENOMEM, "stats");
        if (!running || moat_container_stats(&rt, id, &text, NULL) < 0) {
                *ret = empty_stats(name, id);
                return *ret ? 0 : moat_error_set(reterr, -ENOMEM, "stats");
        }
        json_t *doc = json_loads(text, 0, &jerr);
        json_t *data = json_object_get(doc, "data");
        json_t *cpu = json_object_get(data, "cpu"), *usage = json_object_get(cpu, "usage");
        json_t *thr = json_object_get(cpu, "throttling");
        json_t *mem = json_object_get(data, "memory"), *mem_usage = json_object_get(mem, "usage");
        json_t *raw = json_object_get(mem, "raw");
        json_t *pids = json_object_get(data, "pids");
        json_t *blkio = json_object_get(data, "blkio");
        json_int_t limit = u64(mem_usage, "limit"), host = host_memory();
        long ncpu = sysconf(_SC_NPROCESSORS_ONLN);

        if (host > 0 && (limit <= 0 || limit > host))
                limit = host;
        engine_format_time(engine_now_ns(), now);
        json_t *cpu_stats = json_pack("{s:{s:I, s:I, s:I}, s:I, s:i, s:{s:I, s:I, s:I}}", "cpu_usage", "total_usage",
                                      u64(usage, "total"), "usage_in_kernelmode", u64(usage, "kernel"),
                                      "usage_in_usermode", u64(usage, "user"), "system_cpu_usage", system_cpu_usage(),
                                      "online_cpus", (int) (ncpu > 0 ? ncpu : 1), "throttling_data", "periods",
                                      u64(thr, "periods"), "throttled_periods", u64(thr, "throttledPeriods"),
                                      "throttled_time", u64(thr, "throttledTime"));
        if (json_is_array(json_object_get(usage, "percpu")))
                json_object_set(json_object_get(cpu_stats, "cpu_usage"), "percpu_usage",
                                json_object_get(usage, "percpu"));
        json_t *empty = prev ? NULL : empty_stats("", "");
        json_t *out = json_pack("{s:s, s:s, s:s, s:s, s:{s:I, s:I}, s:{s:o, s:o, s:n, s:n, s:n, s:n, s:n, s:n}, "
                                "s:i, s:{}, s:o, s:O, s:{s:I, s:I, s:O, s:I}}",
                                "name", name, "id", id, "read", now, "preread",
                                prev ? json_string_value(json_object_get(prev, "read")) : "0001-01-01T00:00:00Z",
                                "pids_stats", "current", u64(pids, "current"), "limit", u64(pids, "limit"),
                                "blkio_stats", "io_service_bytes_recursive",
                                blkio_entries(json_object_get(blkio, "ioServiceBytesRecursive")),
                                "io_serviced_recursive", blkio_entries(json_object_get(blkio, "ioServicedRecursive")),
                                "io_queue_recursive", "io_service_time_recursive", "io_wait_time_recursive",
                                "io_merged_recursive", "io_time_recursive", "sectors_recursive", "num_procs", 0,
                                "storage_stats", "cpu_stats", cpu_stats, "precpu_stats",
                                prev ? json_object_get(prev, "cpu_stats") : json_object_get(empty, "cpu_stats"),
                                "memory_stats", "usage", u64(mem_usage, "usage"), "max_usage", u64(mem_usage, "max"),
                                "stats", json_is_object(raw) ? raw : json_object(), "limit", limit);
        json_decref(doc);
        json_decref(empty);
        if (!out)
                return moat_error_set(reterr, -ENOMEM, "stats");
        *ret = out;
        return 0;
}
