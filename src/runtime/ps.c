/* SPDX-License-Identifier: Apache-2.0 */
#include "base/compat.h"

/*
 * `ps`: the processes of a container are those of its cgroup (host pids),
 * which also covers processes that left its pid namespace's view or that
 * joined through exec. The cgroup is the one recorded at create.
 *
 * The table (`moat-runtime ps`, docker top) is the host's ps output
 * filtered to those pids, as runc and docker do: the header, then the
 * lines whose PID column is a pid of the container, and after such a
 * line the thread lines of `ps m` (PID "-"). ps runs through
 * posix_spawn, so a threaded caller (the daemon) can use it.
 */

#include <fcntl.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include "base/cleanup.h"
#include "base/fileio.h"
#include "base/parse.h"
#include "runtime/cgroup.h"
#include "runtime/runtime.h"
#include "runtime/state.h"

int moat_container_pids(const struct moat_runtime *rt, const char *id, pid_t **ret, size_t *ret_n,
                        struct moat_error **reterr)
{
        _cleanup_close_ int dir_fd = -EBADF;
        _cleanup_state_ struct moat_state *s = NULL;
        _cleanup_cgroup_ struct moat_cgroup *cg = NULL;
        int r;

        r = moat_state_open(rt, id, &s, &dir_fd, reterr);
        if (r < 0)
                return r;
        if (strempty(s->cgroup)) {
                *ret = NULL;
                *ret_n = 0;
                return 0;
        }
        r = moat_cgroup_deserialize(s->cgroup, &cg, reterr);
        if (r < 0)
                return r;
        r = moat_cgroup_pids(cg, ret, ret_n, reterr);
        if (r < 0)
                return moat_error_wrap(reterr, r, "container \"%s\"", id);
        return 0;
}

/* Bound of ps's output (a few hundred bytes per process). */
#define PS_OUTPUT_MAX (64u * 1024u * 1024u)
#define PS_ARGS_MAX 256u

extern char **environ;

static int run_ps(char *const *args, char **ret, struct moat_error **reterr)
{
        _cleanup_free_ char **argv = NULL;
        _cleanup_close_ int rfd = -EBADF, wfd = -EBADF;
        posix_spawn_file_actions_t fa;
        size_t n = 0, len;
        pid_t pid;
        int pipefd[2], status = 0, r;

        while (args && args[n])
                if (++n > PS_ARGS_MAX)
                        return moat_error_setx(reterr, -E2BIG, "ps: more than %u arguments", PS_ARGS_MAX);
        argv = calloc(n + 3, sizeof(char *));
        if (!argv)
                return moat_error_set(reterr, -ENOMEM, "ps");
        argv[0] = (char *) "ps";
        if (n == 0)
                argv[1] = (char *) "-ef";
        for (size_t i = 0; i < n; i++)
                argv[1 + i] = args[i];
        if (pipe2(pipefd, O_CLOEXEC) < 0)
                return moat_error_set(reterr, errno, "ps: pipe");
        rfd = pipefd[0];
        wfd = pipefd[1];
        if ((r = posix_spawn_file_actions_init(&fa)) != 0)
                return moat_error_set(reterr, r, "ps");
        r = posix_spawn_file_actions_adddup2(&fa, wfd, STDOUT_FILENO);
        if (r == 0)
                r = posix_spawn_file_actions_addopen(&fa, STDIN_FILENO, "/dev/null", O_RDONLY, 0);
        if (r == 0)
                r = posix_spawnp(&pid, "ps", &fa, NULL, argv, environ);
        posix_spawn_file_actions_destroy(&fa);
        if (r != 0)
                return moat_error_set(reterr, r, "running the host's ps");
        wfd = safe_close(wfd);
        r = read_full_fd(rfd, PS_OUTPUT_MAX, ret, &len);
        while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
                ;
        if (r < 0)
                return moat_error_set(reterr, r, "reading the output of ps");
        if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
                free(*ret);
                *ret = NULL;
                return moat_error_setx(reterr, -EIO, "the host's ps failed (%s %d)",
                                       WIFEXITED(status) ? "exit status" : "signal",
                                       WIFEXITED(status) ? WEXITSTATUS(status) : WTERMSIG(status));
        }
        return 0;
}

/* The whitespace-separated field col of line: its start and length;
 * false when the line has fewer fields. */
static bool field(const char *line, int col, const char **ret, size_t *ret_len)
{
        const char *p = line;
        for (int i = 0;; i++) {
                while (*p == ' ' || *p == '\t')
                        p++;
                if (!*p)
                        return false;
                size_t len = strcspn(p, " \t");
                if (i == col) {
                        *ret = p;
                        *ret_len = len;
                        return true;
                }
                p += len;
        }
}

int moat_ps_table(char *const *args, const pid_t *pids, size_t n_pids, char ***ret_lines,
                  struct moat_error **reterr)
{
        _cleanup_free_ char *out = NULL;
        _cleanup_strv_free_ char **lines = NULL;
        size_t n = 0;
        int col = -1, r;

        r = run_ps(args, &out, reterr);
        if (r < 0)
                return r;
        char *save = NULL;
        char *header = strtok_r(out, "\n", &save);
        size_t max_lines = 2;
        for (const char *p = save; p && *p; p++)
                max_lines += *p == '\n';
        lines = calloc(max_lines + 1, sizeof(char *));
        if (!lines)
                return moat_error_set(reterr, -ENOMEM, "ps");
        if (!header) {
                *ret_lines = TAKE_PTR(lines);
                return 0;
        }
        const char *f;
        size_t flen;
        for (int i = 0; col < 0 && field(header, i, &f, &flen); i++)
                if (flen == 3 && strncmp(f, "PID", 3) == 0)
                        col = i;
        if (col < 0)
                return moat_error_setx(reterr, -EIO, "ps: no PID column in the output of ps (header \"%.200s\")",
                                       header);
        if (!(lines[n++] = strdup(header)))
                return moat_error_set(reterr, -ENOMEM, "ps");
        bool after_kept = false;
        for (char *line = strtok_r(NULL, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
                char buf[16];
                int v;
                bool keep = false;

                if (!field(line, col, &f, &flen))
                        continue;
                if (flen == 1 && f[0] == '-')
                        keep = after_kept;
                else {
                        if (flen < sizeof(buf)) {
                                memcpy(buf, f, flen);
                                buf[flen] = '\0';
                                if (safe_atoi(buf, &v) >= 0)
                                        for (size_t k = 0; k < n_pids && !keep; k++)
                                                keep = pids[k] == v;
                        }
                        after_kept = keep;
                }
                if (keep && n < max_lines && !(lines[n++] = strdup(line)))
                        return moat_error_set(reterr, -ENOMEM, "ps");
        }
        *ret_lines = TAKE_PTR(lines);
        return 0;
}
