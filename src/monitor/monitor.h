/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

/*
 * libmoat-monitor: what the daemon shares with moat-monitor, the process
 * that holds one container's (or one exec'd process's) stdio. The protocol
 * is described in full in docs/monitor.md; in short:
 *
 *   moat-monitor run  --id ID --bundle DIR --runtime-root ROOT --log-path FILE
 *                     [--log-max-size BYTES] [--log-max-file N] [--tty]
 *                     [--stdin] [--stdin-once] [--wait-start] --sync-fd N
 *   moat-monitor exec --id ID --exec-id EID --runtime-root ROOT --process FILE
 *                     [--tty] [--stdin] [--stdin-once] --sync-fd N --dir DIR
 *
 * The sync fd receives one JSON line, {"pid":N} or {"error":"..."}. In DIR
 * (the bundle) the monitor keeps monitor.pid, attach.sock, ctl.sock and,
 * once the process has exited, exit.json; an exec's files are named
 * exec-EID.attach.sock, exec-EID.ctl.sock, exec-EID.exit.json,
 * exec-EID.monitor.pid.
 *
 * This library holds the parts both sides need: docker's json-file log
 * format (writer with rotation, reader), the multiplexed stream framing,
 * and the client side of the sockets.
 */

#include <time.h>

#include "base/compat.h"
#include "base/error.h"

#define MOAT_MONITOR_ATTACH_SOCK "attach.sock"
#define MOAT_MONITOR_CTL_SOCK "ctl.sock"
#define MOAT_MONITOR_EXIT_FILE "exit.json"
#define MOAT_MONITOR_PID_FILE "monitor.pid"

/* Attach clients served at once (more are refused: accepted and closed). */
#define MOAT_MONITOR_MAX_CLIENTS 32
/* Control connections served at once. */
#define MOAT_MONITOR_MAX_CTL 8
/* Output queued for one attach client; a client further behind is dropped. */
#define MOAT_MONITOR_CLIENT_BUFFER_MAX (1024u * 1024u)
/* Bound of an attach request line and of a control request or reply line. */
#define MOAT_MONITOR_LINE_MAX 4096u

/* ---- stream framing (docker's stdcopy) ------------------------------------ */

enum moat_stream {
        MOAT_STREAM_STDIN = 0,
        MOAT_STREAM_STDOUT = 1,
        MOAT_STREAM_STDERR = 2,
        MOAT_STREAM_SYSTEMERR = 3,
};

#define MOAT_FRAME_HEADER_SIZE 8

/* [stream, 0, 0, 0, size as uint32 big-endian] */
void moat_frame_header(uint8_t hdr[MOAT_FRAME_HEADER_SIZE], enum moat_stream stream, uint32_t size);
/* -EBADMSG when the header is not one of ours (stream > 3, padding not 0). */
MOAT_NODISCARD int moat_frame_parse(const uint8_t hdr[MOAT_FRAME_HEADER_SIZE], enum moat_stream *ret_stream,
                                    uint32_t *ret_size);

/* ---- time ------------------------------------------------------------------ */

/* Go's time.RFC3339Nano in UTC ("2026-12-01T18:00:00.123456789Z", trailing
 * zeros of the fraction dropped, no fraction when it is 0), as docker
 * writes its timestamps. buf must hold MOAT_RFC3339NANO_MAX bytes. */
#define MOAT_RFC3339NANO_MAX 40
void moat_format_rfc3339nano(const struct timespec *ts, char buf[MOAT_RFC3339NANO_MAX]);
MOAT_NODISCARD int moat_parse_rfc3339nano(const char *s, struct timespec *ret);

/* ---- the json-file log -------------------------------------------------------- */

/* docker's copier: a line longer than this is logged in pieces (partial
 * entries, without the newline). */
#define MOAT_LOG_LINE_MAX (16u * 1024u)
/* Upper bound of one encoded entry (every byte escaped as \u00XX). */
#define MOAT_LOG_ENTRY_MAX (MOAT_LOG_LINE_MAX * 6u + 128u)

