/* SPDX-License-Identifier: Apache-2.0 */
#include "base/compat.h"

/*
 * The verbs' --help: one table entry per verb (and per subcommand of the
 * groups: "volume ls", "system df"), holding docker's usage line, a
 * summary and the options the verb's getopt table takes, each with its
 * value type ("string", "list", ...; NULL for a flag). The same table
 * tells main whether argv asks for help: --help anywhere among the
 * verb's options, or -h when the verb has no -h of its own (run and
 * create's is --hostname), skipping the values of the options that take
 * one and, for the verbs whose options stop at their first argument
 * (run, create, exec, top), everything from there on, so `moat exec c ls
 * --help` is the command's. Help goes to standard output and exits 0, as
 * docker's does.
 */

#include <stdio.h>

#include "cli/cli.h"

struct help_opt {
        char s;
        const char *l, *type, *desc;
};

struct cli_help {
        const char *name;
        const char *usage;
        const char *summary;
        bool stop_at_arg;
        const char *commands;   /* a group's */
        const struct help_opt *opts;
};

#define OPTS(...) ((const struct help_opt[]) { __VA_ARGS__, {} })

#define CONTAINER_OPTS                                                                                         \
             { 0, "add-host", "list", "Add a custom host-to-IP mapping (host:ip)" },                           \
             { 0, "cap-add", "list", "Add Linux capabilities" },                                               \
             { 0, "cap-drop", "list", "Drop Linux capabilities" },                                             \
             { 0, "blkio-weight", "uint16", "Block IO (relative weight), between 10 and 1000, or 0 to disable" }, \
             { 'c', "cpu-shares", "int", "CPU shares (relative weight)" },                                     \
             { 0, "cpu-period", "int", "Limit CPU CFS (Completely Fair Scheduler) period" },                   \
             { 0, "cpu-quota", "int", "Limit CPU CFS (Completely Fair Scheduler) quota" },                     \
             { 0, "cpus", "decimal", "Number of CPUs" },                                                       \
             { 0, "cpuset-cpus", "string", "CPUs in which to allow execution (0-3, 0,1)" },                    \
             { 0, "cpuset-mems", "string", "MEMs in which to allow execution (0-3, 0,1)" },                    \
             { 0, "domainname", "string", "Container NIS domain name" },                                       \
             { 0, "cgroupns", "string", "Cgroup namespace to use (host|private)" },                            \
             { 0, "device", "list", "Add a host device to the container" },                                    \
             { 0, "device-cgroup-rule", "list", "Add a rule to the cgroup allowed devices list" },             \
             { 0, "dns", "list", "Set custom DNS servers" },                                                   \
             { 0, "dns-option", "list", "Set DNS options" },                                                   \
             { 0, "dns-search", "list", "Set custom DNS search domains" },                                     \
             { 0, "entrypoint", "string", "Overwrite the default ENTRYPOINT of the image" },                   \
             { 'e', "env", "list", "Set environment variables" },                                              \
             { 0, "env-file", "list", "Read in a file of environment variables" },                             \
             { 0, "group-add", "list", "Add additional groups to join" },                                      \
             { 0, "health-cmd", "string", "Command to run to check health" },                                  \
             { 0, "health-interval", "duration", "Time between running the check (ms|s|m|h) (default 0s)" }, \
             { 0, "health-retries", "int", "Consecutive failures needed to report unhealthy" },                \
             { 0, "health-start-period", "duration", "Start period for the container to initialize before "   \
                                                     "starting health-retries countdown (ms|s|m|h) (default 0s)" }, \
             { 0, "health-timeout", "duration", "Maximum time to allow one check to run (ms|s|m|h) (default 0s)" }, \
             { 'h', "hostname", "string", "Container host name" },                                             \
             { 0, "init", NULL, "Run an init inside the container that forwards signals and reaps processes" }, \
             { 0, "ipc", "string", "IPC mode to use (private, shareable, host, none, container:<name|id>)" },  \
             { 'i', "interactive", NULL, "Keep STDIN open even if not attached" },                             \
             { 'l', "label", "list", "Set meta data on a container" },                                         \
             { 0, "log-driver", "string", "Logging driver for the container" },                                \
             { 0, "log-opt", "list", "Log driver options" },                                                   \
             { 'm', "memory", "bytes", "Memory limit" },                                                       \
             { 0, "memory-swap", "bytes", "Swap limit equal to memory plus swap: '-1' to enable unlimited swap" }, \
             { 0, "memory-reservation", "bytes", "Memory soft limit" },                                        \
             { 0, "memory-swappiness", "int", "Tune container memory swappiness (0 to 100) (default -1)" },    \
             { 0, "mount", "mount", "Attach a filesystem mount to the container" },                            \
             { 0, "name", "string", "Assign a name to the container" },                                        \
             { 0, "network", "network", "Connect a container to a network (moat: none or host)" },             \
             { 0, "no-healthcheck", NULL, "Disable any container-specified HEALTHCHECK" },                     \
             { 0, "oom-kill-disable", NULL, "Disable OOM Killer" },                                            \
             { 0, "oom-score-adj", "int", "Tune host's OOM preferences (-1000 to 1000)" },                      \
             { 0, "pids-limit", "int", "Tune container pids limit (set -1 for unlimited)" },                   \
             { 0, "pid", "string", "PID namespace to use (host, container:<name|id>)" },                       \
             { 0, "platform", "string", "Set platform if server is multi-platform capable" },                  \
             { 0, "privileged", NULL, "Give extended privileges to this container" },                          \
             { 0, "pull", "string", "Pull image before running (moat: \"never\" only)" },                      \
             { 0, "read-only", NULL, "Mount the container's root filesystem as read only" },                   \
             { 0, "restart", "string", "Restart policy to apply when a container exits (default \"no\")" },   \
             { 0, "rm", NULL, "Automatically remove the container and its associated anonymous volumes when it exits" }, \
             { 0, "security-opt", "list", "Security Options" },                                                \
             { 0, "shm-size", "bytes", "Size of /dev/shm" },                                                   \
             { 0, "stop-signal", "string", "Signal to stop the container" },                                   \
             { 0, "stop-timeout", "int", "Timeout (in seconds) to stop a container" },                         \
             { 0, "sysctl", "map", "Sysctl options (default map[])" },                                         \
             { 0, "tmpfs", "list", "Mount a tmpfs directory" },                                                \
             { 't', "tty", NULL, "Allocate a pseudo-TTY" },                                                    \
             { 0, "ulimit", "ulimit", "Ulimit options (default [])" },                                         \
             { 0, "uts", "string", "UTS namespace to use (host, container:<name|id>)" },                       \
             { 'u', "user", "string", "Username or UID (format: <name|uid>[:<group|gid>])" },                  \
             { 'v', "volume", "list", "Bind mount a volume" },                                                 \
             { 0, "volumes-from", "list", "Mount volumes from the specified container(s)" },                   \
             { 'w', "workdir", "string", "Working directory inside the container" }

