#define _GNU_SOURCE
#include "cagent.h"

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <termios.h>
#include <unistd.h>
#include <linux/vm_sockets.h>

static const char default_path[] = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

// The child's report to the parent through the close-on-exec pipe: nothing at all means execve succeeded.
struct failure { int step; int error; };

static void child_fail(int report, int step) {
    struct failure failure = {step, errno};
    ssize_t ignored = write(report, &failure, sizeof failure);
    (void)ignored;
    _exit(127);
}

// PATH from envp (the command's own environment, not the agent's), found without allocating.
static const char *path_of(char *const *envp) {
    for (char *const *entry = envp; entry && *entry; entry++) {
        if (strncmp(*entry, "PATH=", 5) == 0) return *entry + 5;
    }
    return default_path;
}

// execvp's search, async-signal-safe: each PATH entry joined with the name in a stack buffer. EACCES from any
// entry is remembered (execvp reports it rather than ENOENT); other errors go on to the next entry.
static void exec_searching(const char *file, char *const *argv, char *const *envp) {
    if (strchr(file, '/')) {
        execve(file, argv, envp);
        return;
    }
    const char *path = path_of(envp);
    size_t file_length = strlen(file);
    int saw_eacces = 0;
    char buffer[4096];
    for (const char *start = path;; ) {
        const char *end = strchrnul(start, ':');
        size_t length = (size_t)(end - start);
        if (length + 1 + file_length + 1 <= sizeof buffer) {
            if (length == 0) {
                memcpy(buffer, file, file_length + 1);
            } else {
                memcpy(buffer, start, length);
                buffer[length] = '/';
                memcpy(buffer + length + 1, file, file_length + 1);
            }
            execve(buffer, argv, envp);
            if (errno == EACCES) saw_eacces = 1;
        }
        if (*end == '\0') break;
        start = end + 1;
    }
    errno = saw_eacces ? EACCES : ENOENT;
}

pid_t cagent_spawn(const struct cagent_spawn_request *request, int *child_errno, int *child_step) {
    int report[2];
    if (pipe2(report, O_CLOEXEC) < 0) {
        *child_errno = errno;
        *child_step = 7;
        return -1;
    }
    // Signals stay blocked across fork so that no handler of the agent runs in the child before it resets them.
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    pid_t pid = fork();
    if (pid == 0) {
        close(report[0]);
        // Dispositions: the agent ignores SIGPIPE, and an ignored signal stays ignored across execve.
        for (int number = 1; number < NSIG; number++) signal(number, SIG_DFL);
        sigset_t none;
        sigemptyset(&none);
        sigprocmask(SIG_SETMASK, &none, NULL);
        if (request->tty) {
            if (setsid() < 0) child_fail(report[1], 1);
            if (ioctl(request->stdin_fd, TIOCSCTTY, 0) < 0) child_fail(report[1], 2);
        } else if (setpgid(0, 0) < 0) {
            child_fail(report[1], 1);
        }
        if (dup2(request->stdin_fd, 0) < 0 || dup2(request->stdout_fd, 1) < 0 || dup2(request->stderr_fd, 2) < 0) {
            child_fail(report[1], 3);
        }
        if (request->cwd && chdir(request->cwd) < 0) child_fail(report[1], 4);
        if (request->set_user) {
            gid_t groups[1] = {request->gid};
            if (setgroups(1, groups) < 0 || setgid(request->gid) < 0 || setuid(request->uid) < 0) {
                child_fail(report[1], 5);
            }
        }
        exec_searching(request->argv[0], request->argv, request->envp);
        child_fail(report[1], 6);
    }
    int fork_errno = errno;
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    close(report[1]);
    if (pid < 0) {
        close(report[0]);
        *child_errno = fork_errno;
        *child_step = 0;
        return -1;
    }
    struct failure failure;
    ssize_t count;
    do {
        count = read(report[0], &failure, sizeof failure);
    } while (count < 0 && errno == EINTR);
    close(report[0]);
    if (count == (ssize_t)sizeof failure) {
        int status;
        while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {}
        *child_errno = failure.error;
        *child_step = failure.step;
        return -1;
    }
    return pid;
}

int cagent_pidfd_open(pid_t pid) {
    return (int)syscall(SYS_pidfd_open, pid, 0);
}