/*
 * Encode one entry, {"log":"...","stream":"stdout","time":"..."} and a
 * newline, escaped exactly as docker's jsonlog (HTML characters and
 * U+2028/U+2029 as \u escapes, invalid UTF-8 as \ufffd). Returns the
 * length; out must hold MOAT_LOG_ENTRY_MAX bytes for a msg of at most
 * MOAT_LOG_LINE_MAX + 1 bytes.
 */
size_t moat_log_encode(char *out, enum moat_stream stream, const void *msg, size_t len, const struct timespec *ts);

struct moat_logfile;

/*
 * Open (append to) the log at path, 0640. With max_size > 0 the file is
 * rotated before a write once it holds max_size bytes or more: path ->
 * path.1 -> ... -> path.(max_files - 1), the oldest removed; max_files <= 1
 * truncates instead (docker's json-file driver). max_size 0: unbounded.
 */
MOAT_NODISCARD int moat_logfile_open(const char *path, uint64_t max_size, unsigned max_files,
                                     struct moat_logfile **ret, struct moat_error **reterr);
/* Append one entry (msg as logged: with its newline, if any). */
MOAT_NODISCARD int moat_logfile_write(struct moat_logfile *lf, enum moat_stream stream, const void *msg, size_t len,
                                      const struct timespec *ts, struct moat_error **reterr);
void moat_logfile_close(struct moat_logfile *lf);

/* Where a log stands: its live file (identified by device and inode, which
 * a rotation's rename keeps) and that file's length. The entries before
 * it are complete: the writer appends whole entries. */
struct moat_monitor_log_position {
        bool known;        /* false: not reported (no log, or a monitor of an older moat) */
        uint64_t dev, ino;
        uint64_t size;
};
/* The position of the open log now; -EBADF when no file is open (a
 * rotation failed: the next write tries again). */
MOAT_NODISCARD int moat_logfile_position(const struct moat_logfile *lf, struct moat_monitor_log_position *ret);

/*
 * docker's line splitting for one stream: complete lines are logged with
 * their newline, a line that fills MOAT_LOG_LINE_MAX bytes is logged as a
 * partial entry (no newline), and what is left at EOF too. The caller
 * reads straight into the buffer: moat_log_stream_space() says where and
 * how much, moat_log_stream_commit() logs what was read.
 */
struct moat_log_stream {
        enum moat_stream stream;
        size_t n;                  /* bytes buffered, not logged yet */
        struct timespec partial_ts; /* timestamp shared by a partial line's pieces */
        bool partial;
        char buf[MOAT_LOG_LINE_MAX];
};

void moat_log_stream_init(struct moat_log_stream *s, enum moat_stream stream);
void moat_log_stream_space(struct moat_log_stream *s, char **ret_ptr, size_t *ret_avail);
/* lf may be NULL (no log: the bytes are dropped). */
MOAT_NODISCARD int moat_log_stream_commit(struct moat_log_stream *s, struct moat_logfile *lf, size_t n,
                                          struct moat_error **reterr);
MOAT_NODISCARD int moat_log_stream_finish(struct moat_log_stream *s, struct moat_logfile *lf,
                                          struct moat_error **reterr);

/* One entry read back. data is not NUL-terminated (it may hold NULs). */
struct moat_log_entry {
        enum moat_stream stream;
        struct timespec time;
        const char *data;
        size_t len;
};

/*
 * Call cb for every entry of the log, oldest first (path.(max_files-1) ..
 * path.1, path). cb returning non-zero stops the walk and is returned. A
 * last line without its newline (being written) is not reported; a line
 * that is not an entry fails with -EBADMSG naming file and line.
 */
MOAT_NODISCARD int moat_logfile_read(const char *path, unsigned max_files,
                                     int (*cb)(const struct moat_log_entry *e, void *userdata), void *userdata,
                                     struct moat_error **reterr);

