// run-timed: the boot scenario's stopwatch (scripts/bench --only boot, docs/performance.md). Runs inside the test
// host, where there is no Python and busybox's date has no sub-second format.
//
//   run-timed MARKER COMMAND [ARGS...]
//
// Starts COMMAND with its stdout and stderr on one pipe, copies everything it prints to this program's stdout,
// and notes when MARKER first appears in it (a line the guest's /init prints first) and when COMMAND exits.
// Then prints, last:
//   RUNTIMED marker_ns=12345678901 exit_ns=23456789012 status=0
// with times from just before fork (CLOCK_MONOTONIC) and marker_ns=-1 if MARKER never appeared.
// Exit status 0 once COMMAND ran (its own status is in the line), 1 if it could not be started.
#define _GNU_SOURCE
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static int64_t now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static void write_all(int fd, const char *bytes, size_t count) {
    while (count > 0) {
        ssize_t done = write(fd, bytes, count);
        if (done < 0 && errno == EINTR) continue;
        if (done <= 0) return;   // our reader went away: keep draining the child regardless
        bytes += done;
        count -= (size_t)done;
    }
}

int main(int argc, char **argv) {
    if (argc < 3) {
        fprintf(stderr, "usage: run-timed MARKER COMMAND [ARGS...]\n");
        return 2;
    }
    const char *marker = argv[1];
    size_t marker_length = strlen(marker);
    if (marker_length == 0 || marker_length > 255) {
        fprintf(stderr, "run-timed: MARKER must be 1 to 255 bytes\n");
        return 2;
    }
    int pipe_fds[2];
    if (pipe(pipe_fds) != 0) {
        perror("run-timed: pipe");
        return 1;
    }
    int64_t start = now_ns();
    pid_t child = fork();
    if (child < 0) {
        perror("run-timed: fork");
        return 1;
    }
    if (child == 0) {
        dup2(pipe_fds[1], 1);
        dup2(pipe_fds[1], 2);
        close(pipe_fds[0]);
        close(pipe_fds[1]);
        execvp(argv[2], argv + 2);
        fprintf(stderr, "run-timed: cannot run %s: %s\n", argv[2], strerror(errno));
        _exit(127);
    }
    close(pipe_fds[1]);

    // The search runs over the last marker_length - 1 bytes of the previous read and the new ones, so a marker
    // split across two reads is still found.
    char window[255 + 65536];
    size_t kept = 0;
    int64_t marker_at = -1;
    for (;;) {
        ssize_t count = read(pipe_fds[0], window + kept, sizeof window - kept);
        if (count < 0 && errno == EINTR) continue;
        if (count <= 0) break;
        int64_t arrived = now_ns() - start;
        write_all(1, window + kept, (size_t)count);
        size_t filled = kept + (size_t)count;
        if (marker_at < 0 && memmem(window, filled, marker, marker_length) != NULL) marker_at = arrived;
        kept = filled < marker_length - 1 ? filled : marker_length - 1;
        memmove(window, window + filled - kept, kept);
    }
    int status = 0;
    while (waitpid(child, &status, 0) < 0 && errno == EINTR) {}
    int64_t exited = now_ns() - start;
    int code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    printf("\nRUNTIMED marker_ns=%lld exit_ns=%lld status=%d\n", (long long)marker_at, (long long)exited, code);
    return 0;
}
