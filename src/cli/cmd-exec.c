/* SPDX-License-Identifier: Apache-2.0 */
#include "base/compat.h"

/*
 * moat exec [-d] [-i] [-t] [-e K=V] [-u USER] [-w DIR] CONTAINER COMMAND
 * [ARG...]: docker exec. Inspect (existence), POST /containers/{id}/exec,
 * then /exec/{id}/start: detached, or hijacked and pumped like run's
 * session; the exit status is then GET /exec/{id}/json's ExitCode, which
 * the daemon records before it closes the stream. Errors exit 126/127 as
 * docker's when the command cannot be run or found.
 */

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "base/cleanup.h"
#include "cli/cli.h"
#include "cli/client.h"

int cmd_exec(struct moat_cli *cli, int argc, char **argv, struct moat_error **reterr)
{
        static const struct option options[] = {
                { "detach", no_argument, NULL, 'd' },
                { "interactive", no_argument, NULL, 'i' },
                { "tty", no_argument, NULL, 't' },
                { "env", required_argument, NULL, 'e' },
                { "user", required_argument, NULL, 'u' },
                { "workdir", required_argument, NULL, 'w' },
                { "privileged", no_argument, NULL, 'P' },
                { "detach-keys", required_argument, NULL, 'K' },
                {},
        };
        _cleanup_client_ struct moat_client *client = NULL;
        _cleanup_json_ json_t *c = NULL, *body = json_object(), *env = json_array(), *reply = NULL, *info = NULL;
        _cleanup_free_ char *e = NULL, *target = NULL, *exec_id = NULL;
        const char *detach_keys = NULL;
        bool detach = false, interactive = false, tty = false, detached = false;
        int ch, r;

        if (!body || !env)
                return moat_error_set(reterr, -ENOMEM, "exec");
        while ((ch = getopt_long(argc, argv, "+:dite:u:w:", options, NULL)) != -1) {
                switch (ch) {
                case 'd':
                        detach = true;
                        break;
                case 'i':
                        interactive = true;
                        break;
                case 't':
                        tty = true;
                        break;
                case 'e':
                        if (strchr(optarg, '='))
                                json_array_append_new(env, json_string(optarg));
                        else if (getenv(optarg)) {
                                _cleanup_free_ char *kv = NULL;
                                if (asprintf(&kv, "%s=%s", optarg, getenv(optarg)) < 0)
                                        return moat_error_set(reterr, -ENOMEM, "exec");
                                json_array_append_new(env, json_string(kv));
                        }
                        break;
                case 'u':
                        json_object_set_new(body, "User", json_string(optarg));
                        break;
                case 'w':
                        json_object_set_new(body, "WorkingDir", json_string(optarg));
                        break;
                case 'P':
                        json_object_set_new(body, "Privileged", json_true());
                        break;
                case 'K':
                        detach_keys = optarg;
                        json_object_set_new(body, "DetachKeys", json_string(optarg));
                        break;
                case ':':
                        return moat_error_setx(reterr, -EINVAL, "flag needs an argument: %s", argv[optind - 1]);
                default:
                        return moat_error_setx(reterr, -EINVAL, "unknown flag: %s", argv[optind - 1]);
                }
        }
        if (argc - optind < 2)
                return moat_error_setx(reterr, -EINVAL, "\"moat exec\" requires at least 2 arguments.");
        if (tty && interactive && !detach && !isatty(STDIN_FILENO))
                return moat_error_setx(reterr, -ENOTTY, "the input device is not a TTY");
        json_t *cmd = json_array();
        for (int i = optind + 1; i < argc; i++)
                json_array_append_new(cmd, json_string(argv[i]));
        json_object_set_new(body, "Cmd", cmd);
        json_object_set(body, "Env", env);
        json_object_set_new(body, "Tty", json_boolean(tty));
        json_object_set_new(body, "AttachStdin", json_boolean(interactive && !detach));
        json_object_set_new(body, "AttachStdout", json_boolean(!detach));
        json_object_set_new(body, "AttachStderr", json_boolean(!detach));
        if (tty) {
                unsigned rows, cols;
                cli_console_size(STDOUT_FILENO, &rows, &cols);
                json_object_set_new(body, "ConsoleSize", json_pack("[i,i]", (int) rows, (int) cols));
        }

        r = cli_client(cli, &client, reterr);
        if (r < 0)
                return r;
        r = cli_container_inspect(client, argv[optind], &c, reterr);
        if (r < 0)
                return r;
        e = moat_client_escape(json_string_value(json_object_get(c, "Id")) ?: argv[optind]);
        if (!e || asprintf(&target, "/containers/%s/exec", e) < 0)
                return moat_error_set(reterr, -ENOMEM, "exec");
        r = moat_client_call(client, "POST", target, body, NULL, &reply, reterr);
        if (r < 0)
                goto fail;
        const char *id = json_string_value(json_object_get(reply, "Id"));
        if (!id)
                return moat_error_setx(reterr, -EPROTO, "exec: the daemon's reply has no Id");
        exec_id = moat_client_escape(id);
        if (!exec_id)
                return moat_error_set(reterr, -ENOMEM, "exec");
        if (detach) {
                _cleanup_free_ char *t = NULL;
                _cleanup_json_ json_t *b = json_pack("{s:b,s:b}", "Detach", 1, "Tty", tty);
                if (!b || asprintf(&t, "/exec/%s/start", exec_id) < 0)
                        return moat_error_set(reterr, -ENOMEM, "exec");
                r = moat_client_call(client, "POST", t, b, NULL, NULL, reterr);
                goto done;
        }
        struct cli_session s = { .id = id, .exec = true, .tty = tty, .in = interactive, .out = true, .err = true };
        int unused = 0;
        r = cli_session_run_keys(client, &s, detach_keys, &unused, &detached, reterr);
        if (r < 0)
                goto fail;
        if (detached) /* docker 28's exec: this message, status 1 */
                return moat_error_setx(reterr, -EINTR, "read escape sequence");
        free(target);
        target = NULL;
        if (asprintf(&target, "/exec/%s/json", exec_id) < 0)
                return moat_error_set(reterr, -ENOMEM, "exec");
        r = moat_client_call(client, "GET", target, NULL, NULL, &info, reterr);
        if (r < 0)
                return r;
        cli->exit_code = (int) json_integer_value(json_object_get(info, "ExitCode"));
        return 0;
done:
        if (r >= 0)
                return 0;
fail:
        if (cli_run_error_status(*reterr) != 125)
                cli->error_exit = cli_run_error_status(*reterr);
        return r;
}