#define FORMAT_OPT(s) { s, "format", "string", "Format output using a custom template: 'table', 'table TEMPLATE', 'json' or a template with {{.Field}} placeholders" }
#define STOP_OPTS OPTS({ 's', "signal", "string", "Signal to send to the container" }, \
                       { 't', "timeout", "int", "Seconds to wait before killing the container" })

static const struct cli_help helps[] = {
        { "run", "run [OPTIONS] IMAGE [COMMAND] [ARG...]", "Create and run a new container from an image", true, NULL,
          OPTS({ 'd', "detach", NULL, "Run container in background and print container ID" },
               { 0, "detach-keys", "string", "Override the key sequence for detaching a container" },
               { 0, "sig-proxy", NULL, "Proxy received signals to the process (default true)" }, CONTAINER_OPTS) },
        { "create", "create [OPTIONS] IMAGE [COMMAND] [ARG...]", "Create a new container", true, NULL,
          OPTS(CONTAINER_OPTS) },
        { "start", "start [OPTIONS] CONTAINER [CONTAINER...]", "Start one or more stopped containers", false, NULL,
          OPTS({ 'a', "attach", NULL, "Attach STDOUT/STDERR and forward signals" },
               { 0, "detach-keys", "string", "Override the key sequence for detaching a container" },
               { 'i', "interactive", NULL, "Attach container's STDIN" }) },
        { "stop", "stop [OPTIONS] CONTAINER [CONTAINER...]", "Stop one or more running containers", false, NULL,
          STOP_OPTS },
        { "restart", "restart [OPTIONS] CONTAINER [CONTAINER...]", "Restart one or more containers", false, NULL,
          STOP_OPTS },
        { "kill", "kill [OPTIONS] CONTAINER [CONTAINER...]", "Kill one or more running containers", false, NULL,
          OPTS({ 's', "signal", "string", "Signal to send to the container" }) },
        { "rm", "rm [OPTIONS] CONTAINER [CONTAINER...]", "Remove one or more containers", false, NULL,
          OPTS({ 'f', "force", NULL, "Force the removal of a running container (uses SIGKILL)" },
               { 'v', "volumes", NULL, "Remove anonymous volumes associated with the container" }) },
        { "ps", "ps [OPTIONS]", "List containers", false, NULL,
          OPTS({ 'a', "all", NULL, "Show all containers (default shows just running)" },
               { 'f', "filter", "filter", "Filter output based on conditions provided" },
               FORMAT_OPT(0),
               { 'n', "last", "int", "Show n last created containers (includes all states) (default -1)" },
               { 'l', "latest", NULL, "Show the latest created container (includes all states)" },
               { 0, "no-trunc", NULL, "Don't truncate output" },
               { 'q', "quiet", NULL, "Only display container IDs" },
               { 's', "size", NULL, "Display total file sizes" }) },
        { "logs", "logs [OPTIONS] CONTAINER", "Fetch the logs of a container", false, NULL,
          OPTS({ 0, "details", NULL, "Show extra details provided to logs" },
               { 'f', "follow", NULL, "Follow log output" },
               { 0, "since", "string", "Show logs since timestamp (e.g. \"2013-01-02T13:23:37Z\") or relative (e.g. \"42m\" for 42 minutes)" },
               { 'n', "tail", "string", "Number of lines to show from the end of the logs (default \"all\")" },
               { 't', "timestamps", NULL, "Show timestamps" },
               { 0, "until", "string", "Show logs before a timestamp (e.g. \"2013-01-02T13:23:37Z\") or relative (e.g. \"42m\" for 42 minutes)" }) },
        { "exec", "exec [OPTIONS] CONTAINER COMMAND [ARG...]", "Execute a command in a running container", true, NULL,
          OPTS({ 'd', "detach", NULL, "Detached mode: run command in the background" },
               { 0, "detach-keys", "string", "Override the key sequence for detaching a container" },
               { 'e', "env", "list", "Set environment variables" },
               { 'i', "interactive", NULL, "Keep STDIN open even if not attached" },
               { 0, "privileged", NULL, "Give extended privileges to the command" },
               { 't', "tty", NULL, "Allocate a pseudo-TTY" },
               { 'u', "user", "string", "Username or UID (format: \"<name|uid>[:<group|gid>]\")" },
               { 'w', "workdir", "string", "Working directory inside the container" }) },
        { "attach", "attach [OPTIONS] CONTAINER",
          "Attach local standard input, output, and error streams to a running container", false, NULL,
          OPTS({ 0, "detach-keys", "string", "Override the key sequence for detaching a container" },
               { 0, "no-stdin", NULL, "Do not attach STDIN" },
               { 0, "sig-proxy", NULL, "Proxy all received signals to the process (default true)" }) },
        { "inspect", "inspect [OPTIONS] NAME|ID [NAME|ID...]", "Return low-level information on containers and images",
          false, NULL,
          OPTS({ 'f', "format", "string", "Format output using a custom template: 'json' or a template with {{.Field}} placeholders" },
               { 's', "size", NULL, "Display total file sizes if the type is container" },
               { 0, "type", "string", "Only inspect objects of the given type (container or image)" }) },
        { "top", "top CONTAINER [ps OPTIONS]", "Display the running processes of a container", true, NULL, NULL },
        { "diff", "diff CONTAINER", "Inspect changes to files or directories on a container's filesystem", false,
          NULL, NULL },
        { "stats", "stats [OPTIONS] [CONTAINER...]", "Display a live stream of container(s) resource usage statistics",
          false, NULL,
          OPTS({ 'a', "all", NULL, "Show all containers (default shows just running)" },
               FORMAT_OPT(0),
               { 0, "no-stream", NULL, "Disable streaming stats and only pull the first result" },
               { 0, "no-trunc", NULL, "Do not truncate output" }) },
        { "pause", "pause CONTAINER [CONTAINER...]", "Pause all processes within one or more containers", false, NULL,
          NULL },
        { "unpause", "unpause CONTAINER [CONTAINER...]", "Unpause all processes within one or more containers", false,
          NULL, NULL },
        { "update", "update [OPTIONS] CONTAINER [CONTAINER...]", "Update configuration of one or more containers",
          false, NULL,
          OPTS({ 0, "cpu-period", "int", "Limit CPU CFS (Completely Fair Scheduler) period" },
               { 0, "cpu-quota", "int", "Limit CPU CFS (Completely Fair Scheduler) quota" },
               { 'c', "cpu-shares", "int", "CPU shares (relative weight)" },
               { 0, "cpus", "decimal", "Number of CPUs" },
               { 0, "cpuset-cpus", "string", "CPUs in which to allow execution (0-3, 0,1)" },
               { 'm', "memory", "bytes", "Memory limit" },
               { 0, "memory-reservation", "bytes", "Memory soft limit" },
               { 0, "memory-swap", "bytes", "Swap limit equal to memory plus swap: -1 to enable unlimited swap" },
               { 0, "pids-limit", "int", "Tune container pids limit (set -1 for unlimited)" },
               { 0, "restart", "string", "Restart policy to apply when a container exits" }) },
        { "rename", "rename CONTAINER NEW_NAME", "Rename a container", false, NULL, NULL },
        { "wait", "wait CONTAINER [CONTAINER...]", "Block until one or more containers stop, then print their exit codes",
          false, NULL, NULL },
        { "cp", "cp [OPTIONS] CONTAINER:SRC_PATH DEST_PATH|-\n\tmoat cp [OPTIONS] SRC_PATH|- CONTAINER:DEST_PATH",
          "Copy files/folders between a container and the local filesystem\n\n"
          "Use '-' as the source to read a tar archive from stdin\n"
          "and extract it to a directory destination in a container.\n"
          "Use '-' as the destination to stream a tar archive of a\n"
          "container source to stdout.",
          false, NULL,
          OPTS({ 'a', "archive", NULL, "Archive mode (copy all uid/gid information)" },
               { 'L', "follow-link", NULL, "Always follow symbol link in SRC_PATH" },
               { 'q', "quiet", NULL, "Suppress progress output during copy. Progress output is automatically suppressed if no terminal is attached" }) },
        { "export", "export [OPTIONS] CONTAINER", "Export a container's filesystem as a tar archive", false, NULL,
          OPTS({ 'o', "output", "string", "Write to a file, instead of STDOUT" }) },
        { "images", "images [OPTIONS] [REPOSITORY[:TAG]]", "List images", false, NULL,
          OPTS({ 'a', "all", NULL, "Show all images (default hides intermediate images)" },
               { 0, "digests", NULL, "Show digests" },
               { 'f', "filter", "filter", "Filter output based on conditions provided" },
               FORMAT_OPT(0),
               { 0, "no-trunc", NULL, "Don't truncate output" },
               { 'q', "quiet", NULL, "Only show image IDs" }) },
        { "load", "load [OPTIONS]", "Load an image from a tar archive or STDIN", false, NULL,
          OPTS({ 'i', "input", "string", "Read from tar archive file, instead of STDIN" },
               { 0, "platform", "string", "Load only the given platform variant. Formatted as \"os[/arch[/variant]]\" (e.g., \"linux/amd64\")" },
               { 'q', "quiet", NULL, "Suppress the load output" }) },
        { "save", "save [OPTIONS] IMAGE [IMAGE...]",
          "Save one or more images to a tar archive (streamed to STDOUT by default)", false, NULL,
          OPTS({ 'o', "output", "string", "Write to a file, instead of STDOUT" },
               { 0, "platform", "string", "Save only the given platform variant. Formatted as \"os[/arch[/variant]]\" (e.g., \"linux/amd64\")" },
               { 0, "format", "string", "docker (OCI layout plus docker's manifest.json, the default) or oci (the OCI layout alone)" }) },
        { "import", "import [OPTIONS] file|- [REPOSITORY[:TAG]]",
          "Import the contents from a tarball to create a filesystem image", false, NULL,
          OPTS({ 'c', "change", "list", "Apply Dockerfile instruction to the created image" },
               { 'm', "message", "string", "Set commit message for imported image" },
               { 0, "platform", "string", "Set platform if server is multi-platform capable" }) },
        { "tag", "tag SOURCE_IMAGE[:TAG] TARGET_IMAGE[:TAG]", "Create a tag TARGET_IMAGE that refers to SOURCE_IMAGE",
          false, NULL, NULL },
        { "rmi", "rmi [OPTIONS] IMAGE [IMAGE...]", "Remove one or more images", false, NULL,
          OPTS({ 'f', "force", NULL, "Force removal of the image" },
               { 0, "no-prune", NULL, "Do not delete untagged parents" }) },
        { "history", "history [OPTIONS] IMAGE", "Show the history of an image", false, NULL,
          OPTS(FORMAT_OPT(0),
               { 'H', "human", NULL, "Print sizes and dates in human readable format (default true)" },
               { 0, "no-trunc", NULL, "Don't truncate output" },
               { 0, "platform", "string", "Show history for the given platform. Formatted as \"os[/arch[/variant]]\" (e.g., \"linux/amd64\")" },
               { 'q', "quiet", NULL, "Only show image IDs" }) },
        { "image prune", "image prune [OPTIONS]", "Remove unused images", false, NULL,
          OPTS({ 'a', "all", NULL, "Remove all unused images, not just dangling ones" },
               { 0, "filter", "filter", "Provide filter values (e.g. \"until=<timestamp>\")" },
               { 'f', "force", NULL, "Do not prompt for confirmation" }) },
        { "prune", "prune [OPTIONS]", "Remove unused images (docker image prune)", false, NULL,
          OPTS({ 'a', "all", NULL, "Remove all unused images, not just dangling ones" },
               { 0, "filter", "filter", "Provide filter values (e.g. \"until=<timestamp>\")" },
               { 'f', "force", NULL, "Do not prompt for confirmation" }) },
        { "verify", "verify", "Re-hash every blob and layer of the image store (through moat-image, on --root)", false, NULL,
          NULL },
        { "mount", "mount [OPTIONS] IMAGE [DIR]",
          "Mount an image's root filesystem read-only and print where (through moat-image, on --root)", false, NULL,
          OPTS({ 0, "platform", "string", "Mount the given platform of an index (\"os/arch[/variant]\")" }) },
        { "unmount", "unmount IMAGE|DIR", "Unmount what mount mounted (through moat-image, on --root)", false, NULL, NULL },
        { "version", "version [OPTIONS]", "Show the moat version information", false, NULL, OPTS(FORMAT_OPT('f')) },
        { "info", "info [OPTIONS]", "Display system-wide information", false, NULL, OPTS(FORMAT_OPT('f')) },
        { "events", "events [OPTIONS]", "Get real time events from the server", false, NULL,
          OPTS({ 'f', "filter", "filter", "Filter output based on conditions provided" },
               FORMAT_OPT(0),
               { 0, "since", "string", "Show all events created since timestamp" },
               { 0, "until", "string", "Stream events until this timestamp" }) },
        { "daemon", "daemon [OPTIONS]", "Run the moat daemon (the Docker Engine API on a unix socket)", false, NULL,
          OPTS({ 0, "config-file", "string", "daemon.json" },
               { 0, "data-root", "string", "Persistent state (default: moat's --root, /var/lib/moat)" },
               { 'D', "debug", NULL, "Debug logging (requests with the peer's uid and pid)" },
               { 0, "exec-root", "string", "Runtime state" },
               { 'G', "group", "string", "Group owning the socket (created when missing)" },
               { 'H', "host", "string", "API socket (unix:///PATH)" },
               { 'l', "log-level", "string", "debug, info, warn, error, fatal (default info)" },
               { 'p', "pidfile", "string", "Pid file" }) },
        { "system", "system COMMAND", "Manage moat", false,
          "  df          Show moat disk usage\n"
          "  events      Get real time events from the server\n"
          "  info        Display system-wide information\n"
          "  prune       Remove unused data\n",
          NULL },
        { "system df", "system df [OPTIONS]", "Show moat disk usage", false, NULL,
          OPTS(FORMAT_OPT(0), { 'v', "verbose", NULL, "Show detailed information on space usage" }) },
        { "system prune", "system prune [OPTIONS]", "Remove unused data", false, NULL,
          OPTS({ 'a', "all", NULL, "Remove all unused images not just dangling ones" },
               { 0, "filter", "filter", "Provide filter values (e.g. \"label=<key>=<value>\")" },
               { 'f', "force", NULL, "Do not prompt for confirmation" },
               { 0, "volumes", NULL, "Prune anonymous volumes" }) },
        { "system info", "system info [OPTIONS]", "Display system-wide information", false, NULL,
          OPTS(FORMAT_OPT('f')) },
        { "system events", "system events [OPTIONS]", "Get real time events from the server", false, NULL,
          OPTS({ 'f', "filter", "filter", "Filter output based on conditions provided" },
               FORMAT_OPT(0),
               { 0, "since", "string", "Show all events created since timestamp" },
               { 0, "until", "string", "Stream events until this timestamp" }) },
        { "volume", "volume COMMAND", "Manage volumes", false,
          "  create      Create a volume\n"
          "  inspect     Display detailed information on one or more volumes\n"
          "  ls          List volumes\n"
          "  prune       Remove unused local volumes\n"
          "  rm          Remove one or more volumes\n",
          NULL },
        { "volume create", "volume create [OPTIONS] [VOLUME]", "Create a volume", false, NULL,
          OPTS({ 'd', "driver", "string", "Specify volume driver name (default \"local\")" },
               { 0, "label", "list", "Set metadata for a volume" },
               { 'o', "opt", "map", "Set driver specific options (default map[])" }) },
        { "volume ls", "volume ls [OPTIONS]", "List volumes", false, NULL,
          OPTS({ 'f', "filter", "filter", "Provide filter values (e.g. \"dangling=true\")" },
               FORMAT_OPT(0),
               { 'q', "quiet", NULL, "Only display volume names" }) },
        { "volume inspect", "volume inspect [OPTIONS] VOLUME [VOLUME...]",
          "Display detailed information on one or more volumes", false, NULL, OPTS(FORMAT_OPT('f')) },
        { "volume rm", "volume rm [OPTIONS] VOLUME [VOLUME...]",
          "Remove one or more volumes. You cannot remove a volume that is in use by a container.", false, NULL,
          OPTS({ 'f', "force", NULL, "Force the removal of one or more volumes" }) },
        { "volume prune", "volume prune [OPTIONS]", "Remove unused local volumes", false, NULL,
          OPTS({ 'a', "all", NULL, "Remove all unused volumes, not just anonymous ones" },
               { 0, "filter", "filter", "Provide filter values (e.g. \"label=<label>\")" },
               { 'f', "force", NULL, "Do not prompt for confirmation" }) },
        { "image", "image COMMAND", "Manage images", false,
          "  history     Show the history of an image\n"
          "  import      Import the contents from a tarball to create a filesystem image\n"
          "  inspect     Display detailed information on one or more images\n"
          "  load        Load an image from a tar archive or STDIN\n"
          "  ls          List images\n"
          "  prune       Remove unused images\n"
          "  rm          Remove one or more images\n"
          "  save        Save one or more images to a tar archive (streamed to STDOUT by default)\n"
          "  tag         Create a tag TARGET_IMAGE that refers to SOURCE_IMAGE\n",
          NULL },
        { "image inspect", "image inspect [OPTIONS] IMAGE [IMAGE...]", "Display detailed information on one or more images",
          false, NULL,
          OPTS({ 'f', "format", "string", "Format output using a custom template: 'json' or a template with {{.Field}} placeholders" }) },
        { "container", "container COMMAND", "Manage containers", false,
          "  attach      Attach local standard input, output, and error streams to a running container\n"
          "  cp          Copy files/folders between a container and the local filesystem\n"
          "  create      Create a new container\n"
          "  diff        Inspect changes to files or directories on a container's filesystem\n"
          "  exec        Execute a command in a running container\n"
          "  export      Export a container's filesystem as a tar archive\n"
          "  inspect     Display detailed information on one or more containers\n"
          "  kill        Kill one or more running containers\n"
          "  logs        Fetch the logs of a container\n"
          "  ls          List containers\n"
          "  pause       Pause all processes within one or more containers\n"
          "  rename      Rename a container\n"
          "  restart     Restart one or more containers\n"
          "  rm          Remove one or more containers\n"
          "  run         Create and run a new container from an image\n"
          "  start       Start one or more stopped containers\n"
          "  stats       Display a live stream of container(s) resource usage statistics\n"
          "  stop        Stop one or more running containers\n"
          "  top         Display the running processes of a container\n"
          "  unpause     Unpause all processes within one or more containers\n"
          "  update      Update configuration of one or more containers\n"
          "  wait        Block until one or more containers stop, then print their exit codes\n",
          NULL },
};

