// CAgent: the process and socket calls of swiftlet-agent (and its host client) that Swift cannot make safely or
// at all: fork+exec (after fork, a multithreaded process may only make async-signal-safe calls, so the child's
// whole path to execve is C), pidfd_open (a raw system call), pseudo-terminals, and the AF_VSOCK / AF_UNIX
// socket addresses. Declarations only; cagent.c sees _GNU_SOURCE.
#ifndef CAGENT_H
#define CAGENT_H

#include <stdint.h>
#include <sys/types.h>

/// What the child of cagent_spawn does before execve.
struct cagent_spawn_request {
    /// argv[0] is the program: with a '/', run as it is; otherwise searched in envp's PATH (or the default
    /// "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"), as execvp does.
    char *const *argv;
    char *const *envp;
    /// chdir before exec, or NULL.
    const char *cwd;
    /// setgroups({gid}), setgid, setuid when set_user != 0.
    int set_user;
    uid_t uid;
    gid_t gid;
    /// The child's stdin, stdout, stderr (dup2'd to 0, 1, 2; the originals are close-on-exec in the parent).
    int stdin_fd, stdout_fd, stderr_fd;
    /// Non-zero: stdin_fd is a pty's slave; the child starts a session and takes it as controlling terminal.
    /// Zero: the child becomes a process-group leader, so a forwarded signal reaches what it starts too.
    int tty;
};

/// Forks; the child resets signal dispositions and mask, sets up as requested and execs. Returns the child's
/// pid once it has exec'd, or -1 with *child_errno the errno of the step that failed and *child_step which one
/// (0 fork, 1 setsid/setpgid, 2 controlling tty, 3 dup2, 4 chdir, 5 setgroups/setgid/setuid, 6 execve, 7 pipe);
/// a child that failed has been reaped.
pid_t cagent_spawn(const struct cagent_spawn_request *request, int *child_errno, int *child_step);

/// pidfd_open(2): a close-on-exec fd that polls readable when the process `pid` has ended. -1 with errno.
int cagent_pidfd_open(pid_t pid);

/// A new pseudo-terminal pair (close-on-exec, the master non-blocking) with the window size set.
/// 0, or -1 with errno.
int cagent_open_pty(int *master, int *slave, unsigned short rows, unsigned short columns);

/// TIOCSWINSZ on a pty master: the foreground process group gets SIGWINCH.
int cagent_set_window_size(int fd, unsigned short rows, unsigned short columns);

/// TIOCGWINSZ on a terminal; 0, or -1 with errno.
int cagent_get_window_size(int fd, unsigned short *rows, unsigned short *columns);

/// pipe2(O_CLOEXEC) (glibc declares it only under _GNU_SOURCE). 0, or -1 with errno.
int cagent_pipe(int fds[2]);

/// A close-on-exec AF_VSOCK stream socket listening on `port` of any CID. -1 with errno.
int cagent_vsock_listen(unsigned int port, int backlog);

/// accept4 with SOCK_CLOEXEC. -1 with errno.
int cagent_accept(int fd);

/// A close-on-exec, blocking AF_UNIX stream socket connected to `path`. -1 with errno (ENAMETOOLONG when the
/// path does not fit sockaddr_un).
int cagent_unix_connect(const char *path);

/// A close-on-exec AF_UNIX stream socket listening at `path` (tests). -1 with errno.
int cagent_unix_listen(const char *path, int backlog);

/// Blocks `signals` (count of them) in the calling thread (threads created later inherit the mask) and returns a
/// close-on-exec signalfd that reads them. -1 with errno.
int cagent_signalfd(const int *signals, int count);

/// The number of the next signal on a signalfd (0 when none is pending: the fd is non-blocking), -1 with errno.
int cagent_read_signal(int fd);

/// Unblocks the signals cagent_signalfd blocked.
void cagent_unblock_signals(const int *signals, int count);

#endif
