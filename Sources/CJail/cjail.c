#define _GNU_SOURCE
#include "cjail.h"

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <sched.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#define CHECK(call) do { if ((call) != 0) return -errno; } while (0)

int cjail_unshare_mount_namespace(void) { CHECK(unshare(CLONE_NEWNS)); return 0; }
int cjail_unshare_pid_namespace(void) { CHECK(unshare(CLONE_NEWPID)); return 0; }

int cjail_join_network_namespace(const char *path) {
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return -errno;
    int result = setns(fd, CLONE_NEWNET) == 0 ? 0 : -errno;
    close(fd);
    return result;
}

int cjail_make_root_slave(void) { CHECK(mount(NULL, "/", NULL, MS_SLAVE | MS_REC, NULL)); return 0; }

int cjail_bind_onto_itself(const char *path) { CHECK(mount(path, path, NULL, MS_BIND | MS_REC, NULL)); return 0; }

int cjail_pivot_root(const char *new_root, const char *put_old) {
    CHECK(chdir(new_root));
    CHECK(syscall(SYS_pivot_root, ".", put_old));
    CHECK(chdir("/"));
    CHECK(umount2(put_old, MNT_DETACH));
    CHECK(rmdir(put_old));
    return 0;
}

int cjail_move_root(const char *new_root) {
    CHECK(chdir(new_root));
    CHECK(mount(new_root, "/", NULL, MS_MOVE, NULL));
    CHECK(chroot("."));
    CHECK(chdir("/"));
    return 0;
}

int cjail_mount_proc(const char *path) {
    CHECK(mount("proc", path, "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, "hidepid=2"));
    return 0;
}

int cjail_make_char_device(const char *path, uint32_t mode, uint32_t major, uint32_t minor) {
    CHECK(mknod(path, S_IFCHR | mode, makedev(major, minor)));
    return 0;
}

int cjail_drop_privileges(uid_t uid, gid_t gid) {
    CHECK(setgroups(0, NULL));
    CHECK(setgid(gid));
    CHECK(setuid(uid));
    return 0;
}

pid_t cjail_fork(void) {
    pid_t pid = fork();
    return pid < 0 ? -errno : pid;
}

int cjail_new_session(void) { return setsid() < 0 ? -errno : 0; }