/* ---- client side of the sockets ------------------------------------------------ */

/* The name of a monitor file in its directory: name itself for the
 * container, "exec-EID.<name>" for an exec. buf of at least 1100 bytes. */
MOAT_NODISCARD int moat_monitor_file_name(const char *exec_id, const char *name, char *buf, size_t size);

/* Connect to dir/name (any length of dir: through an fd of it). */
MOAT_NODISCARD int moat_monitor_connect(const char *dir, const char *name, struct moat_error **reterr);

/* Connect to the attach socket and send the request; returns the
 * connected socket. Output follows (multiplexed frames without a tty). */
MOAT_NODISCARD int moat_monitor_attach(const char *dir, const char *exec_id, bool in, bool out, bool err,
                                       struct moat_error **reterr);
/* The same for a client that replays the log first (attach?logs=1): the
 * monitor reports in *ret_pos where its log stood when it registered the
 * connection, and the stream begins with the output it had read but not
 * logged yet (the start of an unfinished line), so the entries before the
 * position and then the stream carry every byte once. ret_pos->known is
 * false when the monitor did not report it (it has no log, or predates
 * the report): the stream is then live output only. */
MOAT_NODISCARD int moat_monitor_attach_logs(const char *dir, const char *exec_id, bool in, bool out, bool err,
                                            struct moat_monitor_log_position *ret_pos, struct moat_error **reterr);

/* Send one control request (a JSON object, one line) and return the reply
 * (newly allocated, no newline). A reply {"error":"..."} is returned as
 * -EIO with the message. */
MOAT_NODISCARD int moat_monitor_ctl(const char *dir, const char *exec_id, const char *request, char **ret_reply,
                                    struct moat_error **reterr);
MOAT_NODISCARD int moat_monitor_resize(const char *dir, const char *exec_id, unsigned height, unsigned width,
                                       struct moat_error **reterr);
MOAT_NODISCARD int moat_monitor_close_stdin(const char *dir, const char *exec_id, struct moat_error **reterr);
/* Start a container whose monitor was run with --wait-start. */
MOAT_NODISCARD int moat_monitor_start(const char *dir, struct moat_error **reterr);

struct moat_monitor_exit {
        int exit_code;    /* docker's ExitCode: the code, or 128+signal */
        int signal;       /* the signal that killed it, 0 if it exited */
        bool oom_killed;
        struct timespec started_at;
        struct timespec finished_at;
};

/* Read dir/exit.json (or exec-EID.exit.json); -ENOENT while it runs. */
MOAT_NODISCARD int moat_monitor_read_exit(const char *dir, const char *exec_id, struct moat_monitor_exit *ret,
                                          struct moat_error **reterr);

/*
 * Following a log as it grows (docker logs --follow). The reader holds
 * the live file open and a position after the last complete line; a
 * rotation (the path now names another file) is noticed, the old file is
 * read to its end, then the new one from its start.
 */
struct moat_log_follow;
/* The rotated files of path (path.N .. path.1, oldest first, as many as
 * exist, at most max_files), entry by entry; cb as moat_logfile_read. */
MOAT_NODISCARD int moat_logfile_read_rotated(const char *path, unsigned max_files,
                                             int (*cb)(const struct moat_log_entry *e, void *userdata),
                                             void *userdata, struct moat_error **reterr);
/* Open the live file for following (a missing one is waited for). */
MOAT_NODISCARD int moat_log_follow_open(const char *path, struct moat_log_follow **ret, struct moat_error **reterr);
/* Report every complete entry written since the last call; returns how
 * many (>= 0), or -errno (a cb that wants to stop returns a negative
 * errno, which is returned). */
MOAT_NODISCARD int moat_log_follow_read(struct moat_log_follow *f,
                                        int (*cb)(const struct moat_log_entry *e, void *userdata), void *userdata,
                                        struct moat_error **reterr);
void moat_log_follow_free(struct moat_log_follow *f);