int cagent_open_pty(int *master, int *slave, unsigned short rows, unsigned short columns) {
    int m = posix_openpt(O_RDWR | O_NOCTTY | O_CLOEXEC | O_NONBLOCK);
    if (m < 0) return -1;
    char name[128];
    if (grantpt(m) < 0 || unlockpt(m) < 0 || ptsname_r(m, name, sizeof name) != 0) {
        int saved = errno;
        close(m);
        errno = saved;
        return -1;
    }
    int s = open(name, O_RDWR | O_NOCTTY | O_CLOEXEC);
    if (s < 0) {
        int saved = errno;
        close(m);
        errno = saved;
        return -1;
    }
    if (rows && columns) cagent_set_window_size(m, rows, columns);
    *master = m;
    *slave = s;
    return 0;
}

int cagent_set_window_size(int fd, unsigned short rows, unsigned short columns) {
    struct winsize size = {.ws_row = rows, .ws_col = columns};
    return ioctl(fd, TIOCSWINSZ, &size);
}

int cagent_get_window_size(int fd, unsigned short *rows, unsigned short *columns) {
    struct winsize size;
    if (ioctl(fd, TIOCGWINSZ, &size) < 0) return -1;
    *rows = size.ws_row;
    *columns = size.ws_col;
    return 0;
}

int cagent_vsock_listen(unsigned int port, int backlog) {
    int fd = socket(AF_VSOCK, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) return -1;
    struct sockaddr_vm address = {.svm_family = AF_VSOCK, .svm_cid = VMADDR_CID_ANY, .svm_port = port};
    if (bind(fd, (struct sockaddr *)&address, sizeof address) < 0 || listen(fd, backlog) < 0) {
        int saved = errno;
        close(fd);
        errno = saved;
        return -1;
    }
    return fd;
}

int cagent_accept(int fd) {
    return accept4(fd, NULL, NULL, SOCK_CLOEXEC);
}

static int unix_address(const char *path, struct sockaddr_un *address) {
    memset(address, 0, sizeof *address);
    address->sun_family = AF_UNIX;
    if (strlen(path) >= sizeof address->sun_path) {
        errno = ENAMETOOLONG;
        return -1;
    }
    strcpy(address->sun_path, path);
    return 0;
}

int cagent_unix_connect(const char *path) {
    struct sockaddr_un address;
    if (unix_address(path, &address) < 0) return -1;
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) return -1;
    int result;
    do {
        result = connect(fd, (struct sockaddr *)&address, sizeof address);
    } while (result < 0 && errno == EINTR);
    if (result < 0) {
        int saved = errno;
        close(fd);
        errno = saved;
        return -1;
    }
    return fd;
}

int cagent_unix_listen(const char *path, int backlog) {
    struct sockaddr_un address;
    if (unix_address(path, &address) < 0) return -1;
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) return -1;
    if (bind(fd, (struct sockaddr *)&address, sizeof address) < 0 || listen(fd, backlog) < 0) {
        int saved = errno;
        close(fd);
        errno = saved;
        return -1;
    }
    return fd;
}

int cagent_signalfd(const int *signals, int count) {
    sigset_t set;
    sigemptyset(&set);
    for (int i = 0; i < count; i++) sigaddset(&set, signals[i]);
    if (pthread_sigmask(SIG_BLOCK, &set, NULL) != 0) return -1;
    return signalfd(-1, &set, SFD_CLOEXEC | SFD_NONBLOCK);
}

int cagent_read_signal(int fd) {
    struct signalfd_siginfo info;
    ssize_t count;
    do {
        count = read(fd, &info, sizeof info);
    } while (count < 0 && errno == EINTR);
    if (count < 0) return errno == EAGAIN ? 0 : -1;
    return count == (ssize_t)sizeof info ? (int)info.ssi_signo : 0;
}

void cagent_unblock_signals(const int *signals, int count) {
    sigset_t set;
    sigemptyset(&set);
    for (int i = 0; i < count; i++) sigaddset(&set, signals[i]);
    pthread_sigmask(SIG_UNBLOCK, &set, NULL);
}

int cagent_pipe(int fds[2]) {
    return pipe2(fds, O_CLOEXEC);
}