static const struct cli_help *help_find(const char *name)
{
        for (size_t i = 0; i < ELEMENTSOF(helps); i++)
                if (streq(helps[i].name, name))
                        return &helps[i];
        return NULL;
}

static const struct help_opt *opt_short(const struct cli_help *h, char c)
{
        for (const struct help_opt *o = h->opts; o && o->l; o++)
                if (o->s == c && o->desc)
                        return o;
        return NULL;
}

static const struct help_opt *opt_long(const struct cli_help *h, const char *name, size_t len)
{
        for (const struct help_opt *o = h->opts; o && o->l; o++)
                if (strlen(o->l) == len && strncmp(o->l, name, len) == 0 && o->desc)
                        return o;
        return NULL;
}

bool cli_help_requested(const char *name, int argc, char **argv)
{
        const struct cli_help *h = help_find(name);
        bool own_h;

        if (!h)
                return false;
        own_h = opt_short(h, 'h') != NULL;
        for (int i = 1; i < argc; i++) {
                const char *a = argv[i];
                if (streq(a, "--"))
                        return false;
                if (streq(a, "--help"))
                        return true;
                if (startswith(a, "--")) {
                        size_t len = strcspn(a + 2, "=");
                        const struct help_opt *o = opt_long(h, a + 2, len);
                        if (o && o->type && !a[2 + len])
                                i++;
                        continue;
                }
                if (a[0] == '-' && a[1]) {
                        for (const char *p = a + 1; *p; p++) {
                                const struct help_opt *o = opt_short(h, *p);
                                if (*p == 'h' && !own_h)
                                        return true;
                                if (o && o->type) {
                                        if (!p[1])
                                                i++;
                                        break;
                                }
                        }
                        continue;
                }
                if (h->stop_at_arg)
                        return false;
        }
        return false;
}

int cli_help_print(const char *name)
{
        const struct cli_help *h = help_find(name);
        size_t width = 0;

        if (!h)
                return -ENOENT;
        printf("Usage:  moat %s\n\n%s\n", h->usage, h->summary);
        if (h->commands)
                printf("\nCommands:\n%s\nRun 'moat %s COMMAND --help' for more information on a command.\n",
                       h->commands, h->name);
        if (!h->opts)
                return 0;
        for (const struct help_opt *o = h->opts; o->l; o++)
                if (o->desc && strlen(o->l) + (o->type ? strlen(o->type) + 1 : 0) > width)
                        width = strlen(o->l) + (o->type ? strlen(o->type) + 1 : 0);
        printf("\nOptions:\n");
        for (const struct help_opt *o = h->opts; o->l; o++) {
                char spec[128];
                if (!o->desc)
                        continue;
                snprintf(spec, sizeof(spec), "%s%s%s", o->l, o->type ? " " : "", o->type ? o->type : "");
                if (o->s)
                        printf("  -%c, --%-*s   %s\n", o->s, (int) width, spec, o->desc);
                else
                        printf("      --%-*s   %s\n", (int) width, spec, o->desc);
        }
        return 0;
}
