/* SPDX-License-Identifier: Apache-2.0 */
#include "base/compat.h"

/*
 * `ps [--format table|json] <id> [ps options]`, as runc: json prints the
 * container's host pids as an array; table runs the host's ps (default
 * -ef) and keeps the header and the lines whose PID column is one of the
 * container's pids.
 */

#include <fcntl.h>
#include <getopt.h>
#include <jansson.h>
#include <stdio.h>
#include <sys/wait.h>
#include <unistd.h>

#include "base/cleanup.h"
#include "base/fileio.h"
#include "base/log.h"
#include "base/parse.h"
#include "runtime-cli/cli.h"

/* Bound of ps's output (a few hundred bytes per process). */
#define PS_OUTPUT_MAX (64u * 1024u * 1024u)

static int run_ps(char **ps_args, char **ret, size_t *ret_len)
{
        int pipefd[2];
        if (pipe2(pipefd, O_CLOEXEC) < 0) {
                log_error("ps: pipe: %m");
                return -errno;
        }
        pid_t pid = fork();
        if (pid < 0) {
                int r = -errno;
                log_error("ps: fork: %m");
                close(pipefd[0]);
                close(pipefd[1]);
                return r;
        }
        if (pid == 0) {
                if (dup2(pipefd[1], STDOUT_FILENO) < 0)
                        _exit(127);
                execvp(ps_args[0], ps_args);
                dprintf(STDERR_FILENO, "moat-runtime: ps: running \"%s\": %s\n", ps_args[0], strerror(errno));
                _exit(127);
        }
        close(pipefd[1]);
        int r = read_full_fd(pipefd[0], PS_OUTPUT_MAX, ret, ret_len);
        close(pipefd[0]);
        int status = 0;
        while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
                ;
        if (r < 0) {
                log_error("ps: reading the output of ps: %s", strerror(-r));
                return r;
        }
        if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
                free(*ret);
                *ret = NULL;
                log_error("ps: the host's ps failed (%s %d)", WIFEXITED(status) ? "exit status" : "signal",
                          WIFEXITED(status) ? WEXITSTATUS(status) : WTERMSIG(status));
                return -EIO;
        }
        return 0;
}

/* Index of the whitespace-separated field named "PID" in the header. */
static int pid_column(const char *header)
{
        int col = 0;
        for (const char *p = header; *p;) {
                while (*p == ' ' || *p == '\t')
                        p++;
                if (!*p)
                        break;
                size_t len = strcspn(p, " \t");
                if (len == 3 && strncmp(p, "PID", 3) == 0)
                        return col;
                p += len;
                col++;
        }
        return -1;
}

static bool field_is_pid(const char *line, int col, const pid_t *pids, size_t n)
{
        const char *p = line;
        for (int i = 0;; i++) {
                while (*p == ' ' || *p == '\t')
                        p++;
                if (!*p)
                        return false;
                size_t len = strcspn(p, " \t");
                if (i == col) {
                        char buf[16];
                        int v;
                        if (len >= sizeof(buf))
                                return false;
                        memcpy(buf, p, len);
                        buf[len] = '\0';
                        if (safe_atoi(buf, &v) < 0)
                                return false;
                        for (size_t k = 0; k < n; k++)
                                if (pids[k] == v)
                                        return true;
                        return false;
                }
                p += len;
        }
}

static int print_table(char **ps_args, const pid_t *pids, size_t n)
{
        _cleanup_free_ char *out = NULL;
        size_t len;

        if (run_ps(ps_args, &out, &len) < 0)
                return 1;
        char *save = NULL;
        char *header = strtok_r(out, "\n", &save);
        if (!header)
                return 0;
        int col = pid_column(header);
        if (col < 0) {
                log_error("ps: no PID column in the output of ps (header \"%s\")", header);
                return 1;
        }
        puts(header);
        for (char *line = strtok_r(NULL, "\n", &save); line; line = strtok_r(NULL, "\n", &save))
                if (field_is_pid(line, col, pids, n))
                        puts(line);
        return 0;
}

int cmd_ps(struct cli_context *ctx, int argc, char **argv)
{
        static const struct option options[] = {
                { "format", required_argument, NULL, 'f' },
                {},
        };
        _cleanup_error_ struct moat_error *err = NULL;
        _cleanup_free_ pid_t *pids = NULL;
        bool json = false;
        size_t n = 0;
        int c;

        opterr = 0;
        while ((c = getopt_long_only(argc, argv, "+f:", options, NULL)) != -1) {
                if (c == 'f' && (streq(optarg, "json") || streq(optarg, "table")))
                        json = streq(optarg, "json");
                else {
                        log_error("ps: bad option '%s' (--format table|json)", argv[optind - 1]);
                        return 1;
                }
        }
        if (optind >= argc) {
                log_error("ps: expects a container id, then options for ps");
                return 1;
        }
        const char *id = argv[optind];
        int n_ps = argc - optind - 1;
        char **ps_opts = argv + optind + 1;
        if (n_ps > 0 && streq(ps_opts[0], "--")) {
                ps_opts++;
                n_ps--;
        }
        if (json && n_ps > 0) {
                log_error("ps: options for ps are not allowed with --format json");
                return 1;
        }

        int r = moat_container_pids(&ctx->rt, id, &pids, &n, &err);
        if (r < 0)
                return cli_fail(r, err);

        if (json) {
                json_t *arr = json_array();
                for (size_t i = 0; arr && i < n; i++)
                        json_array_append_new(arr, json_integer(pids[i]));
                char *text = arr ? json_dumps(arr, JSON_COMPACT) : NULL;
                json_decref(arr);
                if (!text) {
                        log_error("ps: out of memory");
                        return 1;
                }
                puts(text);
                free(text);
                return 0;
        }

        _cleanup_free_ char **ps_args = calloc((size_t) n_ps + 3, sizeof(char *));
        if (!ps_args) {
                log_error("ps: out of memory");
                return 1;
        }
        ps_args[0] = (char *) "ps";
        if (n_ps == 0)
                ps_args[1] = (char *) "-ef";
        for (int i = 0; i < n_ps; i++)
                ps_args[1 + i] = ps_opts[i];
        return print_table(ps_args, pids, n);
}
